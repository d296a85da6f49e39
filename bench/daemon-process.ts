// The real `gradient mount` daemon as a child process, for benchmarks: built JavaScript (dist/, as installed),
// its own HOME, settings.yaml, mountpoint, socket and cache. Measured from the outside: through the mount
// (in other processes or the thread pool, never blocking on our own thread) and through /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fetchStatus, waitForReady } from '../src/daemon/client.js';
import type { DaemonStatus } from '../src/daemon/status.js';
import { sh } from './lib.js';

const repo = path.resolve(import.meta.dirname, '..');

export interface MemoryFigures {
  /** MiB, after a full GC. */
  rss: number;
  rssAnon: number;
  rssFile: number;
  /** VmHWM: the highest RSS so far. */
  peakRss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface DaemonProcess {
  child: ChildProcess;
  mnt: string;
  settings: string;
  socket: string;
  status(): Promise<DaemonStatus>;
  /** RSS now, as the kernel counts it (no GC forced), MiB. */
  rssNow(): number;
  /** A full GC in the daemon, then its memory figures. */
  probe(): Promise<MemoryFigures>;
  stop(): Promise<void>;
}

/** Compiles src/ into dist/ (what `gradient` runs when installed). */
export async function buildDist(): Promise<void> {
  await sh(`cd ${repo} && npx tsc -p tsconfig.build.json`);
}

export async function startDaemonProcess(home: string, env: NodeJS.ProcessEnv): Promise<DaemonProcess> {
  const mnt = path.join(home, 'datasets');
  const settings = path.join(home, 'settings.yaml');
  const socket = path.join(home, 'daemon.sock');
  const probeOut = path.join(home, 'rss-probe.jsonl');
  await mkdir(mnt, { recursive: true });
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', path.join(repo, 'bench/rss-probe.mjs'), path.join(repo, 'dist/cli/main.js'), 'mount',
      '--settings', settings, '--mountpoint', mnt, '--socket', socket, '--cache-dir', path.join(home, 'cache'), '--cache-size', '1G'],
    { cwd: repo, env: { ...env, GD_RSS_PROBE_OUT: probeOut }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await sh(`mountpoint -q ${mnt} && umount -l ${mnt}; true`).catch(() => undefined);
  };
  try {
    await waitForReady(socket, { timeoutMs: 60_000 });
  } catch (err) {
    await stop();
    throw err;
  }
  let probes = 0;
  return {
    child,
    mnt,
    settings,
    socket,
    status: () => fetchStatus(socket),
    rssNow: () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024,
    probe: async () => {
      child.kill('SIGUSR2');
      probes++;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const lines = existsSync(probeOut) ? readFileSync(probeOut, 'utf8').trim().split('\n') : [];
        if (lines.length >= probes && lines[probes - 1]) return JSON.parse(lines[probes - 1]!) as MemoryFigures;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the daemon did not answer the memory probe');
    },
    stop,
  };
}

/** Removes a benchmark's home directory, unless something is still mounted in it. */
export function removeHome(home: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '');
  if (mounts.some((m) => m === home || m.startsWith(`${home}/`))) {
    console.error(`${home} still has a mount in it: left in place`);
    return;
  }
  rmSync(home, { recursive: true, force: true });
}
