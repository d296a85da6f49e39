// Working offline: every dataset ref the daemon resolves is remembered (the version it named, its provider,
// its commit record) in the cache directory and, when configured, in the shared tier; the version's manifest
// goes through the cache like any content, so it lands in the local cache and the tier too. When the
// catalog's storage is unreachable, a ref resolves to its last known answer (from here, else from the tier,
// which a fresh node shares) and the manifest comes from the cache or the tier, checked against its hash:
// committed versions never change, so every one whose bytes are kept stays readable. The answer says it is
// a last known one (status shows it); the next apply with storage back resolves afresh.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Cache } from '../cache/index.js';
import type { Catalog, KnownVersion, ResolvedVersion } from '../catalog/catalog.js';
import { committedRecord } from '../catalog/records.js';
import { isStorageError } from '../storage/errors.js';
import type { Logger } from './logger.js';
import type { DatasetCatalog } from './resolvers.js';

const knownAnswer = z.object({
  ref: z.string(),
  datasetId: z.string(),
  versionId: z.string(),
  providerId: z.string(),
  committed: committedRecord,
  manifestBytes: z.number().int().nonnegative(),
  learntAt: z.string(),
});
type KnownAnswer = z.infer<typeof knownAnswer>;

/** A resolution; `lastKnown` (when it was learnt) when storage was unreachable and a remembered answer served. */
export type MaybeKnownVersion = ResolvedVersion & { lastKnown?: string };

/** Storage that did not answer (as opposed to an answer: not found, refused). */
export function isUnreachable(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (isStorageError(e)) return e.code === 'Unreachable' || e.code === 'Throttled' || e.code === 'Io';
  }
  return false;
}

export class RememberingCatalog implements DatasetCatalog<MaybeKnownVersion> {
  private readonly dir: string;

  constructor(
    private readonly catalog: Catalog,
    private readonly teamId: string,
    private readonly cache: Cache,
    private readonly log: Logger,
  ) {
    this.dir = path.join(cache.dir, 'known-refs');
  }

  async resolve(ref: string): Promise<MaybeKnownVersion> {
    let version: ResolvedVersion;
    try {
      version = await this.catalog.resolve(ref);
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      const known = await this.recall(ref);
      if (!known) throw err;
      const bytes = await this.manifest(known).catch(() => undefined);
      if (!bytes) throw err;
      this.log.warn({ ref, version: known.versionId, learntAt: known.learntAt }, `${(err as Error).message}: serving the last known answer`);
      return { ...this.catalog.knownVersion(known, bytes), lastKnown: known.learntAt };
    }
    // In the background: the mount does not wait for the manifest to be kept.
    void this.remember(ref, version).catch((err: unknown) =>
      this.log.warn({ ref, err: (err as Error).message }, 'could not keep this answer for offline use'),
    );
    return version;
  }

  private keyOf(ref: string): string {
    return createHash('sha256').update(`${this.teamId}\n${ref}`).digest('hex');
  }

  private async remember(ref: string, v: ResolvedVersion): Promise<void> {
    const known: KnownVersion = { datasetId: v.datasetId, versionId: v.versionId, providerId: v.provider.id, committed: v.committed };
    const { store, key } = this.catalog.manifestLocation(known);
    const manifestBytes = (await store.head(key)).size;
    const answer: KnownAnswer = { ref, ...known, manifestBytes, learntAt: new Date().toISOString() };
    // The manifest through the cache: kept locally, and sent up to the tier like any content fetched.
    const h = await this.cache.open({ kind: 'content', sha256: known.committed.manifestSha256 }, { store, key, size: manifestBytes });
    try {
      await h.fetchAll();
      await h.whenComplete();
    } finally {
      await h.close();
    }
    const body = JSON.stringify(answer);
    const name = `${this.keyOf(ref)}.json`;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.dir, `.${name}.${process.pid}`);
    await writeFile(tmp, body, { mode: 0o600 });
    await rename(tmp, path.join(this.dir, name));
    await this.cache.tier?.store.write(`refs/${name}`, body, { contentType: 'application/json' }).catch(() => undefined);
  }

  /** The last known answer: this node's, else the tier's (shared by every node). */
  private async recall(ref: string): Promise<KnownAnswer | undefined> {
    const name = `${this.keyOf(ref)}.json`;
    const tier = this.cache.tier?.store;
    const sources = [() => readFile(path.join(this.dir, name)), () => (tier ? tier.read(`refs/${name}`) : Promise.resolve(undefined))];
    for (const read of sources) {
      const bytes = await read().catch(() => undefined);
      if (!bytes) continue;
      try {
        const answer = knownAnswer.parse(JSON.parse(bytes.toString('utf8')));
        if (answer.ref === ref) return answer;
      } catch {
        // unreadable: try the next source
      }
    }
    return undefined;
  }

  /** The version's manifest bytes through the cache (local, then the tier, then its store). */
  private async manifest(known: KnownAnswer): Promise<Buffer> {
    const { store, key } = this.catalog.manifestLocation(known);
    const h = await this.cache.open({ kind: 'content', sha256: known.committed.manifestSha256 }, { store, key, size: known.manifestBytes });
    try {
      return known.manifestBytes === 0 ? Buffer.alloc(0) : Buffer.from(await h.read(0, known.manifestBytes));
    } finally {
      await h.close();
    }
  }
}
