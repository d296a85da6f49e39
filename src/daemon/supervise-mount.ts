// `gradient mount` as the supervisor (src/daemon/supervisor.ts): the entry the CLI loads for it, apart from the
// daemon's wiring (run.ts), so that the process that keeps the mount for as long as it lives loads only what it
// runs: the mount code, the logger, and the config's validation in a child process that is gone once it answered.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CacheError, type CacheErrorCode } from '../cache/errors.js';
import { ConfigError } from '../config/errors.js';
import type { MountOptions } from '../config/mount-options.js';
import { configLocation, type ConfigLocation } from '../config/paths.js';
import { createLogger } from './logger.js';
import { supervise } from './supervisor.js';

const run = promisify(execFile);

/**
 * V8's young generation, 1 MiB per semi-space instead of 16: its pages stay resident once touched, ~28 MiB of
 * an idle daemon's RSS, while the serving process's short-lived objects are few (bytes live in pooled buffers
 * and the C core) and a small young generation is collected in microseconds. `gc` lets a memory target
 * collect dropped buffers sooner (MemoryTarget.dropped). Flags the user gives Node (execArgv) come after, so
 * theirs win.
 */
const SERVING_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'];

/**
 * The CLI's Supervisor (src/cli/mount.ts): mounts and runs `gradient mount` again, with the same arguments, as the
 * serving process (runMount), restarting it on the same FUSE session when it dies. Resolves with the exit code.
 */
export const superviseMount = async (opts: MountOptions, io: { env: NodeJS.ProcessEnv }): Promise<number> => {
  // A bad config file fails here as it would without a supervisor: before anything is mounted or touched.
  await checkConfig(configLocation(opts.config, io.env));
  return supervise({
    mountpoint: opts.mountpoint,
    command: [process.execPath, ...SERVING_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)],
    env: io.env,
    runtimeDir: path.dirname(opts.socket),
    allowOther: process.getuid?.() === 0,
    log: createLogger(),
    ...restartLimit(io.env.GRADIENT_RESTART_LIMIT),
  });
};

/** GRADIENT_RESTART_LIMIT=<crashes>/<seconds>: give up after that many crashes in that time (default 5/60). */
function restartLimit(v: string | undefined): { maxCrashes?: number; crashWindowMs?: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v ?? '');
  return m ? { maxCrashes: Number(m[1]), crashWindowMs: Number(m[2]) * 1000 } : {};
}

/**
 * Validates the config file as the serving process will (loadDaemonConfig), in a short-lived child process: the
 * parser and every section's schema (~18 MiB once loaded) would otherwise stay in the supervisor for as long as
 * the mount lives (a worker thread's memory stays with the process's allocator). Rejects with the ConfigError or
 * CacheError the file deserves.
 */
async function checkConfig(where: ConfigLocation): Promise<void> {
  // Run from source (TypeScript in tests) a plain child could not load the module: check in this process.
  if (import.meta.url.endsWith('.ts')) return void (await (await import('./config.js')).loadDaemonConfig(where));
  const module = new URL('./config.js', import.meta.url).href;
  const code = `
    const { module, where } = JSON.parse(process.argv[1]);
    const say = (answer) => process.stdout.write(JSON.stringify(answer));
    import(module)
      .then((m) => m.loadDaemonConfig(where))
      .then(() => say({}), (e) => say({ error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } }));`;
  const { stdout } = await run(process.execPath, [...process.execArgv, '-e', code, JSON.stringify({ module, where })], { maxBuffer: 1 << 20 });
  const e = (JSON.parse(stdout) as { error?: { name?: string; code?: string; message: string } }).error;
  if (!e) return;
  if (e.name === 'ConfigError') throw new ConfigError(e.code as ConfigError['code'], e.message);
  if (e.name === 'CacheError') throw new CacheError(e.code as CacheErrorCode, e.message);
  throw new Error(e.message);
}
