// The on-disk cache against its limits, on a throwaway Ceph RGW on 127.0.0.1, in one run:
//   1. cold sequential read of a 1 GiB object through the cache   vs 8-way ranged SDK GETs      (target ≥ 0.9×)
//   2. cached re-read: the complete cache file bound to a FUSE handle (the fs layer's fast path, passthrough)
//      vs direct read of the cache file (target ≥ 0.9×); also the JavaScript path (handle.read) for reference
//   3. 10k × 4 KiB files, cold, through the cache (files/s)        vs direct SDK GETs, same concurrency
//   4. random 4 KiB reads in a 1 GiB object (ops/s), cold and warm vs direct 4 KiB ranged GETs
//   node --import tsx bench/cache.ts [--rounds 2] [--size-mib 1024] [--files 10000] [--random 2000]
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openCache, type Cache, type CacheIdentity } from '../src/cache/index.js';
import { DaemonMemory } from '../src/memory/index.js';
import { S3Store } from '../src/storage/s3/store.js';
import { FuseSession } from '../src/fuse/session.js';
import { MemFs } from '../test/helpers/memfs.js';
import { median, perRound, pool, printTable, sdkClient, startRun, timeSh, type Row } from './lib.js';
import { startRgw } from '../test/helpers/rgw.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '10000' },
    random: { type: 'string', default: '2000' },
  },
});
const rounds = Number(values.rounds);
const size = Number(values['size-mib']) * 2 ** 20;
const sizeLabel = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / 2 ** 20} MiB`;
const nFiles = Number(values.files);
const nRandom = Number(values.random);
const MiB = 2 ** 20;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
/** CPU seconds (user + system) this process used since c0: on 2 shared cores, throughput follows CPU cost. */
const cpuSecs = (c0: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1e6;
};

// ---------------------------------------------------------------- RGW
const bench = startRun('cache');
const rgw = await startRgw({ name: 'bench-cache', memstoreBytes: '8G' });
const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-cache-'));
const stopRgw = rgw.stop;
process.on('SIGINT', () => {
  stopRgw();
  rmSync(work, { recursive: true, force: true });
  process.exit(130);
});

/** The 1-minute load average: other work on the 2 cores skews every number. */
const load = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
const loadStart = load();
const rows: Row[] = [];
const ratios: Row[] = [];
try {
  const s3 = rgw;
  const creds = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  const client = sdkClient(rgw);
  const bucket = 'bench';
  const admin = new S3Store({ bucket, endpoint: s3.endpoint, credentials: { kind: 'static', ...creds } });
  await admin.client.send(new (await import('@aws-sdk/client-s3')).CreateBucketCommand({ Bucket: bucket }));

  console.error(`uploading ${size / MiB} MiB object and ${nFiles} small files…`);
  const big = randomBytes(size);
  const bigInfo = await admin.write('big.bin', big);
  const small = Array.from({ length: nFiles }, (_, i) => ({ key: `small/${i}`, data: randomBytes(4096) }));
  const etags: string[] = [];
  await pool(32, nFiles, async (i) => {
    etags[i] = (await admin.write(small[i]!.key, small[i]!.data)).etag;
  });
  const bigId: CacheIdentity = { kind: 'object', location: admin.location, key: 'big.bin', etag: bigInfo.etag };

  const getRange = async (key: string, start: number, end: number): Promise<number> => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
    return (await out.Body!.transformToByteArray()).length;
  };

  let dirN = 0;
  const memory = new DaemonMemory(); // one per process, as in the daemon: rounds reuse warm buffers
  const freshCache = async (): Promise<Cache> =>
    openCache({ dir: path.join(work, `c${dirN++}`), maxBytes: 4 * size + 1024 * MiB, minFreeBytes: 0 }, memory);

  // ------------------------------------------------------------ 1 + 2: sequential
  const direct8: number[] = [];
  const cold: number[] = [];
  const cachedReread: number[] = [];
  const fileRead: number[] = [];
  const jsFileRead: number[] = [];
  const direct8Cpu: number[] = [];
  const coldCpu: number[] = [];
  const fuseRead: number[] = [];
  const part = 8 * MiB;
  for (let r = 0; r < rounds; r++) {
    let c0 = process.cpuUsage();
    let t0 = process.hrtime.bigint();
    let got = 0;
    await pool(8, Math.ceil(size / part), async (i) => {
      const n = await getRange('big.bin', i * part, Math.min(size, (i + 1) * part));
      got += n;
    });
    if (got !== size) throw new Error('short baseline read');
    direct8.push(size / MiB / secs(t0));
    direct8Cpu.push(cpuSecs(c0) / (size / 2 ** 30));

    const cache = await freshCache();
    try {
      const store = admin;
      const h = await cache.open(bigId, { store, key: 'big.bin', size });
      c0 = process.cpuUsage();
      t0 = process.hrtime.bigint();
      for (let off = 0; off < size; off += MiB) {
        const b = await h.read(off, MiB);
        if (b.length !== Math.min(MiB, size - off)) throw new Error('short cache read');
      }
      cold.push(size / MiB / secs(t0));
      coldCpu.push(cpuSecs(c0) / (size / 2 ** 30));
      const file = await h.whenComplete();
      t0 = process.hrtime.bigint();
      for (let off = 0; off < size; off += MiB) await h.read(off, MiB);
      cachedReread.push(size / MiB / secs(t0));
      const buf = Buffer.allocUnsafe(MiB);
      const fd = openSync(file, 'r');
      t0 = process.hrtime.bigint();
      for (let off = 0; off < size; off += MiB) readSync(fd, buf, 0, MiB, off);
      jsFileRead.push(size / MiB / secs(t0));
      closeSync(fd);
      // What the fs layer does with completePath(): a FUSE file backed by the cache file (passthrough).
      const mnt = path.join(work, 'mnt');
      mkdirSync(mnt, { recursive: true });
      const fs = new MemFs({ ttl: 3600, keepCache: true });
      fs.addBackedFile('big.bin', h.completePath()!);
      const session = await FuseSession.mount(fs, mnt, { passthrough: true });
      try {
        // Both from the page cache (fills write with O_DIRECT, so the file is not there yet), alternating,
        // so that neither side pays for a cold page cache or a noisy moment alone.
        await timeSh(`cat ${file} > /dev/null`);
        const f: number[] = [];
        const d: number[] = [];
        for (let i = 0; i < 3; i++) {
          f.push(size / MiB / (await timeSh(`dd if=${mnt}/big.bin of=/dev/null bs=1M status=none`)));
          d.push(size / MiB / (await timeSh(`dd if=${file} of=/dev/null bs=1M status=none`)));
        }
        fuseRead.push(median(f));
        fileRead.push(median(d));
      } finally {
        await session.unmount();
      }
      h.close();
    } finally {
      await cache.close();
    }
  }
  rows.push({ test: `${sizeLabel} sequential: 8-way ranged SDK GETs (8 MiB)`, value: median(direct8), unit: 'MiB/s', 'per round': perRound(direct8) });
  rows.push({ test: `${sizeLabel} sequential: cold, through the cache (1 MiB reads)`, value: median(cold), unit: 'MiB/s', 'per round': perRound(cold) });
  rows.push({ test: 'sequential: CPU of this process per GiB, 8-way SDK GETs', value: median(direct8Cpu), unit: 's/GiB', 'per round': perRound(direct8Cpu) });
  rows.push({ test: 'sequential: CPU of this process per GiB, cold through the cache', value: median(coldCpu), unit: 's/GiB', 'per round': perRound(coldCpu) });
  rows.push({ test: `${sizeLabel} sequential: cached re-read, FUSE handle bound to the cache file (dd bs=1M)`, value: median(fuseRead), unit: 'MiB/s', 'per round': perRound(fuseRead) });
  rows.push({ test: `${sizeLabel} sequential: direct read of the cache file (dd bs=1M)`, value: median(fileRead), unit: 'MiB/s', 'per round': perRound(fileRead) });
  rows.push({ test: `${sizeLabel} sequential: cached re-read via handle.read() in JS (1 MiB)`, value: median(cachedReread), unit: 'MiB/s', 'per round': perRound(cachedReread) });
  rows.push({ test: `${sizeLabel} sequential: direct pread of the cache file in JS (1 MiB)`, value: median(jsFileRead), unit: 'MiB/s', 'per round': perRound(jsFileRead) });
  ratios.push({ ratio: 'cold via cache / 8-way SDK GETs', value: median(cold) / median(direct8), target: '≥ 0.9', 'per round': perRound(cold.map((x, i) => x / direct8[i]!)) });
  ratios.push({ ratio: 'cached re-read (FUSE fast path) / direct file read', value: median(fuseRead) / median(fileRead), target: '≥ 0.9', 'per round': perRound(fuseRead.map((x, i) => x / fileRead[i]!)) });
  ratios.push({ ratio: 'cached re-read (JS handle.read) / direct pread in JS', value: median(cachedReread) / median(jsFileRead), target: '-', 'per round': perRound(cachedReread.map((x, i) => x / jsFileRead[i]!)) });

  // ------------------------------------------------------------ 3: many small files
  const conc = 16;
  let t0 = process.hrtime.bigint();
  await pool(conc, nFiles, async (i) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: small[i]!.key }));
    await out.Body!.transformToByteArray();
  });
  const directFiles = nFiles / secs(t0);
  {
    const cache = await freshCache();
    try {
      t0 = process.hrtime.bigint();
      await pool(conc, nFiles, async (i) => {
        const f = small[i]!;
        const h = await cache.open(
          { kind: 'object', location: admin.location, key: f.key, etag: etags[i]! },
          { store: admin, key: f.key, size: 4096 },
        );
        const b = await h.read(0, 4096);
        if (!b.equals(f.data)) throw new Error(`wrong bytes in ${f.key}`);
        h.close();
      });
      const coldFiles = nFiles / secs(t0);
      await cache.flush();
      t0 = process.hrtime.bigint();
      await pool(conc, nFiles, async (i) => {
        const f = small[i]!;
        const h = await cache.open(
          { kind: 'object', location: admin.location, key: f.key, etag: etags[i]! },
          { store: admin, key: f.key, size: 4096 },
        );
        await h.read(0, 4096);
        h.close();
      });
      const warmFiles = nFiles / secs(t0);
      rows.push({ test: `${nFiles} × 4 KiB files: direct SDK GETs (${conc} parallel)`, value: directFiles, unit: 'files/s' });
      rows.push({ test: `${nFiles} × 4 KiB files: cold, through the cache (${conc} parallel)`, value: coldFiles, unit: 'files/s' });
      rows.push({ test: `${nFiles} × 4 KiB files: warm, through the cache`, value: warmFiles, unit: 'files/s' });
      ratios.push({ ratio: '4 KiB files cold via cache / direct GETs', value: coldFiles / directFiles, target: '-' });
    } finally {
      await cache.close();
    }
  }

  // ------------------------------------------------------------ 4: random 4 KiB reads
  const offsets = Array.from({ length: nRandom }, () => randomInt(0, size - 4096));
  t0 = process.hrtime.bigint();
  await pool(8, nRandom, async (i) => {
    await getRange('big.bin', offsets[i]!, offsets[i]! + 4096);
  });
  const directRandom = nRandom / secs(t0);
  {
    const cache = await freshCache();
    try {
      const handles = await Promise.all(Array.from({ length: 8 }, () => cache.open(bigId, { store: admin, key: 'big.bin', size })));
      t0 = process.hrtime.bigint();
      await pool(8, nRandom, async (i) => {
        const off = offsets[i]!;
        const b = await handles[i % 8]!.read(off, 4096);
        if (!b.equals(big.subarray(off, off + 4096))) throw new Error('wrong random bytes');
      });
      const coldRandom = nRandom / secs(t0);
      t0 = process.hrtime.bigint();
      await pool(8, nRandom, async (i) => {
        await handles[i % 8]!.read(offsets[i]!, 4096);
      });
      const warmRandom = nRandom / secs(t0);
      for (const h of handles) h.close();
      rows.push({ test: `random 4 KiB reads in ${size / MiB} MiB: direct 4 KiB ranged GETs (8 parallel)`, value: directRandom, unit: 'ops/s' });
      rows.push({ test: `random 4 KiB reads: cold, through the cache (${cache.opts.blockSize / 1024} KiB blocks, 8 parallel)`, value: coldRandom, unit: 'ops/s' });
      rows.push({ test: 'random 4 KiB reads: same offsets again, cached', value: warmRandom, unit: 'ops/s' });
      ratios.push({ ratio: 'random 4 KiB cold via cache / direct GETs', value: coldRandom / directRandom, target: '-' });
      ratios.push({ ratio: 'random 4 KiB cached / direct GETs', value: warmRandom / directRandom, target: '-' });
      const st = cache.stats();
      rows.push({ test: 'random cold: bytes fetched per 4 KiB read', value: st.bytesFetched / nRandom / 1024, unit: 'KiB' });
    } finally {
      await cache.close();
    }
  }
  client.destroy();
  admin.close();
} finally {
  stopRgw();
  rmSync(work, { recursive: true, force: true });
}

const loadEnd = load();
printTable(`cache benchmark (RGW on 127.0.0.1, 2 shared cores: noisy; load ${loadStart} → ${loadEnd})`, rows);
printTable('ratios', ratios);
const saved = bench.save({ loadavg: { start: loadStart, end: loadEnd }, rounds, sizeMiB: size / MiB, files: nFiles, random: nRandom, rows, ratios }, [
  { title: `Figures: medians of ${rounds} rounds for the sequential rows (per round in run order), one pass for the others`, rows },
  { title: 'Ratios of the medians', rows: ratios },
]);
console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
