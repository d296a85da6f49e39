// Settings edit → new version visible (issue 5, target p99 < 1 s), end to end: the real `gradient mount`
// daemon (dist/, a child process) serving a team dataset whose two committed versions live in RGW. Each
// switch saves settings.yaml the way editors do (write a temp file, rename it over), and the clock stops
// when a plain stat() + open()/read() of the same path through the mount shows the other version's size and
// bytes. That path is always in the kernel's dentry and attribute caches (root entries have a 1-hour TTL,
// version entries a 1-day TTL, and we read it right before each save), so the new bytes can only appear
// through the daemon's entry invalidation: nothing here drops caches or uses a fresh path.
//   node --import tsx bench/settings-switch.ts [--switches 50]
import { promises as fsp } from 'node:fs';
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
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
import { printTable, startRun } from './lib.js';

const { values } = parseArgs({ options: { switches: { type: 'string', default: '50' }, 'poll-ms': { type: 'string', default: '2' } } });
const switches = Number(values.switches);
const pollMs = Number(values['poll-ms']);
const bench = startRun('settings-switch');
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const stopRgw = await benchRgw('bench-switch', '1G');
const home = await mkdtemp(path.join(tmpdir(), 'gd-bench-switch-'));
const { env, gradient } = cliHome(home);
let bucket: string | undefined;
let daemon: DaemonProcess | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

try {
  await buildDist();
  bucket = await freshBucket('bench-switch');
  const s = s3Server();
  const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
  const ds = (await gradient('datasets', 'create', '--name', 'reports', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
  // Two versions whose data.txt differs in bytes and in size, so both stat() and read() tell them apart.
  const contents = ['version A\n', 'version B, a little longer\n'];
  const versions: string[] = [];
  for (const [i, text] of contents.entries()) {
    const v = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
    const src = await writeTree(path.join(home, `src-${v}`), { 'data.txt': text, 'same.txt': 'in both\n', [`only-${i}.txt`]: 'x' });
    await gradient('datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', src);
    await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
    versions.push(v);
  }
  const settingsFor = (i: number) => `reports:\n  type: dataset\n  id: ${ds}\n  version: ${versions[i % 2]}\n`;

  // The daemon's config.yaml: the provider `storageProviders create` just wrote, and the cache.
  const { teamId, storageProviders } = YAML.parse(await readFile(configPath(undefined, env), 'utf8')) as Record<string, unknown>;
  daemon = await startDaemonProcess({ home, env, config: { teamId, storageProviders } });
  const file = path.join(daemon.mnt, 'reports', 'data.txt');
  const shows = async (i: number) => {
    const want = contents[i % 2]!;
    const st = await fsp.stat(file).catch(() => undefined);
    if (st?.size !== Buffer.byteLength(want)) return false;
    return (await fsp.readFile(file, 'utf8').catch(() => '')) === want;
  };
  await writeFile(daemon.settings, settingsFor(0));
  for (const deadline = Date.now() + 30_000; !(await shows(0)); await sleep(50)) {
    if (Date.now() > deadline) throw new Error('the first version never became visible');
  }

  const ms: number[] = [];
  for (let i = 1; i <= switches; i++) {
    if (!(await shows(i - 1))) throw new Error(`switch ${i}: the previous version is not what the mount shows`);
    const tmp = path.join(path.dirname(daemon.settings), `.settings.yaml.${i}.tmp`);
    await writeFile(tmp, settingsFor(i));
    const t0 = process.hrtime.bigint();
    await rename(tmp, daemon.settings);
    const deadline = Date.now() + 10_000;
    while (!(await shows(i))) {
      if (Date.now() > deadline) throw new Error(`switch ${i}: the new version was not visible after 10 s`);
      await sleep(pollMs);
    }
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await sleep(200);
  }

  const sorted = [...ms].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  const row = { switches, 'p50 ms': pct(50), 'p99 ms': pct(99), 'max ms': sorted.at(-1)!, 'target p99 ms': 1000 };
  printTable('settings.yaml saved (rename-and-replace) → stat + read through the mount show the new version', [row]);
  const saved = bench.save({ row, pollMs, catalog: 'S3 (Ceph RGW on 127.0.0.1)', samplesMs: ms }, [
    { title: 'settings.yaml saved (rename-and-replace) → stat + read through the mount show the new version', rows: [row] },
  ]);
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await daemon?.stop();
  if (bucket) await emptyAndDeleteBucket(bucket).catch(() => undefined);
  removeHome(home);
  stopRgw();
}
