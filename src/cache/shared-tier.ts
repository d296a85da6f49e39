// The shared tier: an S3 bucket near the nodes that holds what any node fetched, so the next node reads it
// from there instead of the origin. A fill that misses the local cache asks the tier first (local → tier →
// origin); what came from the origin is uploaded in the background once the entry is complete and verified
// (tier-upload.ts). Nothing from the tier is trusted: every range is checked against the block CRCs stored
// with the object (tier-object.ts), content entries are hashed whole as always, and a bad object is reported
// and read from the origin instead. A tier that fails (unreachable, refused) is reported and left alone for
// a while: reads go to the origin and nothing fails.
//
// Several nodes missing the same large entry at once would all go to the origin; the first takes a short
// lease (an object created with If-None-Match: *, read back, so a store that ignores the condition still
// ends with one owner: the last writer), the others wait for the tier object and go to the origin once the
// lease is gone, stale, or they have waited leaseWaitMs.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { isStorageError } from '../storage/errors.js';
import type { ByteRange, ObjectStore, ReadOptions } from '../storage/object-store.js';
import type { EntryRecord } from './entry-record.js';
import { CacheError } from './errors.js';
import { fetchInto } from './fetch-into.js';
import type { CacheSource } from './identity.js';
import { decodeTrailer, firstBadBlock, TIER_BLOCK, tierKey, trailerLength } from './tier-object.js';
import { TierUploads, type TierUploadOptions } from './tier-upload.js';

export interface SharedTierOptions {
  store: ObjectStore;
  /** Entries at least this large are leased before a node fetches them from the origin. */
  leaseMinBytes?: number;
  /** The longest a node waits for another's lease before going to the origin itself. */
  leaseWaitMs?: number;
  /** How often a waiting node looks for the tier object. */
  pollMs?: number;
  /** After a failure, the tier is left alone for this long. */
  downForMs?: number;
  upload?: Partial<TierUploadOptions>;
}

export interface TierCounters {
  bytesFromTier: number;
  bytesFromOrigin: number;
  uploads: number;
  bytesUploaded: number;
  uploadsDropped: number;
  uploadsFailed: number;
  /** Tier objects that failed verification (each read from the origin instead). */
  corrupt: number;
  leaseWaits: number;
  /** Waits for another node's lease that ended at the origin. */
  leaseTimeouts: number;
  unavailable: number;
}

export interface TierStatus extends TierCounters {
  location: string;
  /** Set while the tier is left alone after a failure. */
  unavailableUntil?: string;
}

type Plan = { kind: 'tier'; crcs: Uint32Array } | { kind: 'origin'; upload: boolean; lease?: string };

const ORIGIN_ONLY: Plan = { kind: 'origin', upload: false };
type Outcome = 'hit' | 'missing' | 'corrupt' | 'down';

export class SharedTier {
  readonly counters: TierCounters = {
    bytesFromTier: 0,
    bytesFromOrigin: 0,
    uploads: 0,
    bytesUploaded: 0,
    uploadsDropped: 0,
    uploadsFailed: 0,
    corrupt: 0,
    leaseWaits: 0,
    leaseTimeouts: 0,
    unavailable: 0,
  };
  readonly store: ObjectStore;
  private readonly leaseMinBytes: number;
  private readonly leaseWaitMs: number;
  private readonly pollMs: number;
  private readonly downForMs: number;
  private downUntil = 0;
  readonly uploads: TierUploads;

  constructor(
    opts: SharedTierOptions,
    /** Conditions for the operator (the cache's, rate-limited there). */
    private readonly report: (err: CacheError) => void,
    isCurrent: (rec: EntryRecord) => boolean,
  ) {
    this.store = opts.store;
    this.leaseMinBytes = opts.leaseMinBytes ?? 4 * 1024 * 1024;
    this.leaseWaitMs = opts.leaseWaitMs ?? 10_000;
    this.pollMs = opts.pollMs ?? 50;
    this.downForMs = opts.downForMs ?? 30_000;
    this.uploads = new TierUploads(
      opts.store,
      { concurrency: 2, partBytes: 16 * 1024 * 1024, bytesPerSecond: 0, maxQueued: 10_000, ...opts.upload },
      {
        isCurrent,
        failed: (err) => this.unavailable(err, 'uploading to'),
        counters: this.counters,
      },
    );
  }

  get location(): string {
    return this.store.location;
  }

  status(): TierStatus {
    const out: TierStatus = { location: this.location, ...this.counters };
    if (this.down()) out.unavailableUntil = new Date(this.downUntil).toISOString();
    return out;
  }

  /** The tier's part in filling one entry (one per open entry). */
  entry(rec: EntryRecord, source: CacheSource): TierEntry {
    return new TierEntry(this, rec, source);
  }

  down(): boolean {
    return Date.now() < this.downUntil;
  }

