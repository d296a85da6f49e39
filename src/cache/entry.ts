// One cached identity while it is in use: its sparse data file, which blocks are present, and the fetches in
// flight. Shared by every handle open on the same identity, which is what makes fills single-flight: a block
// is fetched by whoever asks first, later readers await the same promise.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { isStorageError } from '../storage/errors.js';
import { alignDown, DIRECT_ALIGN, type AlignedPool } from '../memory/index.js';
import { BlockMap, roundUp } from './blocks.js';
import type { EntryRecord } from './entry-record.js';
import { CacheError, isNoSpaceErrno } from './errors.js';
import type { FetchQueue, Priority } from './fetch-queue.js';
import type { CacheSource } from './identity.js';
import type { GroupCommit } from './group-commit.js';
import type { CacheOptions } from './options.js';
import type { Chunk, RetainedChunks } from './retained-chunks.js';
import type { SpaceBudget } from './space.js';
import type { StatsRecorder } from './stats.js';

/** The parts of the cache an open entry works with: one set per cache, shared by its entries. */
export interface EntryContext {
  readonly opts: CacheOptions;
  /** Ranged GETs in flight for the whole cache. */
  readonly queue: FetchQueue;
  /** Aligned buffers that small fetches pass through on their way to the data file (O_DIRECT), and hashing reads. */
  readonly stage: AlignedPool;
  /** Buffers that large fetches land in, and the fetched chunks kept for readers. */
  readonly chunks: RetainedChunks;
  /** Disk bytes: reserved before a write, settled once written. */
  readonly space: SpaceBudget;
  /** Written blocks are recorded by the next group commit. */
  readonly commit: GroupCommit;
  readonly stats: StatsRecorder;
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
  readonly blockCount: number;
  private readonly maxRequestBlocks: number;

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
  }

  get stage(): AlignedPool {
    return this.ctx.stage;
  }

  get busy(): boolean {
    return this.inflight.size > 0 || this.verifying !== undefined;
  }

  /** Reads [offset, end), fetching missing blocks; then starts prefetching `prefetchBytes` past `end`. */
  async read(offset: number, end: number, prefetchBytes: number): Promise<{ data: Buffer; hit: boolean }> {
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
        // The reader is past this chunk: free its memory for chunks ahead.
        if (segEnd === chunk.end) this.ctx.chunks.letGo(chunk);
        // The whole read inside an unpooled chunk: a view, not a copy (pooled buffers are reused).
        if (!out && !chunk.pooled && end <= chunk.end) {
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
   * Prefetches missing blocks in [from, from + bytes) with the idle fetch slots. A run of missing blocks that
   * reaches the window's edge is only fetched in full-size requests (it will grow as the reader advances);
   * topping up block by block would turn prefetch into a stream of small GETs.
   */
  private prefetch(from: number, bytes: number): void {
    const windowBlocks = Math.ceil(bytes / this.rec.blockSize);
    const to = Math.min(this.blockCount, from + windowBlocks);
    const full = Math.max(1, Math.min(this.maxRequestBlocks, Math.floor(windowBlocks / 2)));
    let slots = this.ctx.queue.idle;
    let runStart = -1;
    for (let b = from; b <= to && slots > 0; b++) {
      const needs = b < to && !this.map.has(b) && !this.inflight.has(b) && !this.retained.has(b);
      if (runStart >= 0 && (!needs || b - runStart >= full)) {
        // Short runs are fine when bounded by data we have (a hole) or by EOF, not by the window's edge.
        if (b - runStart >= full || b < to || to === this.blockCount) {
          // A failed prefetch is not an error: a reader that needs the block fetches it again and sees the error.
          this.fetch(runStart, b, 'prefetch').catch(() => undefined);
          slots--;
        }
        runStart = -1;
      }
      if (needs && runStart < 0) runStart = b;
    }
  }

  /**
   * One ranged GET for blocks [b0, b1): streamed into the data file while it arrives (if there is room),
   * returned either way. The blocks count as present only once every byte of the range is written.
   */
  private fetch(b0: number, b1: number, priority: Priority): Promise<Chunk> {
    const bs = this.rec.blockSize;
    const start = b0 * bs;
    const end = Math.min(this.rec.size, b1 * bs);
    const p = this.ctx.queue.run(priority, async (): Promise<Chunk> => {
      const { store, key, ifMatch, versionId } = this.source;
      const length = end - start;
      const pooled = length > this.ctx.stage.slotBytes;
      const chunk: Chunk = { start, end, b0, b1, buf: pooled ? this.ctx.chunks.takeBuffer(length) : Buffer.allocUnsafeSlow(length), pooled };
      const reserved = roundUp(length);
      let writer: RangeWriter | undefined;
      let got = 0;
      try {
        const body = await store.stream(key, { range: { start, end }, ifMatch, versionId });
        // Reserve once the server answers, not while waiting for it.
        if (!this.failed && this.fh && this.ctx.space.reserve(reserved)) writer = new RangeWriter(this, chunk);
        try {
          for await (const piece of body as AsyncIterable<Buffer>) {
            if (got + piece.length > length) {
              got += piece.length;
              break;
            }
            got += piece.copy(chunk.buf, got);
            if (writer) await writer.progress(got);
          }
        } catch (err) {
          throw isStorageError(err) || err instanceof CacheError
            ? err
            : new CacheError('Io', `${store.location}/${key}: reading bytes ${start}-${end}: ${(err as Error).message}`, { cause: err });
        } finally {
          (body as Readable).destroy();
        }
        if (got !== end - start) {
          throw new CacheError(
            'SizeMismatch',
            `${store.location}/${key}: asked for bytes ${start}-${end}, got ${got} bytes (the object is not the size the cache was told)`,
          );
        }
        await writer?.finish();
      } catch (err) {
        if (writer) this.ctx.space.release(reserved);
        if (pooled) this.ctx.chunks.giveBuffer(chunk.buf);
        throw err;
      }
      this.ctx.stats.counters.bytesFetched += got;
      if (!writer || writer.error || this.failed) {
        if (writer) this.ctx.space.release(reserved);
        if (writer?.error) this.reportWriteError(writer.error);
        this.ctx.stats.counters.bytesUncached += got;
        // Not on disk, but kept in memory for its reader like any fetched chunk: else a prefetch that could
        // not be cached was thrown away and fetched again on demand (a bounded-out sequential read fetched
        // its object 16 times over).
        if (!this.failed) this.ctx.chunks.retain(this, chunk);
        else if (pooled) this.ctx.chunks.giveBuffer(chunk.buf);
        return chunk;
      }
      this.map.markWritten(b0, b1);
      this.ctx.space.settle(this.rec, reserved);
      this.ctx.commit.markDirty(this);
      this.ctx.chunks.retain(this, chunk);
      if (this.map.complete) this.onFilled();
      return chunk;
    });
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
    }
    return hash.digest('hex');
  }

  private markComplete(): void {
    this.rec.complete = true;
    this.ctx.commit.markDirty(this);
    this.completion?.resolve();
  }

  fail(err: CacheError): void {
    if (this.failed) return;
    this.failed = err;
    this.ctx.chunks.letGoAll(this);
    this.ctx.dropCorrupt(this, err);
    this.completion?.reject(err);
  }
}

