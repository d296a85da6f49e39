// A count of something scarce, shared by its users across the process: upload parts in flight, bytes of
// fetched chunks kept in memory. Users take units before they use them and give them back after; those who
// must wait are served first come, first served, so a large request is not overtaken forever by small ones.

/** What a budget holds right now. */
export interface BudgetUsage {
  used: number;
  limit: number;
  /** Requests waiting for units. */
  waiting: number;
}

interface Waiter {
  amount: number;
  grant(): void;
}

export class CountedBudget {
  private inUse = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limit: number) {
    if (!(limit >= 0)) throw new RangeError(`budget limit ${limit} is not a non-negative number`);
  }

  get used(): number {
    return this.inUse;
  }

  get available(): number {
    return Math.max(0, this.limit - this.inUse);
  }

  /** Takes `amount` units if they are free and nobody is waiting; never waits. */
  tryAcquire(amount = 1): boolean {
    if (this.waiters.length > 0 || this.inUse + amount > this.limit) return false;
    this.inUse += amount;
    return true;
  }

  /**
   * Takes `amount` units, waiting (in turn) until they are free. Rejects with the signal's reason if it is
   * aborted first (nothing taken), and at once with a RangeError if `amount` exceeds the limit.
   */
  acquire(amount = 1, signal?: AbortSignal): Promise<void> {
    if (amount > this.limit) return Promise.reject(new RangeError(`cannot acquire ${amount} of a budget of ${this.limit}`));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.tryAcquire(amount)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(signal!.reason as Error);
        this.grant(); // a smaller request behind this one may fit now
      };
      const waiter: Waiter = {
        amount,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives `amount` units back; waiters that now fit get them, in turn. */
  release(amount = 1): void {
    if (amount > this.inUse) throw new RangeError(`released ${amount} of a budget with ${this.inUse} in use`);
    this.inUse -= amount;
    this.grant();
  }

  usage(): BudgetUsage {
    return { used: this.inUse, limit: this.limit, waiting: this.waiters.length };
  }

  private grant(): void {
    for (let w = this.waiters[0]; w && this.inUse + w.amount <= this.limit; w = this.waiters[0]) {
      this.waiters.shift();
      this.inUse += w.amount;
      w.grant();
    }
  }
}
