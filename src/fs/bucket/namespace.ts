// A bucket (under a prefix) as a tree of named files and directories, write-through. It owns the nodes, the
// files being written (staged, until the bucket holds them), and every change to the bucket together with
// the metadata update that keeps our view of it coherent: no mutation can forget its update. It knows
// nothing of FUSE requests; bucket-view.ts adapts it to the kernel.
//
// Reading: metadata from delimited listings with a short TTL (metadata.ts); bytes through the shared cache
// keyed by (location, key, ETag) and fetched with If-Match, so one open file never mixes two versions of
// an object.
//
// Writing: a file opened for writing is staged in a local file (src/upload); sync() returns once the bucket
// holds the bytes, so a successful close() means durable in the bucket. What S3 cannot do atomically is
// refused with a clear errno: renaming a directory (EXDEV: `mv` then copies), and renaming an object above
// CopyObject's 5 GiB limit (EXDEV too). An mtime set by touch lasts until the next listing (S3 keeps its own).
import { FsError } from '../../fuse/errors.js';
import { ROOT_INO } from '../../fuse/filesystem.js';
import type { BackoffOptions } from '../../storage/backoff.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import type { StagedFile, Staging, Uploader, UploadQueue, UploadStatus } from '../../upload/index.js';
import type { CachedBytes, ObjectCache } from '../content.js';
import { changedInStore, fsFailure, toFsError } from '../errno.js';
import { BucketMetadata, badName, childKey, metaOf, splitKey, type Child } from './metadata.js';
import { NodeTable, type BucketNode } from './nodes.js';

export interface BucketNamespaceOptions {
  store: ObjectStore;
  cache: ObjectCache;
  /** How long metadata is trusted. */
  metadataTtlMs: number;
  /** Write-through (src/upload); absent: read-only (EROFS). */
  write?: { uploader: Uploader; retryBackoff?: BackoffOptions };
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** What a node is, as far as the bucket and our staging know. */
export interface NodeStat {
  ino: number;
  kind: 'file' | 'dir';
  size: number;
  /** undefined: not known (a directory, or a file never listed) */
  mtimeMs: number | undefined;
  /** Its bytes are staged here: they change under the kernel (written, truncated) until uploaded. */
  staged: boolean;
}

/** An open file: an object read through the cache, or a staged file (shared by every handle on its key). */
export type OpenFile =
  | { kind: 'object'; node: BucketNode; etag: string; bytes: CachedBytes }
  | { kind: 'staged'; node: BucketNode; file: StagedFile };

export type { BucketNode };

/** CopyObject's limit: larger objects cannot be renamed server-side in one request. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

export class BucketNamespace {
  private readonly store: ObjectStore;
  private readonly meta: BucketMetadata;
  private readonly nodes = new NodeTable();
  private readonly uploads: UploadQueue | undefined;
  private readonly staging: Staging | undefined;
  /** Files being written or waiting for upload, by key: they are the truth for their key until uploaded. */
  private readonly staged = new Map<string, StagedFile>();
  /** Objects being copied into staging to be written, by key (one copy however many open them at once). */
  private readonly beingStaged = new Map<string, Promise<StagedFile>>();

