// A mounted FUSE filesystem: decodes each request the C core hands over, calls the Filesystem,
// encodes the reply. Owns the protocol's bookkeeping so filesystems need not: lookup counts,
// kernel file handles, interrupts, and the fast read path (passthrough or C-bound handles).
import { closeSync, fstatSync, openSync, constants as fsConstants } from 'node:fs';
import { BodyReader, attrOut, decodeHeader, encodeDirents, entryOut, notifyDelete, notifyInvalEntry, notifyInvalInode, openOut, outHeader, statfsOut, writeOut } from './codec.js';
import { FsError, errno, errnoOf } from './errors.js';
import type { Entry, Filesystem, OpenReply, RequestContext, SetattrChanges } from './filesystem.js';
import { abortConnection, explainMountFailure, mountsAt, reclaimMountpoint, setReadahead, unmountPath } from './mountpoint.js';
import { BIND_READ, BIND_WRITE, nativeFuse, OP_WRITTEN, type NativeFuse, type NativeInitInfo, type NativeStats, type SessionHandle } from './native.js';
import * as P from './protocol.js';

export interface FuseMountOptions {
  fsname?: string;
  subtype?: string;
  /** Let users other than the daemon's see the mount (needs user_allow_other when unprivileged). */
  allowOther?: boolean;
  readOnly?: boolean;
  /** Use kernel passthrough for backing-file handles when the kernel offers it (default true). */
  passthrough?: boolean;
  /** Stack depth of the filesystem holding backing files + 1 (2 when the cache is on overlayfs). */
  maxStackDepth?: number;
  /** Reader threads on /dev/fuse (default 4). */
  threads?: number;
  /** Readahead window in KiB set on the mount's bdi (default 1024). */
  readaheadKib?: number;
  /**
   * Largest request in 4 KiB pages (default 256 = 1 MiB, the kernel's limit). With splice, the C core
   * lowers it to what one pipe can carry whole (header + data at any offset): 254 pages (1016 KiB)
   * under the default fs.pipe-max-size of 1 MiB; the full 256 when pipes may reach 2 MiB
   * (fs.pipe-max-size ≥ 2097152, or CAP_SYS_RESOURCE). `kernel.maxWrite` tells what was negotiated.
   */
  maxPages?: number;
  /** Reply to C-path reads with splice (default true). */
  splice?: boolean;
  /**
   * Without passthrough, C-path handles of files at least this large bypass the FUSE page cache
   * (direct_io + splice: 1 copy instead of 3, measured 2-4× faster for large sequential reads; the
   * backing file's own page cache still serves re-reads). Smaller files keep the page cache, where
   * small sequential reads are cheaper. Default 32 MiB; Infinity disables.
   */
  directIoFromBytes?: number;
  log?: SessionLogger;
}

export interface SessionLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

interface KernelHandle {
  fsFh: number;
  ino: number;
  /**
   * Who serves this handle's data: the filesystem through JS, the kernel (passthrough), or the C core for
   * reads from a bound file ('boundRead') or writes into one ('boundWrite', whose reads go through JS).
   */
  servedBy: 'js' | 'passthrough' | 'boundRead' | 'boundWrite';
}

interface InodeIo {
  passthroughOpens: number;
  backingId: number;
  cachedOpens: number;
}

const O_ACCMODE = 3;
/** Replies at least this long are handed to the C reply thread (see send()). */
const QUEUED_REPLY_BYTES = 128 * 1024;

export class FuseSession {
  private readonly native: NativeFuse;
  private session!: SessionHandle;
  private init!: NativeInitInfo;
  private readonly lookups = new Map<number, number>();
  private readonly handles = new Map<number, KernelHandle>();
  private readonly freeHandles: number[] = [];
  private nextHandle = 1;
  private readonly inodeIo = new Map<number, InodeIo>();
  private readonly inflight = new Map<bigint, AbortController>();
  private passthroughUsable: boolean;
  private endedResolve!: () => void;
  readonly ended: Promise<void>;
  private closed = false;
  private device = '';

  private constructor(
    private readonly fs: Filesystem,
    readonly mountpoint: string,
    private readonly opts: FuseMountOptions,
  ) {
    this.native = nativeFuse();
    this.passthroughUsable = opts.passthrough ?? true;
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
  }

