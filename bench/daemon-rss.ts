// Daemon RSS with a 1M-file version mounted (issue 5, target < 256 MiB): the real `gradient mount` process
// (dist/, as installed) serving a committed version of the managed local store. Measured after a full GC in
// the daemon: with the public MNIST sample only, then after settings.yaml adds the big version and `ls`/`stat`
// have gone through the mount. The peak (VmHWM) is the manifest download + parse.
//   node --import tsx bench/daemon-rss.ts [--files 1000000]
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Catalog } from '../src/catalog/catalog.js';
import type { ManifestEntry } from '../src/catalog/records.js';
import { allProviders, loadConfig, managedProviderId } from '../src/config/config-file.js';
import { configPath } from '../src/config/paths.js';
import { buildDist, removeHome, startDaemonProcess, type DaemonProcess, type MemoryFigures } from './daemon-process.js';
import { printTable, sh, startRun, type Row } from './lib.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '1000000' } } });
const n = Number(values.files);
const BATCH = 1000;

/** File i of a version shaped like image data: 10 splits × 100 classes, ~1000 files per directory. */
function entry(i: number): ManifestEntry {
  return {
    path: `split-${i % 10}/class-${Math.floor(i / 1000) % 100}/img_${String(i).padStart(7, '0')}.jpg`,
    size: 1000 + (i % 5000),
    sha256: createHash('sha256').update(String(i)).digest('hex'),
    mtime: 1.7e12 + i,
  };
}

/** A committed n-file version in the managed store, through the catalog's own journal + commit. */
async function bigVersion(env: NodeJS.ProcessEnv): Promise<string> {
  const { config } = await loadConfig(configPath(undefined, env));
  const catalog = new Catalog({ teamId: config.teamId, providers: allProviders(config, env), managedProviderId: managedProviderId(config), env });
  try {
    const ds = await catalog.createDataset({ name: 'big' });
    const v = await catalog.createVersion(ds.id, `${n} files`);
    for (let start = 0; start < n; start += BATCH) {
      const entries: ManifestEntry[] = [];
      for (let i = start; i < Math.min(n, start + BATCH); i++) entries.push(entry(i));
      await catalog.appendJournal(ds.id, v.id, entries);
    }
    await catalog.commitVersion(ds.id, v.id);
    return `${ds.id}:${v.id}`;
  } finally {
    catalog.close();
  }
}

const bench = startRun('daemon-rss');
const home = await mkdtemp(path.join(tmpdir(), 'gd-bench-rss-'));
const env: NodeJS.ProcessEnv = { HOME: home, PATH: process.env.PATH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
let daemon: DaemonProcess | undefined;
try {
  await buildDist();
  let t0 = Date.now();
  const ref = await bigVersion(env);
  console.log(`created ${ref} with ${n} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  daemon = await startDaemonProcess({ home, env, rssProbe: true, cacheMaxSize: '1G' });
  await sh(`ls ${daemon.mnt}/mnist >/dev/null`);
  const baseline = await daemon.probe();

  const [id, version] = ref.split(':');
  t0 = Date.now();
  await writeFile(daemon.settings, `big:\n  type: dataset\n  id: ${id}\n  version: ${version}\n`);
  const deadline = Date.now() + 300_000;
  // The status can time out while the daemon builds the view (its thread is busy): keep asking.
  while ((await daemon.status().catch(() => undefined))?.mounts.find((m) => m.name === 'big')?.state !== 'ok') {
    if (Date.now() > deadline) throw new Error('the big version was not mounted within 5 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
  const mountSeconds = (Date.now() - t0) / 1000;
  const listed = Number(await sh(`ls -l ${daemon.mnt}/big/split-3/class-42 | wc -l`)) - 1;
  if (listed !== n / 1000) console.warn(`expected ${n / 1000} files in one directory, listed ${listed}`);
  // Left alone, V8 collects the manifest's garbage on its own schedule: RSS without any forced GC, over 30 s.
  const rssNoGc: number[] = [];
  for (let s = 0; s < 6; s++) {
    await new Promise((r) => setTimeout(r, 5000));
    rssNoGc.push(Math.round(daemon.rssNow()));
  }
  const mounted: MemoryFigures = await daemon.probe();

  const rows: Row[] = [
    { case: 'daemon, public MNIST sample only', 'RSS MiB': baseline.rss, 'heap MiB': baseline.heapUsed, 'external MiB': baseline.external, 'peak RSS MiB': baseline.peakRss },
    { case: `+ a ${n}-file version mounted (target < 256 MiB)`, 'RSS MiB': mounted.rss, 'heap MiB': mounted.heapUsed, 'external MiB': mounted.external, 'peak RSS MiB': mounted.peakRss },
  ];
  printTable('gradient mount daemon RSS (after a full GC)', rows);
  console.log(`\nRSS left alone, every 5 s after mounting: ${rssNoGc.join(', ')} MiB; settings edit → mounted: ${mountSeconds.toFixed(1)} s`);
  const saved = bench.save({ files: n, baseline, mounted, rssNoGc, mountSeconds }, [
    { title: 'RSS of the `gradient mount` process after a full GC (MiB)', rows },
    { title: 'After mounting, left alone (no forced GC)', rows: [{ 'RSS MiB every 5 s': rssNoGc.join(' / '), 'settings edit → mounted, s': mountSeconds }] },
  ]);
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await daemon?.stop();
  removeHome(home);
}
