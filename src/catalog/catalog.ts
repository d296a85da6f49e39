// The team dataset catalog, kept entirely as objects in the team's storage providers (see layout.ts):
// datasets, versions, tags and manifests. No server and no read-modify-write of shared objects:
//  - records that must exist once (dataset, version, commit) are written create-only (If-None-Match: *);
//  - file entries are appended as immutable journal batches, so concurrent writers never overwrite each other;
//  - a commit seals the version, folds the journal into one manifest object (named by its hash), then
//    creates committed.json; a version is committed exactly when that record exists.
import { createHash, randomBytes } from 'node:crypto';
import type { StorageProvider } from '../config/config-file.js';
import { isStorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { CatalogError, isCatalogError } from './errors.js';
import { DATASET_ID, newDatasetId, newVersionId, TAG_NAME, VERSION_ID } from './ids.js';
import * as L from './layout.js';
import { comparePaths, isUnder } from './paths.js';
import { mapLimit } from './map-limit.js';
import { openStore } from './providers.js';
import { removeTree } from './removal.js';
import {
  committedRecord,
  datasetRecord,
  journalRecord,
  parseManifest,
  parseRecord,
  tagRecord,
  versionRecord,
  type CommittedRecord,
  type DatasetRecord,
  type JournalRecord,
  type Manifest,
  type ManifestEntry,
  type VersionRecord,
} from './records.js';
import { formatRef, parseRef, type DatasetRef } from './refs.js';

export type VersionState = 'uncommitted' | 'committing' | 'committed';

export interface VersionInfo extends VersionRecord {
  state: VersionState;
  committedAt?: string;
  fileCount?: number;
  bytes?: number;
  tags: string[];
  /** This is the version `latest` names. */
  latest: boolean;
}


export interface DatasetHandle {
  record: DatasetRecord;
  provider: StorageProvider;
  store: ObjectStore;
}

/** What identifies a committed version without asking storage: enough to find its manifest and blobs again. */
export interface KnownVersion {
  datasetId: string;
  versionId: string;
  providerId: string;
  committed: CommittedRecord;
}

/** A committed version, ready to mount: its manifest and where each file's bytes live. */
export interface ResolvedVersion {
  datasetId: string;
  versionId: string;
  committed: CommittedRecord;
  manifest: Manifest;
  /** The store holding the dataset (and its blobs). */
  store: ObjectStore;
  provider: StorageProvider;
  /** The blob key of a manifest entry in `store`. */
  blobKey(entry: Pick<ManifestEntry, 'sha256'>): string;
}

export interface CatalogOptions {
  teamId: string;
  /** All providers, including the managed one. */
  providers: StorageProvider[];
  managedProviderId: string;
  env?: NodeJS.ProcessEnv;
  /** How to open a provider's store (tests may wrap stores to count requests). */
  openStore?: (p: StorageProvider) => ObjectStore;
}

const JSON_TYPE = 'application/json';
const READ_PARALLEL = 16;
/** Entries per journal batch when a new version copies another's files: manifest entries, no data. */
const COPY_BATCH = 10_000;

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A path that is both a file and the parent directory of another file, if any. */
export function findFileDirClash(paths: Iterable<string>): { file: string; under: string } | undefined {
  const all = new Set(paths);
  for (const p of all) {
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
      const dir = p.slice(0, i);
      if (all.has(dir)) return { file: dir, under: p };
    }
  }
  return undefined;
}

export class Catalog {
  readonly teamId: string;
  private readonly stores = new Map<string, ObjectStore>();
  private readonly datasetCache = new Map<string, Promise<DatasetHandle>>();

  constructor(private readonly opts: CatalogOptions) {
    this.teamId = opts.teamId;
  }

  get providers(): readonly StorageProvider[] {
    return this.opts.providers;
  }

  provider(id: string): StorageProvider {
    const p = this.opts.providers.find((x) => x.id === id);
    if (!p) throw new CatalogError('NotFound', `unknown storage provider "${id}": see \`gradient storageProviders list\``);
    return p;
  }