  constructor(private readonly opts: BucketNamespaceOptions) {
    this.store = opts.store;
    this.meta = new BucketMetadata(opts.store, {
      ttlMs: opts.metadataTtlMs,
      onSkippedKey: (key, why) => opts.log?.warn({ key, why }, 'bucket key not shown'),
    });
    const write = opts.write;
    this.staging = write?.uploader.staging;
    this.uploads = write?.uploader.queueFor(opts.store, {
      onUploaded: (file, info) => this.uploaded(file, info),
      onIdle: (file) => this.idle(file),
      ...(write.retryBackoff ? { backoff: write.retryBackoff } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get readOnly(): boolean {
    return this.uploads === undefined;
  }

  /** Takes over uploads an earlier run left pending for this bucket: they show and upload as usual. */
  async start(): Promise<void> {
    for (const file of (await this.uploads?.recover()) ?? []) this.staged.set(file.key, file);
  }

  /** Files not yet in the bucket (for `gradient status`). */
  uploadStatus(): UploadStatus[] {
    return this.uploads?.status() ?? [];
  }

  /** Tries pending uploads once more (daemon stop); resolves with how many are still not in the bucket. */
  async drain(timeoutMs: number): Promise<number> {
    return this.uploads ? this.uploads.drain(timeoutMs) : 0;
  }

  /** The namespace is gone for good (daemon stop, retired): stop retries and let go of staged files. */
  close(): void {
    this.uploads?.close();
    for (const file of this.staged.values()) {
      // Bytes not in the bucket stay on disk, journaled when a close() asked for them.
      if (file.dirty) void file.closeFile();
      else void file.remove();
    }
    this.staged.clear();
  }

  // -------------------------------------------------- nodes

  node(ino: number): BucketNode {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError('ENOENT');
    return n;
  }

  nodeIf(ino: number): BucketNode | undefined {
    return this.nodes.get(ino);
  }

  /** The node of a key, looked up from the root down (after a takeover: a node an earlier process handed out). */
  async find(key: string): Promise<BucketNode> {
    const known = this.nodes.withKey(key);
    if (known) return known;
    let n = this.node(ROOT_INO);
    for (const name of key.split('/')) {
      if (n.kind !== 'dir') throw new FsError('ENOTDIR');
      n = await this.lookup(n, name);
    }
    return n;
  }

  /**
   * After a takeover: the staged file an earlier process's handle wrote to, found by its id. Its bytes may be in no
   * bucket yet (a writer that has not closed), so it is the truth for its key again, as it was.
   */
  async adoptStaged(key: string, id: string): Promise<void> {
    if (!this.staging || this.staged.has(key)) return;
    let p = this.beingStaged.get(key);
    if (!p) {
      p = (async () => {
        const file = await this.staging!.reopen(key, id);
        this.staged.set(key, file);
        this.nodes.upsert(key, this.stagedChild(key));
        return file;
      })().finally(() => this.beingStaged.delete(key));
      this.beingStaged.set(key, p);
    }
    await p;
  }

  dirNode(ino: number): BucketNode {
    const n = this.node(ino);
    if (n.kind !== 'dir') throw new FsError('ENOTDIR');
    return n;
  }

  /** The inode of a directory's parent. */
  parentIno(dir: BucketNode): number {
    return this.nodes.withKey(splitKey(dir.key).dir)?.ino ?? ROOT_INO;
  }

  stat(n: BucketNode): NodeStat {
    if (n.kind === 'dir') return { ino: n.ino, kind: 'dir', size: 4096, mtimeMs: undefined, staged: false };
    const s = this.stagedOf(n);
    if (s) return { ino: n.ino, kind: 'file', size: s.size, mtimeMs: s.mtimeMs, staged: true };
    return { ino: n.ino, kind: 'file', size: n.meta?.size ?? 0, mtimeMs: n.meta?.mtimeMs, staged: false };
  }

  /** The staged bytes an inode shows, if it is being written or waits for upload. */
  private stagedOf(n: BucketNode): StagedFile | undefined {
    return n.unlinked ? n.orphan : this.staged.get(n.key);
  }

  /** A file's metadata, asked again once it is older than the TTL. */
  async refresh(n: BucketNode): Promise<BucketNode> {
    if (n.kind === 'dir' || n.ino === ROOT_INO || n.unlinked || this.staged.has(n.key)) return n;
    if (Date.now() - n.metaAt < this.opts.metadataTtlMs) return n;
    const { dir, name } = splitKey(n.key);
    const child = await this.guard(() => this.meta.lookup(dir, name), n.key);
    if (!child || child.kind !== n.kind) throw new FsError('ENOENT');
    return this.nodes.upsert(n.key, child);
  }

  forget(ino: number): void {
    this.nodes.forget(ino);
  }

  /**
   * The key for a name the kernel sent us. A name no listing would show (over 255 bytes; '', '.', '..' and
   * NUL never come from the kernel) or a key longer than the store can hold is refused here, so that nothing
   * is created that would vanish from the listing or fail every upload. `suffix`: a directory's marker '/'.
   */
  private keyOf(dir: BucketNode, name: string, suffix = ''): string {
    const why = badName(name);
    if (why) throw new FsError(Buffer.byteLength(name) > 255 ? 'ENAMETOOLONG' : 'EINVAL', `${why}: ${JSON.stringify(name.slice(0, 64))}`);
    const key = childKey(dir.key, name);
    const tooLong = this.store.invalidKeyReason?.(key + suffix);
    if (tooLong) throw new FsError('ENAMETOOLONG', tooLong);
    return key;
  }

  async lookup(dir: BucketNode, name: string): Promise<BucketNode> {
    const key = this.keyOf(dir, name);
    if (this.staged.has(key)) return this.nodes.withKey(key) ?? this.nodes.upsert(key, this.stagedChild(key));
    const child = await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!child) throw new FsError('ENOENT');
    return this.nodes.upsert(key, child);
  }

  private stagedChild(key: string): Child {
    const s = this.staged.get(key)!;
    return { kind: 'file', size: s.size, etag: '', mtimeMs: s.mtimeMs };
  }

  /** One listing of the directory, plus files staged in it that the bucket does not have yet. */
  async list(dir: BucketNode): Promise<[string, Child][]> {
    const listed = await this.guard(() => this.meta.list(dir.key), dir.key);
    const out = [...listed.entries()];
    for (const [key, s] of this.staged) {
      const { dir: parent, name } = splitKey(key);
      if (parent === dir.key && !s.abandoned && !listed.has(name)) out.push([name, this.stagedChild(key)]);
    }
    return out;
  }

  /** The node of a listed child (list()). */
  child(dir: BucketNode, name: string, child: Child): BucketNode {
    return this.nodes.upsert(childKey(dir.key, name), child);
  }

  // -------------------------------------------------- open files

  /**
   * Opens a file. Reading: the staged bytes if it is being written, else the object through the cache.
   * Writing or truncating: its staged file, made first from the object's bytes (or empty when truncating).
   */
  async open(n: BucketNode, how: { write: boolean; truncate: boolean }): Promise<OpenFile> {
    if (n.kind === 'dir') throw new FsError('EISDIR');
    if (how.write || how.truncate) this.writable();
    let file = this.staged.get(n.key);
    if (!how.write && !how.truncate && !file) return this.openObject(n);
    if (!file) file = await this.stage(n, how.truncate);
    else if (how.truncate) await file.truncate(0);
    return this.openStaged(n, file);
  }

  private async openObject(n: BucketNode): Promise<OpenFile> {
    await this.refresh(n);
    const meta = n.meta;
    if (!meta) throw new FsError('ENOENT');
    if (meta.etag === '') throw fsFailure('EIO', `${this.store.location}${n.key} has no ETag: it cannot be cached safely`, this.opts.log);
    const bytes = await this.guard(
      () =>
        this.opts.cache.open(
          { kind: 'object', location: this.store.location, key: n.key, etag: meta.etag },
          { store: this.store, key: n.key, size: meta.size, ifMatch: meta.etag },
        ),
      n.key,
    );
    return { kind: 'object', node: n, etag: meta.etag, bytes };
  }

  private openStaged(n: BucketNode, file: StagedFile): OpenFile {
    file.refs++;
    return { kind: 'staged', node: n, file };
  }

  /** Stages a file for writing: empty (create, O_TRUNC) or holding the object's current bytes. */
  private stage(n: BucketNode, empty: boolean): Promise<StagedFile> {
    const key = n.key;
    let p = this.beingStaged.get(key);
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
      })().finally(() => this.beingStaged.delete(key));
      this.beingStaged.set(key, p);
    }
    return p;
  }

