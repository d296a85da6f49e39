// The cache's record of one entry, open or not: what the index holds and what eviction needs.
import type { BlockRun } from './blocks.js';

/** What the cache knows about an entry, open or not. */
export interface EntryRecord {
  id: string;
  /** Canonical identity string. */
  identity: string;
  /** Set for team-dataset files: the whole file must hash to it before it is called complete. */
  sha256?: string;
  size: number;
  blockSize: number;
  /** Durable block runs, authoritative while the entry is not open (then `open.map` is). */
  runs: BlockRun[];
  /** Bytes the data file occupies on disk (written blocks, in whole 4 KiB filesystem blocks). */
  diskBytes: number;
  /** Every byte present and, for content identities, verified against the hash. */
  complete: boolean;
  lastAccess: number;
  /** Open handles: a pinned entry is never evicted. */
  pins: number;
  /** Data-file descriptors still being closed (the entry is not evictable meanwhile). */
  closing?: number;
}
