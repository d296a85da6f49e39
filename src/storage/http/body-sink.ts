// Where a response body goes. Before each socket read the connection asks the sink for room: a sink that
// lends a slice of its own buffer gets the body bytes straight from the kernel (no copy in JS at all);
// bytes that arrived together with the head, or with chunk framing, are copied in.
import { Readable } from 'node:stream';
import { HttpError } from './errors.js';

export interface BodySink {
  /** A buffer to read up to `max` body bytes into, or undefined to get them through copy(). */
  room(max: number): Buffer | undefined;
  /** `n` bytes were read into the buffer that room() returned last. False asks the connection to pause. */
  filled(n: number): boolean;
  /** Body bytes that arrived in the connection's own buffer (a view: valid only during the call). */
  copy(chunk: Buffer): boolean;
  /** The body is complete. */
  finish(): void;
  /** The response failed: the body is incomplete and must not be used. */
  fail(err: Error): void;
  /** Body bytes received so far. */
  readonly length: number;
}

/** Collects the body in one buffer: the caller's (fixed), or one that grows up to `limit` bytes. */
export class BufferSink implements BodySink {
  private buf: Buffer;
  private got = 0;

  constructor(
    initial: Buffer,
    /** Growth limit in bytes; 0 = the buffer is the caller's and never grows. */
    private readonly limit = 0,
  ) {
    this.buf = initial;
  }

  get length(): number {
    return this.got;
  }

  /** The body received: a view of the buffer. */
  get body(): Buffer {
    return this.buf.subarray(0, this.got);
  }

  room(max: number): Buffer | undefined {
    if (this.got === this.buf.length && !this.grow(1)) return undefined; // copy() reports the overflow
    return this.buf.subarray(this.got, this.got + Math.min(max, this.buf.length - this.got));
  }

  filled(n: number): boolean {
    this.got += n;
    return true;
  }

  copy(chunk: Buffer): boolean {
    if (this.got + chunk.length > this.buf.length && !this.grow(chunk.length)) {
      throw new HttpError('BodyTooLarge', `response body longer than ${this.limit || this.buf.length} bytes`, false);
    }
    this.got += chunk.copy(this.buf, this.got);
    return true;
  }

  finish(): void {}
  fail(): void {}

  private grow(need: number): boolean {
    const want = this.got + need;
    if (want > this.limit) return false;
    const next = Buffer.allocUnsafe(Math.min(this.limit, Math.max(want, this.buf.length * 2, 16 * 1024)));
    this.buf.copy(next, 0, 0, this.got);
    this.buf = next;
    return true;
  }
}

/** Control of the connection a stream reads from: set by the connection while the body flows. */
export interface FlowControl {
  resume(): void;
  abort(err: Error): void;
}

/**
 * A response body as a Readable: each socket read lands in a fresh buffer that is pushed as is, and a
 * consumer that falls behind pauses the socket. Destroying the stream early drops the connection.
 */
export class BodyStream extends Readable implements BodySink {
  private lent: Buffer | undefined;
  private got = 0;
  private ended = false;
  control: FlowControl | undefined;

  constructor(
    /** What the stream's consumer sees when the response fails half-way (default: the HttpError itself). */
    private readonly mapError: (err: Error) => Error = (err) => err,
    private readonly readSize = 64 * 1024,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  get length(): number {
    return this.got;
  }

  room(max: number): Buffer | undefined {
    this.lent = Buffer.allocUnsafe(Math.min(max, this.readSize));
    return this.lent;
  }

  filled(n: number): boolean {
    this.got += n;
    return this.push(this.lent!.subarray(0, n));
  }

  copy(chunk: Buffer): boolean {
    this.got += chunk.length;
    return this.push(Buffer.from(chunk));
  }

  finish(): void {
    this.ended = true;
    this.push(null);
  }

  fail(err: Error): void {
    this.ended = true;
    this.destroy(this.mapError(err));
  }

  override _read(): void {
    this.control?.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A consumer that stops early: the rest of the body is never read, so the connection cannot be reused.
    if (!this.ended) this.control?.abort(err ?? new HttpError('AbortError', 'response body stream destroyed before its end', false));
    cb(err);
  }
}
