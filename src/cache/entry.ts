// One cached identity while it is in use: its sparse data file, which blocks are present, and the fetches in
// flight. Shared by every handle open on the same identity, which is what makes fills single-flight: a block
// is fetched by whoever asks first, later readers await the same promise.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { isStorageError } from '../storage/errors.js';
import { alignDown, type AlignedPool } from './aligned.js';
import { BlockMap, roundUp, type BlockRun } from './blocks.js';
import { CacheError, isNoSpaceErrno } from './errors.js';
import type { FetchQueue, Priority } from './fetch-queue.js';
import type { CacheSource } from './identity.js';
import type { CacheOptions } from './options.js';

/** What the cache knows about an entry, open or not. */
export interface EntryRecord {
  id: string;
  /** Canonical identity string. */
  identity: string;
  /** Set for team-dataset files: the whole file must hash to it before it is called complete. */
  sha256?: string;
  size: number;
  blockSize: number;
  /** Durable block runs, authoritative while the entry is not open (then `open.map` is). */
  runs: BlockRun[];
  /** Bytes the data file occupies on disk (written blocks, in whole 4 KiB filesystem blocks). */
  diskBytes: number;
  /** Every byte present and, for content identities, verified against the hash. */
  complete: boolean;
  lastAccess: number;
  /** lastAccess changed since the last flush. */
  touched: boolean;
  /** Open handles: a pinned entry is never evicted. */
  pins: number;
  open?: OpenEntry;
  /** Data-file descriptors still being closed (the entry is not evictable meanwhile). */
  closing?: number;
}

/** The parts of the cache an entry calls back into. */
export interface EntryHost {
  readonly opts: CacheOptions;
  readonly queue: FetchQueue;
  readonly counters: { bytesFetched: number; bytesFromCache: number; bytesUncached: number };
  /** Aligned buffers that fetched bytes pass through on their way to the data file (O_DIRECT). */
  readonly pool: AlignedPool;
  /** Reserves disk bytes, evicting unpinned entries; false when the bound cannot be met (reported). */
  reserve(bytes: number): boolean;
  release(bytes: number): void;
  /** Reserved bytes now belong to the entry's data file. */
  settle(rec: EntryRecord, bytes: number): void;
  report(err: CacheError): void;
  markDirty(entry: OpenEntry): void;
  /** The entry's data failed verification: drop it from disk and index. */
  discard(entry: OpenEntry, err: CacheError): void;
  /** Keeps a stored chunk in memory for readers that have not reached it yet (cache-wide byte budget). */
  retain(entry: OpenEntry, chunk: Chunk): void;
  /** Lets a retained chunk go (its reader passed it, or the entry closed). */
  forget(chunk: Chunk): void;
}

/** The bytes of one ranged GET, as they came off the socket (no concatenation). */
export interface Chunk {
  /** File offsets [start, end) and blocks [b0, b1) it covers. */
  start: number;
  end: number;
  b0: number;
  b1: number;
  pieces: Buffer[];
}


