// A bucket view as the kernel sees it: the FUSE adapter over a BucketNamespace (namespace.ts), which owns
// what the bucket holds and how it changes. Here: file handles and directory listings by handle, open
// flags, and replies: attributes and TTLs, the kernel's page cache, the engine's fast paths.
//
// Modes, owners and times come from each object's metadata (namespace.ts); without it, files show 0666 and
// directories 0777 (read-only views 0444/0555) owned by the mounting user, or what the entry's settings say.
// The kernel enforces them (default_permissions). Entry and attribute TTLs equal the metadata TTL, so that
// others' changes appear within it; a file being written has none (its size changes under the kernel).
import { constants as fsConstants } from 'node:fs';
import { FsError } from '../../fuse/errors.js';
import type {
  Attr,
  AttrReply,
  DirEntry,
  Entry,
  Filesystem,
  KernelCacheInvalidator,
  OpenReply,
  RequestContext,
  SetattrChanges,
} from '../../fuse/filesystem.js';
import type { BackoffOptions } from '../../storage/backoff.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { DaemonMemory } from '../../memory/index.js';
import { Uploader, type StagedFile, type UploadStatus } from '../../upload/index.js';
import type { ObjectCache } from '../content.js';
import type { AttributeStore } from './attribute-cache.js';
import { ROOT_INO } from '../../fuse/filesystem.js';
import type { Child } from './metadata.js';
import { BucketNamespace, type AttributeChange, type BucketNode, type Creation, type NodeStat, type OpenFile } from './namespace.js';
import { nsToMs, S_IFDIR, S_IFMT } from './posix-metadata.js';

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
  /** Owner of what carries none in its metadata (default: the daemon's user). */
  uid?: number;
  gid?: number;
  /** Permission bits of files and directories without a mode in their metadata (default 0666 / 0777, 0444 / 0555 read-only). */
  fileMode?: number;
  dirMode?: number;
  /** HEAD listed objects whose metadata is not known, to show their modes and symlinks (default true). */
  posixMetadata?: boolean;
  /** Where attributes learnt by HEAD outlive the process (the cache's index). */
  attributeStore?: AttributeStore;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const READDIR_BATCH = 1024;
const S_ISGID = 0o2000;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

interface Handle {
  file: OpenFile;
  /** Opened for writing: writes, flushes and ftruncate go to its staged file. */
  writable: boolean;
}

export class BucketView implements Filesystem {
  private readonly ns: BucketNamespace;
  private readonly ttlSec: number;
  private readonly handles = new Map<number, Handle>();
  /**
   * Directory listings being read, by handle: one snapshot per pass (offset 0 takes a new one), with the
   * entries made so far: the kernel takes a few dozen per request and asks again from there, so each is made
   * once per pass, not once per request.
   */
  private readonly listings = new Map<number, { children: [string, Child][]; entries: Entry[] }>();
  /** The ETag of the bytes the kernel's page cache may hold, by inode. */
  private readonly pageCacheEtag = new Map<number, string>();
  private nextFh = 1;
  private readonly createdAt = Date.now();

