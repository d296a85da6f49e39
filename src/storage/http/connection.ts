// One keep-alive HTTP/1.1 connection (plain TCP or TLS), one request at a time. The socket reads with
// `onread`: before each read we choose the buffer the bytes land in, so a body the caller wants in its own
// Buffer is written there by the kernel (or by the TLS layer) directly; heads and framing land in a small
// buffer of our own. A response that fails half-way destroys the connection: no half-read socket is ever
// reused, and no partial body is ever reported as a success.
import { open } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { BodyStream, BufferSink, type BodySink } from './body-sink.js';
import { HttpError, socketError } from './errors.js';
import { ResponseParser, type ResponseHead } from './response-parser.js';

/** A request body: bytes in memory, or a byte range of a file (read piece by piece, never whole). */
export type RequestBody = Buffer | { path: string; start: number; length: number };

/** Where a 2xx response's body goes: collected, read straight into the caller's buffer, or streamed. */
export type ResponseMode = 'buffer' | { into: Buffer } | { stream: BodyStream };

export interface HttpRequest {
  method: string;
  /** Path and query string, already percent-encoded. */
  target: string;
  /** Sent as given (the `host` header included): names and values must be plain ASCII. */
  headers: Record<string, string>;
  body?: RequestBody;
  /** Default 'buffer'. Bodies of other statuses are always collected (up to 1 MiB). */
  response?: ResponseMode;
  signal?: AbortSignal;
  /** Called when the head of the final response has arrived, before its body. */
  onHead?(head: ResponseHead): void;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** The collected body ('buffer' mode and error statuses), or the filled part of the caller's buffer. */
  body: Buffer;
  /** Body bytes received. */
  length: number;
}

export interface ConnectOptions {
  /** TLS settings for https origins (trusted CAs...). */
  tls?: tls.ConnectionOptions;
  connectTimeoutMs: number;
}

const HEAD_BUFFER_BYTES = 64 * 1024;
const ERROR_BODY_LIMIT = 1024 * 1024;
const FILE_PIECE_BYTES = 1024 * 1024;
const PLAIN_ASCII = /^[\t\x20-\x7e]*$/;

/** One request/response on a connection. */
interface Exchange {
  req: HttpRequest;
  parser: ResponseParser;
  sink: BodySink | undefined;
  head: ResponseHead | undefined;
  paused: boolean;
  bodySent: boolean;
  /** Bytes arrived after the end of the response: the server is out of step with us. */
  trailing: boolean;
  resolve(res: HttpResponse): void;
  reject(err: Error): void;
  onAbort: (() => void) | undefined;
}

export class Connection {
  private readonly scratch = Buffer.allocUnsafe(HEAD_BUFFER_BYTES);
  /** The body buffer lent for the pending read, if any. */
  private lent: Buffer | undefined;
  private exchange: Exchange | undefined;
  private stallMs = 0;
  private dead = false;
  /** Requests completed on this connection: a reused one may have been closed by the server meanwhile. */
  served = 0;
  /** Whether the last request got any byte of a response. */
  responseStarted = false;
  /** Called once when the connection is gone (by either side). */
  onClose: (() => void) | undefined;
  readonly socket: net.Socket;

