// An incremental HTTP/1.1 response parser: status line and headers, then the body's framing
// (Content-Length, chunked with extensions and trailers, or until the connection closes). 1xx responses
// are skipped. Body bytes are handed out as views, never copied; a caller that had body bytes read
// elsewhere (straight into its own buffer) accounts for them with skipBody().
//
// Strict on purpose: anything ambiguous is a BadResponse, and the connection is not reused.
import { HttpError } from './errors.js';

export interface ResponseHead {
  status: number;
  /** Lower-cased names; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  /** False when the connection cannot carry another request after this response. */
  keepAlive: boolean;
}

export interface ParserEvents {
  head(head: ResponseHead): void;
  /** A piece of body: a view into the caller's data, valid only during the call. */
  body(chunk: Buffer): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'close' | 'done';

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 8 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/;

function bad(message: string): HttpError {
  return new HttpError('BadResponse', `invalid HTTP response: ${message}`, true);
}

export class ResponseParser {
  private state: State = 'head';
  /** Body bytes left: in the whole body (length) or in the current chunk (chunk-data). */
  private remaining = 0;
  /** Bytes of an unfinished head, or of an unfinished chunk line. */
  private pending: Buffer | undefined;
  private sawAnything = false;
  keepAlive = true;

  constructor(
    private readonly events: ParserEvents,
    /** The request was HEAD: no response has a body. */
    private readonly headRequest = false,
  ) {}

  get done(): boolean {
    return this.state === 'done';
  }

  /** Whether any byte of a response arrived. */
  get started(): boolean {
    return this.sawAnything;
  }

  /** How many body bytes come next with no framing in between: 0 if framing or a head comes next. */
  bodyAhead(): number {
    if (this.state === 'length' || this.state === 'chunk-data') return this.remaining;
    return this.state === 'close' ? Number.POSITIVE_INFINITY : 0;
  }

  /** Accounts for `n` body bytes (at most bodyAhead()) that were read directly by the caller. */
  skipBody(n: number): void {
    if (n > this.bodyAhead()) throw new RangeError(`skipBody(${n}) past the body's next ${this.bodyAhead()} bytes`);
    if (n > 0) this.sawAnything = true;
    this.advanceBody(n);
  }

  /** Parses `data`; returns how many bytes were consumed (fewer than data.length only once done). */
  execute(data: Buffer): number {
    let pos = 0;
    if (data.length > 0) this.sawAnything = true;
    while (pos < data.length && this.state !== 'done') {
      switch (this.state) {
        case 'head':
          pos = this.parseHead(data, pos);
          break;
        case 'length':
        case 'chunk-data':
        case 'close': {
          const n = Math.min(this.bodyAhead(), data.length - pos);
          this.events.body(data.subarray(pos, pos + n));
          pos += n;
          this.advanceBody(n);
          break;
        }
        case 'chunk-size':
        case 'chunk-end':
        case 'trailers': {
          const end = this.readLine(data, pos);
          if (end < 0) return data.length;
          pos = end;
          break;
        }
      }
    }
    return pos;
  }

  /** The connection closed: completes a body delimited by the close, else throws. */
  eof(): void {
    if (this.state === 'done') return;
    if (this.state === 'close') {
      this.state = 'done';
      return;
    }
    if (!this.sawAnything) {
      throw new HttpError('ConnectionClosed', 'the server closed the connection before responding', true);
    }
    throw new HttpError(
      'ResponseTruncated',
      this.state === 'head' ? 'the connection closed in the middle of the response head' : 'the connection closed before the whole body arrived',
      true,
    );
  }

  private advanceBody(n: number): void {
    if (this.state === 'close') return;
    this.remaining -= n;
    if (this.remaining > 0) return;
    this.state = this.state === 'length' ? 'done' : 'chunk-end';
  }

