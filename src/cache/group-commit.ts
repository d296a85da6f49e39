// Durability: written blocks become durable in groups. Every flushIntervalMs the data files written since the
// last flush are made durable — by one syncfs of the cache's filesystem where the daemon provides it, else
// by an fdatasync per file (for O_DIRECT data either makes the block allocation and the device's write cache
// durable) — and only then are their block runs, access times and the counters recorded in one SQLite
// transaction. So the index never claims bytes that a crash could have lost: a kill -9 at any point loses at
// most the last unrecorded blocks, which are fetched again. Why syncfs: at a thousand small files a second,
// an fdatasync each was a tenth of the daemon's CPU (the writeback done in our thread, a journal commit each).
import type { FileHandle } from 'node:fs/promises';
import { encodeRuns } from './blocks.js';
import type { BlockMap, BlockRun } from './blocks.js';
import type { EntryRecord } from './entry-record.js';
import { ioError } from './errors.js';
import type { EntryRow, IndexDb } from './index-db.js';
import type { SpaceBudget } from './space.js';
import type { StatsRecorder } from './stats.js';

/** What a flush needs of an open entry (OpenEntry): its written blocks, its data file and its record. */
export interface DirtyEntry {
  readonly rec: EntryRecord;
  readonly map: BlockMap;
  readonly fh: FileHandle | undefined;
  /** Set once the entry failed: nothing more of it is recorded. */
  readonly failed?: unknown;
  readonly path: string;
  readonly blockCount: number;
  /** Written whole in one write (a small file): its allocation is its size in pages, nothing to measure. */
  readonly writtenWhole: boolean;
}

/** The entry registry, as the flusher sees it. */
export interface CommitHost {
  /** The record is still the registry's (not evicted or dropped since it was written). */
  isListed(rec: EntryRecord): boolean;
  /** After each flush: entries no handle holds any more may close their files now. */
  flushed(): void;
}

export class GroupCommit {
  /** Open entries with blocks written (or completed) since the last flush. */
  private readonly dirty = new Set<DirtyEntry>();
  /** Records whose last access changed since the last flush. */
  private readonly touched = new Set<EntryRecord>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly db: IndexDb,
    private readonly stats: StatsRecorder,
    private readonly space: SpaceBudget,
    private readonly host: CommitHost,
    private readonly intervalMs: number,
    /** Makes everything written on the cache's filesystem durable (syncfs); else each file is fdatasynced. */
    private readonly syncAll?: () => Promise<void>,
  ) {}

  /** The entry wrote blocks (or became complete): record them at the next flush. */
  markDirty(entry: DirtyEntry): void {
    this.dirty.add(entry);
    this.schedule();
  }

  isDirty(entry: DirtyEntry): boolean {
    return this.dirty.has(entry);
  }

  /** The record's last access changed: record it at the next flush. */
  accessed(rec: EntryRecord): void {
    this.touched.add(rec);
  }

  /** The entry left the index (evicted, dropped): its pending access time and written blocks are not recorded. */
  dropPending(rec: EntryRecord, entry?: DirtyEntry): void {
    this.touched.delete(rec);
    if (entry) this.dirty.delete(entry);
  }

  /** A flush within flushIntervalMs (one timer for all). */
  schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err: unknown) => this.stats.report(ioError(err, 'cache flush failed')));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** The cache is closing: no more timed flushes (its last flush() records what is left). */
  stop(): void {
    this.stopped = true;
  }

  /** Group commit: fsync the data written since the last flush, then record it (and access times) in one transaction. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.again = false;
        await this.flushOnce();
      } while (this.again);
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = [...this.dirty];
    this.dirty.clear();
    const synced = await (this.syncAll ? this.syncTogether(batch) : this.syncEach(batch));
    const upserts: EntryRow[] = [];
    for (const entry of synced) {
      if (!entry || entry.failed) continue;
      const rec = entry.rec;
      if (!this.host.isListed(rec)) continue; // dropped meanwhile
      rec.runs = entry.map.runs(true);
      const durableAll =
        rec.size === 0 || (rec.runs.length === 1 && rec.runs[0]!.start === 0 && rec.runs[0]!.end === entry.blockCount);
      if (rec.runs.length === 0 && rec.size > 0) continue;
      upserts.push({
        id: rec.id,
        identity: rec.identity,
        size: rec.size,
        blockSize: rec.blockSize,
        blocks: encodeRuns(rec.runs),
        diskBytes: rec.diskBytes,
        complete: rec.complete && durableAll,
        lastAccess: rec.lastAccess,
      });
      this.touched.delete(rec);
    }
    const touches = [...this.touched].map((r) => ({ id: r.id, lastAccess: r.lastAccess }));
    this.touched.clear();
    const counters = this.stats.unpersisted();
    try {
      this.db.commit({ upserts, touches, counters });
      this.stats.markPersisted(counters);
    } catch (err) {
      this.stats.report(ioError(err, 'cannot update the cache index'));
      for (const e of synced) if (e) this.dirty.add(e); // retried on the next flush
      this.schedule();
    }
    this.host.flushed();
    this.space.maybeRefresh();
  }

  /** One syncfs for the whole batch: the entries whose writes so far are now durable. */
  private async syncTogether(batch: DirtyEntry[]): Promise<(DirtyEntry | undefined)[]> {
    if (batch.length === 0) return [];
    const written = batch.map((entry) => entry.map.runs(false));
    try {
      await this.syncAll!();
    } catch (err) {
      this.stats.report(ioError(err, 'cannot sync the cache filesystem'));
      return [];
    }
    return Promise.all(batch.map((entry, i) => this.durable(entry, written[i]!)));
  }

  /** An fdatasync per file. */
  private async syncEach(batch: DirtyEntry[]): Promise<(DirtyEntry | undefined)[]> {
    return Promise.all(
      batch.map(async (entry) => {
        const written = entry.map.runs(false);
        if (!entry.fh || entry.failed) return undefined;
        try {
          await entry.fh.datasync();
        } catch (err) {
          this.stats.report(ioError(err, `cannot fsync cache file ${entry.path}`));
          return undefined;
        }
        return this.durable(entry, written);
      }),
    );
  }

  /** The entry's `written` runs are durable: so marked, and its real allocation measured. */
  private async durable(entry: DirtyEntry, written: BlockRun[]): Promise<DirtyEntry | undefined> {
    if (!entry.fh || entry.failed) return undefined;
    for (const r of written) entry.map.markDurable(r.start, r.end);
    if (!entry.writtenWhole) {
      const allocated = await entry.fh.stat().then((st) => st.blocks * 512, () => 0);
      if (!entry.failed) this.space.measured(entry.rec, allocated);
    }
    return entry;
  }
}
