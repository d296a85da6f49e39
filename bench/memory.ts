// The daemon's memory (issue 21): idle footprint and a loaded workload with and without a memory target, and in
// a cgroup with a memory limit. The real `gradient mount` (dist/, a settings.yaml with one bucket entry and one
// team dataset entry, plus the public mnist sample), measured from /proc: VmRSS / VmHWM / RssAnon of both
// processes (the supervisor and the serving process), and Pss (smaps_rollup) where pages are shared.
//   node --import tsx bench/memory.ts [--rounds 3] [--readers 100] [--target 256M] [--cgroup 512M]
// The workload, all at once: `readers` concurrent readers of a team dataset (threads of one Python process,
// each reading its own files of the version), a cold 1 GiB read of a bucket object, 1 GiB written to the bucket
// entry (closed: uploaded), and a switch of the dataset entry to another version of the dataset.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import YAML from 'yaml';
import { runCli } from '../test/helpers/cli.js';
import { memoryCgroup, type MemoryCgroup } from '../test/helpers/memory-cgroup.js';
import { startRgw } from '../test/helpers/rgw.js';
import { buildDist, removeHome, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { median, printTable, sdkClient, sh, startRun, type Row } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    readers: { type: 'string', default: '100' },
    target: { type: 'string', default: '256M' },
    cgroup: { type: 'string', default: '512M' },
    files: { type: 'string', default: '300' },
    // Which of the loaded runs: none (no target), target, cgroup.
    only: { type: 'string', default: 'none,target,cgroup' },
    'no-idle': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const READERS = Number(values.readers);
const FILES = Number(values.files);
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const log = (msg: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One process's memory as the kernel counts it (bytes). */
interface ProcMemory {
  rss: number;
  hwm: number;
  anon: number;
  pss: number;
}

function procMemory(pid: number): ProcMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM'), anon: kib('RssAnon'), pss };
  } catch {
    return undefined;
  }
}

