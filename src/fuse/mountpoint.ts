// Mount table helpers: find what is mounted at a path, clean up a dead FUSE mount left by a killed
// daemon ("Transport endpoint is not connected"), and raise the mount's readahead window.
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { nativeFuse } from './native.js';

const execFileAsync = promisify(execFile);

export interface MountInfo {
  device: string; // "major:minor"
  mountpoint: string;
  fstype: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 3) continue;
    out.push({
      device: fields[2] ?? '',
      mountpoint: unescapeMountField(fields[4] ?? ''),
      fstype: fields[sep + 1] ?? '',
      source: unescapeMountField(fields[sep + 2] ?? ''),
    });
  }
  return out;
}

export async function mountsAt(mountpoint: string): Promise<MountInfo[]> {
  const abs = path.resolve(mountpoint);
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return parseMountInfo(text).filter((m) => m.mountpoint === abs);
}

/**
 * statfs() with a deadline: a hung FUSE server would otherwise block the caller forever. Not stat(): the
 * kernel answers a stat of the root from its attribute cache (valid for a second after the last request)
 * even when the daemon is dead, so a restart right after a kill -9 took the dead mount for a live one.
 * FUSE_STATFS is never cached: it reaches the daemon or fails with ENOTCONN.
 */
async function probe(mountpoint: string, timeoutMs: number): Promise<'alive' | 'dead' | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), timeoutMs);
  });
  const answer = fsp.statfs(mountpoint).then(
    () => 'alive' as const,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOTCONN' || err.code === 'ECONNABORTED' ? ('dead' as const) : ('alive' as const)),
  );
  try {
    return await Promise.race([answer, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Unmounts, falling back to fusermount3 when we lack CAP_SYS_ADMIN. Throws if both fail. */
export async function unmountPath(mountpoint: string, lazy: boolean): Promise<void> {
  const rc = nativeFuse().unmount(mountpoint, lazy);
  if (rc === 0) return;
  if (rc === -1 /* EPERM */ || rc === -13 /* EACCES */) {
    await execFileAsync('fusermount3', lazy ? ['-u', '-z', mountpoint] : ['-u', mountpoint]);
    return;
  }
  const err = new Error(`cannot unmount ${mountpoint}: errno ${-rc}`) as NodeJS.ErrnoException;
  err.errno = -rc;
  err.code = -rc === 16 ? 'EBUSY' : -rc === 22 ? 'EINVAL' : 'EIO';
  throw err;
}

/**
 * A failed fusermount3 (an unprivileged mount) with the usual causes named: its own message says what it
 * tripped on, but not what to change.
 */
export function explainMountFailure(err: unknown): unknown {
  if (!(err instanceof Error) || !err.message.startsWith('fusermount3 failed')) return err;
  const hint =
    'usual causes: no read-write access to /dev/fuse for this user (e.g. a container started without --device /dev/fuse, ' +
    'or /dev/fuse not mode 0666); "user_allow_other" missing from /etc/fuse.conf (needed for allow_other); ' +
    'a mountpoint that is not empty, or not owned by this user';
  return Object.assign(new Error(`${err.message}. ${hint}`, { cause: err }), { errno: (err as NodeJS.ErrnoException).errno });
}

/**
 * Makes `mountpoint` usable: removes a dead FUSE mount left behind by a killed daemon; refuses
 * (throws) if a live filesystem is mounted there.
 */
export async function reclaimMountpoint(mountpoint: string, log?: (msg: string) => void): Promise<void> {
  for (const m of await mountsAt(mountpoint)) {
    if (!m.fstype.startsWith('fuse')) {
      throw new Error(`${mountpoint} already has a ${m.fstype} filesystem mounted on it; unmount it or pick another mountpoint`);
    }
    const state = await probe(mountpoint, 2000);
    if (state === 'alive') {
      throw new Error(`${mountpoint} is already served by a running FUSE daemon (${m.source}); stop it first`);
    }
    log?.(`removing a ${state} FUSE mount at ${mountpoint} left by a previous daemon`);
    await unmountPath(mountpoint, true);
  }
  await fsp.mkdir(mountpoint, { recursive: true });
}

/** The kernel starts a FUSE bdi at 128 KiB readahead and INIT can only lower it; raise it (needs root). */
export async function setReadahead(mountpoint: string, kib: number): Promise<boolean> {
  const [m] = await mountsAt(mountpoint);
  if (!m) return false;
  try {
    await fsp.writeFile(`/sys/class/bdi/${m.device}/read_ahead_kb`, String(kib));
    return true;
  } catch {
    return false;
  }
}

/** Aborts the kernel connection of a mount (every pending and future request fails with ENOTCONN). */
export async function abortConnection(device: string): Promise<boolean> {
  const abort = `/sys/fs/fuse/connections/${device.split(':')[1]}/abort`;
  try {
    await fsp.writeFile(abort, '1');
    return true;
  } catch {
    // The fusectl filesystem is often not mounted (containers, minimal systems): mount it and retry.
    try {
      await execFileAsync('mount', ['-t', 'fusectl', 'fusectl', '/sys/fs/fuse/connections']);
      await fsp.writeFile(abort, '1');
      return true;
    } catch {
      return false;
    }
  }
}

/** The filesystem type holding `dir` (longest mountpoint prefix), e.g. "ext4" or "overlay". */
export async function filesystemTypeOf(dir: string): Promise<string | undefined> {
  const abs = path.resolve(dir);
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  let best: MountInfo | undefined;
  for (const m of parseMountInfo(text)) {
    const inside = abs === m.mountpoint || abs.startsWith(m.mountpoint === '/' ? '/' : `${m.mountpoint}/`);
    if (inside && (!best || m.mountpoint.length >= best.mountpoint.length)) best = m;
  }
  return best?.fstype;
}
