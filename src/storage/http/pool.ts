// Keep-alive connections to one origin: at most maxSockets open, idle ones reused most-recent-first (so
// that few stay warm and the rest expire), queued requests served in order.
//
// A request that fails on a reused connection before any byte of the response (the server closed the
// idle connection as we sent: ECONNRESET, EPIPE, or a plain close) is sent once more on a new connection:
// that is the keep-alive race, not a server failure, and it must not cost a retry with backoff. Request
// bodies are Buffers or file ranges, so sending one again is always possible.
import type tls from 'node:tls';
import { Connection, type HttpRequest, type HttpResponse } from './connection.js';
import { HttpError } from './errors.js';

export interface PoolOptions {
  maxSockets: number;
  connectTimeoutMs: number;
  /** A request with nothing sent or received for this long fails (retryably). */
  stallTimeoutMs: number;
  /** Idle connections are closed after this long. */
  keepAliveMs: number;
  /** For https origins: trusted CAs and the like. */
  tls?: tls.ConnectionOptions;
}

const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ConnectionClosed']);

interface Waiter {
  resolve(conn: Connection): void;
  reject(err: Error): void;
}

export class Pool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  /** Connections open or being opened. */
  private opening = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  readonly label: string;

  constructor(
    readonly origin: URL,
    private readonly opts: PoolOptions,
  ) {
    this.label = `${origin.protocol}//${origin.host}`;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const conn = await this.acquire(req.signal, false);
    try {
      return await this.run(conn, req);
    } catch (err) {
      const stale = conn.served > 0 && !conn.responseStarted && err instanceof HttpError && STALE_SOCKET_CODES.has(err.code);
      if (!stale) throw err;
      return this.run(await this.acquire(req.signal, true), req);
    }
  }

  /** Closes every connection, idle or busy (requests in flight fail). */
  close(): void {
    this.closed = true;
    for (const conn of this.all) conn.destroy();
    for (const w of this.waiters.splice(0)) w.reject(new HttpError('ECONNRESET', `${this.label}: client closed`, false));
  }

  private async run(conn: Connection, req: HttpRequest): Promise<HttpResponse> {
    try {
      return await conn.send(req, this.opts.stallTimeoutMs);
    } finally {
      this.release(conn);
    }
  }

  private acquire(signal: AbortSignal | undefined, fresh: boolean): Promise<Connection> {
    if (this.closed) return Promise.reject(new HttpError('ECONNRESET', `${this.label}: client closed`, false));
    if (!fresh) {
      for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) if (conn.alive) return Promise.resolve(conn);
    } else if (this.opening >= this.opts.maxSockets && this.idle.length > 0) {
      this.idle.shift()!.destroy(); // makes room: once closed, its slot goes to the oldest waiter
    }
    if (this.opening < this.opts.maxSockets) return this.connect();
    return new Promise<Connection>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (conn) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(conn);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new HttpError('AbortError', 'request aborted while waiting for a connection', false, signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private async connect(): Promise<Connection> {
    this.opening++;
    let conn: Connection;
    try {
      conn = await Connection.connect(this.origin, { tls: this.opts.tls, connectTimeoutMs: this.opts.connectTimeoutMs });
    } catch (err) {
      this.opening--;
      this.wake();
      throw err;
    }
    this.all.add(conn);
    conn.onClose = () => {
      this.all.delete(conn);
      const i = this.idle.indexOf(conn);
      if (i >= 0) this.idle.splice(i, 1);
      this.opening--;
      this.wake();
    };
    if (this.closed) conn.destroy();
    return conn;
  }

  /** Back from a request: parked for reuse, handed to the next waiter, or gone. */
  private release(conn: Connection): void {
    if (!conn.alive || this.closed) {
      conn.destroy();
      return;
    }
    const next = this.waiters.shift();
    if (next) {
      next.resolve(conn);
      return;
    }
    conn.park(this.opts.keepAliveMs);
    this.idle.push(conn);
  }

  /** A connection slot is free: open one for the oldest waiter. */
  private wake(): void {
    if (this.closed || this.waiters.length === 0 || this.opening >= this.opts.maxSockets) return;
    const waiter = this.waiters.shift()!;
    this.connect().then(waiter.resolve, waiter.reject);
  }
}
