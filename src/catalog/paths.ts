// Paths of files inside a dataset version: '/'-separated, relative, no empty/"."/".." segments, no NUL.
// Normalized once here so that the manifest, object keys and the mounted tree all agree.
import { CatalogError } from './errors.js';

export function normalizeDatasetPath(input: string, opts: { allowEmpty?: boolean } = {}): string {
  const segs = input.split('/').filter((s) => s !== '' && s !== '.');
  for (const s of segs) {
    if (s === '..') throw new CatalogError('BadInput', `bad path "${input}": ".." is not allowed in dataset paths`);
    if (s.includes('\0')) throw new CatalogError('BadInput', `bad path "${input}": contains NUL`);
    if (Buffer.byteLength(s) > 255) throw new CatalogError('BadInput', `bad path "${input}": a name is longer than 255 bytes`);
  }
  const out = segs.join('/');
  if (out === '' && !opts.allowEmpty) throw new CatalogError('BadInput', `bad path "${input}": empty`);
  return out;
}

/** Orders paths like S3 keys (UTF-8 bytes), so manifests and listings are stable everywhere. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** True if `p` is `prefix` itself or lies under it ('' = everything). */
export function isUnder(p: string, prefix: string): boolean {
  return prefix === '' || p === prefix || p.startsWith(`${prefix}/`);
}
