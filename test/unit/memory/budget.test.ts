import { describe, expect, it } from 'vitest';
import { CountedBudget } from '../../../src/memory/budget.js';

const settled = () => new Promise((r) => setImmediate(r));

describe('CountedBudget', () => {
  it('hands out units up to its limit and never more', () => {
    const b = new CountedBudget(3);
    expect(b.tryAcquire(2)).toBe(true);
    expect(b.tryAcquire(2)).toBe(false);
    expect(b.tryAcquire()).toBe(true);
    expect(b.usage()).toEqual({ used: 3, limit: 3, waiting: 0 });
    b.release(2);
    expect(b.available).toBe(2);
    expect(() => b.release(5)).toThrow(RangeError);
  });

  it('serves waiters first come, first served, as units come back', async () => {
    const b = new CountedBudget(2);
    expect(b.tryAcquire(2)).toBe(true);
    const order: string[] = [];
    const big = b.acquire(2).then(() => order.push('big'));
    const small = b.acquire(1).then(() => order.push('small'));
    // A waiter is queued: a newcomer may not jump the queue even where it would fit.
    b.release(1);
    expect(b.tryAcquire(1)).toBe(false);
    await settled();
    expect(order).toEqual([]);
    b.release(1);
    await big;
    expect(order).toEqual(['big']);
    expect(b.usage()).toEqual({ used: 2, limit: 2, waiting: 1 });
    b.release(2);
    await small;
    expect(order).toEqual(['big', 'small']);
    expect(b.used).toBe(1);
  });

  it('drops an aborted waiter without taking anything, and lets the ones behind it in', async () => {
    const b = new CountedBudget(2);
    expect(b.tryAcquire(1)).toBe(true);
    const abort = new AbortController();
    const big = b.acquire(2, abort.signal);
    const small = b.acquire(1);
    expect(b.usage().waiting).toBe(2);
    abort.abort(new Error('cancelled'));
    await expect(big).rejects.toThrow('cancelled');
    await small;
    expect(b.usage()).toEqual({ used: 2, limit: 2, waiting: 0 });
    await expect(b.acquire(1, abort.signal)).rejects.toThrow('cancelled');
    expect(b.used).toBe(2);
  });

  it('refuses a request larger than the whole budget instead of waiting forever', async () => {
    const b = new CountedBudget(4);
    await expect(b.acquire(5)).rejects.toThrow(RangeError);
    expect(b.tryAcquire(5)).toBe(false);
    expect(new CountedBudget(0).tryAcquire(1)).toBe(false);
  });
});
