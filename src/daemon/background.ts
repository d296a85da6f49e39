// `gradient mount --wait`: start the daemon as a detached background process and return once it is ready,
// or fail with what went wrong (the process exited, or it was not ready in time). Scripts and container
// entrypoints use this instead of sleeping. If a daemon already answers on the socket, just wait for it.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { DaemonClientError, fetchStatus, waitForReady } from './client.js';
import type { DaemonStatus } from './status.js';

export interface BackgroundStartOptions {
  /** The command that runs the daemon in the foreground, e.g. [process.execPath, cliPath, 'mount', ...]. */
  command: string[];
  socketPath: string;
  timeoutMs: number;
  /** The daemon's stdout/stderr go here (JSON logs); default: discarded. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
}

export interface BackgroundStartResult {
  status: DaemonStatus;
  /** The pid we started, or undefined when a daemon was already running. */
  pid: number | undefined;
}

export async function startInBackground(opts: BackgroundStartOptions): Promise<BackgroundStartResult> {
  const running = await fetchStatus(opts.socketPath, 2000).catch(() => undefined);
  if (running) return { status: await waitForReady(opts.socketPath, { timeoutMs: opts.timeoutMs }), pid: undefined };

  const [cmd, ...args] = opts.command;
  if (!cmd) throw new Error('startInBackground: empty command');
  let out: number | 'ignore' = 'ignore';
  if (opts.logFile) {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    out = openSync(opts.logFile, 'a');
  }
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], env: opts.env ?? process.env });
  if (typeof out === 'number') closeSync(out);
  const exited = new AbortController();
  let exitInfo = '';
  child.once('exit', (code, signal) => {
    exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
    exited.abort();
  });
  child.once('error', (err) => {
    exitInfo = `could not start: ${err.message}`;
    exited.abort();
  });
  try {
    const status = await waitForReady(opts.socketPath, { timeoutMs: opts.timeoutMs, signal: exited.signal });
    child.unref();
    return { status, pid: child.pid };
  } catch (err) {
    if (exited.signal.aborted) {
      const logs = opts.logFile ? `; see ${opts.logFile}` : '';
      throw new DaemonClientError('NOT_READY', `the daemon ${exitInfo} before it was ready${logs}`);
    }
    child.kill('SIGTERM'); // not ready in time: do not leave a half-started daemon behind
    throw err;
  }
}
