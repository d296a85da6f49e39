// `datasets files put`: hashes local files, uploads only content the provider does not have yet
// (content-addressed blobs), then records the files in the version's journal in batches.
// With `gc` (gc.ts) running at the same time, a blob must be named by a journal entry before it is older
// than gc's grace period: entries are journaled within `journalIntervalMs` of their upload, and a blob found
// in the provider is reused only while young (an older one is uploaded again, which renews its age).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { isStorageError } from '../storage/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { Catalog } from './catalog.js';
import { findFileDirClash } from './catalog.js';
import { CatalogError, isCatalogError } from './errors.js';
import { blobKey } from './layout.js';
import { normalizeDatasetPath } from './paths.js';
import { mapLimit } from './map-limit.js';
import type { ManifestEntry } from './records.js';
import { formatRef, parseRef, type DatasetRef } from './refs.js';

export interface TransferProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface PutOptions {
  /** Where the source lands inside the version ('' = root). */
  targetPath?: string;
  /** Files processed in parallel. */
  concurrency?: number;
  onProgress?: (p: TransferProgress) => void;
  /** Longest an uploaded file waits for its journal entry (default 10 s; gc's grace must be longer). */
  journalIntervalMs?: number;
}

/** A blob found by HEAD (named by no version we read) is reused only if younger than this. */
export const REUSE_MAX_AGE_MS = 60 * 60 * 1000;

export interface PutResult {
  datasetId: string;
  versionId: string;
  files: number;
  bytes: number;
  /** Files whose content had to be uploaded (the rest were already in the provider). */
  uploadedFiles: number;
  uploadedBytes: number;
}

interface LocalFile {
  abs: string;
  path: string;
  size: number;
  mtime: number;
}

/** Files this small are read into memory once: hashed and uploaded from the same bytes. */
const IN_MEMORY_MAX = 16 * 1024 * 1024;
/** Unknown content smaller than this is uploaded without asking first: a PUT costs about what a HEAD does. */
const HEAD_FIRST_MIN = 1024 * 1024;
const JOURNAL_BATCH = 1000;

