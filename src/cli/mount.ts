// `gradient mount`: run the daemon (foreground, for systemd and containers), `--wait` (start it in the
// background and return once it is ready: for scripts), or `--refresh` (ask the running daemon to look up
// tags and `latest` again). The foreground run itself — FUSE session, namespace, cache, catalog — is injected
// by the wiring as a MountRunner; everything else (defaults, flags, waiting, refreshing) lives here.
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSize } from '../cache/size.js';
import type { MountOptions } from '../config/mount-options.js';
import { startInBackground } from '../daemon/background.js';
import { DaemonClientError, fetchStatus, requestRefresh, waitForReady } from '../daemon/client.js';
import type { RunningDaemon } from '../daemon/daemon.js';
import { defaultMountpoint, defaultSettingsPath } from '../daemon/defaults.js';
import { createLogger } from '../daemon/logger.js';
import { defaultSocketPath } from '../daemon/socket-path.js';
import { handedSession, watchSupervisor } from '../daemon/supervisor.js';
import type { CliIO } from './context.js';
import { EXIT } from './exit-codes.js';
import { count } from './output.js';
import { formatStatus, STATUS_EXIT, statusExitCode } from './status.js';

/** Starts the daemon in this process (mount, views, cache, catalog) and returns it running. */
export type MountRunner = (opts: MountOptions, io: CliIO) => Promise<RunningDaemon>;
/** Mounts and keeps the FUSE session while running the MountRunner in child processes; resolves with the exit code. */
export type MountSupervisor = (opts: MountOptions, io: CliIO) => Promise<number>;

export interface MountCommandDeps {
  run?: MountRunner;
  /** Loads what `run` needs (modules loaded lazily), so an upgrade's new process is ready before its turn. */
  preload?: () => Promise<unknown>;
  /** Absent: the daemon runs in this process (as with --no-supervisor). */
  supervise?: MountSupervisor;
  /** How to run this CLI again (for --wait): default [node, ...execArgv, this script]. */
  selfCommand?: () => string[];
}

interface Flags {
  settings?: string;
  mountpoint?: string;
  socket?: string;
  metricsPort?: number;
  cacheDir?: string;
  cacheSize?: number;
  memoryTarget?: number;
  wait?: boolean;
  timeout: string | number;
  logFile?: string;
  refresh?: boolean;
  upgrade?: boolean;
  supervisor: boolean;
  json?: boolean;
  config?: string;
}

export function mountCommand(io: CliIO, deps: MountCommandDeps = {}): Command {
  return new Command('mount')
    .description('mount team datasets, public datasets and S3 buckets under one directory, following settings.yaml')
    .option('--settings <file>', 'settings.yaml to follow (default: $GRADIENT_SETTINGS, /notebooks/.gradient/settings.yaml, ~/.gradient/settings.yaml)')
    .option('--mountpoint <dir>', 'where to mount (default: $GRADIENT_MOUNTPOINT, /datasets as root, else ~/datasets)')
    .option('--socket <path>', 'status socket (default: see `gradient status --help`)')
    .addOption(new Option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>').argParser(port))
    .option('--cache-dir <dir>', 'cache directory (default: cache.dir in the config file, else /var/cache/gradient as root, else $XDG_CACHE_HOME/gradient or ~/.cache/gradient)')
    .addOption(new Option('--cache-size <size>', 'cache size bound, e.g. 50G or 512MiB (default: cache.maxSize, else 10G)').argParser(cacheSize))
    .addOption(
      new Option('--memory-target <size>', "the daemon's memory target, e.g. 512M: buffers shrink to stay under it, reads and writes never fail for it (default: memory.target, else a quarter of the cgroup's memory limit, else none)").argParser(memoryTarget),
    )
    .option('--wait', 'start the daemon in the background and return once it is ready')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '120')
    .option('--log-file <file>', 'with --wait: where the background daemon logs')
    .option('--refresh', 'ask the running daemon to look up tags and latest again, then show its status')
    .option('--upgrade', 'hand the running daemon\'s mount to a new process running the gradient installed now; readers see no error')
    .option('--no-supervisor', 'serve in this process: if it dies, every reader of the mount fails (default: a supervisor keeps the mount and restarts the daemon)')
    .addHelpText('after', '\nExamples:\n  gradient mount                      # in the foreground (systemd, a container)\n  gradient mount --wait --log-file /tmp/gradient.log\n  gradient mount --refresh\n  gradient mount --upgrade            # hand the mount to the gradient installed now')
    .action(async (_flags: Flags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<Flags>();
      const opts: MountOptions = {
        settings: flags.settings ?? defaultSettingsPath(io.env),
        mountpoint: flags.mountpoint ?? defaultMountpoint(io.env),
        socket: flags.socket ?? defaultSocketPath(io.env),
      };
      if (flags.metricsPort !== undefined) opts.metricsPort = flags.metricsPort;
      if (flags.config) opts.config = flags.config;
      if (flags.cacheDir !== undefined) opts.cacheDir = flags.cacheDir;
      if (flags.cacheSize !== undefined) opts.cacheBytes = flags.cacheSize;
      if (flags.memoryTarget !== undefined) opts.memoryTargetBytes = flags.memoryTarget;

      if (flags.refresh) return refresh(io, opts.socket, flags.json === true);
      if (flags.upgrade) return upgrade(io, opts.socket, Number(flags.timeout));
      if (flags.wait) return waitInBackground(io, opts, flags, deps);
      if (!deps.run) throw new Error('this build of gradient cannot mount: no filesystem runner is wired in');
      // The serving process the supervisor started (it handed us the mount), or a daemon without supervisor.
      const supervised = handedSession(io.env) !== undefined;
      if (supervised || !deps.supervise || !flags.supervisor) {
        const supervisor = supervised ? watchSupervisor(createLogger(), io.env) : undefined;
        if (supervisor) {
          // An upgrade's new process loads everything first, then waits for the running one to hand over.
          await deps.preload?.();
          await supervisor.turn();
        }
        const daemon = await deps.run(opts, io);
        supervisor?.ready(daemon);
        await daemon.stopped;
        return;
      }
      process.exitCode = await deps.supervise(opts, io);
    });
}

