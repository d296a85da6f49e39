// The sibling prefetch pattern on its own: which files it asks for, when, and when it stops.
import { describe, expect, it } from 'vitest';
import { SiblingPrefetch, type PrefetchResult, type Sibling } from '../../../src/fs/sibling-prefetch.js';

/** A directory of `count` files of `size` bytes; records what was prefetched; `answer` decides the cache's reply. */
function directory(count: number, size = 1000, answer: (i: number) => PrefetchResult = () => 'started') {
  const fetched: number[] = [];
  const at = (i: number): Sibling | undefined =>
    i % 10 === 9 ? undefined : { size, prefetch: () => (answer(i) === 'started' ? (fetched.push(i), 'started') : answer(i)) };
  return { fetched, at, count };
}

describe('sibling prefetch', () => {
  it('starts after a few opens in listing order and keeps a window of files ahead of the furthest open', () => {
    const p = new SiblingPrefetch<string>({ aheadFiles: 8, minRun: 3 });
    const d = directory(100);
    p.opened('d', 0, d.count, d.at);
    p.opened('d', 1, d.count, d.at);
    expect(d.fetched).toEqual([]);
    p.opened('d', 2, d.count, d.at);
    expect(d.fetched).toEqual([3, 4, 5, 6, 7, 8, 10]); // 9 is a subdirectory
    p.opened('d', 4, d.count, d.at); // several readers: a little out of order
    p.opened('d', 3, d.count, d.at);
    expect(d.fetched).toEqual([3, 4, 5, 6, 7, 8, 10, 11, 12]);
  });

  it('stops when the pattern breaks (a shuffled order never starts it)', () => {
    const p = new SiblingPrefetch<string>({ aheadFiles: 8, minRun: 3, tolerance: 16 });
    const d = directory(10_000);
    for (const i of [0, 1, 2]) p.opened('d', i, d.count, d.at);
    const before = d.fetched.length;
    expect(before).toBeGreaterThan(0);
    p.opened('d', 5000, d.count, d.at); // a jump: a new pattern, not yet a run
    p.opened('d', 12, d.count, d.at);
    expect(d.fetched).toHaveLength(before);
    const shuffled = [7412, 91, 5530, 2208, 9960, 3377, 640, 8123, 4471, 1290];
    const s = directory(10_000);
    for (const i of shuffled) p.opened('s', i, s.count, s.at);
    expect(s.fetched).toEqual([]);
  });

  it('bounds the bytes ahead, and resumes from where the cache was busy', () => {
    let busy = true;
    const p = new SiblingPrefetch<string>({ aheadFiles: 32, aheadBytes: 5000, minRun: 2 });
    const d = directory(100, 1000, (i) => (busy && i >= 4 ? 'busy' : 'started'));
    p.opened('d', 0, d.count, d.at);
    p.opened('d', 1, d.count, d.at);
    expect(d.fetched).toEqual([2, 3]); // then busy
    busy = false;
    p.opened('d', 2, d.count, d.at);
    expect(d.fetched).toEqual([2, 3, 4, 5, 6, 7]); // 5000 bytes past the front (3..7)
    p.opened('d', 3, d.count, d.at);
    expect(d.fetched).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });

  it('does not count files already cached against the window', () => {
    const p = new SiblingPrefetch<string>({ aheadFiles: 32, aheadBytes: 3000, minRun: 2 });
    const d = directory(100, 1000, (i) => (i < 6 ? 'present' : 'started'));
    p.opened('d', 0, d.count, d.at);
    p.opened('d', 1, d.count, d.at);
    expect(d.fetched).toEqual([6, 7, 8]);
  });
});
