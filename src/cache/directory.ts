// The cache directory's layout, its creation, and what it occupies besides the entries' data files.
//
//   <dir>/index.sqlite   entries, durable block runs, last access, lifetime counters (WAL)
//   <dir>/data/ab/ab…    one sparse file per entry, bytes at their own offsets (complete = a plain copy)
//   <dir>/tmp/           temp files (older versions filled small files here); emptied at start
//   <dir>/staging/       reserved for bucket write-through (files being written); counted in the bound
//   <dir>/lock           pid of the process that owns the directory
import { chmodSync, mkdirSync } from 'node:fs';
import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { CacheError, isNoSpaceErrno } from './errors.js';
import { WAL_MAX_BYTES } from './index-db.js';

export const INDEX_FILE = 'index.sqlite';
export const STAGING_DIR = 'staging';

/** Creates the directory and its subdirectories (0700), or says why it cannot. */
export function createCacheDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    for (const sub of ['data', 'tmp', STAGING_DIR]) mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
    // All 256 fan-out directories up front, so that their blocks are measured once rather than appearing
    // unaccounted between two measurements.
    for (let i = 0; i < 256; i++) mkdirSync(path.join(dir, 'data', i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CacheError(
      isNoSpaceErrno(err) ? 'NoSpace' : 'Io',
      `cannot create the cache directory ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Measurements of the disk under the cache, for its space budget. */
export interface DiskProbe {
  /** Bytes the directory occupies besides the data files: index, directories, staging area. */
  overheadBytes(): Promise<number>;
  /** Bytes free for unprivileged users on the filesystem. */
  availableBytes(): Promise<number>;
}

export function diskProbe(dir: string): DiskProbe {
  return {
    overheadBytes: async () => {
      let overhead = 0;
      const add = async (p: string): Promise<void> => {
        try {
          const bytes = (await stat(p)).blocks * 512; // not `overhead += await …`: that loses concurrent updates
          overhead += bytes;
        } catch {
          // not there (yet)
        }
      };
      await Promise.all(['', 'data', 'tmp', 'lock', INDEX_FILE, `${INDEX_FILE}-shm`].map((p) => add(path.join(dir, p))));
      // The WAL grows between measurements: always count it at its cap.
      let wal = 0;
      await stat(path.join(dir, `${INDEX_FILE}-wal`)).then((st) => (wal = st.blocks * 512), () => undefined);
      overhead += Math.max(wal, WAL_MAX_BYTES);
      const subdirs = await readdir(path.join(dir, 'data')).catch(() => [] as string[]);
      await Promise.all(subdirs.map((s) => add(path.join(dir, 'data', s))));
      overhead += await treeBytes(path.join(dir, STAGING_DIR));
      return overhead;
    },
    availableBytes: async () => {
      const fs = await statfs(dir);
      return fs.bavail * fs.bsize;
    },
  };
}

/** Allocated bytes of a directory tree (like `du`). */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      const st = await stat(p);
      total += st.blocks * 512;
      if (st.isDirectory()) total += await treeBytes(p);
    } catch {
      // removed meanwhile
    }
  }
  return total;
}