/** Signals the supervisor (SIGUSR2), then waits for a new serving process to be ready. */
async function upgrade(io: CliIO, socket: string, timeoutSeconds: number): Promise<void> {
  try {
    const before = await fetchStatus(socket);
    if (!before.supervisorPid) throw new Error('the running daemon has no supervisor (started with --no-supervisor): restart it instead');
    process.kill(before.supervisorPid, 'SIGUSR2');
    const after = await waitForReady(socket, { timeoutMs: timeoutSeconds * 1000, exceptPid: before.pid });
    io.stderr.write(`gradient-datasets upgraded: serving process ${before.pid} → ${after.pid}, ${after.mounts.length} entries on ${after.mountpoint ?? ''}\n`);
    process.exitCode = statusExitCode(after);
  } catch (err) {
    io.stderr.write(`gradient mount --upgrade: ${(err as Error).message}\n`);
    process.exitCode = err instanceof DaemonClientError ? STATUS_EXIT.noDaemon : EXIT.failure;
  }
}

async function refresh(io: CliIO, socket: string, json: boolean): Promise<void> {
  try {
    const status = await requestRefresh(socket);
    io.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    process.exitCode = statusExitCode(status);
  } catch (err) {
    io.stderr.write(`gradient mount --refresh: ${(err as Error).message}\n`);
    process.exitCode = err instanceof DaemonClientError ? STATUS_EXIT.noDaemon : EXIT.failure;
  }
}

async function waitInBackground(io: CliIO, opts: MountOptions, flags: Flags, deps: MountCommandDeps): Promise<void> {
  const self = deps.selfCommand?.() ?? [process.execPath, ...process.execArgv, process.argv[1] ?? 'gradient'];
  const args = ['mount', '--settings', opts.settings, '--mountpoint', opts.mountpoint, '--socket', opts.socket];
  if (opts.metricsPort !== undefined) args.push('--metrics-port', String(opts.metricsPort));
  if (opts.cacheDir !== undefined) args.push('--cache-dir', opts.cacheDir);
  if (opts.cacheBytes !== undefined) args.push('--cache-size', String(opts.cacheBytes));
  if (opts.memoryTargetBytes !== undefined) args.push('--memory-target', String(opts.memoryTargetBytes));
  const global = opts.config ? ['--config', opts.config] : [];
  const seconds = Number(flags.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--timeout must be a positive number of seconds, got ${flags.timeout}`);
  try {
    const { status, pid } = await startInBackground({
      command: [...self, ...global, ...args],
      socketPath: opts.socket,
      timeoutMs: seconds * 1000,
      logFile: flags.logFile,
      env: io.env,
    });
    const who = pid === undefined ? 'already running' : `started (pid ${pid})`;
    io.stderr.write(`gradient-datasets ${who}: ready, ${count(status.mounts.length, 'entry', 'entries')} on ${status.mountpoint ?? opts.mountpoint}\n`);
    process.exitCode = statusExitCode(status);
  } catch (err) {
    io.stderr.write(`gradient mount --wait: ${(err as Error).message}\n`);
    process.exitCode = STATUS_EXIT.noDaemon;
  }
}

function cacheSize(v: string): number {
  try {
    return parseSize(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function memoryTarget(v: string): number {
  const bytes = cacheSize(v);
  if (bytes <= 0) throw new InvalidArgumentError('must be more than 0');
  return bytes;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--metrics-port must be a port number, got ${v}`);
  return n;
}