  store(providerId: string): ObjectStore {
    let s = this.stores.get(providerId);
    if (!s) {
      const p = this.provider(providerId);
      s = this.opts.openStore ? this.opts.openStore(p) : openStore(p, this.opts.env);
      this.stores.set(providerId, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.stores.values()) s.close?.();
    this.stores.clear();
  }

  // ---- records ----------------------------------------------------------------------------------

  private async readRecord<T>(store: ObjectStore, key: string, schema: Parameters<typeof parseRecord<T>>[0]): Promise<T | undefined> {
    try {
      return parseRecord(schema, await store.read(key), `${store.location} ${key}`);
    } catch (err) {
      if (isStorageError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  private async exists(store: ObjectStore, key: string): Promise<boolean> {
    try {
      await store.head(key);
      return true;
    } catch (err) {
      if (isStorageError(err, 'NotFound')) return false;
      throw err;
    }
  }

  private async *listAll(store: ObjectStore, prefix: string, delimiter?: string) {
    for await (const page of store.list(prefix, { delimiter })) yield page;
  }

  // ---- datasets ---------------------------------------------------------------------------------

  async createDataset(input: { name: string; description?: string; storageProviderId?: string }): Promise<DatasetRecord> {
    const name = input.name.trim();
    if (name === '') throw new CatalogError('BadInput', 'a dataset needs a name: --name <name>');
    const providerId = input.storageProviderId ?? this.opts.managedProviderId;
    const store = this.store(providerId);
    const record: DatasetRecord = {
      id: newDatasetId(),
      name,
      description: input.description ?? '',
      storageProviderId: providerId,
      createdAt: new Date().toISOString(),
    };
    await store.write(L.datasetKey(this.teamId, record.id), json(record), { ifNoneMatch: '*', contentType: JSON_TYPE });
    this.datasetCache.set(record.id, Promise.resolve({ record, provider: this.provider(providerId), store }));
    return record;
  }

  /** Datasets in every provider; a provider that fails is reported in `warnings`, not fatal. */
  async listDatasets(): Promise<{ datasets: DatasetRecord[]; warnings: string[] }> {
    const warnings: string[] = [];
    const perProvider = await Promise.all(
      this.opts.providers.map(async (p) => {
        try {
          return await this.datasetsIn(p.id);
        } catch (err) {
          warnings.push(`storage provider "${p.name}" (${p.id}): ${(err as Error).message}`);
          return [];
        }
      }),
    );
    const datasets = perProvider.flat().sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return { datasets, warnings };
  }

  /** The datasets kept in one provider; its failure is thrown. */
  async datasetsIn(providerId: string): Promise<DatasetRecord[]> {
    const store = this.store(providerId);
    const prefix = L.datasetsPrefix(this.teamId);
    const ids: string[] = [];
    for await (const page of this.listAll(store, prefix, '/')) ids.push(...page.prefixes.map((x) => x.slice(prefix.length, -1)));
    const records = await mapLimit(ids, READ_PARALLEL, (id) => this.readRecord(store, L.datasetKey(this.teamId, id), datasetRecord));
    return records.filter((r): r is DatasetRecord => r !== undefined);
  }

  /** Finds a dataset in whichever provider holds it. */
  getDataset(datasetId: string): Promise<DatasetHandle> {
    let found = this.datasetCache.get(datasetId);
    if (!found) {
      found = this.findDataset(datasetId);
      found.catch(() => this.datasetCache.delete(datasetId));
      this.datasetCache.set(datasetId, found);
    }
    return found;
  }

  /**
   * The id of the dataset named by `nameOrId`: an id as is, else the one dataset with that name. A name two
   * datasets share is an error listing their ids.
   */
  async datasetIdFor(nameOrId: string): Promise<string> {
    // Not found as an id (or some provider failed to say): perhaps a name, which the providers that answer can tell.
    let asId: unknown;
    if (DATASET_ID.test(nameOrId)) {
      try {
        await this.getDataset(nameOrId);
        return nameOrId;
      } catch (err) {
        asId = err;
      }
    }
    const { datasets, warnings } = await this.listDatasets();
    const named = datasets.filter((d) => d.name === nameOrId);
    if (named.length === 1) return named[0]!.id;
    if (named.length > 1) {
      throw new CatalogError('BadInput', `${named.length} datasets are named "${nameOrId}" (${named.map((d) => d.id).join(', ')}): name one by its id`);
    }
    if (asId !== undefined && !isCatalogError(asId, 'NotFound')) throw asId;
    const unsure = warnings.length > 0 ? ` (and ${warnings.length === 1 ? 'a storage provider' : 'some storage providers'} did not answer: ${warnings.join('; ')})` : '';
    throw new CatalogError('NotFound', `dataset "${nameOrId}" not found: no dataset has this id or name${unsure}; see \`gradient datasets list\``);
  }

  private async findDataset(datasetId: string): Promise<DatasetHandle> {
    const errors: unknown[] = [];
    for (const provider of this.opts.providers) {
      try {
        const store = this.store(provider.id);
        const record = await this.readRecord(store, L.datasetKey(this.teamId, datasetId), datasetRecord);
        if (record) return { record, provider, store };
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
    throw new CatalogError('NotFound', `dataset "${datasetId}" not found in any storage provider: see \`gradient datasets list\``);
  }

  // ---- versions ---------------------------------------------------------------------------------

  /**
   * A new uncommitted version; with `from`, it starts with that version's files: its manifest (or journal)
   * copied into the new version's journal, no data copied, so the source must be in the same provider.
   */
  async createVersion(datasetId: string, message = '', opts: { from?: DatasetRef } = {}): Promise<VersionRecord & { fileCount: number }> {
    const { store, provider } = await this.getDataset(datasetId);
    let files: ManifestEntry[] = [];
    let from: string | undefined;
    if (opts.from) {
      const source = await this.getDataset(opts.from.datasetId);
      if (source.provider.id !== provider.id) {
        throw new CatalogError(
          'BadInput',
          `a version can start from a version in the same storage provider only (it shares the file contents): ${opts.from.datasetId} is in "${source.provider.name}", ${datasetId} in "${provider.name}"`,
        );
      }
      const listed = await this.listFiles({ ...opts.from, path: '' });
      files = listed.files;
      from = formatRef(listed.datasetId, listed.versionId);
    }
    const record = await this.createVersionRecord(store, datasetId, message, from);
    try {
      for (let i = 0; i < files.length; i += COPY_BATCH) await this.appendJournal(datasetId, record.id, files.slice(i, i + COPY_BATCH));
    } catch (err) {
      // Half a copy is not the version asked for: remove it (best effort) and report the failure.
      await removeTree(store, L.versionRoot(this.teamId, datasetId, record.id), L.versionKey(this.teamId, datasetId, record.id)).catch(() => undefined);
      throw err;
    }
    return { ...record, fileCount: files.length };
  }

  private async createVersionRecord(store: ObjectStore, datasetId: string, message: string, from: string | undefined): Promise<VersionRecord> {
    for (let attempt = 0; ; attempt++) {
      const record: VersionRecord = { id: newVersionId(), datasetId, message, createdAt: new Date().toISOString(), ...(from ? { from } : {}) };
      try {
        await store.write(L.versionKey(this.teamId, datasetId, record.id), json(record), {
          ifNoneMatch: '*',
          contentType: JSON_TYPE,
        });
        return record;
      } catch (err) {
        // A random id collided with another client's: draw again.
        if (!isStorageError(err, 'PreconditionFailed') || attempt >= 3) throw err;
      }
    }
  }

  async getVersion(datasetId: string, versionId: string): Promise<VersionRecord> {
    const { store } = await this.getDataset(datasetId);
    const rec = VERSION_ID.test(versionId)
      ? await this.readRecord(store, L.versionKey(this.teamId, datasetId, versionId), versionRecord)
      : undefined;
    if (!rec) {
      throw new CatalogError(
        'NotFound',
        `dataset version ${formatRef(datasetId, versionId)} not found: see \`gradient datasets versions list --id ${datasetId}\``,
      );
    }
    return rec;
  }

  async getCommitted(datasetId: string, versionId: string): Promise<CommittedRecord | undefined> {
    const { store } = await this.getDataset(datasetId);
    return this.readRecord(store, L.committedKey(this.teamId, datasetId, versionId), committedRecord);
  }

  async versionState(datasetId: string, versionId: string): Promise<VersionState> {
    const { store } = await this.getDataset(datasetId);
    if (await this.getCommitted(datasetId, versionId)) return 'committed';
    return (await this.exists(store, L.sealedKey(this.teamId, datasetId, versionId))) ? 'committing' : 'uncommitted';
  }

  async listVersions(datasetId: string): Promise<VersionInfo[]> {
    const { store } = await this.getDataset(datasetId);
    const prefix = L.versionsPrefix(this.teamId, datasetId);
    const ids: string[] = [];
    for await (const page of this.listAll(store, prefix, '/')) ids.push(...page.prefixes.map((p) => p.slice(prefix.length, -1)));
    const [tags, latest] = await Promise.all([this.listTags(datasetId), this.latestVersionId(datasetId)]);
    const infos = await mapLimit(ids, READ_PARALLEL, async (id): Promise<VersionInfo | undefined> => {
      const rec = await this.readRecord(store, L.versionKey(this.teamId, datasetId, id), versionRecord);
      if (!rec) return undefined;
      const committed = await this.getCommitted(datasetId, id);
      const state: VersionState = committed
        ? 'committed'
        : (await this.exists(store, L.sealedKey(this.teamId, datasetId, id)))
          ? 'committing'
          : 'uncommitted';
      return {
        ...rec,
        state,
        committedAt: committed?.committedAt,
        fileCount: committed?.fileCount,
        bytes: committed?.bytes,
        tags: tags.filter((t) => t.version === id).map((t) => t.tag),
        latest: id === latest,
      };
    });
    return infos.filter((v): v is VersionInfo => v !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** The newest committed version, or undefined if none is committed yet. */
  async latestVersionId(datasetId: string): Promise<string | undefined> {
    const { store } = await this.getDataset(datasetId);
    let last: string | undefined;
    for await (const page of this.listAll(store, L.commitsPrefix(this.teamId, datasetId))) {
      for (const o of page.objects) last = o.key;
    }
    return last?.slice(last.lastIndexOf('-') + 1);
  }

  /** A version id for a version id, tag or "latest". */
  async resolveVersionId(datasetId: string, version: string): Promise<string> {
    if (version === 'latest') {
      const latest = await this.latestVersionId(datasetId);
      if (!latest) throw new CatalogError('NotFound', `dataset "${datasetId}" has no committed version yet, so no "latest"`);
      return latest;
    }
    const { store } = await this.getDataset(datasetId);
    if (VERSION_ID.test(version) && (await this.exists(store, L.versionKey(this.teamId, datasetId, version)))) return version;
    const tag = TAG_NAME.test(version) ? await this.readRecord(store, L.tagKey(this.teamId, datasetId, version), tagRecord) : undefined;
    if (tag) return tag.version;
    throw new CatalogError(
      'NotFound',
      `dataset version ${formatRef(datasetId, version)} not found (no such version id or tag): see \`gradient datasets versions list --id ${datasetId}\``,
    );
  }

  /** `<dataset-id>:<version|tag|latest>` → a committed version's manifest and blob locations. */
  async resolve(ref: string | DatasetRef): Promise<ResolvedVersion> {
    const r = typeof ref === 'string' ? parseRef(ref) : ref;
    const handle = await this.getDataset(r.datasetId);
    const versionId = await this.resolveVersionId(r.datasetId, r.version);
    const committed = await this.getCommitted(r.datasetId, versionId);
    if (!committed) {
      throw new CatalogError(
        'NotCommitted',
        `dataset version ${formatRef(r.datasetId, versionId)} is not committed yet: commit it with \`gradient datasets versions commit --id ${formatRef(r.datasetId, versionId)}\``,
      );
    }
    const manifest = await this.readManifest(handle.store, r.datasetId, versionId, committed.manifestSha256);
    const teamId = this.teamId;
    return {
      datasetId: r.datasetId,
      versionId,
      committed,
      manifest,
      store: handle.store,
      provider: handle.provider,
      blobKey: (entry) => L.blobKey(teamId, entry.sha256),
    };
  }

  /** Where a committed version's manifest lives: its provider's store and the key (named by its hash). */
  manifestLocation(known: KnownVersion): { store: ObjectStore; key: string } {
    return { store: this.store(known.providerId), key: L.manifestKey(this.teamId, known.datasetId, known.versionId, known.committed.manifestSha256) };
  }

  /**
   * A committed version as an earlier resolve() answered it, built without a request: for a daemon whose
   * storage is unreachable (a committed version never changes, so its manifest and blobs are still right).
   * The manifest's bytes, from wherever they were kept, are checked against its hash.
   */
  knownVersion(known: KnownVersion, manifestBytes: Buffer): ResolvedVersion {
    const { store, key } = this.manifestLocation(known);
    if (createHash('sha256').update(manifestBytes).digest('hex') !== known.committed.manifestSha256) {
      throw new CatalogError('Corrupt', `the kept manifest of ${formatRef(known.datasetId, known.versionId)} does not match its hash`);
    }
    const teamId = this.teamId;
    return {
      datasetId: known.datasetId,
      versionId: known.versionId,
      committed: known.committed,
      manifest: parseManifest(manifestBytes, `${store.location} ${key}`),
      store,
      provider: this.provider(known.providerId),
      blobKey: (entry) => L.blobKey(teamId, entry.sha256),
    };
  }

  private async readManifest(store: ObjectStore, ds: string, v: string, sha: string): Promise<Manifest> {
    const key = L.manifestKey(this.teamId, ds, v, sha);
    const bytes = await store.read(key);
    if (createHash('sha256').update(bytes).digest('hex') !== sha) {
      throw new CatalogError('Corrupt', `manifest of ${formatRef(ds, v)} (${store.location} ${key}) does not match its hash`);
    }
    return parseManifest(bytes, `${store.location} ${key}`);
  }

  // ---- files ------------------------------------------------------------------------------------

  /** Refuses unless the version exists and is still open for writes. */
  async assertWritable(datasetId: string, versionId: string): Promise<void> {
    await this.getVersion(datasetId, versionId);
    const state = await this.versionState(datasetId, versionId);
    if (state !== 'uncommitted') {
      throw new CatalogError(
        'Committed',
        `dataset version ${formatRef(datasetId, versionId)} is ${state} and cannot be changed: create a new version with \`gradient datasets versions create --id ${datasetId}\``,
      );
    }
  }

  /** The current files of an uncommitted version: its journal replayed in order. */
  async journalEntries(datasetId: string, versionId: string): Promise<Map<string, ManifestEntry>> {
    const { store } = await this.getDataset(datasetId);
    const keys: string[] = [];
    for await (const page of this.listAll(store, L.journalPrefix(this.teamId, datasetId, versionId))) {
      keys.push(...page.objects.map((o) => o.key));
    }
    keys.sort(comparePaths);
    const batches = await mapLimit(keys, READ_PARALLEL, async (key) =>
      parseRecord(journalRecord, await store.read(key), `${store.location} ${key}`),
    );
    const files = new Map<string, ManifestEntry>();
    for (const batch of batches) {
      for (const e of batch.entries) {
        if ('deleted' in e) {
          for (const p of [...files.keys()]) if (isUnder(p, e.path)) files.delete(p);
        } else {
          files.set(e.path, e);
        }
      }
    }
    return files;
  }

  /** Appends one immutable batch of entries (puts and deletes) to a version's journal. */
  async appendJournal(datasetId: string, versionId: string, entries: JournalRecord['entries']): Promise<void> {
    if (entries.length === 0) return;
    const { store } = await this.getDataset(datasetId);
    const record: JournalRecord = { format: 1, writtenAt: new Date().toISOString(), entries };
    const at = Date.now();
    const key = L.journalKey(this.teamId, datasetId, versionId, at, randomBytes(6).toString('hex'));
    await store.write(key, json(record), { ifNoneMatch: '*', contentType: JSON_TYPE });
    // Replay follows key order. Once this returns, the next batch (from this catalog, another one, or
    // another process on this machine) must sort after this one: it must not share this millisecond.
    while (Date.now() === at) await new Promise((r) => setTimeout(r, 1));
  }

  /**
   * After a writer's last journal batch: if a commit started meanwhile, the writer's entries may or may not
   * be in the manifest. Waits for that commit and fails unless every entry made it in.
   */
  async confirmWrites(datasetId: string, versionId: string, written: ManifestEntry[], timeoutMs = 60_000): Promise<void> {
    const { store } = await this.getDataset(datasetId);
    if (!(await this.exists(store, L.sealedKey(this.teamId, datasetId, versionId)))) return;
    const deadline = Date.now() + timeoutMs;
    let committed = await this.getCommitted(datasetId, versionId);
    while (!committed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      committed = await this.getCommitted(datasetId, versionId);
    }
    const ref = formatRef(datasetId, versionId);
    if (!committed) {
      throw new CatalogError('Conflict', `dataset version ${ref} is being committed by another client: check \`gradient datasets files list --id ${ref}\``);
    }
    const manifest = await this.readManifest(store, datasetId, versionId, committed.manifestSha256);
    const byPath = new Map(manifest.files.map((f) => [f.path, f.sha256]));
    const missing = written.filter((e) => byPath.get(e.path) !== e.sha256);
    if (missing.length > 0) {
      throw new CatalogError(
        'Conflict',
        `dataset version ${ref} was committed while files were being put; ${missing.length} ${missing.length === 1 ? 'file' : 'files'} did not make it in (e.g. "${missing[0]!.path}"): put them into a new version`,
      );
    }
  }

  /** Files of a version (committed: its manifest; uncommitted: its journal), under `prefix`. */
  async listFiles(ref: string | DatasetRef): Promise<{ datasetId: string; versionId: string; files: ManifestEntry[] }> {
    const r = typeof ref === 'string' ? parseRef(ref, { allowPath: true }) : ref;
    const versionId = await this.resolveVersionId(r.datasetId, r.version);
    const committed = await this.getCommitted(r.datasetId, versionId);
    let files: ManifestEntry[];
    if (committed) {
      const { store } = await this.getDataset(r.datasetId);
      files = (await this.readManifest(store, r.datasetId, versionId, committed.manifestSha256)).files;
    } else {
      files = [...(await this.journalEntries(r.datasetId, versionId)).values()].sort((a, b) => comparePaths(a.path, b.path));
    }
    return { datasetId: r.datasetId, versionId, files: files.filter((f) => isUnder(f.path, r.path)) };
  }

  /** Removes a file, or a directory and everything under it, from an uncommitted version. */
  async deleteFiles(ref: string | DatasetRef): Promise<number> {
    const r = typeof ref === 'string' ? parseRef(ref, { allowPath: true }) : ref;
    if (r.path === '') throw new CatalogError('BadInput', `name the file or directory to delete: --id ${r.datasetId}:${r.version}/<path>`);
    await this.assertWritable(r.datasetId, r.version);
    const current = await this.journalEntries(r.datasetId, r.version);
    const n = [...current.keys()].filter((p) => isUnder(p, r.path)).length;
    if (n === 0) throw new CatalogError('NotFound', `no file "${r.path}" in dataset version ${formatRef(r.datasetId, r.version)}`);
    await this.appendJournal(r.datasetId, r.version, [{ path: r.path, deleted: true }]);
    return n;
  }

  // ---- commit -----------------------------------------------------------------------------------

  /** Commits a version; one without files is refused unless `allowEmpty` (an empty commit is usually a mistake). */
  async commitVersion(datasetId: string, versionId: string, opts: { allowEmpty?: boolean } = {}): Promise<CommittedRecord> {
    const { store } = await this.getDataset(datasetId);
    await this.getVersion(datasetId, versionId);
    const ref = formatRef(datasetId, versionId);
    if (await this.getCommitted(datasetId, versionId)) {
      throw new CatalogError('Committed', `dataset version ${ref} is already committed`);
    }
    // 1. Seal: writers that finish after this point re-check that their files made it in.
    await store.write(L.sealedKey(this.teamId, datasetId, versionId), json({ sealedAt: new Date().toISOString() }), {
      contentType: JSON_TYPE,
    });
    // 2. Fold the journal into one manifest, refusing trees where a path is both a file and a directory.
    const entries = [...(await this.journalEntries(datasetId, versionId)).values()].sort((a, b) => comparePaths(a.path, b.path));
    if (entries.length === 0 && !opts.allowEmpty) {
      await store.delete(L.sealedKey(this.teamId, datasetId, versionId));
      throw new CatalogError(
        'Refused',
        `dataset version ${ref} has no files: put some with \`gradient datasets files put --id ${ref}\`, or commit it empty with --allow-empty`,
      );
    }
    const clash = findFileDirClash(entries.map((e) => e.path));
    if (clash) {
      await store.delete(L.sealedKey(this.teamId, datasetId, versionId));
      throw new CatalogError(
        'Conflict',
        `cannot commit ${ref}: "${clash.file}" is a file and also a directory (of "${clash.under}"); delete one with \`gradient datasets files delete\``,
      );
    }
    const manifest: Manifest = { format: 1, datasetId, versionId, files: entries };
    const bytes = json(manifest);
    const sha = createHash('sha256').update(bytes).digest('hex');
    await store.write(L.manifestKey(this.teamId, datasetId, versionId, sha), bytes, { contentType: JSON_TYPE });
    // 3. The commit point: create-only, so exactly one committer wins.
    const committedAt = new Date();
    const record: CommittedRecord = {
      committedAt: committedAt.toISOString(),
      manifestSha256: sha,
      fileCount: entries.length,
      bytes: entries.reduce((n, e) => n + e.size, 0),
    };
    try {
      await store.write(L.committedKey(this.teamId, datasetId, versionId), json(record), { ifNoneMatch: '*', contentType: JSON_TYPE });
    } catch (err) {
      if (isStorageError(err, 'PreconditionFailed')) {
        throw new CatalogError('Committed', `dataset version ${ref} was committed by another client meanwhile`);
      }
      throw err;
    }
    // 4. Index for "latest" (idempotent; a crash before it only delays "latest", never breaks the version).
    await store.write(L.commitMarkerKey(this.teamId, datasetId, versionId, committedAt), Buffer.alloc(0));
    return record;
  }

  /** Forgets what it knows of a dataset that was deleted (delete.ts). */
  forget(datasetId: string): void {
    this.datasetCache.delete(datasetId);
  }

  // ---- tags -------------------------------------------------------------------------------------

  async setTag(datasetId: string, versionRef: string, tag: string): Promise<string> {
    if (!TAG_NAME.test(tag) || tag === 'latest' || VERSION_ID.test(tag)) {
      throw new CatalogError(
        'BadInput',
        `bad tag name "${tag}": use letters, digits, ".", "_" or "-" (max 63); "latest" and 7-character version-like names are reserved`,
      );
    }
    const { store } = await this.getDataset(datasetId);
    const versionId = await this.resolveVersionId(datasetId, versionRef);
    if (!(await this.getCommitted(datasetId, versionId))) {
      throw new CatalogError('NotCommitted', `dataset version ${formatRef(datasetId, versionId)} is not committed: only committed versions can be tagged`);
    }
    await store.write(L.tagKey(this.teamId, datasetId, tag), json({ version: versionId, updatedAt: new Date().toISOString() }), {
      contentType: JSON_TYPE,
    });
    return versionId;
  }

  async deleteTag(datasetId: string, tag: string): Promise<void> {
    const { store } = await this.getDataset(datasetId);
    const key = L.tagKey(this.teamId, datasetId, tag);
    if (!TAG_NAME.test(tag) || !(await this.exists(store, key))) {
      throw new CatalogError('NotFound', `dataset "${datasetId}" has no tag "${tag}"`);
    }
    await store.delete(key);
  }

  async listTags(datasetId: string): Promise<Array<{ tag: string; version: string; updatedAt: string }>> {
    const { store } = await this.getDataset(datasetId);
    const prefix = L.tagsPrefix(this.teamId, datasetId);
    const keys: string[] = [];
    for await (const page of this.listAll(store, prefix)) keys.push(...page.objects.map((o) => o.key));
    const tags = await mapLimit(keys, READ_PARALLEL, async (key) => {
      const rec = await this.readRecord(store, key, tagRecord);
      return rec ? { tag: key.slice(prefix.length, -'.json'.length), ...rec } : undefined;
    });
    return tags.filter((t): t is NonNullable<typeof t> => t !== undefined);
  }
}