/** Bytes written to the data file at a time while a large fetch streams in. */
const WRITE_STEP = 1024 * 1024;

/**
 * Writes one fetched chunk into the data file as it streams in, in whole pages with O_DIRECT: buffered writes
 * cost more CPU than the download itself (every page-cache page is a fresh page to allocate, fill and later
 * write back). A pooled chunk's buffer is page-aligned and written from directly, a step at a time; a small
 * chunk goes through an aligned scratch buffer at the end. The unaligned tail of the file, and filesystems
 * without O_DIRECT, go through the ordinary descriptor. Durability is unchanged: the group commit's fdatasync
 * still comes before the blocks are recorded.
 */
class RangeWriter {
  /** Bytes of the chunk already in the file. */
  private written = 0;
  /** The first write error: further bytes are not written, the range is served uncached. */
  error: unknown;

  constructor(
    private readonly entry: OpenEntry,
    private readonly chunk: Chunk,
  ) {}

  /** The chunk's buffer now holds `filled` bytes. */
  async progress(filled: number): Promise<void> {
    if (!this.chunk.pooled) return;
    while (!this.error && filled - this.written >= WRITE_STEP && this.direct()) {
      await this.writeDirect(this.chunk.buf, this.written, WRITE_STEP);
    }
  }

  /** Writes whatever is left (the whole chunk holds its bytes). */
  async finish(): Promise<void> {
    const length = this.chunk.end - this.chunk.start;
    let stage: Buffer | undefined;
    try {
      let src = this.chunk.buf;
      if (!this.chunk.pooled && this.direct() && length >= DIRECT_ALIGN) {
        stage = this.entry.stage.take(); // a small chunk fits: larger ones are pooled
        this.chunk.buf.copy(stage, 0, 0, length);
        src = stage;
      }
      const head = alignDown(length);
      if (!this.error && head > this.written && (this.chunk.pooled || stage)) await this.writeDirect(src, this.written, head - this.written);
      if (!this.error && length > this.written) {
        await writeAll(this.entry.fh!, src, this.written, length - this.written, this.chunk.start + this.written);
        this.written = length;
      }
    } catch (err) {
      this.error = err;
    } finally {
      if (stage) this.entry.stage.give(stage);
    }
  }

  private direct(): FileHandle | undefined {
    return this.entry.directRefused ? undefined : this.entry.direct;
  }

  private async writeDirect(src: Buffer, at: number, length: number): Promise<void> {
    const direct = this.direct();
    if (!direct) return;
    try {
      await writeAll(direct, src, at, length, this.chunk.start + at);
      this.written = at + length;
    } catch (err) {
      // Some filesystems open with O_DIRECT but refuse the write: use the page cache from now on.
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') this.entry.directRefused = true;
      else this.error = err;
    }
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
    done += bytesWritten;
  }
}
