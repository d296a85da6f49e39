// Page-aligned scratch buffers for O_DIRECT writes (and reads). O_DIRECT needs the memory, the file offset and
// the length aligned to the device's block size; Node has no aligned allocator, but the memory of a
// WebAssembly.Memory starts on a page boundary (V8 maps it whole), so every 64 KiB slice of it is aligned too.
// Buffers are reused: fresh pages are what made buffered writes expensive in the first place.

/** The alignment we guarantee for offsets and lengths of direct I/O (a page covers every block device). */
export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 64 * 1024;
// Our lib settings (ES2022, no DOM) type WebAssembly as a namespace only; the global is always there in Node.
const { Memory } = (globalThis as unknown as {
  WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };
}).WebAssembly;

export function alignDown(n: number): number {
  return n - (n % DIRECT_ALIGN);
}

export class AlignedPool {
  private readonly free: Buffer[] = [];

  /**
   * @param slotBytes size of each buffer, a multiple of 64 KiB
   * @param maxFree buffers kept for reuse; more given back are left to the garbage collector
   */
  constructor(
    readonly slotBytes: number,
    private readonly maxFree = Infinity,
  ) {
    if (slotBytes <= 0 || slotBytes % WASM_PAGE !== 0) throw new RangeError(`slotBytes ${slotBytes} is not a multiple of 64 KiB`);
  }

  /** A buffer of slotBytes, page-aligned; give it back when done. Grows on demand (bounded by its users). */
  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    const memory = new Memory({ initial: this.slotBytes / WASM_PAGE, maximum: this.slotBytes / WASM_PAGE });
    return Buffer.from(memory.buffer, 0, this.slotBytes);
  }

  give(b: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(b);
  }

  /** Buffers waiting to be taken again. */
  get spare(): number {
    return this.free.length;
  }
}

/** What a set of pools holds right now. */
export interface PoolUsage {
  /** Bytes of buffers taken and not given back yet. */
  takenBytes: number;
  /** Bytes of spare buffers kept for reuse. */
  spareBytes: number;
}

/**
 * Aligned buffers of power-of-two sizes from `min` bytes up, a pool per size (a buffer costs at most twice the
 * bytes asked for). Spare buffers are kept, up to `maxSpareBytes` in all, while they are being reused: on this
 * VM a fresh page costs a host fault, and a cold read that took fresh buffers ran at 0.6–0.75× of one that
 * reused them. After `idleMs` without a take, the spares are let go (an idle daemon holds none).
 */
export class AlignedPools {
  private readonly pools = new Map<number, AlignedPool>();
  private spareBytes = 0;
  private takenBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly min: number,
    private readonly maxSpareBytes: number,
    private readonly idleMs: number,
    /** Whether a spare of this many bytes may be kept now (a memory target under pressure says no). */
    private readonly keepSpare: (bytes: number) => boolean = () => true,
    /** Told of every buffer left to the garbage collector (a memory target collects them sooner). */
    private readonly dropped: (bytes: number) => void = () => undefined,
  ) {}

  /** The size of the buffer take(length) returns. */
  sizeFor(length: number): number {
    let size = this.min;
    while (size < length) size *= 2;
    return size;
  }

  /** A page-aligned buffer of at least `length` bytes; give it back when done. */
  take(length: number): Buffer {
    const size = this.sizeFor(length);
    let pool = this.pools.get(size);
    if (!pool) {
      pool = new AlignedPool(size);
      this.pools.set(size, pool);
    }
    if (pool.spare > 0) this.spareBytes -= size;
    this.takenBytes += size;
    this.idleTimer?.refresh();
    return pool.take();
  }

  give(b: Buffer): void {
    this.takenBytes -= b.length;
    const pool = this.pools.get(b.length);
    if (!pool || this.spareBytes + b.length > this.maxSpareBytes || !this.keepSpare(b.length)) {
      this.dropped(b.length); // left to the garbage collector
      return;
    }
    this.spareBytes += b.length;
    pool.give(b);
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.dropSpares(), this.idleMs).unref();
  }

  usage(): PoolUsage {
    return { takenBytes: this.takenBytes, spareBytes: this.spareBytes };
  }

  private dropSpares(): void {
    this.idleTimer = undefined;
    this.pools.clear();
    this.dropped(this.spareBytes);
    this.spareBytes = 0;
  }
}
