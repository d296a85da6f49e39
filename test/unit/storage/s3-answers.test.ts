// S3 answers RGW never gives (AWS's wrong-region errors, Retry-After, an error inside a 200), crafted by a
// local HTTP server, and how S3Store reports them. Not an S3 fake: each test serves exactly one behaviour.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isStorageError, type StorageError } from '../../../src/storage/errors.js';
import { StoreRequestCounts } from '../../../src/storage/request-counts.js';
import { S3Store } from '../../../src/storage/s3/store.js';

let server: http.Server | undefined;
const seen: string[] = [];

afterEach(async () => {
  seen.length = 0;
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function answering(handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void): Promise<string> {
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => handler(req, res, seen.length));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const xmlError = (code: string, extra = '') => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>m</Message>${extra}</Error>`;

function store(endpoint: string, region = 'us-east-1', requestCounts?: StoreRequestCounts) {
  return new S3Store({
    requestCounts,
    bucket: 'b',
    endpoint,
    region,
    credentials: { kind: 'static', accessKeyId: 'AKID', secretAccessKey: 'secret' },
    maxAttempts: 3,
    backoff: { baseMs: 1, capMs: 2 },
  });
}

describe('S3Store on crafted answers', () => {
  it('a wrong region says which region the bucket is in, without retrying', async () => {
    const endpoint = await answering((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(301, { 'x-amz-bucket-region': 'eu-west-1' }).end();
        return;
      }
      res.writeHead(400, { 'content-type': 'application/xml' }).end(xmlError('AuthorizationHeaderMalformed', '<Region>eu-west-1</Region>'));
    });
    const st = store(endpoint);
    for (const op of [() => st.read('k'), () => st.head('k')]) {
      seen.length = 0;
      const err = (await op().catch((e) => e)) as StorageError;
      expect(isStorageError(err, 'Unreachable')).toBe(true);
      expect(err.retryable).toBe(false);
      expect(err.message).toMatch(/bucket "b" is in region eu-west-1, not us-east-1 .*set the region to eu-west-1/);
      expect(seen).toHaveLength(1);
    }
    st.close();
  });

  it('waits as long as Retry-After asks on 503 SlowDown, then succeeds', async () => {
    const endpoint = await answering((_req, res, n) => {
      if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end(xmlError('SlowDown'));
      else res.writeHead(200, { 'content-length': '2', etag: '"e"' }).end('ok');
    });
    const st = store(endpoint);
    const t0 = Date.now();
    expect((await st.read('k')).toString()).toBe('ok');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    st.close();
  });

  it('counts every attempt it sends, retries included, by operation', async () => {
    const endpoint = await answering((req, res, n) => {
      if (n === 1) res.writeHead(503).end(xmlError('SlowDown'));
      else if (req.method === 'HEAD') res.writeHead(404).end();
      else if (req.url?.includes('list-type=2')) res.writeHead(200).end('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>');
      else res.writeHead(200, { 'content-length': '2', etag: '"e"' }).end('ok');
    });
    const counts = new StoreRequestCounts();
    const st = store(endpoint, 'us-east-1', counts);
    expect((await st.read('k')).toString()).toBe('ok'); // 503, then 200: two attempts
    await st.head('gone').catch(() => undefined);
    for await (const page of st.list('')) void page;
    expect(counts.snapshot()).toEqual({ GET: 2, HEAD: 1, LIST: 1 });
    expect(seen).toHaveLength(4);
    st.close();
  });

  it('an error inside a 200 (CopyObject) is an error, retried like any other', async () => {
    const endpoint = await answering((req, res, n) => {
      if (req.method === 'PUT' && n === 1) res.writeHead(200).end(xmlError('InternalError'));
      else if (req.method === 'PUT') res.writeHead(200).end('<CopyObjectResult><ETag>"e"</ETag></CopyObjectResult>');
      else res.writeHead(200, { 'content-length': '3', etag: '"e"', 'x-amz-meta-mode': '100600' }).end();
    });
    const st = store(endpoint);
    const info = await st.copy('a', 'a', { metadata: { mode: '100600' } });
    expect(info.metadata).toEqual({ mode: '100600' });
    expect(seen.filter((r) => r.startsWith('PUT'))).toHaveLength(2);
    st.close();
  });

  it('a server that ignores Range never puts the wrong bytes at the caller offset', async () => {
    const endpoint = await answering((_req, res) => res.writeHead(200, { 'content-length': '10', etag: '"e"' }).end('0123456789'));
    const st = store(endpoint);
    const into = Buffer.alloc(10);
    const err = (await st.readInto('k', { range: { start: 5, end: 10 } }, into).catch((e) => e)) as StorageError;
    expect(isStorageError(err)).toBe(true);
    expect(err.cause).toMatchObject({ code: 'RangeMismatch' });
    expect(await st.readInto('k', { range: { start: 0, end: 10 } }, into)).toBe(10); // a 200 for the whole object is that range
    st.close();
  });

  it('gives up on persistent 500s after maxAttempts with a retryable Io error', async () => {
    const endpoint = await answering((_req, res) => res.writeHead(500).end(xmlError('InternalError')));
    const st = store(endpoint);
    const err = (await st.head('k').catch((e) => e)) as StorageError;
    expect(err.retryable).toBe(true);
    expect(seen).toHaveLength(3);
    st.close();
  });
});

describe('S3Store credentials', () => {
  it('empty static keys fail before any request, naming what is missing', async () => {
    const st = new S3Store({ bucket: 'b', endpoint: 'http://127.0.0.1:1', credentials: { kind: 'static', accessKeyId: 'AKID', secretAccessKey: '' } });
    const err = (await st.head('k').catch((e) => e)) as StorageError;
    expect(isStorageError(err, 'BadCredentials')).toBe(true);
    expect(err.message).toMatch(/no usable credentials .*the credentials have no secret access key/);
    st.close();
  });
});

describe('S3Store and a skewed clock', () => {
  it('signs again with the server clock after RequestTimeTooSkewed, and keeps using it', async () => {
    const ahead = Date.now() + 3_600_000;
    const amzDates: string[] = [];
    const endpoint = await answering((req, res, n) => {
      amzDates.push(String(req.headers['x-amz-date']));
      const date = new Date(ahead).toUTCString();
      if (n === 1) res.writeHead(403, { date, 'content-type': 'application/xml' }).end(xmlError('RequestTimeTooSkewed'));
      else res.writeHead(200, { date, 'content-length': '2', etag: '"e"' }).end('ok');
    });
    const st = store(endpoint);
    expect((await st.read('k')).toString()).toBe('ok');
    expect((await st.read('k')).toString()).toBe('ok');
    const t = (d: string) => Date.parse(d.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    expect(Math.abs(t(amzDates[0]!) - Date.now())).toBeLessThan(60_000);
    expect(Math.abs(t(amzDates[1]!) - ahead)).toBeLessThan(60_000);
    expect(Math.abs(t(amzDates[2]!) - ahead)).toBeLessThan(60_000);
    st.close();
  });
});
