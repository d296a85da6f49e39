// How the S3 client retries: up to maxAttempts per request, with our jittered backoff (or the server's
// Retry-After, if later), on throttling and transient errors (5xx, resets, timeouts).
//
// Why not the SDK's standard strategy: it keeps one retry quota per client (500 tokens, 5 per retry,
// 1 back per success). Under sustained throttling — DigitalOcean Spaces answering 503 SlowDown at its
// per-Space limits — the quota runs dry and every later throttled request fails at once, which is exactly
// when backing off is the right answer. Per-request attempts and backoff already bound the extra load.
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';

class Token implements StandardRetryToken {
  constructor(
    private readonly count: number,
    private readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delayMs;
  }
  getRetryCost(): number | undefined {
    return undefined;
  }
}

export class BackoffRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';

  constructor(
    private readonly maxAttempts: number,
    /** Delay before retry number `attempt` (1 = first retry), in ms. */
    private readonly delayMs: (attempt: number) => number,
    private readonly now: () => number = Date.now,
  ) {}

  async acquireInitialRetryToken(): Promise<StandardRetryToken> {
    return new Token(0, 0);
  }

  async refreshRetryTokenForRetry(token: StandardRetryToken, info: RetryErrorInfo): Promise<StandardRetryToken> {
    const attempt = token.getRetryCount() + 1;
    const retryable = info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT';
    // Throwing tells the SDK to give up and surface the request's own error.
    if (!retryable || attempt >= this.maxAttempts) throw new Error('no retry');
    const serverHint = info.retryAfterHint ? info.retryAfterHint.getTime() - this.now() : 0;
    return new Token(attempt, Math.max(this.delayMs(attempt), serverHint));
  }

  recordSuccess(): void {}
}
