// The real `gradient mount` daemon as a child process, for every benchmark that mounts: built JavaScript
// (dist/, as installed), configured as users configure it — a settings.yaml naming the entries and a
// config.yaml for the cache (dir, size) and any storage providers — with its own home, mountpoint, socket
// and log. Measured from the outside only: through the mount (in child processes), /proc/<pid>/stat (CPU),
// its status socket (request counts) and, for the RSS benchmark, a preloaded memory probe.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { fetchStatus, waitForReady } from '../src/daemon/client.js';
import type { DaemonStatus } from '../src/daemon/status.js';
import { procCpu, sh } from './lib.js';

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

/**
 * Requests the daemon has served and sent so far, as `gradient status --json` reports them (`requests`):
 * FUSE requests from the kernel and requests to the object stores, by operation. Undefined when this
 * build's status has no such field.
 */
export interface RequestCounts {
  fuse: Record<string, number>;
  store: Record<string, number>;
}

/** The difference of two request counts, totalled: store requests split into GET, HEAD and LIST. */
export interface RequestDelta {
  fuse: number;
  store: number;
  get: number;
  head: number;
  list: number;
}

/** Store operations by kind, whatever their spelling (`GET`, `get`, `GetObject`, `ListObjectsV2`, …). */
function storeKind(op: string): 'get' | 'head' | 'list' | undefined {
  const o = op.toLowerCase();
  if (o.includes('list')) return 'list';
  if (o.includes('head')) return 'head';
  if (o.includes('get')) return 'get';
  return undefined;
}

export function requestDelta(before: RequestCounts | undefined, after: RequestCounts | undefined): RequestDelta | undefined {
  if (!before || !after) return undefined;
  // Only numeric counters count: a shape other than `{ op: number }` gives zeros, never NaN.
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
  const sum = (a: Record<string, number> | undefined, b: Record<string, number> | undefined, pick: (op: string) => boolean) =>
    Object.keys(b ?? {}).filter(pick).reduce((n, op) => n + num(b?.[op]) - num(a?.[op]), 0);
  return {
    fuse: sum(before.fuse, after.fuse, () => true),
    store: sum(before.store, after.store, () => true),
    get: sum(before.store, after.store, (op) => storeKind(op) === 'get'),
    head: sum(before.store, after.store, (op) => storeKind(op) === 'head'),
    list: sum(before.store, after.store, (op) => storeKind(op) === 'list'),
  };
}

export interface DaemonOptions {
  /** The daemon's directory: settings.yaml, config.yaml, daemon.sock, daemon.log, datasets/ and cache/ go in it. */
  home: string;
  /** Its whole environment (nothing is inherited): HOME, PATH, GRADIENT_SECRETS_DIR, AWS_CA_BUNDLE, … */
  env: NodeJS.ProcessEnv;
  /** settings.yaml as written before the start; absent: none (public datasets only). */
  settings?: string;
  /** config.yaml's sections other than `cache:` (teamId, storageProviders, publicDatasets, buckets). */
  config?: Record<string, unknown>;
  /** `cache:` of config.yaml: the bound (default 1G) and the free space kept (default: the cache's own). */
  cacheMaxSize?: string | number;
  cacheMinFreeSpace?: string | number;
  /** `cache.shared` of config.yaml: a shared tier (url, endpoint, keys). */
  cacheShared?: Record<string, unknown>;
  /** Entries that must be serving (state ok) before the start counts as done. */
  entries?: string[];
  /** Preload bench/rss-probe.mjs (and --expose-gc): probe() then reports memory after a full GC. */
  rssProbe?: boolean;
  timeoutMs?: number;
  /** More `gradient mount` flags (e.g. --memory-target 256M). */
  mountArgs?: string[];
  /** A command the daemon runs under (e.g. a shell that joins a cgroup, then execs its arguments). */
  wrap?: string[];
}

export interface DaemonProcess {
  child: ChildProcess;
  /** `gradient mount`: the supervisor, which holds the FUSE session. */
  pid: number;
  /** The process serving the mount (the status socket's pid) when the start completed. */
  servingPid: number;
  home: string;
  mnt: string;
  settings: string;
  config: string;
  socket: string;
  cacheDir: string;
  logFile: string;
  status(): Promise<DaemonStatus>;
  /** CPU seconds the daemon has used so far (utime + stime of all threads, supervisor and serving process). */
  cpu(): number;
  /** Request counts from the status socket; undefined if this build does not report them. */
  requests(): Promise<RequestCounts | undefined>;
  /** RSS now of the supervisor and the serving process together, as the kernel counts it (no GC forced), MiB. */
  rssNow(): number;
  /** A full GC in the daemon, then its memory figures (needs `rssProbe`). */
  probe(): Promise<MemoryFigures>;
  /** SIGTERM (drain, unmount), SIGKILL after 30 s; the mountpoint is detached if anything is left. */
  stop(): Promise<void>;
}

