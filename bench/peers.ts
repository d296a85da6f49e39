// Our bucket mount against its peers and the limits, in one session, on one throwaway Ceph RGW on 127.0.0.1,
// the same bucket and the same objects (issue #7; issue #13: what users run):
//   ours    the real `gradient mount` daemon (dist/), a `type: s3` entry of settings.yaml, cache in config.yaml
//   rclone  `rclone mount --vfs-cache-mode full` with its own cache dir and size bound
//   s3fs    `s3fs -o use_cache=<dir>`
//   limit   what the bytes cost without a filesystem: direct SDK requests from this process, or local files
// Workloads (cold = a fresh process with an empty cache dir, after `sync; echo 3 > drop_caches`):
//   seq     1 GiB sequential read cold; re-read right after; re-read again; re-read after drop_caches
//   https   the cold 1 GiB read over TLS (RGW's TLS endpoint, its throwaway CA trusted explicitly)
//   small   10k × 4 KiB files (list the directory, read every file, 16 threads), cold and warm
//   find    `find -printf %s` (lstat of every entry) over 100k objects in 1000 directories, cold and warm
//   ls      `ls -l` of the 10k-entry directory, cold and warm
//   random  2000 random 4 KiB preads (seeded, 8 threads) in the 1 GiB object, cold and warm
//   write   1 GiB written with dd: until close() returns, and until the bucket holds it
//   copy    `cp -r` of 1k × 4 KiB local files into the mount: until cp returns, and until the bucket holds them
//   epoch   a data loader's shuffled first epoch: walk the tree, then 10k × 100 KiB files read once each in a
//           seeded random order dealt to 8 reader processes, cold; from the bucket (every tool; limit: LIST +
//           16 GETs in flight) and, ours only, from a committed team dataset holding the same files
//           (`gradient datasets files put` into an S3 storage provider on the same RGW, a `type: dataset` entry)
// Every figure comes with the CPU of the process serving it (/proc/<pid>/stat: our daemon, rclone's or s3fs's
// mount process; this process for the SDK limits) and, for ours, the daemon's FUSE and store requests per
// item from `gradient status --json` (`requests`; "—" when the build has none). Tools take turns round by
// round in a rotating order; every command on a mount has a timeout; every mount is closed even on failure.
//   node --import tsx bench/peers.ts [--quick] [--rounds 3] [--big-rounds 2] [--size-mib 1024] [--files 10000]
//     [--find-objects 100000] [--random 2000] [--copy 1000] [--epoch-files 10000] [--epoch-kib 100]
//     [--epoch-procs 8] [--tools ours,rclone,s3fs] [--only seq,https,small,find,ls,random,write,copy,epoch]
//     [--timeout-s 300]   (per command on a mount: s3fs's warm find over 100k objects spins for many minutes)
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { runCli } from '../test/helpers/cli.js';
import { startRgw } from '../test/helpers/rgw.js';
import { buildDist, removeHome } from './daemon-process.js';
import { Figures, sig, type Server } from './figures.js';
import { dropCaches, io, loadAvg, ownCpu, pool, printTable, rgwCounters, sdkClient, sdkOps, seeded, sh, startRun } from './lib.js';
import { MountSet, type BucketTarget, type Mounted, type Tool } from './mounts.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'big-rounds': { type: 'string' },
    'size-mib': { type: 'string' },
    files: { type: 'string' },
    'find-objects': { type: 'string' },
    random: { type: 'string' },
    copy: { type: 'string' },
    'epoch-files': { type: 'string' },
    'epoch-kib': { type: 'string', default: '100' },
    'epoch-procs': { type: 'string', default: '8' },
    tools: { type: 'string', default: 'ours,rclone,s3fs' },
    only: { type: 'string', default: 'seq,https,small,find,ls,random,write,copy,epoch' },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const quick = values.quick;
