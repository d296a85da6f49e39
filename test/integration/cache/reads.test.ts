// Reads through the cache against the real RGW and the real local store: byte-exact random ranges of a
// large object, small files whole in one GET, single-flight, sharing between versions, persistence.
import { randomBytes, randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { isCacheError } from '../../../src/cache/errors.js';
import { LocalStore } from '../../../src/storage/local-store.js';
import { CountingStore } from '../../helpers/counting-store.js';
import { rgwBucket, sha256, tempDir, type RgwBucket } from './env.js';
import { readFileSync } from 'node:fs';

const MiB = 1 << 20;

describe('cache reads on RGW', () => {
  let rgw: RgwBucket;
  let dir: ReturnType<typeof tempDir>;
  const big = randomBytes(96 * MiB + 12345);
  let bigEtag = '';

  beforeAll(async () => {
    rgw = await rgwBucket('cache-reads');
    dir = tempDir('cache-reads');
    bigEtag = (await rgw.store.write('big.bin', big)).etag;
  });
  afterAll(async () => {
    await rgw?.remove();
    dir?.remove();
  });

  it('serves byte-exact random ranges of a large object, fetching only the blocks touched', async () => {
    const store = new CountingStore(rgw.store);
    const cache = await openCache({ dir: `${dir.path}/random`, maxBytes: '1G', minFreeBytes: 0 });
    try {
      const h = await cache.open(
        { kind: 'object', location: store.location, key: 'big.bin', etag: bigEtag },
        { store, key: 'big.bin', size: big.length },
      );
      expect(store.reads).toHaveLength(0); // large: nothing fetched at open
      for (let i = 0; i < 100; i++) {
        const off = randomInt(0, big.length);
        const len = i % 10 === 0 ? randomInt(1, 3 * MiB) : randomInt(1, 64 * 1024);
        const got = await h.read(off, len);
        expect(got.equals(big.subarray(off, off + len)), `range ${off}+${len}`).toBe(true);
      }
      // Edges: last byte, past EOF, empty.
      expect((await h.read(big.length - 1, 10)).equals(big.subarray(big.length - 1))).toBe(true);
      expect((await h.read(big.length, 10)).length).toBe(0);
      expect((await h.read(0, 0)).length).toBe(0);
      // Each block was fetched at most once (no byte range was requested twice).
      const bs = cache.opts.blockSize;
      const seen = new Set<number>();
      for (const r of store.reads) {
        expect(r.start! % bs).toBe(0);
        for (let b = r.start! / bs; b < Math.ceil(r.end! / bs); b++) {
          expect(seen.has(b), `block ${b} fetched twice`).toBe(false);
          seen.add(b);
        }
      }
      expect(h.completePath()).toBeUndefined();
      // Read it all: the entry becomes complete and its file is a plain copy.
      await h.fetchAll();
      const path = await h.whenComplete();
      expect(h.completePath()).toBe(path);
      expect(sha256(readFileSync(path))).toBe(sha256(big));
      h.close();
      const s = cache.stats();
      expect(s.bytesFetched).toBe(big.length);
      expect(s.hits + s.misses).toBeGreaterThan(100);
    } finally {
      await cache.close();
    }
  });

  it('fetches one small block for a random 4 KiB read', async () => {
    const store = new CountingStore(rgw.store);
    const cache = await openCache({ dir: `${dir.path}/small-block`, maxBytes: '1G', minFreeBytes: 0 });
    try {
      const h = await cache.open(
        { kind: 'object', location: store.location, key: 'big.bin', etag: bigEtag },
        { store, key: 'big.bin', size: big.length },
      );
      const bs = cache.opts.blockSize;
      expect(bs).toBeLessThanOrEqual(64 * 1024);
      const off = 50 * MiB + 3 * bs + 100; // inside one block
      expect((await h.read(off, 4096)).equals(big.subarray(off, off + 4096))).toBe(true);
      expect(store.reads).toEqual([{ key: 'big.bin', start: 50 * MiB + 3 * bs, end: 50 * MiB + 4 * bs }]);
      h.close();
    } finally {
      await cache.close();
    }
  });

  it('prefetches sequential reads with parallel ranged GETs', async () => {
    const store = new CountingStore(rgw.store);
    const cache = await openCache({ dir: `${dir.path}/seq`, maxBytes: '1G', minFreeBytes: 0 });
    try {
      const h = await cache.open(
        { kind: 'object', location: store.location, key: 'big.bin', etag: bigEtag },
        { store, key: 'big.bin', size: big.length },
      );
      const parts: Buffer[] = [];
      for (let off = 0; off < big.length; off += 128 * 1024) parts.push(await h.read(off, 128 * 1024));
      expect(Buffer.concat(parts).equals(big)).toBe(true);
      // Prefetch grew the requests: far fewer GETs than 1 MiB blocks, and most reads were hits.
      expect(store.reads.length).toBeLessThan(big.length / MiB / 3);
      expect(cache.stats().hits).toBeGreaterThan(cache.stats().misses * 5);
      expect(await h.whenComplete()).toBe(h.completePath());
      h.close();
    } finally {
      await cache.close();
    }
  });

  it('reads back what it streamed to disk when no fetched bytes are kept in memory', async () => {
    // Fetched blocks go to disk with O_DIRECT and normally stay in memory until their reader passes them;
    // with no memory for that, every read after the first comes from the data file.
    const cache = await openCache({ dir: `${dir.path}/nomem`, maxBytes: '1G', minFreeBytes: 0, readAheadMemoryBytes: 0 });
    try {
      const h = await cache.open(
        { kind: 'object', location: rgw.store.location, key: 'big.bin', etag: bigEtag },
        { store: rgw.store, key: 'big.bin', size: big.length },
      );
      const parts: Buffer[] = [];
      for (let off = 0; off < big.length; off += 3 * MiB + 1) parts.push(await h.read(off, 3 * MiB + 1));
      expect(Buffer.concat(parts).equals(big)).toBe(true);
      expect(cache.stats().bytesFromCache).toBeGreaterThan(big.length / 2);
      expect(sha256(readFileSync(await h.whenComplete()))).toBe(sha256(big));
      h.close();
    } finally {
      await cache.close();
    }
  });

  it('single-flights concurrent readers of the same blocks, across handles', async () => {
    const store = new CountingStore(rgw.store);
    const cache = await openCache({ dir: `${dir.path}/flight`, maxBytes: '1G', minFreeBytes: 0, blockSize: MiB });
    try {
      const id = { kind: 'object' as const, location: store.location, key: 'big.bin', etag: bigEtag };
      const handles = await Promise.all(
        Array.from({ length: 6 }, () => cache.open(id, { store, key: 'big.bin', size: big.length })),
      );
      const off = 40 * MiB + 777;
      const results = await Promise.all(handles.flatMap((h) => [h.read(off, 2 * MiB), h.read(off + MiB, 4096)]));
      for (const r of results.slice(0, 1)) expect(r.equals(big.subarray(off, off + 2 * MiB))).toBe(true);
      // Blocks 40..42 fetched exactly once in total, whoever asked first.
      const touching = store.reads.filter((r) => r.start! < 43 * MiB && r.end! > 40 * MiB);
      const covered = touching.reduce((n, r) => n + (r.end! - r.start!), 0);
      expect(covered).toBe(3 * MiB);
      for (const h of handles) h.close();
    } finally {
      await cache.close();
    }
  });

  it('fetches small bucket files whole at open and keeps them across restarts', async () => {
    const small = randomBytes(300_000);
    const info = await rgw.store.write('dir/small.bin', small);
    const empty = await rgw.store.write('dir/empty', Buffer.alloc(0));
    const store = new CountingStore(rgw.store);
    const cdir = `${dir.path}/small`;
    let cache = await openCache({ dir: cdir, maxBytes: '1G', minFreeBytes: 0 });
    const idSmall = { kind: 'object' as const, location: store.location, key: 'dir/small.bin', etag: info.etag };
    const idEmpty = { kind: 'object' as const, location: store.location, key: 'dir/empty', etag: empty.etag };
    try {
      const h = await cache.open(idSmall, { store, key: 'dir/small.bin', size: small.length });
      expect(store.reads).toEqual([{ key: 'dir/small.bin', start: undefined, end: undefined }]); // one GET, no range
      expect(h.completePath()).toBeDefined();
      expect(readFileSync(h.completePath()!).equals(small)).toBe(true);
      expect((await h.read(1000, 5000)).equals(small.subarray(1000, 6000))).toBe(true);
      h.close();
      const e = await cache.open(idEmpty, { store, key: 'dir/empty', size: 0 });
      expect(e.completePath()).toBeDefined();
      expect((await e.read(0, 10)).length).toBe(0);
      e.close();
    } finally {
      await cache.close();
    }
    // Restart: both are reused without a single GET.
    store.reads.length = 0;
    cache = await openCache({ dir: cdir, maxBytes: '1G', minFreeBytes: 0 });
    try {
      expect(cache.stats().entries).toBe(2);
      const h = await cache.open(idSmall, { store, key: 'dir/small.bin', size: small.length });
      expect((await h.read(0, small.length)).equals(small)).toBe(true);
      expect(h.completePath()).toBeDefined();
      h.close();
      expect(store.reads).toHaveLength(0);
    } finally {
      await cache.close();
    }
  });

  it('fails clearly when the object changed under its ETag (If-Match)', async () => {
    const v1 = await rgw.store.write('changing.bin', randomBytes(5 * MiB));
    await rgw.store.write('changing.bin', randomBytes(5 * MiB));
    const cache = await openCache({ dir: `${dir.path}/changed`, maxBytes: '1G', minFreeBytes: 0 });
    try {
      const h = await cache.open(
        { kind: 'object', location: rgw.store.location, key: 'changing.bin', etag: v1.etag },
        { store: rgw.store, key: 'changing.bin', size: 5 * MiB },
      );
      await expect(h.read(0, 4096)).rejects.toMatchObject({ code: 'PreconditionFailed' });
      h.close();
    } finally {
      await cache.close();
    }
  });
});

describe('cache reads of team-dataset files on the local store', () => {
  let src: ReturnType<typeof tempDir>;
  let dir: ReturnType<typeof tempDir>;
  beforeAll(() => {
    src = tempDir('cache-local-src');
    dir = tempDir('cache-local');
  });
  afterAll(() => {
    src?.remove();
    dir?.remove();
  });

  it('two versions sharing files fetch each shared file once', async () => {
    const local = new LocalStore(src.path);
    const store = new CountingStore(local);
    const files = Array.from({ length: 5 }, (_, i) => randomBytes(i === 0 ? 3 * MiB + 5 : 1000 * (i + 1)));
    const changed = randomBytes(2000);
    // Content-addressed blobs, as the catalog stores them.
    for (const f of [...files, changed]) await local.write(`blobs/${sha256(f)}`, f);
    const v1 = files.map((f) => ({ sha: sha256(f), size: f.length }));
    const v2 = [...v1.slice(0, 4), { sha: sha256(changed), size: changed.length }];
    const cache = await openCache({ dir: dir.path, maxBytes: '1G', minFreeBytes: 0 });
    try {
      for (const version of [v1, v2]) {
        for (const f of version) {
          const h = await cache.open(
            { kind: 'content', sha256: f.sha },
            { store, key: `blobs/${f.sha}`, size: f.size },
          );
          const data = await h.read(0, f.size);
          expect(sha256(data)).toBe(f.sha);
          h.close();
        }
      }
      for (const f of [...v1, ...v2.slice(4)]) {
        const gets = store.reads.filter((r) => r.key === `blobs/${f.sha}`);
        const bytes = gets.reduce((n, r) => n + ((r.end ?? f.size) - (r.start ?? 0)), 0);
        expect(bytes, `blob ${f.sha}`).toBe(f.size);
      }
      expect(cache.stats().entries).toBe(6);
    } finally {
      await cache.close();
    }
  });

  it('verifies whole team-dataset files against their manifest hash', async () => {
    const local = new LocalStore(src.path);
    const good = randomBytes(5 * MiB);
    const claimed = sha256(randomBytes(10)); // manifest says something else
    await local.write('blobs/bad-small', good.subarray(0, 1000));
    await local.write('blobs/bad-big', good);
    const cache = await openCache({ dir: `${dir.path}/verify`, maxBytes: '1G', minFreeBytes: 0 });
    const conditions: string[] = [];
    cache.on('condition', (e) => conditions.push(e.code));
    try {
      await expect(
        cache.open({ kind: 'content', sha256: claimed }, { store: local, key: 'blobs/bad-small', size: 1000 }),
      ).rejects.toSatisfy((e: unknown) => isCacheError(e, 'VerifyFailed'));
      const h = await cache.open(
        { kind: 'content', sha256: sha256(randomBytes(10)) },
        { store: local, key: 'blobs/bad-big', size: good.length },
      );
      await h.fetchAll();
      await expect(h.whenComplete()).rejects.toSatisfy((e: unknown) => isCacheError(e, 'VerifyFailed'));
      expect(h.completePath()).toBeUndefined();
      await expect(h.read(0, 10)).rejects.toSatisfy((e: unknown) => isCacheError(e, 'VerifyFailed'));
      h.close();
      await cache.flush();
      expect(cache.stats().entries).toBe(0);
      expect(conditions).toEqual(['VerifyFailed', 'VerifyFailed']);
      // A good big file verifies and becomes complete.
      await local.write('blobs/good-big', good);
      const g = await cache.open({ kind: 'content', sha256: sha256(good) }, { store: local, key: 'blobs/good-big', size: good.length });
      await g.fetchAll();
      expect(readFileSync(await g.whenComplete()).equals(good)).toBe(true);
      g.close();
    } finally {
      await cache.close();
    }
  });
});
