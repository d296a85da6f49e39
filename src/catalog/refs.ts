// Dataset references: `<dataset-id>:<version-id|tag|latest>[/path]` (pure parsing, no I/O).
import { CatalogError } from './errors.js';
import { DATASET_ID, TAG_NAME } from './ids.js';
import { normalizeDatasetPath } from './paths.js';

export interface DatasetRef {
  datasetId: string;
  /** A version id, a tag, or "latest". */
  version: string;
  /** Normalized path inside the version ('' = root). */
  path: string;
}

const SYNTAX = '<dataset-id>:<version-id|tag|latest>';

export function parseDatasetId(text: string): string {
  if (!DATASET_ID.test(text)) {
    throw new CatalogError('BadRef', `bad dataset id "${text}": expected letters, digits, "_" or "-"`);
  }
  return text;
}

export function parseRef(text: string, opts: { allowPath?: boolean } = {}): DatasetRef {
  const colon = text.indexOf(':');
  if (colon < 0) throw new CatalogError('BadRef', `bad reference "${text}": expected ${SYNTAX}${opts.allowPath ? '[/path]' : ''}`);
  const datasetId = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  const slash = rest.indexOf('/');
  const version = slash < 0 ? rest : rest.slice(0, slash);
  const rawPath = slash < 0 ? '' : rest.slice(slash + 1);
  if (!DATASET_ID.test(datasetId)) throw new CatalogError('BadRef', `bad reference "${text}": bad dataset id "${datasetId}" (expected ${SYNTAX})`);
  if (!TAG_NAME.test(version)) throw new CatalogError('BadRef', `bad reference "${text}": bad version "${version}" (expected ${SYNTAX})`);
  if (rawPath !== '' && !opts.allowPath) throw new CatalogError('BadRef', `bad reference "${text}": a path is not allowed here (expected ${SYNTAX})`);
  return { datasetId, version, path: rawPath === '' ? '' : normalizeDatasetPath(rawPath, { allowEmpty: true }) };
}

export function formatRef(datasetId: string, versionId: string): string {
  return `${datasetId}:${versionId}`;
}
