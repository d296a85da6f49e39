// The real `gradient mount` as a child process (as the daemon tests start it), for tests that kill it,
// restart it on the same mountpoint and cache, and read its log. Every start appends to one log file, so
// a test can check what any of the runs said (and that none of them printed a secret).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchStatus, waitForReady } from '../../src/daemon/client.js';
import type { DaemonStatus } from '../../src/daemon/status.js';
import { forceUnmount } from './fuse-mount.js';

const root = path.resolve(import.meta.dirname, '../..');

export interface DaemonProcessOptions {
  settings: string;
  mountpoint: string;
  socket: string;
  cacheDir: string;
  logFile: string;
  /** Config file (--config); absent: none. */
  config?: string;
  cacheSize?: string;
  env: NodeJS.ProcessEnv;
  /** More `gradient mount` flags. */
  args?: string[];
  /** A command the daemon runs under (e.g. a shell that joins a cgroup and execs its arguments). */
  wrap?: string[];
}

export class DaemonProcess {
  child: ChildProcess | undefined;
  /** How many times the process was started, and killed with SIGKILL. */
  starts = 0;
  kills = 0;

  constructor(readonly opts: DaemonProcessOptions) {}

  /** Spawns `gradient mount` and resolves with its first ready status; throws with the log's tail if it dies first. */
  async start(timeoutMs = 60_000): Promise<DaemonStatus> {
    const child = this.spawn();
    this.child = child;
    this.starts++;
    const died = new AbortController();
    child.once('exit', () => died.abort());
    try {
      return await waitForReady(this.opts.socket, { timeoutMs, signal: died.signal });
    } catch (err) {
      throw new Error(`gradient mount did not become ready (${(err as Error).message}); log tail:\n${this.log().slice(-3000)}`);
    }
  }

  /**
   * Runs `gradient mount` expecting it to give up (e.g. a bad config file): resolves with its exit code and
   * what it printed. Another daemon may be running meanwhile: this one is a separate process.
   */
  async startExpectingFailure(timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
    const before = this.log().length;
    const child = this.spawn();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      new Promise<number | null>((r) => child.once('exit', (c) => r(c))),
      new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`gradient mount was expected to fail but still runs; log tail:\n${this.log().slice(-3000)}`);
    }
    return { code, output: this.log().slice(before) };
  }

  private spawn(): ChildProcess {
    const o = this.opts;
    const args = ['--import', 'tsx', 'src/cli/main.ts'];
    if (o.config) args.push('--config', o.config);
    args.push('mount', '--settings', o.settings, '--mountpoint', o.mountpoint, '--socket', o.socket, '--cache-dir', o.cacheDir, '--cache-size', o.cacheSize ?? '4G', ...(o.args ?? []));
    const [cmd, ...rest] = [...(o.wrap ?? []), process.execPath, ...args];
    const log = openSync(o.logFile, 'a');
    try {
      return spawn(cmd!, rest, { cwd: root, env: o.env, stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * kill -9 of `gradient mount` (the supervisor, which holds the mount): no handler runs; its serving process
   * exits at once when it sees the supervisor gone, and the mount is left dead, the cache lock and staging files
   * as they are. Resolves once both processes are gone.
   */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) throw new Error('the daemon is not running');
    const server = await this.serverPid();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    if (server !== undefined) await gone(server);
    this.kills++;
  }

  /**
   * kill -9 of the serving process only: the supervisor keeps the FUSE session and starts a new serving process
   * on it. Resolves with the killed pid once it is gone (the new one may still be starting).
   */
  async killServer9(): Promise<number> {
    const server = await this.serverPid();
    if (server === undefined) throw new Error('no serving process answers on the status socket');
    process.kill(server, 'SIGKILL');
    await gone(server);
    this.kills++;
    return server;
  }

  /** The pid of the process serving the mount now (the status socket's answer). */
  async serverPid(): Promise<number | undefined> {
    return (await fetchStatus(this.opts.socket, 2000).catch(() => undefined))?.pid;
  }

  /** SIGTERM (a clean stop: drain, unmount), SIGKILL if it does not exit within `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (late) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** For afterAll/afterEach: stops whatever runs and leaves nothing mounted. */
  async cleanup(): Promise<void> {
    await this.stop().catch(() => undefined);
    await forceUnmount(this.opts.mountpoint);
  }

  status(): Promise<DaemonStatus> {
    return fetchStatus(this.opts.socket);
  }

  /** Everything every run has logged so far. */
  log(): string {
    try {
      return readFileSync(this.opts.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

/**
 * Resolves once process `pid` has let go of everything: reaped, or a zombie whose threads have all exited (the
 * leader shows Z while its other threads still run their exit and hold its files, /dev/fuse included).
 */
async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  const alive = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') return true;
      return readdirSync(`/proc/${pid}/task`).length > 1;
    } catch {
      return false;
    }
  };
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** The number of mounts at `dir` in this mount namespace. */
export function mountCount(dir: string): number {
  const abs = path.resolve(dir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === abs).length;
}

/**
 * A temporary directory named now but created by `create()` (in beforeAll): nothing is made while tests are
 * collected, so a filtered run that skips a whole describe (and so its afterAll) leaves nothing behind.
 */
export function laterTempDir(prefix: string): { dir: string; create: () => void; remove: () => void } {
  const dir = path.join(tmpdir(), `${prefix}${randomBytes(6).toString('hex')}`);
  return { dir, create: () => mkdirSync(dir, { mode: 0o700 }), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * One test daemon's home (created in beforeAll via `work.create()`): settings.yaml, socket, log, cache and
 * secrets directory inside it, and the environment `gradient` runs with. `layout` (paths relative to the
 * home) moves the mountpoint or the cache and adds a config file.
 */
export function daemonHome(prefix: string, layout: { mountpoint?: string; cacheDir?: string; config?: string } = {}) {
  const work = laterTempDir(prefix);
  const home = work.dir;
  const mnt = path.join(home, layout.mountpoint ?? 'datasets');
  const settings = path.join(home, 'settings.yaml');
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: process.env.PATH,
    GRADIENT_SECRETS_DIR: path.join(home, 'secrets'),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const daemon = new DaemonProcess({
    settings,
    mountpoint: mnt,
    socket: path.join(home, 'daemon.sock'),
    cacheDir: path.join(home, layout.cacheDir ?? 'cache'),
    logFile: path.join(home, 'daemon.log'),
    ...(layout.config === undefined ? {} : { config: path.join(home, layout.config) }),
    env,
  });
  /** Writes a secret the daemon's settings can name as `secret:<name>` (creates the secrets directory). */
  const writeSecret = (name: string, value: string): void => {
    mkdirSync(env.GRADIENT_SECRETS_DIR!, { recursive: true });
    writeFileSync(path.join(env.GRADIENT_SECRETS_DIR!, name), `${value}\n`);
  };
  return { work, home, mnt, settings, env, daemon, writeSecret };
}
