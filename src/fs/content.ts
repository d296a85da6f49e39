// Where a view's bytes come from: memory (the embedded sample), or the shared on-disk cache, keyed by content
// hash (team datasets) or by object identity (buckets, pinned objects), which hands back a local file for the
// engine's fast path once complete.
import { open } from 'node:fs/promises';
import { FsError } from '../fuse/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { PrefetchResult } from './sibling-prefetch.js';
import type { FileContent, OpenedContent } from './tree-view.js';

export class MemoryContent implements FileContent {
  constructor(private readonly files: readonly { bytes: Buffer }[]) {}

  async open(fileIndex: number): Promise<OpenedContent> {
    const bytes = this.files[fileIndex]?.bytes;
    if (!bytes) throw new FsError('ENOENT');
    return {
      read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
      backingPath: () => undefined,
      close: () => undefined,
    };
  }
}

/** Files of a local directory that never change (the embedded sample written out): the engine serves them. */
export class LocalFileContent implements FileContent {
  constructor(private readonly paths: readonly string[]) {}

  async open(fileIndex: number): Promise<OpenedContent> {
    const file = this.paths[fileIndex];
    if (!file) throw new FsError('ENOENT');
    const fh = await open(file, 'r');
    return {
      read: async (offset, length) => {
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      },
      backingPath: () => file,
      close: () => void fh.close().catch(() => undefined),
    };
  }
}

/** An open file's bytes in the cache. */
export interface CachedBytes {
  /**
   * `transient`: the caller uses the bytes before the current event-loop turn ends (a FUSE reply), so they
   * may be a view of a buffer the cache reuses afterwards.
   */
  read(offset: number, length: number, opts?: { transient?: boolean }): Promise<Buffer>;
  /** The cache's complete local copy, once there is one: the engine's fast path. */
  completePath(): string | undefined;
  close(): void;
}

/** The part of the cache a dataset version needs: blobs by content hash (src/cache's Cache satisfies it). */
export interface ContentCache {
  open(
    identity: { kind: 'content'; sha256: string },
    source: { store: ObjectStore; key: string; size: number },
  ): Promise<CachedBytes>;
  /** Fetches a small file whole ahead of its reader (sibling prefetch), with idle capacity only. */
  prefetch?(identity: { kind: 'content'; sha256: string }, source: { store: ObjectStore; key: string; size: number }): PrefetchResult;
}

/** The part of the cache a bucket view or a pinned object needs: objects by (location, key, ETag). */
export interface ObjectCache {
  /**
   * `confirmSince` (ms): the ETag may be out of date; unless a GET confirmed it since then (a small file's GET
   * at open, a prefetch) the open confirms it with a HEAD. A changed object fails with a StorageError
   * PreconditionFailed, a gone one with NotFound.
   */
  open(
    identity: { kind: 'object'; location: string; key: string; etag: string; versionId?: string },
    source: { store: ObjectStore; key: string; size: number; ifMatch: string; versionId?: string; confirmSince?: number },
  ): Promise<CachedBytes>;
  /** Fetches a small file whole ahead of its reader (sibling prefetch), with idle capacity only. */
  prefetch?(
    identity: { kind: 'object'; location: string; key: string; etag: string },
    source: { store: ObjectStore; key: string; size: number; ifMatch: string },
  ): PrefetchResult;
}

export interface ContentFile {
  size: number;
  sha256: string;
}

/**
 * Files addressed by SHA-256 in a store (a version's blobs), read through the cache. Hashes are kept as
 * 32 raw bytes per file rather than 64-character strings: a million-file version holds 32 MB, not 100+.
 */
export class CachedContent implements FileContent {
  private readonly hashes: Buffer;
  private readonly sizes: Float64Array;

  constructor(
    private readonly cache: ContentCache,
    private readonly store: ObjectStore,
    private readonly blobKey: (sha256: string) => string,
    files: readonly ContentFile[],
  ) {
    this.hashes = Buffer.alloc(files.length * 32);
    this.sizes = new Float64Array(files.length);
    files.forEach((f, i) => {
      this.hashes.write(f.sha256, i * 32, 32, 'hex');
      this.sizes[i] = f.size;
    });
  }

  prefetch(fileIndex: number): PrefetchResult {
    if (!this.cache.prefetch) return 'skipped';
    const sha256 = this.hashes.toString('hex', fileIndex * 32, fileIndex * 32 + 32);
    return this.cache.prefetch({ kind: 'content', sha256 }, { store: this.store, key: this.blobKey(sha256), size: this.sizes[fileIndex]! });
  }

  async open(fileIndex: number): Promise<OpenedContent> {
    if (fileIndex < 0 || fileIndex >= this.sizes.length) throw new FsError('ENOENT');
    const sha256 = this.hashes.toString('hex', fileIndex * 32, fileIndex * 32 + 32);
    const handle = await this.cache.open({ kind: 'content', sha256 }, { store: this.store, key: this.blobKey(sha256), size: this.sizes[fileIndex]! });
    return {
      read: (offset, length) => handle.read(offset, length, { transient: true }),
      backingPath: () => handle.completePath(),
      close: () => handle.close(),
    };
  }
}
