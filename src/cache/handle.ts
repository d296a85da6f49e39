// What the filesystem layer holds per open file: reads by offset, the path of the complete local file for
// the native fast path, and close. Open handles pin their entry against eviction.
import { CacheError } from './errors.js';
import type { OpenEntry } from './entry.js';
import type { CacheOptions } from './options.js';
import { SequentialDetector } from './prefetch.js';

const SEQUENTIAL_TOLERANCE = 1024 * 1024;

export interface HandleHost {
  readonly opts: CacheOptions;
  touchAndCount(handle: CacheHandle, hit: boolean): void;
  unpin(entry: OpenEntry): void;
}

export class CacheHandle {
  private closed = false;
  private readonly detector: SequentialDetector;

  /** @internal created by Cache.open */
  constructor(
    private readonly host: HandleHost,
    /** @internal */ readonly entry: OpenEntry,
  ) {
    // The kernel's readahead may deliver sequential reads slightly out of order: tolerate 1 MiB (or a block).
    this.detector = new SequentialDetector(host.opts.prefetch, Math.max(entry.rec.blockSize, SEQUENTIAL_TOLERANCE));
  }

  /** The entry id (hex): stable across restarts, equal for equal identities. */
  get id(): string {
    return this.entry.rec.id;
  }

  get size(): number {
    return this.entry.rec.size;
  }

  /**
   * Bytes [offset, offset + length), clamped to the file size (shorter or empty at EOF). Missing blocks are
   * fetched (single-flight with every other reader of the same identity); sequential patterns prefetch ahead.
   *
   * `transient`: for a caller that uses the bytes before the current event-loop turn ends (the FUSE engine
   * copies a reply at once). A read within one fetched chunk is then a view of the chunk's pooled buffer
   * instead of a copy: a cold sequential GiB read in 512 KiB requests allocated 1 GiB of copies, and the
   * garbage collections they caused were a third of the daemon's CPU.
   */
  async read(offset: number, length: number, opts: { transient?: boolean } = {}): Promise<Buffer> {
    if (this.closed) throw new CacheError('Closed', `read on a closed cache handle (${this.entry.path})`);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`bad read range offset=${offset} length=${length}`);
    }
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const prefetch = this.detector.onRead(offset, end - offset);
    const { data, hit } = await this.entry.read(offset, end, prefetch, opts.transient ?? false);
    this.host.touchAndCount(this, hit);
    return data;
  }

  /**
   * The local file holding every byte of this identity at the same offsets, once complete and verified;
   * undefined until then. The fs layer binds the FUSE handle to it (passthrough / native pread) so reads no
   * longer enter JavaScript. Valid while this handle is open: the entry cannot be evicted meanwhile.
   */
  completePath(): string | undefined {
    const e = this.entry;
    return e.rec.complete && !e.failed && e.fh ? e.path : undefined;
  }

  /** Resolves with completePath() once the entry becomes complete (it does not fetch anything by itself). */
  async whenComplete(): Promise<string> {
    if (this.entry.memory) {
      throw new CacheError('BoundExceeded', `${this.entry.path} is served from memory: the cache had no room for it`);
    }
    await this.entry.whenComplete();
    return this.entry.path;
  }

  /** Fetches every missing block (e.g. to make a file complete for the fast path). */
  async fetchAll(): Promise<void> {
    if (this.closed) throw new CacheError('Closed', `fetchAll on a closed cache handle (${this.entry.path})`);
    await this.entry.fetchAll();
  }

  /** Unpins the entry. Idempotent. Fetches already running finish and are kept. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.unpin(this.entry);
  }
}
