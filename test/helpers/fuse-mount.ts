// Mount helpers for engine tests: a fresh mountpoint per test, always unmounted and removed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Filesystem } from '../../src/fuse/filesystem.js';
import { unmountPath, mountsAt } from '../../src/fuse/mountpoint.js';
import { FuseSession, type FuseMountOptions } from '../../src/fuse/session.js';

export const run = promisify(execFile);

/**
 * Runs a shell command in a child process (never block this process's thread on its own mount).
 * Do not spawn while this process holds a *writable* file of an in-process mount: the child's exec
 * closes the inherited descriptor, and its FLUSH can only be answered by this (suspended) thread.
 */
export async function sh(cmd: string, opts: { cwd?: string } = {}): Promise<string> {
  const { stdout } = await run('bash', ['-c', cmd], { cwd: opts.cwd, maxBuffer: 64 << 20 });
  return stdout;
}

/** Runs a shell command and returns its exit code and stderr instead of throwing. */
export async function shStatus(cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('bash', ['-c', cmd]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Mounted {
  session: FuseSession;
  mountpoint: string;
  cleanup: () => Promise<void>;
}

/** Mounts not yet cleaned up in this test file (see unmountLeftovers). */
const live = new Set<Mounted>();

export async function mountForTest(fs: Filesystem, opts: FuseMountOptions = {}): Promise<Mounted> {
  const { dir, remove } = tempDir('gd-mnt-');
  const session = await FuseSession.mount(fs, dir, opts);
  const mounted: Mounted = {
    session,
    mountpoint: dir,
    cleanup: async () => {
      live.delete(mounted);
      // A request the filesystem never answers would hold a clean unmount forever: detach after a bound.
      await Promise.race([session.unmount().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
      await forceUnmount(dir);
      remove();
    },
  };
  live.add(mounted);
  return mounted;
}

/**
 * Cleans up mounts a test left behind: one that timed out never reaches its `finally` (its await on a
 * process stuck in the mount never returns). Run after every test file (test/setup/leftover-mounts.ts).
 */
export async function unmountLeftovers(): Promise<number> {
  const left = [...live];
  for (const m of left) await m.cleanup();
  return left.length;
}

/** Last resort for a test that failed half-way: nothing may stay mounted. */
export async function forceUnmount(dir: string): Promise<void> {
  for (let i = 0; i < 3 && (await mountsAt(dir)).length > 0; i++) {
    await unmountPath(dir, true).catch(() => undefined);
  }
}
