import { ListObjectsV2Command, PutBucketAclCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageError, StorageError } from '../../../src/storage/errors.js';
import { S3Store, type S3StoreOptions } from '../../../src/storage/s3/store.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';
import { storeContract } from './store-contract.js';

function storeFor(bucket: string, extra: Partial<S3StoreOptions> = {}): S3Store {
  const s = s3Server();
  return new S3Store({
    bucket,
    endpoint: s.endpoint,
    region: s.region,
    credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    partSize: 5 * 1024 * 1024,
    ...extra,
  });
}

storeContract('S3Store (RGW, with prefix)', async () => {
  const bucket = await freshBucket('contract');
  const store = storeFor(bucket, { prefix: 'team/x' });
  return {
    store,
    cleanup: async () => {
      store.close();
      await emptyAndDeleteBucket(bucket);
    },
  };
});

describe('S3Store against RGW', () => {
  let bucket: string;
  beforeAll(async () => {
    bucket = await freshBucket('s3store');
  });
  afterAll(() => emptyAndDeleteBucket(bucket));

  it('keeps keys under its prefix', async () => {
    const store = storeFor(bucket, { prefix: 'p1' });
    await store.write('a/b', 'x');
    const out = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'p1/' }));
    expect(out.Contents?.map((o) => o.Key)).toEqual(['p1/a/b']);
    store.close();
  });

  it('reports multipart uploads with the real ETag (RGW returns an empty one)', async () => {
    const store = storeFor(bucket);
    const data = Buffer.alloc(11 * 1024 * 1024, 7);
    const w = await store.write('mp/obj', { stream: (await import('node:stream')).Readable.from([data]) });
    expect(w.etag).toMatch(/-3$/);
    expect(w.size).toBe(data.length);
    await store.delete('mp/obj');
    store.close();
  });

  it('uses the default credential chain (environment) when given no keys', async () => {
    const store = new S3Store({ bucket, endpoint: s3Server().endpoint, credentials: { kind: 'default' } });
    await store.write('chain/x', 'ok');
    expect((await store.read('chain/x')).toString()).toBe('ok');
    store.close();
  });

  it('reads public buckets anonymously, and anonymous writes are denied', async () => {
    const pub = await freshBucket('public');
    const c = s3Client();
    await c.send(new PutBucketAclCommand({ Bucket: pub, ACL: 'public-read' }));
    await c.send(new PutObjectCommand({ Bucket: pub, Key: 'hello.txt', Body: 'hello', ACL: 'public-read' }));
    const anon = new S3Store({ bucket: pub, endpoint: s3Server().endpoint, credentials: { kind: 'anonymous' } });
    expect((await anon.read('hello.txt')).toString()).toBe('hello');
    const pages = [];
    for await (const p of anon.list('')) pages.push(...p.objects.map((o) => o.key));
    expect(pages).toEqual(['hello.txt']);
    const err = await anon.write('nope.txt', 'x').catch((e) => e);
    expect(isStorageError(err, 'AccessDenied')).toBe(true);
    anon.close();
    await emptyAndDeleteBucket(pub);
  });

  it('says which bucket is missing', async () => {
    const store = storeFor('no-such-bucket-here');
    const err = (await store.write('k', 'x').catch((e) => e)) as StorageError;
    expect(isStorageError(err, 'NotFound')).toBe(true);
    expect(err.message).toContain('bucket "no-such-bucket-here" does not exist');
    expect(err.message).toContain(s3Server().endpoint);
    store.close();
  });

  it('reports bad credentials without leaking the secret', async () => {
    const s = s3Server();
    const secret = 'wrong-secret-value-1234567890';
    for (const accessKeyId of [s.accessKeyId, 'NOSUCHKEY0000000000']) {
      const store = new S3Store({
        bucket,
        endpoint: s.endpoint,
        credentials: { kind: 'static', accessKeyId, secretAccessKey: secret },
      });
      const err = (await store.write('k', 'x').catch((e) => e)) as StorageError;
      expect(isStorageError(err, 'BadCredentials')).toBe(true);
      expect(err.message).toContain(`bucket "${bucket}"`);
      expect(err.message).toContain('check the access key id and secret access key');
      expect(err.message).not.toContain(secret);
      store.close();
    }
  });

  it('reports an unreachable endpoint after retrying', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const store = storeFor(bucket, { endpoint, maxAttempts: 3, backoff: { baseMs: 10, capMs: 50 } });
    const err = (await store.read('k').catch((e) => e)) as StorageError;
    expect(isStorageError(err, 'Unreachable')).toBe(true);
    expect(err.message).toContain(endpoint);
    expect(err.message).toContain('check the endpoint URL');
    expect(err.retryable).toBe(true);
    store.close();
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await startFaultProxy(s3Server().endpoint);
    });
    afterAll(() => proxy.close());

    it('retries 503 SlowDown, 500 and connection resets with backoff, then succeeds', async () => {
      const store = storeFor(bucket, { endpoint: proxy.endpoint, backoff: { baseMs: 5, capMs: 20 } });
      const faults: Array<'slowdown' | 'error500' | 'reset'> = ['slowdown', 'error500', 'reset', 'slowdown'];
      proxy.requests.length = 0;
      proxy.plan = (_m, _u, n) => faults[n - 1] ?? 'pass';
      await store.write('retry/k', 'survived');
      expect(proxy.requests.length).toBe(5);
      proxy.plan = (_m, _u, n) => (n % 2 === 1 ? 'slowdown' : 'pass');
      proxy.requests.length = 0;
      expect((await store.read('retry/k')).toString()).toBe('survived');
      proxy.plan = () => 'pass';
      store.close();
    });

    it('gives up with Throttled when SlowDown persists', async () => {
      const store = storeFor(bucket, { endpoint: proxy.endpoint, maxAttempts: 3, backoff: { baseMs: 5, capMs: 20 } });
      proxy.plan = () => 'slowdown';
      proxy.requests.length = 0;
      const err = (await store.read('retry/k').catch((e) => e)) as StorageError;
      expect(isStorageError(err, 'Throttled')).toBe(true);
      expect(proxy.requests.length).toBe(3);
      proxy.plan = () => 'pass';
      store.close();
    });
  });
});

describe('S3Store payload hash', () => {
  it('signs with a known sha256, and the server rejects bytes that do not match it', async () => {
    const bucket = await freshBucket('sha');
    const store = storeFor(bucket);
    const { createHash } = await import('node:crypto');
    const body = Buffer.from('content-addressed');
    const sha = createHash('sha256').update(body).digest('hex');
    await store.write('ok', body, { sha256: sha });
    expect((await store.read('ok')).equals(body)).toBe(true);
    const err = await store.write('bad', body, { sha256: '0'.repeat(64) }).catch((e) => e);
    expect(isStorageError(err)).toBe(true);
    expect(isStorageError(await store.head('bad').catch((e) => e), 'NotFound')).toBe(true);
    store.close();
    await emptyAndDeleteBucket(bucket);
  });
});
