// What eager multipart uploads need from the process: memory for parts and a bound on parts in flight. Both
// are process-wide (every file written at once shares them), so they are built once by the daemon and
// injected; these structural interfaces are all src/upload knows of them.

/** Page-aligned part buffers, lent and given back (AlignedPools satisfies it). */
export interface PartBuffers {
  /** A page-aligned buffer of at least `length` bytes; give it back when done. */
  take(length: number): Buffer;
  give(buffer: Buffer): void;
}

/** A counted budget of parts in flight, with waiters for a free slot. */
export interface PartSlots {
  /** Takes a slot if one is free; false when the budget is spent. */
  tryTake(): boolean;
  /** Gives a slot back, waking waiters (in the order they came) while slots are free. */
  give(): void;
  /** Calls `waiter` once, when a slot is given back. Waiting again before that changes nothing. */
  wait(waiter: () => void): void;
  /** Forgets a waiter that no longer wants a slot. */
  stopWaiting(waiter: () => void): void;
}

/** PartSlots over a plain counter. */
export class CountedSlots implements PartSlots {
  private used = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  tryTake(): boolean {
    if (this.used >= this.limit) return false;
    this.used++;
    return true;
  }

  give(): void {
    this.used--;
    for (const waiter of this.waiters) {
      if (this.used >= this.limit) break;
      this.waiters.delete(waiter);
      waiter();
    }
  }

  wait(waiter: () => void): void {
    this.waiters.add(waiter);
  }

  stopWaiting(waiter: () => void): void {
    this.waiters.delete(waiter);
  }
}
