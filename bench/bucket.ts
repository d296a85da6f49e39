// Bucket mounts (read-write, write-through) against their limits, on a throwaway Ceph RGW on 127.0.0.1:
//   1. write 1 GiB through the mount until close() returns   vs a direct multipart upload with the SDK
//      (lib-storage, same part size and parallelism)            (target ≥ 0.8×)
//   2. cold sequential read of a 1 GiB object through the mount vs 8-way ranged SDK GETs (target ≥ 0.9×)
//   3. `ls -l` of a 10k-object prefix, fresh mount (ms)
//   node --import tsx bench/bucket.ts [--rounds 2] [--size-mib 1024] [--files 10000]
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openCache } from '../src/cache/index.js';
import { DaemonMemory } from '../src/memory/index.js';
import { BucketView } from '../src/fs/bucket/bucket-view.js';
import { FuseSession } from '../src/fuse/session.js';
import { S3Store } from '../src/storage/s3/store.js';
import { startRgw } from '../test/helpers/rgw.js';
import { dropCaches, median, perRound, pool, printTable, sdkClient, sh, startRun, timeSh, type Row } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '10000' },
  },
});
const rounds = Number(values.rounds);
const MiB = 2 ** 20;
const size = Number(values['size-mib']) * MiB;
const nFiles = Number(values.files);
const PART = 16 * MiB; // S3Store's default part size; 4 parts in flight, as S3Store does
const QUEUE = 4;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

