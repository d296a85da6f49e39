// `datasets files get`: downloads a version's files (or those under a path) into a local directory,
// verifying each file's sha256 and writing through a temp file so that a partial file never appears. Files
// already there are not overwritten unless asked to (`force`): nothing is downloaded when any would be.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, rename, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Catalog } from './catalog.js';
import { CatalogError } from './errors.js';
import { blobKey } from './layout.js';
import { mapLimit } from './map-limit.js';
import type { TransferProgress } from './put.js';
import { formatRef, parseRef, type DatasetRef } from './refs.js';

export interface GetOptions {
  concurrency?: number;
  /** Overwrite local files that exist. */
  force?: boolean;
  onProgress?: (p: TransferProgress) => void;
}

export interface GetResult {
  datasetId: string;
  versionId: string;
  files: number;
  bytes: number;
}

export async function getFiles(catalog: Catalog, refText: string | DatasetRef, targetDir: string, opts: GetOptions = {}): Promise<GetResult> {
  const ref = typeof refText === 'string' ? parseRef(refText, { allowPath: true }) : refText;
  const { files, versionId } = await catalog.listFiles(ref);
  if (files.length === 0) {
    throw new CatalogError('NotFound', `no files${ref.path ? ` under "${ref.path}"` : ''} in dataset version ${formatRef(ref.datasetId, versionId)}`);
  }
  const { store } = await catalog.getDataset(ref.datasetId);
  const root = path.resolve(targetDir);
  // A single file lands as <target>/<basename>; a directory's files keep their paths below it.
  const base = files.length === 1 && files[0]!.path === ref.path ? path.posix.dirname(ref.path) : ref.path;
  const progress: TransferProgress = {
    filesDone: 0,
    filesTotal: files.length,
    bytesDone: 0,
    bytesTotal: files.reduce((n, f) => n + f.size, 0),
  };
  const destOf = (f: (typeof files)[number]) => {
    const rel = base === '' || base === '.' ? f.path : f.path.slice(base.length + 1);
    return path.join(root, ...rel.split('/'));
  };
  if (!opts.force) {
    const existing = (await mapLimit(files, 64, async (f) => ((await lstat(destOf(f)).then(() => true, () => false)) ? destOf(f) : undefined))).filter(
      (p): p is string => p !== undefined,
    );
    if (existing.length > 0) {
      throw new CatalogError(
        'Refused',
        `${existing.length === 1 ? `"${existing[0]}" exists` : `${existing.length} files exist already (e.g. "${existing[0]}")`}: nothing was downloaded; pass --force to overwrite`,
      );
    }
  }
  await mapLimit(files, opts.concurrency ?? 16, async (f) => {
    const dest = destOf(f);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.gradient-tmp-${randomBytes(4).toString('hex')}`;
    const h = createHash('sha256');
    try {
      const body = await store.stream(blobKey(catalog.teamId, f.sha256));
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            h.update(chunk);
            progress.bytesDone += chunk.length;
            opts.onProgress?.(progress);
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp),
      );
      if (h.digest('hex') !== f.sha256) {
        throw new CatalogError('Corrupt', `"${f.path}" downloaded from ${store.location} does not match its sha256`);
      }
      await utimes(tmp, new Date(), new Date(f.mtime));
      await rename(tmp, dest);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    progress.filesDone++;
    opts.onProgress?.(progress);
  });
  return { datasetId: ref.datasetId, versionId, files: files.length, bytes: progress.bytesTotal };
}
