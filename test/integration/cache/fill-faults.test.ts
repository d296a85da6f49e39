// Cache fills read straight into pooled buffers (readInto) while a proxy in front of RGW resets connections,
// cuts bodies half-way, answers 503/500 or stalls: every read returns the right bytes or fails, and nothing
// wrong is ever kept: once the faults stop, every file reads back whole and its cache file holds its bytes.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { S3Store } from '../../../src/storage/s3/store.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../../helpers/fault-proxy.js';
import { s3Server } from '../../helpers/s3.js';
import { rgwBucket, sha256, tempDir, type RgwBucket } from './env.js';
import { prng } from '../../helpers/prng.js';

const MiB = 1 << 20;
const FAULTS: Fault[] = ['reset', 'truncate', 'slowdown', 'error500', 'stall'];

describe('cache fills through readInto under faults', () => {
  let rgw: RgwBucket;
  let proxy: FaultProxy;
  let dir: ReturnType<typeof tempDir>;
  const files = new Map<string, { data: Buffer; etag: string }>();

  beforeAll(async () => {
    rgw = await rgwBucket('fill-faults');
    proxy = await startFaultProxy(s3Server().endpoint);
    proxy.stallMs = 1500;
    dir = tempDir('fill-faults');
    const put = async (key: string, data: Buffer) => files.set(key, { data, etag: (await rgw.store.write(key, data)).etag });
    await put('big', randomBytes(40 * MiB + 777));
    for (let i = 0; i < 12; i++) await put(`small-${i}`, randomBytes(3000 + i * 40_000));
  });
  afterAll(async () => {
    await proxy?.close();
    await rgw?.remove();
    dir?.remove();
  });

  it.each(FAULTS)('%s: right bytes or an error, never wrong bytes, nothing wrong cached', async (fault) => {
    const s = s3Server();
    const store = new S3Store({
      bucket: rgw.bucket,
      endpoint: proxy.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      maxAttempts: 2,
      backoff: { baseMs: 5, capMs: 20 },
      idleTimeoutMs: 500,
    });
    const cache = await openCache({ dir: `${dir.path}/${fault}`, maxBytes: '1G', minFreeBytes: 0 });
    const random = prng(FAULTS.indexOf(fault) + 7);
    let injected = 0;
    proxy.plan = (method) => {
      if (method !== 'GET' || random() >= 0.5) return 'pass';
      injected++;
      return fault;
    };
    const open = (key: string) => {
      const f = files.get(key)!;
      return cache.open({ kind: 'object', location: store.location, key, etag: f.etag }, { store, key, size: f.data.length });
    };
    /** Reads every file in 256 KiB steps: how many reads failed; wrong bytes fail the test at once. */
    const readAll = async (): Promise<number> => {
      let failures = 0;
      for (const [key, f] of files) {
        const h = await open(key).catch(() => undefined);
        if (!h) {
          failures++;
          continue;
        }
        for (let off = 0; off < f.data.length; off += 256 * 1024) {
          const got = await h.read(off, 256 * 1024).catch(() => undefined);
          if (!got) failures++;
          else expect(got.equals(f.data.subarray(off, off + 256 * 1024)), `${key} at ${off}`).toBe(true);
        }
        h.close();
      }
      return failures;
    };
    try {
      const failures = await readAll();
      expect(injected).toBeGreaterThan(0);
      console.log(`${fault}: ${injected} faults injected, ${failures} reads failed`);
      proxy.plan = () => 'pass';
      expect(await readAll()).toBe(0);
      // Whatever was kept is right: each file, completed, holds exactly the object's bytes.
      for (const [key, f] of files) {
        const h = await open(key);
        await h.fetchAll();
        expect(sha256(readFileSync(await h.whenComplete())), key).toBe(sha256(f.data));
        h.close();
      }
    } finally {
      proxy.plan = () => 'pass';
      await cache.close();
      store.close();
    }
  }, 120_000);
});
