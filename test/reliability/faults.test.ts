// Faults between a mounted bucket and RGW, injected by a proxy on 127.0.0.1: 503 SlowDown, 500, connection
// resets, bodies cut half-way, stalled responses. Reads must return the right bytes or EIO, never wrong
// bytes; writes must either succeed (the bucket holds the bytes) or fail and keep the data; everything
// recovers once the faults stop. Each phase prints what it injected and verified.
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../src/cache/index.js';
import { BucketView } from '../../src/fs/bucket/bucket-view.js';
import { S3Store } from '../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../helpers/buckets.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { mountForTest, sh, tempDir, type Mounted } from '../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../helpers/s3.js';
import { prng } from '../helpers/prng.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const FAULTS: Fault[] = ['slowdown', 'error500', 'reset', 'truncate', 'stall'];

describe('reliability: faults between the mount and the bucket', () => {
  const s = s3Server();
  const client = s3Client();
  let bucket: string;
  let proxy: FaultProxy;
  let work: { dir: string; remove: () => void };
  const files = new Map<string, Buffer>();
  const totals = { faults: 0, reads: 0, readErrors: 0, bytesVerified: 0, wrongBytes: 0, writes: 0, writeErrors: 0 };
  let mounted: Mounted | undefined;
  let view: BucketView | undefined;
  let cache: Cache | undefined;

  async function mount(): Promise<string> {
    const store = new S3Store({
      bucket,
      endpoint: proxy.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      maxAttempts: 4,
      backoff: { baseMs: 10, capMs: 100 },
      idleTimeoutMs: 1000,
      partSize: 5 << 20,
    });
    cache = await openCache({ dir: path.join(work.dir, `cache-${Date.now()}`), maxBytes: 1 << 30 });
    view = new BucketView({ store, cache, metadataTtlMs: 60_000, write: { stagingDir: cache.stagingDir, retryBackoff: { baseMs: 100, capMs: 300 } } });
    await view.start();
    mounted = await mountForTest(view);
    return mounted.mountpoint;
  }

  beforeAll(async () => {
    bucket = await freshBucket('faults');
    proxy = await startFaultProxy(s.endpoint);
    proxy.stallMs = 2500;
    work = tempDir('gd-faults-');
    for (let i = 0; i < 12; i++) files.set(`r/small-${i}`, randomBytes(1000 + i * 3000));
    files.set('r/big-a', randomBytes(24 << 20));
    files.set('r/big-b', randomBytes(9 << 20));
    for (const [key, body] of files) await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  });

  afterEach(async () => {
    await mounted?.cleanup();
    mounted = undefined;
    view?.close();
    await cache?.close();
    proxy.plan = () => 'pass';
  });

  afterAll(async () => {
    await proxy.close();
    work.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
    console.log(`faults: ${JSON.stringify(totals)}`);
  });

  it.each(FAULTS)('reads under %s: the right bytes or EIO, never wrong bytes; then all good once faults stop', async (fault) => {
    const mnt = await mount();
    await sh(`ls ${mnt}/r > /dev/null`); // metadata first: the faults are aimed at the data path
    const random = prng(FAULTS.indexOf(fault) + 1);
    let injected = 0;
    proxy.plan = (method) => {
      if (method !== 'GET' || random() >= 0.3) return 'pass';
      injected++;
      return fault;
    };
    const readAll = async (): Promise<number> => {
      const names = [...files.keys()];
      const out = await sh(names.map((k) => `(sha256sum < ${mnt}/${k} || echo ERROR) | cut -d' ' -f1`).join('; '));
      const got = out.trim().split('\n');
      let errors = 0;
      names.forEach((k, i) => {
        totals.reads++;
        if (got[i] === 'ERROR') {
          errors++;
          return;
        }
        if (got[i] !== sha(files.get(k)!)) totals.wrongBytes += files.get(k)!.length;
        else totals.bytesVerified += files.get(k)!.length;
      });
      return errors;
    };
    const errors = await readAll();
    totals.readErrors += errors;
    totals.faults += injected;
    expect(injected).toBeGreaterThan(0);
    expect(totals.wrongBytes).toBe(0);
    proxy.plan = () => 'pass';
    expect(await readAll()).toBe(0);
    expect(totals.wrongBytes).toBe(0);
  }, 120_000);

  it('writes under every fault: close() succeeds with the bytes in the bucket, or fails and keeps them until they are', async () => {
    const mnt = await mount();
    await sh(`mkdir -p ${mnt}/w`);
    const random = prng(99);
    let injected = 0;
    proxy.plan = (method) => {
      if (method === 'GET' || method === 'HEAD' || random() >= 0.3) return 'pass';
      injected++;
      return FAULTS[Math.floor(random() * FAULTS.length)]!;
    };
    const written = new Map<string, Buffer>();
    for (let i = 0; i < 16; i++) written.set(`w/f${i}`, randomBytes(i % 4 === 0 ? (12 << 20) + i : 5000 + i));
    const local = path.join(work.dir, 'src');
    await sh(`mkdir -p ${local}`);
    for (const [key, body] of written) await writeFile(path.join(local, path.basename(key)), body);
    const outcome = await sh([...written.keys()].map((k) => `cp ${local}/${path.basename(k)} ${mnt}/${k} 2>/dev/null && echo ok || echo failed`).join('; '));
    const results = outcome.trim().split('\n');
    let k = 0;
    for (const [key, body] of written) {
      totals.writes++;
      if (results[k++] === 'ok') {
        // Acknowledged: the bucket must hold exactly these bytes, now.
        const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
        expect(sha(got), key).toBe(sha(body));
      } else {
        totals.writeErrors++;
      }
    }
    totals.faults += injected;
    expect(injected).toBeGreaterThan(0);
    proxy.plan = () => 'pass';
    const t0 = Date.now();
    while (view!.uploadStatus().length > 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
    expect(view!.uploadStatus()).toEqual([]);
    for (const [key, body] of written) {
      const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
      expect(sha(got), key).toBe(sha(body));
      totals.bytesVerified += body.length;
    }
  }, 120_000);
});
