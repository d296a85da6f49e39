// Typed access to the C core (native/): mount, the session's reader threads, replies, the fast path.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeInitInfo {
  major: number;
  minor: number;
  replyMinor: number;
  kernelFlagsLow: number;
  kernelFlagsHigh: number;
  flagsLow: number;
  flagsHigh: number;
  maxWrite: number;
  maxReadahead: number;
  passthrough: boolean;
}

export interface NativeSessionConfig {
  threads: number;
  maxPages: number;
  splice: boolean;
  passthrough: boolean;
  maxStackDepth: number;
  initTimeoutMs: number;
  /**
   * Serve from a clone of the device (FUSE_DEV_IOC_CLONE): requests this process read are ended by the kernel
   * (ECONNABORTED) if it dies, while other holders of the fd keep the connection. 0 never, 1 always,
   * 2 when the kernel cannot resend them (no FUSE_HAS_RESEND).
   */
  cloneDevice?: 0 | 1 | 2;
}

export interface NativeStats {
  fastReads: number;
  fastBytes: number;
  fastWrites: number;
  fastWritten: number;
  forwarded: number;
  notifyErrors: number;
  /** Queued replies the kernel refused (other than for interrupted requests or an unmounted device). */
  replyErrors: number;
}

/** native/src/session.h GF_BIND_*: reads served from the file / writes landed in it. */
export const BIND_READ = 1;
export const BIND_WRITE = 2;
export type BindMode = typeof BIND_READ | typeof BIND_WRITE;
/** native/src/session.h GF_OP_WRITTEN: not a kernel opcode but the C core's report of a write it landed. */
export const OP_WRITTEN = 0x47460001;

export type SessionHandle = { readonly __brand: 'FuseSession' };

export interface NativeFuse {
  mount(
    mountpoint: string,
    opts: { fsname: string; subtype: string; allowOther: boolean; defaultPermissions: boolean; readOnly: boolean },
  ): { fd: number; fusermount: boolean };
  /** 0 or -errno */
  unmount(mountpoint: string, lazy: boolean): number;
  /**
   * Serves the session on fd: answers INIT, or with `adopt` takes over a session whose INIT an earlier process
   * answered (what it negotiated). The fd belongs to the session from then on, unless start throws.
   */
  start(
    fd: number,
    cfg: NativeSessionConfig,
    onRequest: (req: Buffer | null) => void,
    adopt?: NativeInitInfo,
  ): { session: SessionHandle; init: NativeInitInfo; cloned: boolean };
  /** 0 or -errno. queued: the buffers are copied and written by the reply thread (errors then go to stats). */
  reply(session: SessionHandle, bufs: Buffer[], queued?: boolean): number;
  notify(session: SessionHandle, msg: Buffer): number;
  /** Binds a kernel handle to (a dup of) fd for the C fast path of `mode`: 0 or -errno. */
  bind(session: SessionHandle, fh: number, fd: number, mode: BindMode): number;
  unbind(session: SessionHandle, fh: number): number;
  /** backing id (> 0) or -errno */
  backingOpen(session: SessionHandle, fd: number): number;
  backingClose(session: SessionHandle, backingId: number): number;
  stats(session: SessionHandle): NativeStats;
  close(session: SessionHandle): void;
  /** syncfs(2) of the filesystem holding fd, off the JS thread: resolves with 0 or -errno. */
  syncfs(fd: number): Promise<number>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The C core, loaded on first use so that commands that never mount need no built addon. The memo is
 * Node's: its module cache keeps the one instance loaded and returns it to every later call.
 * GRADIENT_NATIVE_ADDON selects another build (the AddressSanitizer one in tests); by default
 * src/fuse or dist/fuse → ../../native/build/Release.
 */
export function nativeFuse(env: NodeJS.ProcessEnv = process.env): NativeFuse {
  const addonPath = env.GRADIENT_NATIVE_ADDON ?? path.resolve(here, '../../native/build/Release/gradient_fuse.node');
  try {
    return createRequire(import.meta.url)(addonPath) as NativeFuse;
  } catch (err) {
    throw new Error(`cannot load the native FUSE core at ${addonPath}: run \`npm run build:native\``, { cause: err });
  }
}
