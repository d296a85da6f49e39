import { describe, expect, it } from 'vitest';
import { SequentialDetector } from '../../../src/cache/prefetch.js';

const MiB = 1 << 20;

describe('SequentialDetector', () => {
  it('doubles the window on sequential reads up to the maximum', () => {
    const d = new SequentialDetector({ initialWindowBytes: 4 * MiB, maxWindowBytes: 16 * MiB }, MiB);
    expect(d.onRead(0, MiB)).toBe(4 * MiB); // a scan from the start prefetches at once
    expect(d.onRead(MiB, MiB)).toBe(8 * MiB);
    expect(d.onRead(2 * MiB, MiB)).toBe(16 * MiB);
    expect(d.onRead(3 * MiB, MiB)).toBe(16 * MiB);
  });

  it('tolerates slightly reordered reads but resets on random access', () => {
    const d = new SequentialDetector({ initialWindowBytes: 4 * MiB, maxWindowBytes: 64 * MiB }, MiB);
    expect(d.onRead(100 * MiB, 128 * 1024)).toBe(0); // random start: no prefetch
    expect(d.onRead(100 * MiB + 256 * 1024, 128 * 1024)).toBe(4 * MiB); // within one block of the last end
    expect(d.onRead(7 * MiB, 4096)).toBe(0);
    expect(d.onRead(500 * MiB, 4096)).toBe(0);
  });
});
