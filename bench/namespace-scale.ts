// Scale of a mounted dataset version (issue 5): `find` + `stat` over a 100k-file version (entries/s, cold
// mount and warm). The version is served by the real namespace (RootFs + TreeView from a manifest,
// cache-backed content); only the catalog download is left out. The daemon's RSS with a 1M-file version is
// measured on the real daemon process by bench/daemon-rss.ts.
//   node --import tsx bench/namespace-scale.ts [--files 100000]
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { RootFs } from '../src/fs/root.js';
import { datasetVersionView, type VersionFile } from '../src/fs/views.js';
import type { ContentCache } from '../src/fs/content.js';
import type { ObjectStore } from '../src/storage/object-store.js';
import { FuseSession } from '../src/fuse/session.js';
import { median, perRound, printTable, sh, startRun, type Row } from './lib.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } } });
const bench = startRun('namespace-scale');

/** A manifest shaped like real data: 100 files per directory, 3 levels, realistic names and hashes. */
function manifest(n: number): VersionFile[] {
  const files: VersionFile[] = [];
  for (let i = 0; i < n; i++) {
    const sha256 = createHash('sha256').update(String(i)).digest('hex');
    files.push({ path: `split-${i % 10}/class-${Math.floor(i / 1000) % 100}/img_${String(i).padStart(7, '0')}.jpg`, size: 1000 + (i % 5000), sha256, mtime: 1.7e12 });
  }
  return files;
}

const unusedCache: ContentCache = { open: () => Promise.reject(new Error('no reads in this benchmark')) };
const unusedStore = {} as ObjectStore;
const mnt = (await sh('mktemp -d /tmp/gd-bench-ns-XXXX')).trim();

async function mounted<T>(files: VersionFile[], body: (root: RootFs) => Promise<T>): Promise<T> {
  const root = new RootFs();
  root.attach('version', datasetVersionView(files, { cache: unusedCache, store: unusedStore, blobKey: (s) => s }));
  const session = await FuseSession.mount(root, mnt);
  try {
    return await body(root);
  } finally {
    await session.unmount();
  }
}

const walk = `python3 -c "
import os,sys,time
t=time.perf_counter(); n=0
for d,ds,fs in os.walk(sys.argv[1]):
  for f in fs: os.stat(os.path.join(d,f)); n+=1
  n+=len(ds)
print(n/(time.perf_counter()-t))" ${mnt}/version`;

try {
  const n = Number(values.files);
  const files = manifest(n);
  const cold: number[] = [];
  const warm: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    await mounted(files, async () => {
      cold.push(Number(await sh(walk)));
      warm.push(Number(await sh(walk)));
    });
  }
  const rows: Row[] = [
    { case: `find + stat, ${n} files, cold mount`, value: median(cold), unit: 'entries/s', 'per round': perRound(cold) },
    { case: `find + stat, ${n} files, warm (kernel caches)`, value: median(warm), unit: 'entries/s', 'per round': perRound(warm) },
  ];
  printTable('Namespace scale', rows);
  const saved = bench.save({ files: n, cold, warm }, [{ title: `Medians of ${cold.length} rounds`, rows }]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await sh(`mountpoint -q ${mnt} && umount -l ${mnt}; rmdir ${mnt}`).catch(() => undefined);
}
