// Our bucket mount against its peers and the limits, in one session, on one throwaway Ceph RGW on 127.0.0.1,
// the same bucket and the same objects (issue #7):
//   ours    BucketView through FuseSession (as bench/bucket.ts mounts it), our on-disk cache (src/cache)
//   rclone  `rclone mount --vfs-cache-mode full` with its own cache dir and size bound
//   s3fs    `s3fs -o use_cache=<dir>`
//   limit   what the bytes cost without a filesystem: direct SDK requests, or local files
// Workloads (cold = page cache dropped and a fresh mount with an empty cache dir):
//   seq     1 GiB sequential read cold; re-read right after; re-read again; re-read after drop_caches
//   small   10k × 4 KiB files (list the directory, read every file, 16 threads), cold and warm
//   find    `find -printf %s` (lstat of every entry) over 100k objects in 1000 directories, cold and warm
//   ls      `ls -l` of the 10k-entry directory, cold and warm
//   random  2000 random 4 KiB preads (seeded, 8 threads) in the 1 GiB object, cold and warm
//   write   1 GiB written with dd: until close() returns, and until the bucket holds it
//   copy    `cp -r` of 1k × 4 KiB local files into the mount: until cp returns, and until the bucket holds them
// All I/O on mounts runs in child processes: this process serves our mount and must never block on it.
//   node --import tsx bench/peers.ts [--quick] [--rounds 3] [--big-rounds 2] [--size-mib 1024] [--files 10000]
//     [--find-objects 100000] [--random 2000] [--copy 1000] [--tools ours,rclone,s3fs] [--only seq,small,...]
//     [--timeout-s 300]   (per command on a mount: s3fs's warm find over 100k objects spins for many minutes)
import { CreateBucketCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openCache } from '../src/cache/index.js';
import { DaemonMemory } from '../src/memory/index.js';
import { BucketView } from '../src/fs/bucket/bucket-view.js';
import { FuseSession } from '../src/fuse/session.js';
import { S3Store } from '../src/storage/s3/store.js';
import { startRgw } from '../test/helpers/rgw.js';
import { dropCaches, loadAvg, median, perRound, pool, printTable, sdkClient, sh, startRun, type Row } from './lib.js';

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
    tools: { type: 'string', default: 'ours,rclone,s3fs' },
    only: { type: 'string', default: 'seq,small,find,ls,random,write,copy' },
    'timeout-s': { type: 'string', default: '300' },
  },
});
const quick = values.quick;
const num = (v: string | undefined, full: number, small: number) => (v === undefined ? (quick ? small : full) : Number(v));
const rounds = num(values.rounds, 3, 3);
/** Rounds for the expensive workloads: 1 GiB reads and writes, find over 100k objects. */
const bigRounds = num(values['big-rounds'], 2, 1);
const MiB = 2 ** 20;
const size = num(values['size-mib'], 1024, 256) * MiB;
const nSmall = num(values.files, 10_000, 2_000);
const nFind = num(values['find-objects'], 100_000, 10_000);
const nRandom = num(values.random, 2_000, 500);
const nCopy = num(values.copy, 1_000, 200);
type Tool = 'ours' | 'rclone' | 's3fs';
type Who = Tool | 'limit';
const tools = values.tools.split(',') as Tool[];
const groups = new Set(values.only.split(','));
const PART = 16 * MiB; // S3Store's multipart part size and queue, also used for the direct upload
const QUEUE = 4;
const SMALL_THREADS = 16;
const RANDOM_THREADS = 8;
/** A command on a mount that takes longer fails its figure ("timed out") instead of holding up the run. */
const CMD_TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const sizeLabel = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / MiB} MiB`;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const bench = startRun('peers');
const t0Run = Date.now();
const log = (msg: string) => console.error(`[peers ${((Date.now() - t0Run) / 1000).toFixed(0).padStart(5)}s] ${msg}`);
const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- figures
interface Metric {
  label: string;
  unit: string;
  /** Throughputs: higher is better; times: lower is better (their ratio is inverted). */
  higherIsBetter: boolean;
  limit: string;
  samples: Partial<Record<Who, number[]>>;
  /** CPU seconds of the serving process (our whole process; rclone/s3fs) and of radosgw, per sample. */
  cpu: Partial<Record<Who, { server: number[]; rgw: number[] }>>;
  /** What RGW served per sample: requests of any kind, object GETs + HEADs (RGW counts both as get), MiB sent. */
  requests: Partial<Record<Who, { req: number[]; get: number[]; getMiB: number[] }>>;
}
const metrics = new Map<string, Metric>();
const errors: { metric: string; who: Who; round: string; error: string }[] = [];
const loads: { at: string; load: string }[] = [];
function metric(id: string, label: string, unit: string, higherIsBetter: boolean, limit: string): void {
  metrics.set(id, { label, unit, higherIsBetter, limit, samples: {}, cpu: {}, requests: {} });
}
interface Cost {
  server: number;
  rgw: number;
  req: number;
  get: number;
  getMiB: number;
}
function record(id: string, who: Who, value: number, cost?: Cost): void {
  const m = metrics.get(id)!;
  (m.samples[who] ??= []).push(value);
  if (cost) {
    const c = (m.cpu[who] ??= { server: [], rgw: [] });
    c.server.push(cost.server);
    c.rgw.push(cost.rgw);
    const q = (m.requests[who] ??= { req: [], get: [], getMiB: [] });
    q.req.push(cost.req);
    q.get.push(cost.get);
    q.getMiB.push(cost.getMiB);
  }
}
metric('seq-cold', `sequential read ${sizeLabel}, cold`, 'MiB/s', true, '8-way ranged SDK GETs (8 MiB)');
metric('seq-reread', `re-read right after (tool cache full)`, 'MiB/s', true, 'local file, page cache warm');
metric('seq-reread2', `re-read again`, 'MiB/s', true, 'local file, page cache warm');
metric('seq-dropped', `re-read after drop_caches (tool cache full)`, 'MiB/s', true, 'local file after drop_caches');
metric('small-cold', `${nSmall} × 4 KiB files: list + read, ${SMALL_THREADS} threads, cold`, 'files/s', true, `SDK LIST + GETs, ${SMALL_THREADS} in flight`);
metric('small-warm', `${nSmall} × 4 KiB files again`, 'files/s', true, 'local directory, page cache warm');
metric('find-cold', `find + stat, ${nFind} objects, cold`, 's', false, 'SDK flat LIST of the prefix (1000 keys/page)');
metric('find-warm', `find + stat again`, 's', false, 'local tree of the same shape, warm');
metric('ls-cold', `ls -l of a ${nSmall}-entry directory, cold`, 's', false, 'SDK delimited LIST of the prefix');
metric('ls-warm', `ls -l again`, 's', false, 'local directory, warm');
metric('random-cold', `${nRandom} random 4 KiB reads in ${sizeLabel}, ${RANDOM_THREADS} threads, cold`, 'ops/s', true, `4 KiB ranged SDK GETs, ${RANDOM_THREADS} in flight`);
metric('random-warm', `same reads again`, 'ops/s', true, 'local file, page cache warm');
metric('write-close', `write ${sizeLabel} (dd bs=1M): until close() returns`, 's', false, `SDK multipart upload (lib-storage, ${PART / MiB} MiB × ${QUEUE})`);
metric('write-durable', `write ${sizeLabel}: until the bucket holds it`, 's', false, `SDK multipart upload (lib-storage, ${PART / MiB} MiB × ${QUEUE})`);
metric('copy-close', `cp -r of ${nCopy} × 4 KiB files in: until cp returns`, 's', false, 'sequential SDK PUTs');
metric('copy-durable', `cp -r of ${nCopy} files: until the bucket holds them`, 's', false, 'sequential SDK PUTs');

/** Rotates the tool order each round so drift in the machine's load does not always hit the same tool. */
const order = (r: number): Tool[] => tools.map((_, i) => tools[(i + r) % tools.length]!);

// ---------------------------------------------------------------- the I/O child (python3: no JIT warm-up,
// threads that release the GIL around each syscall, timing taken inside the child so startup is not counted)
const IO_PY = String.raw`
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
mode = sys.argv[1]
t = time.perf_counter()
if mode == 'seq':
    buf = bytearray(1 << 20); n = 0
    with open(sys.argv[2], 'rb', buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k: break
            n += k
    out = {'bytes': n}
elif mode == 'small':
    d, threads = sys.argv[2], int(sys.argv[3])
    names = os.listdir(d)
    def one(name):
        with open(os.path.join(d, name), 'rb') as f: return len(f.read())
    with ThreadPoolExecutor(threads) as ex: n = sum(ex.map(one, names))
    out = {'files': len(names), 'bytes': n}
elif mode == 'random':
    offs = [int(x) for x in open(sys.argv[3]).read().split()]
    threads = int(sys.argv[4])
    t = time.perf_counter()
    fd = os.open(sys.argv[2], os.O_RDONLY)
    with ThreadPoolExecutor(threads) as ex: n = sum(ex.map(lambda o: len(os.pread(fd, 4096, o)), offs))
    os.close(fd)
    out = {'reads': len(offs), 'bytes': n}
out['secs'] = time.perf_counter() - t
print(json.dumps(out))
`;

// ---------------------------------------------------------------- session state (cleaned up in finally)
const rgw = await startRgw({ name: 'bench-peers', memstoreBytes: '12G' });
const work = mkdtempSync('/tmp/gd-bench-peers-');
const mountsDir = path.join(work, 'mnt');
const cachesDir = path.join(work, 'caches');
const localDir = path.join(work, 'local');
for (const d of [mountsDir, cachesDir, localDir]) mkdirSync(d);
const ioPy = path.join(work, 'io.py');
writeFileSync(ioPy, IO_PY);

interface Mounted {
  tool: Tool;
  mnt: string;
  /** CPU seconds used so far by whatever serves this mount. */
  cpu(): number;
  close(): Promise<void>;
}
const live = new Set<Mounted>();
const children = new Set<ChildProcess>();

/** Mountpoints currently listed in the mount table (reading /proc never touches a FUSE mount). */
const mountedAt = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);

/** utime + stime of a process, from /proc/<pid>/stat (clock ticks: 100 per second on Linux). */
function procCpu(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}
/** CPU seconds of this whole process (all threads: JS, the C reader threads, libuv's pool). */
function ourCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
const rgwPid = Number(readFileSync(path.join(rgw.dir, 'run/client.rgw.r.pid'), 'utf8'));
/** RGW's own request counters (admin socket, ~0.1 s): how many requests a tool needed, and how many bytes. */
async function rgwCounters(): Promise<{ req: number; get: number; getBytes: number }> {
  const dump = JSON.parse(await sh(`ceph --admin-daemon ${rgw.dir}/run/client.rgw.r.asok perf dump`)) as { rgw: { req: number; get: number; get_b: number } };
  return { req: dump.rgw.req, get: dump.rgw.get, getBytes: dump.rgw.get_b };
}

// Ctrl-C: detach every mount under the work dir, stop the peers and RGW (the finally below would not run).
process.once('SIGINT', () => {
  for (const c of children) c.kill('SIGKILL');
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(work));
  for (const p of mounted) spawnSync('umount', ['-l', p]);
  rgw.stop();
  process.exit(130);
});

const rows: Row[] = [];
try {
  log(`RGW at ${rgw.endpoint}; work dir ${work}; load ${loadAvg()}`);
  loads.push({ at: 'start', load: loadAvg() });
  const creds = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const client = sdkClient(rgw);
  const bucket = 'bench';
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new S3Store({ bucket, endpoint: rgw.endpoint, credentials: { kind: 'static', ...creds }, partSize: PART, queueSize: QUEUE });
  const port = new URL(rgw.endpoint).port;

  // ------------------------------------------------------------ the data, uploaded once
  // Local twins of what is in the bucket: the same bytes and shapes, for the local-file limits.
  const source = path.join(localDir, 'big.bin');
  await sh(`head -c ${size} /dev/urandom > ${source}`);
  const smallLocal = path.join(localDir, 'small');
  const treeLocal = path.join(localDir, 'tree');
  const copySrc = path.join(localDir, 'copy');
  for (const d of [smallLocal, treeLocal, copySrc]) mkdirSync(d);
  const smallName = (i: number) => `f${String(i).padStart(6, '0')}`;
  const smallBytes = Array.from({ length: nSmall }, () => randomBytes(4096));
  smallBytes.forEach((b, i) => writeFileSync(path.join(smallLocal, smallName(i)), b));
  for (let i = 0; i < nCopy; i++) writeFileSync(path.join(copySrc, smallName(i)), randomBytes(4096));
  // find's tree: 100 objects per leaf directory, 100 leaves per top directory (a dataset split into shards).
  const treeKey = (i: number) => {
    const leaf = Math.floor(i / 100);
    return `a${Math.floor(leaf / 100)}/b${leaf % 100}/f${i}`;
  };
  const leaves = Math.ceil(nFind / 100);
  const findEntries = nFind + leaves + Math.ceil(leaves / 100) + 1; // files + leaves + tops + the root
  for (let i = 0; i < nFind; i++) {
    const f = path.join(treeLocal, treeKey(i));
    if (i % 100 === 0) mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, `${i}\n`);
  }
  // Seeded 4 KiB-aligned offsets (the same list for every tool and the limit).
  let seed = 42;
  const rand = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const offsets = Array.from({ length: nRandom }, () => Math.floor(rand() * (size / 4096)) * 4096);
  const offsetsFile = path.join(work, 'offsets.txt');
  writeFileSync(offsetsFile, offsets.join('\n'));

  log(`uploading ${sizeLabel}, ${nSmall} small files, ${nFind} tree objects (64 in flight)…`);
  const t0 = process.hrtime.bigint();
  await new Upload({ client, params: { Bucket: bucket, Key: 'big/big.bin', Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
  await pool(64, nSmall, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `small/${smallName(i)}`, Body: smallBytes[i] }));
  });
  await pool(64, nFind, async (i) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `tree/${treeKey(i)}`, Body: `${i}\n` }));
  });
  log(`uploaded in ${secs(t0).toFixed(0)} s`);

  // ------------------------------------------------------------ the three mounts
  const freshDirs = (tool: Tool) => ({ mnt: mkdtempSync(path.join(mountsDir, `${tool}-`)), cache: mkdtempSync(path.join(cachesDir, `${tool}-`)) });
  const cacheBound = 4 * size + 1024 * MiB; // ours and rclone get the same bound; s3fs has none (only free space)
  const memory = new DaemonMemory(); // one per process, as in the daemon: mounts reuse warm buffers

  async function mountOurs(): Promise<Mounted> {
    const { mnt, cache: dir } = freshDirs('ours');
    const cache = await openCache({ dir, maxBytes: cacheBound, minFreeBytes: 0 }, memory);
    const view = new BucketView({ store, cache, metadataTtlMs: 5000, write: { stagingDir: cache.stagingDir } });
    const session = await FuseSession.mount(view, mnt, {});
    const m: Mounted = {
      tool: 'ours',
      mnt,
      cpu: ourCpu,
      close: async () => {
        live.delete(m);
        await session.unmount();
        view.close();
        await cache.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    live.add(m);
    return m;
  }

  const { AWS_CA_BUNDLE: _caBundle, ...envWithoutCa } = process.env;
  const rcloneEnv = {
    // rclone 1.60's AWS SDK refuses to start when AWS_CA_BUNDLE is set ("unsupported transport"); we use http.
    ...envWithoutCa,
    // An S3 remote from the environment only: no config file is read or written.
    RCLONE_CONFIG: path.join(work, 'rclone.conf'),
    RCLONE_CONFIG_PEER_TYPE: 's3',
    RCLONE_CONFIG_PEER_PROVIDER: 'Ceph',
    RCLONE_CONFIG_PEER_ENDPOINT: rgw.endpoint,
    RCLONE_CONFIG_PEER_ACCESS_KEY_ID: rgw.accessKeyId,
    RCLONE_CONFIG_PEER_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    RCLONE_CONFIG_PEER_FORCE_PATH_STYLE: 'true',
  };
  // --use-server-modtime: mtime = the object's LastModified, as ours shows; without it rclone HEADs every
  // object for its mtime metadata on stat. Everything else is rclone's default.
  const rcloneArgs = (mnt: string, cache: string) => [
    'mount', `peer:${bucket}`, mnt, '--vfs-cache-mode', 'full', '--cache-dir', cache,
    '--vfs-cache-max-size', String(cacheBound), '--use-server-modtime', '--log-level', 'NOTICE',
  ];
  const passwd = path.join(work, 's3fs.passwd');
  writeFileSync(passwd, `${rgw.accessKeyId}:${rgw.secretAccessKey}\n`, { mode: 0o600 });
  const s3fsArgs = (mnt: string, cache: string) => [
    bucket, mnt, '-f', '-o', `url=http://127.0.0.1:${port}`, '-o', 'use_path_request_style', '-o', `passwd_file=${passwd}`, '-o', `use_cache=${cache}`,
  ];

  async function mountPeer(tool: 'rclone' | 's3fs'): Promise<Mounted> {
    const { mnt, cache } = freshDirs(tool);
    const out = openSync(path.join(work, `${tool}.log`), 'a');
    const child = spawn(tool, tool === 'rclone' ? rcloneArgs(mnt, cache) : s3fsArgs(mnt, cache), { env: tool === 'rclone' ? rcloneEnv : process.env, stdio: ['ignore', out, out] });
    closeSync(out);
    children.add(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const m: Mounted = {
      tool,
      mnt,
      cpu: () => procCpu(child.pid),
      close: async () => {
        live.delete(m);
        await sh(`fusermount3 -u ${mnt} 2>/dev/null || umount -l ${mnt}`).catch(() => undefined);
        // Both exit once unmounted; a stuck one is stopped by its pid (never by name).
        if (!(await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]))) {
          child.kill('SIGTERM');
          if (!(await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]))) child.kill('SIGKILL');
        }
        children.delete(child);
        rmSync(cache, { recursive: true, force: true });
      },
    };
    live.add(m);
    const deadline = Date.now() + 30_000;
    while (!mountedAt(mnt)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await m.close();
        const tail = readFileSync(path.join(work, `${tool}.log`), 'utf8').trim().split('\n').slice(-3).join(' | ');
        throw new Error(`${tool} did not mount: ${tail}`);
      }
      await sleep(50);
    }
    return m;
  }

  const mount = (tool: Tool) => (tool === 'ours' ? mountOurs() : mountPeer(tool));

  /** Runs one measurement: records it with the CPU it cost; a failure is recorded and the run goes on. */
  async function measure(id: string, who: Who, r: number, m: Mounted | undefined, fn: () => Promise<number>): Promise<void> {
    // A limit's "server" is this process: the SDK requests (local-file limits run in a child and show ~0).
    const cpu = m?.cpu ?? ourCpu;
    const q0 = await rgwCounters();
    const c0 = cpu();
    const g0 = procCpu(rgwPid);
    try {
      const v = await fn();
      const server = cpu() - c0;
      const rgwCpu = procCpu(rgwPid) - g0;
      const q1 = await rgwCounters();
      record(id, who, v, { server, rgw: rgwCpu, req: q1.req - q0.req, get: q1.get - q0.get, getMiB: (q1.getBytes - q0.getBytes) / MiB });
      log(`${id} ${who} r${r}: ${v.toFixed(v < 10 ? 3 : 1)} ${metrics.get(id)!.unit}`);
    } catch (err) {
      const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      errors.push({ metric: id, who, round: `r${r}`, error });
      log(`${id} ${who} r${r} FAILED: ${error}`);
    }
  }

  /** Runs io.py in a child process and returns its JSON (bytes/files checked by the caller). */
  const io = async (...args: (string | number)[]) =>
    JSON.parse(await sh(`python3 ${ioPy} ${args.join(' ')}`, { timeoutMs: CMD_TIMEOUT_MS })) as { secs: number; bytes: number; files?: number; reads?: number };
  const check = (what: string, got: number, want: number) => {
    if (got !== want) throw new Error(`${what}: got ${got}, expected ${want}`);
  };
  const seqRead = async (file: string) => {
    const o = await io('seq', file);
    check('bytes read', o.bytes, size);
    return size / MiB / o.secs;
  };
  const smallRead = async (dir: string) => {
    const o = await io('small', dir, SMALL_THREADS);
    check('files read', o.files!, nSmall);
    check('bytes read', o.bytes, nSmall * 4096);
    return nSmall / o.secs;
  };
  const randomRead = async (file: string) => {
    const o = await io('random', file, offsetsFile, RANDOM_THREADS);
    check('bytes read', o.bytes, nRandom * 4096);
    return nRandom / o.secs;
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
  const listAll = async (prefix: string, delimiter?: string) => {
    let n = 0;
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
      n += out.KeyCount ?? 0;
      token = out.NextContinuationToken;
    } while (token);
    return n;
  };
  const getRange = async (key: string, start: number, end: number) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
    return (await out.Body!.transformToByteArray()).length;
  };
  const deletePrefix = async (prefix: string) => {
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      const keys = (out.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      token = out.NextContinuationToken;
    } while (token);
  };
  /** Polls the bucket until `done` holds (a write-back peer uploads after close returns). Seconds since t. */
  const until = async (t: bigint, done: () => Promise<boolean>) => {
    const deadline = Date.now() + CMD_TIMEOUT_MS;
    while (!(await done().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('the bucket never got the data');
      await sleep(50);
    }
    return secs(t);
  };
  const objectSize = async (key: string) => (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength;
  const copiedCount = async (prefix: string) => {
    let n = 0;
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      n += (out.Contents ?? []).filter((o) => !o.Key!.endsWith('/') && o.Size === 4096).length;
      token = out.NextContinuationToken;
    } while (token);
    return n;
  };

  /** A fresh mount of `tool`, closed whatever happens; a mount failure is recorded against `ids`. */
  /** `<workload>-cold` then `-warm` on each tool's fresh mount, the page cache dropped before the cold run. */
  async function coldThenWarm(workload: string, r: number, run: (m: Mounted) => Promise<number>): Promise<void> {
    for (const tool of order(r)) {
      await withMount(tool, r, [`${workload}-cold`, `${workload}-warm`], async (m) => {
        await dropCaches();
        await measure(`${workload}-cold`, tool, r, m, () => run(m));
        await measure(`${workload}-warm`, tool, r, m, () => run(m));
      });
    }
  }

  /**
   * A listing workload: the limit lists the keys with the SDK (cold) and runs the command on the local copy
   * (warm, after a first pass); each tool runs it on `sub` of its mount, cold then warm.
   */
  async function listing(
    workload: 'find' | 'ls',
    roundCount: number,
    sdkList: () => Promise<number>,
    expected: number,
    run: (dir: string) => Promise<number>,
    local: string,
    sub: string,
  ): Promise<void> {
    for (let r = 0; r < roundCount; r++) {
      await measure(`${workload}-cold`, 'limit', r, undefined, async () => {
        const t = process.hrtime.bigint();
        check('keys listed', await sdkList(), expected);
        return secs(t);
      });
      await run(local);
      await measure(`${workload}-warm`, 'limit', r, undefined, () => run(local));
      await coldThenWarm(workload, r, (m) => run(`${m.mnt}/${sub}`));
    }
    loads.push({ at: workload, load: loadAvg() });
  }

  async function withMount(tool: Tool, r: number, ids: string[], body: (m: Mounted) => Promise<void>): Promise<void> {
    let m: Mounted;
    try {
      m = await mount(tool);
    } catch (err) {
      for (const id of ids) errors.push({ metric: id, who: tool, round: `r${r}`, error: `mount: ${String(err)}` });
      log(`${tool} mount FAILED: ${String(err)}`);
      return;
    }
    try {
      await body(m);
    } finally {
      await m.close();
    }
  }

  // ------------------------------------------------------------ seq
  if (groups.has('seq')) {
    for (let r = 0; r < bigRounds; r++) {
      const part = 8 * MiB;
      await measure('seq-cold', 'limit', r, undefined, async () => {
        const t = process.hrtime.bigint();
        let got = 0;
        await pool(8, Math.ceil(size / part), async (i) => {
          const n = await getRange('big/big.bin', i * part, Math.min(size, (i + 1) * part));
          got += n; // not `got += await …`: that reads `got` before the await and loses updates
        });
        check('bytes read', got, size);
        return size / MiB / secs(t);
      });
      await sh(`cat ${source} > /dev/null`);
      await measure('seq-reread', 'limit', r, undefined, () => seqRead(source));
      await measure('seq-reread2', 'limit', r, undefined, () => seqRead(source));
      await dropCaches();
      await measure('seq-dropped', 'limit', r, undefined, () => seqRead(source));
      for (const tool of order(r)) {
        await withMount(tool, r, ['seq-cold', 'seq-reread', 'seq-reread2', 'seq-dropped'], async (m) => {
          const f = `${m.mnt}/big/big.bin`;
          await dropCaches();
          await measure('seq-cold', tool, r, m, () => seqRead(f));
          await measure('seq-reread', tool, r, m, () => seqRead(f));
          await measure('seq-reread2', tool, r, m, () => seqRead(f));
          await dropCaches();
          await measure('seq-dropped', tool, r, m, () => seqRead(f));
        });
      }
    }
    loads.push({ at: 'seq', load: loadAvg() });
  }

  // ------------------------------------------------------------ small
  if (groups.has('small')) {
    for (let r = 0; r < rounds; r++) {
      await measure('small-cold', 'limit', r, undefined, async () => {
        const t = process.hrtime.bigint();
        const keys: string[] = [];
        let token: string | undefined;
        do {
          const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'small/', ContinuationToken: token }));
          keys.push(...(out.Contents ?? []).map((o) => o.Key!));
          token = out.NextContinuationToken;
        } while (token);
        let got = 0;
        await pool(SMALL_THREADS, keys.length, async (i) => {
          const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keys[i]! }));
          const n = (await out.Body!.transformToByteArray()).length;
          got += n;
        });
        check('bytes read', got, nSmall * 4096);
        return nSmall / secs(t);
      });
      await smallRead(smallLocal); // warm the page cache
      await measure('small-warm', 'limit', r, undefined, () => smallRead(smallLocal));
      await coldThenWarm('small', r, (m) => smallRead(`${m.mnt}/small`));
    }
    loads.push({ at: 'small', load: loadAvg() });
  }

  // ------------------------------------------------------------ find, ls
  if (groups.has('find')) await listing('find', bigRounds, () => listAll('tree/'), nFind, find, treeLocal, 'tree');
  if (groups.has('ls')) await listing('ls', rounds, () => listAll('small/', '/'), nSmall, ls, smallLocal, 'small');

  // ------------------------------------------------------------ random
  if (groups.has('random')) {
    for (let r = 0; r < rounds; r++) {
      await measure('random-cold', 'limit', r, undefined, async () => {
        const t = process.hrtime.bigint();
        let got = 0;
        await pool(RANDOM_THREADS, nRandom, async (i) => {
          const n = await getRange('big/big.bin', offsets[i]!, offsets[i]! + 4096);
          got += n;
        });
        check('bytes read', got, nRandom * 4096);
        return nRandom / secs(t);
      });
      await sh(`cat ${source} > /dev/null`);
      await measure('random-warm', 'limit', r, undefined, () => randomRead(source));
      await coldThenWarm('random', r, (m) => randomRead(`${m.mnt}/big/big.bin`));
    }
    loads.push({ at: 'random', load: loadAvg() });
  }

  // ------------------------------------------------------------ write
  if (groups.has('write')) {
    for (let r = 0; r < bigRounds; r++) {
      await sh(`cat ${source} > /dev/null`); // every writer reads the source from the page cache
      let upload = 0;
      await measure('write-close', 'limit', r, undefined, async () => {
        const t = process.hrtime.bigint();
        await new Upload({ client, params: { Bucket: bucket, Key: `w-limit-${r}.bin`, Body: createReadStream(source, { highWaterMark: MiB }) }, partSize: PART, queueSize: QUEUE }).done();
        upload = secs(t);
        check('bytes uploaded', (await objectSize(`w-limit-${r}.bin`)) ?? -1, size);
        return upload;
      });
      if (upload) record('write-durable', 'limit', upload);
      await deletePrefix(`w-limit-${r}.bin`);
      for (const tool of order(r)) {
        await withMount(tool, r, ['write-close', 'write-durable'], async (m) => {
          const key = `w-${tool}-${r}.bin`;
          const t = process.hrtime.bigint();
          let closed = 0;
          await measure('write-close', tool, r, m, async () => {
            await sh(`dd if=${source} of=${m.mnt}/${key} bs=1M status=none`, { timeoutMs: CMD_TIMEOUT_MS });
            return (closed = secs(t));
          });
          if (closed) await measure('write-durable', tool, r, m, () => until(t, async () => (await objectSize(key)) === size));
        });
        await deletePrefix(`w-${tool}-${r}.bin`);
      }
    }
    loads.push({ at: 'write', load: loadAvg() });
  }

  // ------------------------------------------------------------ copy
  if (groups.has('copy')) {
    const names = readdirSync(copySrc);
    for (let r = 0; r < rounds; r++) {
      await sh(`cat ${copySrc}/* > /dev/null`);
      let puts = 0;
      await measure('copy-close', 'limit', r, undefined, async () => {
        // What cp does, file after file; each PUT returns once the bucket holds the file.
        const t = process.hrtime.bigint();
        for (const name of names) {
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: `copy-limit-${r}/${name}`, Body: readFileSync(path.join(copySrc, name)) }));
        }
        return (puts = secs(t));
      });
      if (puts) record('copy-durable', 'limit', puts);
      await deletePrefix(`copy-limit-${r}/`);
      for (const tool of order(r)) {
        const dir = `copy-${tool}-${r}`;
        await withMount(tool, r, ['copy-close', 'copy-durable'], async (m) => {
          const t = process.hrtime.bigint();
          let closed = 0;
          await measure('copy-close', tool, r, m, async () => {
            await sh(`cp -r ${copySrc} ${m.mnt}/${dir}`, { timeoutMs: CMD_TIMEOUT_MS });
            return (closed = secs(t));
          });
          if (closed) await measure('copy-durable', tool, r, m, () => until(t, async () => (await copiedCount(`${dir}/`)) === nCopy));
        });
        await deletePrefix(`${dir}/`);
      }
    }
    loads.push({ at: 'copy', load: loadAvg() });
  }

  // ------------------------------------------------------------ report
  const med = (xs: number[] | undefined) => (xs && xs.length ? median(xs) : NaN);
  /** > 1: ours is better (throughput ratio; for times, their time over ours). */
  const ratio = (m: Metric, other: Who) => {
    const a = med(m.samples.ours);
    const b = med(m.samples[other]);
    const x = m.higherIsBetter ? a / b : b / a;
    return Number.isFinite(x) ? x : '—';
  };
  const cell = (xs: number[] | undefined) => (xs && xs.length ? median(xs) : '—');
  const cpuRows: Row[] = [];
  const reqRows: Row[] = [];
  for (const [id, m] of metrics) {
    if (!Object.keys(m.samples).length) continue;
    const row: Row = { workload: m.label, unit: m.unit };
    for (const t of tools) row[t] = cell(m.samples[t]);
    row.limit = cell(m.samples.limit);
    for (const t of tools) if (t !== 'ours') row[`ours vs ${t}`] = ratio(m, t);
    row['ours vs limit'] = ratio(m, 'limit');
    row['ours per round'] = perRound(m.samples.ours);
    rows.push(row);
    const c: Row = { workload: id };
    for (const w of [...tools, 'limit' as const]) c[w] = m.cpu[w] ? `${median(m.cpu[w].server).toFixed(1)} / ${median(m.cpu[w].rgw).toFixed(1)}` : '—';
    cpuRows.push(c);
    const q: Row = { workload: id };
    for (const w of [...tools, 'limit' as const]) {
      const x = m.requests[w];
      q[w] = x ? `${median(x.req).toFixed(0)} / ${median(x.get).toFixed(0)} / ${median(x.getMiB).toFixed(0)}` : '—';
    }
    reqRows.push(q);
  }
  loads.push({ at: 'end', load: loadAvg() });
  const title = `Peers (RGW on 127.0.0.1; medians of ${rounds} rounds, ${bigRounds} for 1 GiB reads/writes and find; ratios > 1 = ours better: throughput ratio, or their time ÷ our time)`;
  printTable(title, rows);
  printTable('Limits', [...metrics.values()].filter((m) => m.samples.limit).map((m) => ({ workload: m.label, limit: m.limit })));
  printTable('CPU seconds per run: serving process / radosgw (ours and the SDK limits = this process)', cpuRows);
  printTable('Requests to RGW per run: all / object GETs+HEADs / MiB sent (the *-durable rows include the polling of this benchmark)', reqRows);
  if (errors.length) printTable('Failures', errors.map((e) => ({ ...e })));
  console.log(`\nload average (1/5/15 min): ${loads.map((l) => `${l.at} ${l.load}`).join('; ')}`);
  const versions = {
    rclone: (await sh('rclone version | head -1').catch(() => '')).trim(),
    s3fs: (await sh('s3fs --version | head -1').catch(() => '')).trim(),
    kernel: (await sh('uname -r')).trim(),
    pipeMaxSize: readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim(),
  };
  const saved = bench.save({
    quick,
    rounds,
    bigRounds,
    sizeBytes: size,
    smallFiles: nSmall,
    findObjects: nFind,
    randomReads: nRandom,
    copyFiles: nCopy,
    tools,
    versions,
    flags: {
      ours: `BucketView metadataTtlMs 5000, cache maxBytes ${cacheBound}, FuseSession defaults`,
      rclone: rcloneArgs('<mnt>', '<cache>').join(' '),
      s3fs: s3fsArgs('<mnt>', '<cache>').join(' '),
    },
    loads,
    metrics: Object.fromEntries(
      [...metrics].map(([id, m]) => [
        id,
        { ...m, medians: Object.fromEntries(Object.entries(m.samples).map(([w, xs]) => [w, median(xs)])), ratios: Object.fromEntries([...tools.filter((t) => t !== 'ours'), 'limit' as const].map((w) => [w, ratio(m, w)])) },
      ]),
    ),
    errors,
    table: rows,
  }, [
    { title, rows },
    { title: 'Failures', rows: errors.map((e) => ({ ...e })) },
  ], [
    `**Peers**: ${versions.rclone}, ${versions.s3fs}; fs.pipe-max-size ${versions.pipeMaxSize}`,
    `**Load by workload** (1/5/15 min): ${loads.map((l) => `${l.at} ${l.load}`).join('; ')}`,
  ]);
  console.log(`results: ${saved.full}\nsummary: ${saved.summary}`);
  client.destroy();
  store.close();
} finally {
  for (const m of [...live]) await m.close().catch((err: unknown) => log(`unmount ${m.mnt}: ${String(err)}`));
  for (const c of children) c.kill('SIGKILL');
  rgw.stop();
  // Never walk into a mount this process serves or one still attached: leave the directory instead.
  const stuck = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(work));
  if (stuck.length) log(`still mounted, left in place: ${stuck.join(' ')}`);
  else rmSync(work, { recursive: true, force: true });
}
