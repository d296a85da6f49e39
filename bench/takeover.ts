// Issue 19: a crash or an upgrade of the serving process is a pause in the readers, not an error (target:
// under 2 s). The real `gradient mount` (dist/, a child process) serves a committed team dataset from RGW;
// each round starts it with an empty cache and runs two readers through the mount: a cold sequential read of
// a large file (io.py seq, hashed) and a loop that opens, reads and checks small files (io.py loop: every
// open reaches the daemon, so the longest wait for one file is the pause a reader feels). One second in, the
// serving process is killed (kill -9) or upgraded (`gradient mount --upgrade`), alternating round by round.
// Per round: the pause seen by statfs (answered by no cache: the first request a new process serves), the
// longest wait for one file in the loop, reader errors and wrong reads (both must be 0).
//   node --import tsx bench/takeover.ts [--rounds 6] [--big-mib 256]
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { configPath } from '../src/config/paths.js';
import { emptyAndDeleteBucket } from '../test/helpers/buckets.js';
import { freshBucket, s3Server } from '../test/helpers/s3.js';
import { writeTree } from '../test/helpers/tree.js';
import { benchRgw, cliHome } from './cli-home.js';
import { buildDist, removeHome, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { median, printTable, startRun, type Row } from './lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, 'big-mib': { type: 'string', default: '256' } } });
const rounds = Number(values.rounds);
const bigBytes = Number(values['big-mib']) * 2 ** 20;
const bench = startRun('takeover');
const IO = path.resolve(import.meta.dirname, 'io.py');
const SMALL_FILES = 200;

const stopRgw = await benchRgw('bench-takeover', '2G');
const work = await mkdtemp(path.join(tmpdir(), 'gd-bench-takeover-'));
const { env, gradient } = cliHome(work);
let bucket: string | undefined;
let daemon: DaemonProcess | undefined;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs io.py; resolves with its JSON line (or rejects with its stderr). */
function io(...args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile('python3', [IO, ...args], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`io.py ${args[0]}: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

/** Milliseconds until statfs of the mount answers again (no cache answers it: a serving process must). */
async function untilAnswering(mnt: string, t0: number): Promise<number> {
  await statfs(mnt);
  return Date.now() - t0;
}

try {
  await buildDist();
  bucket = await freshBucket('bench-takeover');
  const s = s3Server();
  const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
  const ds = (await gradient('datasets', 'create', '--name', 'takeover', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
  const v = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
  const files: Record<string, Buffer> = { 'big.bin': randomBytes(bigBytes) };
  for (let i = 0; i < SMALL_FILES; i++) files[`small/f${i}.bin`] = randomBytes(16 * 1024 + i);
  await gradient('datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', await writeTree(path.join(work, 'src'), files));
  await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
  const { teamId, storageProviders } = YAML.parse(await readFile(configPath(undefined, env), 'utf8')) as Record<string, unknown>;

  const rows: Row[] = [];
  const samples: Record<string, unknown>[] = [];
  for (let round = 1; round <= rounds; round++) {
    const how = round % 2 === 1 ? 'kill -9' : 'upgrade';
    const home = await mkdtemp(path.join(work, `round-${round}-`));
    daemon = await startDaemonProcess({
      home,
      env: { ...env, HOME: home },
      settings: `team:\n  type: dataset\n  id: ${ds}\n  version: ${v}\n`,
      config: { teamId, storageProviders, publicDatasets: { datasets: { mnist: false } } },
      cacheMaxSize: '2G',
      entries: ['team'],
    });
    const root = path.join(daemon.mnt, 'team');
    const hashes = path.join(home, 'small.hashes');
    await writeFile(hashes, Object.entries(files).filter(([p]) => p.startsWith('small/')).map(([p, b]) => `${sha(b)} ${path.join(root, p)}`).join('\n') + '\n');
    const seq = io('seq', path.join(root, 'big.bin'), 'hash');
    const loop = io('loop', hashes, '6');
    await sleep(1000);
    const before = daemon.servingPid;
    const t0 = Date.now();
    if (how === 'kill -9') process.kill(before, 'SIGKILL');
    else await gradient('mount', '--upgrade', '--socket', daemon.socket);
    const pauseMs = await untilAnswering(daemon.mnt, t0);
    const failed = (e: Error): Record<string, unknown> => ({ error: e.message });
    const [seqOut, loopOut] = await Promise.all([seq.catch(failed), loop.catch(failed)]);
    const after = (await daemon.status()).pid;
    const seqRight = seqOut.sha256 === sha(files['big.bin']!);
    rows.push({
      round,
      disruption: how,
      'statfs pause ms': pauseMs,
      'longest wait for one file ms': Math.round(Number(loopOut.longestMs ?? NaN)),
      'file reads': Number(loopOut.ops ?? 0),
      'reader errors': Number(loopOut.errors ?? 0) + (seqOut.error ? 1 : 0),
      'wrong reads': Number(loopOut.wrong ?? 0) + (seqRight || seqOut.error ? 0 : 1),
      'new serving process': after !== before ? 'yes' : 'NO',
    });
    samples.push({ round, how, before, after, seq: seqOut, loop: loopOut, pauseMs });
    console.log(JSON.stringify(rows.at(-1)));
    await daemon.stop();
    daemon = undefined;
    removeHome(home);
  }

  const summary = (how: string): Row => {
    const rs = rows.filter((r) => r.disruption === how);
    const pauses = rs.map((r) => Number(r['statfs pause ms']));
    const waits = rs.map((r) => Number(r['longest wait for one file ms']));
    return {
      disruption: how,
      rounds: rs.length,
      'statfs pause ms, median (min–max)': `${Math.round(median(pauses))} (${Math.min(...pauses)}–${Math.max(...pauses)})`,
      'longest wait for one file ms, median (max)': `${Math.round(median(waits))} (${Math.max(...waits)})`,
      'reader errors': rs.reduce((a, r) => a + Number(r['reader errors']), 0),
      'wrong reads': rs.reduce((a, r) => a + Number(r['wrong reads']), 0),
      'target ms': 2000,
    };
  };
  const totals = [summary('kill -9'), summary('upgrade')];
  printTable('per round (a cold sequential read and a small-file loop through the mount while the serving process goes)', rows);
  printTable('serving process killed or upgraded under readers: the pause they see', totals);
  const saved = bench.save({ rows, samples, bigBytes, smallFiles: SMALL_FILES }, [
    { title: 'serving process killed or upgraded under readers: the pause they see', rows: totals },
    { title: 'per round', rows },
  ]);
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await daemon?.stop();
  if (bucket) await emptyAndDeleteBucket(bucket).catch(() => undefined);
  removeHome(work);
  stopRgw();
}