const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-memory-'));
const bench = startRun('memory');
const rgw = await startRgw({ name: 'bench-memory', memstoreBytes: '8G' });
const secrets = path.join(work, 'secrets');
mkdirSync(secrets, { mode: 0o700 });
writeFileSync(path.join(secrets, 'bucket-secret'), `${rgw.secretAccessKey}\n`, { mode: 0o600 });
const baseEnv = (home: string): NodeJS.ProcessEnv => ({ HOME: home, PATH: process.env.PATH, GRADIENT_SECRETS_DIR: secrets, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
let daemon: DaemonProcess | undefined;
let cgroup: MemoryCgroup | undefined;

/** `FILES` files of 256 KiB to 4 MiB, then a second version with a tenth of them rewritten. */
async function teamDataset(): Promise<{ id: string; v1: string; v2: string; config: Record<string, unknown>; files: { path: string; size: number }[] }> {
  const client = sdkClient(rgw);
  await client.send(new CreateBucketCommand({ Bucket: 'catalog' }));
  const src = path.join(work, 'src');
  mkdirSync(src);
  const files: { path: string; size: number }[] = [];
  const sizes = [256 * 1024, 1 * MiB, 2 * MiB, 4 * MiB];
  for (let i = 0; i < FILES; i++) {
    const rel = `part-${i % 10}/file-${String(i).padStart(4, '0')}.bin`;
    const size = sizes[i % sizes.length]!;
    mkdirSync(path.join(src, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(src, rel), randomBytes(size));
    files.push({ path: rel, size });
  }
  const home = path.join(work, 'catalog');
  mkdirSync(home);
  const config = path.join(home, 'config.yaml');
  const env = baseEnv(home);
  const gradient = async (...args: string[]) => {
    const r = await runCli(['--config', config, '--json', ...args], env);
    if (r.code !== 0) throw new Error(`gradient ${args.slice(0, 3).join(' ')}: ${r.stderr.trim()}`);
    try {
      return JSON.parse(r.stdout) as { id: string };
    } catch {
      return { id: '' };
    }
  };
  const provider = await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', 'catalog', '--endpoint', rgw.endpoint, '--accessKey', rgw.accessKeyId, '--secretAccessKey', rgw.secretAccessKey);
  const ds = await gradient('datasets', 'create', '--name', 'train', '--storageProviderId', provider.id);
  const version = async () => {
    const v = await gradient('datasets', 'versions', 'create', '--id', ds.id);
    await gradient('datasets', 'files', 'put', '--id', `${ds.id}:${v.id}`, '--source-path', src);
    await gradient('datasets', 'versions', 'commit', '--id', `${ds.id}:${v.id}`);
    return v.id;
  };
  const v1 = await version();
  for (let i = 0; i < FILES; i += 10) writeFileSync(path.join(src, files[i]!.path), randomBytes(files[i]!.size));
  const v2 = await version();
  client.destroy();
  const { teamId, storageProviders } = YAML.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  return { id: ds.id, v1, v2, config: { teamId, storageProviders }, files };
}

log('making the team dataset and the bucket');
const tSetup = Date.now();
const ds = await teamDataset();
{
  const client = sdkClient(rgw);
  await client.send(new CreateBucketCommand({ Bucket: 'data' }));
  await client.send(new PutObjectCommand({ Bucket: 'data', Key: 'big.bin', Body: randomBytes(GiB) }));
  client.destroy();
}
await buildDist();
log(`set up in ${((Date.now() - tSetup) / 1000).toFixed(0)} s`);

const settings = (version: string) =>
  [
    'bucket:',
    '  type: s3',
    '  url: s3://data',
    `  endpoint: ${rgw.endpoint}`,
    `  accessKeyId: ${rgw.accessKeyId}`,
    '  secretAccessKey: secret:bucket-secret',
    'train:',
    '  type: dataset',
    `  id: ${ds.id}`,
    `  version: ${version}`,
    '',
  ].join('\n');

/** Readers as threads of one Python process: each reads its files whole, 1 MiB at a time; prints bytes and errors. */
const readerScript = path.join(work, 'readers.py');
writeFileSync(
  readerScript,
  `import json, sys, threading
root, n, files = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
done = [0] * n; errors = []
def reader(i):
    for j in range(i, len(files), n):
        rel, size = files[j]
        got = 0
        try:
            with open(f"{root}/{rel}", "rb", buffering=0) as f:
                while True:
                    b = f.read(1 << 20)
                    if not b: break
                    got += len(b)
        except OSError as e:
            errors.append(f"{rel}: {e}"); continue
        if got != size: errors.append(f"{rel}: read {got} of {size} bytes")
        done[i] += got
ts = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps({"bytes": sum(done), "errors": errors[:20], "errorCount": len(errors)}))
`,
);

interface Sampled {
  peakServing: ProcMemory;
  peakSupervisor: ProcMemory;
  /** Highest sum of both processes' Pss seen (what the two cost together, shared pages counted once). */
  peakPssSum: number;
}

/** Samples both processes' memory every 100 ms (Pss every 500 ms) until stopped. */
function sampler(servingPid: () => number, supervisorPid: number): { stop(): Sampled } {
  const zero: ProcMemory = { rss: 0, hwm: 0, anon: 0, pss: 0 };
  const peak = { serving: { ...zero }, supervisor: { ...zero }, pssSum: 0 };
  let ticks = 0;
  const take = (into: ProcMemory, m: ProcMemory | undefined) => {
    if (!m) return;
    into.rss = Math.max(into.rss, m.rss);
    into.hwm = Math.max(into.hwm, m.hwm);
    into.anon = Math.max(into.anon, m.anon);
    if (Number.isFinite(m.pss)) into.pss = Math.max(into.pss, m.pss);
  };
  const timer = setInterval(() => {
    const s = procMemory(servingPid());
    const p = ticks++ % 5 === 0 ? procMemory(supervisorPid) : undefined;
    take(peak.serving, s);
    take(peak.supervisor, p);
    if (s && p) peak.pssSum = Math.max(peak.pssSum, s.pss + p.pss);
  }, 100);
  return {
    stop: () => {
      clearInterval(timer);
      return { peakServing: peak.serving, peakSupervisor: peak.supervisor, peakPssSum: peak.pssSum };
    },
  };
}

interface Outcome {
  config: string;
  seconds: number;
  readSeconds: number;
  coldSeconds: number;
  writeSeconds: number;
  switchSeconds: number;
  bytes: number;
  errors: number;
  errorSamples: string[];
  mem: Sampled;
  oomKills: number;
  restarts: number;
  status: unknown;
  atPeak: unknown;
}

async function startOurs(name: string, mountArgs: string[], wrap?: string[]): Promise<DaemonProcess> {
  const home = mkdtempSync(path.join(work, `${name}-`));
  return startDaemonProcess({
    home,
    env: baseEnv(home),
    settings: settings(ds.v1),
    config: ds.config,
    cacheMaxSize: '8G',
    cacheMinFreeSpace: 0,
    entries: ['bucket', 'train', 'mnist'],
    mountArgs,
    ...(wrap ? { wrap } : {}),
  });
}

async function servingPid(d: DaemonProcess): Promise<number> {
  return (await d.status()).pid;
}

async function idle(): Promise<{ serving: ProcMemory; supervisor: ProcMemory }> {
  daemon = await startOurs('idle', []);
  await sh(`ls -l ${daemon.mnt}/bucket ${daemon.mnt}/train ${daemon.mnt}/mnist > /dev/null`);
  await sleep(5000);
  const pid = await servingPid(daemon);
  const out = { serving: procMemory(pid)!, supervisor: procMemory(daemon.pid)! };
  await daemon.stop();
  daemon = undefined;
  return out;
}

async function loaded(config: string, round: number, mountArgs: string[], cgroupLimit?: number): Promise<Outcome> {
  if (cgroupLimit !== undefined) cgroup = memoryCgroup(`gd-bench-memory-${process.pid}`, cgroupLimit);
  const wrap = cgroup?.wrap;
  daemon = await startOurs(`${config.replace(/\W+/g, '-')}-${round}`, mountArgs, wrap);
  const d = daemon;
  const firstPid = await servingPid(d);
  let pid = firstPid;
  const pids = new Set([firstPid]);
  // The daemon's own account of its memory when its RSS was highest: what held what at the peak.
  let atPeak: { rssBytes: number } | undefined;
  const poll = setInterval(() => {
    void d.status().then((s) => {
      pid = s.pid;
      pids.add(s.pid);
      if (s.memory && s.memory.rssBytes > (atPeak?.rssBytes ?? 0)) atPeak = s.memory;
    }, () => undefined);
  }, 250);
  const sample = sampler(() => pid, d.pid);
  const t0 = Date.now();
  const timed = async <T>(p: Promise<T>): Promise<[T, number]> => {
    const r = await p;
    return [r, (Date.now() - t0) / 1000];
  };
  const readers = timed(
    new Promise<{ bytes: number; errors: string[]; errorCount: number }>((resolve, reject) => {
      const child = spawn('python3', [readerScript, `${d.mnt}/train`, String(READERS), JSON.stringify(ds.files.map((f) => [f.path, f.size]))], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.once('error', reject);
      child.once('close', () => (out ? resolve(JSON.parse(out) as { bytes: number; errors: string[]; errorCount: number }) : reject(new Error('readers printed nothing'))));
    }),
  );
  const cold = timed(sh(`dd if=${d.mnt}/bucket/big.bin of=/dev/null bs=1M 2>&1 | tail -1`).then(() => GiB));
  const write = timed(sh(`dd if=/dev/zero of=${d.mnt}/bucket/out-${round}.bin bs=1M count=1024 2>&1 | tail -1`).then(() => GiB));
  const switched = timed(
    (async () => {
      await sleep(2000);
      writeFileSync(d.settings, settings(ds.v2));
      for (;;) {
        const s = await d.status().catch(() => undefined);
        if (s?.mounts.find((m) => m.name === 'train')?.resolved?.includes(ds.v2)) return true;
        await sleep(100);
      }
    })(),
  );
  const settled = await Promise.allSettled([readers, cold, write, switched]);
  const seconds = (Date.now() - t0) / 1000;
  clearInterval(poll);
  const mem = sample.stop();
  const errorSamples = settled.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message).slice(0, 300)] : []));
  const r = settled[0].status === 'fulfilled' ? settled[0].value : undefined;
  const status = await d.status().catch(() => undefined);
  // The object written must be whole in the bucket.
  const listed = await sh(`stat -c %s ${d.mnt}/bucket/out-${round}.bin`).catch((err: Error) => err.message);
  if (listed.trim() !== String(GiB)) errorSamples.push(`out-${round}.bin: ${listed.trim()} bytes after close`);
  await sh(`rm -f ${d.mnt}/bucket/out-${round}.bin`);
  const oomKills = cgroup?.oomKills() ?? 0;
  await d.stop();
  daemon = undefined;
  await cgroup?.remove();
  cgroup = undefined;
  const at = (i: number) => (settled[i]!.status === 'fulfilled' ? (settled[i] as PromiseFulfilledResult<[unknown, number]>).value[1] : NaN);
  return {
    config,
    seconds,
    readSeconds: at(0),
    coldSeconds: at(1),
    writeSeconds: at(2),
    switchSeconds: at(3),
    bytes: (r?.[0].bytes ?? 0) + 2 * GiB,
    errors: (r?.[0].errorCount ?? 0) + errorSamples.length,
    errorSamples: [...(r?.[0].errors ?? []), ...errorSamples],
    mem,
    oomKills,
    restarts: pids.size - 1,
    status: status?.memory,
    atPeak,
  };
}

