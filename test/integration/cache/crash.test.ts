// kill -9 during fills, then restart: no wrong bytes, index and files consistent, complete entries reused
// without a refetch. The filler is a real separate process (fill-child.ts) killed with SIGKILL.
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { decodeRuns } from '../../../src/cache/blocks.js';
import { CountingStore } from '../../helpers/counting-store.js';
import { rgwBucket, tempDir, type RgwBucket } from './env.js';

const MiB = 1 << 20;
const root = path.resolve(import.meta.dirname, '../../..');

describe('cache crash safety', () => {
  let rgw: RgwBucket;
  let dir: ReturnType<typeof tempDir>;
  const objects: Array<{ key: string; data: Buffer; etag: string }> = [];

  beforeAll(async () => {
    rgw = await rgwBucket('cache-crash');
    dir = tempDir('cache-crash');
    const bodies = [
      ...Array.from({ length: 4 }, () => randomBytes(24 * MiB + randomInt(0, MiB))),
      ...Array.from({ length: 40 }, () => randomBytes(randomInt(1, 400_000))),
    ];
    await Promise.all(
      bodies.map(async (data, i) => {
        const key = `o/${i}`;
        objects[i] = { key, data, etag: (await rgw.store.write(key, data)).etag };
      }),
    );
  });
  afterAll(async () => {
    await rgw?.remove();
    dir?.remove();
  });

  /** Spawns the filler, waits for `reads` completed reads plus a random delay, and SIGKILLs it. */
  async function fillAndKill(reads: number, sync: 'fdatasync' | 'syncfs'): Promise<void> {
    const list = JSON.stringify(objects.map((o) => ({ key: o.key, size: o.data.length, etag: o.etag })));
    const child = spawn(
      process.execPath,
      [path.join(root, 'node_modules/vite-node/vite-node.mjs'), path.join(import.meta.dirname, 'fill-child.ts'), dir.path, rgw.bucket, list],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(sync === 'syncfs' ? { GD_FILL_SYNCFS: '1' } : {}) } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    await new Promise<void>((resolve, reject) => {
      let seen = 0;
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString().split('\n').filter((l) => l.startsWith('read ')).length;
        if (seen >= reads) resolve();
      });
      child.on('exit', () => reject(new Error(`filler exited early: ${stderr}`)));
    });
    await new Promise((r) => setTimeout(r, randomInt(0, 150))); // land anywhere in a fill or a flush
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  }

  function checkIndexMatchesFiles(): { rows: number; complete: number } {
    const db = new Database(path.join(dir.path, 'index.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT id, size, block_size, blocks, complete FROM entries').all() as Array<{
        id: string;
        size: number;
        block_size: number;
        blocks: string;
        complete: number;
      }>;
      const ids = new Set(rows.map((r) => r.id));
      for (const sub of readdirSync(path.join(dir.path, 'data'))) {
        for (const name of readdirSync(path.join(dir.path, 'data', sub))) expect(ids.has(name), `orphan ${name}`).toBe(true);
      }
      expect(readdirSync(path.join(dir.path, 'tmp'))).toEqual([]);
      for (const r of rows) {
        const st = statSync(path.join(dir.path, 'data', r.id.slice(0, 2), r.id));
        const runs = decodeRuns(r.blocks);
        const end = runs.length ? Math.min(r.size, runs[runs.length - 1]!.end * r.block_size) : 0;
        expect(st.size).toBeGreaterThanOrEqual(r.complete ? r.size : end);
      }
      return { rows: rows.length, complete: rows.filter((r) => r.complete).length };
    } finally {
      db.close();
    }
  }

  it.each(['fdatasync', 'syncfs'] as const)('survives repeated kill -9 mid-fill with no wrong bytes and reuses complete entries (%s per flush)', async (sync) => {
    let reusedTotal = 0;
    let rowsTotal = 0;
    for (const reads of [5, 40, 120]) {
      await fillAndKill(reads, sync);
      const cache = await openCache({ dir: dir.path, maxBytes: '1G', minFreeBytes: 0 });
      try {
        const index = checkIndexMatchesFiles(); // reconciliation left index and files in agreement
        rowsTotal += index.rows; // a kill soon after the first reads may land before any group commit
        const completeBefore = new Set(cache.list().filter((e) => e.complete).map((e) => e.id));
        for (const o of objects) {
          const store = new CountingStore(rgw.store);
          const h = await cache.open(
            { kind: 'object', location: store.location, key: o.key, etag: o.etag },
            { store, key: o.key, size: o.data.length },
          );
          const wasComplete = completeBefore.has(h.id);
          // Every byte, cached or not, equals the source.
          const got = await h.read(0, o.data.length);
          expect(got.equals(o.data), `${o.key} after kill at ${reads} reads`).toBe(true);
          if (wasComplete) {
            expect(store.reads, `${o.key} was complete before the restart`).toHaveLength(0);
            reusedTotal++;
          }
          h.close();
        }
      } finally {
        await cache.close();
      }
    }
    expect(rowsTotal).toBeGreaterThan(0);
    expect(reusedTotal).toBeGreaterThan(0);
  }, 180_000);
});
