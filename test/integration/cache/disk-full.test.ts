// A full disk under the cache: on a small tmpfs mounted for this test (unmounted even on failure), reads keep
// succeeding uncached, the condition is reported as NoSpace with a clear message, and after space comes back
// the cache reopens consistent with nothing wrong in it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type CacheError } from '../../../src/cache/index.js';
import { isCacheError } from '../../../src/cache/errors.js';
import { rgwBucket, tempDir, type RgwBucket } from './env.js';

const MiB = 1 << 20;

/** Writes zeros until the filesystem is full. */
function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(256 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe('cache on a full disk', () => {
  let rgw: RgwBucket;
  let dir: ReturnType<typeof tempDir>;
  let mnt = '';
  let mounted = false;
  const objects: Array<{ key: string; data: Buffer; etag: string }> = [];

  beforeAll(async () => {
    dir = tempDir('cache-full');
    mnt = path.join(dir.path, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', mnt]);
    mounted = true;
    rgw = await rgwBucket('cache-full');
    const bodies = [...Array.from({ length: 6 }, () => randomBytes(4 * MiB)), ...Array.from({ length: 6 }, () => randomBytes(50_000))];
    await Promise.all(
      bodies.map(async (data, i) => {
        objects[i] = { key: `f/${i}`, data, etag: (await rgw.store.write(`f/${i}`, data)).etag };
      }),
    );
  });
  afterAll(async () => {
    if (mounted) {
      try {
        execFileSync('umount', [mnt]);
      } catch {
        execFileSync('umount', ['-l', mnt]); // never leave a mount behind, even if a descriptor leaked
      }
    }
    await rgw?.remove();
    dir?.remove();
  });

  it('keeps serving correct bytes, reports NoSpace clearly, and recovers consistent', async () => {
    const cdir = path.join(mnt, 'cache');
    const filler = path.join(mnt, 'filler');
    const id = (i: number) => ({ kind: 'object' as const, location: rgw.store.location, key: objects[i]!.key, etag: objects[i]!.etag });
    const src = (i: number) => ({ store: rgw.store, key: objects[i]!.key, size: objects[i]!.data.length });
    const readAll = async (cache: Awaited<ReturnType<typeof openCache>>, i: number) => {
      const h = await cache.open(id(i), src(i));
      try {
        expect((await h.read(0, objects[i]!.data.length)).equals(objects[i]!.data), objects[i]!.key).toBe(true);
        return h.completePath() !== undefined;
      } finally {
        h.close();
      }
    };

    let cache = await openCache({ dir: cdir, maxBytes: '1G', minFreeBytes: 0 });
    const conditions: CacheError[] = [];
    cache.on('condition', (e) => conditions.push(e));
    try {
      expect(await readAll(cache, 0)).toBe(true);
      expect(await readAll(cache, 6)).toBe(true);
      await cache.flush();
      // Someone else fills the disk: everything still reads right, uncached.
      fillDisk(filler);
      for (const i of [1, 2, 7, 8]) await readAll(cache, i);
      expect(cache.stats().bytesUncached).toBeGreaterThan(0);
      expect(conditions.some((e) => e.code === 'NoSpace' && /disk .*is full/.test(e.message))).toBe(true);
      expect(cache.stats().lastCondition?.code).toBe('NoSpace');
    } finally {
      await cache.close();
    }

    // A brand-new cache on the full disk fails to open with the same clear error.
    await expect(openCache({ dir: path.join(mnt, 'other'), minFreeBytes: 0 })).rejects.toSatisfy(
      (e: unknown) => isCacheError(e, 'NoSpace') && /full/.test((e as Error).message),
    );

    // Space comes back: the cache reopens consistent, earlier entries intact, new fills cached again.
    rmSync(filler);
    cache = await openCache({ dir: cdir, maxBytes: '1G', minFreeBytes: 0 });
    try {
      expect(cache.list().filter((e) => e.complete).length).toBeGreaterThanOrEqual(2);
      for (let i = 0; i < objects.length; i++) await readAll(cache, i);
      expect(await readAll(cache, 3)).toBe(true);
    } finally {
      await cache.close();
    }

    // minFreeBytes: the bound shrinks to keep free space, reported as a full disk.
    cache = await openCache({ dir: cdir, maxBytes: '1G', minFreeBytes: 20 * MiB });
    try {
      expect(cache.stats().effectiveMaxBytes).toBeLessThan(24 * MiB);
      for (let i = 0; i < 6; i++) await readAll(cache, i);
      expect(cache.stats().usedBytes).toBeLessThanOrEqual(cache.stats().effectiveMaxBytes);
      expect(cache.stats().lastCondition?.message).toMatch(/keeping 20 MiB free/);
    } finally {
      await cache.close();
    }
  });
});
