// Bucket mounts (read-write, write-through) against their limits, on a throwaway Ceph RGW on 127.0.0.1, through
// the real `gradient mount` daemon (dist/) with the bucket as a `type: s3` entry of settings.yaml:
//   1. write 1 GiB through the mount until close() returns   vs a direct multipart upload with the SDK
//      (lib-storage, same part size and parallelism)            (target ≥ 0.8×)
//   2. cold sequential read of a 1 GiB object through the mount vs 8-way ranged SDK GETs (target ≥ 0.9×)
//      (cold: a fresh daemon with an empty cache dir, after `sync; echo 3 > drop_caches`)
//   3. `ls -l` of a 10k-object prefix, fresh daemon (ms)
// With each figure: the CPU of the process doing the work (the daemon's from /proc/<pid>/stat; this process's
// for the SDK) and the daemon's FUSE and store requests from `gradient status --json` (if it reports them).
//   node --import tsx bench/bucket.ts [--rounds 2] [--size-mib 1024] [--files 10000] [--timeout-s 300]
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRgw } from '../test/helpers/rgw.js';
import { buildDist, removeHome } from './daemon-process.js';
import { Figures, type Server } from './figures.js';
import { dropCaches, io, loadAvg, ownCpu, pool, printTable, rgwCounters, sdkClient, sdkOps, sh, startRun } from './lib.js';
import { MountSet, type BucketTarget, type Mounted } from './mounts.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '10000' },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const rounds = Number(values.rounds);
const MiB = 2 ** 20;
const size = Number(values['size-mib']) * MiB;
const nFiles = Number(values.files);
const CMD_TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const PART = 16 * MiB; // S3Store's default part size; 4 parts in flight, as S3Store does
const QUEUE = 4;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const t0Run = Date.now();
const log = (msg: string) => console.error(`[bucket ${((Date.now() - t0Run) / 1000).toFixed(0).padStart(5)}s] ${msg}`);
const here: Server = { cpu: ownCpu };

const bench = startRun('bucket');
const rgw = await startRgw({ name: 'bench-bucket', memstoreBytes: '8G' });
const work = mkdtempSync(path.join(tmpdir(), 'gd-bench-bucket-'));
const mounts = new MountSet(work, { cacheBytes: 4 * size + 1024 * MiB, log });
mounts.onInterrupt(() => rgw.stop());
const figures = new Figures({ rgw: rgwCounters(rgw), log });
const GiB = size / 2 ** 30;
figures.define('write', { label: `write ${size / MiB} MiB (dd bs=1M) until close() returns`, unit: 'MiB/s', higherIsBetter: true, limit: `SDK multipart upload (${PART / MiB} MiB parts × ${QUEUE})`, per: { gib: GiB }, target: '≥ 0.8' });
figures.define('read-cold', { label: `read ${size / MiB} MiB cold`, unit: 'MiB/s', higherIsBetter: true, limit: '8-way ranged SDK GETs (8 MiB)', per: { gib: GiB }, target: '≥ 0.9' });
figures.define('ls', { label: `ls -l of a ${nFiles}-object prefix, fresh daemon`, unit: 'ms', higherIsBetter: false, limit: 'SDK delimited LIST of the prefix', per: { items: nFiles, item: 'entry' } });
const check = (what: string, got: number | undefined, want: number) => {
  if (got !== want) throw new Error(`${what}: got ${got}, expected ${want}`);
};

