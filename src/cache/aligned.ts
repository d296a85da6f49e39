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

  /** A buffer of slotBytes, page-aligned; give it back when done. Grows on demand (bounded by the fetch queue). */
  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    const memory = new Memory({ initial: this.slotBytes / WASM_PAGE, maximum: this.slotBytes / WASM_PAGE });
    return Buffer.from(memory.buffer, 0, this.slotBytes);
  }

  give(b: Buffer): void {
    if (this.free.length < this.maxFree) this.free.push(b);
  }
}

/** n rounded up to a multiple of 64 KiB (a slot size). */
export function roundUpToSlot(n: number): number {
  return Math.ceil(n / WASM_PAGE) * WASM_PAGE;
}

export function alignDown(n: number): number {
  return n - (n % DIRECT_ALIGN);
}
