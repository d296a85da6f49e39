// The cache: one directory (layout: directory.ts), one index, one byte budget, shared by every mount of the
// daemon. This module opens the directory and keeps the registry of entries (least recently used first):
// which are open, pinned by handles, being opened or closed; it hands the work to its collaborators:
//   space.ts           the byte budget: reservations, LRU eviction, the bound in effect
//   retained-chunks.ts fetched chunks kept in memory for their readers (readAheadMemoryBytes)
//   group-commit.ts    fdatasync, then one index transaction per flush interval
//   stats.ts           counters and conditions
//   entry.ts           one identity in use: its data file, fills, prefetch (whole-file.ts for small files)
// When nothing can be evicted, bytes are still returned to the reader, just not kept (and reported).
import { EventEmitter } from 'node:events';
import { closeSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { constants } from 'node:fs';
import { open, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AlignedPool, DaemonMemory } from '../memory/index.js';
import { BlockMap } from './blocks.js';
import { createCacheDir, diskProbe, INDEX_FILE, STAGING_DIR } from './directory.js';
import type { EntryRecord } from './entry-record.js';
import { OpenEntry, type EntryContext } from './entry.js';
import { CacheError, ioError } from './errors.js';
import { confirmUnchanged } from './fetch-into.js';
import { FetchQueue, type Priority } from './fetch-queue.js';
import { GroupCommit } from './group-commit.js';
import { CacheHandle, type HandleHost } from './handle.js';
import { canonicalIdentity, dataPath, entryId, type CacheIdentity, type CacheSource } from './identity.js';
import type { AttributeIndex } from './attribute-index.js';
import { IndexDb } from './index-db.js';
import { DirLock } from './lock.js';
import { resolveCacheOptions, type CacheOptions, type CacheOptionsInput } from './options.js';
import { reconcile, type ReconcileReport } from './reconcile.js';
import { RetainedChunks } from './retained-chunks.js';
import { SharedTier, type SharedTierOptions, type TierStatus } from './shared-tier.js';
import { SpaceBudget, type SpaceUsage } from './space.js';
import { StatsRecorder, type CacheConditions, type CacheCounters } from './stats.js';
import { fetchWhole } from './whole-file.js';

/** Hashing reads the data file into aligned buffers of this size (O_DIRECT). */
const STAGE_BYTES = 1024 * 1024;
const STAGE_SPARES = 4;
/** Below this bound, files fetched ahead of their reader could push out files fetched ahead of it before. */
const MIN_PREFETCH_BOUND = 256 * 1024 * 1024;

export interface CacheStats extends CacheCounters, CacheConditions, SpaceUsage {
  dir: string;
  maxBytes: number;
  minFreeBytes: number;
  /** The bound in effect: maxBytes, lowered when the disk's free space would drop below minFreeBytes. */
  effectiveMaxBytes: number;
  /** dataBytes + overheadBytes + reservedBytes: what the directory occupies (or is about to). */
  usedBytes: number;
  entries: number;
  completeEntries: number;
  openEntries: number;
  /** The shared tier's counters, when one is configured. */
  tier?: TierStatus;
}

/**
 * What prefetch() did: started; nothing to do (`present`: cached or on its way; `skipped`: not a small file,
 * or the cache too small to prefetch into); or `busy`: no idle fetch capacity now.
 */
export type PrefetchResult = 'started' | 'present' | 'skipped' | 'busy';

export interface CacheEntryInfo {
  id: string;
  identity: string;
  size: number;
  diskBytes: number;
  complete: boolean;
  lastAccess: Date;
  open: boolean;
}

/** What a prune did, and what kept it from going lower. */
export interface PruneResult {
  evicted: number;
  freedBytes: number;
  /** Bytes counted against the bound (the bound's own measure) before and after. */
  beforeBytes: number;
  usedBytes: number;
  /** What no eviction frees: the index (its WAL counted at its cap), directories, staging, fills in flight. */
  overheadBytes: number;
  /** Entries a reader holds open, which cannot go now. */
  inUseEntries: number;
  inUseBytes: number;
}

export interface CacheEvents {
  /** A condition the operator should know about (disk full, bound unmet, verification failure, I/O error). */
  condition: [CacheError];
}

/** What the cache may be given beyond its options, by the daemon. */
export interface CacheServices {
  /**
   * syncfs(2) of the filesystem holding `fd`, off the JS thread (0 or -errno): the group commit makes a
   * flush's files durable with one call instead of an fdatasync each (src/fuse/native.ts has it).
   */
  syncFilesystem?: (fd: number) => Promise<number>;
  /** A shared tier between this cache and the origin (config.yaml's cache.shared; the daemon opens its store). */
  sharedTier?: SharedTierOptions;
}

/**
 * Opens (creating if needed) the cache directory: lock, index, reconciliation. The daemon passes its shared
 * memory (buffer pools) and services; tools and tests may leave them out (a fresh memory, an fdatasync per file).
 */
export async function openCache(input: CacheOptionsInput = {}, memory = new DaemonMemory(), services: CacheServices = {}): Promise<Cache> {
  const opts = resolveCacheOptions(input);
  const dir = path.resolve(opts.dir);
  createCacheDir(dir);
  const lock = DirLock.acquire(dir);
  let db: IndexDb | undefined;
  try {
    db = new IndexDb(path.join(dir, INDEX_FILE));
    const report = reconcile(dir, db);
    const cache = new Cache({ ...opts, dir }, db, lock, report, memory, services);
    await cache.applyBound();
    return cache;
  } catch (err) {
    db?.close();
    lock.release();
    throw err;
  }
}

export class Cache extends EventEmitter<CacheEvents> implements HandleHost {
  private readonly recorder = new StatsRecorder((err) => this.emit('condition', err));
  private readonly space: SpaceBudget;
  private readonly commit: GroupCommit;
  private readonly chunks: RetainedChunks;
  /** What every open entry works with. */
  private readonly ctx: EntryContext;
  /** All entries, least recently used first (Map order; a touch moves an entry to the end). */
  private readonly records = new Map<string, EntryRecord>();
  private readonly opening = new Map<string, Promise<OpenEntry>>();
  /** Entries with their data file open, by entry id. */
  private readonly openEntries = new Map<string, OpenEntry>();
  private readonly closingFiles = new Set<Promise<void>>();
  private closed = false;
  /** The cache directory, open for syncfs (when the daemon provides it). */
  private readonly dirFd: number | undefined;
  /** Bucket objects' POSIX attributes learnt by HEAD, kept across restarts (src/fs/bucket passes them here). */
  readonly attributes: AttributeIndex;
  /** The shared tier, when configured: fills ask it before the origin. */
  readonly tier: SharedTier | undefined;

  /** @internal use openCache() */
  constructor(
    readonly opts: CacheOptions,
    private readonly db: IndexDb,
    private readonly lock: DirLock,
    /** What startup reconciliation found (orphans removed, entries dropped). */
    readonly startup: ReconcileReport,
    memory: DaemonMemory,
    services: CacheServices = {},
  ) {
    super();
    const syncFilesystem = services.syncFilesystem;
    // A descriptor of the cache directory names its filesystem for syncfs (closed with the cache).
    this.dirFd = syncFilesystem ? openSync(opts.dir, constants.O_RDONLY | constants.O_DIRECTORY) : undefined;
    const dirFd = this.dirFd;
    this.attributes = db.attributeIndex((err) =>
      this.emit('condition', new CacheError('Io', `cache index: object attributes not saved: ${(err as Error).message}`, { cause: err })),
    );
    this.space = new SpaceBudget(
      opts,
      {
        lru: () => this.records.values(),
        evictable: (rec) => this.evictable(rec),
        remove: (victims) => this.remove(victims),
      },
      diskProbe(opts.dir),
      this.recorder,
    );
    this.commit = new GroupCommit(
      db,
      this.recorder,
      this.space,
      {
        isListed: (rec) => this.records.get(rec.id) === rec,
        // Entries no handle holds any more close their files once their last writes are recorded.
        flushed: () => {
          for (const entry of [...this.openEntries.values()]) if (entry.rec.pins === 0) this.releaseIfIdle(entry.rec);
        },
      },
      opts.flushIntervalMs,
      syncFilesystem && dirFd !== undefined
        ? async () => {
            const rc = await syncFilesystem(dirFd);
            if (rc < 0) throw Object.assign(new Error(`syncfs failed: errno ${-rc}`), { errno: -rc });
          }
        : undefined,
    );
    this.chunks = new RetainedChunks(memory.budget('cache.readAhead', opts.readAheadMemoryBytes), memory.chunkBuffers, memory.target);
    this.tier = services.sharedTier
      ? new SharedTier(
          services.sharedTier,
          (err) => this.recorder.report(err),
          // An upload reads the data file only while its entry is the complete one listed (not evicted, not refilled).
          (rec) => this.records.get(rec.id) === rec && rec.complete && !this.closed,
        )
      : undefined;
    this.ctx = {
      tier: this.tier,
      opts,
      // Prefetch also waits while the memory target says no: readers then fetch what they need, when they need it.
      // Bytes in flight are counted as the buffers they land in (power-of-two sizes): what they hold in memory.
      queue: new FetchQueue(
        { maxBytes: opts.maxFetchBytes, maxCount: opts.maxConcurrentFetches, bufferBytes: (n) => memory.chunkBuffers.sizeFor(n) },
        (bytes) => memory.target.allows(bytes),
      ),
      // Hash verifications take one each, a few at a time (the spares kept are as many).
      stage: new AlignedPool(STAGE_BYTES, STAGE_SPARES),
      verifySlots: memory.budget('cache.verify', STAGE_SPARES),
      chunks: this.chunks,
      space: this.space,
      commit: this.commit,
      stats: this.recorder,
      dropCorrupt: (entry, err) => this.dropCorrupt(entry, err),
    };
    for (const { row, runs, diskBytes } of startup.entries) {
      const rec: EntryRecord = {
        id: row.id,
        identity: row.identity,
        sha256: row.identity.startsWith('content:') ? row.identity.slice('content:'.length) : undefined,
        size: row.size,
        blockSize: row.blockSize,
        runs,
        diskBytes,
        complete: row.complete,
        lastAccess: row.lastAccess,
        pins: 0,
      };
      this.records.set(rec.id, rec);
      this.space.adopt(rec);
    }
  }

  get dir(): string {
    return this.opts.dir;
  }

  /** Reserved for bucket write-through (issue 6): files being written live here and count toward the bound. */
  get stagingDir(): string {
    return path.join(this.opts.dir, STAGING_DIR);
  }

  /**
   * Opens an identity for reading. Small files (≤ smallFileBytes) are fetched whole before this resolves;
   * larger ones are fetched block by block as they are read. The handle pins the entry until close().
   */
  open(identity: CacheIdentity, source: CacheSource): Promise<CacheHandle> {
    return this.openFor('demand', identity, source);
  }

  /**
   * Fetches a small file whole ahead of its reader (sibling prefetch: its directory is being read in order),
   * at prefetch priority and only with idle fetch capacity, so a reader never waits behind it. The bytes are
   * reserved within the bound like any fill; a cache too small to hold many windows of them (under
   * MIN_PREFETCH_BOUND) does not prefetch. A failed prefetch caches nothing: the reader's open fetches again.
   */
  prefetch(identity: CacheIdentity, source: CacheSource): PrefetchResult {
    if (this.closed || source.size === 0 || source.size > this.opts.smallFileBytes) return 'skipped';
    if (this.space.effectiveMaxBytes() < MIN_PREFETCH_BOUND) return 'skipped';
    const id = entryId(identity);
    if (this.records.has(id) || this.opening.has(id)) return 'present';
    if (!this.ctx.queue.hasRoom(source.size)) return 'busy';
    // openFor runs synchronously up to taking its place in the fetch queue: the room checked is the room used.
    this.openFor('prefetch', identity, source).then(
      (h) => h.close(),
      () => undefined,
    );
    return 'started';
  }

  private async openFor(priority: Priority, identity: CacheIdentity, source: CacheSource): Promise<CacheHandle> {
    if (this.closed) throw new CacheError('Closed', `the cache at ${this.dir} is closed`);
    if (!Number.isSafeInteger(source.size) || source.size < 0) {
      throw new CacheError('InvalidIdentity', `bad size ${source.size} for ${source.store.location}/${source.key}`);
    }
    const canonical = canonicalIdentity(identity);
    const id = entryId(identity);
    const effective: CacheSource = {
      ...source,
      versionId: source.versionId ?? (identity.kind === 'object' ? identity.versionId : undefined),
      // Pin an unversioned object to its ETag so that an overwrite fails loudly instead of mixing versions.
      ifMatch:
        source.ifMatch ?? (identity.kind === 'object' && !identity.versionId ? identity.etag : undefined),
    };
    let rec = this.records.get(id);
    if (rec && rec.size !== source.size) {
      throw new CacheError(
        'SizeMismatch',
        `${canonical} is cached with size ${rec.size} but was opened with size ${source.size}: the manifest or listing is inconsistent`,
      );
    }
    if (!rec) {
      rec = {
        id,
        identity: canonical,
        sha256: identity.kind === 'content' ? identity.sha256.toLowerCase() : undefined,
        size: source.size,
        blockSize: this.opts.blockSize,
        runs: [],
        diskBytes: 0,
        complete: false,
        lastAccess: Date.now(),
        pins: 0,
      };
      this.records.set(id, rec);
    }
    rec.pins++;
    this.touch(rec);
    // An open of a complete entry is a hit: its reads then go through the kernel fast path (passthrough or
    // the C read path) and never reach handle.read(), so this is the only place that can count them.
    if (rec.complete) this.recorder.counters.hits++;
    try {
      const entry = await this.openEntry(rec, effective, priority);
      // An ETag that may be out of date is confirmed by a recent GET (this open's, a prefetch's), else by a
      // HEAD. (A VersionId never names other bytes.)
      const since = source.confirmSince;
      if (since !== undefined && effective.ifMatch !== undefined && !effective.versionId && entry.confirmedAt < since) {
        await confirmUnchanged(effective);
      }
      return new CacheHandle(this, entry);
    } catch (err) {
      rec.pins--;
      this.releaseIfIdle(rec);
      throw err;
    }
  }

  private openEntry(rec: EntryRecord, source: CacheSource, priority: Priority): Promise<OpenEntry> {
    const open = this.openEntries.get(rec.id);
    if (open) return Promise.resolve(open);
    let p = this.opening.get(rec.id);
    if (!p) {
      p = this.createEntry(rec, source, priority).then((entry) => {
        this.openEntries.set(rec.id, entry);
        return entry;
      });
      const forget = (): void => void this.opening.delete(rec.id);
      p.then(forget, forget);
      this.opening.set(rec.id, p);
    }
    return p;
  }

  private async createEntry(rec: EntryRecord, source: CacheSource, priority: Priority): Promise<OpenEntry> {
    const file = dataPath(this.dir, rec.id);
    const fresh = rec.runs.length === 0 && !rec.complete;
    if (fresh && rec.diskBytes > 0) this.space.dropData(rec);

    if (fresh && rec.size <= this.opts.smallFileBytes) return fetchWhole(this.ctx, rec, source, file, priority);

    let fh;
    try {
      fh = await open(file, fresh ? 'w+' : 'r+', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, `cannot open cache file ${file}`);
      // The file vanished under us (removed by hand): start over.
      this.space.dropData(rec);
      fh = await open(file, 'w+', 0o600);
    }
    const map = BlockMap.fromRuns(Math.ceil(rec.size / rec.blockSize), rec.runs);
    const entry = new OpenEntry(this.ctx, rec, source, fh, map, file);
    if (!map.complete) entry.direct = await openDirect(file);
    if (map.complete && !rec.complete) entry.onFilled();
    return entry;
  }

  // ---------------------------------------------------------------- registry

  /** @internal Measures the directory, and honours a bound lowered (config, less free disk) since the last run. */
  async applyBound(): Promise<void> {
    await this.space.refresh(true);
    if (this.space.usedBytes() > this.space.effectiveMaxBytes()) await this.prune(this.space.effectiveMaxBytes());
  }

  private evictable(rec: EntryRecord): boolean {
    return rec.pins === 0 && !this.openEntries.has(rec.id) && !rec.closing && !this.opening.has(rec.id);
  }

  /** Removes entries: index rows first (one transaction), then files, so a crash in between leaves orphans. */
  private remove(victims: readonly EntryRecord[]): void {
    this.db.commit({ deletes: victims.map((r) => r.id) });
    for (const rec of victims) {
      this.records.delete(rec.id);
      this.commit.dropPending(rec);
      try {
        unlinkSync(dataPath(this.dir, rec.id));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.recorder.report(ioError(err, 'cannot remove a cache file'));
      }
    }
  }

  /** The entry's data failed verification (wrong hash, or unreadable): drop it from the index and the disk. */
  private dropCorrupt(entry: OpenEntry, err: CacheError): void {
    this.recorder.report(err);
    const rec = entry.rec;
    this.commit.dropPending(rec, entry);
    if (this.records.get(rec.id) === rec) {
      this.records.delete(rec.id);
      this.db.commit({ deletes: [rec.id] });
    }
    try {
      unlinkSync(entry.path);
    } catch {
      // already gone
    }
    this.space.dropData(rec);
    entry.map.clear();
  }

  private touch(rec: EntryRecord): void {
    rec.lastAccess = Date.now();
    this.records.delete(rec.id);
    this.records.set(rec.id, rec);
    this.commit.accessed(rec);
  }

  touchAndCount(handle: CacheHandle, hit: boolean): void {
    if (hit) this.recorder.counters.hits++;
    else this.recorder.counters.misses++;
    const rec = handle.entry.rec;
    if (this.records.get(rec.id) === rec) this.touch(rec);
  }

  unpin(entry: OpenEntry): void {
    entry.rec.pins--;
    this.releaseIfIdle(entry.rec);
  }

  /** Closes an entry's data file once no handle, fill or pending flush needs it. */
  private releaseIfIdle(rec: EntryRecord): void {
    if (rec.pins > 0 || this.opening.has(rec.id)) return;
    const entry = this.openEntries.get(rec.id);
    if (entry) {
      if (this.commit.isDirty(entry) || entry.busy) {
        this.commit.schedule(); // the flush after the last write closes it
        return;
      }
      this.openEntries.delete(rec.id);
      if (!rec.complete) entry.tier?.abandon();
      this.chunks.letGoAll(entry);
      if (!entry.failed) rec.runs = entry.map.runs(true);
      if (entry.fh) {
        // Not evictable until the descriptor is closed: unlinking an open file frees nothing yet.
        rec.closing = (rec.closing ?? 0) + 1;
        const closed: Promise<void> = entry
          .closeFiles()
          .finally(() => {
            rec.closing!--;
            this.closingFiles.delete(closed);
          });
        this.closingFiles.add(closed);
      }
    }
    // Nothing was kept (e.g. served from memory): forget the record rather than list an empty entry.
    if (rec.diskBytes === 0 && rec.runs.length === 0 && !rec.complete && this.records.get(rec.id) === rec) {
      this.records.delete(rec.id);
      this.commit.dropPending(rec);
    }
  }

  /**
   * Records every write so far in the index (tests, prune, close); resolves once the files of entries nothing
   * holds any more are closed too (until then they cannot be evicted).
   */
  async flush(): Promise<void> {
    await this.commit.flush();
    await Promise.allSettled([...this.closingFiles]);
  }

  // ---------------------------------------------------------------- operations

  stats(): CacheStats {
    let complete = 0;
    for (const r of this.records.values()) if (r.complete) complete++;
    return {
      dir: this.dir,
      maxBytes: this.opts.maxBytes,
      minFreeBytes: this.opts.minFreeBytes,
      effectiveMaxBytes: this.space.effectiveMaxBytes(),
      usedBytes: this.space.usedBytes(),
      ...this.space.usage(),
      entries: this.records.size,
      completeEntries: complete,
      openEntries: this.openEntries.size,
      ...this.recorder.counters,
      ...this.recorder.reported(),
      ...(this.tier ? { tier: this.tier.status() } : {}),
    };
  }

  /** Every entry, least recently used first (for `gradient cache stats --entries`, tests, debugging). */
  list(): CacheEntryInfo[] {
    return [...this.records.values()].map((r) => ({
      id: r.id,
      identity: r.identity,
      size: r.size,
      diskBytes: r.diskBytes,
      complete: r.complete,
      lastAccess: new Date(r.lastAccess),
      open: r.pins > 0,
    }));
  }

  /** Lifetime counters (persisted across restarts) including this session's unflushed part. */
  lifetimeCounters(): CacheCounters {
    return this.recorder.lifetime(this.db.counters());
  }

  /** Evicts least-recently-used unpinned entries until the directory uses at most `toBytes`. */
  async prune(toBytes = 0): Promise<PruneResult> {
    await this.flush();
    await this.space.refresh(true);
    const beforeBytes = this.space.usedBytes();
    const result = this.space.evictDownTo(toBytes);
    await this.flush();
    await this.space.refresh(true);
    const inUse = [...this.records.values()].filter((r) => r.diskBytes > 0 && !this.evictable(r));
    const { overheadBytes, reservedBytes } = this.space.usage();
    return {
      ...result,
      beforeBytes,
      usedBytes: this.space.usedBytes(),
      overheadBytes: overheadBytes + reservedBytes,
      inUseEntries: inUse.length,
      inUseBytes: inUse.reduce((n, r) => n + r.diskBytes, 0),
    };
  }

  /** Removes every entry not in use, and leftover temp files. */
  async clear(): Promise<PruneResult> {
    const result = await this.prune(0);
    for (const name of await readdir(path.join(this.dir, 'tmp')).catch(() => [] as string[])) {
      rmSync(path.join(this.dir, 'tmp', name), { recursive: true, force: true });
    }
    return result;
  }

  /** Waits for fills in flight, flushes, closes files and the index, releases the directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.opening.values()]);
    this.closed = true;
    await this.tier?.close();
    this.commit.stop();
    for (let i = 0; i < 100 && [...this.openEntries.values()].some((e) => e.busy); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.flush();
    await Promise.allSettled([...this.openEntries.values()].map((e) => e.closeFiles()));
    await Promise.allSettled([...this.closingFiles]);
    this.openEntries.clear();
    if (this.dirFd !== undefined) closeSync(this.dirFd);
    this.attributes.close();
    this.db.close();
    this.lock.release();
  }
}

/** The data file opened for O_DIRECT writes; undefined where the filesystem does not support it. */
async function openDirect(file: string): Promise<FileHandle | undefined> {
  return open(file, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined);
}
