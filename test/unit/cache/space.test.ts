import { describe, expect, it } from 'vitest';
import type { EntryRecord } from '../../../src/cache/entry-record.js';
import type { CacheError } from '../../../src/cache/errors.js';
import { SpaceBudget } from '../../../src/cache/space.js';
import { StatsRecorder } from '../../../src/cache/stats.js';

const MiB = 1024 * 1024;

function record(id: string, diskBytes: number, pins = 0): EntryRecord {
  return { id, identity: `test:${id}`, size: diskBytes, blockSize: 65536, runs: [], diskBytes, complete: true, lastAccess: 0, pins };
}

/** A budget over a registry of records in LRU order, on a disk with `overhead` used and `available` free. */
async function setup(o: { maxBytes: number; minFreeBytes?: number; overhead?: number; available?: number; records: EntryRecord[] }) {
  const lru = new Map(o.records.map((r) => [r.id, r]));
  const removed: string[][] = [];
  const conditions: CacheError[] = [];
  const stats = new StatsRecorder((err) => conditions.push(err));
  const space = new SpaceBudget(
    { dir: '/cache', maxBytes: o.maxBytes, minFreeBytes: o.minFreeBytes ?? 0 },
    {
      lru: () => lru.values(),
      evictable: (rec) => rec.pins === 0,
      remove: (victims) => {
        removed.push(victims.map((r) => r.id));
        for (const r of victims) lru.delete(r.id);
      },
    },
    { overheadBytes: async () => o.overhead ?? 0, availableBytes: async () => o.available ?? 1024 * MiB },
    stats,
  );
  for (const r of o.records) space.adopt(r);
  await space.refresh(true);
  return { space, stats, removed, conditions, lru };
}

describe('SpaceBudget', () => {
  it('reserves within the bound without evicting, and counts settled bytes as data', async () => {
    const { space, removed } = await setup({ maxBytes: 10 * MiB, overhead: MiB, records: [record('a', 2 * MiB)] });
    expect(space.usedBytes()).toBe(3 * MiB);
    expect(space.reserve(4 * MiB)).toBe(true);
    expect(space.usage()).toEqual({ dataBytes: 2 * MiB, overheadBytes: MiB, reservedBytes: 4 * MiB });
    const rec = record('b', 0);
    space.settle(rec, 3 * MiB);
    space.release(MiB);
    expect(rec.diskBytes).toBe(3 * MiB);
    expect(space.usage()).toEqual({ dataBytes: 5 * MiB, overheadBytes: MiB, reservedBytes: 0 });
    expect(removed).toEqual([]);
  });

  it('evicts the least recently used unpinned entries, oldest first, only as many as needed', async () => {
    const records = [record('old', 2 * MiB), record('pinned', 2 * MiB, 1), record('mid', 2 * MiB), record('new', 2 * MiB)];
    const { space, removed, stats } = await setup({ maxBytes: 8 * MiB, records });
    expect(space.reserve(3 * MiB)).toBe(true); // needs 3 MiB: 'old' and 'mid', never 'pinned'
    expect(removed).toEqual([['old', 'mid']]);
    expect(stats.counters.evictions).toBe(2);
    expect(stats.counters.evictedBytes).toBe(4 * MiB);
    expect(space.usage()).toEqual({ dataBytes: 4 * MiB, overheadBytes: 0, reservedBytes: 3 * MiB });
  });

  it('refuses, evicting nothing, when even evicting everything unpinned would not make room, and says why', async () => {
    const records = [record('a', 2 * MiB), record('pinned', 6 * MiB, 1)];
    const { space, removed, conditions } = await setup({ maxBytes: 8 * MiB, records });
    expect(space.reserve(3 * MiB)).toBe(false);
    expect(removed).toEqual([]);
    expect(space.usage().reservedBytes).toBe(0);
    expect(conditions.map((c) => c.code)).toEqual(['BoundExceeded']);
  });

  it('lowers the bound to keep minFreeBytes free, and reports that as NoSpace', async () => {
    // 4 MiB used, 6 MiB free, keep 4 MiB free: the bound in effect is 6 MiB, not 100.
    const { space, conditions } = await setup({ maxBytes: 100 * MiB, minFreeBytes: 4 * MiB, available: 6 * MiB, records: [record('p', 4 * MiB, 1)] });
    expect(space.effectiveMaxBytes()).toBe(6 * MiB);
    expect(space.reserve(2 * MiB)).toBe(true);
    expect(space.reserve(MiB)).toBe(false);
    expect(conditions[0]?.code).toBe('NoSpace');
    expect(conditions[0]?.message).toMatch(/keeping 4 MiB free/);
  });

  it('evicts down to a target for prune, and trusts a measured allocation that is larger', async () => {
    const records = [record('a', MiB), record('b', MiB), record('c', MiB)];
    const { space, removed } = await setup({ maxBytes: 100 * MiB, records });
    space.measured(records[2]!, 2 * MiB);
    space.measured(records[2]!, MiB); // smaller: the arithmetic stands
    expect(records[2]!.diskBytes).toBe(2 * MiB);
    expect(space.evictDownTo(2 * MiB)).toEqual({ evicted: 2, freedBytes: 2 * MiB });
    expect(removed).toEqual([['a', 'b']]);
    expect(space.usedBytes()).toBe(2 * MiB);
    space.dropData(records[2]!);
    expect(space.usedBytes()).toBe(0);
    expect(records[2]!.complete).toBe(false);
  });
});
