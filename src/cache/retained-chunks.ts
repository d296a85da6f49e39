// Fetched chunks kept in memory for their readers. Data written with O_DIRECT is not in the page cache, so a
// sequential reader that arrives after its prefetch completed would otherwise read it back from disk. The
// chunks of the whole cache share one byte budget (readAheadMemoryBytes, counted in buffer sizes); when it
// is full the oldest chunks are let go first. A chunk is let go as soon as its reader has read past it.
import type { AlignedPools, CountedBudget, MemoryTarget } from '../memory/index.js';

/** The bytes of one ranged GET. */
export interface Chunk {
  /** File offsets [start, end) and blocks [b0, b1) it covers. */
  start: number;
  end: number;
  b0: number;
  b1: number;
  /**
   * Bytes [start, end) at buf[0, end - start); buf.length is what the chunk costs in memory. Page-aligned,
   * from the process's chunk buffer pools (the smallest power of two that holds the chunk), reused once the
   * chunk is let go. The socket reads the body straight into it (no per-read buffers: kept until their
   * reader came, 64 KiB socket buffers outlived V8's young generation and a GiB cost dozens of full GCs).
   */
  buf: Buffer;
}

/** Who reads a retained chunk: its chunks by block (an open entry). */
export interface ChunkHolder {
  readonly retained: Map<number, Chunk>;
}

export class RetainedChunks {
  /** Retained chunks, oldest first, and who holds each. */
  private readonly chunks = new Map<Chunk, ChunkHolder>();

  constructor(
    /** Bytes of retained chunks' buffers (readAheadMemoryBytes). */
    private readonly budget: CountedBudget,
    /** Page-aligned buffers that large fetches land in: written to the data file from there, and kept for readers. */
    private readonly buffers: AlignedPools,
    /** Under pressure nothing is retained: readers find the bytes on disk (or fetch them again if uncached). */
    private readonly target?: MemoryTarget,
  ) {}

  /** A pooled, page-aligned buffer for a fetch of `length` bytes (at least roundUp(length, 4096) long). */
  takeBuffer(length: number): Buffer {
    return this.buffers.take(length);
  }

  /**
   * Returns a chunk's buffer to the pool after the current turn of the event loop: a reader whose fetch
   * just resolved copies from it in this turn (microtasks), and only a later socket read can refill it.
   */
  giveBuffer(buf: Buffer): void {
    setImmediate(() => this.buffers.give(buf));
  }

  /** Keeps a fetched chunk for `holder`'s readers, letting the oldest chunks go to stay within the budget. */
  retain(holder: ChunkHolder, chunk: Chunk): void {
    const bytes = chunk.buf.length;
    if (this.target && !this.target.allows(bytes)) {
      this.giveBuffer(chunk.buf);
      return;
    }
    while (!this.budget.tryAcquire(bytes)) {
      const oldest = this.chunks.keys().next();
      if (oldest.done) {
        // Larger than the whole budget: not kept.
        this.giveBuffer(chunk.buf);
        return;
      }
      this.letGo(oldest.value);
    }
    this.chunks.set(chunk, holder);
    for (let b = chunk.b0; b < chunk.b1; b++) holder.retained.set(b, chunk);
  }

  /** Lets a retained chunk go (its reader passed it, the budget needs room, or the entry closed). */
  letGo(chunk: Chunk): void {
    const holder = this.chunks.get(chunk);
    if (!holder) return;
    this.chunks.delete(chunk);
    this.budget.release(chunk.buf.length);
    for (let b = chunk.b0; b < chunk.b1; b++) if (holder.retained.get(b) === chunk) holder.retained.delete(b);
    this.giveBuffer(chunk.buf);
  }

  /** Lets every chunk of `holder` go (entry closing or failed). */
  letGoAll(holder: ChunkHolder): void {
    for (const chunk of new Set(holder.retained.values())) this.letGo(chunk);
  }
}
