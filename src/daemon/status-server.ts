// A local HTTP server on a Unix socket: GET /v1/status (JSON) and POST /v1/refresh (re-resolve tags and
// `latest`). A Unix socket, not a TCP port: nothing is reachable from the network, and file permissions
// decide who may ask. Everything served passes through the redactor once more.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { redactor as defaultRedactor, type Redactor } from './redact.js';
import type { CommittedRecord } from '../catalog/records.js';
import type { DaemonPruneResult, DaemonStatus } from './status.js';

export interface StatusProvider {
  status(): DaemonStatus | Promise<DaemonStatus>;
  /** Re-resolve movable refs (tags, `latest`); resolves when applied. */
  refresh(): Promise<void>;
  /** Evict cache entries down to `toBytes` (the daemon owns the cache's lock, so the CLI asks it). */
  pruneCache?(toBytes: number): Promise<DaemonPruneResult>;
  /** Commits a dataset version the daemon serves read-write; undefined: not served here. */
  commit?(datasetId: string, versionId: string, opts: { allowEmpty?: boolean }): Promise<CommittedRecord | undefined>;
}

export class DaemonSocketError extends Error {
  override readonly name = 'DaemonSocketError';
  constructor(
    readonly code: 'DAEMON_RUNNING' | 'SOCKET_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

export interface StatusServerOptions {
  socketPath: string;
  provider: StatusProvider;
  /**
   * Socket file mode. Default 0o666: the status holds no secrets and the one action (refresh) is harmless,
   * and in a notebook container the daemon runs as root while the notebook user runs `gradient status`.
   */
  mode?: number;
  redactor?: Redactor;
}

export class StatusServer {
  private server: Server | undefined;

  constructor(private readonly opts: StatusServerOptions) {}

  get socketPath(): string {
    return this.opts.socketPath;
  }

  async listen(): Promise<void> {
    const socketPath = this.opts.socketPath;
    await ensurePrivateDir(path.dirname(socketPath));
    await removeStaleSocket(socketPath);
    const redactor = this.opts.redactor ?? defaultRedactor;
    const server = createServer((req, res) => {
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(redactor.scrub(body))}\n`);
      };
      const url = new URL(req.url ?? '/', 'http://daemon');
      const route = `${req.method ?? 'GET'} ${url.pathname}`;
      void (async () => {
        try {
          if (route === 'GET /v1/status') return send(200, await this.opts.provider.status());
          if (route === 'POST /v1/refresh') {
            await this.opts.provider.refresh();
            return send(200, await this.opts.provider.status());
          }
          const prune = this.opts.provider.pruneCache;
          if (route === 'POST /v1/cache/prune' && prune) {
            const to = Number(url.searchParams.get('to'));
            if (!Number.isSafeInteger(to) || to < 0) return send(400, { error: 'to must be a number of bytes' });
            return send(200, await prune(to));
          }
          const commit = this.opts.provider.commit;
          if (route === 'POST /v1/commit' && commit) {
            const ds = url.searchParams.get('dataset') ?? '';
            const v = url.searchParams.get('version') ?? '';
            const committed = await commit(ds, v, { allowEmpty: url.searchParams.get('allowEmpty') === '1' });
            return send(200, committed ? { served: true, committed } : { served: false });
          }
          send(404, { error: `no route ${route}` });
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          send(500, { error: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) });
        }
      })();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    await chmod(socketPath, this.opts.mode ?? 0o666);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.opts.socketPath).catch(() => undefined);
  }
}

/**
 * Creates the socket's directory, or checks an existing one: in a shared directory such as /tmp another user
 * could have created it first and would then control (replace) our socket.
 */
async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const st = await lstat(dir);
  const uid = process.getuid?.() ?? 0;
  const ours = st.uid === uid;
  if (st.isDirectory() && ours && (st.mode & 0o022) !== 0) {
    await chmod(dir, st.mode & 0o755); // e.g. a Kubernetes emptyDir (0777): nobody else may swap our socket
    return;
  }
  if (!st.isDirectory() || !(ours || st.uid === 0) || (st.mode & 0o022) !== 0) {
    throw new DaemonSocketError(
      'SOCKET_UNAVAILABLE',
      `${dir} must be a directory owned by this user (or root) and not writable by others; pass another socket path`,
    );
  }
}

/** A socket file left by a daemon that died is removed; one that answers means a daemon is running. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const alive = await new Promise<boolean | 'absent'>((resolve) => {
    const sock = createConnection(socketPath);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ENOENT' ? 'absent' : false));
  });
  if (alive === true) {
    throw new DaemonSocketError('DAEMON_RUNNING', `a daemon is already serving ${socketPath}; stop it first or pass another socket path`);
  }
  if (alive === false) {
    await unlink(socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw new DaemonSocketError('SOCKET_UNAVAILABLE', `cannot remove stale socket ${socketPath}: ${err.code}`);
    });
  }
}
