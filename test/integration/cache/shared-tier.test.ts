// The shared tier on real RGW, origin and tier in separate buckets: a second cache reads what a first one
// fetched from the tier and not the origin; two caches missing the same file at once fetch it about once;
// a corrupted tier object is detected, read from the origin and reported; an unreachable tier sends reads
// to the origin with a warning and nothing fails. Origin bytes are counted on the origin's store.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, tierKey, type Cache, type CacheError, type CacheIdentity, type CacheSource } from '../../../src/cache/index.js';
import { entryId } from '../../../src/cache/identity.js';
import type { ObjectStore } from '../../../src/storage/object-store.js';
import { S3Store } from '../../../src/storage/s3/store.js';
import { CountingStore } from '../../helpers/counting-store.js';
import { freePort } from '../../helpers/rgw.js';
import { s3Server } from '../../helpers/s3.js';
import { rgwBucket, sha256, tempDir, type RgwBucket } from './env.js';

const MiB = 1 << 20;

interface TestFile {
  key: string;
  data: Buffer;
  identity: CacheIdentity;
}

function tierStore(bucket: string, prefix: string, endpoint = s3Server().endpoint): S3Store {
  const s = s3Server();
  return new S3Store({
    bucket,
    prefix,
    endpoint,
    region: s.region,
    credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    maxAttempts: 2,
    connectionTimeoutMs: 2000,
  });
}

