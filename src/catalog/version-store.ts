// An uncommitted dataset version as an ObjectStore, so that a bucket view (src/fs/bucket) can serve it
// read-write with the bucket's write path: keys are the version's file paths. A write puts the bytes into
// the dataset's storage exactly as `files put` does (content-addressed blobs, dedup included) and then
// appends a one-entry journal batch: once `write` returns, the file is part of the version in the provider
// and a commit (catalog.commitVersion) folds it into the sealed manifest. A delete is a journal deletion, a
// copy a journal entry naming the same blob (no data moves). The files are known from the journal, replayed
// once when the store opens; after that this store is the truth for what this process shows (other writers'
// batches appear at the next mount).
//
// What the manifest cannot hold lives only here, for this process's life: POSIX attributes (user metadata)
// and directory markers (empty directories). After `seal()` every change is refused with ReadOnly (EROFS).
import { createHash, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StorageError } from '../storage/errors.js';
import type {
  CopyOptions,
  ListOptions,
  ListPage,
  MultipartOptions,
  MultipartUpload,
  ObjectInfo,
  ObjectStore,
  ReadOptions,
  WriteBody,
  WriteOptions,
} from '../storage/object-store.js';
import type { Catalog } from './catalog.js';
import { isCatalogError } from './errors.js';
import { blobKey, versionRoot } from './layout.js';
import { blobStored, storeBlob } from './put.js';
import type { ManifestEntry } from './records.js';
import { formatRef } from './refs.js';

const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** CopyObject's limit: a larger upload is copied to its blob key through this process. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

/**
 * S3's key order (UTF-8 bytes, which is code point order) on JS strings: UTF-16 code units order the same except
 * that surrogates (U+D800–DFFF, halves of code points above U+FFFF) must sort after U+E000–FFFF.
 */
function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

type JournalEntry = ManifestEntry | { path: string; deleted: true };

interface FileState {
  size: number;
  sha256: string;
  mtime: number;
  metadata?: Record<string, string>;
  contentType?: string;
}

/** What this store wrote since it opened (for `gradient status`). */
export interface VersionStoreStats {
  filesWritten: number;
  bytesWritten: number;
}