  /** Creates (or, unless `exclusive`, empties) a file and opens it. */
  async create(dir: BucketNode, name: string, exclusive: boolean): Promise<OpenFile> {
    this.writable();
    const key = this.keyOf(dir, name);
    let file = this.staged.get(key);
    if (file) {
      if (exclusive) throw new FsError('EEXIST');
      await file.truncate(0);
    } else {
      file = await this.staging!.create(key);
      await file.truncate(0); // even an empty new file is uploaded at close
      this.staged.set(key, file);
    }
    return this.openStaged(this.nodes.upsert(key, this.stagedChild(key)), file);
  }

  async read(f: OpenFile, offset: number, size: number): Promise<Buffer> {
    if (f.kind === 'staged') return f.file.read(offset, size);
    try {
      return await f.bytes.read(offset, size);
    } catch (err) {
      if (changedInStore(err)) {
        // Changed in the bucket since open: never hand out a mix of two versions.
        f.node.metaAt = 0;
        this.meta.invalidate(f.node.key);
        throw fsFailure('EIO', `${this.store.location}${f.node.key} changed in the bucket while open: reopen it`, this.opts.log);
      }
      throw this.mapError(err, f.node.key);
    }
  }

  /** Writes into a staged file; its full parts start going to the bucket from the first write. */
  async write(file: StagedFile, offset: number, data: Buffer): Promise<number> {
    this.uploads?.startEagerUpload(file);
    return file.write(offset, data);
  }

