// Read path of the FUSE engine versus a direct read of the backing file, in one run.
//   node --import tsx bench/read-path.ts [--rounds 5] [--size-mib 1024]
// Per round, each config gets a fresh mount (FUSE page cache cold; backing files warm in the page
// cache), 1 reader (dd bs=1M) and 4 readers on 4 files; then a re-read on the same mount (kernel
// cache kept). Every FUSE read is paired with a direct read of the same files just before it, and
// the figure is the median of the paired ratios: on a shared 2-core machine the direct read alone
// varies 2× from minute to minute. The backing files are re-warmed before each pair (this VM's DAMON
// pages out files left idle for ~30 s) and their residency and the load average are recorded.
// Also stat() of 10k distinct files, cold (fresh mount) and warm.
import { parseArgs } from 'node:util';
import { MemFs } from '../test/helpers/memfs.js';
import { FuseSession, type FuseMountOptions } from '../src/fuse/session.js';
import { readFileSync } from 'node:fs';
import { median, perRound, printTable, sh, startRun, timeSh, type Row } from './lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, 'size-mib': { type: 'string', default: '1024' } } });
const rounds = Number(values.rounds);
const sizeMiB = Number(values['size-mib']);
const bench = startRun('read-path');
const work = (await sh('mktemp -d /tmp/gd-bench-read-XXXX')).trim();
const mnt = `${work}/mnt`;
const files = [0, 1, 2, 3].map((i) => `${work}/f${i}.bin`);

async function withMount<T>(opts: FuseMountOptions, build: (fs: MemFs) => void, body: () => Promise<T>): Promise<{ result: T; session: FuseSession }> {
  const fs = new MemFs({ ttl: 3600, keepCache: true });
  build(fs);
  const session = await FuseSession.mount(fs, mnt, opts);
  try {
    return { result: await body(), session };
  } finally {
    await session.unmount();
  }
}

const ddRead = (f: string) => `dd if=${f} of=/dev/null bs=1M status=none`;
const ddAll = (fs: string[]) => fs.map((f) => ddRead(f) + ' &').join(' ') + ' wait';
const mbps = (bytes: number, s: number) => bytes / 2 ** 20 / s;
const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
/** Reads the files into the page cache; returns the smallest resident fraction afterwards. */
async function warmUp(fs: string[]): Promise<number> {
  await sh(`cat ${fs.join(' ')} > /dev/null`);
  const res = await Promise.all(fs.map(async (f) => Number((await sh(`fincore -b -n -o RES ${f}`)).trim()) / (sizeMiB * 2 ** 20)));
  return Math.min(...res);
}

