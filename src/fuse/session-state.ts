// What a FUSE session must remember for another process to take it over (the /dev/fuse fd itself is kept by
// the supervisor): what INIT negotiated, every node id the kernel holds with its lookup count and a stable key
// to find it again, and every open handle. An append-only log of JSON lines in a directory that outlives the
// serving process; each record is written before the reply that tells the kernel of it, so the kernel never
// holds an id or handle the log does not know. A new process loads it, compacts it (tmp + rename: a kill
// mid-compaction leaves the old log whole) and goes on appending.
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { NativeInitInfo } from './native.js';

/** Who served a handle's data (see FuseSession): decides what taking it over means. */
export type ServedBy = 'js' | 'passthrough' | 'boundRead' | 'boundWrite';

export interface HandleRecord {
  fh: number;
  ino: number;
  /** open(2) flags of the OPEN (or OPENDIR), to open it again the same way. */
  flags: number;
  dir: boolean;
  servedBy: ServedBy;
  /** Passthrough: the kernel's backing id, closed when the inode's last passthrough handle goes. */
  backingId?: number;
  /** The filesystem's token for opening the same handle again (OpenReply.resume). */
  resume?: string;
}

export interface SessionSnapshot {
  init: NativeInitInfo | undefined;
  /** node id → [stable key, lookup count] */
  nodes: Map<number, [string, number]>;
  handles: Map<number, HandleRecord>;
}

type Line = { init: NativeInitInfo } | { n: [number, string] } | { c: [number, number][] } | { o: HandleRecord } | { r: number };

const LOG = 'session.log';
/** Compact when the log is this many times larger than a snapshot would be (and at least this large). */
const COMPACT_FACTOR = 4;
const COMPACT_MIN_BYTES = 1 << 20;

export class SessionState {
  private fd: number;
  private bytes = 0;
  private liveBytes = 0;

  private constructor(
    private readonly dir: string,
    readonly snapshot: SessionSnapshot,
  ) {
    this.fd = -1;
    this.compact();
  }

  /** Loads whatever an earlier process left in `dir` (nothing for a new session) and compacts it. */
  static open(dir: string): SessionState {
    return new SessionState(dir, load(path.join(dir, LOG)));
  }

  get init(): NativeInitInfo | undefined {
    return this.snapshot.init;
  }

  recordInit(init: NativeInitInfo): void {
    this.snapshot.init = init;
    this.append({ init });
  }

  /** A node id the kernel is about to learn of, with the key that finds it again. */
  recordNode(ino: number, key: string): void {
    this.snapshot.nodes.set(ino, [key, 0]);
    this.append({ n: [ino, key] });
  }

  known(ino: number): boolean {
    return this.snapshot.nodes.has(ino);
  }

  /** Lookup count changes (ino, delta); a node whose count reaches 0 is forgotten. */
  recordCounts(deltas: [number, number][]): void {
    if (deltas.length === 0) return;
    applyCounts(this.snapshot.nodes, deltas);
    this.append({ c: deltas });
  }

  recordOpen(h: HandleRecord): void {
    this.snapshot.handles.set(h.fh, h);
    this.append({ o: h });
  }

  recordRelease(fh: number): void {
    if (this.snapshot.handles.delete(fh)) this.append({ r: fh });
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private append(line: Line): void {
    const text = `${JSON.stringify(line)}\n`;
    writeSync(this.fd, text);
    this.bytes += text.length;
    if (this.bytes > COMPACT_MIN_BYTES && this.bytes > COMPACT_FACTOR * this.liveBytes) this.compact();
  }

  /** Rewrites the log as the current state: tmp + rename, so that the old log stays whole until the new one is. */
  private compact(): void {
    const lines: Line[] = [];
    const s = this.snapshot;
    if (s.init) lines.push({ init: s.init });
    const counts: [number, number][] = [];
    for (const [ino, [key, count]] of s.nodes) {
      lines.push({ n: [ino, key] });
      counts.push([ino, count]);
    }
    if (counts.length) lines.push({ c: counts });
    for (const h of s.handles.values()) lines.push({ o: h });
    const text = lines.map((l) => `${JSON.stringify(l)}\n`).join('');
    const file = path.join(this.dir, LOG);
    const tmp = `${file}.tmp`;
    appendFileSync(tmp, text, { flag: 'w', mode: 0o600 });
    renameSync(tmp, file);
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = openSync(file, 'a');
    this.bytes = this.liveBytes = text.length;
  }
}

function load(file: string): SessionSnapshot {
  const snap: SessionSnapshot = { init: undefined, nodes: new Map(), handles: new Map() };
  if (!existsSync(file)) return snap;
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      continue; // the last line of a process killed while writing it: its reply never went out
    }
    if ('init' in line) snap.init = line.init;
    else if ('n' in line) snap.nodes.set(line.n[0], [line.n[1], snap.nodes.get(line.n[0])?.[1] ?? 0]);
    else if ('c' in line) applyCounts(snap.nodes, line.c);
    else if ('o' in line) snap.handles.set(line.o.fh, line.o);
    else if ('r' in line) snap.handles.delete(line.r);
  }
  return snap;
}

/** Adds lookup count deltas; a node whose count reaches 0 is forgotten (the kernel let go of it). */
function applyCounts(nodes: Map<number, [string, number]>, deltas: [number, number][]): void {
  for (const [ino, d] of deltas) {
    const node = nodes.get(ino);
    if (!node) continue;
    node[1] += d;
    if (node[1] <= 0) nodes.delete(ino);
  }
}
