// Typed catalog errors: each names the dataset/version/ref and says what to do.
export type CatalogErrorCode =
  | 'NotFound' // unknown dataset, version, tag or path
  | 'BadRef' // malformed <dataset-id>:<version|tag|latest>[/path]
  | 'BadInput' // a bad name, path, source...
  | 'Committed' // writing to a committed (or committing) version
  | 'NotCommitted' // reading a version that must be committed (mounts, tags)
  | 'Conflict' // a concurrent client changed what we were doing
  | 'Refused' // refused by state unless forced: an empty commit, deleting a committed or tagged version, overwriting files
  | 'Corrupt'; // an object in the catalog fails validation

export class CatalogError extends Error {
  override readonly name = 'CatalogError';
  constructor(
    readonly code: CatalogErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isCatalogError(err: unknown, code?: CatalogErrorCode): err is CatalogError {
  return err instanceof CatalogError && (code === undefined || err.code === code);
}
