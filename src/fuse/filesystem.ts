// The interface the FUSE engine calls: what src/fs implements. Inode numbers are plain numbers
// (root = 1); times are in milliseconds; TTLs in seconds. The engine does the lookup-count
// bookkeeping (LOOKUP, CREATE, READDIRPLUS, FORGET) and calls forget() when the kernel lets go.
// Throw FsError('ENOENT') and friends; any other error becomes EIO.

export const ROOT_INO = 1;

export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  /** Aborted when the kernel interrupts the request (the caller got a signal). */
  signal: AbortSignal;
}

export interface Attr {
  ino: number;
  size: number;
  /** File type and permission bits, e.g. 0o100644 or 0o040755. */
  mode: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  mtimeMs: number;
  atimeMs?: number;
  ctimeMs?: number;
  /** Exact times in nanoseconds since the epoch, when known: they take precedence over the ms fields. */
  mtimeNs?: bigint;
  atimeNs?: bigint;
  ctimeNs?: bigint;
  blksize?: number;
}

export interface Entry {
  attr: Attr;
  /** How long the kernel may trust the name → inode mapping. */
  entryTtl: number;
  /** How long the kernel may trust the attributes. */
  attrTtl: number;
  generation?: number;
}

export interface AttrReply {
  attr: Attr;
  ttl: number;
}

export interface OpenReply {
  fh: number;
  /** Keep the kernel's page cache across opens: the file's bytes have not changed. */
  keepCache?: boolean;
  /** Bypass the page cache (each read reaches the filesystem). */
  directIo?: boolean;
  nonSeekable?: boolean;
  /** For opendir: let the kernel cache the listing. */
  cacheDir?: boolean;
  /**
   * The fast path: a local file holding exactly this file's bytes. The engine serves reads of this
   * handle without calling read(): by kernel passthrough where available, else from C threads.
   * Only for read-only opens; the file must not change while the handle is open.
   */
  backingPath?: string;
  /**
   * The fast write path: a descriptor (opened for writing, not O_APPEND) of a local file that takes this
   * handle's writes. The engine lands them with pwrite from C threads instead of calling write(), and
   * reports each landed write with written() before the writer learns it is done. The engine keeps its
   * own duplicate of the descriptor until the handle is released. Only for writable opens.
   */
  writeFd?: number;
  /**
   * What reopen() needs to open this very handle again in the process that takes the session over (e.g. the id
   * of a staged file whose bytes are not in the store yet). Kept in the session's state.
   */
  resume?: string;
}

export interface DirEntry {
  name: string;
  /** Full entry for READDIRPLUS; when absent only name/ino/type are returned. */
  entry?: Entry;
  ino: number;
  mode: number;
  /** Cookie the kernel passes back as the offset to continue after this entry. */
  nextOffset: number;
}

export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  /** The same times exactly (ns since the epoch), set whenever the ms fields are. */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  /** The time is "now" (UTIME_NOW, or the kernel's own for a truncate), not one the caller gave. */
  atimeNow?: boolean;
  mtimeNow?: boolean;
  fh?: number;
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** Drops what the kernel caches: a node's attributes and data, or a name in a directory (its dentry). */
export interface KernelCacheInvalidator {
  inode(ino: number): void;
  entry(parent: number, name: string): void;
}

export interface Filesystem {
  /** Set by whoever mounts it, for a filesystem whose content changes by other means than the kernel's requests. */
  kernelCache?: KernelCacheInvalidator;
  lookup(ctx: RequestContext, parent: number, name: string): Promise<Entry>;
  /** The kernel dropped its last reference to ino. */
  forget?(ino: number): void;
  getattr(ctx: RequestContext, ino: number, fh?: number): Promise<AttrReply>;
  setattr?(ctx: RequestContext, ino: number, changes: SetattrChanges): Promise<AttrReply>;
  readlink?(ctx: RequestContext, ino: number): Promise<string>;
  open?(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply>;
  /**
   * The engine copies the bytes into its reply (or writes them) as soon as the promise resolves, in the same
   * event-loop turn: they may be a view of a buffer the filesystem reuses after that turn.
   */
  read?(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Promise<Buffer>;
  write?(ctx: RequestContext, ino: number, fh: number, offset: number, data: Buffer): Promise<number>;
  /** A write the engine landed in the handle's writeFd file: `length` bytes at `offset` (OpenReply.writeFd). */
  written?(ino: number, fh: number, offset: number, length: number): void;
  flush?(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  release?(ctx: RequestContext, ino: number, fh: number, flags: number): Promise<void>;
  fsync?(ctx: RequestContext, ino: number, fh: number, datasync: boolean): Promise<void>;
  opendir?(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply>;
  /** Entries after `offset` (0 = from the start); may return more than fit: the engine sends what fits. */
  readdir(ctx: RequestContext, ino: number, fh: number, offset: number, plus: boolean): Promise<DirEntry[]>;
  releasedir?(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  statfs?(ctx: RequestContext, ino: number): Promise<StatFs>;
  create?(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): Promise<{ entry: Entry; open: OpenReply }>;
  mkdir?(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry>;
  /** A symbolic link `name` → `target`. Without it: EPERM. */
  symlink?(ctx: RequestContext, parent: number, name: string, target: string): Promise<Entry>;
  /** A node that is not a directory or symlink (mode has the type bits; umask applied). Without it: EPERM. */
  mknod?(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<Entry>;
  /** A hard link to `ino`. Without it: EPERM, as link(2) on a local filesystem that has none. */
  link?(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<Entry>;
  unlink?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rmdir?(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rename?(ctx: RequestContext, parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void>;
  access?(ctx: RequestContext, ino: number, mask: number): Promise<void>;

  // Session survival: another process takes the session over (src/fuse/session-state.ts). Node ids the kernel
  // holds stay valid through a key recorded when the kernel first learns of them; handles are opened again.
  /** A stable name for an inode the kernel is about to learn of; undefined: it cannot be found again. */
  nodeKey?(ino: number): string | undefined;
  /** After a takeover, before any request: the nodes the kernel still holds (id → nodeKey), found on first use. */
  adoptNodes?(nodes: Map<number, string>): void;
  /** Opens a handle again after a takeover (OpenReply.resume of its first open); default open(). */
  reopen?(ctx: RequestContext, ino: number, flags: number, resume: string | undefined): Promise<OpenReply>;
}
