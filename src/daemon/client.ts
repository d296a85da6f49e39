// Talks to a running daemon over its status socket: `gradient status`, `--refresh`, and waiting for
// readiness in scripts (`gradient mount --wait`, `gradient status --wait`).
import { request } from 'node:http';
import type { CommittedRecord } from '../catalog/records.js';
import type { DaemonPruneResult, DaemonStatus } from './status.js';

export class DaemonClientError extends Error {
  override readonly name = 'DaemonClientError';
  constructor(
    readonly code: 'NO_DAEMON' | 'BAD_RESPONSE' | 'TIMEOUT' | 'NOT_READY',
    message: string,
    /** The daemon's own error code, when it sent one (e.g. a catalog error's). */
    readonly remoteCode?: string,
  ) {
    super(message);
  }
}

function call(socketPath: string, method: 'GET' | 'POST', route: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: route, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          if (res.statusCode !== 200) {
            const { error, code } = body as { error?: string; code?: string };
            return reject(new DaemonClientError('BAD_RESPONSE', `daemon on ${socketPath}: ${error ?? `HTTP ${res.statusCode}`}`, code));
          }
          resolve(body);
        } catch {
          reject(new DaemonClientError('BAD_RESPONSE', `daemon on ${socketPath} sent something that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new DaemonClientError('TIMEOUT', `daemon on ${socketPath} did not answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof DaemonClientError) return reject(err);
      reject(new DaemonClientError('NO_DAEMON', `no daemon is running on ${socketPath} (${err.code ?? err.message})`));
    });
    req.end();
  });
}

export async function fetchStatus(socketPath: string, timeoutMs = 5000): Promise<DaemonStatus> {
  return (await call(socketPath, 'GET', '/v1/status', timeoutMs)) as DaemonStatus;
}

export async function requestRefresh(socketPath: string, timeoutMs = 60_000): Promise<DaemonStatus> {
  return (await call(socketPath, 'POST', '/v1/refresh', timeoutMs)) as DaemonStatus;
}

/** Asks the daemon to evict cache entries down to `toBytes`: it owns the cache, so prune goes through it. */
export async function requestCachePrune(socketPath: string, toBytes: number, timeoutMs = 120_000): Promise<DaemonPruneResult> {
  return (await call(socketPath, 'POST', `/v1/cache/prune?to=${toBytes}`, timeoutMs)) as DaemonPruneResult;
}

/**
 * Asks the daemon to commit a dataset version it serves read-write (it finishes the uploads first and turns
 * the mount read-only): `served: false` when it does not serve that version.
 */
export async function requestCommit(
  socketPath: string,
  datasetId: string,
  versionId: string,
  opts: { allowEmpty?: boolean; timeoutMs?: number } = {},
): Promise<{ served: false } | { served: true; committed: CommittedRecord }> {
  const q = new URLSearchParams({ dataset: datasetId, version: versionId, ...(opts.allowEmpty ? { allowEmpty: '1' } : {}) });
  return (await call(socketPath, 'POST', `/v1/commit?${q.toString()}`, opts.timeoutMs ?? 600_000)) as { served: false } | { served: true; committed: CommittedRecord };
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Give up early, e.g. when the daemon process we started has exited. */
  signal?: AbortSignal;
  /** Only a serving process other than this one counts (`gradient mount --upgrade` waits for the new one). */
  exceptPid?: number;
}

/**
 * Resolves with the status once the daemon reports ready. Keeps polling while there is no daemon yet
 * (it may still be starting); fails at the deadline with the daemon's fatal error if it reported one.
 */
export async function waitForReady(socketPath: string, opts: WaitOptions): Promise<DaemonStatus> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 100;
  let last: DaemonStatus | undefined;
  let lastError: unknown;
  while (true) {
    try {
      last = await fetchStatus(socketPath, Math.max(100, Math.min(5000, deadline - Date.now())));
      if (last.ready && (opts.exceptPid === undefined || last.pid !== opts.exceptPid)) return last;
      if (last.fatalError) throw new DaemonClientError('NOT_READY', `the daemon cannot start: ${last.fatalError}`);
    } catch (err) {
      if (err instanceof DaemonClientError && err.code === 'NOT_READY') throw err;
      lastError = err;
    }
    if (opts.signal?.aborted || Date.now() + interval > deadline) break;
    await new Promise((r) => setTimeout(r, interval));
  }
  const why = last ? `it is ${last.phase}` : lastError instanceof Error ? lastError.message : 'no answer';
  throw new DaemonClientError('TIMEOUT', `the daemon on ${socketPath} was not ready within ${opts.timeoutMs} ms (${why})`);
}
