// The daemon's memory target: one figure (`--memory-target`, `memory.target`, else a share of the cgroup's
// limit) that bounds what the daemon's buffers may hold. The target is split once into fixed shares for
// every pool and budget (splitTarget), so that no consumer can starve another; and each optional use of
// memory (a prefetch, a retained chunk, a spare buffer) first asks `allows()`, which compares the process's
// resident memory with the target, so that memory the shares do not see (the JS heap, sockets, the kernel's
// reply copies) also makes the daemon back off. Nothing required ever waits on `allows()`: a read or a write
// goes on with the shares it has (demand fetches, one upload part), only slower.
import { readFileSync } from 'node:fs';

const MiB = 1024 * 1024;

/**
 * What the daemon holds besides the shares under load: V8's heap and code, the native addon, SQLite, sockets,
 * threads' stacks, buffers dead but not collected yet, and the supervisor's private memory (measured under a
 * 256 MiB target: 108 MiB idle, +10 MiB of heap and up to ~16 MiB of dead buffers busy, 20 MiB for the supervisor).
 */
export const RUNTIME_BYTES = 152 * MiB;
/** Below this the shares would be too small to serve a reader and a writer at once. */
export const MIN_BUFFER_BYTES = 48 * MiB;
/** Optional uses stop once the RSS (with the supervisor's private pages) would pass this fraction of the target. */
const PRESSURE_FRACTION = 0.95;
/**
 * Under a target, a full collection once this many bytes of pooled buffers were left to the garbage collector:
 * V8 collects dead buffers only once external memory grew by ~64 MiB or more, which alone would overshoot a
 * small target (measured: peak 310 MiB under a 256 MiB target, 69 MiB of dead buffers at the peak). Needs `gc` (node --expose-gc: the supervisor
 * starts the serving process so); without it, nothing happens.
 */
const COLLECT_AFTER_BYTES = 16 * MiB;
const SAMPLE_MS = 200;

/** The shares of a target: every figure in bytes, except `uploadPartsInFlight`. */
export interface TargetShares {
  /** GETs in flight for the whole cache (their buffers). */
  fetchBytes: number;
  /** Fetched chunks kept in memory for their readers. */
  readAheadBytes: number;
  /** Spare chunk buffers kept for reuse. */
  chunkSpareBytes: number;
  /** Upload parts in flight, process-wide (16 MiB each), and spare part buffers. */
  uploadPartsInFlight: number;
  uploadPartSpareBytes: number;
}

/**
 * Splits what a target leaves for buffers (target − RUNTIME_BYTES, at least MIN_BUFFER_BYTES): a quarter for
 * fetches in flight, a quarter for upload parts, an eighth each for retained chunks and for spares. Never above
 * the defaults (`caps`): a large target changes nothing.
 */
export function splitTarget(targetBytes: number, caps: TargetShares, partBytes: number): TargetShares {
  const buffers = Math.max(MIN_BUFFER_BYTES, targetBytes - RUNTIME_BYTES);
  // `fraction` of the buffers in whole units, at least `min` units, never above the cap.
  const share = (fraction: number, cap: number, unit = MiB, min = 1) => Math.min(cap, Math.max(min * unit, Math.floor((buffers * fraction) / unit) * unit));
  return {
    fetchBytes: share(1 / 4, caps.fetchBytes),
    readAheadBytes: share(1 / 8, caps.readAheadBytes),
    chunkSpareBytes: share(1 / 8, caps.chunkSpareBytes),
    uploadPartsInFlight: share(1 / 4, caps.uploadPartsInFlight * partBytes, partBytes) / partBytes,
    uploadPartSpareBytes: share(1 / 8, caps.uploadPartSpareBytes, partBytes, 0),
  };
}

/** The resident set of this process, in bytes (/proc/self/statm: pages). */
export function processRss(): number {
  const pages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
  return pages * 4096;
}

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM, RssAnon, …); undefined when the process is gone. */
export function procStatusBytes(pid: number | 'self', field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

type Collect = (options: { type: 'major'; execution: 'async' }) => Promise<void>;

export class MemoryTarget {
  private sampledAt = 0;
  private sampled = 0;
  private droppedBytes = 0;
  private collecting = false;

  /**
   * @param bytes the target; undefined: none (allows() is always true)
   * @param otherBytes memory counted against the target outside this process (the supervisor's private pages)
   */
  constructor(
    readonly bytes: number | undefined,
    private readonly otherBytes: () => number = () => 0,
    private readonly rss: () => number = processRss,
    private readonly collect: Collect | undefined = (globalThis as { gc?: Collect }).gc,
  ) {
    if (bytes !== undefined && !(bytes > 0)) throw new RangeError(`memory target ${bytes} is not a positive number of bytes`);
  }

  /** The process's RSS plus the other processes' share, sampled at most every 200 ms (reads are hot paths). */
  used(): number {
    const now = Date.now();
    if (now - this.sampledAt >= SAMPLE_MS) {
      this.sampledAt = now;
      this.sampled = this.rss() + this.otherBytes();
    }
    return this.sampled;
  }

  /** Whether an optional use of `bytes` more fits under the target (always, without one). */
  allows(bytes: number): boolean {
    return this.bytes === undefined || this.used() + bytes <= this.bytes * PRESSURE_FRACTION;
  }

  /** Pooled buffers of this many bytes were left to the garbage collector: collect them soon, under a target. */
  dropped(bytes: number): void {
    if (this.bytes === undefined || !this.collect) return;
    this.droppedBytes += bytes;
    if (this.droppedBytes < COLLECT_AFTER_BYTES || this.collecting) return;
    this.droppedBytes = 0;
    this.collecting = true;
    // Asynchronous: marking runs in steps between requests instead of one pause.
    void this.collect({ type: 'major', execution: 'async' }).finally(() => (this.collecting = false));
  }

  /** True while optional uses are refused. */
  get underPressure(): boolean {
    return !this.allows(0);
  }
}