export class OpenEntry {
  private readonly inflight = new Map<number, Promise<Chunk>>();
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
    private readonly host: EntryHost,
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
    this.maxRequestBlocks = Math.max(1, Math.floor(host.opts.maxRequestBytes / rec.blockSize));
  }

  get pool(): AlignedPool {
    return this.host.pool;
  }

  get busy(): boolean {
    return this.inflight.size > 0 || this.verifying !== undefined;
  }

  /** Reads [offset, end), fetching missing blocks; then starts prefetching `prefetchBytes` past `end`. */
  async read(offset: number, end: number, prefetchBytes: number): Promise<{ data: Buffer; hit: boolean }> {
    if (this.failed) throw this.failed;
    if (this.memory) {
      this.host.counters.bytesUncached += end - offset;
      return { data: Buffer.from(this.memory.subarray(offset, end)), hit: false };
    }
    const bs = this.rec.blockSize;
    const b0 = Math.floor(offset / bs);
    const b1 = Math.ceil(end / bs);
    const pending = new Map<number, Promise<Chunk>>();
    const hit = this.map.allPresent(b0, b1);
    if (!hit) this.ensure(b0, b1, 'demand', pending);
    if (prefetchBytes > 0) this.prefetch(b1, prefetchBytes);

    // Each stretch comes from a fetch in flight, a chunk still in memory, or (one pread per run) the file.
    let out: Buffer | undefined;
    let pos = offset;
    while (pos < end) {
      const b = Math.floor(pos / bs);
      const p = pending.get(b);
      const chunk = p ? await p : this.retained.get(b);
      if (chunk) {
        const segEnd = Math.min(end, chunk.end);
        if (!p) this.host.counters.bytesFromCache += segEnd - pos;
        // The reader is past this chunk: free its memory for chunks ahead.
        if (segEnd === chunk.end) this.host.forget(chunk);
        // The whole read inside one piece: a view, not a copy.
        const view = out ? undefined : pieceView(chunk, pos, end);
        if (view) {
          out = view;
          break;
        }
        out ??= Buffer.allocUnsafe(end - offset);
        copyOut(chunk, pos, segEnd, out, pos - offset);
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
        this.host.counters.bytesFromCache += segEnd - pos;
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
    let slots = this.host.queue.idle;
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
    const p = this.host.queue.run(priority, async (): Promise<Chunk> => {
      const { store, key, ifMatch, versionId } = this.source;
      const chunk: Chunk = { start, end, b0, b1, pieces: [] };
      const reserved = roundUp(end - start);
      let writer: RangeWriter | undefined;
      let got = 0;
      try {
        const body = await store.stream(key, { range: { start, end }, ifMatch, versionId });
        // Reserve once the server answers, not while waiting for it.
        if (!this.failed && this.fh && this.host.reserve(reserved)) writer = new RangeWriter(this, start);
        try {
          for await (const piece of body as AsyncIterable<Buffer>) {
            got += piece.length;
            if (got > end - start) break;
            chunk.pieces.push(piece);
            if (writer) await writer.add(piece);
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
        writer?.abandon();
        if (writer) this.host.release(reserved);
        throw err;
      }
      this.host.counters.bytesFetched += got;
      if (!writer || writer.error || this.failed) {
        if (writer) this.host.release(reserved);
        if (writer?.error) this.reportWriteError(writer.error);
        this.host.counters.bytesUncached += got;
        // Not on disk, but kept in memory for its reader like any fetched chunk: else a prefetch that could
        // not be cached was thrown away and fetched again on demand (a bounded-out sequential read fetched
        // its object 16 times over).
        if (!this.failed) this.host.retain(this, chunk);
        return chunk;
      }
      this.map.markWritten(b0, b1);
      this.host.settle(this.rec, reserved);
      this.host.markDirty(this);
      this.host.retain(this, chunk);
      if (this.map.complete) this.onFilled();
      return chunk;
    });
    for (let b = b0; b < b1; b++) this.inflight.set(b, p);
    const clear = (): void => {
      for (let b = b0; b < b1; b++) if (this.inflight.get(b) === p) this.inflight.delete(b);
    };
    p.then(clear, clear);
    return p;
  }

  private reportWriteError(err: unknown): void {
    this.host.report(
      isNoSpaceErrno(err)
        ? new CacheError('NoSpace', `the disk under the cache (${this.path}) is full: reading uncached`, { cause: err })
        : new CacheError('Io', `cannot write cache file ${this.path}: ${(err as Error).message}`, { cause: err }),
    );
  }

  /** Lets go of every retained chunk (entry closing or failed). */
  forgetAll(): void {
    for (const chunk of new Set(this.retained.values())) this.host.forget(chunk);
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
    const buf = this.host.pool.take();
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
      this.host.pool.give(buf);
    }
    return hash.digest('hex');
  }

  private markComplete(): void {
    this.rec.complete = true;
    this.host.markDirty(this);
    this.completion?.resolve();
  }

  fail(err: CacheError): void {
    if (this.failed) return;
    this.failed = err;
    this.forgetAll();
    this.host.discard(this, err);
    this.completion?.reject(err);
  }
}

/** A view of [from, to) if it lies inside one piece of the chunk. */
function pieceView(chunk: Chunk, from: number, to: number): Buffer | undefined {
  let at = chunk.start;
  for (const piece of chunk.pieces) {
    if (from < at + piece.length) return to <= at + piece.length ? piece.subarray(from - at, to - at) : undefined;
    at += piece.length;
  }
  return undefined;
}

/** Copies the chunk's bytes [from, to) into out at outOffset. */
function copyOut(chunk: Chunk, from: number, to: number, out: Buffer, outOffset: number): void {
  let at = chunk.start;
  for (const piece of chunk.pieces) {
    const pieceEnd = at + piece.length;
    if (pieceEnd > from && at < to) {
      const s = Math.max(from, at);
      const e = Math.min(to, pieceEnd);
      piece.copy(out, outOffset + (s - from), s - at, e - at);
    }
    if (pieceEnd >= to) break;
    at = pieceEnd;
  }
}

/**
 * Writes one fetched range into the data file as it streams in. Bytes are gathered in a reused page-aligned
 * buffer and written in whole pages with O_DIRECT: buffered writes cost more CPU than the download itself
 * (every page-cache page is a fresh page to allocate, fill and later write back). The unaligned tail of
 * the file, and filesystems without O_DIRECT, go through the ordinary descriptor. Durability is unchanged:
 * the group commit's fdatasync still comes before the blocks are recorded.
 */
class RangeWriter {
  private stage: Buffer | undefined;
  private fill = 0;
  /** The first write error: further bytes are not written, the range is served uncached. */
  error: unknown;

  constructor(
    private readonly entry: OpenEntry,
    private position: number,
  ) {}

  async add(piece: Buffer): Promise<void> {
    for (let off = 0; off < piece.length && !this.error; ) {
      this.stage ??= this.entry.pool.take();
      const n = piece.copy(this.stage, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === this.stage.length) await this.flushStage();
    }
  }

  async finish(): Promise<void> {
    if (this.fill > 0 && !this.error) await this.flushStage();
    this.abandon();
  }

  abandon(): void {
    if (this.stage) this.entry.pool.give(this.stage);
    this.stage = undefined;
  }

  private async flushStage(): Promise<void> {
    const stage = this.stage!;
    try {
      const direct = this.entry.directRefused ? undefined : this.entry.direct;
      let head = direct ? alignDown(this.fill) : 0;
      if (head > 0) {
        try {
          await writeAll(direct!, stage, 0, head, this.position);
        } catch (err) {
          // Some filesystems open with O_DIRECT but refuse the write: use the page cache from now on.
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
          this.entry.directRefused = true;
          head = 0;
        }
      }
      if (this.fill > head) await writeAll(this.entry.fh!, stage, head, this.fill - head, this.position + head);
      this.position += this.fill;
      this.fill = 0;
    } catch (err) {
      this.error = err;
    }
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
    done += bytesWritten;
  }
}
