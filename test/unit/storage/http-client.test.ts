// The lean HTTP/1.1 client against a local `net` server that sends crafted bytes: framing (length,
// chunked with extensions and trailers, until close), heads split across reads, 1xx, HEAD/204/304, bodies
// read straight into the caller's buffer, short bodies, garbage, Connection: close, keep-alive reuse and
// the retry-once on a stale keep-alive socket, stalls, file-range request bodies.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BodyStream } from '../../../src/storage/http/body-sink.js';
import type { HttpRequest } from '../../../src/storage/http/connection.js';
import { HttpError } from '../../../src/storage/http/errors.js';
import { Pool } from '../../../src/storage/http/pool.js';
import { ResponseParser, type ResponseHead } from '../../../src/storage/http/response-parser.js';

interface Received {
  head: string;
  body: Buffer;
}

/**
 * A server whose answer to the n-th request (counted over all connections) is `reply(n, req, socket)`.
 * Requests are read whole (head + Content-Length body) before the reply.
 */
async function crafted(reply: (n: number, req: Received, socket: net.Socket) => void) {
  const seen: Received[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const req = { head, body: buf.subarray(end + 4, end + 4 + len) };
        buf = buf.subarray(end + 4 + len);
        seen.push(req);
        reply(seen.length, req, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    seen,
    port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type Server = Awaited<ReturnType<typeof crafted>>;
let server: Server | undefined;
let pool: Pool | undefined;

afterEach(async () => {
  pool?.close();
  await server?.close();
  server = undefined;
  pool = undefined;
});

async function setup(reply: (n: number, req: Received, socket: net.Socket) => void, opts: { stallMs?: number; maxSockets?: number } = {}) {
  server = await crafted(reply);
  pool = new Pool(new URL(`http://127.0.0.1:${server.port}`), {
    maxSockets: opts.maxSockets ?? 4,
    connectTimeoutMs: 2000,
    stallTimeoutMs: opts.stallMs ?? 2000,
    keepAliveMs: 5000,
  });
  return { server, pool };
}

function get(extra: Partial<HttpRequest> = {}): HttpRequest {
  return { method: 'GET', target: '/x', headers: { host: 'test' }, ...extra };
}

/** Writes the pieces with a pause between them, so that they arrive in separate reads. */
function trickle(socket: net.Socket, pieces: Array<string | Buffer>, end = false): void {
  let i = 0;
  const next = () => {
    if (i < pieces.length) {
      socket.write(pieces[i++]!);
      setTimeout(next, 15);
    } else if (end) {
      socket.end();
    }
  };
  next();
}

const ok = (body: string | Buffer, extra = '') => {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n${extra}\r\n`), b]);
};

describe('ResponseParser on crafted bytes', () => {
  function parseAll(pieces: string[], headRequest = false) {
    const heads: ResponseHead[] = [];
    const body: Buffer[] = [];
    const p = new ResponseParser({ head: (h) => heads.push(h), body: (c) => body.push(Buffer.from(c)) }, headRequest);
    let used = 0;
    for (const piece of pieces) used += p.execute(Buffer.from(piece, 'latin1'));
    return { p, heads, body: Buffer.concat(body).toString('latin1'), used };
  }

  it('reads chunked bodies with extensions and trailers, byte by byte too', () => {
    const raw = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1;x\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n';
    for (const pieces of [[raw], raw.split('')]) {
      const { p, heads, body, used } = parseAll(pieces);
      expect(heads).toHaveLength(1);
      expect(body).toBe('hello world!');
      expect(p.done).toBe(true);
      expect(used).toBe(raw.length);
    }
  });

  it('skips 1xx responses, joins repeated headers, and reads HEAD/204/304 without a body', () => {
    const { heads, body, p } = parseAll(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nok']);
    expect(heads.map((h) => h.status)).toEqual([200]);
    expect(heads[0]!.headers['x-a']).toBe('1, 2');
    expect(body).toBe('ok');
    expect(p.done).toBe(true);
    expect(parseAll(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'], true).p.done).toBe(true);
    expect(parseAll(['HTTP/1.1 204 No Content\r\n\r\n']).p.done).toBe(true);
    expect(parseAll(['HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n']).p.done).toBe(true);
  });

  it('keep-alive by version and Connection header; a body until close is not reusable', () => {
    expect(parseAll(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']).heads[0]!.keepAlive).toBe(true);
    expect(parseAll(['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n']).heads[0]!.keepAlive).toBe(false);
    expect(parseAll(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).heads[0]!.keepAlive).toBe(false);
    expect(parseAll(['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n']).heads[0]!.keepAlive).toBe(true);
    const { p, body } = parseAll(['HTTP/1.1 200 OK\r\n\r\nuntil', ' close']);
    expect(p.keepAlive).toBe(false);
    expect(p.done).toBe(false);
    p.eof();
    expect(p.done).toBe(true);
    expect(body).toBe('until close');
  });

  it('refuses garbage and ambiguous framing', () => {
    const bad = [
      'HTTP/2 200 OK\r\n\r\n',
      'ICY 200 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Header\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n',
      'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    ];
    for (const raw of bad) expect(() => parseAll([raw]), raw).toThrow(/invalid HTTP response/);
    expect(() => parseAll(['x'.repeat(70 * 1024)])).toThrow(/head longer/);
  });

  it('a short body or a cut head is an error at EOF, and nothing at all is a closed connection', () => {
    const short = parseAll(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc']).p;
    expect(() => short.eof()).toThrow(expect.objectContaining({ code: 'ResponseTruncated' }));
    const cut = parseAll(['HTTP/1.1 200 OK\r\nContent-Le']).p;
    expect(() => cut.eof()).toThrow(expect.objectContaining({ code: 'ResponseTruncated' }));
    const nothing = parseAll([]).p;
    expect(() => nothing.eof()).toThrow(expect.objectContaining({ code: 'ConnectionClosed' }));
  });
});

describe('HTTP client against a crafted server', () => {
  it('reads bodies whose head arrives split across reads, and reuses the connection', async () => {
    const { server, pool } = await setup((n, _req, s) => trickle(s, ['HTTP/1.1 20', '0 OK\r\nContent-Len', 'gth: 5\r\n', '\r\nhel', 'lo']));
    for (let i = 0; i < 3; i++) {
      const res = await pool.request(get());
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('hello');
    }
    expect(server.connections).toBe(1);
  });

  it('reads a body straight into the caller buffer: byte-exact, at offset 0, length returned', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const { pool } = await setup((_n, _req, s) => trickle(s, [`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`, data.subarray(0, 1000), data.subarray(1000)]));
    const into = Buffer.alloc(data.length + 100, 0xee);
    const res = await pool.request(get({ response: { into } }));
    expect(res.length).toBe(data.length);
    expect(into.subarray(0, data.length).equals(data)).toBe(true);
    expect(into[data.length]).toBe(0xee); // nothing written past the body
  });

  it('reads chunked bodies into the caller buffer', async () => {
    const { pool } = await setup((_n, _req, s) =>
      trickle(s, ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '4;ext=1\r\nabcd\r\n', '3\r\nefg\r\n0\r\n\r\n']),
    );
    const into = Buffer.alloc(16);
    const res = await pool.request(get({ response: { into } }));
    expect(into.toString('latin1', 0, res.length)).toBe('abcdefg');
  });

  it('a body larger than the caller buffer is an error, and the buffer is not overrun', async () => {
    const { pool } = await setup((_n, _req, s) => s.write(ok('0123456789')));
    const backing = Buffer.alloc(12, 0xee);
    const into = backing.subarray(0, 4);
    const err = await pool.request(get({ response: { into } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).code).toBe('BodyTooLarge');
    expect(backing.subarray(4).every((b) => b === 0xee)).toBe(true);
  });

  it('error statuses are collected, never written into the caller buffer', async () => {
    const { pool } = await setup((_n, _req, s) => s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found'));
    const into = Buffer.alloc(64, 0);
    const res = await pool.request(get({ response: { into } }));
    expect(res.status).toBe(404);
    expect(res.body.toString()).toBe('not found');
    expect(into.every((b) => b === 0)).toBe(true);
  });

  it('a short body (connection closed before Content-Length bytes) is a retryable error, never a success', async () => {
    const { pool } = await setup((_n, _req, s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this');
      s.end();
    });
    for (const response of ['buffer', { into: Buffer.alloc(100) }] as const) {
      const err = (await pool.request(get({ response })).catch((e: unknown) => e)) as HttpError;
      expect(err.code).toBe('ResponseTruncated');
      expect(err.retryable).toBe(true);
    }
  });

  it('garbage is a BadResponse and the connection is not reused', async () => {
    const { server, pool } = await setup((n, _req, s) => s.write(n === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n' : ok('fine')));
    const err = (await pool.request(get()).catch((e: unknown) => e)) as HttpError;
    expect(err.code).toBe('BadResponse');
    expect((await pool.request(get())).body.toString()).toBe('fine');
    expect(server.connections).toBe(2);
  });

  it('Connection: close and bytes past the response end retire the connection', async () => {
    const { server, pool } = await setup((n, _req, s) => {
      if (n === 1) s.write(ok('a', 'Connection: close\r\n'));
      else if (n === 2) s.write(Buffer.concat([ok('b'), Buffer.from('junk')]));
      else s.write(ok('c'));
    });
    expect((await pool.request(get())).body.toString()).toBe('a');
    expect((await pool.request(get())).body.toString()).toBe('b');
    expect((await pool.request(get())).body.toString()).toBe('c');
    expect(server.connections).toBe(3);
  });

  it('a request that meets a keep-alive socket the server closed is sent once more on a new one', async () => {
    const { server, pool } = await setup((n, _req, s) => {
      s.write(ok(`r${n}`));
      if (n === 1) setTimeout(() => s.destroy(), 20); // the server drops the idle connection
    });
    expect((await pool.request(get())).body.toString()).toBe('r1');
    await new Promise((r) => setTimeout(r, 60));
    expect((await pool.request(get())).body.toString()).toBe('r2');
    expect(server.connections).toBe(2);
  });

  it('a reset of a reused socket before any response byte is retried once; a reset after a byte is not', async () => {
    const { server, pool } = await setup((n, _req, s) => {
      if (n === 1) s.write(ok('first'));
      else if (n === 2) s.resetAndDestroy(); // on the reused socket, before any byte
      else if (n === 3) s.write(ok('second'));
      else if (n === 4) {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npart');
        setTimeout(() => s.resetAndDestroy(), 20);
      }
    });
    expect((await pool.request(get())).body.toString()).toBe('first');
    expect((await pool.request(get())).body.toString()).toBe('second');
    const err = (await pool.request(get()).catch((e: unknown) => e)) as HttpError;
    expect(['ECONNRESET', 'ResponseTruncated']).toContain(err.code);
    expect(server.seen).toHaveLength(4);
  });

  it('a stalled response fails with a retryable TimeoutError', async () => {
    const { pool } = await setup((_n, _req, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), { stallMs: 150 });
    const t0 = Date.now();
    const err = (await pool.request(get()).catch((e: unknown) => e)) as HttpError;
    expect(err.code).toBe('TimeoutError');
    expect(err.retryable).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('aborts a request in flight and while queued for a connection', async () => {
    const { pool } = await setup(() => undefined, { maxSockets: 1 });
    const ac = new AbortController();
    const first = pool.request(get({ signal: ac.signal })).catch((e: unknown) => e);
    const queued = pool.request(get({ signal: ac.signal })).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    expect(((await first) as Error).name).toBe('AbortError');
    expect(((await queued) as Error).name).toBe('AbortError');
  });

  it('queues requests beyond maxSockets and serves them all', async () => {
    const { server, pool } = await setup((n, _req, s) => setTimeout(() => s.write(ok(`r${n}`)), 10), { maxSockets: 2 });
    const bodies = await Promise.all(Array.from({ length: 8 }, () => pool.request(get()).then((r) => r.body.toString())));
    expect(new Set(bodies).size).toBe(8);
    expect(server.connections).toBe(2);
  });

  it('streams a body with backpressure, and a consumer that stops early drops the connection', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const { server, pool } = await setup((n, _req, s) => s.write(n === 1 ? ok(data) : ok(data.subarray(0, 100))));
    const stream = new BodyStream();
    const done = pool.request(get({ response: { stream } }));
    const pieces: Buffer[] = [];
    for await (const piece of stream) {
      pieces.push(piece as Buffer);
      await new Promise((r) => setImmediate(r)); // a slow consumer
    }
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
    await done;
    const early = new BodyStream();
    const second = pool.request(get({ response: { stream: early } })).catch((e: unknown) => e);
    const again = new BodyStream();
    early.once('data', () => early.destroy());
    expect(((await second) as Error).name).toBe('AbortError');
    const third = pool.request(get({ response: { stream: again } }));
    again.resume();
    await third;
    expect(server.connections).toBe(2);
  });

  it('sends a file range as the body, in pieces, and Buffer bodies with their length', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gd-http-'));
    try {
      const data = randomBytes(3 * 1024 * 1024);
      const file = path.join(dir, 'f');
      await writeFile(file, data);
      const { server, pool } = await setup((_n, _req, s) => s.write(ok('')));
      await pool.request({ method: 'PUT', target: '/f', headers: { host: 'test' }, body: { path: file, start: 1000, length: 2 * 1024 * 1024 } });
      await pool.request({ method: 'PUT', target: '/b', headers: { host: 'test' }, body: Buffer.from('small') });
      await pool.request({ method: 'PUT', target: '/e', headers: { host: 'test' } });
      expect(server.seen[0]!.body.equals(data.subarray(1000, 1000 + 2 * 1024 * 1024))).toBe(true);
      expect(server.seen[1]!.head).toMatch(/content-length: 5/);
      expect(server.seen[1]!.body.toString()).toBe('small');
      expect(server.seen[2]!.head).toMatch(/content-length: 0/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses header values that would inject lines', async () => {
    const { pool } = await setup((_n, _req, s) => s.write(ok('')));
    const err = (await pool.request(get({ headers: { host: 'test', 'x-amz-meta-a': 'x\r\nevil: 1' } })).catch((e: unknown) => e)) as HttpError;
    expect(err.code).toBe('InvalidHeader');
  });

  it('an unreachable port is a retryable ECONNREFUSED', async () => {
    const p = new Pool(new URL('http://127.0.0.1:1'), { maxSockets: 1, connectTimeoutMs: 1000, stallTimeoutMs: 1000, keepAliveMs: 1000 });
    const err = (await p.request(get()).catch((e: unknown) => e)) as HttpError;
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.retryable).toBe(true);
    p.close();
  });
});
