import { describe, expect, it } from 'vitest';
import { BackoffRetryStrategy } from '../../../src/storage/retry-strategy.js';

describe('BackoffRetryStrategy', () => {
  const strategy = new BackoffRetryStrategy(4, (attempt) => attempt * 100, () => 1_000_000);

  it('keeps retrying throttled requests however many there are (no client-wide quota)', async () => {
    // The SDK's standard strategy would refuse after ~100 throttling retries on one client.
    for (let request = 0; request < 1000; request++) {
      const token = await strategy.acquireInitialRetryToken();
      const retry = await strategy.refreshRetryTokenForRetry(token, { errorType: 'THROTTLING' });
      expect(retry.getRetryDelay()).toBe(100);
      strategy.recordSuccess();
    }
  });

  it('caps attempts per request and backs off more each time', async () => {
    let token = await strategy.acquireInitialRetryToken();
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      token = await strategy.refreshRetryTokenForRetry(token, { errorType: 'TRANSIENT' });
      delays.push(token.getRetryDelay());
    }
    expect(delays).toEqual([100, 200, 300]);
    await expect(strategy.refreshRetryTokenForRetry(token, { errorType: 'TRANSIENT' })).rejects.toThrow();
  });

  it('does not retry client errors, and waits at least as long as the server asks', async () => {
    const token = await strategy.acquireInitialRetryToken();
    await expect(strategy.refreshRetryTokenForRetry(token, { errorType: 'CLIENT_ERROR' })).rejects.toThrow();
    await expect(strategy.refreshRetryTokenForRetry(token, { errorType: 'SERVER_ERROR' })).rejects.toThrow();
    const later = await strategy.refreshRetryTokenForRetry(token, { errorType: 'THROTTLING', retryAfterHint: new Date(1_002_000) });
    expect(later.getRetryDelay()).toBe(2000);
  });
});
