// `gradient mount` as a supervisor: it mounts, keeps the mount's /dev/fuse descriptor, and runs the daemon that
// serves it as a child process (this CLI again), handing it the descriptor as fd 3. When that process dies (a bug,
// the OOM killer, kill -9) the kernel keeps the session and queues requests; the supervisor starts a new process
// on the same descriptor, which takes the session over (src/fuse/session.ts FuseSession.serve) and asks the kernel
// to resend what the dead one had read. Readers wait instead of failing. An upgrade (SIGUSR2, `gradient mount
// --upgrade`) asks the process to hand over and starts the binary on disk now.
//
// Deliberately small and boring: no FUSE serving, no storage, no settings. It mounts (the same code as a daemon
// without supervisor), forwards signals, restarts with a short backoff and gives up, unmounting, after repeated
// crashes. JS rather than a C helper: it reuses the mount code (mount(2) or fusermount3), the logger and the CLI's
// own arguments, and Node's child_process passes a descriptor to a child as one more stdio entry.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { processAlive } from '../cache/lock.js';
import { abortConnection, explainMountFailure, mountsAt, reclaimMountpoint, unmountPath } from '../fuse/mountpoint.js';
import { nativeFuse } from '../fuse/native.js';
import type { RunningDaemon } from './daemon.js';
import type { Logger } from './logger.js';

/** The serving process's exit code after handing the session over (upgrade): start the next one at once. */
export const HANDOFF_EXIT = 75;
const FD_ENV = 'GRADIENT_SESSION_FD';
const DIR_ENV = 'GRADIENT_SESSION_DIR';
/** Set for an upgrade's new serving process: it loads, then waits for the running one to hand the session over. */
const STANDBY_ENV = 'GRADIENT_SESSION_STANDBY';
/** How long an upgrade's new process may take to load before the upgrade is called off. */
const STANDBY_TIMEOUT_MS = 60_000;

export interface SupervisorOptions {
  mountpoint: string;
  /** How to run the serving process: this CLI again with the same arguments. */
  command: string[];
  env: NodeJS.ProcessEnv;
  /** Where the session's state directory goes (next to the status socket: /run/gradient as root). */
  runtimeDir: string;
  allowOther: boolean;
  log: Logger;
  /** Give up after this many crashes within `crashWindowMs` (default 5 in a minute). */
  maxCrashes?: number;
  crashWindowMs?: number;
}

/** Delay before restarting after the n-th crash in the window (a first crash restarts at once). */
const BACKOFF_MS = [0, 250, 1000, 2000, 4000];

/** In a serving process started by the supervisor: the descriptor and the state directory it was handed. */
export function handedSession(env: NodeJS.ProcessEnv): { fd: number; stateDir: string; standby: boolean } | undefined {
  const fd = Number(env[FD_ENV]);
  const stateDir = env[DIR_ENV];
  return Number.isInteger(fd) && fd > 2 && stateDir ? { fd, stateDir, standby: env[STANDBY_ENV] === '1' } : undefined;
}

/**
 * Mounts, runs serving processes until a stop (SIGTERM/SIGINT: the serving process unmounts), and resolves with
 * the exit code: the serving process's on a stop, or on a failure before it was ever ready; 1 after giving up.
 */
export async function supervise(opts: SupervisorOptions): Promise<number> {
  const { log } = opts;
  await reclaimMountpoint(opts.mountpoint, (msg) => log.warn({ mountpoint: opts.mountpoint }, msg));
  const stateDir = sessionDir(opts.runtimeDir);
  let fd: number;
  try {
    fd = nativeFuse().mount(opts.mountpoint, {
      fsname: 'gradient',
      subtype: 'gradient',
      allowOther: opts.allowOther,
      defaultPermissions: true,
      readOnly: false,
    }).fd;
  } catch (err) {
    rmSync(stateDir, { recursive: true, force: true });
    throw explainMountFailure(err);
  }
  const [mounted] = await mountsAt(opts.mountpoint);
  const sup = new Supervisor(opts, fd, stateDir, mounted?.device ?? '');
  return sup.run();
}