const bench = startRun('bucket');
const rgw = await startRgw({ name: 'bench-bucket', memstoreBytes: '8G' });
const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-bucket-'));
const rows: Row[] = [];
const ratios: Row[] = [];
let session: FuseSession | undefined;
try {
  const creds = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const client = sdkClient(rgw);
  const bucket = 'bench';
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const source = path.join(work, 'source.bin');
  await sh(`head -c ${size} /dev/urandom > ${source}`);
  const store = new S3Store({ bucket, endpoint: rgw.endpoint, credentials: { kind: 'static', ...creds }, partSize: PART, queueSize: QUEUE });

  const memory = new DaemonMemory(); // one per process, as in the daemon: mounts reuse warm buffers
  const mount = async (): Promise<{ mnt: string; close: () => Promise<void> }> => {
    const cache = await openCache({ dir: mkdtempSync(path.join(work, 'cache-')), maxBytes: 4 * size + 1024 * MiB, minFreeBytes: 0 }, memory);
    const view = new BucketView({ store, cache, metadataTtlMs: 5000, write: { stagingDir: cache.stagingDir } });
    const mnt = mkdtempSync(path.join(work, 'mnt-'));
    session = await FuseSession.mount(view, mnt, {});
    return {
      mnt,
      close: async () => {
        await session?.unmount();
        session = undefined;
        view.close();
        await cache.close();
      },
    };
  };

  // ------------------------------------------------------------ 1: write until close
  const sdkWrite: number[] = [];
  const mountWrite: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // The source is read from the page cache in both cases, and neither run starts behind a backlog of dirty
    // pages left by the setup (the mount's staging writes would be throttled for it).
    await sh(`cat ${source} > /dev/null; sync`);
    let t0 = process.hrtime.bigint();
    await new Upload({ client, params: { Bucket: bucket, Key: `sdk-${r}.bin`, Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
    sdkWrite.push(size / MiB / secs(t0));
    const written = await store.head(`sdk-${r}.bin`);
    if (written.size !== size) throw new Error(`SDK upload wrote ${written.size} of ${size} bytes`);
    const m = await mount();
    try {
      // Again right before: this VM's DAMON pages idle files out within seconds, and dd reads its source
      // between writes (the SDK reads it in parallel with its uploads), so a paged-out source would be timed.
      await sh(`cat ${source} > /dev/null; sync`);
      t0 = process.hrtime.bigint();
      await sh(`dd if=${source} of=${m.mnt}/w-${r}.bin bs=1M status=none`);
      mountWrite.push(size / MiB / secs(t0));
      const info = await store.head(`w-${r}.bin`);
      if (info.size !== size) throw new Error(`the mount wrote ${info.size} of ${size} bytes`);
    } finally {
      await m.close();
    }
  }
  rows.push({ test: `write ${size / MiB} MiB: direct SDK multipart upload (${PART / MiB} MiB parts × ${QUEUE})`, value: median(sdkWrite), unit: 'MiB/s', 'per round': perRound(sdkWrite) });
  rows.push({ test: `write ${size / MiB} MiB through the mount until close() returns`, value: median(mountWrite), unit: 'MiB/s', 'per round': perRound(mountWrite) });
  ratios.push({ ratio: 'write via mount / SDK multipart upload', value: median(mountWrite) / median(sdkWrite), target: '≥ 0.8', 'per round': perRound(mountWrite.map((x, i) => x / sdkWrite[i]!)) });

  // ------------------------------------------------------------ 2: cold sequential read
  const direct8: number[] = [];
  const cold: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = process.hrtime.bigint();
    let got = 0;
    const part = 8 * MiB;
    await pool(8, Math.ceil(size / part), async (i) => {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'sdk-0.bin', Range: `bytes=${i * part}-${Math.min(size, (i + 1) * part) - 1}` }));
      const n = (await out.Body!.transformToByteArray()).length;
      got += n;
    });
    if (got !== size) throw new Error(`short baseline read: ${got} of ${size}`);
    direct8.push(size / MiB / secs(t0));
    const m = await mount();
    try {
      await dropCaches();
      t0 = process.hrtime.bigint();
      await sh(`dd if=${m.mnt}/sdk-0.bin of=/dev/null bs=1M status=none`);
      cold.push(size / MiB / secs(t0));
    } finally {
      await m.close();
    }
  }
  rows.push({ test: `read ${size / MiB} MiB: 8-way ranged SDK GETs (8 MiB)`, value: median(direct8), unit: 'MiB/s', 'per round': perRound(direct8) });
  rows.push({ test: `read ${size / MiB} MiB cold through the mount`, value: median(cold), unit: 'MiB/s', 'per round': perRound(cold) });
  ratios.push({ ratio: 'cold read via mount / 8-way SDK GETs', value: median(cold) / median(direct8), target: '≥ 0.9', 'per round': perRound(cold.map((x, i) => x / direct8[i]!)) });

  // ------------------------------------------------------------ 3: ls -l of a large prefix
  await pool(64, nFiles, async (i) => {
    await store.write(`many/f${String(i).padStart(6, '0')}`, `file ${i}\n`);
  });
  const ls: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const m = await mount();
    try {
      const t = await timeSh(`test $(ls -l ${m.mnt}/many | wc -l) -eq ${nFiles + 1}`);
      ls.push(t * 1000);
    } finally {
      await m.close();
    }
  }
  rows.push({ test: `ls -l of a ${nFiles}-object prefix, fresh mount`, value: median(ls), unit: 'ms', 'per round': perRound(ls) });

  printTable('Bucket mounts (RGW on 127.0.0.1)', rows);
  printTable('Ratios', ratios);
  console.log(`\nload average at the end: ${(await sh('cat /proc/loadavg')).trim()}`);
  const rawRounds = { sdkWriteMiBs: sdkWrite, mountWriteMiBs: mountWrite, sdkGet8MiBs: direct8, mountColdMiBs: cold, lsMs: ls };
  const saved = bench.save({ rounds, sizeBytes: size, files: nFiles, rows, ratios, perRound: rawRounds }, [
    { title: `Figures: medians of ${rounds} rounds`, rows },
    { title: 'Ratios of the medians (per round: that round\'s pair)', rows: ratios },
  ]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
  client.destroy();
  store.close();
} finally {
  await session?.unmount().catch(() => undefined);
  rgw.stop();
  rmSync(work, { recursive: true, force: true });
}
