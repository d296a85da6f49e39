// The on-disk cache against its limits, as users meet it: through the real `gradient mount` daemon (dist/),
// a bucket on a throwaway Ceph RGW on 127.0.0.1 as a `type: s3` entry, the cache's dir and bound in
// config.yaml; a fresh daemon with an empty cache dir, after `sync; echo 3 > drop_caches`, for each cold run.
// `buckets.metadataTtl` is an hour, so names stay known and the figures are the cache's, not the listings'.
//   1. cold sequential read of a 1 GiB object (1 MiB reads)       vs 8-way ranged SDK GETs        (target ≥ 0.9×)
//   2. re-read through the mount once the cache file is complete  vs dd of the cache file itself   (target ≥ 0.9×)
//      (both from the page cache, alternating 3 times: the engine serves the cache file, passthrough)
//   3. 10k × 4 KiB files, names listed first, 16 threads, cold and warm vs direct SDK GETs, same concurrency
//   4. random 4 KiB reads in the 1 GiB object (8 threads), cold and warm vs direct 4 KiB ranged GETs; and the
//      bytes RGW sent per 4 KiB read (the cache fetches 64 KiB blocks)
// CPU is the daemon's (/proc/<pid>/stat) for ours and this process's for the SDK limits; request counts
// are the daemon's own (`gradient status --json`), where it reports them.
//   node --import tsx bench/cache.ts [--rounds 2] [--size-mib 1024] [--files 10000] [--random 2000] [--timeout-s 300]
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { readdir, stat } from 'node:fs/promises';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRgw } from '../test/helpers/rgw.js';
import { buildDist, removeHome } from './daemon-process.js';
import { Figures, sig, type Server } from './figures.js';
import { dropCaches, io, loadAvg, median, ownCpu, pool, printTable, rgwCounters, sdkClient, sdkOps, seeded, sh, startRun, timeSh } from './lib.js';
import { MountSet, type BucketTarget, type Mounted } from './mounts.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '10000' },
    random: { type: 'string', default: '2000' },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const rounds = Number(values.rounds);