  /** Bytes the engine wrote into a staged file itself (its C write path); as write(), without the bytes. */
  written(file: StagedFile, offset: number, length: number): void {
    this.uploads?.startEagerUpload(file);
    file.wrote(offset, length);
  }

  /** Waits until the bucket holds the file's bytes; an error is close()'s and fsync()'s answer. */
  async sync(file: StagedFile): Promise<void> {
    try {
      await this.uploads!.sync(file);
    } catch (err) {
      throw this.mapError(err, file.key, 'upload failed; the data is kept and retried');
    }
  }

  /** The last use of an open file ended: a staged file goes once nothing is left to upload. */
  async release(f: OpenFile): Promise<void> {
    if (f.kind === 'object') {
      f.bytes.close();
      return;
    }
    const file = f.file;
    file.refs--;
    if (file.refs > 0) return;
    if (file.abandoned || (!file.dirty && !file.inflight)) await this.removeStaged(file);
    else this.uploads?.keepTrying(file);
  }

  /** Truncates a file; through `open` (ftruncate on a writable handle) or by path, uploaded now. */
  async truncate(n: BucketNode, size: number, open?: StagedFile): Promise<void> {
    this.writable();
    if (open) {
      await open.truncate(size);
      return;
    }
    // truncate(2) by path: no close() will follow, so the change goes to the bucket now.
    const file = this.staged.get(n.key) ?? (await this.stage(n, size === 0));
    file.refs++;
    try {
      await file.truncate(size);
      await this.sync(file);
    } finally {
      file.refs--;
      if (file.refs === 0 && !file.dirty) await this.removeStaged(file);
    }
  }

  /** touch: lasts until the next listing (S3 keeps its own LastModified). */
  setMtime(n: BucketNode, mtimeMs: number): void {
    if (n.kind !== 'file') return;
    const s = this.stagedOf(n);
    if (s) s.mtimeMs = mtimeMs;
    else if (n.meta) n.meta.mtimeMs = mtimeMs;
  }

  /** A staged file nothing needs any more (uploaded and released): its local bytes go. */
  private async removeStaged(file: StagedFile): Promise<void> {
    if (this.staged.get(file.key) === file) this.staged.delete(file.key);
    this.uploads?.stopTracking(file);
    await file.remove();
  }

  /** A staged file whose name is gone: no more uploads; its bytes live on for handles still open. */
  private async abandonStaged(file: StagedFile): Promise<void> {
    file.abandoned = true;
    await file.inflight?.catch(() => undefined); // else a late upload would resurrect the object
    if (this.staged.get(file.key) === file) this.staged.delete(file.key);
    this.uploads?.stopTracking(file);
    if (file.refs === 0) await file.remove();
  }

  /** The upload queue finished with a released file (nothing left to upload). */
  private idle(file: StagedFile): void {
    if (file.refs === 0) void this.removeStaged(file);
  }

  // -------------------------------------------------- changes to the tree

  private writable(): void {
    if (!this.uploads) throw new FsError('EROFS');
  }

  async mkdir(dir: BucketNode, name: string): Promise<BucketNode> {
    this.writable();
    const key = this.keyOf(dir, name, '/');
    if (this.staged.has(key) || (await this.guard(() => this.meta.lookup(dir.key, name), key))) throw new FsError('EEXIST');
    await this.putDirMarker(key);
    return this.nodes.upsert(key, { kind: 'dir' });
  }

