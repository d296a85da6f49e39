// The lean S3 client against the real RGW: TLS with a private CA (and a clear failure without it), CA
// bundles ignored for plain http, truncated bodies never served (retried, then an error), credentials
// errors that say which setting is wrong, and the rate limiter counting every attempt.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageError, type StorageError } from '../../../src/storage/errors.js';
import { S3Store, type S3StoreOptions } from '../../../src/storage/s3/store.js';
import { RateLimiter } from '../../../src/storage/rate-limit.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';

/** RGW's TLS endpoint and its CA (test/global-setup.ts); absent when the tests run against another server. */
const tls = process.env.S3_ENDPOINT_TLS && process.env.S3_CA_FILE ? { endpoint: process.env.S3_ENDPOINT_TLS, caFile: process.env.S3_CA_FILE } : undefined;

describe('S3Store (lean client) against RGW', () => {
  const s = s3Server();
  let bucket: string;
  const store = (extra: Partial<S3StoreOptions> = {}) =>
    new S3Store({
      bucket,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      ...extra,
    });

  beforeAll(async () => {
    bucket = await freshBucket('lean');
  });
  afterAll(() => emptyAndDeleteBucket(bucket));

  it.skipIf(!tls)('talks TLS to an endpoint whose CA is given as a bundle (caBundle / AWS_CA_BUNDLE)', async () => {
    const { endpoint, caFile } = tls!;
    const st = store({ endpoint, caBundle: caFile, partSize: 5 << 20 });
    const data = randomBytes(11 << 20);
    await st.write('tls/big', { stream: (await import('node:stream')).Readable.from([data]) });
    await st.write('tls/small', 'over tls', { metadata: { mode: '100644' } });
    expect((await st.head('tls/small')).metadata).toEqual({ mode: '100644' });
    const into = Buffer.alloc(data.length);
    expect(await st.readInto('tls/big', { range: { start: 5, end: data.length } }, into)).toBe(data.length - 5);
    expect(into.subarray(0, data.length - 5).equals(data.subarray(5))).toBe(true);
    const keys: string[] = [];
    for await (const page of st.list('tls/')) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual(['tls/big', 'tls/small']);
    st.close();
  });

  it.skipIf(!tls)('without the CA, TLS fails at once with a message that says how to trust it', async () => {
    const { endpoint } = tls!;
    // The system bundle only (this machine's AWS_CA_BUNDLE): RGW's throwaway CA is not in it.
    const st = store({ endpoint, caBundle: '/etc/ssl/certs/ca-certificates.crt', maxAttempts: 3 });
    const err = (await st.head('tls/small').catch((e) => e)) as StorageError;
    expect(isStorageError(err, 'Unreachable')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(endpoint);
    expect(err.message).toMatch(/cannot trust the TLS certificate .*AWS_CA_BUNDLE/);
    st.close();
    const unreadable = store({ endpoint, caBundle: '/nonexistent/ca.pem' });
    const e2 = (await unreadable.head('tls/small').catch((e) => e)) as StorageError;
    expect(e2.message).toMatch(/cannot read the CA bundle \/nonexistent\/ca.pem \(AWS_CA_BUNDLE\)/);
    unreadable.close();
  });

  it.skipIf(!tls)('trusts a CA given by NODE_EXTRA_CA_CERTS next to AWS_CA_BUNDLE (this machine has both set)', async () => {
    // NODE_EXTRA_CA_CERTS is read when Node starts: a child process with it set talks to RGW over TLS.
    const script = `
      import { S3Store } from ${JSON.stringify(path.resolve('src/storage/s3/store.ts'))};
      const st = new S3Store({ bucket: ${JSON.stringify(bucket)}, endpoint: ${JSON.stringify(tls!.endpoint)}, credentials: { kind: 'default' } });
      await st.write('tls/extra', 'trusted');
      process.stdout.write((await st.read('tls/extra')).toString());
      st.close();`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: tls!.caFile, AWS_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt' },
      encoding: 'utf8',
    });
    expect(out).toBe('trusted');
  });

  it('a CA bundle is never read for a plain http endpoint', async () => {
    const st = store({ caBundle: '/nonexistent/ca.pem' });
    await st.write('http/k', 'plain');
    expect((await st.read('http/k')).toString()).toBe('plain');
    st.close();
  });

  it('names the wrong secret (SignatureDoesNotMatch) and the unknown access key (InvalidAccessKeyId)', async () => {
    const badSecret = store({ credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: 'not-the-secret-0000' } });
    const e1 = (await badSecret.read('http/k').catch((e) => e)) as StorageError;
    expect(isStorageError(e1, 'BadCredentials')).toBe(true);
    expect(e1.message).toMatch(/rejected the credentials .*SignatureDoesNotMatch: the secret access key does not match the access key id/);
    expect(e1.message).not.toContain('not-the-secret');
    badSecret.close();
    const badKey = store({ credentials: { kind: 'static', accessKeyId: 'NOSUCHKEY0000000000', secretAccessKey: s.secretAccessKey } });
    const e2 = (await badKey.read('http/k').catch((e) => e)) as StorageError;
    expect(isStorageError(e2, 'BadCredentials')).toBe(true);
    expect(e2.message).toMatch(/InvalidAccessKeyId/);
    badKey.close();
  });

  it('takes a rate-limit token for every attempt, retries included', async () => {
    const ops: string[] = [];
    const limiter = new RateLimiter({ opsPerSecond: 1000, writesPerSecond: 1000 });
    const acquire = limiter.acquire.bind(limiter);
    limiter.acquire = (op) => {
      ops.push(op ?? '');
      return acquire(op);
    };
    const st = store({ rateLimiter: limiter });
    await st.write('rl/k', 'x');
    await st.head('rl/k');
    await st.read('rl/k');
    for await (const _ of st.list('rl/')) void _;
    expect(ops).toEqual(['PutObjectCommand', 'HeadObjectCommand', 'GetObjectCommand', 'ListObjectsV2Command']);
    st.close();
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy(s.endpoint);
    });
    afterAll(() => proxy.close());

    it('a truncated body is never served: retried, and after the last attempt an error', async () => {
      const data = randomBytes(2 << 20);
      const direct = store();
      await direct.write('trunc/k', data);
      direct.close();
      const st = store({ endpoint: proxy.endpoint, maxAttempts: 3, backoff: { baseMs: 5, capMs: 20 } });
      const into = Buffer.alloc(data.length);
      // Cut once: the retry gets the whole body.
      proxy.requests.length = 0;
      proxy.plan = (method, _url, n) => (method === 'GET' && n === 1 ? 'truncate' : 'pass');
      expect(await st.readInto('trunc/k', {}, into)).toBe(data.length);
      expect(into.equals(data)).toBe(true);
      expect(proxy.requests).toHaveLength(2);
      // Cut every time: no partial success, an error once the attempts are spent.
      proxy.requests.length = 0;
      proxy.plan = (method) => (method === 'GET' ? 'truncate' : 'pass');
      for (const read of [() => st.readInto('trunc/k', { range: { start: 0, end: data.length } }, into), () => st.read('trunc/k')]) {
        proxy.requests.length = 0;
        const err = (await read().catch((e) => e)) as StorageError;
        expect(isStorageError(err, 'Unreachable')).toBe(true);
        expect(err.message).toMatch(/ResponseTruncated|ConnectionClosed/);
        expect(proxy.requests).toHaveLength(3);
      }
      // A stream hands the body out as it comes: a cut is then the stream's error, a StorageError.
      proxy.requests.length = 0;
      const stream = await st.stream('trunc/k');
      let got = 0;
      const streamErr = await (async () => {
        for await (const piece of stream) got += (piece as Buffer).length;
      })().catch((e: unknown) => e);
      expect(isStorageError(streamErr, 'Unreachable')).toBe(true);
      expect(got).toBeLessThan(data.length);
      expect(proxy.requests).toHaveLength(1);
      proxy.plan = () => 'pass';
      st.close();
    });

    it('a stalled response is abandoned and retried', async () => {
      const st = store({ endpoint: proxy.endpoint, idleTimeoutMs: 300, backoff: { baseMs: 5, capMs: 20 } });
      await st.write('stall/k', 'patience');
      proxy.stallMs = 2000;
      proxy.requests.length = 0;
      proxy.plan = (method, _url, n) => (method === 'GET' && n === 1 ? 'stall' : 'pass');
      expect((await st.read('stall/k')).toString()).toBe('patience');
      expect(proxy.requests).toHaveLength(2);
      proxy.plan = () => 'pass';
      st.close();
    });
  });
});
