// The shape of `gradient status --json` and of the daemon's status socket. Nothing in it is secret:
// refs, resolved version ids, states and error messages (which never carry secret values).
import type { PruneResult, TierStatus } from '../cache/index.js';
import type { OutputStatus } from './outputs.js';
import type { EntryStatus } from './reconciler.js';

export interface CacheStatus {
  usedBytes: number;
  /** The bound in effect: maxBytes, lowered when the disk has less free space than minFreeBytes asks. */
  capacityBytes: number;
  hits: number;
  misses: number;
  /** The directory and the bounds the daemon runs with (its flags win over the config file). */
  dir?: string;
  maxBytes?: number;
  minFreeBytes?: number;
  /** The shared tier (cache.shared), when configured: where it is, what it gave, what went up to it. */
  tier?: TierStatus;
}

/** `POST /v1/cache/prune`: what the daemon's cache did, and which process holds what it could not evict. */
export interface DaemonPruneResult extends PruneResult {
  pid: number;
}

export interface PendingUpload {
  /** The /datasets entry. */
  mount: string;
  /** Key relative to the entry's bucket prefix. */
  key: string;
  bytes: number;
  state: 'uploading' | 'pending' | 'failed';
  attempts: number;
  lastError: string | null;
}

/** Requests so far, by operation: those of the kernel that reached JavaScript, and those sent to stores. */
export interface RequestCounts {
  /** FUSE requests by opcode name (LOOKUP, OPEN, …); reads and writes served by the C core never appear. */
  fuse: Record<string, number>;
  /** Store request attempts (retries included) by operation (GET, HEAD, LIST, PUT, …), over every store. */
  store: Record<string, number>;
}

/** The daemon's memory: its target, what holds what, and resident memory (bytes). */
export interface MemoryStatus {
  /** Null: no target. */
  targetBytes: number | null;
  /** --memory-target, memory.target in the config file, a share of the cgroup's limit, or none. */
  targetSource: 'flag' | 'config' | 'cgroup' | 'none';
  cgroupLimitBytes: number | null;
  /** Near the target: no prefetch, no retained chunks, no spare buffers. */
  underPressure: boolean;
  /** The serving process: VmRSS now and VmHWM (its peak). */
  rssBytes: number;
  peakRssBytes: number;
  /** The supervisor's VmRSS, and its private part (RssAnon; the rest is shared with the serving process). */
  supervisorRssBytes: number | null;
  supervisorPrivateBytes: number | null;
  /** Bytes held, by consumer. */
  consumers: Record<string, number>;
}

export type DaemonPhase = 'starting' | 'ready' | 'stopping';

export interface DaemonStatus {
  version: 1;
  /** The serving process. */
  pid: number;
  /** The supervisor holding the FUSE session across serving processes (`gradient mount --upgrade` signals it). */
  supervisorPid?: number | null;
  startedAt: string;
  phase: DaemonPhase;
  /** True once the filesystem is mounted and the first settings were applied (entries may still be in error). */
  ready: boolean;
  mountpoint: string | null;
  settings: {
    file: string;
    /** error = the file on disk is bad; the last good settings are still in force. */
    state: 'ok' | 'error';
    lastError: string | null;
    appliedAt: string | null;
  };
  mounts: EntryStatus[];
  cache: (CacheStatus & { hitRatio: number | null }) | null;
  /** Writes the bucket does not hold yet: uploading, waiting for a retry, or failed (data kept). */
  uploads: PendingUpload[];
  /** Dataset versions served read-write: what was written, what is pending, whether committed. */
  outputs?: OutputStatus[];
  requests: RequestCounts;
  /** Absent from daemons that predate it. */
  memory?: MemoryStatus | null;
  /** Set while the daemon cannot start (e.g. the mount failed): scripts waiting for readiness print it. */
  fatalError: string | null;
}

export function withHitRatio(stats: CacheStatus): CacheStatus & { hitRatio: number | null } {
  const total = stats.hits + stats.misses;
  return { ...stats, hitRatio: total > 0 ? stats.hits / total : null };
}
