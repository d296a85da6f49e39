// An S3 bucket (under a prefix) as a read-write directory tree, write-through.
//
// Reading: metadata from delimited listings with a short TTL (metadata.ts); bytes through the shared cache
// keyed by (location, key, ETag) and fetched with If-Match, so one open file never mixes two versions of
// an object. The kernel keeps its page cache across opens only while the ETag it was filled from holds.
//
// Writing: a file opened for writing is staged in a local file (staged-file.ts); close() and fsync()
// return once the bucket holds the bytes (uploads.ts), so success means durable in the bucket. What S3
// cannot do atomically is refused with a clear errno: renaming a directory (EXDEV: `mv` then copies), and
// renaming an object above CopyObject's 5 GiB limit (EXDEV too). chmod/chown are accepted and ignored (the
// bucket has no owners); an mtime set by touch lasts until the next listing (S3 keeps its own time).
import { constants as fsConstants } from 'node:fs';
import { FsError } from '../../fuse/errors.js';
import type {
  Attr,
  AttrReply,
  DirEntry,
  Entry,
  Filesystem,
  OpenReply,
  RequestContext,
  SetattrChanges,
} from '../../fuse/filesystem.js';
import { ROOT_INO } from '../../fuse/filesystem.js';
import { changedInStore, fsFailure, toFsError } from '../errno.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import { BucketMetadata, badName, childKey, metaOf, splitKey, type Child, type ObjectMeta } from './metadata.js';
import type { BackoffOptions } from '../../storage/backoff.js';
import { partMemory, Uploader, type StagedFile, type Staging, type UploadQueue, type UploadStatus } from '../../upload/index.js';

/** The part of the cache a bucket view needs (src/cache's Cache satisfies it). */
export interface ObjectCache {
  open(
    identity: { kind: 'object'; location: string; key: string; etag: string; versionId?: string },
    source: { store: ObjectStore; key: string; size: number; ifMatch: string; versionId?: string },
  ): Promise<{ read(offset: number, length: number): Promise<Buffer>; completePath(): string | undefined; close(): void }>;
}

export interface BucketViewOptions {
  store: ObjectStore;
  cache: ObjectCache;
  /**
   * The process's write-through machinery (src/upload); absent: read-only (EROFS). A view given only a
   * staging directory (a test or bench mounting one view) makes an uploader of its own, whose part budget
   * it shares with no other view.
   */
  write?: ({ uploader: Uploader } | { stagingDir: string }) & { retryBackoff?: BackoffOptions };
  /** How long metadata is trusted, here and in the kernel. */
  metadataTtlMs: number;
  uid?: number;
  gid?: number;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** CopyObject's limit: larger objects cannot be renamed server-side in one request. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
const READDIR_BATCH = 1024;

interface Node {
  ino: number;
  /** Store-relative key without a trailing '/'; '' for the view's root. */
  key: string;
  kind: 'file' | 'dir';
  meta?: ObjectMeta;
  /** When meta was last confirmed (ms). */
  metaAt: number;
  /** The ETag of the bytes the kernel's page cache may hold for this inode. */
  pageCacheEtag?: string;
  /**
   * Its name is gone (unlinked, or replaced by a rename) while the kernel may still hold it open: it keeps
   * its last attributes, and `orphan` holds its staged bytes if it was being written, as on a local disk.
   */
  unlinked?: boolean;
  orphan?: StagedFile;
}

type Handle =
  | { kind: 'object'; node: Node; content: { read(offset: number, length: number): Promise<Buffer>; close(): void } }
  | { kind: 'staged'; node: Node; file: StagedFile; writable: boolean };

export class BucketView implements Filesystem {
  private readonly store: ObjectStore;
  private readonly meta: BucketMetadata;
  private readonly uploads: UploadQueue | undefined = undefined;
  private readonly staging: Staging | undefined = undefined;
  private readonly ttlSec: number;
  private readonly byIno = new Map<number, Node>();
  private readonly byKey = new Map<string, Node>();
  /** Files being written or waiting for upload, by key: they are the truth for their key until uploaded. */
  private readonly staged = new Map<string, StagedFile>();
  /** Files being copied into staging for writing, by key (single-flight). */
  private readonly stagingNow = new Map<string, Promise<StagedFile>>();
  private readonly handles = new Map<number, Handle>();
  private readonly listings = new Map<number, [string, Child][]>();
  private nextIno = ROOT_INO + 1;
  private nextFh = 1;
  private readonly createdAt = Date.now();