describe('shared cache tier', () => {
  let origin: RgwBucket;
  let tier: RgwBucket;
  let counting: CountingStore;
  let dir: ReturnType<typeof tempDir>;
  const files: TestFile[] = [];
  const caches: Cache[] = [];
  let n = 0;

  beforeAll(async () => {
    origin = await rgwBucket('tier-origin');
    tier = await rgwBucket('tier-tier');
    counting = new CountingStore(origin.store);
    dir = tempDir('shared-tier');
    const add = async (key: string, data: Buffer, kind: 'content' | 'object') => {
      const info = await origin.store.write(key, data);
      const identity: CacheIdentity =
        kind === 'content' ? { kind: 'content', sha256: sha256(data) } : { kind: 'object', location: origin.store.location, key, etag: info.etag };
      files.push({ key, data, identity });
    };
    await add('big', randomBytes(20 * MiB + 777), 'content');
    await add('small', randomBytes(300_000), 'content');
    await add('object', randomBytes(9 * MiB + 5), 'object');
  });
  afterAll(async () => {
    for (const c of caches) await c.close().catch(() => undefined);
    await origin?.remove();
    await tier?.remove();
    dir?.remove();
  });

  async function newCache(store: ObjectStore, extra: { leaseWaitMs?: number } = {}): Promise<{ cache: Cache; conditions: CacheError[] }> {
    const cache = await openCache(
      { dir: `${dir.path}/c${n++}`, maxBytes: '1G', minFreeBytes: 0 },
      undefined,
      { sharedTier: { store, pollMs: 20, ...extra } },
    );
    caches.push(cache);
    const conditions: CacheError[] = [];
    cache.on('condition', (err) => conditions.push(err));
    return { cache, conditions };
  }

  const source = (f: TestFile): CacheSource => ({ store: counting, key: f.key, size: f.data.length });

  /** Reads the file whole through the cache in 1 MiB steps; the bytes must be the origin's. */
  async function readAll(cache: Cache, f: TestFile): Promise<void> {
    const h = await cache.open(f.identity, source(f));
    try {
      for (let at = 0; at < f.data.length; at += MiB) {
        const got = await h.read(at, Math.min(MiB, f.data.length - at));
        if (!got.equals(f.data.subarray(at, at + got.length))) throw new Error(`${f.key}: wrong bytes at ${at}`);
      }
      await h.whenComplete();
    } finally {
      await h.close();
    }
  }

  const total = () => files.reduce((s, f) => s + f.data.length, 0);

  it('a second cache reads what the first fetched from the tier, not the origin', async () => {
    const store = tierStore(tier.bucket, 'staggered');
    const a = await newCache(store);
    const before = counting.bytesRead();
    for (const f of files) await readAll(a.cache, f);
    await a.cache.tier!.drained();
    expect(a.cache.tier!.counters.uploads).toBe(files.length);
    const fromOriginA = counting.bytesRead() - before;
    // The whole-file GET of the small one has no range: count it by size.
    expect(fromOriginA + files[1]!.data.length).toBeGreaterThanOrEqual(total());

    const b = await newCache(store);
    const mid = counting.bytesRead();
    const readsBefore = counting.reads.length;
    for (const f of files) await readAll(b.cache, f);
    expect(counting.bytesRead() - mid).toBe(0);
    expect(counting.reads.length - readsBefore).toBe(0);
    expect(b.cache.tier!.counters.bytesFromTier).toBe(total());
    expect(b.conditions).toEqual([]);
  });

  it('two caches missing the same file at once fetch it from the origin about once (a lease)', async () => {
    const store = tierStore(tier.bucket, 'together');
    const c = await newCache(store, { leaseWaitMs: 60_000 });
    const d = await newCache(store, { leaseWaitMs: 60_000 });
    const big = files[0]!;
    const before = counting.bytesRead();
    await Promise.all([readAll(c.cache, big), readAll(d.cache, big)]);
    const fromOrigin = counting.bytesRead() - before;
    expect(fromOrigin).toBeLessThanOrEqual(1.5 * big.data.length);
    expect(c.cache.tier!.counters.leaseWaits + d.cache.tier!.counters.leaseWaits).toBe(1);
    await c.cache.tier!.drained();
    await d.cache.tier!.drained();
    // The lease is gone once the holder's upload ended.
    const keys: string[] = [];
    for await (const page of store.list('')) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual([tierKey({ id: entryId(big.identity), sha256: sha256(big.data) })]);
  });

  it('a corrupted tier object is detected, read from the origin, reported, and uploaded again', async () => {
    const store = tierStore(tier.bucket, 'staggered');
    // Flip one byte of each tier object's data (trailers kept): every CRC check must catch it.
    for (const f of files) {
      const key = tierKey({ id: entryId(f.identity), sha256: f.identity.kind === 'content' ? f.identity.sha256 : undefined });
      const obj = await store.read(key);
      obj[Math.floor(f.data.length / 2)]! ^= 0xff;
      await store.write(key, obj);
    }
    const e = await newCache(store);
    const before = counting.bytesRead();
    for (const f of files) await readAll(e.cache, f);
    expect(counting.bytesRead() - before).toBeGreaterThan(0);
    expect(e.cache.tier!.counters.corrupt).toBe(files.length);
    expect(e.conditions.filter((c) => c.code === 'TierCorrupt')).toHaveLength(files.length);
    expect(e.cache.stats().conditions.TierCorrupt).toBe(files.length);
    await e.cache.tier!.drained();

    // Healed: a fresh cache reads everything from the tier again.
    const g = await newCache(store);
    const mid = counting.bytesRead();
    for (const f of files) await readAll(g.cache, f);
    expect(counting.bytesRead() - mid).toBe(0);
    expect(g.cache.tier!.counters.corrupt).toBe(0);
  });

  it('an unreachable tier sends reads to the origin with a warning; nothing fails', async () => {
    const store = tierStore(tier.bucket, 'down', `http://127.0.0.1:${await freePort()}`);
    const h = await newCache(store);
    for (const f of files) await readAll(h.cache, f);
    expect(h.cache.tier!.counters.unavailable).toBeGreaterThanOrEqual(1);
    expect(h.conditions.some((c) => c.code === 'TierUnavailable')).toBe(true);
    expect(h.cache.stats().tier?.unavailableUntil).toBeDefined();
    expect(h.cache.tier!.counters.bytesFromTier).toBe(0);
  });
});
