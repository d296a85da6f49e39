// Small helpers shared by the benchmarks: timing shell commands, medians, tables, and each run's results:
// in full under bench/results/runs/ (not in git), and as a short summary in bench/results/<name>.md (in git).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpsAgent } from 'node:https';
import type { RgwServer } from '../test/helpers/rgw.js';

const run = promisify(execFile);

/**
 * Runs a shell command in a child process. A timeout kills its whole process group (a pipeline stuck on a hung
 * mount must not hang the benchmark, nor live on after it) and rejects with "timed out after N s".
 */
export async function sh(cmd: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  if (!opts.timeoutMs) return (await run('bash', ['-c', cmd], { maxBuffer: 64 << 20 })).stdout;
  const timeoutMs = opts.timeoutMs;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', cmd], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`timed out after ${timeoutMs / 1000} s: ${cmd}`));
      else if (code !== 0) reject(new Error(`Command failed (exit ${code}): ${cmd}\n${Buffer.concat(err).toString()}`));
      else resolve(Buffer.concat(out).toString());
    });
  });
}

/** Seconds taken by a shell command. */
export async function timeSh(cmd: string, opts: { timeoutMs?: number } = {}): Promise<number> {
  const t0 = process.hrtime.bigint();
  await sh(cmd, opts);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** N workers pulling from a shared counter. */
export async function pool(n: number, total: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = next++; i < total; i = next++) await fn(i);
    }),
  );
}

/** /proc/loadavg as it reads (1, 5, 15 minutes): on 2 shared cores, other work skews every figure. */
export function loadAvg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function dropCaches(): Promise<void> {
  await sh('sync; echo 3 > /proc/sys/vm/drop_caches').catch(() => undefined);
}

export interface Machine {
  cpus: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  node: string;
}

export function machine(): Machine {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version };
}

export interface Row {
  [k: string]: string | number;
}

/** Numbers as the tables print them: integers as they are, others whole from 100 up, else two decimals. */
export const fmt = (v: string | number): string =>
  typeof v !== 'number' || Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);

/** Per-round values as one cell, in run order: "275 / 176 / 174". */
export const perRound = (xs: readonly number[] | undefined): string => (xs?.length ? xs.map(fmt).join(' / ') : '—');

function markdownTable(rows: Row[]): string[] {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => fmt(r[c] ?? '')).join(' | ')} |`)];
}

export function printTable(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  console.log(`\n### ${title}\n`);
  for (const line of markdownTable(rows)) console.log(line);
}

const RESULTS = path.resolve(import.meta.dirname, 'results');

/** Where a run came from, as its summary states it. */
export interface RunInfo {
  /** ISO time the run started. */
  startedAt: string;
  command: string;
  machine: Machine;
  /** /proc/loadavg (1, 5, 15 min) at the start and the end; absent in older results. */
  load: { start?: string; end?: string };
  /** Where the run's full results are: bench/results/runs/<file>, or for older runs a commit that holds them. */
  fullResults: string;
}

export interface SummaryTable {
  title: string;
  rows: Row[];
}

export interface BenchRun {
  /**
   * Writes the full results to bench/results/runs/<name>-<time>.json (ignored by git) and overwrites
   * bench/results/<name>.md (committed) with the run's headline tables; returns both paths.
   */
  save(data: object, summary: SummaryTable[], notes?: string[]): { full: string; summary: string };
}

/** Call first thing in a benchmark: notes when, where and how the run started, and its load. */
export function startRun(name: string): BenchRun {
  const started = new Date();
  const script = process.argv[1] ? path.relative(path.dirname(import.meta.dirname), process.argv[1]) : `bench/${name}.ts`;
  const command = ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  const loadStart = loadAvg();
  return {
    save(data, summary, notes = []) {
      const runs = path.join(RESULTS, 'runs');
      mkdirSync(runs, { recursive: true });
      const full = path.join(runs, `${name}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
      const fullResults = path.relative(path.dirname(import.meta.dirname), full);
      const run: RunInfo = { startedAt: started.toISOString(), command, machine: machine(), load: { start: loadStart, end: loadAvg() }, fullResults };
      writeFileSync(full, JSON.stringify({ benchmark: name, ...run, ...data }, null, 2));
      return { full, summary: writeSummary(name, run, summary, notes) };
    },
  };
}

/** bench/results/<name>.md: a short account of one run (under 40 lines), overwritten by the next. */
export function writeSummary(name: string, run: RunInfo, tables: SummaryTable[], notes: string[] = []): string {
  const m = run.machine;
  const lines = [
    `# bench/${name}.ts: latest run`,
    '',
    `Written by the benchmark at the end of each run (\`startRun\` in bench/lib.ts); a run's full results go to bench/results/runs/, which git ignores.`,
    `- **Run**: ${run.startedAt}; full results: \`${run.fullResults}\``,
    `- **Machine**: ${m.cpus} cores (${m.cpu}), ${m.memGiB} GiB, kernel ${m.kernel}, Node ${m.node}`,
    `- **Load** (1/5/15 min): ${run.load.start || run.load.end ? `${run.load.start ?? '?'} at the start, ${run.load.end ?? '?'} at the end` : 'not recorded'}`,
    `- **Command**: \`${run.command}\``,
    ...notes.map((n) => `- ${n}`),
  ];
  for (const t of tables) if (t.rows.length) lines.push('', `**${t.title}**`, '', ...markdownTable(t.rows));
  const file = path.join(RESULTS, `${name}.md`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(file, `${lines.join('\n')}\n`);
  if (lines.length >= 40) console.warn(`${file}: ${lines.length} lines, a summary should stay under 40`);
  return file;
}

/**
 * A bare SDK client on a benchmark's RGW, for the limit rows: checksums only where S3 requires them, as S3Store.
 * `tls`: the RGW's TLS endpoint, trusting its throwaway CA (and only it).
 */
export function sdkClient(rgw: RgwServer, opts: { tls?: boolean } = {}): S3Client {
  return new S3Client({
    endpoint: opts.tls ? rgw.endpointTls : rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(opts.tls ? { requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ keepAlive: true, ca: readFileSync(rgw.caFile) }) }) } : {}),
  });
}

