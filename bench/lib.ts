// Small helpers shared by the benchmarks: timing shell commands, medians, tables, results files.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
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

export function machine(): Record<string, string | number> {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version };
}

export interface Row {
  [k: string]: string | number;
}

export function printTable(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const fmt = (v: string | number) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : v);
  console.log(`\n### ${title}\n`);
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${cols.map((c) => fmt(r[c] ?? '')).join(' | ')} |`);
}

export function saveResults(name: string, data: object): string {
  const dir = path.resolve(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), ...data }, null, 2));
  return file;
}

/** A bare SDK client on a benchmark's RGW, for the limit rows: checksums only where S3 requires them, as S3Store. */
export function sdkClient(rgw: RgwServer): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
