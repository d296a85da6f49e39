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
// CopyObject's 5 GiB limit (EXDEV too).
//
// POSIX attributes (mode, owner, times; posix-metadata.ts) live in each object's user metadata, a directory's
// on its `dir/` marker: a change of them alone is one server-side copy of the object onto itself; a file
// being written takes them with its upload. Symlinks are objects holding their target (mode S_IFLNK), FIFOs
// and sockets empty objects with their mode, as s3fs stores them. Without metadata, the defaults show.
import { FsError } from '../../fuse/errors.js';
import { ROOT_INO } from '../../fuse/filesystem.js';
import type { BackoffOptions } from '../../storage/backoff.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import type { ObjectAttributes, StagedFile, Staging, Uploader, UploadQueue, UploadStatus } from '../../upload/index.js';
import type { CachedBytes, ObjectCache } from '../content.js';
import { changedInStore, fsFailure, storageErrorIn, toFsError } from '../errno.js';
import type { AttributeStore, KnownAttributes } from './attribute-cache.js';
import { BucketMetadata, badName, childKey, metaOf, splitKey, type Child, type ObjectMeta } from './metadata.js';
import { NodeTable, type BucketNode } from './nodes.js';
import {
  afterWrite,
  decodePosix,
  encodePosix,
  msToNs,
  PERMISSION_BITS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type PosixAttrs,
  type UserMetadata,
} from './posix-metadata.js';
import { BucketSiblings } from './siblings.js';

export interface BucketNamespaceOptions {
  store: ObjectStore;
  cache: ObjectCache;
  /** How long metadata is trusted. */
  metadataTtlMs: number;
  /** Write-through (src/upload); absent: read-only (EROFS). */
  write?: { uploader: Uploader; retryBackoff?: BackoffOptions };
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Owner and permission bits of what carries none in its metadata. */
  defaults?: Partial<PosixDefaults>;
  /** HEAD listed objects whose metadata is not known, to show their modes (default true). */
  posixMetadata?: boolean;
  /** Where attributes learnt by HEAD outlive the process. */
  attributeStore?: AttributeStore;
}

export interface PosixDefaults {
  uid: number;
  gid: number;
  /** Permission bits of files and directories without a mode in their metadata. */
  fileMode: number;
  dirMode: number;
}

/** Who creates a node, and with which mode (the kernel applied the umask). */
export interface Creation {
  mode: number;
  uid: number;
  gid: number;
}

/** A chmod, chown or utimensat: what is given changes. */
export type AttributeChange = Pick<PosixAttrs, 'mode' | 'uid' | 'gid' | 'mtimeNs' | 'atimeNs'>;

/** What a node is, as far as the bucket and our staging know. */
export interface NodeStat {
  ino: number;
  kind: 'file' | 'dir';
  size: number;
  /** st_mode, type bits included (a 'file' may be a symlink, FIFO or socket). */
  mode: number;
  uid: number;
  gid: number;
  /** undefined: not known (a directory without a time in its metadata) */
  mtimeNs: bigint | undefined;
  atimeNs?: bigint;
  ctimeNs?: bigint;
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
/** Longest symlink target read back (PATH_MAX). */
const MAX_LINK_BYTES = 4096;

const nowNs = () => msToNs(Date.now());

export class BucketNamespace {
  private readonly store: ObjectStore;
  private readonly meta: BucketMetadata;
  private readonly nodes = new NodeTable();
  /** Files read in listing order get their next siblings fetched ahead (siblings.ts). */
  private readonly siblings: BucketSiblings;
  private readonly uploads: UploadQueue | undefined;
  private readonly staging: Staging | undefined;
  /** Files being written or waiting for upload, by key: they are the truth for their key until uploaded. */
  private readonly staged = new Map<string, StagedFile>();
  /** Objects being copied into staging to be written, by key (one copy however many open them at once). */
  private readonly beingStaged = new Map<string, Promise<StagedFile>>();
  private readonly defaults: PosixDefaults;
  /** No more changes (a dataset version being committed): see seal(). */
  private sealed = false;

