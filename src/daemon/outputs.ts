// Dataset versions as outputs: settings entries whose `version` names an uncommitted version (or `new`, which
// creates one at mount, optionally `from` another's files) are served read-write by a bucket view over a
// VersionStore (src/catalog/version-store.ts). This module resolves such entries, remembers the versions it
// created (a re-apply must not create another), commits a served version on request (`gradient datasets
// versions commit` asks the daemon first) or at a clean stop (`commit: onExit`), and reports each output
// for `gradient status`.
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { Catalog } from '../catalog/catalog.js';
import { isCatalogError } from '../catalog/errors.js';
import type { CommittedRecord } from '../catalog/records.js';
import { formatRef, parseRef } from '../catalog/refs.js';
import { VersionStore } from '../catalog/version-store.js';
import type { BucketView } from '../fs/bucket/index.js';
import type { DatasetEntry } from '../settings/schema.js';
import type { Logger } from './logger.js';
import { EntryError, type Resolution } from './reconciler.js';

/** What an output entry resolves to: the version's store, shared by every view of that version. */
export interface OutputPayload {
  kind: 'output';
  store: VersionStore;
}

export interface OutputStatus {
  /** The /datasets entry. */
  mount: string;
  /** `<dataset>:<version>`. */
  version: string;
  filesWritten: number;
  bytesWritten: number;
  /** Files in the version as this daemon sees it. */
  files: number;
  pendingUploads: number;
  committed: boolean;
  commitOnExit: boolean;
}

interface Output {
  store: VersionStore;
  /** Views serving it, by entry name. */
  views: Map<string, BucketView>;
  commitOnExit: boolean;
  committed: CommittedRecord | undefined;
  /** A commit under way: a second request waits for it. */
  committing: Promise<CommittedRecord> | undefined;
}

/** An entry is an output when it asks to be one (`new`, `from`, `commit`) or names an uncommitted version. */
export function asksForOutput(entry: DatasetEntry): boolean {
  return entry.version === 'new' || entry.from !== undefined || entry.commit !== undefined;
}

export interface OutputsOptions {
  catalog: Catalog;
  /** How long a commit waits for pending uploads before it refuses. */
  settleTimeoutMs: number;
  /**
   * Where the versions made for `version: new` entries are remembered (the FUSE session's state directory):
   * a serving process that replaces a crashed one on the same session keeps writing the same versions.
   */
  createdFile?: string;
  log?: Logger;
}

export class Outputs {
  private readonly byVersion = new Map<string, Output>();
  /** Versions made for `version: new` entries, by entry name and what it asked for. */
  private readonly created = new Map<string, string>();

  /** Whether `createdFile` was read: at the first resolution, not at construction (an upgrade's standby loads early). */
  private loadedCreated = false;

  constructor(private readonly opts: OutputsOptions) {}

  private loadCreated(): void {
    this.loadedCreated = true;
    if (!this.opts.createdFile) return;
    try {
      const saved = JSON.parse(readFileSync(this.opts.createdFile, 'utf8')) as unknown;
      if (saved && typeof saved === 'object') {
        for (const [k, v] of Object.entries(saved)) if (typeof v === 'string' && !this.created.has(k)) this.created.set(k, v);
      }
    } catch {
      // None yet (a fresh session), or unreadable: versions are made anew.
    }
  }

