// Startup: make the index and the files agree before anything is served. The index is the truth for what
// is present; files it does not know are orphans (a fill that crashed before it was recorded) and are
// removed; rows whose file is missing or shorter than their recorded blocks are dropped. Temp files of
// interrupted whole-file fills are removed.
import { readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { decodeRuns, runsDiskBytes, type BlockRun } from './blocks.js';
import type { EntryRow, IndexDb } from './index-db.js';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX2 = /^[0-9a-f]{2}$/;

export interface ReconciledEntry {
  row: EntryRow;
  runs: BlockRun[];
  /** Bytes on disk: at least what the runs need, more if a crashed fill left unrecorded blocks behind. */
  diskBytes: number;
}

export interface ReconcileReport {
  entries: ReconciledEntry[];
  orphansRemoved: number;
  entriesDropped: number;
  tempRemoved: number;
}

export function reconcile(dir: string, db: IndexDb): ReconcileReport {
  const tmpDir = path.join(dir, 'tmp');
  let tempRemoved = 0;
  for (const name of safeReaddir(tmpDir)) {
    rmSync(path.join(tmpDir, name), { recursive: true, force: true });
    tempRemoved++;
  }

  const rows = db.loadEntries();
  const known = new Map(rows.map((r) => [r.id, r]));
  const onDisk = new Map<string, { size: number; allocated: number }>();
  let orphansRemoved = 0;
  const dataDir = path.join(dir, 'data');
  for (const sub of safeReaddir(dataDir)) {
    const subPath = path.join(dataDir, sub);
    if (!HEX2.test(sub)) {
      rmSync(subPath, { recursive: true, force: true });
      orphansRemoved++;
      continue;
    }
    for (const name of safeReaddir(subPath)) {
      const file = path.join(subPath, name);
      if (!HEX64.test(name) || name.slice(0, 2) !== sub || !known.has(name)) {
        rmSync(file, { recursive: true, force: true });
        orphansRemoved++;
        continue;
      }
      const st = statSync(file);
      onDisk.set(name, { size: st.size, allocated: st.blocks * 512 });
    }
  }

  const entries: ReconciledEntry[] = [];
  const drop: string[] = [];
  for (const row of rows) {
    const file = onDisk.get(row.id);
    const runs = decodeRuns(row.blocks);
    const lastEnd = runs.length ? Math.min(row.size, runs[runs.length - 1]!.end * row.blockSize) : 0;
    const needed = row.complete ? row.size : lastEnd;
    const truncated = !file || file.size < needed || (row.complete && file.size !== row.size);
    const coversAll = row.size === 0 || (runs.length === 1 && runs[0]!.start === 0 && lastEnd === row.size);
    if (truncated || (row.complete && !coversAll) || (!row.complete && runs.length === 0)) {
      drop.push(row.id);
      if (file) unlinkSync(path.join(dataDir, row.id.slice(0, 2), row.id));
      continue;
    }
    const diskBytes = Math.max(runsDiskBytes(runs, row.blockSize, row.size), file.allocated);
    entries.push({ row, runs, diskBytes });
  }
  if (drop.length) db.commit({ deletes: drop });
  return { entries, orphansRemoved, entriesDropped: drop.length, tempRemoved };
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