const num = (v: string | undefined, full: number, small: number) => (v === undefined ? (quick ? small : full) : Number(v));
const rounds = num(values.rounds, 3, 3);
/** Rounds for the expensive workloads: 1 GiB reads and writes, find over 100k objects, the epoch. */
const bigRounds = num(values['big-rounds'], 2, 1);
const MiB = 2 ** 20;
const size = num(values['size-mib'], 1024, 256) * MiB;
const nSmall = num(values.files, 10_000, 2_000);
const groups = new Set(values.only.split(','));
// Only what the chosen workloads read is made and uploaded (100k find objects take minutes on their own).
const nFind = groups.has('find') ? num(values['find-objects'], 100_000, 10_000) : 0;
const nRandom = num(values.random, 2_000, 500);
const nCopy = num(values.copy, 1_000, 200);
const nEpoch = num(values['epoch-files'], 10_000, 2_000);
const epochBytes = Number(values['epoch-kib']) * 1024;
const epochProcs = Number(values['epoch-procs']);
type Who = Tool | 'limit';
const tools = values.tools.split(',') as Tool[];
const PART = 16 * MiB; // S3Store's multipart part size and queue, also used for the direct upload
const QUEUE = 4;
const SMALL_THREADS = 16;
const RANDOM_THREADS = 8;
const EPOCH_GETS = 16;
/** A command on a mount that takes longer fails its figure ("timed out") instead of holding up the run. */
const CMD_TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const sizeLabel = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / MiB} MiB`;
const GiB = size / 2 ** 30;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const bench = startRun('peers');
const t0Run = Date.now();
const log = (msg: string) => console.error(`[peers ${((Date.now() - t0Run) / 1000).toFixed(0).padStart(5)}s] ${msg}`);
const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The SDK limits run here: their serving process is this one. */
const here: Server = { cpu: ownCpu };

// ---------------------------------------------------------------- session state (cleaned up in finally)
const rgw = await startRgw({ name: 'bench-peers', memstoreBytes: quick ? '6G' : '14G' });
const work = mkdtempSync('/tmp/gd-bench-peers-');
const localDir = path.join(work, 'local');
mkdirSync(localDir);
const cacheBound = 4 * size + 2048 * MiB; // ours and rclone get the same bound; s3fs has none (only free space)
const mounts = new MountSet(work, { cacheBytes: cacheBound, log });
mounts.onInterrupt(() => rgw.stop());

const figures = new Figures({ rgw: rgwCounters(rgw), log });
const define = (id: string, label: string, unit: string, higherIsBetter: boolean, limit: string, per: { gib: number } | { items: number; item: string }, against?: string) =>
  figures.define(id, { label, unit, higherIsBetter, limit, per, ...(against ? { against } : {}) });
const leaves = Math.ceil(nFind / 100);
const findEntries = nFind + leaves + Math.ceil(leaves / 100) + 1; // files + leaves + tops + the root
define('seq-cold', `sequential read ${sizeLabel}, cold`, 'MiB/s', true, '8-way ranged SDK GETs (8 MiB)', { gib: GiB });
define('seq-cold-https', `sequential read ${sizeLabel}, cold, over TLS`, 'MiB/s', true, '8-way ranged SDK GETs (8 MiB) over TLS', { gib: GiB });
define('seq-reread', `re-read right after (tool cache full)`, 'MiB/s', true, 'local file, page cache warm', { gib: GiB });
define('seq-reread2', `re-read again`, 'MiB/s', true, 'local file, page cache warm', { gib: GiB });
define('seq-dropped', `re-read after drop_caches (tool cache full)`, 'MiB/s', true, 'local file after drop_caches', { gib: GiB });
define('small-cold', `${nSmall} × 4 KiB files: list + read, ${SMALL_THREADS} threads, cold`, 'files/s', true, `SDK LIST + GETs, ${SMALL_THREADS} in flight`, { items: nSmall, item: 'file' });
define('small-warm', `${nSmall} × 4 KiB files again`, 'files/s', true, 'local directory, page cache warm', { items: nSmall, item: 'file' });
define('find-cold', `find + stat, ${nFind} objects, cold`, 's', false, 'SDK flat LIST of the prefix (1000 keys/page)', { items: findEntries, item: 'entry' });
define('find-warm', `find + stat again`, 's', false, 'local tree of the same shape, warm', { items: findEntries, item: 'entry' });
define('ls-cold', `ls -l of a ${nSmall}-entry directory, cold`, 's', false, 'SDK delimited LIST of the prefix', { items: nSmall, item: 'entry' });
define('ls-warm', `ls -l again`, 's', false, 'local directory, warm', { items: nSmall, item: 'entry' });
define('random-cold', `${nRandom} random 4 KiB reads in ${sizeLabel}, ${RANDOM_THREADS} threads, cold`, 'ops/s', true, `4 KiB ranged SDK GETs, ${RANDOM_THREADS} in flight`, { items: nRandom, item: 'read' });
define('random-warm', `same reads again`, 'ops/s', true, 'local file, page cache warm', { items: nRandom, item: 'read' });
define('write-close', `write ${sizeLabel} (dd bs=1M): until close() returns`, 's', false, `SDK multipart upload (lib-storage, ${PART / MiB} MiB × ${QUEUE})`, { gib: GiB });
define('write-durable', `write ${sizeLabel}: until the bucket holds it`, 's', false, `SDK multipart upload (lib-storage, ${PART / MiB} MiB × ${QUEUE})`, { gib: GiB });
define('copy-close', `cp -r of ${nCopy} × 4 KiB files in: until cp returns`, 's', false, 'sequential SDK PUTs', { items: nCopy, item: 'file' });
define('copy-durable', `cp -r of ${nCopy} files: until the bucket holds them`, 's', false, 'sequential SDK PUTs', { items: nCopy, item: 'file' });
const epochLabel = `${nEpoch} × ${epochBytes / 1024} KiB files, shuffled, ${epochProcs} reader processes, cold`;
define('epoch-bucket', `first epoch: ${epochLabel}`, 'files/s', true, `SDK LIST + GETs, ${EPOCH_GETS} in flight, same order`, { items: nEpoch, item: 'file' });
define('epoch-dataset', `first epoch from a team dataset (ours; others: the same files as objects)`, 'files/s', true, `SDK LIST + GETs, ${EPOCH_GETS} in flight`, { items: nEpoch, item: 'file' }, 'epoch-bucket');

/** Rotates the order each round so drift in the machine's load does not always hit the same one. */
const order = <T>(list: readonly T[], r: number): T[] => list.map((_, i) => list[(i + r) % list.length]!);
const check = (what: string, got: number | undefined, want: number) => {
  if (got !== want) throw new Error(`${what}: got ${got}, expected ${want}`);
};

let datasetVersion: { id: string; version: string; config: Record<string, unknown> } | undefined;
try {
  log(`RGW at ${rgw.endpoint} and ${rgw.endpointTls}; work dir ${work}; load ${loadAvg()}`);
  const loads: { at: string; load: string }[] = [{ at: 'start', load: loadAvg() }];
  await buildDist();
  const client = sdkClient(rgw);
  const bucket = 'bench';
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const s3 = sdkOps(client, bucket);
  const target: BucketTarget = { endpoint: rgw.endpoint, bucket, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const targetTls: BucketTarget = { ...target, endpoint: rgw.endpointTls, caFile: rgw.caFile };

  // ------------------------------------------------------------ the data, uploaded once
  // Local twins of what is in the bucket: the same bytes and shapes, for the local-file limits.
  const source = path.join(localDir, 'big.bin');
  await sh(`head -c ${size} /dev/urandom > ${source}`);
  const smallLocal = path.join(localDir, 'small');
  const treeLocal = path.join(localDir, 'tree');
  const copySrc = path.join(localDir, 'copy');
  const epochLocal = path.join(localDir, 'epoch');
  for (const d of [smallLocal, treeLocal, copySrc, epochLocal]) mkdirSync(d);
  const smallName = (i: number) => `f${String(i).padStart(6, '0')}`;
  const smallBytes = Array.from({ length: nSmall }, () => randomBytes(4096));
  smallBytes.forEach((b, i) => writeFileSync(path.join(smallLocal, smallName(i)), b));
  for (let i = 0; i < nCopy; i++) writeFileSync(path.join(copySrc, smallName(i)), randomBytes(4096));
  // find's tree: 100 objects per leaf directory, 100 leaves per top directory (a dataset split into shards).
  const treeKey = (i: number) => {
    const leaf = Math.floor(i / 100);
    return `a${Math.floor(leaf / 100)}/b${leaf % 100}/f${i}`;
  };
  for (let i = 0; i < nFind; i++) {
    const f = path.join(treeLocal, treeKey(i));
    if (i % 100 === 0) mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, `${i}\n`);
  }
  // Seeded 4 KiB-aligned offsets (the same list for every tool and the limit).
  const rand = seeded(42);
  const offsets = Array.from({ length: nRandom }, () => Math.floor(rand() * (size / 4096)) * 4096);
  const offsetsFile = path.join(work, 'offsets.txt');
  writeFileSync(offsetsFile, offsets.join('\n'));
  // The epoch's files: 10 class directories (an image folder); the order a shuffling sampler with seed 7 gives.
  const epochPaths = Array.from({ length: nEpoch }, (_, i) => `c${i % 10}/img${String(i).padStart(6, '0')}.jpg`);
  const epochDirs = groups.has('epoch') ? nEpoch : 0;
  for (let c = 0; c < Math.min(10, epochDirs); c++) mkdirSync(path.join(epochLocal, `c${c}`));
  for (let i = 0; i < epochDirs; i++) writeFileSync(path.join(epochLocal, epochPaths[i]!), randomBytes(epochBytes));
  const shuffled = [...epochPaths];
  const shuffle = seeded(7);
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(shuffle() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const epochOrder = path.join(work, 'epoch-order.txt');
  writeFileSync(epochOrder, shuffled.join('\n'));

  log(`uploading ${sizeLabel}, ${nSmall} small files, ${nFind} tree objects, ${epochDirs} epoch files (64 in flight)…`);
  const t0 = process.hrtime.bigint();
  await new Upload({ client, params: { Bucket: bucket, Key: 'big/big.bin', Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
  await pool(64, nSmall, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `small/${smallName(i)}`, Body: smallBytes[i] }));
  });
  await pool(64, nFind, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `tree/${treeKey(i)}`, Body: `${i}\n` }));
  });
  await pool(64, epochDirs, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `epoch/${epochPaths[i]}`, Body: readFileSync(path.join(epochLocal, epochPaths[i]!)) }));
  });
  if (epochDirs && tools.includes('ours')) datasetVersion = await teamDataset(epochLocal);
  log(`uploaded in ${secs(t0).toFixed(0)} s`);

  // ------------------------------------------------------------ measuring
  const ioRun = (...args: (string | number)[]) => io(args, CMD_TIMEOUT_MS);
  const seqRead = async (file: string) => {
    const o = await ioRun('seq', file);
    check('bytes read', o.bytes, size);
    return size / MiB / o.secs;
  };
  const smallRead = async (dir: string) => {
    const o = await ioRun('small', dir, SMALL_THREADS);
    check('files read', o.files, nSmall);
    check('bytes read', o.bytes, nSmall * 4096);
    return nSmall / o.secs;
  };
  const randomRead = async (file: string) => {
    const o = await ioRun('random', file, offsetsFile, RANDOM_THREADS);
    check('bytes read', o.bytes, nRandom * 4096);
    return nRandom / o.secs;
  };
  const epochRead = async (root: string) => {
    const o = await ioRun('epoch', root, epochOrder, epochProcs);
    check('files walked', o.walked, nEpoch);
    check('files read', o.files, nEpoch);
    check('bytes read', o.bytes, nEpoch * epochBytes);
    return nEpoch / o.secs;
  };
  const timed = async (cmd: string, expectLines: number) => {
    const t = process.hrtime.bigint();
    const lines = Number((await sh(cmd, { timeoutMs: CMD_TIMEOUT_MS })).trim());
    const s = secs(t);
    check('entries', lines, expectLines);
    return s;
  };
  const find = (dir: string) => timed(`find ${dir} -printf '%s\\n' | wc -l`, findEntries);
  const ls = (dir: string) => timed(`ls -l ${dir} | wc -l`, nSmall + 1);
  /** Polls the bucket until `done` holds (a write-back peer uploads after close returns). Seconds since t. */
  const until = async (t: bigint, done: () => Promise<boolean>) => {
    const deadline = Date.now() + CMD_TIMEOUT_MS;
    while (!(await done().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('the bucket never got the data');
      await sleep(50);
    }
    return secs(t);
  };

  /** A fresh mount (`open`), closed whatever happens; a mount failure is recorded against `ids`. */
  async function withMount(who: Who, r: number, ids: string[], open: () => Promise<Mounted>, body: (m: Mounted) => Promise<void>): Promise<void> {
    let m: Mounted;
    try {
      m = await open();
    } catch (err) {
      for (const id of ids) figures.fail(id, who, r, new Error(`mount: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    try {
      await body(m);
    } finally {
      await m.close();
    }
  }
  const fresh = (tool: Tool, t = target) => () => mounts.bucket(tool, t);

  /** `<workload>-cold` then `-warm` on each tool's fresh mount, the page cache dropped before the cold run. */
  async function coldThenWarm(workload: string, r: number, run: (m: Mounted) => Promise<number>): Promise<void> {
    for (const tool of order(tools, r)) {
      await withMount(tool, r, [`${workload}-cold`, `${workload}-warm`], fresh(tool), async (m) => {
        await dropCaches();
        await figures.measure(`${workload}-cold`, tool, r, m, () => run(m));
        await figures.measure(`${workload}-warm`, tool, r, m, () => run(m));
      });
    }
  }

  /**
   * A listing workload: the limit lists the keys with the SDK (cold) and runs the command on the local copy
   * (warm, after a first pass); each tool runs it on `sub` of its mount, cold then warm.
   */
  async function listing(workload: 'find' | 'ls', roundCount: number, sdkList: () => Promise<number>, expected: number, run: (dir: string) => Promise<number>, local: string, sub: string): Promise<void> {
    for (let r = 0; r < roundCount; r++) {
      await figures.measure(`${workload}-cold`, 'limit', r, here, async () => {
        const t = process.hrtime.bigint();
        check('keys listed', await sdkList(), expected);
        return secs(t);
      });
      await run(local);
      await figures.measure(`${workload}-warm`, 'limit', r, undefined, () => run(local));
      await coldThenWarm(workload, r, (m) => run(`${m.mnt}/${sub}`));
    }
    loads.push({ at: workload, load: loadAvg() });
  }

  /** The limit of a cold sequential read: 8 ranged GETs of 8 MiB in flight. */
  const sdkSeq = (ops: ReturnType<typeof sdkOps>) => async () => {
    const part = 8 * MiB;
    const t = process.hrtime.bigint();
    let got = 0;
    await pool(8, Math.ceil(size / part), async (i) => {
      const n = await ops.getRange('big/big.bin', i * part, Math.min(size, (i + 1) * part));
      got += n; // not `got += await …`: that reads `got` before the await and loses updates
    });
    check('bytes read', got, size);
    return size / MiB / secs(t);
  };

  // ------------------------------------------------------------ seq
  if (groups.has('seq')) {
    for (let r = 0; r < bigRounds; r++) {
      await figures.measure('seq-cold', 'limit', r, here, sdkSeq(s3));
      await sh(`cat ${source} > /dev/null`);
      await figures.measure('seq-reread', 'limit', r, undefined, () => seqRead(source));
      await figures.measure('seq-reread2', 'limit', r, undefined, () => seqRead(source));
      await dropCaches();
      await figures.measure('seq-dropped', 'limit', r, undefined, () => seqRead(source));
      for (const tool of order(tools, r)) {
        await withMount(tool, r, ['seq-cold', 'seq-reread', 'seq-reread2', 'seq-dropped'], fresh(tool), async (m) => {
          const f = `${m.mnt}/big/big.bin`;
          await dropCaches();
          await figures.measure('seq-cold', tool, r, m, () => seqRead(f));
          await figures.measure('seq-reread', tool, r, m, () => seqRead(f));
          await figures.measure('seq-reread2', tool, r, m, () => seqRead(f));
          await dropCaches();
          await figures.measure('seq-dropped', tool, r, m, () => seqRead(f));
        });
      }
    }
    loads.push({ at: 'seq', load: loadAvg() });
  }

  // ------------------------------------------------------------ https: the cold read over TLS
  if (groups.has('https')) {
    const tlsClient = sdkClient(rgw, { tls: true });
    const s3Tls = sdkOps(tlsClient, bucket);
    for (let r = 0; r < bigRounds; r++) {
      await figures.measure('seq-cold-https', 'limit', r, here, sdkSeq(s3Tls));
      for (const tool of order(tools, r)) {
        await withMount(tool, r, ['seq-cold-https'], fresh(tool, targetTls), async (m) => {
          await dropCaches();
          await figures.measure('seq-cold-https', tool, r, m, () => seqRead(`${m.mnt}/big/big.bin`));
        });
      }
    }
    tlsClient.destroy();
    loads.push({ at: 'https', load: loadAvg() });
  }

  // ------------------------------------------------------------ small
  if (groups.has('small')) {
    for (let r = 0; r < rounds; r++) {
      await figures.measure('small-cold', 'limit', r, here, async () => {
        const t = process.hrtime.bigint();
        const { keys } = await s3.list('small/');
        let got = 0;
        await pool(SMALL_THREADS, keys.length, async (i) => {
          const n = await s3.get(keys[i]!);
          got += n;
        });
        check('bytes read', got, nSmall * 4096);
        return nSmall / secs(t);
      });
      await smallRead(smallLocal); // warm the page cache
      await figures.measure('small-warm', 'limit', r, undefined, () => smallRead(smallLocal));
      await coldThenWarm('small', r, (m) => smallRead(`${m.mnt}/small`));
    }
    loads.push({ at: 'small', load: loadAvg() });
  }

  // ------------------------------------------------------------ find, ls
  if (groups.has('find')) await listing('find', bigRounds, async () => (await s3.list('tree/')).count, nFind, find, treeLocal, 'tree');
  if (groups.has('ls')) await listing('ls', rounds, async () => (await s3.list('small/', '/')).count, nSmall, ls, smallLocal, 'small');

  // ------------------------------------------------------------ random
  if (groups.has('random')) {
    for (let r = 0; r < rounds; r++) {
      await figures.measure('random-cold', 'limit', r, here, async () => {
        const t = process.hrtime.bigint();
        let got = 0;
        await pool(RANDOM_THREADS, nRandom, async (i) => {
          const n = await s3.getRange('big/big.bin', offsets[i]!, offsets[i]! + 4096);
          got += n;
        });
        check('bytes read', got, nRandom * 4096);
        return nRandom / secs(t);
      });
      await sh(`cat ${source} > /dev/null`);
      await figures.measure('random-warm', 'limit', r, undefined, () => randomRead(source));
      await coldThenWarm('random', r, (m) => randomRead(`${m.mnt}/big/big.bin`));
    }
    loads.push({ at: 'random', load: loadAvg() });
  }

  // ------------------------------------------------------------ write
  if (groups.has('write')) {
    for (let r = 0; r < bigRounds; r++) {
      await sh(`cat ${source} > /dev/null`); // every writer reads the source from the page cache
      const upload = await figures.measure('write-close', 'limit', r, here, async () => {
        const t = process.hrtime.bigint();
        await new Upload({ client, params: { Bucket: bucket, Key: `w-limit-${r}.bin`, Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
        const s = secs(t);
        check('bytes uploaded', await s3.size(`w-limit-${r}.bin`), size);
        return s;
      });
      if (upload) figures.record('write-durable', 'limit', r, upload.value, upload.cost);
      await s3.deletePrefix(`w-limit-${r}.bin`);
      for (const tool of order(tools, r)) {
        const key = `w-${tool}-${r}.bin`;
        await withMount(tool, r, ['write-close', 'write-durable'], fresh(tool), async (m) => {
          const s0 = await figures.snapshot(m);
          const t = process.hrtime.bigint();
          const closed = await figures.measure('write-close', tool, r, m, async () => {
            await sh(`dd if=${source} of=${m.mnt}/${key} bs=1M status=none`, { timeoutMs: CMD_TIMEOUT_MS });
            return secs(t);
          }, { since: s0 });
          if (closed) await figures.measure('write-durable', tool, r, m, () => until(t, async () => (await s3.size(key)) === size), { since: s0 });
        });
        await s3.deletePrefix(key);
      }
    }
    loads.push({ at: 'write', load: loadAvg() });
  }

  // ------------------------------------------------------------ copy
  if (groups.has('copy')) {
    const names = readdirSync(copySrc);
    for (let r = 0; r < rounds; r++) {
      await sh(`cat ${copySrc}/* > /dev/null`);
      const puts = await figures.measure('copy-close', 'limit', r, here, async () => {
        // What cp does, file after file; each PUT returns once the bucket holds the file.
        const t = process.hrtime.bigint();
        for (const name of names) {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: `copy-limit-${r}/${name}`, Body: readFileSync(path.join(copySrc, name)) }));
        }
        return secs(t);
      });
      if (puts) figures.record('copy-durable', 'limit', r, puts.value, puts.cost);
      await s3.deletePrefix(`copy-limit-${r}/`);
      for (const tool of order(tools, r)) {
        const dir = `copy-${tool}-${r}`;
        await withMount(tool, r, ['copy-close', 'copy-durable'], fresh(tool), async (m) => {
          const s0 = await figures.snapshot(m);
          const t = process.hrtime.bigint();
          const closed = await figures.measure('copy-close', tool, r, m, async () => {
            await sh(`cp -r ${copySrc} ${m.mnt}/${dir}`, { timeoutMs: CMD_TIMEOUT_MS });
            return secs(t);
          }, { since: s0 });
          if (closed) await figures.measure('copy-durable', tool, r, m, () => until(t, async () => (await s3.countSized(`${dir}/`, 4096)) === nCopy), { since: s0 });
        });
        await s3.deletePrefix(`${dir}/`);
      }
    }
    loads.push({ at: 'copy', load: loadAvg() });
  }

  // ------------------------------------------------------------ epoch
  if (groups.has('epoch')) {
    const keyOrder = shuffled.map((p) => `epoch/${p}`);
    type EpochRun = Tool | 'dataset';
    const runs: EpochRun[] = [...tools, ...(datasetVersion ? ['dataset' as const] : [])];
    for (let r = 0; r < bigRounds; r++) {
      await figures.measure('epoch-bucket', 'limit', r, here, async () => {
        const t = process.hrtime.bigint();
        check('keys listed', (await s3.list('epoch/')).count, nEpoch);
        let got = 0;
        await pool(EPOCH_GETS, nEpoch, async (i) => {
          const n = await s3.get(keyOrder[i]!);
          got += n;
        });
        check('bytes read', got, nEpoch * epochBytes);
        return nEpoch / secs(t);
      });
      for (const run of order(runs, r)) {
        if (run === 'dataset') {
          const dv = datasetVersion!;
          await withMount('ours', r, ['epoch-dataset'], () => mounts.dataset(dv.id, dv.version, dv.config), async (m) => {
            await dropCaches();
            await figures.measure('epoch-dataset', 'ours', r, m, () => epochRead(m.mnt));
          });
        } else {
          await withMount(run, r, ['epoch-bucket'], fresh(run), async (m) => {
            await dropCaches();
            await figures.measure('epoch-bucket', run, r, m, () => epochRead(`${m.mnt}/epoch`));
          });
        }
      }
    }
    loads.push({ at: 'epoch', load: loadAvg() });
  }

  // ------------------------------------------------------------ report
  loads.push({ at: 'end', load: loadAvg() });
  const rows = figures.rows(tools);
  const title = `Peers (RGW on 127.0.0.1; medians of ${rounds} rounds, ${bigRounds} for 1 GiB reads/writes, find and the epoch; ratios > 1 = ours better: throughput ratio, or their time ÷ our time; CPU = the serving process, per GiB or per item)`;
  printTable(title, rows);
  printTable('Limits', [...figures.metrics.values()].filter((m) => Object.keys(m.samples).length).map((m) => ({ workload: m.label, limit: m.limit ?? '' })));
  printTable('RGW per item (per run for byte workloads): requests / GETs+HEADs / MiB sent / RGW CPU per run (the *-durable rows include this benchmark\'s polling)', figures.rgwRows([...tools, 'limit']));
  if (figures.errors.length) printTable('Failures', figures.errors.map((e) => ({ ...e })));
  const notes: string[] = [];
  const epochMiB = (id: string, w: string) => sig((figures.median(id, w) * epochBytes) / MiB);
  if (figures.metrics.get('epoch-bucket')!.samples.ours || figures.metrics.get('epoch-dataset')!.samples.ours) {
    const peers = tools.filter((t) => t !== 'ours').map((t) => ({ t, v: figures.median('epoch-bucket', t) })).filter((p) => Number.isFinite(p.v));
    const best = peers.sort((a, b) => b.v - a.v)[0];
    notes.push(
      `**Epoch in MiB/s**: bucket ${[...tools, 'limit'].map((w) => `${w} ${epochMiB('epoch-bucket', w)}`).join(', ')}; team dataset (ours) ${epochMiB('epoch-dataset', 'ours')}` +
        (best ? `; team dataset vs the best peer (${best.t}) ${sig(figures.median('epoch-dataset', 'ours') / best.v)}×` : ''),
    );
  }
  console.log(`\n${notes.join('\n')}\nload average (1/5/15 min): ${loads.map((l) => `${l.at} ${l.load}`).join('; ')}`);
  const versions = {
    rclone: (await sh('rclone version | head -1').catch(() => '')).trim(),
    s3fs: (await sh('s3fs --version | head -1').catch(() => '')).trim(),
    kernel: (await sh('uname -r')).trim(),
    pipeMaxSize: readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim(),
  };
  const saved = bench.save(
    {
      quick,
      rounds,
      bigRounds,
      sizeBytes: size,
      smallFiles: nSmall,
      findObjects: nFind,
      randomReads: nRandom,
      copyFiles: nCopy,
      epoch: { files: nEpoch, bytes: epochBytes, procs: epochProcs, gets: EPOCH_GETS },
      tools,
      versions,
      flags: {
        ours: `gradient mount (dist/), settings.yaml entry type s3 (type dataset for epoch-dataset), config.yaml cache maxSize ${cacheBound} minFreeSpace 0, buckets defaults`,
        rclone: mounts.args('rclone', target, '<mnt>', '<cache>').join(' '),
        s3fs: mounts.args('s3fs', target, '<mnt>', '<cache>').join(' '),
        https: 'ours: endpoint https + AWS_CA_BUNDLE=<ca>; rclone: --ca-cert <ca>; s3fs: url=https://… + CURL_CA_BUNDLE=<ca>',
      },
      loads,
      metrics: figures.json(tools),
      errors: figures.errors,
      table: rows,
    },
    [
      { title, rows },
      { title: 'Failures', rows: figures.errors.map((e) => ({ ...e })) },
    ],
    [
      `**Peers**: ${versions.rclone}, ${versions.s3fs}; fs.pipe-max-size ${versions.pipeMaxSize}`,
      ...notes,
      `**Load by workload** (1/5/15 min): ${loads.map((l) => `${l.at} ${l.load}`).join('; ')}`,
    ],
  );
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
  client.destroy();
} finally {
  await mounts.closeAll();
  rgw.stop();
  // Never walk into a mount still attached: leave the directory instead.
  removeHome(work);
}

