// One cached identity while it is in use: its sparse data file, which blocks are present, and the fetches in
// flight. Shared by every handle open on the same identity, which is what makes fills single-flight: a block
// is fetched by whoever asks first, later readers await the same promise.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { AlignedPool, CountedBudget } from '../memory/index.js';
import { BlockMap, roundUp } from './blocks.js';
import { writeChunk } from './chunk-writer.js';
import type { EntryRecord } from './entry-record.js';
import { CacheError, isNoSpaceErrno } from './errors.js';
import { fetchInto } from './fetch-into.js';
import type { FetchQueue, Priority } from './fetch-queue.js';
import type { CacheSource } from './identity.js';
import type { SharedTier, TierEntry } from './shared-tier.js';
import type { GroupCommit } from './group-commit.js';
import type { CacheOptions } from './options.js';
import type { Chunk, RetainedChunks } from './retained-chunks.js';
import type { SpaceBudget } from './space.js';
import type { StatsRecorder } from './stats.js';

/** The parts of the cache an open entry works with: one set per cache, shared by its entries. */
export interface EntryContext {
  readonly opts: CacheOptions;
  /** Fetches in flight for the whole cache. */
  readonly queue: FetchQueue;
  /** Aligned buffers that hashing reads the data file into (O_DIRECT). */
  readonly stage: AlignedPool;
  /**
   * Hashes running at once, one stage buffer each: a hundred readers completing files at once would otherwise
   * hold a hundred buffers (and the two cores hash no faster for it).
   */
  readonly verifySlots: CountedBudget;
  /** The page-aligned buffers fetches land in, and the fetched chunks kept for readers. */
  readonly chunks: RetainedChunks;
  /** Disk bytes: reserved before a write, settled once written. */
  readonly space: SpaceBudget;
  /** Written blocks are recorded by the next group commit. */
  readonly commit: GroupCommit;
  readonly stats: StatsRecorder;
  /** The shared tier between this cache and the origin, when configured. */
  readonly tier?: SharedTier;
  /** The entry's data failed verification (wrong hash, or unreadable): drop it from the index and the disk. */
  dropCorrupt(entry: OpenEntry, err: CacheError): void;
}

