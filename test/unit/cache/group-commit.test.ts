// The group commit with a filesystem sync service (the daemon's syncfs): one call per flush makes the
// written files durable before their rows are recorded; when it fails nothing of the batch is recorded.
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { nativeFuse } from '../../../src/fuse/native.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';

describe('group commit through one filesystem sync per flush', () => {
  let dir: string;
  const store = new MemoryStore();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gd-commit-'));
    for (let i = 0; i < 5; i++) await store.write(`f${i}`, `file ${i}`);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const rows = () => {
    const db = new Database(path.join(dir, 'index.sqlite'), { readonly: true });
    try {
      return (db.prepare('SELECT complete FROM entries').all() as { complete: number }[]).map((r) => r.complete);
    } finally {
      db.close();
    }
  };
  const readAll = async (cache: Awaited<ReturnType<typeof openCache>>) => {
    for (let i = 0; i < 5; i++) {
      const info = await store.head(`f${i}`);
      const h = await cache.open({ kind: 'object', location: store.location, key: `f${i}`, etag: info.etag }, { store, key: `f${i}`, size: info.size });
      expect((await h.read(0, 100)).toString()).toBe(`file ${i}`);
      h.close();
    }
  };

  it('records a flush of many files after one sync', async () => {
    const syncs: number[] = [];
    const syncfs = nativeFuse().syncfs;
    const cache = await openCache({ dir, maxBytes: '1G', minFreeBytes: 0, flushIntervalMs: 60_000 }, undefined, {
      syncFilesystem: (fd) => (syncs.push(fd), syncfs(fd)),
    });
    try {
      await readAll(cache);
      await cache.flush();
      expect(syncs).toHaveLength(1);
      expect(rows()).toEqual([1, 1, 1, 1, 1]);
    } finally {
      await cache.close();
    }
  });

  it('records nothing of a flush whose sync failed, and says so', async () => {
    const cache = await openCache({ dir, maxBytes: '1G', minFreeBytes: 0, flushIntervalMs: 60_000 }, undefined, {
      syncFilesystem: async () => -5, // EIO
    });
    const conditions: string[] = [];
    cache.on('condition', (e) => conditions.push(e.message));
    try {
      await readAll(cache);
      await cache.flush();
      expect(rows()).toEqual([]);
      expect(conditions.join()).toMatch(/cannot sync the cache filesystem/);
    } finally {
      await cache.close();
    }
  });
});
