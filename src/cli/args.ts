// Parsers for option values, each with a message that names the option and the value it got.
import { CatalogError } from '../catalog/errors.js';
import type { Catalog } from '../catalog/catalog.js';
import { parseRef, type DatasetRef } from '../catalog/refs.js';

export function parallelism(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new CatalogError('BadInput', `--parallel must be an integer from 1 to 256, got "${value}"`);
  return n;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `24h`, `7d`, or `0`: a duration in milliseconds. */
export function duration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new CatalogError('BadInput', `bad duration "${value}": use a number with a unit, e.g. 90s, 30m, 24h, 7d (or 0)`);
  }
  return Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!;
}

/** `--id <dataset>`: an id, or the name of exactly one dataset. */
export function datasetIdArg(catalog: Catalog, text: string): Promise<string> {
  return catalog.datasetIdFor(text);
}

/** `--id <dataset>:<version|tag|latest>[/path]`, the dataset named by its id or its unique name. */
export async function refArg(catalog: Catalog, text: string, opts: { allowPath?: boolean } = {}): Promise<DatasetRef> {
  const colon = text.indexOf(':');
  if (colon <= 0) return parseRef(text, opts); // says what a reference looks like
  const id = await catalog.datasetIdFor(text.slice(0, colon));
  return parseRef(`${id}${text.slice(colon)}`, opts);
}
