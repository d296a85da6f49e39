// What objects carry besides their bytes (user metadata, content type), remembered by object version, so that a
// listing, which carries no user metadata, costs a HEAD only for objects not seen before. A version is
// (key, ETag, size, LastModified to the second): a metadata change by copy keeps ETag and size but moves
// LastModified, so a remembered answer is trusted for as long as the bucket shows that version, across
// listings, TTLs and (with a persistent store) restarts. HEAD says LastModified to the second only: an answer
// learnt within SETTLE_MS of its version's LastModified could predate a second change in that same second, so
// it is trusted for the TTL only (then asked again, settled); our own uploads count as settled.
import { LRUCache } from 'lru-cache';
import type { UserMetadata } from './posix-metadata.js';

/** An object version as a listing or a HEAD shows it. */
export interface ObjectVersion {
  etag: string;
  size: number;
  /** LastModified, ms. */
  mtimeMs: number;
}

export interface KnownAttributes {
  metadata: UserMetadata;
  contentType?: string;
}

/** A remembered answer as kept in a persistent store. */
export interface AttributeRecord extends KnownAttributes {
  etag: string;
  size: number;
  /** LastModified in whole seconds (HEAD's precision); undefined: not known yet (our own PutObject). */
  lastModifiedSec?: number;
}

/**
 * Where remembered answers outlive the process (the cache's SQLite index), per bucket location. Calls are
 * synchronous and cheap; a store that fails loses only what it would have saved.
 */
export interface AttributeStore {
  get(location: string, key: string): AttributeRecord | undefined;
  put(location: string, key: string, record: AttributeRecord): void;
  delete(location: string, key: string): void;
}

export interface AttributeCacheOptions {
  /** How long an answer recorded without the server's LastModified may adopt the next one listed. */
  ttlMs: number;
  /** Entries kept in memory. */
  max?: number;
  persist?: { store: AttributeStore; location: string };
}

interface Entry extends AttributeRecord {
  /** When it was recorded (ms). */
  at: number;
  /** Learnt late enough after LastModified that no change in the same second can follow it (or ours). */
  settled: boolean;
  /** The LastModified our own upload's answer gave (our clock): that version matches without adopting it. */
  ourMtimeMs?: number;
}

const seconds = (ms: number) => Math.floor(ms / 1000);
/** The end of LastModified's second plus a second of clock skew between us and the store. */
const SETTLE_MS = 2000;

function known(e: Entry): KnownAttributes {
  return e.contentType === undefined ? { metadata: e.metadata } : { metadata: e.metadata, contentType: e.contentType };
}

export class AttributeCache {
  private readonly entries: LRUCache<string, Entry>;

  constructor(private readonly opts: AttributeCacheOptions) {
    this.entries = new LRUCache({ max: opts.max ?? 200_000 });
  }

  /** The attributes of this version of `key`, if known. */
  get(key: string, v: ObjectVersion): KnownAttributes | undefined {
    let e = this.entries.get(key);
    if (!e && this.opts.persist) {
      const r = this.opts.persist.store.get(this.opts.persist.location, key);
      if (r) this.entries.set(key, (e = { ...r, at: 0, settled: true }));
    }
    if (!e || e.etag !== v.etag || e.size !== v.size) return undefined;
    if (v.mtimeMs === e.ourMtimeMs) return known(e);
    if (e.lastModifiedSec === undefined) {
      // Recorded from our own upload, whose answer has no server time: the first version listed within the
      // TTL with the same bytes is that upload.
      if (Date.now() - e.at > this.opts.ttlMs) return undefined;
      e.lastModifiedSec = seconds(v.mtimeMs);
      this.save(key, e);
    } else if (e.lastModifiedSec !== seconds(v.mtimeMs)) {
      return undefined;
    } else if (!e.settled && Date.now() - e.at > this.opts.ttlMs) {
      return undefined;
    }
    return known(e);
  }

  /**
   * Whether some other version of `key` was seen before (its bytes or its LastModified moved since): a listing
   * asks such an object again even in a directory judged plain, since a change is what sets attributes.
   */
  versionChanged(key: string, v: ObjectVersion): boolean {
    const e = this.entries.get(key) ?? (this.opts.persist ? this.opts.persist.store.get(this.opts.persist.location, key) : undefined);
    if (!e) return false;
    if (e.etag !== v.etag || e.size !== v.size) return true;
    return e.lastModifiedSec !== undefined && e.lastModifiedSec !== seconds(v.mtimeMs);
  }

  /**
   * Remembers the attributes of a version, learnt from: a HEAD (v.mtimeMs is the bucket's LastModified), our
   * copy (the same, and we wrote them), our upload (v.mtimeMs is our clock: a PutObject's answer has none),
   * or assumed without asking (a listing judged plain): kept for the TTL only, never persisted.
   */
  set(key: string, v: ObjectVersion, a: KnownAttributes, from: 'head' | 'copy' | 'upload' | 'assumed'): void {
    const at = Date.now();
    const e: Entry = { etag: v.etag, size: v.size, metadata: { ...a.metadata }, at, settled: true };
    if (a.contentType !== undefined) e.contentType = a.contentType;
    if (from === 'upload') {
      e.ourMtimeMs = v.mtimeMs;
    } else if (from === 'assumed') {
      e.lastModifiedSec = seconds(v.mtimeMs);
      e.settled = false;
    } else {
      e.lastModifiedSec = seconds(v.mtimeMs);
      e.settled = from === 'copy' || at - e.lastModifiedSec * 1000 >= SETTLE_MS;
    }
    this.entries.set(key, e);
    this.save(key, e);
  }

  delete(key: string): void {
    this.entries.delete(key);
    this.opts.persist?.store.delete(this.opts.persist.location, key);
  }

  private save(key: string, e: Entry): void {
    if (!this.opts.persist || e.lastModifiedSec === undefined || !e.settled) return;
    const { at: _at, ourMtimeMs: _ours, settled: _settled, ...record } = e;
    this.opts.persist.store.put(this.opts.persist.location, key, record);
  }
}
