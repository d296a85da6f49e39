// Client-side request rate limits per endpoint and bucket. DigitalOcean Spaces caps each Space at 240
// requests/s in total and 150 writes and lists per second, answering 503 SlowDown beyond: staying under the
// caps is cheaper than backing off from them. Every HTTP attempt (retries included) takes a token, so the
// limit holds whatever the SDK does underneath (multipart parts, retries).

export interface RateLimits {
  /** Every request (GET, HEAD, PUT, LIST, DELETE, ...), per second. */
  opsPerSecond: number;
  /** Writes (PUT, COPY, DELETE, multipart steps) and lists, per second: also counted in opsPerSecond. */
  writesPerSecond: number;
}

/** DigitalOcean Spaces' published per-Space limits. */
export const SPACES_LIMITS: RateLimits = { opsPerSecond: 240, writesPerSecond: 150 };
/** AWS S3's per-prefix guidance (5,500 GET/HEAD, 3,500 writes per second): effectively a safety net. */
export const DEFAULT_LIMITS: RateLimits = { opsPerSecond: 5500, writesPerSecond: 3500 };

/** The limits that fit an endpoint by default: Spaces' for *.digitaloceanspaces.com, else AWS's. */
export function defaultLimitsFor(endpoint: string | undefined): RateLimits {
  if (endpoint === undefined) return DEFAULT_LIMITS;
  try {
    return new URL(endpoint).hostname.endsWith('digitaloceanspaces.com') ? SPACES_LIMITS : DEFAULT_LIMITS;
  } catch {
    return DEFAULT_LIMITS;
  }
}

/** A token bucket: `rate` tokens per second, holding at most `burst`; waiters are served in order. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly rate: number,
    private readonly burst = Math.max(1, rate),
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0)) throw new RangeError(`rate must be positive, got ${rate}`);
    this.tokens = this.burst;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Resolves once a token is taken. */
  take(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      if (this.waiters.length > 0) this.schedule();
    }, wait);
  }
}

const WRITE_COMMANDS = new Set([
  'PutObjectCommand',
  'CopyObjectCommand',
  'DeleteObjectCommand',
  'DeleteObjectsCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
  'UploadPartCopyCommand',
  'CompleteMultipartUploadCommand',
  'AbortMultipartUploadCommand',
  'ListObjectsV2Command',
  'ListObjectsCommand',
]);

export class RateLimiter {
  private readonly ops: TokenBucket;
  private readonly writes: TokenBucket;

  constructor(readonly limits: RateLimits) {
    this.ops = new TokenBucket(limits.opsPerSecond);
    this.writes = new TokenBucket(limits.writesPerSecond);
  }

  /** Waits until a request of this SDK command may be sent. */
  async acquire(commandName: string | undefined): Promise<void> {
    if (commandName !== undefined && WRITE_COMMANDS.has(commandName)) await this.writes.take();
    await this.ops.take();
  }
}

/**
 * The limiters of one daemon, one per (endpoint, bucket, limits): every store the daemon opens to a bucket
 * shares its limiter, since the limits are the server's whichever mount sends the requests. Built once by
 * the daemon (src/daemon/run.ts) and handed to what opens stores.
 */
export class RateLimiters {
  private readonly limiters = new Map<string, RateLimiter>();

  for(endpoint: string | undefined, bucket: string, limits: RateLimits = defaultLimitsFor(endpoint)): RateLimiter {
    const key = `${endpoint ?? 'aws'}|${bucket}|${limits.opsPerSecond}|${limits.writesPerSecond}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new RateLimiter(limits);
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}