try {
  console.log(`preparing ${files.length} × ${sizeMiB} MiB backing files in ${work}`);
  await sh(`mkdir -p ${mnt}; head -c ${sizeMiB}M /dev/urandom > ${files[0]}; for i in 1 2 3; do cp ${files[0]} ${work}/f$i.bin; done`);

  const configs: { name: string; opts: FuseMountOptions }[] = [
    { name: 'passthrough', opts: { passthrough: true } },
    { name: 'C read path (passthrough off; large files direct_io + splice)', opts: { passthrough: false } },
    { name: 'C read path, page cache forced (passthrough off)', opts: { passthrough: false, directIoFromBytes: Infinity } },
  ];
  const raw: Record<string, number[]> = {};
  const push = (k: string, v: number) => (raw[k] ??= []).push(v);
  const bytes1 = sizeMiB * 2 ** 20;
  const maxWrite: Record<string, number> = {};

  for (let r = 0; r < rounds; r++) {
    for (const c of configs) {
      const one = [files[0]!];
      await withMount(c.opts, (fs) => files.forEach((f, i) => fs.addBackedFile(`f${i}.bin`, f)), async () => {
        push('resident', await warmUp(one));
        push('load', load1());
        const direct = mbps(bytes1, await timeSh(ddRead(files[0]!)));
        const fuse = mbps(bytes1, await timeSh(ddRead(`${mnt}/f0.bin`)));
        const reread = mbps(bytes1, await timeSh(ddRead(`${mnt}/f0.bin`)));
        push('direct 1', direct);
        push(`${c.name} 1`, fuse);
        push(`${c.name} 1 ratio`, fuse / direct);
        push(`${c.name} re-read 1`, reread);
        push(`${c.name} re-read 1 ratio`, reread / direct);
      }).then(({ session }) => (maxWrite[c.name] = session.kernel.maxWrite));
      await withMount(c.opts, (fs) => files.forEach((f, i) => fs.addBackedFile(`f${i}.bin`, f)), async () => {
        push('resident', await warmUp(files));
        push('load', load1());
        const direct = mbps(4 * bytes1, await timeSh(ddAll(files)));
        const fuse = mbps(4 * bytes1, await timeSh(ddAll(files.map((_, i) => `${mnt}/f${i}.bin`))));
        push('direct 4', direct);
        push(`${c.name} 4`, fuse);
        push(`${c.name} 4 ratio`, fuse / direct);
      });
    }
  }

  const d1 = median(raw['direct 1']!);
  const d4 = median(raw['direct 4']!);
  const rows: Row[] = [];
  const row = (path: string, readers: number, key: string, d: number) =>
    rows.push({ path, readers, 'MB/s': median(raw[key]!), 'direct MB/s': d, 'paired ratio': median(raw[`${key} ratio`]!), 'ratio per round': perRound(raw[`${key} ratio`]) });
  for (const c of configs) {
    row(c.name, 1, `${c.name} 1`, d1);
    row(c.name, 4, `${c.name} 4`, d4);
    row(`${c.name}, re-read (cache kept)`, 1, `${c.name} re-read 1`, d1);
  }
  console.log(`\nload average (1 min) during the reads: median ${median(raw['load']!).toFixed(2)}, max ${Math.max(...raw['load']!).toFixed(2)}; backing files resident before each pair: min ${(100 * Math.min(...raw['resident']!)).toFixed(1)}%; request size ${JSON.stringify(maxWrite)}`);
  printTable(`Sequential read, ${sizeMiB} MiB per reader, median of ${rounds} (targets: passthrough ≥ 0.9, C path ≥ 0.6, re-read ≥ 0.95)`, rows);

  // stat() of 10k distinct files through LOOKUP (JS), cold and warm.
  const statScript = `python3 -c "
import os,sys,time
root=sys.argv[1]; names=[f'{root}/d{i//1000}/f{i}' for i in range(10000)]
t=time.perf_counter()
for n in names: os.stat(n)
print(10000/(time.perf_counter()-t))" ${mnt}`;
  const statRows: Row[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await withMount({}, (fs) => { for (let i = 0; i < 10000; i++) fs.addFile(`d${Math.floor(i / 1000)}/f${i}`, 'x'); }, async () => {
      cold.push(Number(await sh(statScript)));
      warm.push(Number(await sh(statScript)));
    });
  }
  statRows.push({ case: 'stat 10k distinct files, cold (1 LOOKUP each, answered in JS)', 'ops/s': median(cold), 'per round': perRound(cold) });
  statRows.push({ case: 'stat 10k distinct files, warm (kernel dcache, TTL 1 h)', 'ops/s': median(warm), 'per round': perRound(warm) });
  printTable('Metadata', statRows);
  const saved = bench.save({ sizeMiB, rounds, maxWrite, raw, rows, statRows }, [
    { title: `Sequential read, ${sizeMiB} MiB per reader: medians of ${rounds} rounds, each FUSE read paired with a direct read just before it`, rows },
    { title: 'Metadata', rows: statRows },
  ]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
} finally {
  await sh(`mountpoint -q ${mnt} && umount -l ${mnt}; rm -rf ${work}`).catch(() => undefined);
}
