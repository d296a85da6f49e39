// The shared tier's object format and its lease, on MemoryStore (S3's conditional create included): a trailer
// catches any changed block, and of two nodes missing the same large entry one fetches it while the other
// waits and reads the tier object once it appears, or goes to the origin once the lease is dropped.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { EntryRecord } from '../../../src/cache/entry-record.js';
import { SharedTier } from '../../../src/cache/shared-tier.js';
import { blockCrcs, decodeTrailer, encodeTrailer, firstBadBlock, TIER_BLOCK, tierKey } from '../../../src/cache/tier-object.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';

function tierObject(data: Buffer): Buffer {
  const crcs = new Uint32Array(Math.ceil(data.length / TIER_BLOCK));
  blockCrcs(data, 0, crcs);
  return Buffer.concat([data, encodeTrailer(data.length, crcs)]);
}

function record(size: number): EntryRecord {
  const id = randomBytes(32).toString('hex');
  return { id, identity: `object:${id}`, size, blockSize: 64 * 1024, runs: [], diskBytes: 0, complete: false, lastAccess: 0, pins: 0 };
}

describe('tier object format', () => {
  it('decodes what it encodes and finds a changed block', () => {
    const data = randomBytes(5 * TIER_BLOCK + 123);
    const obj = tierObject(data);
    const crcs = decodeTrailer(obj.subarray(data.length), data.length);
    if (typeof crcs === 'string') throw new Error(crcs);
    expect(firstBadBlock(data, 0, crcs)).toBe(-1);
    expect(firstBadBlock(data.subarray(2 * TIER_BLOCK, 4 * TIER_BLOCK), 2 * TIER_BLOCK, crcs)).toBe(-1);
    const bad = Buffer.from(data);
    bad[3 * TIER_BLOCK + 7]! ^= 1;
    expect(firstBadBlock(bad, 0, crcs)).toBe(3);
    // A range that does not start on a block cannot be checked: refused.
    expect(firstBadBlock(data.subarray(100), 100, crcs)).toBeGreaterThanOrEqual(0);
  });

  it('refuses a trailer of another size, or without its footer', () => {
    const data = randomBytes(TIER_BLOCK * 2);
    const obj = tierObject(data);
    expect(typeof decodeTrailer(obj.subarray(data.length), data.length + 1)).toBe('string');
    const broken = Buffer.from(obj.subarray(data.length));
    broken[broken.length - 16]! ^= 0xff;
    expect(decodeTrailer(broken, data.length)).toMatch(/footer/);
  });
});

describe('tier lease', () => {
  const never = () => false;

  it('one node fetches, the other waits and reads the tier object once it appears', async () => {
    const store = new MemoryStore();
    const a = new SharedTier({ store, leaseWaitMs: 600_000, pollMs: 5 }, () => undefined, never);
    const b = new SharedTier({ store, leaseWaitMs: 600_000, pollMs: 5 }, () => undefined, never);
    const data = randomBytes(5 * 1024 * 1024);
    const rec = record(data.length);
    const first = await a.plan(rec);
    expect(first).toMatchObject({ kind: 'origin', upload: true, lease: `${tierKey(rec)}.lease` });
    const waiting = b.plan(rec);
    await store.write(tierKey(rec), tierObject(data));
    expect((await waiting).kind).toBe('tier');
    expect(b.counters.leaseWaits).toBe(1);
    expect(b.counters.leaseTimeouts).toBe(0);
  });

  it('a dropped lease sends the waiting node to the origin', async () => {
    const store = new MemoryStore();
    const a = new SharedTier({ store, leaseWaitMs: 600_000, pollMs: 5 }, () => undefined, never);
    const b = new SharedTier({ store, leaseWaitMs: 600_000, pollMs: 5 }, () => undefined, never);
    const rec = record(8 * 1024 * 1024);
    const first = await a.plan(rec);
    const waiting = b.plan(rec);
    while (b.counters.leaseWaits === 0) await new Promise((r) => setTimeout(r, 1)); // b found the lease taken
    await store.delete((first as { lease: string }).lease);
    expect(await waiting).toEqual({ kind: 'origin', upload: true });
    expect(b.counters.leaseTimeouts).toBe(1);
  });

  it('a small entry is never leased; a tier object of the wrong size is reported and refetched', async () => {
    const store = new MemoryStore();
    const reports: string[] = [];
    const t = new SharedTier({ store }, (err) => reports.push(err.code), never);
    const small = record(100_000);
    expect(await t.plan(small)).toEqual({ kind: 'origin', upload: true });
    const rec = record(6 * 1024 * 1024);
    await store.write(tierKey(rec), randomBytes(1000));
    expect(await t.plan(rec)).toEqual({ kind: 'origin', upload: true });
    expect(reports).toEqual(['TierCorrupt']);
  });
});