  /** Mounts `fs` at `mountpoint` (cleaning up a dead mount left there) and starts serving. */
  static async mount(fs: Filesystem, mountpoint: string, opts: FuseMountOptions = {}): Promise<FuseSession> {
    await reclaimMountpoint(mountpoint, (msg) => opts.log?.warn({ mountpoint }, msg));
    const s = new FuseSession(fs, mountpoint, opts);
    let fd: number;
    try {
      ({ fd } = s.native.mount(mountpoint, {
        fsname: opts.fsname ?? 'gradient',
        subtype: opts.subtype ?? 'gradient',
        allowOther: opts.allowOther ?? false,
        defaultPermissions: true,
        readOnly: opts.readOnly ?? false,
      }));
    } catch (err) {
      throw explainMountFailure(err);
    }
    try {
      const started = s.native.start(
        fd,
        {
          threads: opts.threads ?? 4,
          maxPages: opts.maxPages ?? 256,
          splice: opts.splice ?? true,
          passthrough: s.passthroughUsable,
          maxStackDepth: opts.maxStackDepth ?? 1,
          initTimeoutMs: 10_000,
        },
        (req) => s.onRequest(req),
      );
      s.session = started.session;
      s.init = started.init;
    } catch (err) {
      closeSync(fd);
      await unmountPath(mountpoint, true).catch(() => undefined);
      throw err;
    }
    s.passthroughUsable = s.init.passthrough;
    const [m] = await mountsAt(mountpoint);
    s.device = m?.device ?? '';
    await setReadahead(mountpoint, opts.readaheadKib ?? 1024);
    return s;
  }

  get kernel(): { minor: number; passthrough: boolean; readdirplus: boolean; maxWrite: number } {
    return {
      minor: this.init.minor,
      passthrough: this.passthroughUsable,
      readdirplus: (this.init.flagsLow & P.InitFlag.DO_READDIRPLUS) !== 0,
      maxWrite: this.init.maxWrite,
    };
  }

  stats(): NativeStats & { openHandles: number; knownInodes: number } {
    return { ...this.native.stats(this.session), openHandles: this.handles.size, knownInodes: this.lookups.size };
  }

  /** Drop the kernel's cached name → inode mapping (e.g. a view was swapped). */
  invalidateEntry(parent: number, name: string): void {
    if (!this.closed) this.native.notify(this.session, notifyInvalEntry(parent, name));
  }

  /** Drop the kernel's cached attributes and data of an inode. */
  invalidateInode(ino: number, offset = 0, length = 0): void {
    if (!this.closed) this.native.notify(this.session, notifyInvalInode(ino, offset, length));
  }

  /** Tell the kernel a name was removed (also detaches it from open directories' listings). */
  notifyDeleted(parent: number, child: number, name: string): void {
    if (!this.closed) this.native.notify(this.session, notifyDelete(parent, child, name));
  }