class Supervisor {
  private child: ChildProcess | undefined;
  /** An upgrade's new serving process, loading or loaded, until the running one has handed the session over. */
  private standby: ChildProcess | undefined;
  /** The standby has loaded and waits for its turn (watchSupervisor's turn()). */
  private standbyLoaded = false;
  private everReady = false;
  private stopping = false;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private resolveDone!: (code: number) => void;
  private readonly done = new Promise<number>((r) => (this.resolveDone = r));

  constructor(
    private readonly opts: SupervisorOptions,
    private readonly fd: number,
    private readonly stateDir: string,
    private readonly device: string,
  ) {}

  run(): Promise<number> {
    const onTerm = () => this.stop();
    const onHup = () => this.child?.kill('SIGHUP');
    const onUpgrade = () => this.upgrade();
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
    process.on('SIGHUP', onHup);
    process.on('SIGUSR2', onUpgrade);
    this.spawn();
    return this.done.finally(() => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUpgrade);
    });
  }

  private spawn(): void {
    this.restartTimer = undefined;
    this.child = this.start(false);
  }

  /** Starts a serving process on the session; `standby`: an upgrade's, which waits for its turn (watchSupervisor). */
  private start(standby: boolean): ChildProcess {
    const [cmd, ...args] = this.opts.command;
    const child = spawn(cmd!, args, {
      // fd 3: the mount's /dev/fuse (the child's copy; ours keeps the session alive when it dies). fd 4: IPC.
      stdio: ['ignore', 'inherit', 'inherit', this.fd, 'ipc'],
      env: { ...this.opts.env, [FD_ENV]: '3', [DIR_ENV]: this.stateDir, ...(standby ? { [STANDBY_ENV]: '1' } : {}) },
    });
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') this.everReady = true;
      if (m?.type === 'standby' && child === this.standby) {
        this.standbyLoaded = true;
        this.handOver();
      }
    });
    child.once('error', (err) => this.opts.log.error({ err }, 'cannot start the serving process'));
    child.once('exit', (code, signal) => this.exited(child, code, signal));
    this.opts.log.info({ child: child.pid, standby }, standby ? 'upgrade: new serving process started, loading' : 'serving process started');
    return child;
  }

  /** The upgrade's new process has loaded: the running one hands the session over (and exits with HANDOFF_EXIT). */
  private handOver(): void {
    const child = this.child;
    if (!child?.connected) return this.promote(); // it died meanwhile: nobody to wait for
    this.opts.log.info({ child: child.pid, next: this.standby?.pid }, 'upgrade: asking the serving process to hand the session over');
    child.send({ type: 'handoff' });
  }

  /** The loaded standby becomes the serving process: it takes the session over now. */
  private promote(): void {
    const next = this.standby!;
    this.child = next;
    this.standby = undefined;
    this.standbyLoaded = false;
    next.send({ type: 'go' });
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const log = this.opts.log;
    if (child === this.standby) {
      this.standby = undefined;
      this.standbyLoaded = false;
      if (this.stopping) return;
      if (this.child) {
        log.error({ child: child.pid, code, signal }, 'upgrade: the new serving process exited before it took over: the running one goes on');
      } else {
        log.error({ child: child.pid, code, signal }, 'upgrade: the new serving process exited before it took over, and the old one is gone: starting another');
        this.spawn();
      }
      return;
    }
    if (this.child === child) this.child = undefined;
    if (this.stopping) return void this.finish(code ?? 1);
    if (this.standby) {
      // Handed over for an upgrade (or died while one was loading): the new process takes over once loaded.
      log.info({ child: child.pid, code, signal, next: this.standby.pid }, 'the serving process let go of the session: the upgrade\'s new one takes over');
      if (this.standbyLoaded) this.promote();
      return;
    }
    if (code === HANDOFF_EXIT) {
      log.info({ child: child.pid }, 'the serving process handed the session over: starting the new one');
      return this.spawn();
    }
    if (!this.everReady) {
      log.error({ child: child.pid, code, signal }, 'the serving process exited before it was ready: unmounting');
      return void this.finish(code || 1);
    }
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < (this.opts.crashWindowMs ?? 60_000));
    this.crashes.push(now);
    if (this.crashes.length >= (this.opts.maxCrashes ?? 5)) {
      log.error({ crashes: this.crashes.length }, 'the serving process keeps crashing: giving up and unmounting');
      return void this.finish(1);
    }
    const delay = BACKOFF_MS[Math.min(this.crashes.length, BACKOFF_MS.length) - 1]!;
    log.warn({ child: child.pid, code, signal, restartInMs: delay }, 'the serving process died: starting a new one on the same FUSE session');
    this.restartTimer = setTimeout(() => this.spawn(), delay);
  }

  private stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.standby?.kill('SIGKILL'); // loading only: nothing of the session is its yet
    // The serving process drains uploads and unmounts; between two of them there is nobody to: we do.
    if (this.child) this.child.kill('SIGTERM');
    else void this.finish(0);
  }

  /**
   * Starts the new serving process first and lets it load (Node, our modules, the config), and only then has the
   * running one hand the session over: readers wait for the takeover alone, not for a process start.
   */
  private upgrade(): void {
    if (!this.child?.connected || this.stopping) {
      this.opts.log.warn('upgrade requested while no serving process runs: ignored');
      return;
    }
    if (this.standby) {
      this.opts.log.warn('upgrade requested while one is under way: ignored');
      return;
    }
    const standby = this.start(true);
    this.standby = standby;
    setTimeout(() => {
      if (this.standby !== standby) return;
      this.opts.log.error({ child: standby.pid }, `upgrade: the new serving process did not load within ${STANDBY_TIMEOUT_MS / 1000} s: called off`);
      standby.kill('SIGKILL');
    }, STANDBY_TIMEOUT_MS).unref();
  }

  /** Unmounts if the serving process did not (gave up, failed, or stopped between two processes) and lets go. */
  private async finish(code: number): Promise<void> {
    const { mountpoint, log } = this.opts;
    if ((await mountsAt(mountpoint)).some((m) => m.device === this.device)) {
      await unmountPath(mountpoint, true).catch((err: unknown) => log.warn({ err }, 'unmounting failed'));
      // A lazily detached mount still in use would leave its readers waiting for an answer that never comes.
      if (this.device) await abortConnection(this.device);
    }
    closeSync(this.fd);
    rmSync(this.stateDir, { recursive: true, force: true });
    this.resolveDone(code);
  }
}