/** Compiles src/ into dist/ (what `gradient` runs when installed). */
export async function buildDist(): Promise<void> {
  await sh(`cd ${repo} && npx tsc -p tsconfig.build.json`);
}

/** The last lines of a log file, for error messages. */
export function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Runs `node dist/cli/main.js --config <home>/config.yaml mount …` and waits until it (and `entries`) serve. */
export async function startDaemonProcess(opts: DaemonOptions): Promise<DaemonProcess> {
  const { home, env } = opts;
  const mnt = path.join(home, 'datasets');
  const settings = path.join(home, 'settings.yaml');
  const config = path.join(home, 'config.yaml');
  const socket = path.join(home, 'daemon.sock');
  const cacheDir = path.join(home, 'cache');
  const logFile = path.join(home, 'daemon.log');
  const probeOut = path.join(home, 'rss-probe.jsonl');
  await mkdir(mnt, { recursive: true });
  if (opts.settings !== undefined) writeFileSync(settings, opts.settings);
  const cache: Record<string, string | number> = { dir: cacheDir, maxSize: opts.cacheMaxSize ?? '1G' };
  if (opts.cacheMinFreeSpace !== undefined) cache.minFreeSpace = opts.cacheMinFreeSpace;
  const shared = opts.cacheShared ? { shared: opts.cacheShared } : {};
  writeFileSync(config, YAML.stringify({ ...opts.config, cache: { ...cache, ...shared } }), { mode: 0o600 });

  const node = opts.rssProbe ? ['--expose-gc', '--import', path.join(repo, 'bench/rss-probe.mjs')] : [];
  const log = openSync(logFile, 'a');
  const [cmd, ...args] = [
    ...(opts.wrap ?? []),
    process.execPath,
    ...node,
    path.join(repo, 'dist/cli/main.js'),
    ...['--config', config, 'mount', '--settings', settings, '--mountpoint', mnt, '--socket', socket, ...(opts.mountArgs ?? [])],
  ];
  const child = spawn(cmd!, args, { cwd: repo, env: { ...env, GD_RSS_PROBE_OUT: probeOut }, stdio: ['ignore', log, log] });
  closeSync(log);
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (running()) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
      if (running()) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await sh(`mountpoint -q ${mnt} && umount -l ${mnt}; true`).catch(() => undefined);
  };
  const status = () => fetchStatus(socket);
  try {
    const died = new AbortController();
    void exited.then(() => died.abort());
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const first = await waitForReady(socket, { timeoutMs, signal: died.signal });
    const deadline = Date.now() + timeoutMs;
    for (let s = first; ; s = await status()) {
      const bad = (opts.entries ?? []).map((name) => s.mounts.find((m) => m.name === name) ?? { name, state: 'absent', lastError: null });
      if (bad.every((m) => m.state === 'ok')) break;
      if (!running() || Date.now() > deadline) {
        throw new Error(`entries not serving: ${bad.filter((m) => m.state !== 'ok').map((m) => `${m.name} ${m.state}${m.lastError ? ` (${m.lastError})` : ''}`).join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw new Error(`gradient mount in ${home}: ${(err as Error).message}\n${logTail(logFile)}`);
  }
  let probes = 0;
  const servingPid = (await status()).pid;
  const rss = (p: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]) / 1024;
  return {
    child,
    pid,
    servingPid,
    home,
    mnt,
    settings,
    config,
    socket,
    cacheDir,
    logFile,
    status,
    cpu: () => procCpu(pid) + (servingPid === pid ? 0 : procCpu(servingPid)),
    requests: async () => ((await status()) as DaemonStatus & { requests?: RequestCounts }).requests,
    rssNow: () => rss(pid) + (servingPid === pid ? 0 : rss(servingPid)),
    probe: async () => {
      if (!opts.rssProbe) throw new Error('the daemon was started without the memory probe');
      process.kill(servingPid, 'SIGUSR2'); // the supervisor takes SIGUSR2 as an upgrade
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

/** Mountpoints under `dir` (or `dir` itself) in this mount namespace; reading /proc never touches a FUSE mount. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Removes a benchmark's directory, unless something is still mounted in it. */
export function removeHome(home: string): void {
  const mounts = mountsUnder(home);
  if (mounts.length) {
    console.error(`${home} still has a mount in it (${mounts.join(' ')}): left in place`);
    return;
  }
  rmSync(home, { recursive: true, force: true });
}
