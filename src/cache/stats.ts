// What a cache counts and reports while it runs: the counters behind stats() and the metrics (plain numbers
// since start, added to the lifetime totals in the index by each group commit), and the conditions the
// operator should hear about (disk full, bound unmet, verification failure, I/O error), rate-limited.
import type { CacheError, CacheErrorCode } from './errors.js';
import { zeroCounters, type CounterName } from './index-db.js';

/** The same condition is emitted at most this often (each is still counted); bad bytes (VerifyFailed, TierCorrupt) always are. */
const REPORT_EVERY_MS = 10_000;

export type CacheCounters = Record<CounterName, number>;

export interface CacheConditions {
  /** Conditions reported since start, by code (NoSpace, BoundExceeded, VerifyFailed, Io, …). */
  conditions: Partial<Record<CacheErrorCode, number>>;
  lastCondition?: { code: CacheErrorCode; message: string; at: string };
}

export class StatsRecorder {
  readonly counters: CacheCounters = zeroCounters();
  /** The part of `counters` already added to the index's lifetime totals. */
  private readonly inIndex: CacheCounters = zeroCounters();
  private readonly conditions: Partial<Record<CacheErrorCode, number>> = {};
  private readonly lastReported = new Map<CacheErrorCode, number>();
  private lastCondition: CacheConditions['lastCondition'];

  /** @param emit tells the operator (the cache's 'condition' event) */
  constructor(private readonly emit: (err: CacheError) => void) {}

  report(err: CacheError): void {
    this.conditions[err.code] = (this.conditions[err.code] ?? 0) + 1;
    this.lastCondition = { code: err.code, message: err.message, at: new Date().toISOString() };
    const now = Date.now();
    if (now - (this.lastReported.get(err.code) ?? -Infinity) >= REPORT_EVERY_MS || err.code === 'VerifyFailed' || err.code === 'TierCorrupt') {
      this.lastReported.set(err.code, now);
      this.emit(err);
    }
  }

  reported(): CacheConditions {
    return { conditions: { ...this.conditions }, lastCondition: this.lastCondition };
  }

  /** What the counters grew by since the last markPersisted(). */
  unpersisted(): CacheCounters {
    const delta = zeroCounters();
    for (const k of Object.keys(delta) as CounterName[]) delta[k] = this.counters[k] - this.inIndex[k];
    return delta;
  }

  /** `delta` (from unpersisted()) is now in the index's lifetime totals. */
  markPersisted(delta: CacheCounters): void {
    for (const k of Object.keys(delta) as CounterName[]) this.inIndex[k] += delta[k];
  }

  /** Lifetime totals: what the index holds plus this session's part not written yet. */
  lifetime(stored: CacheCounters): CacheCounters {
    const out = { ...stored };
    const delta = this.unpersisted();
    for (const k of Object.keys(out) as CounterName[]) out[k] += delta[k];
    return out;
  }
}