  private constructor(origin: URL, opts: ConnectOptions, onConnected: (err?: Error) => void) {
    const host = origin.hostname.replace(/^\[|\]$/g, '');
    const https = origin.protocol === 'https:';
    const port = Number(origin.port) || (https ? 443 : 80);
    const onread: net.OnReadOpts = { buffer: this.nextBuffer, callback: this.onRead };
    // tls.connect takes `onread` like net.connect (Node's docs), though @types/node does not say so yet.
    const tlsOptions: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
      ...opts.tls,
      host,
      port,
      servername: net.isIP(host) ? undefined : host,
      ALPNProtocols: ['http/1.1'],
      onread,
    };
    this.socket = https ? tls.connect(tlsOptions) : net.connect({ host, port, noDelay: true, onread });
    if (https) this.socket.setNoDelay(true);
    const label = `${origin.protocol}//${origin.host}`;
    const timer = setTimeout(() => {
      onConnected(new HttpError('ConnectTimeout', `${label}: no connection after ${opts.connectTimeoutMs} ms`, true));
      this.destroy();
    }, opts.connectTimeoutMs);
    this.socket.once(https ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      onConnected();
    });
    this.socket.on('error', (err) => {
      clearTimeout(timer);
      const e = socketError(err, label);
      onConnected(e);
      this.fail(e);
    });
    this.socket.on('end', this.onEnd);
    this.socket.on('timeout', this.onTimeout);
    this.socket.on('close', () => {
      clearTimeout(timer);
      this.dead = true;
      this.fail(new HttpError('ECONNRESET', `${label}: connection closed`, true));
      onConnected(new HttpError('ECONNRESET', `${label}: connection closed`, true));
      this.onClose?.();
      this.onClose = undefined;
    });
  }

  /** Opens a connection to `origin` (http: or https:). */
  static connect(origin: URL, opts: ConnectOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const conn: Connection = new Connection(origin, opts, (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(conn);
      });
    });
  }

  /** Usable for another request. */
  get alive(): boolean {
    return !this.dead && this.exchange === undefined;
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }

  /** Parks the connection: unreferenced (it never keeps the process alive), closed after `keepAliveMs`. */
  park(keepAliveMs: number): void {
    this.socket.unref();
    this.socket.setTimeout(keepAliveMs);
  }

  /**
   * Sends a request and reads its response. Resolves once the body is complete (for streams too: the
   * stream is handed out through onHead). A request that fails leaves the connection destroyed.
   */
  send(req: HttpRequest, stallMs: number): Promise<HttpResponse> {
    if (!this.alive) return Promise.reject(new HttpError('ECONNRESET', 'connection not usable', true));
    this.stallMs = stallMs;
    this.responseStarted = false;
    return new Promise<HttpResponse>((resolve, reject) => {
      const x: Exchange = {
        req,
        parser: undefined as unknown as ResponseParser,
        sink: undefined,
        head: undefined,
        paused: false,
        bodySent: false,
        trailing: false,
        resolve,
        reject,
        onAbort: undefined,
      };
      x.parser = new ResponseParser(
        { head: (head) => this.onHead(x, head), body: (chunk) => this.onBody(x, chunk) },
        req.method === 'HEAD',
      );
      if (req.signal?.aborted) {
        reject(new HttpError('AbortError', 'request aborted', false, req.signal.reason));
        return;
      }
      this.exchange = x;
      if (req.signal) {
        const signal = req.signal;
        x.onAbort = () => this.fail(new HttpError('AbortError', 'request aborted', false, signal.reason));
        signal.addEventListener('abort', x.onAbort, { once: true });
      }
      this.socket.ref();
      this.socket.setTimeout(stallMs);
      try {
        this.write(x);
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  private write(x: Exchange): void {
    const { req } = x;
    const body = req.body;
    const size = body === undefined ? undefined : Buffer.isBuffer(body) ? body.length : body.length;
    let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(req.headers)) {
      // Refuses CR/LF and non-ASCII: no header injection, and the bytes sent are the bytes signed.
      if (!PLAIN_ASCII.test(name) || !PLAIN_ASCII.test(value)) {
        throw new HttpError('InvalidHeader', `header ${JSON.stringify(name)} has characters HTTP cannot carry`, false);
      }
      head += `${name}: ${value}\r\n`;
    }
    if (size !== undefined) head += `content-length: ${size}\r\n`;
    else if (req.method === 'PUT' || req.method === 'POST') head += 'content-length: 0\r\n';
    head += '\r\n';
    if (body === undefined || body.length === 0) {
      this.socket.write(head, 'latin1');
      x.bodySent = true;
      return;
    }
    if (Buffer.isBuffer(body)) {
      // One write (one packet when small) for head and body.
      this.socket.cork();
      this.socket.write(head, 'latin1');
      this.socket.write(body);
      this.socket.uncork();
      x.bodySent = true;
      return;
    }
    this.socket.write(head, 'latin1');
    this.writeFileRange(x, body).then(
      () => {
        x.bodySent = true;
      },
      (err: unknown) => {
        if (this.exchange === x) this.fail(err as Error);
      },
    );
  }

  /** Streams a file range to the socket, a piece at a time, waiting for the socket to drain. */
  private async writeFileRange(x: Exchange, file: { path: string; start: number; length: number }): Promise<void> {
    const fh = await open(file.path, 'r');
    try {
      let sent = 0;
      while (sent < file.length) {
        const piece = Buffer.allocUnsafe(Math.min(FILE_PIECE_BYTES, file.length - sent));
        const { bytesRead } = await fh.read(piece, 0, piece.length, file.start + sent);
        if (this.exchange !== x) return; // failed or answered early: stop sending
        if (bytesRead === 0) {
          throw new HttpError('RequestBodyShort', `${file.path} ended ${file.length - sent} bytes early while being sent`, false);
        }
        sent += bytesRead;
        if (!this.socket.write(piece.subarray(0, bytesRead))) await this.drained();
      }
    } finally {
      await fh.close();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Chooses the buffer for the next socket read (called by Node after every read). */
  private readonly nextBuffer = (): Buffer => {
    this.lent = undefined;
    const x = this.exchange;
    if (x?.sink && !x.paused) {
      const ahead = x.parser.bodyAhead();
      if (ahead > 0) {
        const room = x.sink.room(ahead);
        if (room && room.length > 0) return (this.lent = room);
      }
    }
    return this.scratch;
  };

  private readonly onRead = (n: number, buf: Buffer): boolean => {
    const x = this.exchange;
    if (!x) {
      this.destroy(); // bytes nobody asked for: the server is out of step with us
      return false;
    }
    this.responseStarted = true;
    try {
      if (buf === this.lent) {
        x.parser.skipBody(n);
        if (!x.sink!.filled(n)) x.paused = true;
      } else {
        const used = x.parser.execute(this.scratch.subarray(0, n));
        if (used < n) x.trailing = true;
      }
      if (x.parser.done) this.complete(x);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    if (x.paused && this.exchange === x) {
      this.socket.setTimeout(0); // a slow consumer is not a stalled server
      return false;
    }
    return true;
  };

  private onHead(x: Exchange, head: ResponseHead): void {
    x.head = head;
    const mode = x.req.response ?? 'buffer';
    if (head.status >= 300 || mode === 'buffer') {
      const expected = Number(head.headers['content-length'] ?? NaN);
      const limit = head.status >= 300 ? ERROR_BODY_LIMIT : Number.MAX_SAFE_INTEGER;
      x.sink = new BufferSink(Buffer.allocUnsafe(Number.isSafeInteger(expected) && expected <= limit ? expected : 0), limit);
    } else if ('into' in mode) {
      const expected = Number(head.headers['content-length'] ?? 0);
      if (expected > mode.into.length) {
        throw new HttpError('BodyTooLarge', `response body of ${expected} bytes does not fit in a ${mode.into.length}-byte buffer`, false);
      }
      x.sink = new BufferSink(mode.into);
    } else {
      const stream = mode.stream;
      stream.control = {
        resume: () => {
          if (this.exchange !== x || !x.paused) return;
          x.paused = false;
          this.socket.setTimeout(this.stallMs);
          this.socket.resume();
        },
        abort: (err) => {
          if (this.exchange === x) this.fail(err);
        },
      };
      x.sink = stream;
    }
    x.req.onHead?.(head);
  }

  private onBody(x: Exchange, chunk: Buffer): void {
    if (!x.sink!.copy(chunk)) x.paused = true;
  }

  private complete(x: Exchange): void {
    this.finish(x);
    this.served++;
    // Reusable only at a clean boundary: whole body read, request fully sent, nothing extra on the wire.
    if (!x.parser.keepAlive || x.trailing || !x.bodySent) this.destroy();
    else this.socket.setTimeout(0);
    const sink = x.sink!;
    sink.finish();
    const body = sink instanceof BufferSink ? sink.body : Buffer.alloc(0);
    x.resolve({ status: x.head!.status, headers: x.head!.headers, body, length: sink.length });
  }

  private finish(x: Exchange): void {
    this.exchange = undefined;
    if (x.onAbort) x.req.signal!.removeEventListener('abort', x.onAbort);
  }

  /** Fails the request in flight (if any) and destroys the connection. */
  private fail(err: Error): void {
    this.destroy();
    const x = this.exchange;
    if (!x) return;
    this.finish(x);
    x.sink?.fail(err);
    x.reject(err);
  }

  private readonly onEnd = (): void => {
    const x = this.exchange;
    if (!x) {
      this.destroy();
      return;
    }
    try {
      x.parser.eof();
      this.complete(x);
    } catch (err) {
      this.fail(err as Error);
    }
  };

  private readonly onTimeout = (): void => {
    const x = this.exchange;
    if (!x) {
      this.destroy(); // idle keep-alive connection past its time
      return;
    }
    if (!x.paused) this.fail(new HttpError('TimeoutError', `no response data for ${this.stallMs} ms`, true));
  };
}