/**
 * The epoch's files as a committed team dataset version, made the way users make one: a storage provider on
 * the same RGW (`gradient storageProviders create s3`), `datasets create`, `versions create`, `files put`,
 * `versions commit`. Returns the version and the config sections the daemon needs to find it.
 */
async function teamDataset(dir: string): Promise<{ id: string; version: string; config: Record<string, unknown> }> {
  const client = sdkClient(rgw);
  await client.send(new CreateBucketCommand({ Bucket: 'catalog' }));
  client.destroy();
  const home = path.join(work, 'catalog');
  mkdirSync(home);
  const config = path.join(home, 'config.yaml');
  const env = mounts.env(home);
  const gradient = async (...args: string[]) => {
    const r = await runCli(['--config', config, '--json', ...args], env);
    if (r.code !== 0) throw new Error(`gradient ${args.slice(0, 3).join(' ')}: ${r.stderr.trim()}`);
    try {
      return JSON.parse(r.stdout) as { id: string };
    } catch {
      return { id: '' }; // commands whose output we do not need
    }
  };
  const provider = await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', 'catalog', '--endpoint', rgw.endpoint, '--accessKey', rgw.accessKeyId, '--secretAccessKey', rgw.secretAccessKey);
  const ds = await gradient('datasets', 'create', '--name', 'epoch', '--storageProviderId', provider.id);
  const v = await gradient('datasets', 'versions', 'create', '--id', ds.id);
  const t = process.hrtime.bigint();
  await gradient('datasets', 'files', 'put', '--id', `${ds.id}:${v.id}`, '--source-path', dir);
  await gradient('datasets', 'versions', 'commit', '--id', `${ds.id}:${v.id}`);
  log(`team dataset ${ds.id}:${v.id}: files put + commit in ${secs(t).toFixed(1)} s`);
  const { teamId, storageProviders } = YAML.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  return { id: ds.id, version: v.id, config: { teamId, storageProviders } };
}
