// A limit on ranged GETs in flight for the whole cache, with two priorities: a reader waiting for a block
// goes before prefetch, so prefetch can never delay what a program is blocked on.
export type Priority = 'demand' | 'prefetch';

export class FetchQueue {
  private running = 0;
  private readonly waiting: Record<Priority, Array<() => void>> = { demand: [], prefetch: [] };

  constructor(private readonly limit: number) {}

  async run<T>(priority: Priority, task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      await new Promise<void>((resolve) => this.waiting[priority].push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.demand.shift() ?? this.waiting.prefetch.shift();
      if (next) next(); // hand our slot over directly: `running` stays the same
      else this.running--;
    }
  }

  /** Slots free right now; prefetch uses it to avoid queueing work that would only wait. */
  get idle(): number {
    return Math.max(0, this.limit - this.running);
  }

  get queued(): number {
    return this.waiting.demand.length + this.waiting.prefetch.length;
  }
}