// ---------------------------------------------------------------- CPU of the process doing the work

let clockTicks: number | undefined;
/** Clock ticks per second, the unit of /proc/<pid>/stat's times (100 on every Linux we run). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU seconds (utime + stime, all threads) a process has used so far, from /proc/<pid>/stat; NaN once it is
 * gone. The serving process of a mount (our `gradient mount`, rclone's or s3fs's) is measured this way:
 * take it before and after a workload and subtract.
 */
export function procCpu(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process, all threads (the SDK requests of the limit rows run here). */
export function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** What RGW did so far: its request counters (admin socket, ~0.1 s to read) and its CPU seconds. */
export interface RgwCounters {
  /** Requests of any kind. */
  req: number;
  /** Object GETs and HEADs (RGW counts both as get). */
  get: number;
  /** Bytes sent in GET bodies. */
  getBytes: number;
  cpu: number;
}

export function rgwCounters(rgw: RgwServer): () => Promise<RgwCounters> {
  const pid = Number(readFileSync(path.join(rgw.dir, 'run/client.rgw.r.pid'), 'utf8'));
  return async () => {
    const dump = JSON.parse(await sh(`ceph --admin-daemon ${rgw.dir}/run/client.rgw.r.asok perf dump`, { timeoutMs: 30_000 })) as {
      rgw: { req: number; get: number; get_b: number };
    };
    return { req: dump.rgw.req, get: dump.rgw.get, getBytes: dump.rgw.get_b, cpu: procCpu(pid) };
  };
}

// ---------------------------------------------------------------- the reader child (bench/io.py)

export interface IoResult {
  /** Seconds measured inside the child (its start-up not included). */
  secs: number;
  bytes: number;
  files?: number;
  reads?: number;
  /** epoch: files found by the walk, and its share of `secs`. */
  walked?: number;
  walkSecs?: number;
}

/**
 * Runs bench/io.py (seq, small, random, epoch: see its header) in a child process: I/O on a mount never runs in
 * a benchmark's own process, and a hung mount fails the command at `timeoutMs` instead of hanging the run.
 */
export async function io(args: (string | number)[], timeoutMs: number): Promise<IoResult> {
  return JSON.parse(await sh(`python3 ${path.join(import.meta.dirname, 'io.py')} ${args.join(' ')}`, { timeoutMs })) as IoResult;
}

/** A seeded generator (mulberry32): the same "random" offsets and orders for every tool and every run. */
export function seeded(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The SDK requests the limit rows and the checks make, on one bucket. */
export function sdkOps(client: S3Client, bucket: string) {
  return {
    /** Bytes [start, end) of an object, read whole; returns their count. */
    async getRange(key: string, start: number, end: number): Promise<number> {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
      return (await out.Body!.transformToByteArray()).length;
    },
    async get(key: string): Promise<number> {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await out.Body!.transformToByteArray()).length;
    },
    /** Every key under a prefix (with a delimiter: one level, common prefixes counted too). */
    async list(prefix: string, delimiter?: string): Promise<{ keys: string[]; count: number }> {
      const keys: string[] = [];
      let count = 0;
      let token: string | undefined;
      do {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
        for (const o of out.Contents ?? []) keys.push(o.Key!);
        count += out.KeyCount ?? 0;
        token = out.NextContinuationToken;
      } while (token);
      return { keys, count };
    },
    /** Objects under a prefix of exactly `size` bytes (directory markers never count). */
    async countSized(prefix: string, size: number): Promise<number> {
      let n = 0;
      let token: string | undefined;
      do {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        n += (out.Contents ?? []).filter((o) => !o.Key!.endsWith('/') && o.Size === size).length;
        token = out.NextContinuationToken;
      } while (token);
      return n;
    },
    async size(key: string): Promise<number | undefined> {
      return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength;
    },
    async deletePrefix(prefix: string): Promise<void> {
      let token: string | undefined;
      do {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
        token = out.NextContinuationToken;
      } while (token);
    },
  };
}