const MiB = 2 ** 20;
const size = Number(values['size-mib']) * MiB;
const sizeLabel = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / MiB} MiB`;
const GiB = size / 2 ** 30;
const nFiles = Number(values.files);
const nRandom = Number(values.random);
const CMD_TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const CONC = 16;
const REREADS = 3;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0Run = Date.now();
const log = (msg: string) => console.error(`[cache ${((Date.now() - t0Run) / 1000).toFixed(0).padStart(5)}s] ${msg}`);
const here: Server = { cpu: ownCpu };
const check = (what: string, got: number | undefined, want: number) => {
  if (got !== want) throw new Error(`${what}: got ${got}, expected ${want}`);
};

const bench = startRun('cache');
const rgw = await startRgw({ name: 'bench-cache', memstoreBytes: '8G' });
const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-cache-'));
const mounts = new MountSet(work, { cacheBytes: 4 * size + 1024 * MiB, config: { buckets: { metadataTtl: 3600 } }, log });
mounts.onInterrupt(() => rgw.stop());
const figures = new Figures({ rgw: rgwCounters(rgw), log });
const def = figures.define.bind(figures);
def('seq-cold', { label: `${sizeLabel} sequential, cold (1 MiB reads)`, unit: 'MiB/s', higherIsBetter: true, limit: '8-way ranged SDK GETs (8 MiB)', per: { gib: GiB }, target: '≥ 0.9' });
def('reread', { label: `${sizeLabel} re-read, cache file complete, page cache warm (dd bs=1M, median of ${REREADS})`, unit: 'MiB/s', higherIsBetter: true, limit: 'dd of the cache file itself', per: { gib: REREADS * GiB }, target: '≥ 0.9' });
def('small-cold', { label: `${nFiles} × 4 KiB files, cold (names listed first, ${CONC} threads)`, unit: 'files/s', higherIsBetter: true, limit: `direct SDK GETs, ${CONC} in flight`, per: { items: nFiles, item: 'file' } });
def('small-warm', { label: `${nFiles} × 4 KiB files again`, unit: 'files/s', higherIsBetter: true, per: { items: nFiles, item: 'file' } });
def('random-cold', { label: `${nRandom} random 4 KiB reads in ${sizeLabel}, 8 threads, cold`, unit: 'ops/s', higherIsBetter: true, limit: '4 KiB ranged SDK GETs, 8 in flight', per: { items: nRandom, item: 'read' } });
def('random-warm', { label: 'same reads again', unit: 'ops/s', higherIsBetter: true, per: { items: nRandom, item: 'read' } });

/** The cache's data file of a `bytes`-long entry, once every byte of it is on disk (the fills write O_DIRECT). */
async function cacheFile(m: Mounted, bytes: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const data = path.join(m.cacheDir!, 'data');
    for (const sub of await readdir(data).catch(() => [])) {
      for (const f of await readdir(path.join(data, sub)).catch(() => [])) {
        const file = path.join(data, sub, f);
        const st = await stat(file).catch(() => undefined);
        if (st?.size === bytes && st.blocks * 512 >= bytes) return file;
      }
    }
    await sleep(100);
  }
  throw new Error(`no complete ${bytes}-byte file in ${m.cacheDir}/data`);
}

const notes: string[] = [];
try {
  await buildDist();
  const client = sdkClient(rgw);
  const bucket = 'bench';
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const s3 = sdkOps(client, bucket);
  const target: BucketTarget = { endpoint: rgw.endpoint, bucket, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };

  log(`uploading ${sizeLabel} and ${nFiles} small files…`);
  const source = path.join(work, 'big.bin');
  await sh(`head -c ${size} /dev/urandom > ${source}`);
  await new Upload({ client, params: { Bucket: bucket, Key: 'big.bin', Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: 16 * MiB, queueSize: 4 }).done();
  const names = Array.from({ length: nFiles }, (_, i) => `small/${i}`);
  await pool(32, nFiles, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: names[i], Body: new Uint8Array(4096).fill(i % 251) }));
  });
  const rand = seeded(42);
  const offsets = Array.from({ length: nRandom }, () => Math.floor(rand() * (size - 4096)));
  const offsetsFile = path.join(work, 'offsets.txt');
  writeFileSync(offsetsFile, offsets.join('\n'));

  /** A fresh daemon (empty cache), closed whatever happens; a failed start fails `ids`' figures. */
  const withMount = async (ids: string[], r: number, body: (m: Mounted) => Promise<void>) => {
    let m: Mounted;
    try {
      m = await mounts.bucket('ours', target);
    } catch (err) {
      for (const id of ids) figures.fail(id, 'ours', r, err);
      return;
    }
    try {
      await body(m);
    } finally {
      await m.close();
    }
  };
  const ioRun = (...args: (string | number)[]) => io(args, CMD_TIMEOUT_MS);
  const dd = (file: string) => timeSh(`dd if=${file} of=/dev/null bs=1M status=none`, { timeoutMs: CMD_TIMEOUT_MS });

  for (let r = 0; r < rounds; r++) {
    // ---------------------------------------------------------- 1 + 2: sequential
    await figures.measure('seq-cold', 'limit', r, here, async () => {
      const part = 8 * MiB;
      const t = process.hrtime.bigint();
      let got = 0;
      await pool(8, Math.ceil(size / part), async (i) => {
        const n = await s3.getRange('big.bin', i * part, Math.min(size, (i + 1) * part));
        got += n;
      });
      check('bytes read', got, size);
      return size / MiB / secs(t);
    });
    await withMount(['seq-cold', 'reread'], r, async (m) => {
      const f = `${m.mnt}/big.bin`;
      await dropCaches();
      const cold = await figures.measure('seq-cold', 'ours', r, m, async () => {
        const o = await ioRun('seq', f);
        check('bytes read', o.bytes, size);
        return size / MiB / o.secs;
      });
      if (!cold) return;
      const file = await cacheFile(m, size);
      // Both from the page cache (fills write with O_DIRECT, so the file is not there yet), alternating,
      // so that neither side pays for a cold page cache or a noisy moment alone.
      await sh(`cat ${file} > /dev/null`);
      const direct: number[] = [];
      const mounted = await figures.measure('reread', 'ours', r, m, async () => {
        const via: number[] = [];
        for (let i = 0; i < REREADS; i++) {
          via.push(size / MiB / (await dd(f)));
          direct.push(size / MiB / (await dd(file)));
        }
        return median(via);
      });
      if (mounted) figures.record('reread', 'limit', r, median(direct));
    });

    // ---------------------------------------------------------- 3: many small files
    await figures.measure('small-cold', 'limit', r, here, async () => {
      let got = 0;
      const t = process.hrtime.bigint();
      await pool(CONC, nFiles, async (i) => {
        const n = await s3.get(names[i]!);
        got += n;
      });
      check('bytes read', got, nFiles * 4096);
      return nFiles / secs(t);
    });
    await withMount(['small-cold', 'small-warm'], r, async (m) => {
      await sh(`ls ${m.mnt}/small > /dev/null`, { timeoutMs: CMD_TIMEOUT_MS }); // the daemon learns the names
      await dropCaches();
      for (const id of ['small-cold', 'small-warm']) {
        await figures.measure(id, 'ours', r, m, async () => {
          const o = await ioRun('small', `${m.mnt}/small`, CONC, 'prelisted');
          check('files read', o.files, nFiles);
          check('bytes read', o.bytes, nFiles * 4096);
          return nFiles / o.secs;
        });
      }
    });

    // ---------------------------------------------------------- 4: random 4 KiB reads
    await figures.measure('random-cold', 'limit', r, here, async () => {
      let got = 0;
      const t = process.hrtime.bigint();
      await pool(8, nRandom, async (i) => {
        const n = await s3.getRange('big.bin', offsets[i]!, offsets[i]! + 4096);
        got += n;
      });
      check('bytes read', got, nRandom * 4096);
      return nRandom / secs(t);
    });
    await withMount(['random-cold', 'random-warm'], r, async (m) => {
      await dropCaches();
      for (const id of ['random-cold', 'random-warm']) {
        await figures.measure(id, 'ours', r, m, async () => {
          const o = await ioRun('random', `${m.mnt}/big.bin`, offsetsFile, 8);
          check('bytes read', o.bytes, nRandom * 4096);
          return nRandom / o.secs;
        });
      }
    });
  }

  const fetched = (figures.metrics.get('random-cold')!.samples.ours ?? []).flatMap((s) => (s.cost?.rgw ? [(s.cost.rgw.getMiB * 1024) / nRandom] : []));
  if (fetched.length) notes.push(`**Random cold**: RGW sent ${sig(median(fetched))} KiB per 4 KiB read (per round: ${fetched.map(sig).join(' / ')})`);
  notes.push('**Not measured any more**: reads through the cache API in this process (handle.read): users only reach the cache through the mount');
  const rows = figures.rows(['ours']);
  const title = `The cache through \`gradient mount\` (RGW on 127.0.0.1): medians of ${rounds} rounds; ours vs limit > 1 = ours better; CPU = the daemon's (ours) or this process's (SDK limits)`;
  printTable(title, rows);
  printTable('RGW per item (per run for byte workloads): requests / GETs+HEADs / MiB sent / RGW CPU per run', figures.rgwRows(['ours', 'limit']));
  if (figures.errors.length) printTable('Failures', figures.errors.map((e) => ({ ...e })));
  console.log(`\n${notes.join('\n')}\nload average at the end: ${loadAvg()}`);
  const saved = bench.save({ rounds, sizeBytes: size, files: nFiles, random: nRandom, metrics: figures.json(['ours']), errors: figures.errors, table: rows }, [
    { title, rows },
    { title: 'Failures', rows: figures.errors.map((e) => ({ ...e })) },
  ], [`**Limits**: ${[...figures.metrics.values()].filter((m) => m.limit).map((m) => `${m.label}: ${m.limit}`).join('; ')}`, ...notes]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
  client.destroy();
} finally {
  await mounts.closeAll();
  rgw.stop();
  removeHome(work);
}