  async rmdir(dir: BucketNode, name: string): Promise<void> {
    this.writable();
    const key = childKey(dir.key, name);
    const child = await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!child) throw new FsError('ENOENT');
    if (child.kind !== 'dir') throw new FsError('ENOTDIR');
    for (const [k, s] of this.staged) if (k.startsWith(`${key}/`) && !s.abandoned) throw new FsError('ENOTEMPTY');
    if (!(await this.guard(() => this.meta.isEmptyDir(key), key))) throw new FsError('ENOTEMPTY');
    await this.deleteDirMarker(key);
  }

  async unlink(dir: BucketNode, name: string): Promise<void> {
    this.writable();
    const key = childKey(dir.key, name);
    const file = this.staged.get(key);
    const child = file ? undefined : await this.guard(() => this.meta.lookup(dir.key, name), key);
    if (!file && !child) throw new FsError('ENOENT');
    if (child?.kind === 'dir') throw new FsError('EISDIR');
    if (file) await this.abandonStaged(file);
    // Deleting a key that was never uploaded is harmless: S3 deletes are idempotent.
    await this.deleteObject(key);
    this.nodes.unlink(key, file);
  }

  /** Renames a file (a directory is EXDEV: `mv` copies it). `exchange` (RENAME_EXCHANGE) S3 cannot do. */
  async rename(dir: BucketNode, name: string, newDir: BucketNode, newName: string, how: { noReplace: boolean; exchange: boolean }): Promise<void> {
    this.writable();
    if (how.exchange) throw new FsError('EINVAL');
    const from = childKey(dir.key, name);
    const to = this.keyOf(newDir, newName);
    if (from === to) return;
    const file = this.staged.get(from);
    const src = file ? this.stagedChild(from) : await this.guard(() => this.meta.lookup(splitKey(from).dir, name), from);
    if (!src) throw new FsError('ENOENT');
    if (src.kind === 'dir') throw new FsError('EXDEV', 'directories are not renamed in place on S3: mv copies them instead');
    const dstStaged = this.staged.get(to);
    const dst = dstStaged ? this.stagedChild(to) : await this.guard(() => this.meta.lookup(splitKey(to).dir, newName), to);
    if (dst && how.noReplace) throw new FsError('EEXIST');
    if (dst?.kind === 'dir') throw new FsError('EISDIR');
    if (dstStaged) await this.abandonStaged(dstStaged);

    if (file) {
      // Send the staged bytes to the new key directly, then delete the old key (idempotent if never uploaded).
      this.staged.delete(from);
      file.cancelEagerUpload(); // its parts went to the old key
      file.key = to;
      this.staged.set(to, file);
      file.generation++; // make sure the new key gets the bytes even if nothing changed since the last upload
      await this.sync(file);
    } else {
      if (src.kind === 'file' && src.size > MAX_COPY_BYTES) {
        throw new FsError('EXDEV', 'objects over 5 GiB cannot be copied server-side in one request: mv copies them instead');
      }
      await this.copyObject(from, to);
    }
    await this.deleteObject(from);
    this.nodes.move(from, to, dstStaged);
  }

  // -------------------------------------------------- the bucket's changes, each with its metadata update

  /** The upload queue put a staged file's bytes in the bucket. */
  private uploaded(file: StagedFile, info: ObjectInfo): void {
    if (file.abandoned) return;
    const meta = metaOf(info);
    this.meta.putFile(file.key, meta);
    const n = this.nodes.withKey(file.key);
    if (n?.kind === 'file') {
      n.meta = meta;
      n.metaAt = Date.now();
    }
  }

  private async copyObject(from: string, to: string): Promise<void> {
    const info = await this.guard(() => this.store.copy(from, to), from);
    this.meta.putFile(to, metaOf(info));
  }

  private async deleteObject(key: string): Promise<void> {
    await this.guard(() => this.store.delete(key), key);
    this.meta.removed(key);
  }

  /** A zero-byte `name/` marker: the directory exists while empty, as in the S3 console. */
  private async putDirMarker(key: string): Promise<void> {
    await this.guard(() => this.store.write(`${key}/`, ''), key);
    this.meta.createdDir(key);
  }

  private async deleteDirMarker(key: string): Promise<void> {
    await this.guard(() => this.store.delete(`${key}/`), key);
    this.meta.removed(key);
    this.nodes.removeDir(key);
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
