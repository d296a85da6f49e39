import { describe, expect, it } from 'vitest';
import { RetainedChunks, type Chunk, type ChunkHolder } from '../../../src/cache/retained-chunks.js';
import { AlignedPools, CountedBudget } from '../../../src/memory/index.js';

const MiB = 1024 * 1024;
const turn = () => new Promise((r) => setImmediate(r));

function setup(budgetBytes: number) {
  const budget = new CountedBudget(budgetBytes);
  const pools = new AlignedPools(2 * MiB, 64 * MiB, 30_000);
  const chunks = new RetainedChunks(budget, pools);
  /** A pooled chunk of `mib` MiB covering blocks [b0, b0 + 2). */
  const chunk = (b0: number, mib = 2): Chunk => {
    const buf = chunks.takeBuffer(mib * MiB);
    return { start: b0 * MiB, end: (b0 + 2) * MiB, b0, b1: b0 + 2, buf };
  };
  const holder = (): ChunkHolder => ({ retained: new Map() });
  return { budget, pools, chunks, chunk, holder };
}

describe('RetainedChunks', () => {
  it('keeps chunks for their holder by block and lets the oldest go first when the budget is full', async () => {
    const { budget, pools, chunks, chunk, holder } = setup(6 * MiB);
    const h1 = holder();
    const h2 = holder();
    const [a, b, c, d] = [chunk(0), chunk(2), chunk(0), chunk(4)];
    chunks.retain(h1, a);
    chunks.retain(h2, c);
    chunks.retain(h1, b);
    expect(budget.used).toBe(6 * MiB);
    expect([...h1.retained.keys()]).toEqual([0, 1, 2, 3]);
    chunks.retain(h1, d); // full: the oldest, a, goes
    expect(h1.retained.has(0)).toBe(false);
    expect(h1.retained.get(2)).toBe(b);
    expect(h1.retained.get(4)).toBe(d);
    expect(h2.retained.get(0)).toBe(c);
    expect(budget.used).toBe(6 * MiB);
    // The let-go buffer returns to the pool only after this turn: a reader may still be copying from it.
    expect(pools.usage().spareBytes).toBe(0);
    await turn();
    expect(pools.usage().spareBytes).toBe(2 * MiB);
    expect(chunks.takeBuffer(MiB).buffer).toBe(a.buf.buffer);
  });

  it('lets one chunk or all of a holder go, once, returning their bytes', async () => {
    const { budget, chunks, chunk, holder } = setup(64 * MiB);
    const h = holder();
    const [a, b] = [chunk(0), chunk(2, 4)];
    chunks.retain(h, a);
    chunks.retain(h, b);
    expect(budget.used).toBe(6 * MiB);
    chunks.letGo(a);
    chunks.letGo(a);
    expect(budget.used).toBe(4 * MiB);
    expect([...h.retained.keys()]).toEqual([2, 3]);
    chunks.letGoAll(h);
    expect(budget.used).toBe(0);
    expect(h.retained.size).toBe(0);
  });

  it('keeps nothing larger than the whole budget (readAheadMemoryBytes 0), after letting the others go', async () => {
    const { budget, pools, chunks, chunk, holder } = setup(3 * MiB);
    const h = holder();
    const small = chunk(0);
    chunks.retain(h, small);
    chunks.retain(h, chunk(2, 4));
    expect(h.retained.size).toBe(0);
    expect(budget.used).toBe(0);
    await turn();
    expect(pools.usage()).toEqual({ takenBytes: 0, spareBytes: 6 * MiB });

    const none = setup(0);
    const h0 = none.holder();
    none.chunks.retain(h0, none.chunk(0));
    expect(h0.retained.size).toBe(0);
  });
});
