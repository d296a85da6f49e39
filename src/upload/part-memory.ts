// The process's part buffers and part slots, until src/memory builds them next to the cache's buffers: the
// one place they are made (the daemon calls it once; tests and benches call it for their own).
import { AlignedPools } from '../cache/aligned.js';
import { EAGER_PART_BYTES } from './eager-upload.js';
import { CountedSlots, type PartBuffers, type PartSlots } from './parts.js';

/** Parts in flight for the whole process, so that many files written at once stay within 128 MiB. */
export const MAX_PARTS_IN_FLIGHT_TOTAL = 8;

export function partMemory(): { partBuffers: PartBuffers; partSlots: PartSlots } {
  return {
    // Two spare parts at most, let go after 30 s idle, like the cache's chunk buffers.
    partBuffers: new AlignedPools(EAGER_PART_BYTES, 2 * EAGER_PART_BYTES, 30_000),
    partSlots: new CountedSlots(MAX_PARTS_IN_FLIGHT_TOTAL),
  };
}
