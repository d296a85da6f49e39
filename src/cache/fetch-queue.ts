// The cache's fetches in flight, bounded by bytes and by count, with two priorities: a reader waiting for
// bytes goes before prefetch, so prefetch can never delay what a program is blocked on. Bounded by bytes
// rather than by a flat count because the two kinds of GET differ: an 8 MiB range GET is bandwidth-bound
// and holds 8 MiB of buffer, a small whole-file GET is latency-bound (~1 ms of RGW's CPU for 4 KiB) and
// holds next to nothing. With a flat 8, sixteen threads opening small files waited for each other's round
// trips; by bytes they all go out at once, while 8 MiB GETs still stop at eight (64 MiB).
export type Priority = 'demand' | 'prefetch';

export interface FetchLimits {
  /** Bytes of fetches in flight (a fetch larger than this counts as this much: it runs alone). */
  maxBytes: number;
  /** Fetches in flight, whatever their size. */
  maxCount: number;
  /** What a fetch of `bytes` holds in memory: its buffer's size (default: the bytes). */
  bufferBytes?: (bytes: number) => number;
}

interface Waiter {
  bytes: number;
  start(): void;
}

export class FetchQueue {
  private bytes = 0;
  private count = 0;
  /** First come, first served within a priority: a large fetch is never overtaken forever by small ones. */
  private readonly waiting: Record<Priority, Waiter[]> = { demand: [], prefetch: [] };

  constructor(
    private readonly limits: FetchLimits,
    /** Whether memory allows an optional fetch of this many bytes now (the daemon's memory target). */
    private readonly memoryAllows: (bytes: number) => boolean = () => true,
  ) {}

  /** Runs `task`, a fetch of `bytes` bytes, once the budget has room for it (and, for prefetch, no reader waits). */
  async run<T>(priority: Priority, bytes: number, task: () => Promise<T>): Promise<T> {
    const cost = this.costOf(bytes);
    if (this.canStart(priority, cost)) this.take(cost);
    else await new Promise<void>((start) => this.waiting[priority].push({ bytes: cost, start }));
    try {
      return await task();
    } finally {
      this.bytes -= cost;
      this.count--;
      this.wake();
    }
  }

  /**
   * Whether a prefetch of `bytes` would start at once. Prefetch only ever uses idle capacity: queued, it
   * would only hold a place that a reader may need. Under memory pressure there is none: windows shrink to
   * what readers ask for.
   */
  hasRoom(bytes: number): boolean {
    const cost = this.costOf(bytes);
    return this.canStart('prefetch', cost) && this.memoryAllows(cost);
  }

  get queued(): number {
    return this.waiting.demand.length + this.waiting.prefetch.length;
  }

  /** Bytes and fetches in flight. */
  get inFlight(): { bytes: number; count: number } {
    return { bytes: this.bytes, count: this.count };
  }

  private costOf(bytes: number): number {
    return Math.min(this.limits.bufferBytes?.(bytes) ?? bytes, this.limits.maxBytes);
  }

  private canStart(priority: Priority, cost: number): boolean {
    const ahead = priority === 'demand' ? this.waiting.demand.length : this.queued;
    return ahead === 0 && this.fits(cost);
  }

  private fits(cost: number): boolean {
    return this.count < this.limits.maxCount && this.bytes + cost <= this.limits.maxBytes;
  }

  private take(cost: number): void {
    this.bytes += cost;
    this.count++;
  }

  private wake(): void {
    for (const priority of ['demand', 'prefetch'] as const) {
      const queue = this.waiting[priority];
      for (let w = queue[0]; w && this.fits(w.bytes); w = queue[0]) {
        queue.shift();
        this.take(w.bytes);
        w.start();
      }
      if (queue.length > 0) return; // its head waits for room: nothing behind it, nor of lower priority, goes first
    }
  }
}