  /** @internal How an entry is filled: from the tier (its CRCs read), or from the origin (leased or not). */
  async plan(rec: EntryRecord): Promise<Plan> {
    if (this.down() || rec.blockSize % TIER_BLOCK !== 0) return ORIGIN_ONLY;
    const key = tierKey(rec);
    try {
      const found = await this.probe(rec, key);
      if (found) return found;
      if (rec.size < this.leaseMinBytes) return { kind: 'origin', upload: true };
      return await this.lease(rec, key);
    } catch (err) {
      this.unavailable(err as Error, 'reading');
      return ORIGIN_ONLY;
    }
  }

  /**
   * The tier object's plan if it exists (one ranged GET of its trailer: an object of another size fails the
   * trailer's checks); undefined if it does not.
   */
  private async probe(rec: EntryRecord, key: string): Promise<Plan | undefined> {
    const trailer = Buffer.allocUnsafe(trailerLength(rec.size));
    let got: number;
    try {
      got = await readInto(this.store, key, { range: { start: rec.size, end: rec.size + trailer.length } }, trailer);
    } catch (err) {
      if (isStorageError(err, 'NotFound')) return undefined;
      throw err;
    }
    const crcs = got === trailer.length ? decodeTrailer(trailer, rec.size) : `is shorter than its ${rec.size} bytes and trailer`;
    if (typeof crcs === 'string') return this.corrupt(rec, crcs);
    return { kind: 'tier', crcs };
  }

  private async lease(rec: EntryRecord, key: string): Promise<Plan> {
    const leaseKey = `${key}.lease`;
    const token = randomUUID();
    try {
      await this.store.write(leaseKey, token, { ifNoneMatch: '*' });
      if ((await this.store.read(leaseKey)).toString() === token) return { kind: 'origin', upload: true, lease: leaseKey };
    } catch (err) {
      if (!isStorageError(err, 'PreconditionFailed')) throw err;
    }
    this.counters.leaseWaits++;
    for (const deadline = Date.now() + this.leaseWaitMs; Date.now() < deadline; ) {
      await sleep(this.pollMs);
      const found = await this.probe(rec, key);
      if (found) return found;
      let since: number;
      try {
        since = (await this.store.head(leaseKey)).lastModified.getTime();
      } catch (err) {
        if (isStorageError(err, 'NotFound')) break; // released without an upload (its reader stopped early)
        throw err;
      }
      if (Date.now() - since > this.leaseWaitMs) break; // its holder died
    }
    this.counters.leaseTimeouts++;
    return { kind: 'origin', upload: true };
  }

  /** @internal Reads a block-aligned range of the tier object into `into`, checked against its CRCs. */
  async readRange(rec: EntryRecord, crcs: Uint32Array, range: ByteRange, into: Buffer): Promise<Outcome> {
    return this.checkRange(rec, crcs, range, into, await this.readRaw(rec, range, into));
  }

  /** @internal A range of the tier object into `into`, unchecked: bytes read, or why not. */
  async readRaw(rec: EntryRecord, range: ByteRange, into: Buffer): Promise<number | 'missing' | Error> {
    try {
      return await readInto(this.store, tierKey(rec), { range }, into.subarray(0, range.end - range.start));
    } catch (err) {
      return isStorageError(err, 'NotFound') ? 'missing' : (err as Error);
    }
  }

  /** @internal What readRaw() gave, checked against the object's CRCs. */
  checkRange(rec: EntryRecord, crcs: Uint32Array, range: ByteRange, into: Buffer, raw: number | 'missing' | Error): Outcome {
    const n = range.end - range.start;
    if (raw === 'missing') return 'missing'; // a lifecycle rule or a prune took it
    if (raw instanceof Error) {
      this.unavailable(raw, 'reading');
      return 'down';
    }
    const got = raw;
    if (got !== n) return this.corruptOutcome(rec, `gave ${got} bytes for ${n} at ${range.start}`);
    const bad = firstBadBlock(into.subarray(0, n), range.start, crcs);
    if (bad >= 0) return this.corruptOutcome(rec, `block ${bad} does not match its checksum`);
    this.counters.bytesFromTier += n;
    return 'hit';
  }

  /** @internal A small entry: the whole tier object in one GET, checked, its data copied to `into`. */
  async readWhole(rec: EntryRecord, into: Buffer): Promise<Outcome> {
    if (this.down()) return 'down';
    const total = rec.size + trailerLength(rec.size);
    const buf = Buffer.allocUnsafe(total);
    let got: number;
    try {
      got = await readInto(this.store, tierKey(rec), { range: { start: 0, end: total } }, buf);
    } catch (err) {
      if (isStorageError(err, 'NotFound')) return 'missing';
      this.unavailable(err as Error, 'reading');
      return 'down';
    }
    if (got !== total) return this.corruptOutcome(rec, `holds ${got} bytes, not ${total}`);
    const crcs = decodeTrailer(buf.subarray(rec.size), rec.size);
    if (typeof crcs === 'string') return this.corruptOutcome(rec, crcs);
    const bad = firstBadBlock(buf.subarray(0, rec.size), 0, crcs);
    if (bad >= 0) return this.corruptOutcome(rec, `block ${bad} does not match its checksum`);
    buf.copy(into, 0, 0, rec.size);
    this.counters.bytesFromTier += rec.size;
    return 'hit';
  }