  constructor(private readonly opts: BucketViewOptions) {
    this.store = opts.store;
    if (opts.write) {
      const w = opts.write;
      const uploader = 'uploader' in w ? w.uploader : new Uploader({ stagingDir: w.stagingDir, ...partMemory() });
      this.staging = uploader.staging;
      this.uploads = uploader.queueFor(opts.store, {
        onUploaded: (file, info) => this.onUploaded(file, info),
        onIdle: (file) => this.onIdle(file),
        ...(w.retryBackoff ? { backoff: w.retryBackoff } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
    }
    this.ttlSec = opts.metadataTtlMs / 1000;
    this.meta = new BucketMetadata(opts.store, {
      ttlMs: opts.metadataTtlMs,
      onSkippedKey: (key, why) => opts.log?.warn({ key, why }, 'bucket key not shown'),
    });
    const root: Node = { ino: ROOT_INO, key: '', kind: 'dir', metaAt: 0 };
    this.byIno.set(ROOT_INO, root);
    this.byKey.set('', root);
  }

  get readOnly(): boolean {
    return this.uploads === undefined;
  }

  /** Takes over uploads an earlier run left pending for this bucket: they show and upload as usual. */
  async start(): Promise<void> {
    for (const file of (await this.uploads?.recover()) ?? []) {
      this.staged.set(file.key, file);
    }
  }

  /** Files not yet in the bucket (for `gradient status`). */
  uploadStatus(): UploadStatus[] {
    return this.uploads?.status() ?? [];
  }

  /** Tries pending uploads once more (daemon stop); resolves with how many are still not in the bucket. */
  async drain(timeoutMs: number): Promise<number> {
    return this.uploads ? this.uploads.drain(timeoutMs) : 0;
  }

  /** Files open through this view. */
  get openHandles(): number {
    return this.handles.size;
  }

  /** The view is gone for good (daemon stop, retired): stop retries and let go of files and cache entries. */
  close(): void {
    this.uploads?.close();
    for (const h of this.handles.values()) if (h.kind === 'object') h.content.close();
    this.handles.clear();
    for (const file of this.staged.values()) {
      // Bytes not in the bucket stay on disk, journaled when a close() asked for them.
      if (file.dirty) void file.closeFile();
      else void file.remove();
    }
    this.staged.clear();
  }

  // -------------------------------------------------- nodes and attributes

  private node(ino: number): Node {
    const n = this.byIno.get(ino);
    if (!n) throw new FsError('ENOENT');
    return n;
  }

  private dirNode(ino: number): Node {
    const n = this.node(ino);
    if (n.kind !== 'dir') throw new FsError('ENOTDIR');
    return n;
  }

  /** The node for a key, created or refreshed from what the bucket (or our staging) says it is. */
  private nodeFor(key: string, child: Child): Node {
    let n = this.byKey.get(key);
    if (!n || n.kind !== child.kind) {
      n = { ino: this.nextIno++, key, kind: child.kind, metaAt: 0 };
      this.byIno.set(n.ino, n);
      this.byKey.set(key, n);
    }
    if (child.kind === 'file') {
      n.meta = { size: child.size, etag: child.etag, mtimeMs: child.mtimeMs };
      n.metaAt = Date.now();
    }
    return n;
  }

  private attr(n: Node): Attr {
    const uid = this.opts.uid ?? 0;
    const gid = this.opts.gid ?? 0;
    if (n.kind === 'dir') {
      return { ino: n.ino, size: 4096, mode: this.readOnly ? 0o040555 : 0o040777, nlink: 2, uid, gid, mtimeMs: this.createdAt };
    }
    const s = this.stagedOf(n);
    const size = s ? s.size : (n.meta?.size ?? 0);
    const mtimeMs = s ? s.mtimeMs : (n.meta?.mtimeMs ?? this.createdAt);
    return { ino: n.ino, size, mode: this.readOnly ? 0o100444 : 0o100666, nlink: 1, uid, gid, mtimeMs, blksize: 1 << 20 };
  }

  /** The staged bytes an inode shows, if it is being written or waits for upload. */
  private stagedOf(n: Node): StagedFile | undefined {
    return n.unlinked ? n.orphan : this.staged.get(n.key);
  }

  /** A name goes away: the kernel may still hold the inode open (fstat, reads and writes go on). */
  private unlinkNode(key: string, orphan: StagedFile | undefined): void {
    const n = this.byKey.get(key);
    if (!n) return;
    this.byKey.delete(key);
    n.unlinked = true;
    if (orphan) n.orphan = orphan;
  }

  private entry(n: Node): Entry {
    // Files being written change under the kernel: let it ask again at every stat.
    const ttl = this.stagedOf(n) ? 0 : this.ttlSec;
    return { attr: this.attr(n), entryTtl: ttl, attrTtl: ttl };
  }

  /** Re-reads a file's metadata once it is older than the TTL. */
  private async fresh(n: Node): Promise<Node> {
    if (n.kind === 'dir' || n.ino === ROOT_INO || n.unlinked || this.staged.has(n.key)) return n;
    if (Date.now() - n.metaAt < this.opts.metadataTtlMs) return n;
    const { dir, name } = splitKey(n.key);
    const child = await this.guard(() => this.meta.lookup(dir, name), n.key);
    if (!child || child.kind !== n.kind) throw new FsError('ENOENT');
    return this.nodeFor(n.key, child);
  }

  // -------------------------------------------------- lookups and listings

  /**
   * The key for a name the kernel sent us. A name no listing would show (over 255 bytes; '', '.', '..' and
   * NUL never come from the kernel) or a key longer than the store can hold is refused here, so that nothing
   * is created that would vanish from the listing or fail every upload. `suffix`: a directory's marker '/'.
   */
  private keyOf(dir: Node, name: string, suffix = ''): string {
    const why = badName(name);
    if (why) throw new FsError(Buffer.byteLength(name) > 255 ? 'ENAMETOOLONG' : 'EINVAL', `${why}: ${JSON.stringify(name.slice(0, 64))}`);
    const key = childKey(dir.key, name);
    const tooLong = this.store.invalidKeyReason?.(key + suffix);
    if (tooLong) throw new FsError('ENAMETOOLONG', tooLong);
    return key;
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const dir = this.dirNode(parent);
    const key = this.keyOf(dir, name);
    if (this.staged.has(key)) return this.entry(this.byKey.get(key) ?? this.nodeFor(key, this.stagedChild(key)));
    const child = await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!child) throw new FsError('ENOENT');
    return this.entry(this.nodeFor(key, child));
  }

  private stagedChild(key: string): Child {
    const s = this.staged.get(key)!;
    return { kind: 'file', size: s.size, etag: '', mtimeMs: s.mtimeMs };
  }

  async getattr(_ctx: RequestContext, ino: number): Promise<AttrReply> {
    const n = await this.fresh(this.node(ino));
    return { attr: this.attr(n), ttl: this.entry(n).attrTtl };
  }

  async opendir(_ctx: RequestContext, ino: number): Promise<OpenReply> {
    this.dirNode(ino);
    const fh = this.nextFh++;
    this.listings.set(fh, []);
    return { fh };
  }

  async readdir(_ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    const dir = this.dirNode(ino);
    let children = this.listings.get(fh);
    if (!children || offset === 0) {
      children = await this.snapshot(dir);
      this.listings.set(fh, children);
    }
    const dirMode = this.readOnly ? 0o040555 : 0o040777;
    const out: DirEntry[] = [];
    if (offset === 0) out.push({ name: '.', ino, mode: dirMode, nextOffset: 1 });
    if (offset <= 1) out.push({ name: '..', ino: this.byKey.get(splitKey(dir.key).dir)?.ino ?? ROOT_INO, mode: dirMode, nextOffset: 2 });
    const start = Math.max(0, offset - 2);
    const end = Math.min(children.length, start + READDIR_BATCH);
    for (let i = start; i < end; i++) {
      const [name, child] = children[i]!;
      const n = this.nodeFor(childKey(dir.key, name), child);
      const e = this.entry(n);
      const d: DirEntry = { name, ino: n.ino, mode: e.attr.mode, nextOffset: i + 3 };
      if (plus) d.entry = e;
      out.push(d);
    }
    return out;
  }

  /** One listing of the directory, plus files staged in it that the bucket does not have yet. */
  private async snapshot(dir: Node): Promise<[string, Child][]> {
    const listed = await this.guard(() => this.meta.list(dir.key), dir.key);
    const out = [...listed.entries()];
    for (const [key, s] of this.staged) {
      const { dir: parent, name } = splitKey(key);
      if (parent === dir.key && !s.abandoned && !listed.has(name)) out.push([name, this.stagedChild(key)]);
    }
    return out;
  }

  async releasedir(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    this.listings.delete(fh);
  }

  forget(ino: number): void {
    const n = this.byIno.get(ino);
    if (!n || ino === ROOT_INO) return;
    this.byIno.delete(ino);
    if (this.byKey.get(n.key) === n) this.byKey.delete(n.key);
  }

  // -------------------------------------------------- open, read, write, close

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    const n = this.node(ino);
    if (n.kind === 'dir') throw new FsError('EISDIR');
    const writable = (flags & 3) !== fsConstants.O_RDONLY;
    const truncate = (flags & fsConstants.O_TRUNC) !== 0;
    if ((writable || truncate) && this.readOnly) throw new FsError('EROFS');
    let file = this.staged.get(n.key);
    if (!writable && !truncate) return file ? this.openStaged(n, file, false) : this.openObject(n);
    if (!file) file = await this.stage(n, truncate);
    else if (truncate) await file.truncate(0);
    return this.openStaged(n, file, writable);
  }

  private async openObject(n: Node): Promise<OpenReply> {
    await this.fresh(n);
    const meta = n.meta;
    if (!meta) throw new FsError('ENOENT');
    if (meta.etag === '') throw fsFailure('EIO', `${this.store.location}${n.key} has no ETag: it cannot be cached safely`, this.opts.log);
    const content = await this.guard(
      () =>
        this.opts.cache.open(
          { kind: 'object', location: this.store.location, key: n.key, etag: meta.etag },
          { store: this.store, key: n.key, size: meta.size, ifMatch: meta.etag },
        ),
      n.key,
    );
    const fh = this.nextFh++;
    this.handles.set(fh, { kind: 'object', node: n, content });
    // Keep the kernel's pages only if they were filled from these very bytes.
    const reply: OpenReply = { fh, keepCache: n.pageCacheEtag === meta.etag };
    n.pageCacheEtag = meta.etag;
    const backing = content.completePath();
    if (backing) reply.backingPath = backing;
    return reply;
  }

  private openStaged(n: Node, file: StagedFile, writable: boolean): OpenReply {
    file.refs++;
    n.pageCacheEtag = undefined;
    const fh = this.nextFh++;
    this.handles.set(fh, { kind: 'staged', node: n, file, writable });
    // Writes land in the staging file from the engine's C threads (written() reports them), and skip the
    // kernel's page cache: a second copy of the bytes that only costs memory. Reads of a staged file skip
    // it too, so that no handle can see pages that predate a write.
    return writable ? { fh, writeFd: file.fd, directIo: true } : { fh, directIo: true };
  }

  /** Stages a file for writing: empty (create, O_TRUNC) or holding the object's current bytes. */
  private stage(n: Node, empty: boolean): Promise<StagedFile> {
    const key = n.key;
    let p = this.stagingNow.get(key);
    if (!p) {
      p = (async () => {
        const staging = this.staging!;
        let file: StagedFile;
        if (empty || !n.meta || n.meta.size === 0) {
          file = await staging.create(key);
          if (empty) await file.truncate(0); // an emptied object is a change to upload
        } else {
          file = await this.guard(async () => staging.copyOf(key, await this.store.stream(key)), key);
        }
        this.staged.set(key, file);
        return file;
      })().finally(() => this.stagingNow.delete(key));
      this.stagingNow.set(key, p);
    }
    return p;
  }

  async read(_ctx: RequestContext, _ino: number, fh: number, offset: number, size: number): Promise<Buffer> {
    const h = this.handle(fh);
    if (h.kind === 'staged') return h.file.read(offset, size);
    try {
      return await h.content.read(offset, size);
    } catch (err) {
      if (changedInStore(err)) {
        // Changed in the bucket since open: never hand out a mix of two versions.
        h.node.metaAt = 0;
        this.meta.forget(h.node.key);
        throw fsFailure('EIO', `${this.store.location}${h.node.key} changed in the bucket while open: reopen it`, this.opts.log);
      }
      throw this.mapError(err, h.node.key);
    }
  }

  async write(_ctx: RequestContext, _ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    const file = this.writing(fh);
    if (!file) throw new FsError('EBADF');
    return file.write(offset, data);
  }

  written(_ino: number, fh: number, offset: number, length: number): void {
    this.writing(fh)?.wrote(offset, length);
  }

  /** The staged file a write through `fh` changes (its parts start going up from the first write), if any. */
  private writing(fh: number): StagedFile | undefined {
    const h = this.handles.get(fh);
    if (h?.kind !== 'staged' || !h.writable) return undefined;
    this.uploads?.startEagerUpload(h.file);
    return h.file;
  }

  async flush(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (h?.kind === 'staged' && h.writable) await this.upload(h.file);
  }

  async fsync(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (h?.kind === 'staged') await this.upload(h.file);
  }

  async release(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    if (h.kind === 'object') {
      h.content.close();
      return;
    }
    const file = h.file;
    file.refs--;
    if (file.refs > 0) return;
    if (file.abandoned || (!file.dirty && !file.inflight)) await this.drop(file);
    else this.uploads?.keepTrying(file);
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  /** Waits until the bucket holds the file's bytes; an error is close()'s and fsync()'s answer. */
  private async upload(file: StagedFile): Promise<void> {
    try {
      await this.uploads!.sync(file);
    } catch (err) {
      throw this.mapError(err, file.key, 'upload failed; the data is kept and retried');
    }
  }

  /** Called by Uploads once the bucket holds a file. */
  private onUploaded(file: StagedFile, info: ObjectInfo): void {
    if (file.abandoned) return;
    const meta = metaOf(info);
    this.meta.putFile(file.key, meta);
    const n = this.byKey.get(file.key);
    if (n?.kind === 'file') {
      n.meta = meta;
      n.metaAt = Date.now();
    }
  }

  /** Called by Uploads when a released file has nothing left to upload. */
  private onIdle(file: StagedFile): void {
    if (file.refs === 0) void this.drop(file);
  }

  private async drop(file: StagedFile): Promise<void> {
    if (this.staged.get(file.key) === file) this.staged.delete(file.key);
    this.uploads?.stopTracking(file);
    await file.remove();
  }

  // -------------------------------------------------- changes to the tree

  private writable(): UploadQueue {
    if (!this.uploads) throw new FsError('EROFS');
    return this.uploads;
  }

  async setattr(_ctx: RequestContext, ino: number, changes: SetattrChanges): Promise<AttrReply> {
    const n = this.node(ino);
    if (n.kind === 'file' && changes.size !== undefined) {
      this.writable();
      const h = changes.fh === undefined ? undefined : this.handles.get(changes.fh);
      if (h?.kind === 'staged' && h.writable) {
        await h.file.truncate(changes.size);
      } else {
        // truncate(2) by path: no close() will follow, so the change goes to the bucket now.
        const file = this.staged.get(n.key) ?? (await this.stage(n, changes.size === 0));
        file.refs++;
        try {
          await file.truncate(changes.size);
          await this.upload(file);
        } finally {
          file.refs--;
          if (file.refs === 0 && !file.dirty) await this.drop(file);
        }
      }
    }
    if (changes.mtimeMs !== undefined && n.kind === 'file') {
      const s = this.stagedOf(n);
      if (s) s.mtimeMs = changes.mtimeMs;
      else if (n.meta) n.meta.mtimeMs = changes.mtimeMs;
    }
    return { attr: this.attr(n), ttl: this.entry(n).attrTtl };
  }

  async create(_ctx: RequestContext, parent: number, name: string, _mode: number, flags: number): Promise<{ entry: Entry; open: OpenReply }> {
    this.writable();
    const dir = this.dirNode(parent);
    const key = this.keyOf(dir, name);
    const existing = this.staged.get(key);
    if (existing) {
      if (flags & fsConstants.O_EXCL) throw new FsError('EEXIST');
      await existing.truncate(0);
    } else {
      const file = await this.staging!.create(key);
      await file.truncate(0); // even an empty new file is uploaded at close
      this.staged.set(key, file);
    }
    const file = this.staged.get(key)!;
    const n = this.nodeFor(key, this.stagedChild(key));
    return { entry: this.entry(n), open: this.openStaged(n, file, (flags & 3) !== fsConstants.O_RDONLY) };
  }

  async mkdir(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    this.writable();
    const dir = this.dirNode(parent);
    const key = this.keyOf(dir, name, '/');
    if (this.staged.has(key) || (await this.guard(() => this.meta.lookup(dir.key, name), key))) throw new FsError('EEXIST');
    // A zero-byte `name/` marker: the directory exists while empty, as in the S3 console.
    await this.guard(() => this.store.write(`${key}/`, ''), key);
    this.meta.createdDir(key);
    return this.entry(this.nodeFor(key, { kind: 'dir' }));
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.writable();
    const dir = this.dirNode(parent);
    const key = childKey(dir.key, name);
    const child = await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!child) throw new FsError('ENOENT');
    if (child.kind !== 'dir') throw new FsError('ENOTDIR');
    for (const [k, s] of this.staged) if (k.startsWith(`${key}/`) && !s.abandoned) throw new FsError('ENOTEMPTY');
    await this.guard(async () => {
      for await (const page of this.store.list(`${key}/`, { delimiter: '/', maxKeys: 2 })) {
        if (page.prefixes.length > 0 || page.objects.some((o) => o.key !== `${key}/`)) throw new FsError('ENOTEMPTY');
        break;
      }
      await this.store.delete(`${key}/`);
    }, key);
    this.meta.removed(key);
    this.byKey.delete(key);
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    this.writable();
    const dir = this.dirNode(parent);
    const key = childKey(dir.key, name);
    const file = this.staged.get(key);
    const child = file ? undefined : await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!file && !child) throw new FsError('ENOENT');
    if (child?.kind === 'dir') throw new FsError('EISDIR');
    if (file) await this.discard(file);
    // Deleting a key that was never uploaded is harmless: S3 deletes are idempotent.
    await this.guard(() => this.store.delete(key), key);
    this.meta.removed(key);
    this.unlinkNode(key, file);
  }

