// A mounted FUSE filesystem: decodes each request the C core hands over, calls the Filesystem,
// encodes the reply. Owns the protocol's bookkeeping so filesystems need not: lookup counts,
// kernel file handles, interrupts, and the fast read path (passthrough or C-bound handles).
import { closeSync, fstatSync, openSync, constants as fsConstants } from 'node:fs';
import {
  BodyReader,
  attrOut,
  decodeHeader,
  encodeDirents,
  entryOut,
  notifyDelete,
  notifyInvalEntry,
  notifyInvalInode,
  notifyResend,
  openOut,
  outHeader,
  statfsOut,
  writeOut,
} from './codec.js';
import { FsError, errno, errnoOf } from './errors.js';
import type { Entry, Filesystem, OpenReply, RequestContext, SetattrChanges } from './filesystem.js';
import { abortConnection, explainMountFailure, mountsAt, reclaimMountpoint, setReadahead, unmountPath } from './mountpoint.js';
import { BIND_READ, BIND_WRITE, nativeFuse, OP_WRITTEN, type NativeFuse, type NativeInitInfo, type NativeStats, type SessionHandle } from './native.js';
import * as P from './protocol.js';
import { SessionState, type HandleRecord, type ServedBy } from './session-state.js';

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
  servedBy: ServedBy;
  /** Opened by an earlier process of this session: opened again in the filesystem on first use. */
  restored?: HandleRecord;
  reopening?: Promise<void>;
}

interface InodeIo {
  passthroughOpens: number;
  backingId: number;
  cachedOpens: number;
}

const O_ACCMODE = 3;
/** Request counters: one slot per kernel opcode below this, one for the C core's write reports, one for the rest. */
const OPCODE_SLOTS = 64;
const WRITTEN_SLOT = OPCODE_SLOTS;
const OTHER_SLOT = OPCODE_SLOTS + 1;
/** The kernel marks requests it sends again after FUSE_NOTIFY_RESEND (include/uapi/linux/fuse.h). */
const UNIQUE_RESEND = 1n << 63n;
const HAS_RESEND_HIGH = 1 << (39 - 32);
/** Flags that created or emptied the file: not repeated when a handle is opened again after a takeover. */
const CREATE_FLAGS = fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_TRUNC;

