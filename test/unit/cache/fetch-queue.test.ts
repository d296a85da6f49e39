import { describe, expect, it } from 'vitest';
import { FetchQueue } from '../../../src/cache/fetch-queue.js';

const MiB = 1024 * 1024;

/** A task that records when it starts and ends when `release` is called. */
function gate(order: string[]) {
  const open = new Map<string, () => void>();
  const task = (name: string) => () =>
    new Promise<void>((resolve) => {
      order.push(name);
      open.set(name, resolve);
    });
  const release = async (name: string) => {
    open.get(name)!();
    await new Promise((r) => setImmediate(r));
  };
  return { task, release };
}

describe('FetchQueue', () => {
  it('bounds fetches in flight by bytes: many small ones at once, large ones a few at a time', async () => {
    const order: string[] = [];
    const { task, release } = gate(order);
    const q = new FetchQueue({ maxBytes: 16 * MiB, maxCount: 64 });
    const small = Array.from({ length: 20 }, (_, i) => q.run('demand', 4096, task(`s${i}`)));
    expect(order).toHaveLength(20); // latency-bound GETs all go out at once
    const large = [q.run('demand', 8 * MiB, task('L1')), q.run('demand', 8 * MiB, task('L2')), q.run('demand', 8 * MiB, task('L3'))];
    expect(order.slice(20)).toEqual(['L1']); // 20 × 4 KiB + 8 MiB in flight: L2 does not fit until small ones end
    for (let i = 0; i < 20; i++) await release(`s${i}`);
    expect(order.slice(20)).toEqual(['L1', 'L2']);
    await release('L1');
    expect(order.slice(20)).toEqual(['L1', 'L2', 'L3']);
    await release('L2');
    await release('L3');
    await Promise.all([...small, ...large]);
    expect(q.inFlight).toEqual({ bytes: 0, count: 0 });
  });

  it('caps the count whatever the sizes, and runs a fetch larger than the budget alone', async () => {
    const order: string[] = [];
    const { task, release } = gate(order);
    const q = new FetchQueue({ maxBytes: 8 * MiB, maxCount: 2 });
    const all = [q.run('demand', 1, task('a')), q.run('demand', 1, task('b')), q.run('demand', 1, task('c'))];
    expect(order).toEqual(['a', 'b']);
    await release('a');
    await release('b');
    await release('c');
    const huge = q.run('demand', 100 * MiB, task('huge'));
    expect(order).toContain('huge');
    const next = q.run('demand', 1, task('after'));
    expect(order).not.toContain('after');
    await release('huge');
    expect(order).toContain('after');
    await release('after');
    await Promise.all([...all, huge, next]);
  });

  it('runs waiting demand before waiting prefetch, and prefetch only with idle capacity', async () => {
    const order: string[] = [];
    const { task, release } = gate(order);
    const q = new FetchQueue({ maxBytes: 16 * MiB, maxCount: 64 });
    expect(q.hasRoom(8 * MiB)).toBe(true);
    const runs = [q.run('prefetch', 8 * MiB, task('p1')), q.run('prefetch', 8 * MiB, task('p2'))];
    expect(q.hasRoom(4096)).toBe(false);
    runs.push(q.run('prefetch', 8 * MiB, task('p3')), q.run('demand', 8 * MiB, task('d1')));
    expect(q.queued).toBe(2);
    await release('p1');
    expect(order).toEqual(['p1', 'p2', 'd1']);
    // A small demand fetch may start while only prefetch waits, never while demand does.
    await release('p2');
    expect(order).toEqual(['p1', 'p2', 'd1', 'p3']);
    await release('d1');
    await release('p3');
    await Promise.all(runs);
  });

  it('frees the budget when a task fails', async () => {
    const q = new FetchQueue({ maxBytes: MiB, maxCount: 1 });
    await expect(q.run('demand', MiB, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(q.run('demand', MiB, async () => 7)).resolves.toBe(7);
  });
});