  /** A staged file whose name is gone: no more uploads; its bytes live on for handles still open. */
  private async discard(file: StagedFile): Promise<void> {
    file.abandoned = true;
    await file.inflight?.catch(() => undefined); // else a late upload would resurrect the object
    if (this.staged.get(file.key) === file) this.staged.delete(file.key);
    this.uploads?.stopTracking(file);
    if (file.refs === 0) await file.remove();
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    this.writable();
    if (flags & 2 /* RENAME_EXCHANGE */) throw new FsError('EINVAL');
    const from = childKey(this.dirNode(parent).key, name);
    const to = this.keyOf(this.dirNode(newParent), newName);
    if (from === to) return;
    const file = this.staged.get(from);
    const src = file ? this.stagedChild(from) : await this.guard(() => this.meta.lookup(splitKey(from).dir, name), from);
    if (!src) throw new FsError('ENOENT');
    if (src.kind === 'dir') throw new FsError('EXDEV', 'directories are not renamed in place on S3: mv copies them instead');
    const dstStaged = this.staged.get(to);
    const dst = dstStaged ? this.stagedChild(to) : await this.guard(() => this.meta.lookup(splitKey(to).dir, newName), to);
    if (dst && flags & 1 /* RENAME_NOREPLACE */) throw new FsError('EEXIST');
    if (dst?.kind === 'dir') throw new FsError('EISDIR');
    if (dstStaged) await this.discard(dstStaged);
    const replaced = this.byKey.get(to);

    if (file) {
      // Send the staged bytes to the new key directly, then delete the old key (idempotent if never uploaded).
      this.staged.delete(from);
      file.cancelEagerUpload(); // its parts went to the old key
      file.key = to;
      this.staged.set(to, file);
      file.generation++; // make sure the new key gets the bytes even if nothing changed since the last upload
      await this.upload(file);
      await this.guard(() => this.store.delete(from), from);
    } else {
      if (src.kind === 'file' && src.size > MAX_COPY_BYTES) {
        throw new FsError('EXDEV', 'objects over 5 GiB cannot be copied server-side in one request: mv copies them instead');
      }
      const info = await this.guard(() => this.store.copy(from, to), from);
      await this.guard(() => this.store.delete(from), from);
      this.meta.putFile(to, metaOf(info));
    }
    this.meta.removed(from);
    const n = this.byKey.get(from);
    this.byKey.delete(from);
    if (replaced && replaced !== n) this.unlinkNode(to, dstStaged);
    if (n) {
      n.key = to;
      n.metaAt = 0;
      this.byKey.set(to, n);
    }
  }

  // -------------------------------------------------- errors

  /** Runs a storage call, turning its failure into an errno (logged when it is an I/O error). */
  private async guard<T>(fn: () => Promise<T>, key: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(err, key);
    }
  }

  private mapError(err: unknown, key: string, what = 'bucket request failed'): FsError {
    return toFsError(err, { key, what, log: this.opts.log });
  }
}
