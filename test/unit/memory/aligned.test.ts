import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlignedPools, DIRECT_ALIGN } from '../../../src/memory/aligned.js';

const MiB = 1024 * 1024;

describe('AlignedPools', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives page-aligned buffers of the next power of two and reuses the ones given back', () => {
    const pools = new AlignedPools(2 * MiB, 8 * MiB, 30_000);
    const a = pools.take(3 * MiB);
    expect(a.length).toBe(4 * MiB);
    expect(a.byteOffset % DIRECT_ALIGN).toBe(0);
    expect(pools.take(1).length).toBe(2 * MiB);
    expect(pools.usage()).toEqual({ takenBytes: 6 * MiB, spareBytes: 0 });
    pools.give(a);
    expect(pools.usage()).toEqual({ takenBytes: 2 * MiB, spareBytes: 4 * MiB });
    expect(pools.take(4 * MiB).buffer).toBe(a.buffer);
    expect(pools.usage().spareBytes).toBe(0);
  });

  it('keeps at most maxSpareBytes of spares', () => {
    const pools = new AlignedPools(2 * MiB, 4 * MiB, 30_000);
    const bufs = [pools.take(1), pools.take(1), pools.take(1)];
    for (const b of bufs) pools.give(b);
    expect(pools.usage()).toEqual({ takenBytes: 0, spareBytes: 4 * MiB });
  });

  it('lets the spares go after idleMs without a take, and not while they are being reused', () => {
    vi.useFakeTimers();
    const pools = new AlignedPools(2 * MiB, 8 * MiB, 1000);
    const a = pools.take(1);
    pools.give(a);
    vi.advanceTimersByTime(800);
    const b = pools.take(1); // reuse restarts the idle clock
    expect(b.buffer).toBe(a.buffer);
    pools.give(b);
    vi.advanceTimersByTime(800);
    expect(pools.usage().spareBytes).toBe(2 * MiB);
    vi.advanceTimersByTime(300);
    expect(pools.usage().spareBytes).toBe(0);
    expect(pools.take(1).buffer).not.toBe(a.buffer);
  });
});