export class OpenEntry {
  private readonly inflight = new Map<number, Promise<Chunk>>();
  /** The last sequential reader's prefetch window (blocks from `from` on): refilled as fetches end. */
  private window: { from: number; bytes: number } | undefined;
  /**
   * Stored chunks still in memory, by block. Data written with O_DIRECT is not in the page cache, so a
   * sequential reader that arrives after its prefetch completed is served from here instead of the disk.
   */
  readonly retained = new Map<number, Chunk>();
  /** The data file opened with O_DIRECT, where the filesystem supports it (see RangeWriter). */
  direct: FileHandle | undefined;
  /** The filesystem opened the file with O_DIRECT but refused a write: use the page cache. */
  directRefused = false;
  private completion?: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void };
  private verifying?: Promise<void>;
  /** Set once the data failed verification: every further read fails. */
  failed?: CacheError;
  /** When a GET (If-Match) last confirmed the source still holds these bytes (ms; 0: never, this run). */
  confirmedAt = 0;
  /** Written whole in one write (a small file): its allocation needs no measuring. */
  writtenWhole = false;
  readonly blockCount: number;
  private readonly maxRequestBlocks: number;
  /** Where fills come from when a shared tier is configured (tier, else origin), and the upload after. */
  tier: TierEntry | undefined;

  constructor(
    private readonly ctx: EntryContext,
    readonly rec: EntryRecord,
    readonly source: CacheSource,
    /** The data file; undefined when the whole (small) file is held in `memory` because it could not be cached. */
    readonly fh: FileHandle | undefined,
    readonly map: BlockMap,
    readonly path: string,
    /** A small file's bytes when the cache had no room for them: served from memory while open. */
    readonly memory?: Buffer,
  ) {
    this.blockCount = map.count;
    this.maxRequestBlocks = Math.max(1, Math.floor(ctx.opts.maxRequestBytes / rec.blockSize));
    this.tier = ctx.tier?.entry(rec, source);
  }

  get stage(): AlignedPool {
    return this.ctx.stage;
  }

  get busy(): boolean {
    return this.inflight.size > 0 || this.verifying !== undefined;
  }

  /**
   * Reads [offset, end), fetching missing blocks; then starts prefetching `prefetchBytes` past `end`.
   * `transient`: a read that lies in one fetched chunk comes back as a view of the chunk's pooled buffer,
   * which is reused once the current event-loop turn ends (see CacheHandle.read).
   */
  async read(offset: number, end: number, prefetchBytes: number, transient = false): Promise<{ data: Buffer; hit: boolean }> {
    if (this.failed) throw this.failed;
    if (this.memory) {
      this.ctx.stats.counters.bytesUncached += end - offset;
      return { data: Buffer.from(this.memory.subarray(offset, end)), hit: false };
    }
    const bs = this.rec.blockSize;
    const b0 = Math.floor(offset / bs);
    const b1 = Math.ceil(end / bs);
    const pending = new Map<number, Promise<Chunk>>();
    const hit = this.map.allPresent(b0, b1);
    if (!hit) this.ensure(b0, b1, 'demand', pending);
    this.window = prefetchBytes > 0 ? { from: b1, bytes: prefetchBytes } : undefined;
    if (this.window) this.prefetch(b1, prefetchBytes);

    // Each stretch comes from a fetch in flight, a chunk still in memory, or (one pread per run) the file.
    let out: Buffer | undefined;
    let pos = offset;
    while (pos < end) {
      const b = Math.floor(pos / bs);
      const p = pending.get(b);
      const chunk = p ? await p : this.retained.get(b);
      if (chunk) {
        const segEnd = Math.min(end, chunk.end);
        if (!p) this.ctx.stats.counters.bytesFromCache += segEnd - pos;
        // The reader is past this chunk: free its memory for chunks ahead (its buffer is reused after this turn).
        if (segEnd === chunk.end) this.ctx.chunks.letGo(chunk);
        if (transient && !out && end <= chunk.end) {
          out = chunk.buf.subarray(pos - chunk.start, end - chunk.start);
          break;
        }
        out ??= Buffer.allocUnsafe(end - offset);
        chunk.buf.copy(out, pos - offset, pos - chunk.start, segEnd - chunk.start);
        pos = segEnd;
      } else if (!this.map.has(b)) {
        // Neither on disk nor in memory: an uncached chunk let go meanwhile (memory bound). Fetch it again.
        this.ensure(b, b1, 'demand', pending);
      } else {
        let runEnd = b + 1;
        while (runEnd < b1 && !pending.has(runEnd) && !this.retained.has(runEnd) && this.map.has(runEnd)) runEnd++;
        const segEnd = Math.min(end, runEnd * bs);
        out ??= Buffer.allocUnsafe(end - offset);
        await this.readFile(out, pos - offset, segEnd - pos, pos);
        this.ctx.stats.counters.bytesFromCache += segEnd - pos;
        pos = segEnd;
      }
    }
    if (this.failed) throw this.failed;
    return { data: out!, hit };
  }

  /** Resolves once every byte is present and verified; rejects if verification fails. */
  whenComplete(): Promise<void> {
    if (this.rec.complete) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    if (!this.completion) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => undefined); // nobody may be listening
      this.completion = { promise, resolve, reject };
    }
    return this.completion.promise;
  }

  /** Fetches every missing block (used for whole-file reads and tests). */
  async fetchAll(): Promise<void> {
    const pending = new Map<number, Promise<Chunk>>();
    this.ensure(0, this.blockCount, 'demand', pending);
    await Promise.all(pending.values());
  }

  private async readFile(out: Buffer, at: number, length: number, position: number): Promise<void> {
    if (!this.fh) throw new CacheError('Io', `cache entry ${this.path} has no data file`);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(out, at + done, length - done, position + done);
      if (bytesRead === 0) {
        throw new CacheError('Io', `cache file ${this.path} is shorter than its recorded blocks (modified outside the cache?)`);
      }
      done += bytesRead;
    }
  }

  /** Starts fetches for the missing blocks of [b0, b1); every non-present block's promise goes into `pending`. */
  private ensure(b0: number, b1: number, priority: Priority, pending: Map<number, Promise<Chunk>>): void {
    let runStart = -1;
    for (let b = b0; b <= b1; b++) {
      const present = b < b1 && this.map.has(b);
      const flying = b < b1 ? this.inflight.get(b) : undefined;
      if (flying) pending.set(b, flying);
      const needs = b < b1 && !present && !flying && !this.retained.has(b);
      if (runStart >= 0 && (!needs || b - runStart >= this.maxRequestBlocks)) {
        const p = this.fetch(runStart, b, priority);
        for (let i = runStart; i < b; i++) pending.set(i, p);
        runStart = -1;
      }
      if (needs && runStart < 0) runStart = b;
    }
  }

  /**
   * Prefetches missing blocks in [from, from + bytes) with idle fetch capacity. A run of missing blocks that
   * reaches the window's edge is only fetched in full-size requests (it will grow as the reader advances);
   * topping up block by block would turn prefetch into a stream of small GETs.
   */
  private prefetch(from: number, bytes: number): void {
    const windowBlocks = Math.ceil(bytes / this.rec.blockSize);
    const to = Math.min(this.blockCount, from + windowBlocks);
    const full = Math.max(1, Math.min(this.maxRequestBlocks, Math.floor(windowBlocks / 2)));
    const bs = this.rec.blockSize;
    let runStart = -1;
    for (let b = from; b <= to; b++) {
      const needs = b < to && !this.map.has(b) && !this.inflight.has(b) && !this.retained.has(b);
      if (runStart >= 0 && (!needs || b - runStart >= full)) {
        // Short runs are fine when bounded by data we have (a hole) or by EOF, not by the window's edge.
        if (b - runStart >= full || b < to || to === this.blockCount) {
          if (!this.ctx.queue.hasRoom(Math.min(this.rec.size, b * bs) - runStart * bs)) return;
          // A failed prefetch is not an error: a reader that needs the block fetches it again and sees the error.
          this.fetch(runStart, b, 'prefetch').catch(() => undefined);
        }
        runStart = -1;
      }
      if (needs && runStart < 0) runStart = b;
    }
  }

  /**
   * One ranged GET for blocks [b0, b1), read straight into a pooled page-aligned buffer and written to the
   * data file from there (if there is room); returned either way. The blocks count as present only once
   * every byte of the range is written.
   */
  private fetch(b0: number, b1: number, priority: Priority): Promise<Chunk> {
    const bs = this.rec.blockSize;
    const start = b0 * bs;
    const end = Math.min(this.rec.size, b1 * bs);
    const p = this.ctx.queue.run(priority, end - start, () =>
      this.fill({ start, end, b0, b1, buf: this.ctx.chunks.takeBuffer(end - start) }),
    );
    for (let b = b0; b < b1; b++) this.inflight.set(b, p);
    const clear = (): void => {
      for (let b = b0; b < b1; b++) if (this.inflight.get(b) === p) this.inflight.delete(b);
      // A slot is free: top the reader's window up now. A reader blocked on the fetch at its frontier
      // sends no read that would, and the GETs in flight would dwindle to that one. (Not once every handle
      // has closed: nobody would read it.)
      if (this.window && !this.failed && this.rec.pins > 0) this.prefetch(this.window.from, this.window.bytes);
    };
    p.then(clear, clear);
    return p;
  }

  private async fill(chunk: Chunk): Promise<Chunk> {
    const length = chunk.end - chunk.start;
    try {
      const range = { start: chunk.start, end: chunk.end };
      await (this.tier ? this.tier.fetch(range, chunk.buf) : fetchInto(this.source, range, chunk.buf));
    } catch (err) {
      this.ctx.chunks.giveBuffer(chunk.buf);
      throw err;
    }
    this.ctx.stats.counters.bytesFetched += length;
    this.confirmedAt = Date.now();
    if (!(await this.keep(chunk))) this.ctx.stats.counters.bytesUncached += length;
    if (this.failed) {
      this.ctx.chunks.giveBuffer(chunk.buf); // its reader still copies from it in this turn, then fails
      return chunk;
    }
    // In memory for its reader, written or not: else a prefetch that could not be cached was thrown away and
    // fetched again on demand (a bounded-out sequential read fetched its object 16 times over).
    this.ctx.chunks.retain(this, chunk);
    if (this.map.complete) this.onFilled();
    return chunk;
  }

  /** Writes a fetched chunk into the data file, if there is room for it; false when it stays uncached. */
  private async keep(chunk: Chunk): Promise<boolean> {
    const reserved = roundUp(chunk.end - chunk.start);
    if (this.failed || !this.fh || !this.ctx.space.reserve(reserved)) return false;
    try {
      await writeChunk(this, this.fh, chunk);
    } catch (err) {
      this.ctx.space.release(reserved);
      this.reportWriteError(err);
      return false;
    }
    if (this.failed) {
      this.ctx.space.release(reserved);
      return false;
    }
    this.map.markWritten(chunk.b0, chunk.b1);
    this.ctx.space.settle(this.rec, reserved);
    this.ctx.commit.markDirty(this);
    return true;
  }

  private reportWriteError(err: unknown): void {
    this.ctx.stats.report(
      isNoSpaceErrno(err)
        ? new CacheError('NoSpace', `the disk under the cache (${this.path}) is full: reading uncached`, { cause: err })
        : new CacheError('Io', `cannot write cache file ${this.path}: ${(err as Error).message}`, { cause: err }),
    );
  }

  /** Closes the data file descriptors. */
  async closeFiles(): Promise<void> {
    const direct = this.direct;
    this.direct = undefined;
    await Promise.allSettled([this.fh?.close(), direct?.close()]);
  }

  /** Every block is present: verify content identities, then call the entry complete. */
  onFilled(): void {
    if (this.rec.complete || this.verifying || this.failed) return;
    if (!this.rec.sha256) {
      this.markComplete();
      return;
    }
    const expected = this.rec.sha256;
    this.verifying = this.hashFile()
      .then((actual) => {
        if (actual === expected) this.markComplete();
        else {
          // The tier's CRCs matched but the file does not: its object goes up again from the origin's bytes.
          if (this.tier?.usedTier) this.tier.rejected();
          this.fail(
            new CacheError(
              'VerifyFailed',
              `${this.source.store.location}/${this.source.key} hashes to ${actual}, its manifest says ${expected}: not cached`,
            ),
          );
        }
      })
      .catch((err: unknown) => this.fail(new CacheError('Io', `cannot verify ${this.path}: ${(err as Error).message}`, { cause: err })))
      .finally(() => {
        this.verifying = undefined;
      });
  }

  /** Hashes the data file, with O_DIRECT where the data went that way (it is on disk, not in the page cache). */
  private async hashFile(): Promise<string> {
    const direct = this.directRefused ? undefined : this.direct;
    if (direct) {
      try {
        return await this.hashWith(direct);
      } catch {
        // fall back to the page cache (e.g. the filesystem refuses direct reads)
      }
    }
    return this.hashWith(undefined);
  }

  private async hashWith(direct: FileHandle | undefined): Promise<string> {
    const hash = createHash('sha256');
    await this.ctx.verifySlots.acquire();
    const buf = this.ctx.stage.take();
    try {
      for (let pos = 0; pos < this.rec.size; ) {
        const n = Math.min(buf.length, this.rec.size - pos);
        if (direct) {
          // Whole pages: the read stops at EOF by itself.
          const want = roundUp(n);
          for (let got = 0; got < n; ) {
            const { bytesRead } = await direct.read(buf, got, want - got, pos + got);
            if (bytesRead === 0) throw new CacheError('Io', `cache file ${this.path} is shorter than its blocks`);
            got += bytesRead;
          }
        } else {
          await this.readFile(buf, 0, n, pos);
        }
        hash.update(buf.subarray(0, n));
        pos += n;
      }
    } finally {
      this.ctx.stage.give(buf);
      this.ctx.verifySlots.release();
    }
    return hash.digest('hex');
  }

  private markComplete(): void {
    this.rec.complete = true;
    this.ctx.commit.markDirty(this);
    this.completion?.resolve();
    this.tier?.complete(this.path);
  }

  fail(err: CacheError): void {
    if (this.failed) return;
    this.failed = err;
    this.ctx.chunks.letGoAll(this);
    this.ctx.dropCorrupt(this, err);
    this.completion?.reject(err);
  }
}

