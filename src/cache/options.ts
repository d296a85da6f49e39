// Every cache tunable and its default, in one place. The daemon passes what the operator configured
// (cache.maxSize, --cache-size, --cache-dir); everything else is for tests and benchmarks.
import { CacheError } from './errors.js';
import { parseSize } from './size.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const DEFAULT_CACHE_DIR = '/var/cache/gradient';

export interface PrefetchOptions {
  /** Window after the first sequential read; doubles on every further sequential read. */
  initialWindowBytes: number;
  maxWindowBytes: number;
}

export interface CacheOptions {
  /** The cache directory (created 0700). One cache per directory, shared by all mounts of a daemon. */
  dir: string;
  /** Hard bound on the bytes the directory occupies on disk (allocated blocks, data + index). */
  maxBytes: number;
  /** Keep at least this much free on the cache filesystem; the effective bound shrinks to honour it. */
  minFreeBytes: number;
  /**
   * Unit of partial caching and of presence bookkeeping (a multiple of 4 KiB): what a random read fetches at
   * least. 64 KiB costs RGW about as much as a 4 KiB GET; sequential reads still use large requests.
   */
  blockSize: number;
  /** Files up to this size are fetched whole, in one request, when opened. */
  smallFileBytes: number;
  /** Largest single ranged GET. */
  maxRequestBytes: number;
  /**
   * Bytes of GETs in flight for the whole cache (demand reads go first, prefetch after): what their buffers
   * hold. 64 MiB = eight 8 MiB range GETs, which keep a sequential reader at the network's speed.
   */
  maxFetchBytes: number;
  /** GETs in flight for the whole cache, whatever their size: small whole-file GETs are latency-bound. */
  maxConcurrentFetches: number;
  prefetch: PrefetchOptions;
  /**
   * Fetched bytes kept in memory, cache-wide, for readers that have not reached them yet (prefetched data is
   * written past the page cache, so without this a sequential reader would read it back from disk).
   */
  readAheadMemoryBytes: number;
  /** How long written blocks wait before they are fsynced and recorded in the index (group commit). */
  flushIntervalMs: number;
}

export type CacheOptionsInput = Partial<Omit<CacheOptions, 'prefetch' | 'maxBytes' | 'minFreeBytes'>> & {
  maxBytes?: number | string;
  minFreeBytes?: number | string;
  prefetch?: Partial<PrefetchOptions>;
};

export const CACHE_DEFAULTS: CacheOptions = {
  dir: DEFAULT_CACHE_DIR,
  maxBytes: 10 * GiB,
  minFreeBytes: 1 * GiB,
  blockSize: 64 * KiB,
  smallFileBytes: 1 * MiB,
  maxRequestBytes: 8 * MiB,
  maxFetchBytes: 64 * MiB,
  maxConcurrentFetches: 64,
  prefetch: { initialWindowBytes: 4 * MiB, maxWindowBytes: 64 * MiB },
  readAheadMemoryBytes: 64 * MiB,
  flushIntervalMs: 100,
};

export function resolveCacheOptions(input: CacheOptionsInput = {}): CacheOptions {
  const d = CACHE_DEFAULTS;
  const o: CacheOptions = {
    dir: input.dir ?? d.dir,
    maxBytes: input.maxBytes === undefined ? d.maxBytes : parseSize(input.maxBytes),
    minFreeBytes: input.minFreeBytes === undefined ? d.minFreeBytes : parseSize(input.minFreeBytes),
    blockSize: input.blockSize ?? d.blockSize,
    smallFileBytes: input.smallFileBytes ?? d.smallFileBytes,
    maxRequestBytes: input.maxRequestBytes ?? d.maxRequestBytes,
    maxFetchBytes: input.maxFetchBytes ?? d.maxFetchBytes,
    maxConcurrentFetches: input.maxConcurrentFetches ?? d.maxConcurrentFetches,
    prefetch: { ...d.prefetch, ...input.prefetch },
    readAheadMemoryBytes: input.readAheadMemoryBytes ?? d.readAheadMemoryBytes,
    flushIntervalMs: input.flushIntervalMs ?? d.flushIntervalMs,
  };
  const bad = (why: string): never => {
    throw new CacheError('InvalidOptions', `invalid cache options: ${why}`);
  };
  if (!o.dir) bad('dir is empty');
  if (o.blockSize < 4 * KiB || o.blockSize % (4 * KiB) !== 0) bad(`blockSize ${o.blockSize} is not a multiple of 4 KiB`);
  if (o.maxRequestBytes < o.blockSize) bad('maxRequestBytes is smaller than blockSize');
  if (o.maxConcurrentFetches < 1) bad('maxConcurrentFetches must be at least 1');
  if (o.maxFetchBytes < o.blockSize) bad('maxFetchBytes is smaller than blockSize');
  if (o.prefetch.maxWindowBytes < o.prefetch.initialWindowBytes) bad('prefetch.maxWindowBytes < initialWindowBytes');
  if (o.flushIntervalMs < 0) bad('flushIntervalMs is negative');
  if (!(o.readAheadMemoryBytes >= 0)) bad('readAheadMemoryBytes is negative');
  return o;
}