  /** Collects head bytes until the blank line; returns the position after what was consumed. */
  private parseHead(data: Buffer, pos: number): number {
    const prior = this.pending?.length ?? 0;
    const buf = prior > 0 ? Buffer.concat([this.pending!, data.subarray(pos)]) : data.subarray(pos);
    const end = buf.indexOf(CRLFCRLF, Math.max(0, prior - 3));
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) throw bad(`head longer than ${MAX_HEAD_BYTES} bytes`);
      // Copied: `data` is the connection's read buffer and is overwritten by the next read.
      this.pending = Buffer.from(buf);
      return data.length;
    }
    if (end > MAX_HEAD_BYTES) throw bad(`head longer than ${MAX_HEAD_BYTES} bytes`);
    this.pending = undefined;
    this.onHead(buf.toString('latin1', 0, end));
    return pos + end + 4 - prior;
  }

  private onHead(text: string): void {
    const lines = text.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (!m) throw bad(`status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const http10 = m[1] === '0';
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon) : '';
      // Also refuses obsolete line folding (a line starting with whitespace): RFC 9112 §5.2.
      if (!HEADER_NAME.test(name)) throw bad(`header line ${JSON.stringify(line.slice(0, 80))}`);
      const key = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    }
    if (status < 200) {
      if (status === 101) throw bad('unexpected 101 Switching Protocols');
      return; // 100 Continue, 103 Early Hints...: the real response follows
    }
    const connection = (headers.connection ?? '').toLowerCase();
    this.keepAlive = http10 ? /\bkeep-alive\b/.test(connection) : !/\bclose\b/.test(connection);
    this.frame(status, headers);
    this.events.head({ status, headers, keepAlive: this.keepAlive });
  }

  /** Decides how the body is delimited (RFC 9112 §6.3). */
  private frame(status: number, headers: Record<string, string>): void {
    if (this.headRequest || status === 204 || status === 304) {
      this.state = 'done';
      return;
    }
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (te !== undefined) {
      const codings = te.toLowerCase().split(',').map((s) => s.trim());
      // Both headers at once is how request smuggling starts: read this response, then drop the connection.
      if (cl !== undefined) this.keepAlive = false;
      if (codings[codings.length - 1] === 'chunked') {
        this.state = 'chunk-size';
        return;
      }
      this.keepAlive = false;
      this.state = 'close';
      return;
    }
    if (cl !== undefined) {
      // "n, n" (a proxy that merged two identical headers) is n; anything else malformed is an error.
      const values = new Set(cl.split(',').map((s) => s.trim()));
      const only = values.size === 1 ? [...values][0]! : '';
      if (!/^\d{1,15}$/.test(only)) throw bad(`Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
      this.remaining = Number(only);
      this.state = this.remaining === 0 ? 'done' : 'length';
      return;
    }
    this.keepAlive = false;
    this.state = 'close';
  }

  /** Reads one CRLF-terminated framing line; returns the position after it, or -1 if it is not complete yet. */
  private readLine(data: Buffer, pos: number): number {
    const lf = data.indexOf(10, pos);
    const piece = data.subarray(pos, lf < 0 ? data.length : lf + 1);
    const line = this.pending ? Buffer.concat([this.pending, piece]) : piece;
    if (line.length > MAX_LINE_BYTES) throw bad('chunk framing line too long');
    if (lf < 0) {
      this.pending = Buffer.from(line);
      return -1;
    }
    this.pending = undefined;
    if (line.length < 2 || line[line.length - 2] !== 13) throw bad('chunk framing line not ended by CRLF');
    this.onLine(line.toString('latin1', 0, line.length - 2));
    return lf + 1;
  }

  private onLine(line: string): void {
    if (this.state === 'chunk-end') {
      if (line !== '') throw bad('chunk data longer than its size');
      this.state = 'chunk-size';
    } else if (this.state === 'chunk-size') {
      const m = CHUNK_SIZE.exec(line);
      if (!m) throw bad(`chunk size line ${JSON.stringify(line.slice(0, 40))}`);
      this.remaining = parseInt(m[1]!, 16);
      this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
    } else if (line === '') {
      this.state = 'done'; // end of the trailer section (trailers themselves are ignored)
    }
  }
}
