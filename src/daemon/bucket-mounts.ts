// Views for entries backed by S3: settings entries of `type: s3` (read-write buckets, read-only buckets,
// single objects pinned by ETag or VersionId) and public datasets served from an anonymous bucket. Each
// mount gets its own S3Store (its credentials), rate-limited per endpoint and bucket; the bucket is probed
// once before the view goes live so that bad credentials or a missing bucket show as an error on the field
// to fix, and the last good mount stays. Views with uploads still pending outlive their mount (a swap or
// removal) until the bucket holds the bytes.
import type { AnonymousS3Source } from '../catalog/public-datasets.js';
import type { ContentCache } from '../fs/content.js';
import { BucketView, type AttributeStore, type BucketsConfig, type ObjectCache, type UploadStatus } from '../fs/bucket/index.js';
import { pinnedObjectView } from '../fs/views.js';
import type { Filesystem } from '../fuse/filesystem.js';
import { isStorageError, type StorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { RateLimiters } from '../storage/rate-limit.js';
import type { StoreRequestCounts } from '../storage/request-counts.js';
import { S3Store, type S3StoreOptions } from '../storage/s3/store.js';
import type { Uploader } from '../upload/index.js';
import type { Logger } from './logger.js';
import { EntryError } from './reconciler.js';
import type { MountPayload, PosixSettings, ResolvedDataset } from './resolvers.js';

export type S3Payload = Extract<MountPayload<ResolvedDataset>, { kind: 's3' }>;
export type PublicS3Payload = Extract<MountPayload<ResolvedDataset>, { kind: 'public-s3' }>;

export interface BucketMountsOptions {
  cache: ObjectCache & ContentCache;
  /** The process's write-through machinery, shared by every writable bucket view. */
  uploader: Uploader;
  config: BucketsConfig;
  /** The daemon's rate limiters: one per bucket, whichever mount sends the requests. */
  rateLimiters: RateLimiters;
  /** Counts every store request the views send (status and metrics). */
  requestCounts?: StoreRequestCounts;
  /** Where objects' POSIX attributes learnt by HEAD outlive the process (the cache's index). */
  attributeStore?: AttributeStore;
  log?: Logger;
}

export interface EntryUploadStatus extends UploadStatus {
  /** The /datasets entry the upload belongs to. */
  mount: string;
}

export class BucketMounts {
  /** Views that may hold uploads: mounted ones, and retired ones until their uploads are done. */
  private readonly views = new Map<BucketView, { name: string; retired: boolean; bucket: BucketIdentity }>();

  constructor(private readonly opts: BucketMountsOptions) {}

  async viewFor(name: string, p: S3Payload | PublicS3Payload): Promise<Filesystem> {
    if (p.kind === 'public-s3') {
      // Published data sets carry no POSIX metadata: no HEAD per object (coco lists 118k images).
      return this.bucketView(name, storeOptions(p.source), true, this.opts.config.publicMetadataTtl, 'public', { posixMetadata: false });
    }
    const options = storeOptions(p);
    if (p.pin) return this.pinnedView(options, p.pin);
    return this.bucketView(name, options, p.readOnly, this.opts.config.metadataTtl, 'settings', p.posix);
  }

  private makeStore(options: S3StoreOptions, onChanged?: (bucketKey: string) => void): S3Store {
    return new S3Store({
      ...options,
      ...(onChanged ? { onChanged } : {}),
      rateLimiter: this.opts.rateLimiters.for(options.endpoint, options.bucket, this.opts.config.rateLimits),
      requestCounts: this.opts.requestCounts,
    });
  }

  private async bucketView(
    name: string,
    options: S3StoreOptions,
    readOnly: boolean,
    ttlSeconds: number,
    from: 'settings' | 'public',
    posix: PosixSettings = {},
  ): Promise<Filesystem> {
    const bucket = bucketIdentity(options);
    // What this view changes, the other views of the bucket see at once (one process, one truth).
    const origin: { view?: BucketView } = {};
    const store = this.makeStore(options, readOnly ? undefined : (bucketKey) => this.changed(origin.view, bucket, bucketKey));
    try {
      for await (const page of store.list('', { maxKeys: 1 })) {
        void page;
        break;
      }
    } catch (err) {
      store.close();
      throw entryErrorFor(err, options, from);
    }
    const view = new BucketView({
      store,
      cache: this.opts.cache,
      metadataTtlMs: ttlSeconds * 1000,
      ...posix,
      ...(this.opts.attributeStore ? { attributeStore: this.opts.attributeStore } : {}),
      ...(readOnly ? {} : { write: { uploader: this.opts.uploader } }),
      ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    origin.view = view;
    await view.start();
    this.views.set(view, { name, retired: false, bucket });
    return view;
  }

  /**
   * A dataset version served read-write (an output): a bucket view over its VersionStore, which is the truth
   * for its names (no other view shares it), so listings stay fresh for the usual TTL without asking storage.
   */
  async outputView(name: string, store: ObjectStore): Promise<BucketView> {
    const view = new BucketView({
      store,
      cache: this.opts.cache,
      metadataTtlMs: this.opts.config.metadataTtl * 1000,
      write: { uploader: this.opts.uploader },
      ...(this.opts.log ? { log: this.opts.log } : {}),
    });
    await view.start();
    this.views.set(view, { name, retired: false, bucket: { id: store.location, prefix: '' } });
    return view;
  }

  /** One object, pinned: it must still have the pinned ETag/VersionId, else the mount is refused. */
  private async pinnedView(options: S3StoreOptions, pin: { etag?: string; versionId?: string }): Promise<Filesystem> {
    const prefix = options.prefix ?? '';
    const slash = prefix.lastIndexOf('/');
    const key = prefix.slice(slash + 1);
    const store = this.makeStore({ ...options, prefix: prefix.slice(0, slash + 1) });
    let info;
    try {
      info = await store.head(key, pin.versionId ? { versionId: pin.versionId } : {});
    } catch (err) {
      store.close();
      if (isStorageError(err, 'NotFound') && pin.versionId) {
        throw new EntryError('PinMismatch', `s3://${options.bucket}/${prefix} has no version ${pin.versionId}`, 'versionId');
      }
      throw entryErrorFor(err, options, 'settings');
    }
    if (pin.etag && info.etag !== pin.etag.replace(/"/g, '')) {
      store.close();
      throw new EntryError(
        'PinMismatch',
        `s3://${options.bucket}/${prefix} has ETag ${info.etag}, not the pinned ${pin.etag}: the object changed; update the pin to accept the new bytes`,
        'etag',
      );
    }
    const object = { name: key, size: info.size, etag: info.etag, versionId: pin.versionId, mtimeMs: info.lastModified.getTime() };
    return pinnedObjectView(store, this.opts.cache, object, { log: this.opts.log });
  }

  /** Tells every other view of the bucket whose prefix holds `bucketKey` that the object changed. */
  private changed(origin: BucketView | undefined, bucket: BucketIdentity, bucketKey: string): void {
    for (const [view, v] of this.views) {
      if (view === origin || v.bucket.id !== bucket.id || !bucketKey.startsWith(v.bucket.prefix)) continue;
      const key = bucketKey.slice(v.bucket.prefix.length);
      if (key !== '') view.changedElsewhere(key);
    }
  }

  /** The entry no longer serves this view; it stays tracked while files are open or uploads pending. */
  retire(view: Filesystem): void {
    const v = this.views.get(view as BucketView);
    if (!v) return;
    v.retired = true;
    this.sweep();
  }

  private sweep(): void {
    for (const [view, v] of this.views) {
      if (v.retired && view.uploadStatus().length === 0 && view.openHandles === 0) {
        view.close();
        this.views.delete(view);
      }
    }
  }

  /** Uploads not yet in their bucket, for `gradient status`. */
  uploads(): EntryUploadStatus[] {
    this.sweep();
    const out: EntryUploadStatus[] = [];
    for (const [view, v] of this.views) for (const u of view.uploadStatus()) out.push({ mount: v.name, ...u });
    return out;
  }

  /** Daemon stop: gives pending uploads a last chance within the configured time; returns how many remain. */
  async drain(): Promise<number> {
    const ms = this.opts.config.drainTimeout * 1000;
    const left = await Promise.all([...this.views.keys()].map((view) => view.drain(ms)));
    for (const view of this.views.keys()) view.close();
    return left.reduce((a, b) => a + b, 0);
  }
}

function storeOptions(p: S3Payload | AnonymousS3Source): S3StoreOptions {
  const o: S3StoreOptions = { bucket: p.bucket, prefix: p.prefix };
  if (p.region) o.region = p.region;
  if (p.endpoint) o.endpoint = p.endpoint;
  const creds = 'credentials' in p ? p.credentials : undefined;
  o.credentials = creds ? { kind: 'static', accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey } : { kind: 'anonymous' };
  return o;
}

/** A failed probe, as an error on the settings field to fix. */
function entryErrorFor(err: unknown, options: S3StoreOptions, from: 'settings' | 'public'): EntryError {
  if (!isStorageError(err)) return new EntryError('Unreachable', err instanceof Error ? err.message : String(err));
  const e: StorageError = err;
  const field =
    from === 'public'
      ? undefined
      : e.code === 'BadCredentials' || e.code === 'AccessDenied'
        ? /InvalidAccessKeyId/.test(e.message)
          ? 'accessKeyId'
          : options.credentials?.kind === 'static'
            ? 'secretAccessKey'
            : 'url'
        : e.code === 'Unreachable'
          ? options.endpoint
            ? 'endpoint'
            : 'region'
          : 'url';
  return new EntryError(e.code, e.message, field);
}

/** Which bucket a view serves (endpoint and name) and under which prefix ('' or ending in '/'). */
interface BucketIdentity {
  id: string;
  prefix: string;
}

function bucketIdentity(options: S3StoreOptions): BucketIdentity {
  const p = (options.prefix ?? '').replace(/^\/+/, '');
  return { id: `${options.endpoint ?? 'aws'} ${options.bucket}`, prefix: p === '' || p.endsWith('/') ? p : `${p}/` };
}
