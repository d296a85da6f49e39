// `gradient datasets files put` versus a direct upload of the same bytes with the AWS SDK, in one run,
// against a real Ceph RGW on 127.0.0.1 (started here unless S3_ENDPOINT is set).
//   node --import tsx bench/put.ts [--rounds 4] [--big-mib 1024] [--big-files 64] [--small-files 10000] [--small-kib 4]
// Each round: direct SDK upload (PutObject per file, same parallelism) and our CLI command (in-process,
// into a fresh dataset version in a fresh bucket, so nothing is deduplicated), alternating which goes first. Ratio = direct time / our time
// (1.0 = as fast as a direct upload; the target is ≥ 0.8).
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { mapLimit } from '../src/catalog/map-limit.js';
import { run } from '../src/cli/main.js';
import { median, printTable, startRun, type Row } from './lib.js';
import { emptyAndDeleteBucket } from '../test/helpers/buckets.js';
import { exportRgwEnv, startRgw } from '../test/helpers/rgw.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    'big-mib': { type: 'string', default: '1024' },
    'big-files': { type: 'string', default: '64' },
    'small-files': { type: 'string', default: '10000' },
    'small-kib': { type: 'string', default: '4' },
    parallel: { type: 'string', default: '16' },
  },
});
const rounds = Number(values.rounds);
const parallel = Number(values.parallel);
const bench = startRun('put');
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';


// ---- S3 server ----
let stopRgw = () => undefined as void;
if (!process.env.S3_ENDPOINT) {
  const rgw = await startRgw({ name: 'bench-put', memstoreBytes: '6G' });
  exportRgwEnv(rgw);
  stopRgw = rgw.stop;
}
const endpoint = process.env.S3_ENDPOINT!;
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});


const work = await mkdtemp(path.join(tmpdir(), 'gd-bench-put-'));
let bucketSeq = 0;
const newBucket = async () => {
  const b = `bench-${process.pid}-${bucketSeq++}`;
  await client.send(new CreateBucketCommand({ Bucket: b }));
  return b;
};

async function makeTree(dir: string, files: number, bytes: number): Promise<void> {
  for (let i = 0; i < files; i++) {
    // 100 files per directory, like a typical image dataset
    const sub = path.join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    await writeFile(path.join(sub, `f${i}.bin`), randomBytes(bytes));
  }
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

async function direct(dir: string): Promise<number> {
  const bucket = await newBucket();
  const files = await listTree(dir);
  const t0 = performance.now();
  await mapLimit(files, parallel, async (f) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: path.relative(dir, f), Body: await readFile(f) }));
  });
  const secs = (performance.now() - t0) / 1000;
  await emptyAndDeleteBucket(bucket);
  return secs;
}

class Sink extends Writable {
  text = '';
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) {
    this.text += c.toString();
    cb();
  }
}

async function gradient(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await run(args, { stdout, stderr, env });
  if (code !== 0) throw new Error(`gradient ${args.join(' ')} → ${code}: ${stderr.text}`);
  return stdout.text;
}

async function ours(dir: string): Promise<number> {
  const bucket = await newBucket();
  const home = await mkdtemp(path.join(work, 'home-'));
  const env = { HOME: home, GRADIENT_SECRETS_DIR: path.join(home, 'secrets'), PATH: process.env.PATH };
  const sp = (await gradient(env, 'storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--endpoint', endpoint,
    '--accessKey', process.env.AWS_ACCESS_KEY_ID!, '--secretAccessKey', process.env.AWS_SECRET_ACCESS_KEY!)).trim().split(': ')[1]!;
  const ds = (await gradient(env, 'datasets', 'create', '--name', 'bench', '--storageProviderId', sp)).trim().split(': ')[1]!;
  const ref = (await gradient(env, 'datasets', 'versions', 'create', '--id', ds)).trim().split(': ')[1]!;
  const t0 = performance.now();
  await gradient(env, 'datasets', 'files', 'put', '--id', ref, '--source-path', dir, '--parallel', String(parallel));
  const secs = (performance.now() - t0) / 1000;
  await emptyAndDeleteBucket(bucket);
  return secs;
}

const rows: Row[] = [];
try {
  const cases = [
    { name: `${values['big-mib']} MiB in ${values['big-files']} files`, files: Number(values['big-files']), bytes: (Number(values['big-mib']) * 2 ** 20) / Number(values['big-files']) },
    { name: `${values['small-files']} files of ${values['small-kib']} KiB`, files: Number(values['small-files']), bytes: Number(values['small-kib']) * 1024 },
  ];
  for (const c of cases) {
    const dir = path.join(work, `tree-${rows.length}`);
    await makeTree(dir, c.files, c.bytes);
    const d: number[] = [];
    const o: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first: RGW frees deleted data lazily, so the second run of a round pays for the first.
      if (r % 2 === 0) {
        d.push(await direct(dir));
        o.push(await ours(dir));
      } else {
        o.push(await ours(dir));
        d.push(await direct(dir));
      }
      console.error(`${c.name}: round ${r + 1}: direct ${d[r]!.toFixed(2)} s, gradient ${o[r]!.toFixed(2)} s`);
    }
    const mib = (c.files * c.bytes) / 2 ** 20;
    rows.push({
      case: c.name,
      'direct SDK s': median(d),
      'gradient put s': median(o),
      'direct MiB/s': mib / median(d),
      'gradient MiB/s': mib / median(o),
      ratio: median(d) / median(o),
      'per round: direct / gradient s': d.map((x, i) => `${x.toFixed(2)} / ${o[i]!.toFixed(2)}`).join(', '),
    });
    await rm(dir, { recursive: true, force: true });
  }
  printTable(`datasets files put vs direct SDK upload (parallel ${parallel}, median of ${rounds})`, rows);
  const saved = bench.save({ rows, rounds, parallel }, [{ title: `Medians of ${rounds} rounds (ratio = direct time / our time)`, rows }]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  client.destroy();
  await rm(work, { recursive: true, force: true });
  stopRgw();
}