  /**
   * Unmounts and waits for the reader threads to finish. A busy mount is detached lazily; if the
   * kernel still holds the connection after `timeoutMs`, it is aborted.
   */
  async unmount(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    try {
      await unmountPath(this.mountpoint, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') this.opts.log?.warn({ err }, 'unmount failed, detaching');
      await unmountPath(this.mountpoint, true).catch(() => undefined);
    }
    const timedOut = await Promise.race([
      this.ended.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), timeoutMs).unref()),
    ]);
    if (timedOut && this.device) {
      await abortConnection(this.device);
      await this.ended;
    }
  }

  // ---------------------------------------------------------------- dispatch

  private onRequest(req: Buffer | null): void {
    if (req === null) {
      this.finish();
      return;
    }
    const h = decodeHeader(req);
    switch (h.opcode) {
      case OP_WRITTEN: {
        const r = new BodyReader(req);
        const kfh = r.u64();
        const offset = r.u64();
        const length = r.u32();
        const handle = this.handles.get(kfh);
        if (handle) this.fs.written?.(h.nodeid, handle.fsFh, offset, length);
        return;
      }
      case P.Op.FORGET:
        this.forget(h.nodeid, new BodyReader(req).u64());
        return;
      case P.Op.BATCH_FORGET: {
        const r = new BodyReader(req);
        const count = r.u32();
        r.skip(4);
        for (let i = 0; i < count; i++) this.forget(r.u64(), r.u64());
        return;
      }
      case P.Op.INTERRUPT: {
        const target = new BodyReader(req).u64big();
        this.inflight.get(target)?.abort();
        return;
      }
    }
    const ac = new AbortController();
    this.inflight.set(h.unique, ac);
    const ctx: RequestContext = { uid: h.uid, gid: h.gid, pid: h.pid, signal: ac.signal };
    this.handle(h.opcode, h.nodeid, req, ctx).then(
      (bufs) => {
        this.inflight.delete(h.unique);
        this.send(h.unique, 0, bufs);
      },
      (err: unknown) => {
        this.inflight.delete(h.unique);
        const e = ac.signal.aborted ? errno.EINTR : errnoOf(err);
        if (!(err instanceof FsError) && !ac.signal.aborted) {
          this.opts.log?.warn({ err, op: P.OP_NAMES[h.opcode], ino: h.nodeid }, 'filesystem operation failed');
        }
        this.send(h.unique, e, []);
      },
    );
  }

  private send(unique: bigint, error: number, bufs: Buffer[]): void {
    if (this.closed) return;
    let len = P.OUT_HEADER_SIZE;
    for (const b of bufs) len += b.length;
    // A large reply (read data) is copied and written by a C thread: the kernel's copy into its page cache
    // costs several times our copy, and the JS thread has downloads to keep up with meanwhile.
    const rc = this.native.reply(this.session, [outHeader(len, error, unique), ...bufs], len >= QUEUED_REPLY_BYTES);
    // ENOENT: the request was interrupted and is gone; ENODEV: unmounted meanwhile.
    if (rc < 0 && rc !== -errno.ENOENT && rc !== -errno.ENODEV) {
      this.opts.log?.warn({ errno: -rc, unique: String(unique) }, 'writing a FUSE reply failed');
    }
  }

  private async handle(op: number, ino: number, req: Buffer, ctx: RequestContext): Promise<Buffer[]> {
    const fs = this.fs;
    const r = new BodyReader(req);
    switch (op) {
      case P.Op.LOOKUP: {
        const entry = await fs.lookup(ctx, ino, r.name());
        return [this.entryReply(entry)];
      }
      case P.Op.GETATTR: {
        const flags = r.u32();
        r.skip(4);
        const fh = r.u64();
        const res = await fs.getattr(ctx, ino, flags & P.FUSE_GETATTR_FH ? this.fsFh(fh) : undefined);
        return [attrOut(res.attr, res.ttl)];
      }
      case P.Op.SETATTR: {
        if (!fs.setattr) throw new FsError('EROFS');
        const res = await fs.setattr(ctx, ino, this.decodeSetattr(r));
        return [attrOut(res.attr, res.ttl)];
      }
      case P.Op.READLINK: {
        if (!fs.readlink) throw new FsError('EINVAL');
        return [Buffer.from(await fs.readlink(ctx, ino))];
      }
      case P.Op.OPEN: {
        if (!fs.open) throw new FsError('ENOSYS');
        const flags = r.u32();
        return [this.openReply(ino, flags, await fs.open(ctx, ino, flags))];
      }
      case P.Op.READ: {
        const fh = r.u64();
        const offset = r.u64();
        const size = r.u32();
        if (!fs.read) throw new FsError('EIO');
        const data = await fs.read(ctx, ino, this.fsFh(fh), offset, size);
        return [data.length > size ? data.subarray(0, size) : data];
      }
      case P.Op.WRITE: {
        if (!fs.write) throw new FsError('EROFS');
        const fh = r.u64();
        const offset = r.u64();
        const size = r.u32();
        r.skip(4 + 8 + 4 + 4); // write_flags, lock_owner, flags, padding
        const data = r.rest().subarray(0, size);
        return [writeOut(await fs.write(ctx, ino, this.fsFh(fh), offset, data))];
      }
      case P.Op.FLUSH: {
        const fh = r.u64();
        await fs.flush?.(ctx, ino, this.fsFh(fh));
        return [];
      }
      case P.Op.RELEASE: {
        const fh = r.u64();
        const flags = r.u32();
        return this.release(ctx, ino, fh, flags);
      }
      case P.Op.FSYNC: {
        const fh = r.u64();
        const fsyncFlags = r.u32();
        await fs.fsync?.(ctx, ino, this.fsFh(fh), (fsyncFlags & P.FUSE_FSYNC_FDATASYNC) !== 0);
        return [];
      }
      case P.Op.OPENDIR: {
        const flags = r.u32();
        const reply = fs.opendir ? await fs.opendir(ctx, ino, flags) : { fh: 0 };
        const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'js' });
        return [openOut(kfh, reply.cacheDir ? P.FOPEN_CACHE_DIR | P.FOPEN_KEEP_CACHE : 0)];
      }
      case P.Op.READDIR:
      case P.Op.READDIRPLUS: {
        const fh = r.u64();
        const offset = r.u64();
        const size = r.u32();
        const plus = op === P.Op.READDIRPLUS;
        const entries = await fs.readdir(ctx, ino, this.fsFh(fh), offset, plus);
        const { buf, count } = encodeDirents(entries, size, plus);
        if (plus) {
          for (let i = 0; i < count; i++) {
            const d = entries[i];
            if (d?.entry && d.entry.attr.ino !== 0 && d.name !== '.' && d.name !== '..') this.countLookup(d.entry.attr.ino);
          }
        }
        return [buf];
      }
      case P.Op.RELEASEDIR: {
        const fh = r.u64();
        const h = this.freeHandle(fh);
        if (h) await fs.releasedir?.(ctx, ino, h.fsFh);
        return [];
      }
      case P.Op.FSYNCDIR:
        throw new FsError('ENOSYS'); // the kernel remembers and stops asking
      case P.Op.STATFS: {
        const s = fs.statfs
          ? await fs.statfs(ctx, ino)
          : { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
        return [statfsOut(s)];
      }
      case P.Op.ACCESS: {
        const mask = r.u32();
        await fs.access?.(ctx, ino, mask);
        return [];
      }
      case P.Op.CREATE: {
        if (!fs.create) throw new FsError('EROFS');
        const flags = r.u32();
        const mode = r.u32();
        const umask = r.u32();
        r.skip(4);
        const name = r.name();
        const { entry, open } = await fs.create(ctx, ino, name, mode & ~umask, flags);
        const entryBuf = this.entryReply(entry);
        return [entryBuf, this.openReply(entry.attr.ino, flags, open)];
      }
      case P.Op.MKDIR: {
        if (!fs.mkdir) throw new FsError('EROFS');
        const mode = r.u32();
        const umask = r.u32();
        return [this.entryReply(await fs.mkdir(ctx, ino, r.name(), (mode & ~umask) | 0o040000))];
      }
      case P.Op.UNLINK:
        if (!fs.unlink) throw new FsError('EROFS');
        await fs.unlink(ctx, ino, r.name());
        return [];
      case P.Op.RMDIR:
        if (!fs.rmdir) throw new FsError('EROFS');
        await fs.rmdir(ctx, ino, r.name());
        return [];
      case P.Op.RENAME:
      case P.Op.RENAME2: {
        if (!fs.rename) throw new FsError('EROFS');
        const newParent = r.u64();
        const flags = op === P.Op.RENAME2 ? r.u32() : 0;
        if (op === P.Op.RENAME2) r.skip(4);
        const name = r.name();
        const newName = r.name();
        await fs.rename(ctx, ino, name, newParent, newName, flags);
        return [];
      }
      // Without the operation: EPERM, what link(2), symlink(2) and mknod(2) return on a local filesystem
      // that cannot make such a node.
      case P.Op.SYMLINK: {
        if (!fs.symlink) throw new FsError('EPERM');
        const name = r.name();
        return [this.entryReply(await fs.symlink(ctx, ino, name, r.name()))];
      }
      case P.Op.MKNOD: {
        if (!fs.mknod) throw new FsError('EPERM');
        const mode = r.u32();
        const rdev = r.u32();
        const umask = r.u32();
        r.skip(4);
        return [this.entryReply(await fs.mknod(ctx, ino, r.name(), mode & ~umask, rdev))];
      }
      case P.Op.LINK: {
        if (!fs.link) throw new FsError('EPERM');
        const oldIno = r.u64();
        return [this.entryReply(await fs.link(ctx, oldIno, ino, r.name()))];
      }
      case P.Op.DESTROY:
        return [];
      default:
        // xattrs, locks, ioctl, poll, lseek, fallocate...: ENOSYS, which the kernel caches per
        // operation (xattr calls then fail with EOPNOTSUPP without reaching us).
        throw new FsError('ENOSYS');
    }
  }

  // ---------------------------------------------------------------- bookkeeping

  private entryReply(entry: Entry): Buffer {
    if (entry.attr.ino !== 0) this.countLookup(entry.attr.ino); // ino 0: a cached negative entry
    return entryOut(entry);
  }

  private countLookup(ino: number): void {
    this.lookups.set(ino, (this.lookups.get(ino) ?? 0) + 1);
  }

  private forget(ino: number, n: number): void {
    const left = (this.lookups.get(ino) ?? 0) - n;
    if (left > 0) {
      this.lookups.set(ino, left);
      return;
    }
    this.lookups.delete(ino);
    if (ino !== 1) this.fs.forget?.(ino);
  }

  private allocHandle(h: KernelHandle): number {
    const kfh = this.freeHandles.pop() ?? this.nextHandle++;
    this.handles.set(kfh, h);
    return kfh;
  }

  private freeHandle(kfh: number): KernelHandle | undefined {
    const h = this.handles.get(kfh);
    if (h) {
      this.handles.delete(kfh);
      this.freeHandles.push(kfh);
    }
    return h;
  }

  private fsFh(kfh: number): number {
    const h = this.handles.get(kfh);
    if (!h) throw new FsError('EBADF');
    return h.fsFh;
  }

  private ioOf(ino: number): InodeIo {
    let io = this.inodeIo.get(ino);
    if (!io) {
      io = { passthroughOpens: 0, backingId: 0, cachedOpens: 0 };
      this.inodeIo.set(ino, io);
    }
    return io;
  }

  /**
   * Builds the OPEN reply. A handle with a backing file is served without JS: by passthrough when
   * the kernel can (and no cached open of the same inode is live: the kernel refuses to mix them),
   * else bound to the C read path.
   */
  private openReply(ino: number, flags: number, reply: OpenReply): Buffer {
    const readOnly = (flags & O_ACCMODE) === fsConstants.O_RDONLY;
    // A read-only close has nothing to flush: FOPEN_NOFLUSH spares a round trip to JS on every close(),
    // and keeps a process that spawns children while holding files of its own mount from deadlocking
    // (the child's exec closes the inherited descriptor, whose FLUSH only our JS thread could answer).
    let openFlags =
      (reply.keepCache ? P.FOPEN_KEEP_CACHE : 0) |
      (reply.directIo ? P.FOPEN_DIRECT_IO : 0) |
      (reply.nonSeekable ? P.FOPEN_NONSEEKABLE : 0) |
      (readOnly ? P.FOPEN_NOFLUSH : 0);
    const io = this.ioOf(ino);
    if (reply.backingPath && readOnly) {
      if (this.passthroughUsable && io.cachedOpens === 0) {
        const backingId = io.passthroughOpens > 0 ? io.backingId : this.openBacking(reply.backingPath);
        if (backingId > 0) {
          io.backingId = backingId;
          io.passthroughOpens++;
          const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'passthrough' });
          return openOut(kfh, P.FOPEN_PASSTHROUGH | P.FOPEN_NOFLUSH, backingId);
        }
      }
      const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'boundRead' });
      const boundSize = this.bindBacking(kfh, reply.backingPath);
      if (boundSize >= 0) {
        io.cachedOpens++;
        if (boundSize >= (this.opts.directIoFromBytes ?? 32 << 20)) openFlags = (openFlags | P.FOPEN_DIRECT_IO) & ~P.FOPEN_KEEP_CACHE;
        return openOut(kfh, openFlags);
      }
      this.handles.set(kfh, { fsFh: reply.fh, ino, servedBy: 'js' });
      io.cachedOpens++;
      return openOut(kfh, openFlags);
    }
    if (reply.backingPath && !readOnly) openFlags &= ~P.FOPEN_KEEP_CACHE;
    io.cachedOpens++;
    const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'js' });
    if (reply.writeFd !== undefined && !readOnly && this.fs.written) {
      // Writes land in the file from C threads: the JS thread, busy with uploads, no longer paces the writer.
      const rc = this.native.bind(this.session, kfh, reply.writeFd, BIND_WRITE);
      if (rc === 0) this.handles.set(kfh, { fsFh: reply.fh, ino, servedBy: 'boundWrite' });
      else this.opts.log?.warn({ errno: -rc }, 'cannot bind a handle to the C write path; writes go through the filesystem');
    }
    return openOut(kfh, openFlags);
  }

  private openBacking(path: string): number {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      this.opts.log?.warn({ err, path }, 'cannot open backing file; serving reads through the filesystem');
      return 0;
    }
    try {
      const id = this.native.backingOpen(this.session, fd);
      if (id < 0) {
        // EPERM (no CAP_SYS_ADMIN) or ELOOP (backing file system stacked too deep): stop trying.
        this.passthroughUsable = false;
        this.opts.log?.warn({ errno: -id, path }, 'kernel passthrough unavailable; using the C read path');
        return 0;
      }
      return id;
    } finally {
      closeSync(fd);
    }
  }

  /** Binds a handle to the C read path; returns the backing file's size, or -1 if it could not. */
  private bindBacking(kfh: number, path: string): number {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      this.opts.log?.warn({ err, path }, 'cannot open backing file; serving reads through the filesystem');
      return -1;
    }
    try {
      return this.native.bind(this.session, kfh, fd, BIND_READ) === 0 ? fstatSync(fd).size : -1;
    } finally {
      closeSync(fd);
    }
  }

  private async release(ctx: RequestContext, ino: number, kfh: number, flags: number): Promise<Buffer[]> {
    const h = this.freeHandle(kfh);
    if (!h) return [];
    const io = this.ioOf(h.ino);
    if (h.servedBy === 'passthrough') {
      if (--io.passthroughOpens === 0) {
        this.native.backingClose(this.session, io.backingId);
        io.backingId = 0;
      }
    } else {
      if (h.servedBy === 'boundRead' || h.servedBy === 'boundWrite') this.native.unbind(this.session, kfh);
      io.cachedOpens--;
    }
    if (io.passthroughOpens === 0 && io.cachedOpens === 0) this.inodeIo.delete(h.ino);
    await this.fs.release?.(ctx, ino, h.fsFh, flags);
    return [];
  }

  private decodeSetattr(r: BodyReader): SetattrChanges {
    const valid = r.u32();
    r.skip(4);
    const fh = r.u64();
    const size = r.u64();
    r.skip(8); // lock_owner
    const atime = r.u64();
    const mtime = r.u64();
    r.skip(8); // ctime
    const atimensec = r.u32();
    const mtimensec = r.u32();
    r.skip(4); // ctimensec
    const mode = r.u32();
    r.skip(4);
    const uid = r.u32();
    const gid = r.u32();
    const now = Date.now();
    const c: SetattrChanges = {};
    if (valid & P.FATTR_MODE) c.mode = mode;
    if (valid & P.FATTR_UID) c.uid = uid;
    if (valid & P.FATTR_GID) c.gid = gid;
    if (valid & P.FATTR_SIZE) c.size = size;
    const nowNs = BigInt(now) * 1_000_000n;
    if (valid & P.FATTR_ATIME) {
      c.atimeMs = valid & P.FATTR_ATIME_NOW ? now : atime * 1000 + atimensec / 1e6;
      c.atimeNs = valid & P.FATTR_ATIME_NOW ? nowNs : BigInt(atime) * 1_000_000_000n + BigInt(atimensec);
      if (valid & P.FATTR_ATIME_NOW) c.atimeNow = true;
    }
    if (valid & P.FATTR_MTIME) {
      c.mtimeMs = valid & P.FATTR_MTIME_NOW ? now : mtime * 1000 + mtimensec / 1e6;
      c.mtimeNs = valid & P.FATTR_MTIME_NOW ? nowNs : BigInt(mtime) * 1_000_000_000n + BigInt(mtimensec);
      if (valid & P.FATTR_MTIME_NOW) c.mtimeNow = true;
    }
    if (valid & P.FATTR_FH) c.fh = this.fsFh(fh);
    return c;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.inflight.values()) ac.abort();
    this.native.close(this.session);
    this.endedResolve();
  }
}
