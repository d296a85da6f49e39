// Deleting versions and datasets. Records go; blobs stay, since other versions may share them: `gc` (gc.ts)
// removes the ones nothing names any more. What makes a thing resolvable goes first (tags, the commit marker
// behind `latest`), the record that makes it exist last (removal.ts), so an interrupted delete can be re-run.
import type { Catalog, VersionState } from './catalog.js';
import { CatalogError } from './errors.js';
import * as L from './layout.js';
import type { DatasetRecord } from './records.js';
import { formatRef } from './refs.js';
import { removeTree } from './removal.js';

/** What deleting a version did. */
export interface DeletedVersion {
  datasetId: string;
  versionId: string;
  state: VersionState;
  /** Tags that pointed to it, deleted with it (only with force). */
  tags: string[];
  /** Objects removed (records, journal batches, manifests). */
  objects: number;
}

export interface DeleteVersionOptions {
  /** Also a committed (or committing) version, or one a tag points to (the tags go too). */
  force?: boolean;
  /** Called once the checks passed, before anything is deleted: throw to stop. */
  confirm?: (plan: Omit<DeletedVersion, 'objects'>) => Promise<void>;
}

/**
 * Deletes a version. An uncommitted one goes freely; a committed one, or one a tag points to, only with
 * `force` (then `latest` falls back to the previous commit).
 */
export async function deleteVersion(catalog: Catalog, datasetId: string, versionRef: string, opts: DeleteVersionOptions = {}): Promise<DeletedVersion> {
  const t = catalog.teamId;
  const { store } = await catalog.getDataset(datasetId);
  const versionId = await catalog.resolveVersionId(datasetId, versionRef);
  const ref = formatRef(datasetId, versionId);
  const state = await catalog.versionState(datasetId, versionId);
  const tags = (await catalog.listTags(datasetId)).filter((x) => x.version === versionId).map((x) => x.tag);
  if (!opts.force && state !== 'uncommitted') {
    throw new CatalogError('Refused', `dataset version ${ref} is ${state}: delete it anyway with --force (mounts of it keep their files until \`gradient datasets gc\`)`);
  }
  if (!opts.force && tags.length > 0) {
    const one = tags.length === 1;
    throw new CatalogError(
      'Refused',
      `${one ? 'tag' : 'tags'} ${tags.join(', ')} of ${datasetId} ${one ? 'points' : 'point'} to ${ref}: move or delete ${one ? 'it' : 'them'} first, or pass --force to delete ${one ? 'it' : 'them'} too`,
    );
  }
  await opts.confirm?.({ datasetId, versionId, state, tags });
  // From here on nothing resolves to this version: its tags and its commit marker go first.
  await Promise.all(tags.map((tag) => store.delete(L.tagKey(t, datasetId, tag))));
  for await (const page of store.list(L.commitsPrefix(t, datasetId))) {
    for (const o of page.objects) if (o.key.endsWith(`-${versionId}`)) await store.delete(o.key);
  }
  await store.delete(L.committedKey(t, datasetId, versionId));
  const objects = await removeTree(store, L.versionRoot(t, datasetId, versionId), L.versionKey(t, datasetId, versionId));
  return { datasetId, versionId, state, tags, objects };
}

/** Deletes a dataset: every version, tag and record, dataset.json last. */
export async function deleteDataset(
  catalog: Catalog,
  datasetId: string,
  opts: { confirm?: (plan: { record: DatasetRecord; versions: number }) => Promise<void> } = {},
): Promise<{ record: DatasetRecord; versions: number; objects: number }> {
  const t = catalog.teamId;
  const { store, record } = await catalog.getDataset(datasetId);
  const versions = (await catalog.listVersions(datasetId)).length;
  await opts.confirm?.({ record, versions });
  const objects = await removeTree(store, L.datasetRoot(t, datasetId), L.datasetKey(t, datasetId));
  catalog.forget(datasetId);
  return { record, versions, objects };
}
