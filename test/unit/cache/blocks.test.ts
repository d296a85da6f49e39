import { describe, expect, it } from 'vitest';
import { BlockMap, decodeRuns, encodeRuns, runsDiskBytes } from '../../../src/cache/blocks.js';

describe('BlockMap', () => {
  it('tracks written then durable blocks as runs', () => {
    const m = new BlockMap(10);
    m.markWritten(0, 3);
    m.markWritten(5, 6);
    expect(m.presentCount).toBe(4);
    expect(m.allPresent(0, 3)).toBe(true);
    expect(m.allPresent(2, 4)).toBe(false);
    expect(m.runs()).toEqual([
      { start: 0, end: 3 },
      { start: 5, end: 6 },
    ]);
    expect(m.runs(true)).toEqual([]);
    m.markDurable(0, 2);
    expect(m.runs(true)).toEqual([{ start: 0, end: 2 }]);
    m.markWritten(3, 5);
    m.markWritten(6, 10);
    expect(m.complete).toBe(true);
    m.markDurable(0, 10);
    expect(m.runs(true)).toEqual([{ start: 0, end: 10 }]);
  });

  it('round-trips runs through the index encoding and ignores garbage', () => {
    const m = BlockMap.fromRuns(100, decodeRuns('0-4,10-11,99-100'));
    expect(encodeRuns(m.runs(true))).toBe('0-4,10-11,99-100');
    expect(decodeRuns('0-4,x,7-3,5-6')).toEqual([
      { start: 0, end: 4 },
      { start: 5, end: 6 },
    ]);
    expect(BlockMap.fromRuns(3, [{ start: 1, end: 50 }]).presentCount).toBe(2);
  });

  it('counts whole 4 KiB filesystem blocks, a short last block rounded up', () => {
    const bs = 1 << 20;
    expect(runsDiskBytes([{ start: 0, end: 2 }], bs, 3 * bs)).toBe(2 * bs);
    expect(runsDiskBytes([{ start: 2, end: 3 }], bs, 2 * bs + 100)).toBe(4096);
    expect(runsDiskBytes([], bs, 100)).toBe(0);
  });
});
