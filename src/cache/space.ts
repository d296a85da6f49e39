// The cache's byte budget on disk. Every write reserves its bytes first (whole 4 KiB filesystem blocks),
// evicting the least recently read entries that nothing holds, so the bytes in flight are inside the bound,
// not on top of it. Used = data files + reserved + overhead (index, directories, staging), the overhead and the
// disk's free space re-measured at most once a second; the bound in effect is
// min(maxBytes, used + free − minFreeBytes). When nothing can be evicted the write is refused (the reader still
// gets its bytes, uncached) and the condition is reported, naming which limit bit.
import type { DiskProbe } from './directory.js';
import type { EntryRecord } from './entry-record.js';
import { CacheError, ioError } from './errors.js';
import { formatSize } from './size.js';
import type { StatsRecorder } from './stats.js';

const REFRESH_MS = 1000;

export interface SpaceOptions {
  /** The cache directory (for messages). */
  dir: string;
  maxBytes: number;
  minFreeBytes: number;
}

/** The entry registry, as eviction sees it. */
export interface EvictionSource {
  /** Every entry, least recently used first. */
  lru(): Iterable<EntryRecord>;
  /** Nothing holds it: no handle, fill, open file or descriptor being closed. */
  evictable(rec: EntryRecord): boolean;
  /** Removes entries from the index and the disk. */
  remove(victims: readonly EntryRecord[]): void;
}

export interface SpaceUsage {
  dataBytes: number;
  /** Index, directories, staging area. */
  overheadBytes: number;
  /** Bytes reserved by fills in flight. */
  reservedBytes: number;
}

export class SpaceBudget {
  private dataBytes = 0;
  private reservedBytes = 0;
  private overheadBytes = 0;
  /** used + free − minFreeBytes at the last measurement. */
  private freeBudget = Infinity;
  private lastRefresh = 0;
  private refreshing = false;

  constructor(
    private readonly opts: SpaceOptions,
    private readonly entries: EvictionSource,
    private readonly probe: DiskProbe,
    private readonly stats: StatsRecorder,
  ) {}

  /** The bound in effect right now. */
  effectiveMaxBytes(): number {
    return Math.max(0, Math.min(this.opts.maxBytes, this.freeBudget));
  }

  usedBytes(): number {
    return this.dataBytes + this.reservedBytes + this.overheadBytes;
  }

  usage(): SpaceUsage {
    return { dataBytes: this.dataBytes, overheadBytes: this.overheadBytes, reservedBytes: this.reservedBytes };
  }

  /** Counts an entry's data file found at start (its diskBytes). */
  adopt(rec: EntryRecord): void {
    this.dataBytes += rec.diskBytes;
  }

  /** Reserves bytes for a write, evicting unpinned entries; false when the bound cannot be met (reported). */
  reserve(bytes: number): boolean {
    this.maybeRefresh();
    const limit = this.effectiveMaxBytes();
    if (this.usedBytes() + bytes > limit) {
      if (this.reservedBytes + this.overheadBytes + bytes <= limit) {
        const victims: EntryRecord[] = [];
        let need = this.usedBytes() + bytes - limit;
        for (const rec of this.entries.lru()) {
          if (need <= 0) break;
          if (!this.entries.evictable(rec)) continue;
          victims.push(rec);
          need -= rec.diskBytes;
        }
        if (need <= 0) this.evict(victims);
      }
      if (this.usedBytes() + bytes > limit) {
        // Say which limit bit: the operator's bound, or the disk running out of free space.
        this.stats.report(
          this.freeBudget < this.opts.maxBytes
            ? new CacheError(
                'NoSpace',
                `the disk under the cache (${this.opts.dir}) is full: keeping ${formatSize(this.opts.minFreeBytes)} free leaves ` +
                  `room for ${formatSize(limit)} and every entry is in use: reading uncached`,
              )
            : new CacheError(
                'BoundExceeded',
                `the cache at ${this.opts.dir} is at its bound (${formatSize(limit)}) and every entry is in use: reading uncached`,
              ),
        );
        return false;
      }
    }
    this.reservedBytes += bytes;
    return true;
  }

  /** A reservation not used after all (the write failed or was given up). */
  release(bytes: number): void {
    this.reservedBytes -= bytes;
  }

  /** Reserved bytes now belong to the entry's data file. */
  settle(rec: EntryRecord, bytes: number): void {
    this.reservedBytes -= bytes;
    rec.diskBytes += bytes;
    this.dataBytes += bytes;
  }

  /**
   * The entry's file occupies `allocated` bytes (st_blocks after an fsync). Trust the filesystem over our
   * arithmetic where it says more: extent-tree blocks of a fragmented sparse file and leftovers of a crashed
   * fill also occupy the disk.
   */
  measured(rec: EntryRecord, allocated: number): void {
    if (allocated <= rec.diskBytes) return;
    this.dataBytes += allocated - rec.diskBytes;
    rec.diskBytes = allocated;
  }

  /** The entry's data is gone (file removed or started over): nothing of it is counted or present. */
  dropData(rec: EntryRecord): void {
    this.dataBytes -= rec.diskBytes;
    rec.diskBytes = 0;
    rec.runs = [];
    rec.complete = false;
  }

  /** Evicts least-recently-used unpinned entries until the directory uses at most `toBytes`. */
  evictDownTo(toBytes: number): { evicted: number; freedBytes: number } {
    const victims: EntryRecord[] = [];
    let excess = this.usedBytes() - toBytes;
    let freed = 0;
    for (const rec of this.entries.lru()) {
      if (excess <= 0) break;
      if (!this.entries.evictable(rec)) continue;
      victims.push(rec);
      excess -= rec.diskBytes;
      freed += rec.diskBytes;
    }
    this.evict(victims);
    return { evicted: victims.length, freedBytes: freed };
  }

  private evict(victims: readonly EntryRecord[]): void {
    if (!victims.length) return;
    this.entries.remove(victims);
    for (const rec of victims) {
      this.dataBytes -= rec.diskBytes;
      this.stats.counters.evictions++;
      this.stats.counters.evictedBytes += rec.diskBytes;
    }
  }

  /** Re-measures soon if the last measurement is older than a second (never waits for it). */
  maybeRefresh(): void {
    if (Date.now() - this.lastRefresh > REFRESH_MS) void this.refresh();
  }

  /** Re-measures the overhead (index, directories, staging) and the disk's free space. */
  async refresh(force = false): Promise<void> {
    if (this.refreshing && !force) return;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    try {
      this.overheadBytes = await this.probe.overheadBytes();
      this.freeBudget = this.usedBytes() + (await this.probe.availableBytes()) - this.opts.minFreeBytes;
    } catch (err) {
      this.stats.report(ioError(err, `cannot measure the cache directory ${this.opts.dir}`));
    } finally {
      this.refreshing = false;
    }
  }
}
