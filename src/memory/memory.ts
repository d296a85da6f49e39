// The process's shared memory: the aligned buffer pools and the budgets that several users draw on. The
// daemon builds one at start and hands it to the cache and the uploader; tools and tests that open a cache on
// their own get a fresh one. Every pool and budget has a name, so that usage() can say who holds what.
import { AlignedPools, type PoolUsage } from './aligned.js';
import { CountedBudget, type BudgetUsage } from './budget.js';
import { MemoryTarget } from './target.js';

const MiB = 1024 * 1024;

export interface MemoryOptions {
  /**
   * The cache's fetches land in chunk buffers of power-of-two sizes from this up: 64 KiB, a WebAssembly
   * page (the unit of an aligned buffer) and the cache's block; a 4 KiB file fetched whole takes one.
   */
  chunkBufferBytes: number;
  /**
   * Spare chunk buffers kept for reuse: what one sequential reader cycles through, 8 GETs of 8 MiB in flight
   * and 64 MiB kept for the reader (cache options).
   */
  chunkSpareBytes: number;
  /** Upload parts are read into buffers of this size (S3Store's multipart part size). */
  uploadPartBytes: number;
  uploadPartSpareBytes: number;
  /** Upload parts in flight for the whole process, so that many files written at once stay bounded. */
  uploadPartsInFlight: number;
  /** Spare buffers are let go after this long without a take (an idle daemon holds none). */
  idleMs: number;
  /**
   * The daemon's memory target (none by default). Spare buffers are kept only while it allows them; the
   * daemon sizes these options from it (splitTarget) and the cache asks it before every optional use.
   */
  target?: MemoryTarget;
}

export const MEMORY_DEFAULTS: MemoryOptions = {
  chunkBufferBytes: 64 * 1024,
  chunkSpareBytes: 128 * MiB,
  uploadPartBytes: 16 * MiB,
  uploadPartSpareBytes: 32 * MiB,
  uploadPartsInFlight: 8,
  idleMs: 30_000,
};

export interface MemoryUsage {
  pools: Record<string, PoolUsage>;
  budgets: Record<string, BudgetUsage>;
}

export class DaemonMemory {
  /** Page-aligned buffers for the cache's large fetches (written O_DIRECT from there, kept for readers). */
  readonly chunkBuffers: AlignedPools;
  /** Page-aligned buffers that upload parts are read into around the page cache. */
  readonly partBuffers: AlignedPools;
  /** Upload parts in flight, process-wide (one unit per part). */
  readonly partSlots: CountedBudget;
  readonly options: MemoryOptions;
  readonly target: MemoryTarget;
  private readonly pools = new Map<string, AlignedPools>();
  private readonly budgets = new Map<string, CountedBudget>();

  constructor(input: Partial<MemoryOptions> = {}) {
    const o: MemoryOptions = { ...MEMORY_DEFAULTS, ...input };
    this.options = o;
    const target = (this.target = o.target ?? new MemoryTarget(undefined));
    const keepSpare = (bytes: number) => target.allows(bytes);
    const dropped = (bytes: number) => target.dropped(bytes);
    this.chunkBuffers = this.pool('cache.chunks', new AlignedPools(o.chunkBufferBytes, o.chunkSpareBytes, o.idleMs, keepSpare, dropped));
    this.partBuffers = this.pool('upload.parts', new AlignedPools(o.uploadPartBytes, o.uploadPartSpareBytes, o.idleMs, keepSpare, dropped));
    this.partSlots = this.budget('upload.partSlots', o.uploadPartsInFlight);
  }

  /** A budget of `limit` units, listed in usage() under `name` (a later one of the same name replaces it). */
  budget(name: string, limit: number): CountedBudget {
    const b = new CountedBudget(limit);
    this.budgets.set(name, b);
    return b;
  }

  /** What every pool and budget holds right now, by name. */
  usage(): MemoryUsage {
    const out: MemoryUsage = { pools: {}, budgets: {} };
    for (const [name, p] of this.pools) out.pools[name] = p.usage();
    for (const [name, b] of this.budgets) out.budgets[name] = b.usage();
    return out;
  }

  private pool(name: string, p: AlignedPools): AlignedPools {
    this.pools.set(name, p);
    return p;
  }
}
