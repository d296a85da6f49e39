// Sequential-read detection with an adaptive window, per open handle. A read that starts where the last one
// ended (give or take one block, since the kernel may reorder its readahead) grows the window, doubling up
// to the maximum; any other read resets it, so random access fetches only the blocks it touches.
import type { PrefetchOptions } from './options.js';

export class SequentialDetector {
  private nextOffset = -1;
  private window = 0;

  constructor(
    private readonly opts: PrefetchOptions,
    private readonly tolerance: number,
  ) {}

  /** Records a read; returns how many bytes past its end to prefetch (0 = random, no prefetch). */
  onRead(offset: number, length: number): number {
    const sequential =
      this.nextOffset >= 0 && offset >= this.nextOffset - this.tolerance && offset <= this.nextOffset + this.tolerance;
    // A read from offset 0 is the typical start of a whole-file scan: start prefetching right away.
    if (sequential || (offset === 0 && this.nextOffset < 0)) {
      this.window =
        this.window === 0 ? this.opts.initialWindowBytes : Math.min(this.window * 2, this.opts.maxWindowBytes);
    } else {
      this.window = 0;
    }
    this.nextOffset = offset + length;
    return this.window;
  }
}
