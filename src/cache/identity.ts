// What a cache entry *is*: an immutable identity whose bytes never change, so entries need no invalidation
// and are shared by every version and mount that names the same bytes. The on-disk name is a hash of the
// canonical identity, so no identity (whatever its key or location contains) can name a path outside the cache.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ObjectStore } from '../storage/object-store.js';
import { CacheError } from './errors.js';

export type CacheIdentity =
  /** A team-dataset file: its manifest's SHA-256 (64 hex digits). Same hash = same entry, across versions. */
  | { kind: 'content'; sha256: string }
  /** A bucket object pinned by VersionId (preferred when known) or ETag; location = ObjectStore.location. */
  | { kind: 'object'; location: string; key: string; etag?: string; versionId?: string };

/** Where and how to fetch an identity's bytes. */
export interface CacheSource {
  store: ObjectStore;
  key: string;
  /** Exact size in bytes (from the manifest or a listing). */
  size: number;
  /** Sent as If-Match on every GET so that a changed object fails instead of mixing two versions. */
  ifMatch?: string;
  versionId?: string;
  /**
   * The caller's ETag may be out of date (its listing is older than its TTL): unless a GET with If-Match
   * confirmed it at or after this time (ms) — a small file's GET at open, a prefetch — the open confirms it
   * with a HEAD, failing with PreconditionFailed (changed) or NotFound (gone).
   */
  confirmSince?: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** A stable text form of the identity; equal identities give equal strings. */
export function canonicalIdentity(id: CacheIdentity): string {
  if (id.kind === 'content') {
    const sha = id.sha256.toLowerCase();
    if (!SHA256.test(sha)) throw new CacheError('InvalidIdentity', `not a SHA-256 hex digest: "${id.sha256}"`);
    return `content:${sha}`;
  }
  if (id.kind === 'object') {
    if (!id.location || !id.key) throw new CacheError('InvalidIdentity', 'object identity needs a location and a key');
    // VersionId wins: it pins the bytes even where ETags are not content hashes (multipart, SSE-KMS).
    const pin = id.versionId ? `v:${id.versionId}` : id.etag ? `e:${id.etag.replace(/"/g, '')}` : undefined;
    if (!pin) {
      throw new CacheError('InvalidIdentity', `object ${id.location}/${id.key} has neither an ETag nor a VersionId`);
    }
    return `object:${JSON.stringify([id.location, id.key, pin])}`;
  }
  throw new CacheError('InvalidIdentity', `unknown identity kind ${(id as { kind: unknown }).kind as string}`);
}

/** The entry id: hex SHA-256 of the canonical identity. Only [0-9a-f], so it is always a safe file name. */
export function entryId(id: CacheIdentity): string {
  return createHash('sha256').update(canonicalIdentity(id)).digest('hex');
}

/** data/<2 hex>/<64 hex>: a fan-out keeps directories small with millions of entries. */
export function dataPath(dir: string, id: string): string {
  if (!SHA256.test(id)) throw new CacheError('InvalidIdentity', `bad entry id "${id}"`);
  return path.join(dir, 'data', id.slice(0, 2), id);
}

export function describeIdentity(id: CacheIdentity): string {
  return id.kind === 'content' ? `sha256:${id.sha256}` : `${id.location}/${id.key}@${id.versionId ?? id.etag}`;
}
