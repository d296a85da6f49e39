// Where each catalog record lives in a storage provider (keys relative to the provider's root).
//
// <team>/blobs/sha256/<h[0:2]>/<h>                     file content, content-addressed, shared by all versions
// <team>/datasets/<ds>/dataset.json                     id, name, description, provider, created
// <team>/datasets/<ds>/versions/<v>/version.json       created once (create-only), message, created
// <team>/datasets/<ds>/versions/<v>/journal/<seq>.json  immutable batches of file entries (put/delete), one per writer flush
// <team>/datasets/<ds>/versions/<v>/sealed.json        "commit started": writers that see it re-check their files
// <team>/datasets/<ds>/versions/<v>/manifests/<h>.json  the final manifest, named by its sha256
// <team>/datasets/<ds>/versions/<v>/committed.json     create-only; its existence IS the committed state
// <team>/datasets/<ds>/commits/<ms>-<v>                 empty markers in commit order: latest = last key
// <team>/datasets/<ds>/tags/<tag>.json                  { version }
export const blobsPrefix = (t: string): string => `${t}/blobs/sha256/`;

export function blobKey(teamId: string, sha256: string): string {
  return `${blobsPrefix(teamId)}${sha256.slice(0, 2)}/${sha256}`;
}

export const datasetsPrefix = (t: string): string => `${t}/datasets/`;
export const datasetRoot = (t: string, ds: string): string => `${t}/datasets/${ds}/`;
export const datasetKey = (t: string, ds: string): string => `${datasetRoot(t, ds)}dataset.json`;
export const versionsPrefix = (t: string, ds: string): string => `${datasetRoot(t, ds)}versions/`;
export const versionRoot = (t: string, ds: string, v: string): string => `${versionsPrefix(t, ds)}${v}/`;
export const versionKey = (t: string, ds: string, v: string): string => `${versionRoot(t, ds, v)}version.json`;
export const journalPrefix = (t: string, ds: string, v: string): string => `${versionRoot(t, ds, v)}journal/`;
export const sealedKey = (t: string, ds: string, v: string): string => `${versionRoot(t, ds, v)}sealed.json`;
export const manifestKey = (t: string, ds: string, v: string, sha: string): string =>
  `${versionRoot(t, ds, v)}manifests/${sha}.json`;
export const committedKey = (t: string, ds: string, v: string): string => `${versionRoot(t, ds, v)}committed.json`;
export const commitsPrefix = (t: string, ds: string): string => `${datasetRoot(t, ds)}commits/`;
export const commitMarkerKey = (t: string, ds: string, v: string, at: Date): string =>
  `${commitsPrefix(t, ds)}${String(at.getTime()).padStart(15, '0')}-${v}`;
export const tagsPrefix = (t: string, ds: string): string => `${datasetRoot(t, ds)}tags/`;
export const tagKey = (t: string, ds: string, tag: string): string => `${tagsPrefix(t, ds)}${tag}.json`;

/** Journal batch names sort by their write time `at` (ms), ties broken by the random part (see appendJournal). */
export const journalKey = (t: string, ds: string, v: string, at: number, random: string): string =>
  `${journalPrefix(t, ds, v)}${String(at).padStart(15, '0')}-${random}.json`;
