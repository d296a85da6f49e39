import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RateLimiter, RateLimiters, SPACES_LIMITS, TokenBucket, defaultLimitsFor } from '../../../src/storage/rate-limit.js';

describe('client-side rate limits', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lets a burst through, then paces waiters at the rate, in order', async () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    const done: number[] = [];
    for (let i = 0; i < 6; i++) void bucket.take().then(() => done.push(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toEqual([0, 1, 2]);
    now = 100; // one token per 100 ms
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toEqual([0, 1, 2, 3]);
    now = 300;
    await vi.advanceTimersByTimeAsync(200);
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('counts writes and lists against both limits, reads against the total only', async () => {
    const limiter = new RateLimiter({ opsPerSecond: 100, writesPerSecond: 1 });
    let writes = 0;
    let reads = 0;
    for (let i = 0; i < 3; i++) void limiter.acquire('PutObjectCommand').then(() => writes++);
    for (let i = 0; i < 3; i++) void limiter.acquire('GetObjectCommand').then(() => reads++);
    await vi.advanceTimersByTimeAsync(10);
    expect(reads).toBe(3);
    expect(writes).toBe(1);
  });

  it('gives every store of one bucket the same limiter, per registry', () => {
    const limiters = new RateLimiters();
    const a = limiters.for('http://127.0.0.1:7480', 'bkt');
    expect(limiters.for('http://127.0.0.1:7480', 'bkt')).toBe(a);
    expect(limiters.for('http://127.0.0.1:7480', 'other')).not.toBe(a);
    expect(limiters.for('http://127.0.0.1:7480', 'bkt', { opsPerSecond: 1, writesPerSecond: 1 })).not.toBe(a);
    expect(new RateLimiters().for('http://127.0.0.1:7480', 'bkt')).not.toBe(a);
  });

  it("uses DigitalOcean Spaces' limits for Spaces endpoints", () => {
    expect(defaultLimitsFor('https://nyc3.digitaloceanspaces.com')).toEqual(SPACES_LIMITS);
    expect(defaultLimitsFor('http://127.0.0.1:7480').opsPerSecond).toBeGreaterThan(SPACES_LIMITS.opsPerSecond);
  });
});
