// Writing into a dataset version through the mount (an output: `version: new` in settings.yaml, served by the
// real `gradient mount` daemon from dist/) versus `gradient datasets files put` of the same tree, on a
// throwaway Ceph RGW on 127.0.0.1:
//   1. one 1 GiB file: `dd bs=1M` into the mount until it returns (close() returns once the blob and the
//      version's record are in the provider)                    vs files put of the file
//   2. 1000 files of 4 KiB in 10 directories: `cp -r` into the mount (sequential: each close waits for its
//      upload), and a program copying with 16 threads                               vs files put of the tree (16 in parallel)
// Every measurement writes fresh random bytes (else the second would find its blobs in the provider and
// upload nothing). Ratio = files put time / our time (target ≥ 0.8).
//   node --import tsx bench/outputs.ts [--rounds 3] [--size-mib 1024] [--files 1000] [--file-kib 4]
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { run } from '../src/cli/main.js';
import { startRgw } from '../test/helpers/rgw.js';
import { buildDist, removeHome, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { median, printTable, sdkClient, sh, startRun, type Row } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '1000' },
    'file-kib': { type: 'string', default: '4' },
  },
});
const rounds = Number(values.rounds);
const MiB = 2 ** 20;
const size = Number(values['size-mib']) * MiB;
const nFiles = Number(values.files);
const fileBytes = Number(values['file-kib']) * 1024;
const TIMEOUT_MS = 600_000;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const t0Run = Date.now();
const log = (msg: string) => console.error(`[outputs ${((Date.now() - t0Run) / 1000).toFixed(0).padStart(5)}s] ${msg}`);
const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

class Sink extends Writable {
  text = '';
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) {
    this.text += c.toString();
    cb();
  }
}