  constructor(private readonly opts: BucketNamespaceOptions) {
    this.store = opts.store;
    this.meta = new BucketMetadata(opts.store, {
      ttlMs: opts.metadataTtlMs,
      onSkippedKey: (key, why) => opts.log?.warn({ key, why }, 'bucket key not shown'),
      posixMetadata: opts.posixMetadata ?? true,
      ...(opts.attributeStore ? { attributeStore: opts.attributeStore } : {}),
    });
    this.siblings = new BucketSiblings(this.meta, opts.store, opts.cache);
    const write = opts.write;
    this.defaults = {
      uid: opts.defaults?.uid ?? 0,
      gid: opts.defaults?.gid ?? 0,
      fileMode: opts.defaults?.fileMode ?? (write ? 0o666 : 0o444),
      dirMode: opts.defaults?.dirMode ?? (write ? 0o777 : 0o555),
    };
    this.staging = write?.uploader.staging;
    this.uploads = write?.uploader.queueFor(opts.store, {
      onUploaded: (file, info, attributes) => this.uploaded(file, info, attributes),
      onIdle: (file) => this.idle(file),
      ...(write.retryBackoff ? { backoff: write.retryBackoff } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get readOnly(): boolean {
    return this.uploads === undefined || this.sealed;
  }

  /** Takes no more changes (EROFS) from now on; files already open fail at their next upload if the store refuses it. */
  seal(): void {
    this.sealed = true;
  }

  unseal(): void {
    this.sealed = false;
  }

  /**
   * Waits for the uploads in flight and tries the pending ones once more (within `timeoutMs`); resolves with
   * how many files still have bytes a close() asked for that the store does not hold.
   */
  async settle(timeoutMs: number): Promise<number> {
    await Promise.allSettled([...this.staged.values()].map((f) => f.inflight));
    return this.drain(timeoutMs);
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
    if (n.kind === 'dir') {
      const a = decodePosix(this.meta.dirAttributes(n.key)?.metadata);
      return this.withAttributes({ ino: n.ino, kind: 'dir', size: 4096, staged: false }, a, undefined);
    }
    const s = this.stagedOf(n);
    if (s) return this.withAttributes({ ino: n.ino, kind: 'file', size: s.size, staged: true }, decodePosix(s.attributes.metadata), msToNs(s.mtimeMs));
    const m = n.meta;
    const known = m ? this.meta.attributes.get(n.key, m) : undefined;
    return this.withAttributes({ ino: n.ino, kind: 'file', size: m?.size ?? 0, staged: false }, decodePosix(known?.metadata), m ? msToNs(m.mtimeMs) : undefined);
  }

  /** A stat from what the metadata says, the defaults for what it does not. */
  private withAttributes(base: Pick<NodeStat, 'ino' | 'kind' | 'size' | 'staged'>, a: PosixAttrs, mtimeNs: bigint | undefined): NodeStat {
    const dir = base.kind === 'dir';
    const perm = a.mode !== undefined ? a.mode & PERMISSION_BITS : dir ? this.defaults.dirMode : this.defaults.fileMode;
    const st: NodeStat = {
      ...base,
      mode: (dir ? S_IFDIR : fileType(a.mode)) | perm,
      uid: a.uid ?? this.defaults.uid,
      gid: a.gid ?? this.defaults.gid,
      mtimeNs: a.mtimeNs ?? mtimeNs,
    };
    if (a.atimeNs !== undefined) st.atimeNs = a.atimeNs;
    if (a.ctimeNs !== undefined) st.ctimeNs = a.ctimeNs;
    return st;
  }

  /** The staged bytes an inode shows, if it is being written or waits for upload. */
  private stagedOf(n: BucketNode): StagedFile | undefined {
    return n.unlinked ? n.orphan : this.staged.get(n.key);
  }

  /** A file's metadata, asked again once it is older than the TTL. */
  async refresh(n: BucketNode): Promise<BucketNode> {
    if (n.ino === ROOT_INO || n.unlinked || this.staged.has(n.key)) return n;
    if (n.kind === 'dir') {
      await this.guard(() => this.meta.ensureDir(n.key), n.key); // its marker's attributes, kept for the TTL
      return n;
    }
    if (Date.now() - n.metaAt < this.opts.metadataTtlMs) return n;
    const { dir, name } = splitKey(n.key);
    const child = await this.withKnownAttributes(n.key, await this.guard(() => this.meta.lookup(dir, name), n.key));
    if (!child || child.kind !== n.kind) throw new FsError('ENOENT');
    return this.nodes.upsert(n.key, child);
  }

  /** The child with its attributes known (a HEAD of the object or marker when not), or undefined if gone. */
  private async withKnownAttributes(key: string, child: Child | undefined, force = false): Promise<Child | undefined> {
    if (!child) return undefined;
    if (child.kind === 'dir') {
      await this.guard(() => this.meta.ensureDir(key, force), key);
      return child;
    }
    return this.guard(() => this.meta.ensureFile(key, child, force), key);
  }

  /**
   * Another writer in this process (a view of the same bucket) changed `key`: what we know of it, and its
   * directory's listing, is dropped, so the next lookup asks the bucket. Returns the nodes the kernel may
   * cache it under.
   */
  changedElsewhere(key: string): { node?: number; parent?: number; name: string } {
    key = key.replace(/\/$/, ''); // a directory's marker names the directory
    this.meta.invalidate(key);
    const n = this.nodes.withKey(key);
    if (n && !this.staged.has(key)) n.metaAt = 0;
    const { dir, name } = splitKey(key);
    return { node: n?.ino, parent: this.nodes.withKey(dir)?.ino, name };
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
    const child = await this.withKnownAttributes(key, await this.guard(() => this.meta.lookup(dir.key, name), key));
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
    await this.guard(() => this.meta.fill(dir.key, listed), dir.key); // modes and types need user metadata
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

  /**
   * Opens an object through the cache with the ETag its listing gave, as If-Match: no HEAD first, even once
   * that listing is older than the TTL (then the cache confirms the ETag: a small file's GET at open does
   * anyway). Only if the object changed or went since is it looked up again, once, and what is there now
   * opened. (A HEAD + LIST per open past the TTL was most of a small file's requests.)
   */
  private async openObject(n: BucketNode): Promise<OpenFile> {
    if (n.metaAt === 0) await this.refresh(n); // never confirmed, or known to have changed
    const now = Date.now();
    try {
      return await this.openCached(n, now - n.metaAt >= this.opts.metadataTtlMs ? now - this.opts.metadataTtlMs : undefined);
    } catch (err) {
      if (!changedInStore(err) && storageErrorIn(err)?.code !== 'NotFound') throw this.mapError(err, n.key);
    }
    n.metaAt = 0;
    this.meta.invalidate(n.key);
    await this.refresh(n);
    return this.guard(() => this.openCached(n, undefined), n.key);
  }

  /** `confirmSince`: the listing's ETag is out of date; the cache confirms it unless a GET did since then. */
  private async openCached(n: BucketNode, confirmSince: number | undefined): Promise<OpenFile> {
    const meta = n.meta;
    if (!meta) throw new FsError('ENOENT');
    if (meta.etag === '') throw fsFailure('EIO', `${this.store.location}${n.key} has no ETag: it cannot be cached safely`, this.opts.log);
    const bytes = await this.opts.cache.open(
      { kind: 'object', location: this.store.location, key: n.key, etag: meta.etag },
      { store: this.store, key: n.key, size: meta.size, ifMatch: meta.etag, confirmSince },
    );
    this.siblings.opened(n.key);
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
        const attributes = await this.currentAttributes(n);
        let file: StagedFile;
        if (empty || !n.meta || n.meta.size === 0) {
          file = await staging.create(key);
          if (empty) await file.truncate(0); // an emptied object is a change to upload
        } else {
          file = await this.guard(async () => staging.copyOf(key, await this.store.stream(key)), key);
        }
        file.attributes = attributes; // a rewrite keeps the object's mode, owner and other metadata
        this.staged.set(key, file);
        return file;
      })().finally(() => this.beingStaged.delete(key));
      this.beingStaged.set(key, p);
    }
    return p;
  }

  /** Creates (or, unless `exclusive`, empties) a file and opens it. */
  async create(dir: BucketNode, name: string, exclusive: boolean, how: Creation): Promise<OpenFile> {
    this.writable();
    const key = this.keyOf(dir, name);
    let file = this.staged.get(key);
    if (file) {
      if (exclusive) throw new FsError('EEXIST');
      await file.truncate(0);
      this.bytesChanged(file);
    } else {
      file = await this.staging!.create(key);
      await file.truncate(0); // even an empty new file is uploaded at close
      file.attributes = { metadata: this.creationMetadata(S_IFREG, how) };
      this.staged.set(key, file);
    }
    return this.openStaged(this.nodes.upsert(key, this.stagedChild(key)), file);
  }

  /** For a FUSE reply, used at once: the bytes may be a view of a buffer the cache reuses after this turn. */
  async read(f: OpenFile, offset: number, size: number): Promise<Buffer> {
    if (f.kind === 'staged') return f.file.read(offset, size);
    try {
      return await f.bytes.read(offset, size, { transient: true });
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
    this.bytesChanged(file);
    this.uploads?.startEagerUpload(file);
    return file.write(offset, data);
  }

  /** Bytes the engine wrote into a staged file itself (its C write path); as write(), without the bytes. */
  written(file: StagedFile, offset: number, length: number): void {
    this.bytesChanged(file);
    this.uploads?.startEagerUpload(file);
    file.wrote(offset, length);
  }

  /** The bytes change: mtime and ctime become the write's (the object's LastModified), not a stored time. */
  private bytesChanged(file: StagedFile): void {
    const m = file.attributes.metadata;
    if (m && (m.mtime !== undefined || m.ctime !== undefined)) file.attributes = { ...file.attributes, metadata: afterWrite(m) };
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
    // A file its target refused for good (a committed version) has nothing left to try: its writer was told.
    if (file.abandoned || file.refused || (!file.dirty && !file.inflight)) await this.removeStaged(file);
    else this.uploads?.keepTrying(file);
  }

  /** Truncates a file; through `open` (ftruncate on a writable handle) or by path, uploaded now. */
  async truncate(n: BucketNode, size: number, open?: StagedFile): Promise<void> {
    this.writable();
    if (open) {
      this.bytesChanged(open);
      await open.truncate(size);
      return;
    }
    // truncate(2) by path: no close() will follow, so the change goes to the bucket now.
    const file = this.staged.get(n.key) ?? (await this.stage(n, size === 0));
    file.refs++;
    try {
      this.bytesChanged(file);
      await file.truncate(size);
      await this.sync(file);
    } finally {
      file.refs--;
      if (file.refs === 0 && !file.dirty) await this.removeStaged(file);
    }
  }

  // -------------------------------------------------- attributes

  /**
   * chmod, chown, utimensat. A file being written takes the change with its upload (close() and fsync() wait
   * for it); otherwise the object, or a directory's marker (made if missing), is copied onto itself with the
   * new metadata: one request, no data moved, none at all when nothing changes.
   */
  async setAttributes(n: BucketNode, change: AttributeChange): Promise<void> {
    this.writable();
    if (n.ino === ROOT_INO) {
      throw new FsError('EPERM', "the entry's own directory has no object to keep attributes on: set dirMode, uid, gid in settings.yaml");
    }
    const s = this.stagedOf(n);
    if (s) {
      s.attributes = { ...s.attributes, metadata: this.changedMetadata(n, s.attributes.metadata, change, false) };
      if (n.unlinked || s.abandoned) return;
      await s.inflight?.catch(() => undefined); // an upload under way may have taken the old attributes
      if (s.dirty || this.stagedOf(n) !== s) return; // the next upload carries them
    }
    if (n.kind === 'dir') return this.setDirAttributes(n, change);
    const child = n.meta && (await this.guard(() => this.meta.ensureFile(n.key, { kind: 'file', ...n.meta! }, true), n.key));
    const known = child && this.meta.attributes.get(n.key, child);
    if (!child || !known) throw new FsError('ENOENT');
    this.nodes.upsert(n.key, child);
    // A staged file the bucket already holds (a handle still open) sends its attributes as a copy would.
    const metadata = s ? this.changedMetadata(n, s.attributes.metadata, {}, true) : this.changedMetadata(n, known.metadata, change, true);
    if (s) s.attributes = { ...s.attributes, metadata };
    if (sameMetadata(metadata, known.metadata)) return;
    const attributes: KnownAttributes = { metadata, ...contentTypeOf(known) };
    const info = await this.guard(() => this.store.copy(n.key, n.key, { ...attributes, sourceSize: child.size }), n.key);
    this.recordFile(n.key, info, attributes, 'copy');
  }

  private async setDirAttributes(n: BucketNode, change: AttributeChange): Promise<void> {
    const d = await this.guard(() => this.meta.ensureDir(n.key, true), n.key);
    const metadata = this.changedMetadata(n, d.metadata, change, true);
    if (d.marker && sameMetadata(metadata, d.metadata)) return;
    const marker = `${n.key}/`;
    const attributes: KnownAttributes = { metadata, ...contentTypeOf(d) };
    if (d.marker) await this.guard(() => this.store.copy(marker, marker, { ...attributes, sourceSize: 0 }), n.key);
    else await this.guard(() => this.store.write(marker, '', attributes), n.key); // an implicit directory gets a marker
    this.meta.setDirAttributes(n.key, { marker: true, ...attributes });
  }

  /**
   * `base` with a change applied. Mode, owner and group are always written in full (other tools read a
   * missing mode as no type). `settled`: the bytes are in the bucket, so a copy would move LastModified,
   * which shows as mtime unless one is stored: keep the current one; and the change sets ctime.
   */
  private changedMetadata(n: BucketNode, base: UserMetadata | undefined, change: AttributeChange, settled: boolean): UserMetadata {
    const cur = this.stat(n);
    const next: PosixAttrs = {
      mode: (cur.mode & S_IFMT) | ((change.mode ?? cur.mode) & PERMISSION_BITS),
      uid: change.uid ?? cur.uid,
      gid: change.gid ?? cur.gid,
    };
    if (change.atimeNs !== undefined) next.atimeNs = change.atimeNs;
    if (change.mtimeNs !== undefined) next.mtimeNs = change.mtimeNs;
    else if (settled && base?.mtime === undefined && cur.mtimeNs !== undefined) next.mtimeNs = cur.mtimeNs;
    if (settled) next.ctimeNs = nowNs();
    return encodePosix(base, next);
  }

  /** The attributes an object has now (a HEAD if not known), for a rewrite of its bytes to keep. */
  private async currentAttributes(n: BucketNode): Promise<ObjectAttributes> {
    if (!n.meta) return {};
    const child = await this.guard(() => this.meta.ensureFile(n.key, { kind: 'file', ...n.meta! }, true), n.key);
    const known = child && this.meta.attributes.get(n.key, child);
    return known ? { metadata: { ...known.metadata }, ...contentTypeOf(known) } : {};
  }

  /** A new node's metadata: its type and mode, owner and group. */
  private creationMetadata(type: number, how: Creation): UserMetadata {
    return encodePosix({}, { mode: type | (how.mode & PERMISSION_BITS), uid: how.uid, gid: how.gid });
  }

  // -------------------------------------------------- symlinks and other nodes

  /** A symlink: an object holding its target, mode S_IFLNK|0777 in its metadata (as s3fs stores them). */
  async symlink(dir: BucketNode, name: string, target: string, owner: Omit<Creation, 'mode'>): Promise<BucketNode> {
    this.writable();
    const key = await this.newKey(dir, name);
    const attributes: KnownAttributes = { metadata: this.creationMetadata(S_IFLNK, { mode: 0o777, ...owner }) };
    const info = await this.guard(() => this.store.write(key, target, attributes), key);
    const n = this.recordFile(key, info, attributes, 'upload');
    n.link = { etag: info.etag, target };
    return n;
  }

  async readlink(n: BucketNode): Promise<string> {
    if (n.kind === 'file' && n.meta && !this.stagedOf(n)) await this.withKnownAttributes(n.key, { kind: 'file', ...n.meta });
    if (n.kind !== 'file' || (this.stat(n).mode & S_IFMT) !== S_IFLNK) throw new FsError('EINVAL');
    const meta = n.meta;
    if (!meta) throw new FsError('ENOENT');
    if (n.link?.etag === meta.etag) return n.link.target;
    if (meta.size > MAX_LINK_BYTES) throw fsFailure('EIO', `${this.store.location}${n.key}: a symlink target of ${meta.size} bytes`, this.opts.log);
    const body = await this.guard(() => this.store.read(n.key, { ifMatch: meta.etag }), n.key);
    n.link = { etag: meta.etag, target: body.toString() };
    return n.link.target;
  }

  /**
   * mknod: a regular file, FIFO or socket is an empty object with its mode in its metadata (as s3fs stores
   * them; the kernel serves FIFOs and sockets locally). Device nodes: EPERM, as for an unprivileged mknod.
   */
  async mknod(dir: BucketNode, name: string, how: Creation): Promise<BucketNode> {
    this.writable();
    const type = how.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) throw new FsError('EPERM', 'device nodes cannot be stored in a bucket');
    if (type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK && type !== 0) throw new FsError('EINVAL');
    const key = await this.newKey(dir, name);
    const attributes: KnownAttributes = { metadata: this.creationMetadata(type || S_IFREG, how) };
    const info = await this.guard(() => this.store.write(key, '', attributes), key);
    return this.recordFile(key, info, attributes, 'upload');
  }

  /** The key for a name that must not exist yet (EEXIST). */
  private async newKey(dir: BucketNode, name: string): Promise<string> {
    const key = this.keyOf(dir, name);
    if (this.staged.has(key) || (await this.guard(() => this.meta.lookup(dir.key, name), key))) throw new FsError('EEXIST');
    return key;
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
    if (!this.uploads || this.sealed) throw new FsError('EROFS');
  }

  async mkdir(dir: BucketNode, name: string, how: Creation): Promise<BucketNode> {
    this.writable();
    const key = this.keyOf(dir, name, '/');
    if (this.staged.has(key) || (await this.guard(() => this.meta.lookup(dir.key, name), key))) throw new FsError('EEXIST');
    await this.putDirMarker(key, this.creationMetadata(S_IFDIR, how));
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

    let copied: ObjectMeta | undefined;
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
      copied = await this.copyObject(from, to, src as Child & { kind: 'file' });
    }
    await this.deleteObject(from);
    this.nodes.move(from, to, dstStaged);
    if (copied && this.nodes.withKey(to)) this.nodes.upsert(to, { kind: 'file', ...copied }); // the copy's version, whose attributes are known
  }

  // -------------------------------------------------- the bucket's changes, each with its metadata update

  /** The upload queue put a staged file's bytes in the bucket, with these attributes. */
  private uploaded(file: StagedFile, info: ObjectInfo, attributes: ObjectAttributes): void {
    if (file.abandoned) return;
    const meta = metaOf(info);
    this.meta.putFile(file.key, meta);
    this.meta.attributes.set(file.key, meta, { metadata: attributes.metadata ?? {}, ...contentTypeOf(attributes) }, 'upload');
    const n = this.nodes.withKey(file.key);
    if (n?.kind === 'file') {
      n.meta = meta;
      n.metaAt = Date.now();
    }
  }

  /** An object we wrote or copied (its metadata known): listings, attributes and its node. */
  private recordFile(key: string, info: ObjectInfo, attributes: KnownAttributes, from: 'copy' | 'upload'): BucketNode {
    const meta = metaOf(info);
    this.meta.putFile(key, meta);
    this.meta.attributes.set(key, meta, attributes, from);
    return this.nodes.upsert(key, { kind: 'file', ...meta });
  }

  /** Copies an object, its metadata with it (S3's COPY directive); returns the copy's version. */
  private async copyObject(from: string, to: string, src: Child & { kind: 'file' }): Promise<ObjectMeta> {
    const known = this.meta.attributes.get(from, src);
    const info = await this.guard(() => this.store.copy(from, to, { sourceSize: src.size }), from);
    const meta = metaOf(info);
    this.meta.putFile(to, meta);
    if (known) this.meta.attributes.set(to, meta, known, 'copy');
    return meta;
  }

  private async deleteObject(key: string): Promise<void> {
    await this.guard(() => this.store.delete(key), key);
    this.meta.removed(key);
  }

  /** A zero-byte `name/` marker: the directory exists while empty, as in the S3 console; it holds the attributes. */
  private async putDirMarker(key: string, metadata: UserMetadata): Promise<void> {
    await this.guard(() => this.store.write(`${key}/`, '', { metadata }), key);
    this.meta.createdDir(key);
    this.meta.setDirAttributes(key, { marker: true, metadata });
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

/** The file type a file object's mode gives: a symlink, FIFO or socket as stored, anything else regular. */
function fileType(mode: number | undefined): number {
  const t = (mode ?? 0) & S_IFMT;
  return t === S_IFLNK || t === S_IFIFO || t === S_IFSOCK ? t : S_IFREG;
}

/** Equal metadata, ctime aside (a change sets it: re-applying the same attributes is no change). */
function sameMetadata(a: UserMetadata, b: UserMetadata): boolean {
  const keys = Object.keys(a).filter((k) => k !== 'ctime');
  return keys.length === Object.keys(b).filter((k) => k !== 'ctime').length && keys.every((k) => a[k] === b[k]);
}

function contentTypeOf(a: { contentType?: string }): { contentType?: string } {
  return a.contentType === undefined ? {} : { contentType: a.contentType };
}
