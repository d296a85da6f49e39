// The hard size bound under churn: a workload 5× larger than the bound, the directory measured on disk
// (allocated blocks, like du) all along; open entries are never evicted; reads that cannot be cached still succeed.
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { duBytes } from '../../../src/cache/inspect.js';
import { CountingStore } from '../../helpers/counting-store.js';
import { rgwBucket, tempDir, type RgwBucket } from './env.js';

const MiB = 1 << 20;

describe('cache size bound', () => {
  let rgw: RgwBucket;
  let dir: ReturnType<typeof tempDir>;
  const objects: Array<{ key: string; data: Buffer; etag: string }> = [];
  const bound = 24 * MiB;

  beforeAll(async () => {
    rgw = await rgwBucket('cache-bound');
    dir = tempDir('cache-bound');
    // 5× the bound: 20 large (5 MiB, partially cached block by block) + 240 small (100 KiB, whole).
    const bodies = [
      ...Array.from({ length: 20 }, () => randomBytes(5 * MiB)),
      ...Array.from({ length: 240 }, () => randomBytes(100 * 1024)),
    ];
    await Promise.all(
      bodies.map(async (data, i) => {
        const key = `obj/${i}`;
        const info = await rgw.store.write(key, data);
        objects[i] = { key, data, etag: info.etag };
      }),
    );
    const total = objects.reduce((n, o) => n + o.data.length, 0);
    expect(total).toBeGreaterThanOrEqual(5 * bound);
  });
  afterAll(async () => {
    await rgw?.remove();
    dir?.remove();
  });

  it('never lets the directory grow past the bound, measured on disk, under concurrent churn', async () => {
    const cache = await openCache({ dir: dir.path, maxBytes: bound, minFreeBytes: 0 });
    let maxDu = 0;
    const sampler = setInterval(() => (maxDu = Math.max(maxDu, duBytes(dir.path))), 5);
    try {
      // Every object read whole once (so at least 5× the bound is fetched), in random order, then random
      // ranges of random objects: churn with evictions all along.
      const order = objects.map((_, i) => i).sort(() => Math.random() - 0.5);
      const work = [...order.map((i) => ({ i, whole: true })), ...Array.from({ length: 240 }, () => ({ i: randomInt(0, objects.length), whole: false }))];
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let w = work[next++]; w; w = work[next++]) {
          const o = objects[w.i]!;
          const h = await cache.open(
            { kind: 'object', location: rgw.store.location, key: o.key, etag: o.etag },
            { store: rgw.store, key: o.key, size: o.data.length },
          );
          try {
            if (w.whole) expect((await h.read(0, o.data.length)).equals(o.data)).toBe(true);
            const off = randomInt(0, o.data.length);
            const len = randomInt(1, 2 * MiB);
            expect((await h.read(off, len)).equals(o.data.subarray(off, off + len))).toBe(true);
          } finally {
            h.close();
          }
          maxDu = Math.max(maxDu, duBytes(dir.path));
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      await cache.flush();
      maxDu = Math.max(maxDu, duBytes(dir.path));
      const s = cache.stats();
      expect(s.evictions).toBeGreaterThan(20);
      expect(s.bytesFetched).toBeGreaterThanOrEqual(objects.reduce((n, o) => n + o.data.length, 0));
      // Reservations are taken before bytes are written, so nothing in flight overshoots either; the only
      // slack is directory growth between two measurements of the overhead (a few KiB).
      console.log(`bound ${bound / MiB} MiB, max on disk ${(maxDu / MiB).toFixed(2)} MiB, evictions ${s.evictions}`);
      expect(maxDu).toBeLessThanOrEqual(bound + 256 * 1024);
    } finally {
      clearInterval(sampler);
      await cache.close();
    }
    expect(duBytes(dir.path)).toBeLessThanOrEqual(bound);
  });

  it('a sequential read that cannot be cached still fetches each byte about once (prefetched chunks kept in memory)', async () => {
    const counting = new CountingStore(rgw.store);
    const cache = await openCache({ dir: `${dir.path}/tiny`, maxBytes: 1 * MiB, minFreeBytes: 0 }); // below the index alone
    try {
      const o = objects[3]!;
      const h = await cache.open(
        { kind: 'object', location: rgw.store.location, key: o.key, etag: o.etag },
        { store: counting, key: o.key, size: o.data.length },
      );
      const parts: Buffer[] = [];
      for (let off = 0; off < o.data.length; off += 128 * 1024) parts.push(await h.read(off, 128 * 1024));
      h.close();
      expect(Buffer.concat(parts).equals(o.data)).toBe(true);
      expect(cache.stats().conditions.BoundExceeded).toBeGreaterThan(0);
      expect(counting.bytesRead()).toBeLessThanOrEqual(o.data.length * 1.25);
    } finally {
      await cache.close();
    }
  });

  it('never evicts an open entry; when nothing can be evicted reads still succeed, uncached, and it is reported', async () => {
    const cache = await openCache({ dir: `${dir.path}/pinned`, maxBytes: 14 * MiB, minFreeBytes: 0 }); // 2 × 5 MiB + ~2 MiB index and directories
    const conditions: string[] = [];
    cache.on('condition', (e) => conditions.push(e.code));
    try {
      const open = async (i: number) => {
        const o = objects[i]!;
        return cache.open(
          { kind: 'object', location: rgw.store.location, key: o.key, etag: o.etag },
          { store: rgw.store, key: o.key, size: o.data.length },
        );
      };
      const a = await open(0);
      const b = await open(1);
      expect((await a.read(0, 5 * MiB)).equals(objects[0]!.data)).toBe(true);
      expect((await b.read(0, 5 * MiB)).equals(objects[1]!.data)).toBe(true);
      // a and b are pinned (10 MiB); c cannot fit: served uncached, a and b untouched.
      const c = await open(2);
      expect((await c.read(0, 5 * MiB)).equals(objects[2]!.data)).toBe(true);
      expect(a.completePath()).toBeDefined();
      expect(b.completePath()).toBeDefined();
      expect(c.completePath()).toBeUndefined();
      const s = cache.stats();
      expect(s.evictions).toBe(0);
      expect(s.bytesUncached).toBeGreaterThan(0);
      expect(s.conditions.BoundExceeded).toBeGreaterThan(0);
      expect(conditions).toContain('BoundExceeded');
      // Once a is closed it is the LRU victim and c's blocks can be kept.
      a.close();
      await cache.flush();
      expect((await c.read(0, 5 * MiB)).equals(objects[2]!.data)).toBe(true);
      // The read is answered from the fetched chunks; the blocks reach the file a moment later.
      expect(await c.whenComplete()).toBeDefined();
      expect(cache.stats().evictions).toBe(1);
      b.close();
      c.close();
      // prune/clear
      const pruned = await cache.prune(6 * MiB);
      expect(pruned.evicted).toBeGreaterThanOrEqual(1);
      expect(cache.stats().usedBytes).toBeLessThanOrEqual(6 * MiB);
      await cache.clear();
      expect(cache.stats().entries).toBe(0);
    } finally {
      await cache.close();
    }
  });
});