const bench = startRun('outputs');
const rgw = await startRgw({ name: 'bench-outputs', memstoreBytes: '8G' });
const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-outputs-'));
let daemon: DaemonProcess | undefined;
try {
  await buildDist();
  const home = path.join(work, 'home');
  mkdirSync(home);
  const config = path.join(home, 'cli-config.yaml');
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: process.env.PATH, GRADIENT_SECRETS_DIR: path.join(home, 'secrets') };
  const gradient = async (...args: string[]): Promise<string> => {
    const stdout = new Sink();
    const stderr = new Sink();
    const code = await run(['--config', config, ...args], { stdout, stderr, env });
    if (code !== 0) throw new Error(`gradient ${args.join(' ')} → ${code}: ${stderr.text}`);
    return stdout.text;
  };
  const bucket = 'bench-outputs';
  const client = sdkClient(rgw);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  const sp = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--endpoint', rgw.endpoint, '--accessKey', rgw.accessKeyId, '--secretAccessKey', rgw.secretAccessKey)).trim().split(': ')[1]!;
  const ds = (await gradient('datasets', 'create', '--name', 'bench', '--storageProviderId', sp)).trim().split(': ')[1]!;
  const cliConfig = YAML.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;

  // One daemon; each measurement writes into a fresh `version: new` entry.
  let entrySeq = 0;
  daemon = await startDaemonProcess({ home: path.join(work, 'daemon'), env: { ...env, HOME: path.join(work, 'daemon') }, config: cliConfig, cacheMaxSize: '4G', settings: '' });
  const d = daemon;
  const freshOutput = async (): Promise<string> => {
    const name = `out${entrySeq++}`;
    writeFileSync(d.settings, `${name}:\n  type: dataset\n  id: ${ds}\n  version: new\n`);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = await d.status();
      if (s.mounts.find((m) => m.name === name)?.state === 'ok') return path.join(d.mnt, name);
      if (Date.now() > deadline) throw new Error(`${name} did not mount: ${JSON.stringify(s.mounts)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const putInto = async (src: string): Promise<number> => {
    const ref = (await gradient('datasets', 'versions', 'create', '--id', ds)).trim().split(': ')[1]!;
    const t0 = process.hrtime.bigint();
    await gradient('datasets', 'files', 'put', '--id', ref, '--source-path', src);
    return secs(t0);
  };
  const makeTree = (dir: string) => {
    for (let i = 0; i < nFiles; i++) {
      const sub = path.join(dir, `d${Math.floor(i / 100)}`);
      if (i % 100 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(path.join(sub, `f${i}.bin`), randomBytes(fileBytes));
    }
  };

  // A program writing its files from 16 threads (as a data loader or a checkpointing job does).
  const copier = path.join(work, 'copy16.py');
  writeFileSync(
    copier,
    [
      'import os, shutil, sys',
      'from concurrent.futures import ThreadPoolExecutor',
      'src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])',
      'files = []',
      'for d, _, names in os.walk(src):',
      '    os.makedirs(os.path.join(dst, os.path.relpath(d, src)), exist_ok=True)',
      '    files += [os.path.relpath(os.path.join(d, f), src) for f in names]',
      'with ThreadPoolExecutor(n) as ex:',
      '    list(ex.map(lambda f: shutil.copyfile(os.path.join(src, f), os.path.join(dst, f)), files))',
      '',
    ].join('\n'),
  );
  const big = { ours: [] as number[], put: [] as number[] };
  const small = { seq: [] as number[], par: [] as number[], put: [] as number[] };
  /** The daemon's CPU seconds per measurement (its supervisor's and serving process's together). */
  const cpu = { big: [] as number[], seq: [] as number[], par: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    // 1 GiB: fresh bytes for each side, written before the clock starts (and in the page cache, for both).
    const src = path.join(work, 'big.bin');
    await sh(`head -c ${size} /dev/urandom > ${src}`);
    const out = await freshOutput();
    let c0 = d.cpu();
    let t0 = process.hrtime.bigint();
    await sh(`dd if=${src} of=${out}/big.bin bs=1M status=none`, { timeoutMs: TIMEOUT_MS });
    big.ours.push(secs(t0));
    cpu.big.push(d.cpu() - c0);
    await sh(`head -c ${size} /dev/urandom > ${src}`);
    big.put.push(await putInto(src));
    await sh(`rm -f ${src}`);
    log(`round ${r + 1}: 1 GiB: mount ${big.ours[r]!.toFixed(2)} s, files put ${big.put[r]!.toFixed(2)} s`);

    // Small files: cp -r, 16 threads copying, files put; a fresh tree for each.
    const tree = path.join(work, 'tree');
    makeTree(tree);
    let o = await freshOutput();
    c0 = d.cpu();
    t0 = process.hrtime.bigint();
    await sh(`cp -r ${tree} ${o}/tree`, { timeoutMs: TIMEOUT_MS });
    small.seq.push(secs(t0));
    cpu.seq.push(d.cpu() - c0);
    await sh(`rm -rf ${tree}`);
    makeTree(tree);
    o = await freshOutput();
    c0 = d.cpu();
    t0 = process.hrtime.bigint();
    await sh(`python3 ${copier} ${tree} ${o}/tree 16`, { timeoutMs: TIMEOUT_MS });
    small.par.push(secs(t0));
    cpu.par.push(d.cpu() - c0);
    await sh(`rm -rf ${tree}`);
    makeTree(tree);
    small.put.push(await putInto(tree));
    await sh(`rm -rf ${tree}`);
    log(`round ${r + 1}: ${nFiles} files: cp -r ${small.seq[r]!.toFixed(2)} s, 16 threads ${small.par[r]!.toFixed(2)} s, files put ${small.put[r]!.toFixed(2)} s`);
  }
  const pr = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');
  const rows: Row[] = [
    { case: `${size / MiB} MiB, one file: dd bs=1M until it returns`, 'output s': median(big.ours), 'files put s': median(big.put), 'output MiB/s': size / MiB / median(big.ours), 'daemon CPU s': median(cpu.big), ratio: median(big.put) / median(big.ours), 'rounds (output; put)': `${pr(big.ours)}; ${pr(big.put)}` },
    { case: `${nFiles} × ${fileBytes / 1024} KiB: cp -r (one file at a time)`, 'output s': median(small.seq), 'files put s': median(small.put), 'output MiB/s': (nFiles * fileBytes) / MiB / median(small.seq), 'daemon CPU s': median(cpu.seq), ratio: median(small.put) / median(small.seq), 'rounds (output; put)': `${pr(small.seq)}; ${pr(small.put)}` },
    { case: `${nFiles} × ${fileBytes / 1024} KiB: 16 threads copying`, 'output s': median(small.par), 'files put s': median(small.put), 'output MiB/s': (nFiles * fileBytes) / MiB / median(small.par), 'daemon CPU s': median(cpu.par), ratio: median(small.put) / median(small.par), 'rounds (output; put)': `${pr(small.par)}; ${pr(small.put)}` },
  ];
  printTable(`writing into an output version vs files put (median of ${rounds})`, rows);
  const saved = bench.save({ rows, rounds }, [{ title: `Medians of ${rounds} rounds (ratio = files put time / output time; target ≥ 0.8)`, rows }], [
    'Output: the real daemon (dist/) with a `version: new` entry; timed until the writing command returns (every close() waits for the blob and the version\'s journal record).',
    'files put: the CLI in-process into a fresh version, 16 files in parallel (its default). Fresh random bytes for every measurement, so nothing is deduplicated.',
  ]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await daemon?.stop().catch(() => undefined);
  rgw.stop();
  removeHome(work);
}