/**
 * A fresh directory for the session's state, holding our pid; directories of supervisors that are gone (kill -9)
 * are removed on the way.
 */
function sessionDir(runtimeDir: string): string {
  mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
  for (const name of readdirSync(runtimeDir).filter((n) => n.startsWith('session-'))) {
    const dir = path.join(runtimeDir, name);
    let pid = 0;
    try {
      pid = Number(readFileSync(path.join(dir, 'supervisor.pid'), 'utf8'));
    } catch {
      // no pid: a directory being made, or not ours
      continue;
    }
    if (!processAlive(pid)) rmSync(dir, { recursive: true, force: true });
  }
  const dir = mkdtempSync(path.join(runtimeDir, 'session-'));
  writeFileSync(path.join(dir, 'supervisor.pid'), String(process.pid), { mode: 0o600 });
  return dir;
}

/**
 * In the serving process: tells the supervisor it is ready, hands the session over when asked (upgrade) and
 * exits with HANDOFF_EXIT, and dies at once if the supervisor is gone (kill -9 of `gradient mount`): the mount
 * is then dead, as it would be without a supervisor, and the next start cleans it up.
 */
export function watchSupervisor(log: Logger, env: NodeJS.ProcessEnv): { turn(): Promise<void>; ready(daemon: RunningDaemon): void } {
  process.once('disconnect', () => {
    log.error('the supervisor is gone: exiting');
    process.kill(process.pid, 'SIGKILL');
  });
  // An upgrade's new process: the supervisor says when the running one has handed the session over.
  const go = new Promise<void>((resolve) => {
    const onMessage = (m: { type?: string }) => {
      if (m?.type !== 'go') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
  process.channel?.unref(); // the channel alone must not keep a stopped daemon alive
  return {
    async turn() {
      if (env[STANDBY_ENV] !== '1') return;
      process.channel?.ref(); // waiting for the supervisor is all this process does meanwhile
      process.send?.({ type: 'standby' });
      await go;
      process.channel?.unref();
    },
    ready(daemon) {
      process.on('message', (m: { type?: string }) => {
        if (m?.type !== 'handoff') return;
        void daemon.handOff().then(() => process.exit(HANDOFF_EXIT));
      });
      process.channel?.unref(); // listening for messages ref'd it again
      process.send?.({ type: 'ready' });
    },
  };
}
