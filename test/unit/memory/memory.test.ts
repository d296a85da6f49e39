import { describe, expect, it } from 'vitest';
import { DaemonMemory, MEMORY_DEFAULTS } from '../../../src/memory/index.js';

const MiB = 1024 * 1024;

describe('DaemonMemory', () => {
  it('builds the shared pools and budgets and reports each by name', () => {
    const memory = new DaemonMemory();
    expect(memory.options).toEqual(MEMORY_DEFAULTS);
    expect(memory.partSlots.limit).toBe(8);
    const part = memory.partBuffers.take(16 * MiB);
    expect(part.length).toBe(16 * MiB);
    memory.chunkBuffers.give(memory.chunkBuffers.take(3 * MiB));
    expect(memory.partSlots.tryAcquire()).toBe(true);
    const readAhead = memory.budget('cache.readAhead', 64 * MiB);
    expect(readAhead.tryAcquire(2 * MiB)).toBe(true);
    expect(memory.usage()).toEqual({
      pools: {
        'cache.chunks': { takenBytes: 0, spareBytes: 4 * MiB },
        'upload.parts': { takenBytes: 16 * MiB, spareBytes: 0 },
      },
      budgets: {
        'upload.partSlots': { used: 1, limit: 8, waiting: 0 },
        'cache.readAhead': { used: 2 * MiB, limit: 64 * MiB, waiting: 0 },
      },
    });
  });

  it('takes its sizes from options', () => {
    const memory = new DaemonMemory({ uploadPartsInFlight: 2, chunkBufferBytes: MiB });
    expect(memory.partSlots.limit).toBe(2);
    expect(memory.chunkBuffers.take(1).length).toBe(MiB);
  });
});