  constructor(private readonly opts: BucketViewOptions) {
    this.ttlSec = opts.metadataTtlMs / 1000;
    const w = opts.write;
    this.ns = new BucketNamespace({
      store: opts.store,
      cache: opts.cache,
      metadataTtlMs: opts.metadataTtlMs,
      defaults: {
        uid: opts.uid ?? process.getuid?.() ?? 0,
        gid: opts.gid ?? process.getgid?.() ?? 0,
        ...(opts.fileMode !== undefined ? { fileMode: opts.fileMode } : {}),
        ...(opts.dirMode !== undefined ? { dirMode: opts.dirMode } : {}),
      },
      ...(opts.posixMetadata !== undefined ? { posixMetadata: opts.posixMetadata } : {}),
      ...(opts.attributeStore ? { attributeStore: opts.attributeStore } : {}),
      ...(w
        ? {
            write: {
              uploader: 'uploader' in w ? w.uploader : new Uploader({ stagingDir: w.stagingDir, memory: new DaemonMemory() }),
              ...(w.retryBackoff ? { retryBackoff: w.retryBackoff } : {}),
            },
          }
        : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get readOnly(): boolean {
    return this.ns.readOnly;
  }

  /** Takes over uploads an earlier run left pending for this bucket: they show and upload as usual. */
  start(): Promise<void> {
    return this.ns.start();
  }

  /** Files not yet in the bucket (for `gradient status`). */
  uploadStatus(): UploadStatus[] {
    return this.ns.uploadStatus();
  }

  /** Tries pending uploads once more (daemon stop); resolves with how many are still not in the bucket. */
  drain(timeoutMs: number): Promise<number> {
    return this.ns.drain(timeoutMs);
  }

  /** No more changes through this view (EROFS): a dataset version being committed. */
  seal(): void {
    this.ns.seal();
  }

  unseal(): void {
    this.ns.unseal();
  }

  /** Waits for uploads in flight, retries pending ones within `timeoutMs`; resolves with how many are left. */
  settle(timeoutMs: number): Promise<number> {
    return this.ns.settle(timeoutMs);
  }

  /** Files open through this view. */
  get openHandles(): number {
    return this.handles.size;
  }

  /** The view is gone for good (daemon stop, retired): stop retries and let go of files and cache entries. */
  close(): void {
    for (const h of this.handles.values()) if (h.file.kind === 'object') h.file.bytes.close();
    this.handles.clear();
    this.ns.close();
  }

  // -------------------------------------------------- attributes

  private attr(s: NodeStat): Attr {
    const a: Attr = { ino: s.ino, size: s.size, mode: s.mode, nlink: s.kind === 'dir' ? 2 : 1, uid: s.uid, gid: s.gid, mtimeMs: this.createdAt };
    if (s.mtimeNs !== undefined) {
      a.mtimeMs = nsToMs(s.mtimeNs);
      a.mtimeNs = s.mtimeNs;
    }
    if (s.atimeNs !== undefined) a.atimeNs = s.atimeNs;
    if (s.ctimeNs !== undefined) a.ctimeNs = s.ctimeNs;
    if (s.kind === 'file') a.blksize = 1 << 20;
    return a;
  }

  /** For '.' and '..' in listings, where only the type counts. */
  private dirMode(): number {
    return S_IFDIR;
  }

  private entry(n: BucketNode): Entry {
    const s = this.ns.stat(n);
    // Files being written change under the kernel: let it ask again at every stat.
    const ttl = s.staged ? 0 : this.ttlSec;
    return { attr: this.attr(s), entryTtl: ttl, attrTtl: ttl };
  }

  private attrReply(n: BucketNode): AttrReply {
    const e = this.entry(n);
    return { attr: e.attr, ttl: e.attrTtl };
  }

  // -------------------------------------------------- lookups and listings

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    return this.entry(await this.ns.lookup(this.ns.dirNode(parent), name));
  }

  async getattr(_ctx: RequestContext, ino: number): Promise<AttrReply> {
    return this.attrReply(await this.ns.refresh(this.ns.node(ino)));
  }

  async opendir(_ctx: RequestContext, ino: number): Promise<OpenReply> {
    this.ns.dirNode(ino);
    const fh = this.nextFh++;
    this.listings.set(fh, { children: [], entries: [] });
    return { fh };
  }

  async readdir(_ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntry[]> {
    const dir = this.ns.dirNode(ino);
    let listing = this.listings.get(fh);
    if (!listing || offset === 0) {
      listing = { children: await this.ns.list(dir), entries: [] };
      this.listings.set(fh, listing);
    }
    const { children, entries } = listing;
    const out: DirEntry[] = [];
    if (offset === 0) out.push({ name: '.', ino, mode: this.dirMode(), nextOffset: 1 });
    if (offset <= 1) out.push({ name: '..', ino: this.ns.parentIno(dir), mode: this.dirMode(), nextOffset: 2 });
    const start = Math.max(0, offset - 2);
    const end = Math.min(children.length, start + READDIR_BATCH);
    for (let i = start; i < end; i++) {
      const [name, child] = children[i]!;
      const e = (entries[i] ??= this.entry(this.ns.child(dir, name, child)));
      const d: DirEntry = { name, ino: e.attr.ino, mode: e.attr.mode, nextOffset: i + 3 };
      if (plus) d.entry = e;
      out.push(d);
    }
    return out;
  }

  async releasedir(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    this.listings.delete(fh);
  }

  /** Set by whoever mounts this view: drops what the kernel caches of a node or a name. */
  kernelCache?: KernelCacheInvalidator;

  /** `key` was changed through another view of this bucket (in this process): seen now, not after the TTL. */
  changedElsewhere(key: string): void {
    const { node, parent, name } = this.ns.changedElsewhere(key);
    if (node !== undefined) {
      this.pageCacheEtag.delete(node);
      this.kernelCache?.inode(node);
    }
    if (parent !== undefined) this.kernelCache?.entry(parent, name);
  }

  forget(ino: number): void {
    this.pageCacheEtag.delete(ino);
    this.ns.forget(ino);
  }

  // -------------------------------------------------- open, read, write, close

  async open(_ctx: RequestContext, ino: number, flags: number): Promise<OpenReply> {
    const writable = (flags & 3) !== fsConstants.O_RDONLY;
    const truncate = (flags & fsConstants.O_TRUNC) !== 0;
    const file = await this.ns.open(this.ns.node(ino), { write: writable, truncate });
    return this.reply(file, writable);
  }

  async create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): Promise<{ entry: Entry; open: OpenReply }> {
    const dir = this.ns.dirNode(parent);
    const file = await this.ns.create(dir, name, (flags & fsConstants.O_EXCL) !== 0, this.creation(ctx, dir, mode));
    return { entry: this.entry(file.node), open: this.reply(file, (flags & 3) !== fsConstants.O_RDONLY) };
  }

  private reply(file: OpenFile, writable: boolean): OpenReply {
    const fh = this.nextFh++;
    this.handles.set(fh, { file, writable });
    const ino = file.node.ino;
    if (file.kind === 'staged') {
      this.pageCacheEtag.delete(ino);
      // Writes land in the staging file from the engine's C threads (written() reports them), and skip the
      // kernel's page cache: a second copy of the bytes that only costs memory. Reads of a staged file skip
      // it too, so that no handle can see pages that predate a write.
      // resume: the staged file's id, for the process that takes the session over: a writer's bytes may be in no
      // bucket yet (a reader's are: journaled at the writer's close, or found through the writer's handle).
      return writable ? { fh, writeFd: file.file.fd, directIo: true, resume: file.file.id } : { fh, directIo: true };
    }
    // Keep the kernel's pages only if they were filled from these very bytes.
    const reply: OpenReply = { fh, keepCache: this.pageCacheEtag.get(ino) === file.etag };
    this.pageCacheEtag.set(ino, file.etag);
    const backing = file.bytes.completePath();
    if (backing) reply.backingPath = backing;
    return reply;
  }

  async read(_ctx: RequestContext, _ino: number, fh: number, offset: number, size: number): Promise<Buffer> {
    return this.ns.read(this.handle(fh).file, offset, size);
  }

  async write(_ctx: RequestContext, _ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    const file = this.writableFile(fh);
    if (!file) throw new FsError('EBADF');
    return this.ns.write(file, offset, data);
  }

  written(_ino: number, fh: number, offset: number, length: number): void {
    const file = this.writableFile(fh);
    if (file) this.ns.written(file, offset, length);
  }

  async flush(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const file = this.writableFile(fh);
    if (file) await this.ns.sync(file);
  }

  async fsync(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const f = this.handles.get(fh)?.file;
    if (f?.kind === 'staged') await this.ns.sync(f.file);
  }

  async release(_ctx: RequestContext, _ino: number, fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    await this.ns.release(h.file);
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  /** The staged file a handle opened for writing writes to. */
  private writableFile(fh: number | undefined): StagedFile | undefined {
    const h = fh === undefined ? undefined : this.handles.get(fh);
    return h?.writable && h.file.kind === 'staged' ? h.file.file : undefined;
  }

  // -------------------------------------------------- stable node keys (session survival)

  /** 'd:' or 'f:' and the node's key: a key can name a file and a directory at once. Unlinked nodes have none. */
  nodeKey(ino: number): string | undefined {
    const n = this.ns.nodeIf(ino);
    return n && !n.unlinked ? `${n.kind === 'dir' ? 'd' : 'f'}:${n.key}` : undefined;
  }

  async resolveKey(key: string, resume?: string): Promise<number> {
    const kind = key.startsWith('d:') ? 'dir' : 'file';
    const k = key.slice(2);
    if (k === '') return ROOT_INO;
    if (resume !== undefined) await this.ns.adoptStaged(k, resume);
    const n = await this.ns.find(k);
    if (n.kind !== kind) throw new FsError('ENOENT');
    return n.ino;
  }

  /** A handle of an earlier process: a file being written is found by its staged file's id (OpenReply.resume). */
  async reopen(ctx: RequestContext, ino: number, flags: number, resume: string | undefined): Promise<OpenReply> {
    if (resume !== undefined) await this.ns.adoptStaged(this.ns.node(ino).key, resume);
    return this.open(ctx, ino, flags);
  }

  // -------------------------------------------------- changes to the tree

  async setattr(_ctx: RequestContext, ino: number, changes: SetattrChanges): Promise<AttrReply> {
    const n = this.ns.node(ino);
    const truncating = changes.size !== undefined;
    if (n.kind === 'file' && truncating) await this.ns.truncate(n, changes.size!, this.writableFile(changes.fh));
    const change: AttributeChange = {};
    if (changes.mode !== undefined) change.mode = changes.mode;
    if (changes.uid !== undefined) change.uid = changes.uid;
    if (changes.gid !== undefined) change.gid = changes.gid;
    // A truncate's own "now" is the write's time, which the object's LastModified shows: nothing to store.
    if (changes.mtimeNs !== undefined && !(truncating && changes.mtimeNow)) change.mtimeNs = changes.mtimeNs;
    if (changes.atimeNs !== undefined && !(truncating && changes.atimeNow)) change.atimeNs = changes.atimeNs;
    if (Object.keys(change).length > 0) await this.ns.setAttributes(n, change);
    return this.attrReply(n);
  }

  async mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    const dir = this.ns.dirNode(parent);
    return this.entry(await this.ns.mkdir(dir, name, this.creation(ctx, dir, mode | S_IFDIR)));
  }

  async symlink(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry> {
    const dir = this.ns.dirNode(parent);
    const { uid, gid } = this.creation(ctx, dir, 0);
    return this.entry(await this.ns.symlink(dir, name, target, { uid, gid }));
  }

  async mknod(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    const dir = this.ns.dirNode(parent);
    return this.entry(await this.ns.mknod(dir, name, this.creation(ctx, dir, mode)));
  }

  async readlink(_ctx: RequestContext, ino: number): Promise<string> {
    return this.ns.readlink(this.ns.node(ino));
  }

  /** Who makes a node: the caller, with the group of a setgid directory (which new directories inherit). */
  private creation(ctx: RequestContext, dir: BucketNode, mode: number): Creation {
    const parent = this.ns.stat(dir);
    if (!(parent.mode & S_ISGID)) return { mode, uid: ctx.uid, gid: ctx.gid };
    const inherit = (mode & S_IFMT) === S_IFDIR ? S_ISGID : 0;
    return { mode: mode | inherit, uid: ctx.uid, gid: parent.gid };
  }

  async rmdir(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.ns.rmdir(this.ns.dirNode(parent), name);
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    await this.ns.unlink(this.ns.dirNode(parent), name);
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const how = { noReplace: (flags & RENAME_NOREPLACE) !== 0, exchange: (flags & RENAME_EXCHANGE) !== 0 };
    await this.ns.rename(this.ns.dirNode(parent), name, this.ns.dirNode(newParent), newName, how);
  }
}