try {
  await buildDist();
  const client = sdkClient(rgw);
  const bucket = 'bench';
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const s3 = sdkOps(client, bucket);
  const target: BucketTarget = { endpoint: rgw.endpoint, bucket, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const source = path.join(work, 'source.bin');
  await sh(`head -c ${size} /dev/urandom > ${source}`);
  await pool(64, nFiles, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `many/f${String(i).padStart(6, '0')}`, Body: `file ${i}\n` }));
  });

  /** A fresh daemon (empty cache), closed whatever happens; a failed start fails `id`'s figure. */
  const withMount = async (id: string, r: number, body: (m: Mounted) => Promise<void>) => {
    let m: Mounted;
    try {
      m = await mounts.bucket('ours', target);
    } catch (err) {
      figures.fail(id, 'ours', r, err);
      return;
    }
    try {
      await body(m);
    } finally {
      await m.close();
    }
  };

  for (let r = 0; r < rounds; r++) {
    // ---------------------------------------------------------- 1: write until close
    // The source is read from the page cache in both cases, and neither run starts behind a backlog of dirty
    // pages left by the setup (the mount's staging writes would be throttled for it).
    await sh(`cat ${source} > /dev/null; sync`);
    await figures.measure('write', 'limit', r, here, async () => {
      const t = process.hrtime.bigint();
      await new Upload({ client, params: { Bucket: bucket, Key: `sdk-${r}.bin`, Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
      const s = secs(t);
      check('bytes uploaded', await s3.size(`sdk-${r}.bin`), size);
      return size / MiB / s;
    });
    await withMount('write', r, async (m) => {
      // Again right before: this VM's DAMON pages idle files out within seconds, and dd reads its source
      // between writes (the SDK reads it in parallel with its uploads), so a paged-out source would be timed.
      await sh(`cat ${source} > /dev/null; sync`);
      await figures.measure('write', 'ours', r, m, async () => {
        const t = process.hrtime.bigint();
        await sh(`dd if=${source} of=${m.mnt}/w-${r}.bin bs=1M status=none`, { timeoutMs: CMD_TIMEOUT_MS });
        const s = secs(t);
        check('bytes in the bucket at close', await s3.size(`w-${r}.bin`), size);
        return size / MiB / s;
      });
    });

    // ---------------------------------------------------------- 2: cold sequential read
    await figures.measure('read-cold', 'limit', r, here, async () => {
      const part = 8 * MiB;
      const t = process.hrtime.bigint();
      let got = 0;
      await pool(8, Math.ceil(size / part), async (i) => {
        const n = await s3.getRange('sdk-0.bin', i * part, Math.min(size, (i + 1) * part));
        got += n;
      });
      check('bytes read', got, size);
      return size / MiB / secs(t);
    });
    await withMount('read-cold', r, async (m) => {
      await dropCaches();
      await figures.measure('read-cold', 'ours', r, m, async () => {
        const o = await io(['seq', `${m.mnt}/sdk-0.bin`], CMD_TIMEOUT_MS);
        check('bytes read', o.bytes, size);
        return size / MiB / o.secs;
      });
    });

    // ---------------------------------------------------------- 3: ls -l of a large prefix
    await figures.measure('ls', 'limit', r, here, async () => {
      const t = process.hrtime.bigint();
      check('keys listed', (await s3.list('many/', '/')).count, nFiles);
      return secs(t) * 1000;
    });
    await withMount('ls', r, async (m) => {
      await figures.measure('ls', 'ours', r, m, async () => {
        const t = process.hrtime.bigint();
        check('entries', Number((await sh(`ls -l ${m.mnt}/many | wc -l`, { timeoutMs: CMD_TIMEOUT_MS })).trim()), nFiles + 1);
        return secs(t) * 1000;
      });
    });
  }

  const rows = figures.rows(['ours']);
  const title = `Bucket mount through \`gradient mount\` (RGW on 127.0.0.1): medians of ${rounds} rounds; ours vs limit > 1 = ours better; CPU = the daemon's (ours) or this process's (SDK limit)`;
  printTable(title, rows);
  printTable('RGW per item (per run for byte workloads): requests / GETs+HEADs / MiB sent / RGW CPU per run', figures.rgwRows(['ours', 'limit']));
  if (figures.errors.length) printTable('Failures', figures.errors.map((e) => ({ ...e })));
  console.log(`\nload average at the end: ${loadAvg()}`);
  const saved = bench.save({ rounds, sizeBytes: size, files: nFiles, metrics: figures.json(['ours']), errors: figures.errors, table: rows }, [
    { title, rows },
    { title: 'Failures', rows: figures.errors.map((e) => ({ ...e })) },
  ], [`**Limits**: ${[...figures.metrics.values()].map((m) => `${m.label}: ${m.limit}`).join('; ')}`]);
  console.log(`\nresults: ${saved.full}\nsummary: ${saved.summary}`);
  client.destroy();
} finally {
  await mounts.closeAll();
  rgw.stop();
  removeHome(work);
}