/** What a process serving a session it was handed needs (supervised: src/daemon/supervisor.ts). */
export interface HandedSession {
  /** The /dev/fuse descriptor of the mount, kept open by the supervisor across serving processes. */
  fd: number;
  /** The session's state (session-state.ts): empty for a new mount, else what the last process left. */
  state: SessionState;
}
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
  /** Requests that reached JS, by opcode (WRITTEN_SLOT: writes the C core landed and reported). */
  private readonly counts = new Float64Array(OPCODE_SLOTS + 2);
  private passthroughUsable: boolean;
  private endedResolve!: () => void;
  readonly ended: Promise<void>;
  private closed = false;
  private device = '';
  private state: SessionState | undefined;
  /** Lookup count changes not yet in the state: written before the next reply. */
  private pendingCounts: [number, number][] = [];
  private handingOff = false;
  private resend = false;
  /** Whether this process took the session over from an earlier one (false: it answered INIT). */
  adopted = false;

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
      s.start(fd, 0, undefined);
    } catch (err) {
      closeSync(fd);
      await unmountPath(mountpoint, true).catch(() => undefined);
      throw err;
    }
    await s.afterStart();
    return s;
  }

  /**
   * Serves a mount whose /dev/fuse descriptor this process was handed (by the supervisor, which keeps its own
   * copy). A new mount: answers INIT and records what it negotiated. A session an earlier process served
   * (killed, crashed, or handing over for an upgrade): takes it over without a second INIT, with the node ids
   * and handles the kernel holds from the state, then asks the kernel to resend the requests the earlier
   * process had read but not answered. Without resend (kernel < 6.9) it serves from a clone of the device, so
   * that requests it reads fail cleanly (ECONNABORTED) if it dies instead of waiting forever.
   */
  static async serve(fs: Filesystem, mountpoint: string, handed: HandedSession, opts: FuseMountOptions = {}): Promise<FuseSession> {
    const s = new FuseSession(fs, mountpoint, opts);
    const state = handed.state;
    s.state = state;
    const saved = state.init;
    if (saved) s.restore(state);
    try {
      s.start(handed.fd, 2, saved);
    } catch (err) {
      state.close();
      throw err;
    }
    if (saved) {
      s.adopted = true;
      s.reopenWriters();
      if (s.resend) {
        // The requests the dead process had read go back to the kernel's queue, marked with UNIQUE_RESEND.
        const rc = s.native.reply(s.session, [notifyResend()]);
        if (rc < 0) opts.log?.warn({ errno: -rc }, 'FUSE_NOTIFY_RESEND refused: requests the last process had read are lost');
      }
    } else {
      state.recordInit(s.init);
    }
    await s.afterStart(!saved);
    return s;
  }

  private start(fd: number, cloneDevice: 0 | 2, adopt: NativeInitInfo | undefined): void {
    const opts = this.opts;
    const started = this.native.start(
      fd,
      {
        threads: opts.threads ?? 4,
        maxPages: opts.maxPages ?? 256,
        splice: opts.splice ?? true,
        passthrough: this.passthroughUsable,
        maxStackDepth: opts.maxStackDepth ?? 1,
        initTimeoutMs: 10_000,
        cloneDevice,
      },
      (req) => this.onRequest(req),
      adopt,
    );
    this.session = started.session;
    this.init = started.init;
    this.resend = !started.cloned && (started.init.kernelFlagsHigh & HAS_RESEND_HIGH) !== 0;
    // What INIT negotiated, whatever this process would have asked for (a handle the kernel holds may be passthrough).
    this.passthroughUsable = this.init.passthrough && this.passthroughUsable;
  }

  private async afterStart(setReadahead_ = true): Promise<void> {
    const [m] = await mountsAt(this.mountpoint);
    this.device = m?.device ?? '';
    if (setReadahead_) await setReadahead(this.mountpoint, this.opts.readaheadKib ?? 1024);
  }

  /**
   * Handles that write to bytes only the filesystem can find again (OpenReply.resume: a file not yet in its
   * bucket) are opened again at once, before any request for their node is read: a GETATTR or LOOKUP of it must
   * find the file being written, not what the store holds.
   */
  private reopenWriters(): void {
    const ctx: RequestContext = { uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
    for (const [kfh, h] of this.handles) {
      if (h.restored?.resume === undefined) continue;
      this.fsFh(kfh, ctx).catch((err: unknown) => this.opts.log?.warn({ err, ino: h.ino }, 'cannot open a handle of the last process again'));
    }
  }

  /** Takes over the lookup counts and handles of an earlier process (before any request is read). */
  private restore(state: SessionState): void {
    const { nodes, handles } = state.snapshot;
    for (const [ino, [, count]] of nodes) this.lookups.set(ino, count);
    this.fs.adoptNodes?.(new Map([...nodes].map(([ino, [key]]) => [ino, key])));
    for (const rec of handles.values()) {
      this.handles.set(rec.fh, { fsFh: -1, ino: rec.ino, servedBy: rec.servedBy, restored: rec });
      this.nextHandle = Math.max(this.nextHandle, rec.fh + 1);
      if (rec.dir) continue;
      const io = this.ioOf(rec.ino);
      if (rec.servedBy === 'passthrough') {
        io.passthroughOpens++;
        io.backingId = rec.backingId ?? 0;
      } else {
        io.cachedOpens++;
      }
    }
  }

  get kernel(): { minor: number; passthrough: boolean; readdirplus: boolean; maxWrite: number; resend: boolean } {
    return {
      minor: this.init.minor,
      passthrough: this.passthroughUsable,
      readdirplus: (this.init.flagsLow & P.InitFlag.DO_READDIRPLUS) !== 0,
      maxWrite: this.init.maxWrite,
      resend: this.resend,
    };
  }

  /**
   * Hands the session to the next process (an upgrade): requests from now on are left unanswered, for the
   * kernel to resend to the next process; resolves once the requests in flight are answered (or after
   * `timeoutMs`, leaving the rest to be resent too) and the state is complete. The caller then exits without
   * unmounting; the supervisor keeps the fd.
   */
  async handoff(timeoutMs = 10_000): Promise<void> {
    this.handingOff = true;
    const deadline = Date.now() + timeoutMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.flushCounts();
    this.state?.close();
  }

  stats(): NativeStats & { openHandles: number; knownInodes: number } {
    return { ...this.native.stats(this.session), openHandles: this.handles.size, knownInodes: this.lookups.size };
  }

  /**
   * Requests that reached JavaScript, by operation (READ and WRITE of bound handles never do; WRITTEN counts
   * the C core's reports of writes it landed). Operations never seen are left out.
   */
  requestCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    this.counts.forEach((n, op) => {
      if (n > 0) out[op === WRITTEN_SLOT ? 'WRITTEN' : op === OTHER_SLOT ? 'OTHER' : (P.OP_NAMES[op] ?? `OP_${op}`)] = n;
    });
    return out;
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
    this.counts[h.opcode < OPCODE_SLOTS ? h.opcode : h.opcode === OP_WRITTEN ? WRITTEN_SLOT : OTHER_SLOT]!++;
    if (this.handingOff && h.opcode !== P.Op.FORGET && h.opcode !== P.Op.BATCH_FORGET && h.opcode !== OP_WRITTEN) return;
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
        this.flushCounts();
        return;
      case P.Op.BATCH_FORGET: {
        const r = new BodyReader(req);
        const count = r.u32();
        r.skip(4);
        for (let i = 0; i < count; i++) this.forget(r.u64(), r.u64());
        this.flushCounts();
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
    const resent = (h.unique & UNIQUE_RESEND) !== 0n;
    (resent ? this.handleResent(h.opcode, h.nodeid, req, ctx) : this.handle(h.opcode, h.nodeid, req, ctx)).then(
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
    // The kernel learns of node ids from this reply (or an earlier one still in flight): on record first.
    this.flushCounts();
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
        const res = await fs.getattr(ctx, ino, flags & P.FUSE_GETATTR_FH ? await this.fsFh(fh, ctx) : undefined);
        return [attrOut(res.attr, res.ttl)];
      }
      case P.Op.SETATTR: {
        if (!fs.setattr) throw new FsError('EROFS');
        const changes = this.decodeSetattr(r);
        if (changes.fh !== undefined) changes.fh = await this.fsFh(changes.fh, ctx);
        const res = await fs.setattr(ctx, ino, changes);
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
        const data = await fs.read(ctx, ino, await this.fsFh(fh, ctx), offset, size);
        return [data.length > size ? data.subarray(0, size) : data];
      }
      case P.Op.WRITE: {
        if (!fs.write) throw new FsError('EROFS');
        const fh = r.u64();
        const offset = r.u64();
        const size = r.u32();
        r.skip(4 + 8 + 4 + 4); // write_flags, lock_owner, flags, padding
        const data = r.rest().subarray(0, size);
        return [writeOut(await fs.write(ctx, ino, await this.fsFh(fh, ctx), offset, data))];
      }
      case P.Op.FLUSH: {
        const fh = r.u64();
        if (fs.flush) await fs.flush(ctx, ino, await this.fsFh(fh, ctx));
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
        if (fs.fsync) await fs.fsync(ctx, ino, await this.fsFh(fh, ctx), (fsyncFlags & P.FUSE_FSYNC_FDATASYNC) !== 0);
        return [];
      }
      case P.Op.OPENDIR: {
        const flags = r.u32();
        const reply = fs.opendir ? await fs.opendir(ctx, ino, flags) : { fh: 0 };
        const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'js' });
        this.state?.recordOpen({ fh: kfh, ino, flags, dir: true, servedBy: 'js' });
        return [openOut(kfh, reply.cacheDir ? P.FOPEN_CACHE_DIR | P.FOPEN_KEEP_CACHE : 0)];
      }
      case P.Op.READDIR:
      case P.Op.READDIRPLUS: {
        const fh = r.u64();
        const offset = r.u64();
        const size = r.u32();
        const plus = op === P.Op.READDIRPLUS;
        const entries = await fs.readdir(ctx, ino, await this.fsFh(fh, ctx), offset, plus);
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
        await h?.reopening?.catch(() => undefined);
        if (h && !h.restored) await fs.releasedir?.(ctx, ino, h.fsFh);
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
        return [entryBuf, this.openReply(entry.attr.ino, flags & ~CREATE_FLAGS, open)];
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
    if (this.state) {
      if (!this.state.known(ino)) this.state.recordNode(ino, this.fs.nodeKey?.(ino) ?? '');
      this.pendingCounts.push([ino, 1]);
    }
  }

  private forget(ino: number, n: number): void {
    const had = this.lookups.get(ino) ?? 0;
    const left = had - n;
    if (this.state && had > 0) this.pendingCounts.push([ino, -Math.min(n, had)]);
    if (left > 0) {
      this.lookups.set(ino, left);
      return;
    }
    this.lookups.delete(ino);
    if (ino !== 1) this.fs.forget?.(ino);
  }

  private flushCounts(): void {
    if (this.pendingCounts.length === 0) return;
    this.state?.recordCounts(this.pendingCounts);
    this.pendingCounts = [];
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
      this.state?.recordRelease(kfh);
    }
    return h;
  }

  /** The filesystem's handle behind a kernel handle; one opened by an earlier process is opened again first. */
  private async fsFh(kfh: number, ctx: RequestContext): Promise<number> {
    const h = this.handles.get(kfh);
    if (!h) throw new FsError('EBADF');
    if (h.restored) {
      h.reopening ??= this.reopen(kfh, h, h.restored, ctx).catch((err: unknown) => {
        h.reopening = undefined; // the next request tries again
        throw err;
      });
      await h.reopening;
    }
    return h.fsFh;
  }

  /**
   * Opens a handle of an earlier process again: the filesystem finds the node by its recorded key and opens it
   * as then (without creating or truncating again), and the handle goes back to the C path it was on. Reads of
   * passthrough handles never come here: the kernel serves them from the backing file it already holds.
   */
  private async reopen(kfh: number, h: KernelHandle, rec: HandleRecord, ctx: RequestContext): Promise<void> {
    const fs = this.fs;
    if (rec.dir) {
      h.fsFh = fs.opendir ? (await fs.opendir(ctx, rec.ino, rec.flags)).fh : 0;
      h.restored = undefined;
      return;
    }
    const flags = rec.flags & ~CREATE_FLAGS;
    const reply = fs.reopen ? await fs.reopen(ctx, rec.ino, flags, rec.resume) : await fs.open!(ctx, rec.ino, flags);
    h.fsFh = reply.fh;
    h.restored = undefined;
    if (h.servedBy === 'boundRead' && !(reply.backingPath && this.bindBacking(kfh, reply.backingPath) >= 0)) h.servedBy = 'js';
    if (h.servedBy === 'boundWrite' && !(reply.writeFd !== undefined && this.native.bind(this.session, kfh, reply.writeFd, BIND_WRITE) === 0)) {
      h.servedBy = 'js';
    }
  }

  /**
   * A request the kernel sent again after a takeover: the earlier process may have done it already. Operations
   * that are not idempotent are then judged by the result they were after (the directory exists, the name is
   * gone), as a retrying NFS client would.
   */
  private async handleResent(op: number, ino: number, req: Buffer, ctx: RequestContext): Promise<Buffer[]> {
    try {
      return await this.handle(op, ino, req, ctx);
    } catch (err) {
      const code = err instanceof FsError ? err.code : undefined;
      if (op === P.Op.MKDIR && code === 'EEXIST') {
        const name = new BodyReader(req).skip(8).name();
        return [this.entryReply(await this.fs.lookup(ctx, ino, name))];
      }
      if ((op === P.Op.UNLINK || op === P.Op.RMDIR || op === P.Op.RENAME || op === P.Op.RENAME2) && code === 'ENOENT') return [];
      if (op === P.Op.CREATE && code === 'EEXIST') {
        const again = Buffer.from(req);
        again.writeUInt32LE(again.readUInt32LE(P.IN_HEADER_SIZE) & ~fsConstants.O_EXCL, P.IN_HEADER_SIZE);
        return this.handle(op, ino, again, ctx);
      }
      throw err;
    }
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
          this.recordOpen(kfh, ino, flags, reply, backingId);
          return openOut(kfh, P.FOPEN_PASSTHROUGH | P.FOPEN_NOFLUSH, backingId);
        }
      }
      const kfh = this.allocHandle({ fsFh: reply.fh, ino, servedBy: 'boundRead' });
      const boundSize = this.bindBacking(kfh, reply.backingPath);
      if (boundSize >= 0) {
        io.cachedOpens++;
        if (boundSize >= (this.opts.directIoFromBytes ?? 32 << 20)) openFlags = (openFlags | P.FOPEN_DIRECT_IO) & ~P.FOPEN_KEEP_CACHE;
        this.recordOpen(kfh, ino, flags, reply);
        return openOut(kfh, openFlags);
      }
      this.handles.set(kfh, { fsFh: reply.fh, ino, servedBy: 'js' });
      io.cachedOpens++;
      this.recordOpen(kfh, ino, flags, reply);
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
    this.recordOpen(kfh, ino, flags, reply);
    return openOut(kfh, openFlags);
  }

  private recordOpen(kfh: number, ino: number, flags: number, reply: OpenReply, backingId?: number): void {
    if (!this.state) return;
    const rec: HandleRecord = { fh: kfh, ino, flags, dir: false, servedBy: this.handles.get(kfh)!.servedBy };
    if (backingId !== undefined) rec.backingId = backingId;
    if (reply.resume !== undefined) rec.resume = reply.resume;
    this.state.recordOpen(rec);
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
    await h.reopening?.catch(() => undefined);
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
    if (!h.restored) await this.fs.release?.(ctx, ino, h.fsFh, flags); // never opened again: nothing to release
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
    if (valid & P.FATTR_FH) c.fh = fh; // the kernel's handle: handle() swaps in the filesystem's
    return c;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.inflight.values()) ac.abort();
    this.state?.close();
    this.native.close(this.session);
    this.endedResolve();
  }
}