export class VersionStore implements ObjectStore {
  readonly location: string;
  readonly stats: VersionStoreStats = { filesWritten: 0, bytesWritten: 0 };
  private readonly files = new Map<string, FileState>();
  /** `dir/` keys made by mkdir: not in the manifest (it holds files only). */
  private readonly markers = new Map<string, FileState>();
  /** Blobs the provider holds: the version's own, and every one this store put. */
  private readonly known = new Set<string>();
  /** Changes under way: seal() waits for them, so that none lands in the journal after a commit read it. */
  private readonly inflight = new Set<Promise<unknown>>();
  private sealedState = false;
  /** The journal batch being filled (written once the one before it is), and the last batch's write. */
  private nextBatch: { entries: JournalEntry[]; done: Promise<void> | undefined } | undefined;
  private journalTail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly catalog: Catalog,
    private readonly store: ObjectStore,
    readonly datasetId: string,
    readonly versionId: string,
    entries: Iterable<ManifestEntry>,
  ) {
    this.location = `dataset ${formatRef(datasetId, versionId)}/`;
    // Parts while a file is written, where the provider takes them (S3; not the local store).
    if (store.startMultipart) this.startMultipart = (key, opts) => this.startUpload(key, opts);
    for (const e of entries) {
      this.files.set(e.path, { size: e.size, sha256: e.sha256, mtime: e.mtime });
      this.known.add(e.sha256);
    }
    this.keys = [...this.files.keys()].sort(compareKeys);
  }

  /** Every key (files and markers) in S3's order: a listing is a binary search and its children, not a scan. */
  private keys: string[];

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private put(map: Map<string, FileState>, key: string, f: FileState): void {
    if (!map.has(key)) this.keys.splice(this.lowerBound(key), 0, key);
    map.set(key, f);
  }

  private remove(map: Map<string, FileState>, key: string): void {
    if (!map.delete(key)) return;
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  /** Opens an uncommitted version for writing (its journal replayed); refuses a committed or sealed one. */
  static async open(catalog: Catalog, datasetId: string, versionId: string): Promise<VersionStore> {
    await catalog.assertWritable(datasetId, versionId);
    const { store } = await catalog.getDataset(datasetId);
    const entries = await catalog.journalEntries(datasetId, versionId);
    return new VersionStore(catalog, store, datasetId, versionId, entries.values());
  }

  get sealed(): boolean {
    return this.sealedState;
  }

  /** Takes no more changes; resolves once the changes already under way are in the journal (or failed). */
  async seal(): Promise<void> {
    this.sealedState = true;
    await Promise.allSettled([...this.inflight]);
  }

  /** Takes changes again (a commit that failed before it sealed the manifest). */
  unseal(): void {
    this.sealedState = false;
  }

  get fileCount(): number {
    return this.files.size;
  }

  // -------------------------------------------------- reads

  private info(key: string, f: FileState): ObjectInfo {
    return {
      key,
      size: f.size,
      etag: f.sha256,
      lastModified: new Date(f.mtime),
      ...(f.metadata ? { metadata: { ...f.metadata } } : {}),
      ...(f.contentType !== undefined ? { contentType: f.contentType } : {}),
    };
  }

  private entry(key: string): FileState {
    const f = key.endsWith('/') ? this.markers.get(key) : this.files.get(key);
    if (!f) throw new StorageError('NotFound', `${this.location}${key} not found`, { location: this.location, key });
    return f;
  }

  async head(key: string): Promise<ObjectInfo> {
    return this.info(key, this.entry(key));
  }

  /** The blob holding `key`'s bytes, checked against the caller's ETag (the content hash). */
  private blobOf(key: string, opts: ReadOptions): FileState {
    const f = this.entry(key);
    if (opts.ifMatch !== undefined && opts.ifMatch !== f.sha256) {
      throw new StorageError('PreconditionFailed', `${this.location}${key} changed`, { location: this.location, key });
    }
    return f;
  }

  private blobOptions(opts: ReadOptions): ReadOptions {
    return { ...(opts.range ? { range: opts.range } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  }

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    const f = this.blobOf(key, opts);
    if (f.size === 0) return Buffer.alloc(0);
    return this.store.read(blobKey(this.catalog.teamId, f.sha256), this.blobOptions(opts));
  }

  async readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    const f = this.blobOf(key, opts);
    if (f.size === 0) return 0;
    const blob = blobKey(this.catalog.teamId, f.sha256);
    if (this.store.readInto) return this.store.readInto(blob, this.blobOptions(opts), into);
    const bytes = await this.store.read(blob, this.blobOptions(opts));
    return bytes.copy(into);
  }

  async stream(key: string, opts: ReadOptions = {}): Promise<Readable> {
    const f = this.blobOf(key, opts);
    if (f.size === 0) return Readable.from([]);
    return this.store.stream(blobKey(this.catalog.teamId, f.sha256), this.blobOptions(opts));
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListPage> {
    const objects: ObjectInfo[] = [];
    const prefixes: string[] = [];
    const keys = this.keys;
    for (let i = this.lowerBound(prefix); i < keys.length && keys[i]!.startsWith(prefix); ) {
      const key = keys[i]!;
      if (opts.startAfter !== undefined && compareKeys(key, opts.startAfter) <= 0) {
        i++;
        continue;
      }
      const slash = opts.delimiter === undefined ? -1 : key.indexOf(opts.delimiter, prefix.length);
      if (slash >= 0 && key !== prefix) {
        // A subdirectory (a deeper key, or its marker): one common prefix, then past everything under it.
        const dir = key.slice(0, slash + 1);
        prefixes.push(dir);
        i = this.lowerBound(`${dir.slice(0, -1)}${String.fromCharCode(opts.delimiter!.charCodeAt(0) + 1)}`);
        continue;
      }
      objects.push(this.info(key, (key.endsWith('/') ? this.markers.get(key) : this.files.get(key))!));
      i++;
    }
    yield { objects, prefixes };
  }

  // -------------------------------------------------- changes

  private writable(key: string): void {
    if (this.sealedState) {
      throw new StorageError('ReadOnly', `${this.location}${key}: the version was committed and takes no more changes`, {
        location: this.location,
        key,
        retryable: false,
      });
    }
  }

  /** Runs a change, tracked so that seal() waits for it. */
  private async change<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.writable(key);
    const p = fn();
    this.inflight.add(p);
    try {
      return await p;
    } finally {
      this.inflight.delete(p);
    }
  }

  /**
   * Appends an entry to the journal; resolves once the batch holding it is written. Entries that arrive while a
   * batch is being written go together in the next one (16 writers closing at once cost a few batches, not 16).
   */
  private record(entry: JournalEntry): Promise<void> {
    // The one check that matters is here, right before the batch: seal() waits for the changes under way.
    this.writable(entry.path);
    const batch = (this.nextBatch ??= { entries: [], done: undefined });
    batch.entries.push(entry);
    batch.done ??= this.journalTail.then(async () => {
      this.nextBatch = undefined;
      await this.catalog.appendJournal(this.datasetId, this.versionId, batch.entries);
      await this.confirm(batch.entries);
    });
    this.journalTail = batch.done.catch(() => undefined);
    return batch.done;
  }

  /**
   * A commit made elsewhere (another machine's daemon or CLI) may have read the journal before this batch: then
   * the batch counts only if the sealed manifest holds it (catalog.confirmWrites). One that does not is refused
   * as a write to a committed version is, and the store takes no more changes: never a silent loss.
   */
  private async confirm(entries: JournalEntry[]): Promise<void> {
    try {
      await this.catalog.confirmWrites(this.datasetId, this.versionId, entries.filter((e): e is ManifestEntry => !('deleted' in e)));
    } catch (err) {
      if (!isCatalogError(err)) throw err;
      this.sealedState = true;
      throw new StorageError('ReadOnly', `${this.location}: ${err.message}`, { location: this.location, retryable: false, cause: err });
    }
  }

  write(key: string, body: WriteBody, opts: WriteOptions = {}): Promise<ObjectInfo> {
    return this.change(key, async () => {
      const attrs = { ...(opts.metadata ? { metadata: { ...opts.metadata } } : {}), ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}) };
      if (key.endsWith('/')) {
        const m: FileState = { size: 0, sha256: EMPTY_SHA256, mtime: Date.now(), ...attrs };
        this.put(this.markers, key, m);
        return this.info(key, m);
      }
      let sha256: string;
      let size: number;
      if (typeof body === 'object' && 'path' in body) {
        // The staged file: its size now; storeBlob refuses bytes that change under it.
        size = (await stat(body.path)).size;
        sha256 = (await storeBlob(this.store, this.catalog.teamId, body.path, size, this.known)).sha256;
      } else if (typeof body === 'string' || body instanceof Uint8Array) {
        const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
        size = bytes.length;
        sha256 = createHash('sha256').update(bytes).digest('hex');
        if (!this.known.has(sha256)) await this.store.write(blobKey(this.catalog.teamId, sha256), bytes, { sha256 });
        this.known.add(sha256);
      } else {
        throw new StorageError('Io', `${this.location}${key}: a stream body is not supported here`, { location: this.location, key });
      }
      return this.recordFile(key, size, sha256, attrs);
    });
  }

  /** A file whose blob the provider holds: its journal entry, then this store's view of it. */
  private async recordFile(key: string, size: number, sha256: string, attrs: Pick<FileState, 'metadata' | 'contentType'>): Promise<ObjectInfo> {
    const f: FileState = { size, sha256, mtime: Date.now(), ...attrs };
    await this.record({ path: key, size, sha256, mtime: f.mtime });
    this.put(this.files, key, f);
    this.stats.filesWritten++;
    this.stats.bytesWritten += size;
    return this.info(key, f);
  }

  delete(key: string): Promise<void> {
    return this.change(key, async () => {
      if (key.endsWith('/')) {
        this.remove(this.markers, key);
        return;
      }
      if (!this.files.has(key)) return;
      await this.record({ path: key, deleted: true });
      this.remove(this.files, key);
    });
  }

  copy(fromKey: string, toKey: string, opts: CopyOptions = {}): Promise<ObjectInfo> {
    return this.change(toKey, async () => {
      const src = this.entry(fromKey);
      const attrs =
        opts.metadata !== undefined
          ? { metadata: { ...opts.metadata }, ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}) }
          : { ...(src.metadata ? { metadata: src.metadata } : {}), ...(src.contentType !== undefined ? { contentType: src.contentType } : {}) };
      const f: FileState = { size: src.size, sha256: src.sha256, mtime: fromKey === toKey ? src.mtime : Date.now(), ...attrs };
      if (toKey.endsWith('/')) this.put(this.markers, toKey, f);
      else {
        // A copy onto itself changes attributes only, which the manifest does not hold: nothing to record.
        if (fromKey !== toKey) await this.record({ path: toKey, size: f.size, sha256: f.sha256, mtime: f.mtime });
        this.put(this.files, toKey, f);
      }
      return this.info(toKey, f);
    });
  }

  /**
   * A file's bytes sent while it is written (src/upload's EagerUpload), before its hash, so its blob key, is
   * known: the parts go to a multipart upload under the version's `uploads/`, hashed in part order as they are
   * sent (a part that arrives early is held until its turn). complete() then knows the hash: known content is
   * dropped (the upload aborted), new content is completed and copied to its blob key (a server-side copy; RGW
   * shares the data), and the file is recorded as write() records it.
   */
  startMultipart?: (key: string, opts?: MultipartOptions) => Promise<MultipartUpload>;

  private async startUpload(key: string, opts: MultipartOptions = {}): Promise<MultipartUpload> {
    this.writable(key);
    const tmpKey = `${versionRoot(this.catalog.teamId, this.datasetId, this.versionId)}uploads/${randomBytes(8).toString('hex')}`;
    const upload = await this.store.startMultipart!(tmpKey);
    const hash = createHash('sha256');
    let hashed = 0;
    let size = 0;
    const early = new Map<number, Buffer>();
    const hashInOrder = (partNumber: number, body: Buffer) => {
      if (partNumber !== hashed + 1) return void early.set(partNumber, Buffer.from(body)); // the caller reuses its buffer
      hash.update(body);
      size += body.length;
      hashed = partNumber;
      const next = early.get(hashed + 1);
      if (next) {
        early.delete(hashed + 1);
        hashInOrder(hashed + 1, next);
      }
    };
    const attrs = { ...(opts.metadata ? { metadata: { ...opts.metadata } } : {}), ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}) };
    return {
      uploadPart: async (partNumber, body) => {
        hashInOrder(partNumber, body);
        await upload.uploadPart(partNumber, body);
      },
      abort: () => upload.abort(),
      complete: () =>
        this.change(key, async () => {
          if (early.size > 0) throw new StorageError('Io', `${this.location}${key}: part ${hashed + 1} was never sent`, { location: this.location, key });
          const sha256 = hash.digest('hex');
          if (await blobStored(this.store, this.catalog.teamId, sha256, size, this.known)) {
            await upload.abort().catch(() => undefined);
          } else {
            await upload.complete();
            const blob = blobKey(this.catalog.teamId, sha256);
            try {
              if (size <= MAX_COPY_BYTES) await this.store.copy(tmpKey, blob, { sourceSize: size });
              else await this.store.write(blob, { stream: await this.store.stream(tmpKey), size });
            } finally {
              await this.store.delete(tmpKey).catch(() => undefined);
            }
            this.known.add(sha256);
          }
          return this.recordFile(key, size, sha256, attrs);
        }),
    };
  }

  invalidKeyReason(key: string): string | undefined {
    for (const seg of key.split('/')) {
      if (seg === '.' || seg === '..') return `"${seg}" cannot be a name in a dataset version`;
      if (Buffer.byteLength(seg) > 255) return 'a name is longer than 255 bytes';
    }
    return undefined;
  }
}
