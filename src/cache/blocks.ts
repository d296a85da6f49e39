// Which blocks of an entry are present. Two levels, because durability lags behind writing: a block is
// `written` (in the data file, readable by this process) before it is `durable` (fsynced and recorded in the
// index). Only durable blocks survive a restart; a crash between the two just means a refetch.
const MISSING = 0;
const WRITTEN = 1;
const DURABLE = 2;

/** Half-open block interval [start, end). */
export interface BlockRun {
  start: number;
  end: number;
}

export class BlockMap {
  private readonly state: Uint8Array;
  private present = 0;

  constructor(readonly count: number) {
    this.state = new Uint8Array(count);
  }

  /** A map whose durable blocks are the given runs (from the index). */
  static fromRuns(count: number, runs: readonly BlockRun[]): BlockMap {
    const map = new BlockMap(count);
    for (const r of runs) {
      for (let b = Math.max(0, r.start); b < Math.min(count, r.end); b++) map.set(b, DURABLE);
    }
    return map;
  }

  has(block: number): boolean {
    return this.state[block] !== MISSING;
  }

  isDurable(block: number): boolean {
    return this.state[block] === DURABLE;
  }

  get presentCount(): number {
    return this.present;
  }

  get complete(): boolean {
    return this.present === this.count;
  }

  markWritten(start: number, end: number): void {
    for (let b = start; b < end; b++) if (this.state[b] === MISSING) this.set(b, WRITTEN);
  }

  /** Promotes written blocks in [start, end) to durable (after their data was fsynced). */
  markDurable(start: number, end: number): void {
    for (let b = start; b < end; b++) if (this.state[b] === WRITTEN) this.set(b, DURABLE);
  }

  clear(): void {
    this.state.fill(MISSING);
    this.present = 0;
  }

  /** True if every block in [start, end) is present. */
  allPresent(start: number, end: number): boolean {
    for (let b = start; b < end; b++) if (this.state[b] === MISSING) return false;
    return true;
  }

  /** Runs of present (or, with durableOnly, durable) blocks. */
  runs(durableOnly = false): BlockRun[] {
    const out: BlockRun[] = [];
    let start = -1;
    for (let b = 0; b <= this.count; b++) {
      const on = b < this.count && (durableOnly ? this.state[b] === DURABLE : this.state[b] !== MISSING);
      if (on && start < 0) start = b;
      else if (!on && start >= 0) {
        out.push({ start, end: b });
        start = -1;
      }
    }
    return out;
  }

  private set(block: number, value: number): void {
    const was = this.state[block];
    if (was === MISSING && value !== MISSING) this.present++;
    else if (was !== MISSING && value === MISSING) this.present--;
    this.state[block] = value;
  }
}

/** "0-16,20-21": compact text for the index. */
export function encodeRuns(runs: readonly BlockRun[]): string {
  return runs.map((r) => `${r.start}-${r.end}`).join(',');
}

/** Parses encodeRuns output; malformed parts are dropped (the blocks are then simply refetched). */
export function decodeRuns(text: string): BlockRun[] {
  if (!text) return [];
  const out: BlockRun[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (!m) continue;
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (end > start) out.push({ start, end });
  }
  return out;
}

const FS_BLOCK = 4096;

/** Bytes the given block runs occupy on disk in a sparse file: whole 4 KiB filesystem blocks. */
export function runsDiskBytes(runs: readonly BlockRun[], blockSize: number, size: number): number {
  let total = 0;
  for (const r of runs) total += roundUp(Math.min(size, r.end * blockSize) - r.start * blockSize);
  return total;
}

export function roundUp(bytes: number, unit = FS_BLOCK): number {
  return Math.ceil(bytes / unit) * unit;
}
