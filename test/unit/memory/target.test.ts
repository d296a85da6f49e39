import { describe, expect, it } from 'vitest';
import { DaemonMemory, MEMORY_DEFAULTS, MemoryTarget, RUNTIME_BYTES, splitTarget, type TargetShares } from '../../../src/memory/index.js';

const MiB = 1024 * 1024;
const CAPS: TargetShares = { fetchBytes: 64 * MiB, readAheadBytes: 64 * MiB, chunkSpareBytes: 128 * MiB, uploadPartsInFlight: 8, uploadPartSpareBytes: 32 * MiB };
const PART = 16 * MiB;

describe('splitTarget', () => {
  it('splits what the runtime leaves of a target among fetches, retained chunks, spares and upload parts', () => {
    const s = splitTarget(256 * MiB, CAPS, PART);
    // 104 MiB of buffers: a quarter each for fetches and parts, an eighth each for retained chunks and spares,
    // in whole MiB and whole parts.
    expect(s).toEqual({ fetchBytes: 26 * MiB, readAheadBytes: 13 * MiB, chunkSpareBytes: 13 * MiB, uploadPartsInFlight: 1, uploadPartSpareBytes: 0 });
    expect(splitTarget(512 * MiB, CAPS, PART)).toEqual({ fetchBytes: 64 * MiB, readAheadBytes: 45 * MiB, chunkSpareBytes: 45 * MiB, uploadPartsInFlight: 5, uploadPartSpareBytes: 32 * MiB });
    const total = s.fetchBytes + s.readAheadBytes + s.chunkSpareBytes + s.uploadPartsInFlight * PART + s.uploadPartSpareBytes;
    expect(total).toBeLessThanOrEqual(256 * MiB - RUNTIME_BYTES);
  });

  it('never goes above the defaults, and keeps one part and some fetch room however small the target', () => {
    expect(splitTarget(64 * 1024 * MiB, CAPS, PART)).toEqual(CAPS);
    const tiny = splitTarget(100 * MiB, CAPS, PART);
    expect(tiny.uploadPartsInFlight).toBe(1);
    expect(tiny.fetchBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(tiny.uploadPartSpareBytes).toBe(0);
  });
});

describe('MemoryTarget', () => {
  it('allows optional uses only while RSS (plus what others hold) stays under 95% of the target', () => {
    let rss = 100 * MiB;
    const t = new MemoryTarget(200 * MiB, () => 10 * MiB, () => rss);
    expect(t.allows(80 * MiB)).toBe(true); // 190 ≤ 190
    expect(t.allows(81 * MiB)).toBe(false);
    expect(t.underPressure).toBe(false);
    rss = 185 * MiB;
    // Sampled at most every 200 ms: a fresh target sees the new figure.
    const later = new MemoryTarget(200 * MiB, () => 10 * MiB, () => rss);
    expect(later.underPressure).toBe(true);
  });

  it('without a target allows everything and reads nothing', () => {
    const t = new MemoryTarget(undefined, undefined, () => {
      throw new Error('read');
    });
    expect(t.allows(1e15)).toBe(true);
  });

  it('refuses a target that is not a positive number', () => {
    expect(() => new MemoryTarget(0)).toThrow(/memory target 0/);
  });
});

describe('DaemonMemory under a target', () => {
  it('keeps no spare buffers while the target says no', () => {
    let rss = 10 * MiB;
    const memory = new DaemonMemory({ target: new MemoryTarget(100 * MiB, undefined, () => rss) });
    memory.chunkBuffers.give(memory.chunkBuffers.take(MiB));
    expect(memory.usage().pools['cache.chunks']).toEqual({ takenBytes: 0, spareBytes: MiB });
    rss = 96 * MiB;
    const pressed = new DaemonMemory({ ...MEMORY_DEFAULTS, target: new MemoryTarget(100 * MiB, undefined, () => rss) });
    pressed.chunkBuffers.give(pressed.chunkBuffers.take(MiB));
    expect(pressed.usage().pools['cache.chunks']).toEqual({ takenBytes: 0, spareBytes: 0 });
  });
});
