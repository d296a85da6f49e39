// Read-only view of a cache directory for `gradient cache stats`: works while the daemon owns the cache
// (SQLite WAL readers do not block the writer) and never changes anything.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { IndexDb, zeroCounters, type CounterName } from './index-db.js';
import { lockOwner } from './lock.js';

export interface CacheInspection {
  dir: string;
  exists: boolean;
  /** Pid of the process that owns the cache (the daemon), if any. */
  owner?: number;
  entries: number;
  completeEntries: number;
  /** Data bytes according to the index. */
  dataBytes: number;
  /** What the directory occupies on disk, measured (allocated blocks, like `du`). */
  diskBytes: number;
  counters: Record<CounterName, number>;
}

export function inspectCache(dir: string): CacheInspection {
  const abs = path.resolve(dir);
  const indexFile = path.join(abs, 'index.sqlite');
  const empty = zeroCounters();
  if (!existsSync(indexFile)) {
    return { dir: abs, exists: false, entries: 0, completeEntries: 0, dataBytes: 0, diskBytes: duBytes(abs), counters: empty };
  }
  const db = new IndexDb(indexFile, { readonly: true });
  try {
    const s = db.summary();
    return {
      dir: abs,
      exists: true,
      owner: lockOwner(abs),
      entries: s.entries,
      completeEntries: s.completeEntries,
      dataBytes: s.diskBytes,
      diskBytes: duBytes(abs),
      counters: db.counters(),
    };
  } finally {
    db.close();
  }
}

/** Allocated bytes of a tree, like `du -s --block-size=1`. */
export function duBytes(p: string): number {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  let total = st.blocks * 512;
  if (st.isDirectory()) {
    for (const name of readdirSync(p)) total += duBytes(path.join(p, name));
  }
  return total;
}