const mib = (n: number) => Math.round(n / MiB);
const spread = (xs: number[]) => `${mib(median(xs))} (${mib(Math.min(...xs))}–${mib(Math.max(...xs))})`;
try {
  log('idle');
  const idles = [];
  for (let i = 0; i < (values['no-idle'] ? 0 : ROUNDS); i++) idles.push(await idle());
  const idleRows: Row[] = idles.length === 0 ? [] : [
    { process: 'serving', 'VmRSS MiB': spread(idles.map((x) => x.serving.rss)), 'RssAnon MiB': spread(idles.map((x) => x.serving.anon)), 'Pss MiB': spread(idles.map((x) => x.serving.pss)), 'VmHWM MiB': spread(idles.map((x) => x.serving.hwm)) },
    { process: 'supervisor', 'VmRSS MiB': spread(idles.map((x) => x.supervisor.rss)), 'RssAnon MiB': spread(idles.map((x) => x.supervisor.anon)), 'Pss MiB': spread(idles.map((x) => x.supervisor.pss)), 'VmHWM MiB': spread(idles.map((x) => x.supervisor.hwm)) },
    { process: 'both (Pss sum)', 'Pss MiB': spread(idles.map((x) => x.serving.pss + x.supervisor.pss)) },
  ];
  printTable('idle: one bucket entry, one team dataset entry, mnist (median, min–max)', idleRows);

  const configs: { key: string; name: string; args: string[]; cgroup?: number }[] = [
    { key: 'none', name: 'no target', args: [] },
    { key: 'target', name: `--memory-target ${values.target}`, args: ['--memory-target', values.target] },
    { key: 'cgroup', name: `cgroup memory limit ${values.cgroup} (default target)`, args: [], cgroup: Number(execFileSync('numfmt', ['--from=iec', values.cgroup.replace(/i?B$/, '')]).toString()) },
  ].filter((c) => values.only.split(',').includes(c.key));
  const outcomes: Outcome[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of configs) {
      log(`round ${round + 1}: ${c.name}`);
      const o = await loaded(c.name, round, c.args, c.cgroup);
      console.log(`  at the peak: ${JSON.stringify(o.atPeak, (_k, v: unknown) => (typeof v === 'number' && v > MiB ? `${mib(v)}M` : v))}`);
      log(`  ${o.seconds.toFixed(1)} s, ${(o.bytes / MiB / o.seconds).toFixed(0)} MiB/s, peak serving ${mib(o.mem.peakServing.hwm)} MiB, errors ${o.errors}${o.errors ? `: ${o.errorSamples.slice(0, 3).join(' | ')}` : ''}`);
      outcomes.push(o);
    }
  }
  const baseline = median(outcomes.filter((o) => o.config === 'no target').map((o) => o.bytes / o.seconds)) || NaN;
  const loadRows: Row[] = configs.map((c) => {
    const os = outcomes.filter((o) => o.config === c.name);
    const tput = os.map((o) => o.bytes / o.seconds);
    return {
      config: c.name,
      'peak VmHWM serving MiB': spread(os.map((o) => o.mem.peakServing.hwm)),
      'peak RSS supervisor MiB': spread(os.map((o) => o.mem.peakSupervisor.rss)),
      'peak Pss both MiB': spread(os.map((o) => o.mem.peakPssSum)),
      'MiB/s': `${(median(tput) / MiB).toFixed(0)} (${(Math.min(...tput) / MiB).toFixed(0)}–${(Math.max(...tput) / MiB).toFixed(0)})`,
      'vs no target': (median(tput) / baseline).toFixed(2),
      'read / cold / write / switch s': [median(os.map((o) => o.readSeconds)), median(os.map((o) => o.coldSeconds)), median(os.map((o) => o.writeSeconds)), median(os.map((o) => o.switchSeconds))].map((x) => x.toFixed(1)).join(' / '),
      errors: os.reduce((n, o) => n + o.errors, 0),
      'OOM kills / restarts': `${os.reduce((n, o) => n + o.oomKills, 0)} / ${os.reduce((n, o) => n + o.restarts, 0)}`,
    };
  });
  printTable(`loaded: ${READERS} readers of ${FILES} files + cold 1 GiB read + 1 GiB write + version switch (median, min–max of ${ROUNDS})`, loadRows);
  const saved = bench.save({ readers: READERS, files: FILES, idles, outcomes }, [
    { title: 'Idle, after `ls -l` of each entry and 5 s: one bucket entry, one team dataset entry, mnist (MiB: median, min–max)', rows: idleRows },
    { title: `All at once: ${READERS} readers of a ${FILES}-file team dataset (256 KiB–4 MiB), a cold 1 GiB read, 1 GiB written to a bucket entry, a version switch`, rows: loadRows },
  ], [
    'Before issue 21 (main at 8a7c583, measured by hand the same way, mnist only): supervisor 100 MiB VmRSS (47 anonymous), serving process 141–147 MiB (85–91 anonymous); the issue measured 141 MiB with a bucket entry and mnist',
    'Throughput: all bytes moved (readers + 1 GiB read + 1 GiB written) ÷ the time until the last part finished; the machine is shared, see the load',
  ]);
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await daemon?.stop();
  await cgroup?.remove();
  rgw.stop();
  removeHome(work);
}
