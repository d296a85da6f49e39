// `datasets gc`: removes content blobs that no version names any more (once versions or datasets were
// deleted). Safe against a `files put` running at the same time, which uploads a blob before it journals the
// entry that names it. So gc, per store:
//  1. lists the blobs first;
//  2. then reads every journal batch and manifest under the team's datasets (any version, any state: a name
//     anywhere keeps a blob);
//  3. removes only blobs named by none of them *and* older than the grace period. A put still running
//     journals each upload within its journal interval (put.ts, 10 s), and reuses a blob it finds only while
//     that blob is younger than an hour, so with a grace above both, nothing a put relies on goes.
import type { Catalog } from './catalog.js';
import { blobsPrefix, datasetsPrefix } from './layout.js';
import { mapLimit } from './map-limit.js';
import { journalRecord, parseManifest, parseRecord } from './records.js';

export const DEFAULT_GC_GRACE_MS = 24 * 60 * 60 * 1000;
const READ_PARALLEL = 16;
const DELETE_PARALLEL = 16;

export interface GcOptions {
  /** Blobs younger than this stay, named or not. */
  graceMs: number;
  /** Report what would go, remove nothing. */
  dryRun: boolean;
  /** Only this provider (default: all). */
  providerId?: string;
  now?: () => number;
}

export interface GcStoreResult {
  /** The providers this store serves (two providers may point at one bucket and prefix). */
  providerIds: string[];
  location: string;
  blobs: number;
  blobBytes: number;
  /** Named by some journal or manifest. */
  referenced: number;
  /** Not named, but younger than the grace period. */
  young: number;
  /** Removed (or, with dryRun, to be removed). */
  removed: Array<{ sha256: string; bytes: number }>;
  removedBytes: number;
}

export async function collectGarbage(catalog: Catalog, opts: GcOptions): Promise<GcStoreResult[]> {
  const providers = opts.providerId ? [catalog.provider(opts.providerId)] : catalog.providers;
  const byLocation = new Map<string, string[]>();
  for (const p of providers) {
    const location = catalog.store(p.id).location;
    byLocation.set(location, [...(byLocation.get(location) ?? []), p.id]);
  }
  const results: GcStoreResult[] = [];
  for (const providerIds of byLocation.values()) results.push(await collectStore(catalog, providerIds, opts));
  return results;
}

async function collectStore(catalog: Catalog, providerIds: string[], opts: GcOptions): Promise<GcStoreResult> {
  const store = catalog.store(providerIds[0]!);
  const team = catalog.teamId;
  // 1. The blobs, before any reference is read: a blob uploaded after this listing is not a candidate.
  const blobs: Array<{ key: string; sha256: string; bytes: number; modifiedMs: number }> = [];
  for await (const page of store.list(blobsPrefix(team))) {
    for (const o of page.objects) blobs.push({ key: o.key, sha256: o.key.slice(o.key.lastIndexOf('/') + 1), bytes: o.size, modifiedMs: o.lastModified.getTime() });
  }
  // 2. Every name any journal batch or manifest gives. One that cannot be read stops gc: better nothing
  // removed than a blob some version needs.
  const refKeys: string[] = [];
  for await (const page of store.list(datasetsPrefix(team))) {
    for (const o of page.objects) if (/\/versions\/[^/]+\/(journal|manifests)\/[^/]+\.json$/.test(o.key)) refKeys.push(o.key);
  }
  const named = new Set<string>();
  await mapLimit(refKeys, READ_PARALLEL, async (key) => {
    const bytes = await store.read(key);
    const where = `${store.location} ${key}`;
    const entries = key.includes('/journal/') ? parseRecord(journalRecord, bytes, where).entries : parseManifest(bytes, where).files;
    for (const e of entries) if ('sha256' in e) named.add(e.sha256);
  });
  // 3. Unnamed and old enough.
  const now = (opts.now ?? Date.now)();
  let referenced = 0;
  let young = 0;
  const doomed: typeof blobs = [];
  for (const b of blobs) {
    if (named.has(b.sha256)) referenced++;
    else if (now - b.modifiedMs < opts.graceMs) young++;
    else doomed.push(b);
  }
  if (!opts.dryRun) await mapLimit(doomed, DELETE_PARALLEL, (b) => store.delete(b.key));
  return {
    providerIds,
    location: store.location,
    blobs: blobs.length,
    blobBytes: blobs.reduce((n, b) => n + b.bytes, 0),
    referenced,
    young,
    removed: doomed.map((b) => ({ sha256: b.sha256, bytes: b.bytes })),
    removedBytes: doomed.reduce((n, b) => n + b.bytes, 0),
  };
}