async function walk(source: string, target: string): Promise<LocalFile[]> {
  let st;
  try {
    st = await stat(source);
  } catch (err) {
    throw new CatalogError('BadInput', `source path "${source}" does not exist or cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  if (st.isFile()) {
    // A file goes to the target path itself, or into it when the target is '' or ends with '/'.
    const p = target === '' || target.endsWith('/') ? `${target}${path.basename(source)}` : target;
    return [{ abs: source, path: normalizeDatasetPath(p), size: st.size, mtime: Math.floor(st.mtimeMs) }];
  }
  if (!st.isDirectory()) throw new CatalogError('BadInput', `source path "${source}" is neither a file nor a directory`);
  const out: LocalFile[] = [];
  const seen = new Set<string>();
  const visit = async (dir: string, rel: string): Promise<void> => {
    // Symlinked directories are followed once: a link back up the tree must not loop forever.
    const real = await realpath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const abs = path.join(dir, e.name);
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const s = e.isSymbolicLink() ? await stat(abs) : e;
      if (s.isDirectory()) await visit(abs, r);
      else if (s.isFile()) {
        const fst = await stat(abs);
        out.push({ abs, path: normalizeDatasetPath(`${target}/${r}`), size: fst.size, mtime: Math.floor(fst.mtimeMs) });
      }
    }
  };
  await visit(source, '');
  return out;
}

function sha256Transform(): { transform: Transform; digest: () => string } {
  const h = createHash('sha256');
  const transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  return { transform, digest: () => h.digest('hex') };
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function putFiles(catalog: Catalog, refText: string | DatasetRef, source: string, opts: PutOptions = {}): Promise<PutResult> {
  const ref = typeof refText === 'string' ? parseRef(refText) : refText;
  const datasetId = ref.datasetId;
  const { store } = await catalog.getDataset(datasetId);
  const versionId = await catalog.resolveVersionId(datasetId, ref.version);
  await catalog.assertWritable(datasetId, versionId);
  const files = await walk(path.resolve(source), opts.targetPath ?? '');

  // Refuse trees that would make a path both a file and a directory.
  const current = await catalog.journalEntries(datasetId, versionId);
  const clash = findFileDirClash([...current.keys(), ...files.map((f) => f.path)]);
  if (clash) {
    throw new CatalogError('BadInput', `"${clash.file}" would be both a file and a directory (of "${clash.under}") in ${formatRef(datasetId, versionId)}`);
  }

  // Content the provider already has: this version's files and the latest committed version's.
  const known = new Set([...current.values()].map((e) => e.sha256));
  try {
    const latest = await catalog.resolve({ datasetId, version: 'latest', path: '' });
    for (const f of latest.manifest.files) known.add(f.sha256);
  } catch (err) {
    if (!isCatalogError(err, 'NotFound')) throw err;
  }

  const progress: TransferProgress = {
    filesDone: 0,
    filesTotal: files.length,
    bytesDone: 0,
    bytesTotal: files.reduce((n, f) => n + f.size, 0),
  };
  const inFlight = new Map<string, number>();
  const report = () => {
    let partial = 0;
    for (const n of inFlight.values()) partial += n;
    opts.onProgress?.({ ...progress, bytesDone: progress.bytesDone + partial });
  };

  let pending: ManifestEntry[] = [];
  const written: ManifestEntry[] = [];
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    const batch = pending;
    pending = [];
    flushing = flushing.then(() => catalog.appendJournal(datasetId, versionId, batch));
    return flushing;
  };

  let uploadedFiles = 0;
  let uploadedBytes = 0;
  const upload = async (f: LocalFile): Promise<void> => {
    const onProgress = (n: number) => {
      inFlight.set(f.abs, n);
      report();
    };
    const blob = await storeBlob(store, catalog.teamId, f.abs, f.size, known, onProgress);
    const sha = blob.sha256;
    if (blob.uploaded) {
      uploadedFiles++;
      uploadedBytes += f.size;
    }
    known.add(sha);
    inFlight.delete(f.abs);
    const entry: ManifestEntry = { path: f.path, size: f.size, sha256: sha, mtime: f.mtime };
    pending.push(entry);
    written.push(entry);
    progress.filesDone++;
    progress.bytesDone += f.size;
    report();
    if (pending.length >= JOURNAL_BATCH) await flush();
  };

  // Uploaded files wait at most this long for their journal entry, however long the other uploads take.
  const timer = setInterval(() => {
    if (pending.length > 0) void flush().catch(() => undefined); // the final flush reports a failure
  }, opts.journalIntervalMs ?? 10_000);
  try {
    // Biggest first: the long uploads start early and the small ones fill the gaps.
    const order = [...files].sort((a, b) => b.size - a.size);
    await mapLimit(order, opts.concurrency ?? 16, upload);
  } finally {
    clearInterval(timer);
    // Record what did upload, even after a failure: a retry then re-uploads nothing twice.
    await flush();
  }
  await catalog.confirmWrites(datasetId, versionId, written);
  return { datasetId, versionId, files: files.length, bytes: progress.bytesTotal, uploadedFiles, uploadedBytes };
}

/**
 * Puts one local file's content into the provider as `files put` does: hashed, uploaded under its blob key
 * unless `known` (or, for large files, a young blob found by HEAD) says the provider has it; a large file is
 * hashed again while it uploads, so one that changed meanwhile never lands under the old hash. Adds the hash
 * to `known`. The file's size is the one the caller saw (a different size read is an error).
 */
export async function storeBlob(
  store: ObjectStore,
  teamId: string,
  file: string,
  size: number,
  known: Set<string>,
  onProgress?: (bytesSent: number) => void,
): Promise<{ sha256: string; uploaded: boolean }> {
  let sha: string;
  let uploaded = false;
  if (size <= IN_MEMORY_MAX) {
    const bytes = await readFile(file);
    if (bytes.length !== size) throw new CatalogError('Conflict', `"${file}" changed while it was being read: put it again`);
    sha = createHash('sha256').update(bytes).digest('hex');
    if (!known.has(sha)) {
      await store.write(blobKey(teamId, sha), bytes, { ...(onProgress ? { onProgress } : {}), sha256: sha });
      uploaded = true;
    }
  } else {
    sha = await hashFile(file);
    const key = blobKey(teamId, sha);
    if (!(await blobStored(store, teamId, sha, size, known))) {
      // Re-hash while uploading: a file that changed since it was hashed must not land under the old hash.
      const check = sha256Transform();
      await store.write(key, { stream: createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(check.transform), size }, onProgress ? { onProgress } : {});
      if (check.digest() !== sha) {
        await store.delete(key);
        throw new CatalogError('Conflict', `"${file}" changed while it was being uploaded: put it again`);
      }
      uploaded = true;
    }
  }
  known.add(sha);
  return { sha256: sha, uploaded };
}

/**
 * Whether the provider holds the blob of `sha` already, as `files put` decides it: `known` says so, or, for
 * content of 1 MiB or more, a HEAD finds it young enough that `gc` will not remove it meanwhile.
 */
export async function blobStored(store: ObjectStore, teamId: string, sha: string, size: number, known: ReadonlySet<string>): Promise<boolean> {
  if (known.has(sha)) return true;
  if (size < HEAD_FIRST_MIN) return false;
  try {
    const info = await store.head(blobKey(teamId, sha));
    // An old blob nothing we know names may be one `gc` is about to remove: upload it again instead.
    return info.size === size && Date.now() - info.lastModified.getTime() < REUSE_MAX_AGE_MS;
  } catch (err) {
    if (!isStorageError(err, 'NotFound')) throw err;
    return false;
  }
}