  /** @internal Reports a tier object whose bytes are wrong: the entry is read from the origin and uploaded again. */
  corrupt(rec: EntryRecord, why: string): Plan {
    this.counters.corrupt++;
    this.report(
      new CacheError('TierCorrupt', `shared cache tier ${this.location}/${tierKey(rec)} (${rec.identity}) ${why}: read from the origin instead`),
    );
    return { kind: 'origin', upload: true };
  }

  private corruptOutcome(rec: EntryRecord, why: string): Outcome {
    this.corrupt(rec, why);
    return 'corrupt';
  }

  private unavailable(err: Error, doing: string): void {
    this.counters.unavailable++;
    this.downUntil = Date.now() + this.downForMs;
    this.report(
      new CacheError('TierUnavailable', `shared cache tier ${this.location}: ${doing} it failed (${err.message}); reading from the origin`, {
        cause: err,
      }),
    );
  }

  /** Resolves once every queued upload has ended (tests, benchmarks). */
  drained(): Promise<void> {
    return this.uploads.drained();
  }

  async close(): Promise<void> {
    await this.uploads.close();
  }
}

/** The tier's part in filling one entry: where its bytes come from, and its upload once complete. */
export class TierEntry {
  private plan?: Promise<Plan>;
  private settled?: Plan;
  private fromOrigin = false;
  /** Some of the entry's bytes came from the tier. */
  usedTier = false;
  private ended = false;

  constructor(
    private readonly tier: SharedTier,
    private readonly rec: EntryRecord,
    private readonly source: CacheSource,
  ) {}

  /** Fills `into` with `range` of the entry (whole without one): from the tier if it has it right, else the origin. */
  async fetch(range: ByteRange | undefined, into: Buffer): Promise<void> {
    if (!range) {
      const outcome = await this.tier.readWhole(this.rec, into);
      if (outcome === 'hit') {
        this.usedTier = true;
        return;
      }
      this.settled = outcome === 'down' ? ORIGIN_ONLY : { kind: 'origin', upload: true };
    } else {
      let early: Promise<number | 'missing' | Error> | undefined;
      if (!this.plan) {
        this.plan = this.tier.plan(this.rec).then((p) => (this.settled = p));
        // The first range is read from the tier while the plan (the object's trailer) is: one round trip, not two.
        if (!this.tier.down()) early = this.tier.readRaw(this.rec, range, into);
      }
      const plan = await this.plan;
      const raw = await early; // done with `into` before anything else writes it
      if (plan.kind === 'tier') {
        // An early read that found nothing ran before the object appeared (a lease waited on): read again.
        const outcome =
          typeof raw === 'number' ? this.tier.checkRange(this.rec, plan.crcs, range, into, raw) : await this.tier.readRange(this.rec, plan.crcs, range, into);
        if (outcome === 'hit') {
          this.usedTier = true;
          return;
        }
        // Read the rest from the origin too: the tier's copy is wrong, gone, or the tier is down.
        this.settled = outcome === 'down' ? ORIGIN_ONLY : { kind: 'origin', upload: true };
        this.plan = Promise.resolve(this.settled);
      }
    }
    await this.fromOriginInto(range, into);
  }

  /** The origin's bytes, tier or not (a whole-file hash failed on the tier's copy). */
  async fromOriginInto(range: ByteRange | undefined, into: Buffer): Promise<void> {
    await fetchInto(this.source, range, into);
    this.fromOrigin = true;
    this.tier.counters.bytesFromOrigin += range ? range.end - range.start : this.rec.size;
  }

  /** The whole entry hashed wrong with bytes from the tier: report it, and send the origin's bytes up next time. */
  rejected(): void {
    this.tier.corrupt(this.rec, 'does not hash to its identity');
    this.settled = { kind: 'origin', upload: true };
    this.plan = Promise.resolve(this.settled);
  }

  /** The entry is complete and verified in `file`: upload it if the origin gave any of it. */
  complete(file: string): void {
    if (this.ended) return;
    this.ended = true;
    const plan = this.settled;
    const lease = plan?.kind === 'origin' ? plan.lease : undefined;
    if (this.fromOrigin && plan?.kind === 'origin' && plan.upload) {
      this.tier.uploads.enqueue({ rec: this.rec, file, key: tierKey(this.rec), lease });
    } else if (lease) {
      void this.tier.store.delete(lease).catch(() => undefined);
    }
  }

  /** Closed before complete: a lease held goes at once, so nodes waiting on it need not wait it out. */
  abandon(): void {
    if (this.ended) return;
    this.ended = true;
    const plan = this.settled;
    if (plan?.kind === 'origin' && plan.lease) void this.tier.store.delete(plan.lease).catch(() => undefined);
  }
}

async function readInto(store: ObjectStore, key: string, opts: ReadOptions, into: Buffer): Promise<number> {
  if (store.readInto) return store.readInto(key, opts, into);
  const data = await store.read(key, opts);
  return data.length > into.length ? into.length + 1 : data.copy(into);
}