  private async saveCreated(): Promise<void> {
    const file = this.opts.createdFile;
    if (!file) return;
    const tmp = `${file}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.created)));
    await rename(tmp, file);
  }

  /** Resolves an output entry (see asksForOutput), or an entry whose version turned out to be uncommitted. */
  async resolve(name: string, entry: DatasetEntry): Promise<Resolution<OutputPayload>> {
    const catalog = this.opts.catalog;
    const versionId = entry.version === 'new' ? await this.createdFor(name, entry) : await this.existing(entry);
    const key = formatRef(entry.id, versionId);
    let out = this.byVersion.get(key);
    if (!out) {
      let store: VersionStore;
      try {
        store = await VersionStore.open(catalog, entry.id, versionId);
      } catch (err) {
        if (isCatalogError(err, 'Committed')) {
          throw new EntryError(
            'Committed',
            `dataset version ${key} cannot be written (${err.message.includes('committing') ? 'it is being committed' : 'it is committed'}): use \`version: new\` for an output (with \`from: ${versionId}\` to start from its files), or drop \`commit\`/\`from\` to read it`,
            'version',
          );
        }
        throw err;
      }
      out = { store, views: new Map(), commitOnExit: false, committed: undefined, committing: undefined };
      this.byVersion.set(key, out);
    }
    if (entry.commit === 'onExit') out.commitOnExit = true;
    return { resolved: key, identity: `output:${key}`, payload: { kind: 'output', store: out.store } };
  }

  /** The version a `version: new` entry writes: made once per entry and request, then reused. */
  private async createdFor(name: string, entry: DatasetEntry): Promise<string> {
    if (!this.loadedCreated) this.loadCreated();
    const key = JSON.stringify([name, entry.id, entry.from ?? null]);
    const known = this.created.get(key);
    if (known) return known;
    const catalog = this.opts.catalog;
    let from;
    if (entry.from !== undefined) {
      try {
        from = parseRef(entry.from.includes(':') ? entry.from : `${entry.id}:${entry.from}`);
        from = { ...from, version: await catalog.resolveVersionId(from.datasetId, from.version) };
      } catch (err) {
        throw new EntryError(isCatalogError(err) ? err.code : 'BadRef', err instanceof Error ? err.message : String(err), 'from');
      }
    }
    try {
      const v = await catalog.createVersion(entry.id, `output of /datasets/${name}`, from ? { from } : {});
      this.created.set(key, v.id);
      await this.saveCreated().catch((err: unknown) => this.opts.log?.warn({ err }, 'cannot remember the output version for a restart'));
      this.opts.log?.info({ entry: name, version: formatRef(entry.id, v.id), from: v.from, files: v.fileCount }, 'created an output version');
      return v.id;
    } catch (err) {
      if (isCatalogError(err)) throw new EntryError(err.code, err.message, /not found in any storage provider|^dataset "/.test(err.message) ? 'id' : 'from');
      throw err;
    }
  }

  private async existing(entry: DatasetEntry): Promise<string> {
    try {
      return await this.opts.catalog.resolveVersionId(entry.id, entry.version);
    } catch (err) {
      if (isCatalogError(err)) {
        const aboutId = err.code === 'NotFound' && /^dataset "[^"]*" not found/.test(err.message);
        throw new EntryError(err.code, err.message, aboutId ? 'id' : 'version');
      }
      throw err;
    }
  }

  /** A view now serves `store` as entry `name`; a committed version's view is sealed at once. */
  attached(name: string, store: VersionStore, view: BucketView): void {
    const out = this.byVersion.get(formatRef(store.datasetId, store.versionId));
    if (!out) return;
    out.views.set(name, view);
    if (out.committed || store.sealed) view.seal();
  }

  /** The entry no longer serves the view. */
  detached(name: string, view: BucketView): void {
    for (const out of this.byVersion.values()) if (out.views.get(name) === view) out.views.delete(name);
  }

  /**
   * Commits a version this daemon serves: no new changes (EROFS), uploads asked for by a close() finished,
   * the store sealed, then the catalog's commit. Resolves undefined when the version is not served here.
   * A failure before the manifest is sealed leaves the output writable, as it was.
   */
  async commit(datasetId: string, versionId: string, opts: { allowEmpty?: boolean } = {}): Promise<CommittedRecord | undefined> {
    const key = formatRef(datasetId, versionId);
    const out = this.byVersion.get(key);
    if (!out) return undefined;
    if (out.committed) return out.committed;
    out.committing ??= this.commitNow(key, out, opts).finally(() => (out.committing = undefined));
    return out.committing;
  }

  private async commitNow(key: string, out: Output, opts: { allowEmpty?: boolean }): Promise<CommittedRecord> {
    const views = [...out.views.values()];
    for (const v of views) v.seal();
    const reopen = () => {
      out.store.unseal();
      for (const v of views) v.unseal();
    };
    try {
      const left = (await Promise.all(views.map((v) => v.settle(this.opts.settleTimeoutMs)))).reduce((a, b) => a + b, 0);
      if (left > 0) {
        throw new Error(
          `dataset version ${key}: ${left} ${left === 1 ? 'file' : 'files'} closed on the mount could not be uploaded yet (see \`gradient status\`); commit again once they are`,
        );
      }
      await out.store.seal();
      out.committed = await this.opts.catalog.commitVersion(out.store.datasetId, out.store.versionId, opts);
    } catch (err) {
      if (!out.committed && !(isCatalogError(err, 'Committed'))) reopen();
      throw err;
    }
    this.opts.log?.info({ version: key, files: out.committed.fileCount, bytes: out.committed.bytes }, 'committed an output version: its entries are read-only now');
    return out.committed;
  }

  /** Daemon stop: commits every output whose entry says `commit: onExit`; failures are logged, not thrown. */
  async commitOnExit(): Promise<void> {
    for (const [key, out] of this.byVersion) {
      if (!out.commitOnExit || out.committed) continue;
      try {
        await this.commit(out.store.datasetId, out.store.versionId, { allowEmpty: true });
      } catch (err) {
        this.opts.log?.error({ version: key, err: err instanceof Error ? err.message : String(err) }, 'commit at exit failed: the version stays uncommitted');
      }
    }
  }

  status(): OutputStatus[] {
    const rows: OutputStatus[] = [];
    for (const [key, out] of this.byVersion) {
      for (const [mount, view] of out.views) {
        rows.push({
          mount,
          version: key,
          filesWritten: out.store.stats.filesWritten,
          bytesWritten: out.store.stats.bytesWritten,
          files: out.store.fileCount,
          pendingUploads: view.uploadStatus().length,
          committed: out.committed !== undefined,
          commitOnExit: out.commitOnExit,
        });
      }
    }
    return rows;
  }
}
