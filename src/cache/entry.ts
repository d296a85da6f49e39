// One cached identity while it is in use: its sparse data file, which blocks are present, and the fetches in
// flight. Shared by every handle open on the same identity, which is what makes fills single-flight: a block
// is fetched by whoever asks first, later readers await the same promise.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
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
  /** Reserves disk bytes, evicting unpinned entries; false when the bound cannot be met (reported). */
  reserve(bytes: number): boolean;
  release(bytes: number): void;
  /** Reserved bytes now belong to the entry's data file. */
  settle(rec: EntryRecord, bytes: number): void;
  report(err: CacheError): void;
  markDirty(entry: OpenEntry): void;
  /** The entry's data failed verification: drop it from disk and index. */
  discard(entry: OpenEntry, err: CacheError): void;
}

export interface Chunk {
  /** Byte offset of data[0] in the file. */
  start: number;
  data: Buffer;
}

const VERIFY_READ = 4 * 1024 * 1024;

export class OpenEntry {
  private readonly inflight = new Map<number, Promise<Chunk>>();
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

    // The common cold case: the whole read lies inside one fetched chunk. Return a view, not a copy.
    const only = pending.get(b0);
    let single = only !== undefined;
    for (let b = b0 + 1; single && b < b1; b++) single = pending.get(b) === only;
    if (only && single) {
      const chunk = await only;
      if (this.failed) throw this.failed;
      return { data: chunk.data.subarray(offset - chunk.start, end - chunk.start), hit };
    }
    const out = Buffer.allocUnsafe(end - offset);
    let pos = offset;
    while (pos < end) {
      const b = Math.floor(pos / bs);
      const p = pending.get(b);
      if (p) {
        const chunk = await p;
        const segEnd = Math.min(end, (b + 1) * bs, chunk.start + chunk.data.length);
        chunk.data.copy(out, pos - offset, pos - chunk.start, segEnd - chunk.start);
        pos = segEnd;
      } else {
        // A run of present blocks: one pread.
        let runEnd = b + 1;
        while (runEnd < b1 && !pending.has(runEnd)) runEnd++;
        const segEnd = Math.min(end, runEnd * bs);
        await this.readFile(out, pos - offset, segEnd - pos, pos);
        this.host.counters.bytesFromCache += segEnd - pos;
        pos = segEnd;
      }
    }
    if (this.failed) throw this.failed;
    return { data: out, hit };
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
      const needs = b < b1 && !present && !flying;
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
      const needs = b < to && !this.map.has(b) && !this.inflight.has(b);
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

  /** One ranged GET for blocks [b0, b1): stored if there is room, returned either way. */
  private fetch(b0: number, b1: number, priority: Priority): Promise<Chunk> {
    const bs = this.rec.blockSize;
    const start = b0 * bs;
    const end = Math.min(this.rec.size, b1 * bs);
    const p = this.host.queue.run(priority, async (): Promise<Chunk> => {
      const { store, key, ifMatch, versionId } = this.source;
      const data = await store.read(key, { range: { start, end }, ifMatch, versionId });
      if (data.length !== end - start) {
        throw new CacheError(
          'SizeMismatch',
          `${store.location}/${key}: asked for bytes ${start}-${end}, got ${data.length} bytes (the object is not the size the cache was told)`,
        );
      }
      this.host.counters.bytesFetched += data.length;
      await this.store(b0, b1, start, data);
      return { start, data };
    });
    for (let b = b0; b < b1; b++) this.inflight.set(b, p);
    const clear = (): void => {
      for (let b = b0; b < b1; b++) if (this.inflight.get(b) === p) this.inflight.delete(b);
    };
    p.then(clear, clear);
    return p;
  }

  private async store(b0: number, b1: number, start: number, data: Buffer): Promise<void> {
    const bytes = roundUp(data.length);
    if (this.failed || !this.fh || !this.host.reserve(bytes)) {
      this.host.counters.bytesUncached += data.length;
      return;
    }
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, start + done);
        done += bytesWritten;
      }
    } catch (err) {
      this.host.release(bytes);
      this.host.counters.bytesUncached += data.length;
      this.host.report(
        isNoSpaceErrno(err)
          ? new CacheError('NoSpace', `the disk under the cache (${this.path}) is full: reading uncached`, { cause: err })
          : new CacheError('Io', `cannot write cache file ${this.path}: ${(err as Error).message}`, { cause: err }),
      );
      return;
    }
    this.map.markWritten(b0, b1);
    this.host.settle(this.rec, bytes);
    this.host.markDirty(this);
    if (this.map.complete) this.onFilled();
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

  private async hashFile(): Promise<string> {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(VERIFY_READ, Math.max(1, this.rec.size)));
    for (let pos = 0; pos < this.rec.size; ) {
      const n = Math.min(buf.length, this.rec.size - pos);
      await this.readFile(buf, 0, n, pos);
      hash.update(buf.subarray(0, n));
      pos += n;
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
    this.host.discard(this, err);
    this.completion?.reject(err);
  }
}
