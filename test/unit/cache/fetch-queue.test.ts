import { describe, expect, it } from 'vitest';
import { FetchQueue } from '../../../src/cache/fetch-queue.js';

describe('FetchQueue', () => {
  it('limits concurrency and runs waiting demand before waiting prefetch', async () => {
    const q = new FetchQueue(2);
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const task = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(name);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    };
    const all = [
      q.run('prefetch', task('p1')),
      q.run('prefetch', task('p2')),
      q.run('prefetch', task('p3')),
      q.run('demand', task('d1')),
    ];
    expect(q.idle).toBe(0);
    expect(q.queued).toBe(2);
    await Promise.all(all);
    expect(peak).toBe(2);
    expect(order.slice(0, 3)).toEqual(['p1', 'p2', 'd1']);
    expect(q.idle).toBe(2);
  });

  it('frees the slot when a task fails', async () => {
    const q = new FetchQueue(1);
    await expect(q.run('demand', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(q.run('demand', async () => 7)).resolves.toBe(7);
  });
});
