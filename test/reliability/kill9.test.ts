// kill -9 of the real `gradient mount` process (a) while child processes read a team dataset and a bucket,
// (b) while child processes write to a bucket (some closes acknowledged, some in flight, some failed, some
// files never closed), (c) right after settings.yaml switched a version. Each time the daemon is restarted
// on the same mountpoint and cache: the dead mount must be replaced, acknowledged writes must be in the
// bucket, writes whose close() was journaled must arrive, never-closed ones must not, and every byte read
// before and after must be the source's (wrong bytes = 0). GRADIENT_RELIABILITY_LONG=1 runs more rounds.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { emptyAndDeleteBucket } from '../helpers/buckets.js';
import { runCli } from '../helpers/cli.js';
import { daemonHome, mountCount } from '../helpers/daemon-process.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { Fsio, settle, type FsioLine } from '../helpers/fsio.js';
import { shStatus } from '../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../helpers/s3.js';
import { writeTree } from '../helpers/tree.js';
import { until } from '../helpers/until.js';

const LONG = process.env.GRADIENT_RELIABILITY_LONG === '1';
const MiB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('reliability: kill -9 of the daemon', () => {
  const s = s3Server();
  const client = s3Client();
  const { work, home, mnt, settings, env, daemon, writeSecret } = daemonHome('gd-kill9-');
  let catalogBucket = '';
  let dataBucket = '';
  let proxy: FaultProxy;
  let ds = '';
  /** path in the version → sha256, per version; bucket key (under work/) → bytes. */
  const versions = new Map<string, Map<string, string>>();
  const bucketFiles = new Map<string, Buffer>();
  let v1 = '';
  let v2 = '';
  const children: Fsio[] = [];
  const totals = { kills: 0, reads: 0, readErrors: 0, bytesVerified: 0, wrongBytes: 0, acknowledged: 0, retried: 0, dropped: 0 };

  const datasetEntry = (version: string) => `team:\n  type: dataset\n  id: ${ds}\n  version: ${version}\n`;
  const bucketEntry = () =>
    `bkt:\n  type: s3\n  url: s3://${dataBucket}/work\n  endpoint: ${proxy.endpoint}\n  accessKeyId: ${s.accessKeyId}\n  secretAccessKey: secret:rgw-key\n`;
  /** An editor's safe save: a new file renamed over the old one. */
  const saveSettings = (version: string) => {
    const tmp = `${settings}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, datasetEntry(version) + bucketEntry());
    renameSync(tmp, settings);
  };

  async function gradient(...args: string[]): Promise<string> {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`gradient ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  function spawnFsio(args: string[], opts: { stdin?: boolean } = {}): Fsio {
    const c = new Fsio(args, opts);
    children.push(c);
    return c;
  }

  /** Checks every successful read against the hashes a path may have; returns bytes that were wrong. */
  function verifyReads(lines: FsioLine[], allowed: (p: string) => string[]): number {
    let wrong = 0;
    for (const l of lines) {
      if (l.kind === 'err') totals.readErrors++;
      if (l.kind !== 'ok') continue;
      totals.reads++;
      if (allowed(l.path).includes(l.sha256!)) totals.bytesVerified += l.bytes!;
      else wrong += l.bytes!;
    }
    totals.wrongBytes += wrong;
    return wrong;
  }

  /** Paths (on the mount) and their one right hash, for a version of the team dataset plus the bucket's source files. */
  function expected(version: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [p, h] of versions.get(version)!) out.set(path.join(mnt, 'team', p), h);
    for (const [k, b] of bucketFiles) if (k.startsWith('src/')) out.set(path.join(mnt, 'bkt', k), sha(b));
    return out;
  }

  function listFile(paths: string[], name: string): string {
    const f = path.join(home, `${name}-${randomBytes(4).toString('hex')}.list`);
    writeFileSync(f, paths.join('\n') + '\n');
    return f;
  }

  const shuffled = <T>(xs: T[]): T[] => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = randomInt(0, i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };

  /** Kills the daemon and checks it left a dead mount behind (what the restart must clean up). */
  async function kill(): Promise<void> {
    await daemon.kill9();
    totals.kills++;
    expect((await shStatus(`ls ${mnt}`)).stderr).toMatch(/Transport endpoint is not connected|Software caused connection abort/);
  }

  /** Restarts on the same mountpoint and cache: exactly one live mount again. */
  async function restart(): Promise<void> {
    await daemon.start();
    expect(mountCount(mnt)).toBe(1);
  }

  /** Reads every path once, in one child, and requires each to be readable and right. */
  async function readAllAndVerify(want: Map<string, string>): Promise<void> {
    const r = spawnFsio(['read', '--list', listFile([...want.keys()], 'all')]);
    await r.exited;
    const errors = r.lines.filter((l) => l.kind === 'err');
    expect(errors, JSON.stringify(errors.slice(0, 5))).toEqual([]);
    expect(r.lines.filter((l) => l.kind === 'ok').length).toBe(want.size);
    expect(verifyReads(r.lines, (p) => [want.get(p)!])).toBe(0);
  }

  beforeAll(async () => {
    work.create();
    catalogBucket = await freshBucket('kill9-cat');
    dataBucket = await freshBucket('kill9-data');
    proxy = await startFaultProxy(s.endpoint);
    writeSecret('rgw-key', s.secretAccessKey);

    // Team dataset: two versions with the same paths; half the files change between them, so a byte of
    // the wrong version shows up as a wrong hash. Small files and multi-MiB ones (fetched in blocks).
    const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', catalogBucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
    ds = (await gradient('datasets', 'create', '--name', 'kill9', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
    const files1: Record<string, Buffer> = { 'only-v1.txt': Buffer.from('v1 only\n') };
    const files2: Record<string, Buffer> = { 'only-v2.txt': Buffer.from('v2 only\n') };
    for (let i = 0; i < 24; i++) {
      const a = randomBytes(randomInt(1, 300 << 10));
      files1[`small/s${i}.bin`] = a;
      files2[`small/s${i}.bin`] = i % 2 === 0 ? a : randomBytes(a.length);
    }
    for (let i = 0; i < 3; i++) {
      const a = randomBytes(12 * MiB + randomInt(0, MiB));
      files1[`big/b${i}.bin`] = a;
      files2[`big/b${i}.bin`] = i === 0 ? a : randomBytes(a.length);
    }
    const put = async (files: Record<string, Buffer>) => {
      const v = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
      await gradient('datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', await writeTree(path.join(home, `src-${v}`), files));
      await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
      versions.set(v, new Map(Object.entries(files).map(([p, b]) => [p, sha(b)])));
      return v;
    };
    v1 = await put(files1);
    v2 = await put(files2);

    // Bucket: small objects and two multipart-sized ones under work/src/.
    for (let i = 0; i < 16; i++) bucketFiles.set(`src/o${i}.bin`, randomBytes(randomInt(1, 400 << 10)));
    for (let i = 0; i < 2; i++) bucketFiles.set(`src/big${i}.bin`, randomBytes(16 * MiB + randomInt(0, MiB)));
    for (const [k, b] of bucketFiles) await client.send(new PutObjectCommand({ Bucket: dataBucket, Key: `work/${k}`, Body: b }));
    saveSettings(v1);
  }, 180_000);

  afterEach(async () => {
    for (const c of children.splice(0)) c.release();
    await settle(children.splice(0), 1000);
    proxy.plan = () => 'pass';
    await daemon.cleanup();
  });

  afterAll(async () => {
    await daemon.cleanup();
    await proxy?.close();
    await emptyAndDeleteBucket(catalogBucket).catch(() => undefined);
    await emptyAndDeleteBucket(dataBucket).catch(() => undefined);
    client.destroy();
    // Only figures: the log may be long. It never holds the secret (checked below).
    console.log(`kill9: ${JSON.stringify(totals)}`);
    work.remove();
  });

  it('during reads of a team dataset and a bucket: the mount comes back and every byte read, before and after, is right', async () => {
    const rounds = LONG ? 10 : 3;
    const want = expected(v1);
    const paths = [...want.keys()];
    await daemon.start(); // a cold cache: the first kill lands in fills
    for (let round = 0; round < rounds; round++) {
      const readers = Array.from({ length: 6 }, (_, i) => spawnFsio(['read', '--list', listFile(shuffled(paths), `r${i}`), '--loops', '1000', '--stop-on-dead']));
      // Let the readers get going (a few files each), then kill at a random moment inside the next fills.
      const goal = 4 + round * 6;
      await Promise.all(readers.map((r) => r.waitFor(`${goal} reads`, (ls) => ls.filter((l) => l.kind === 'ok').length >= goal)));
      await new Promise((r) => setTimeout(r, randomInt(0, 120)));
      await kill();
      await settle(readers);
      for (const r of readers) expect(verifyReads(r.lines, (p) => [want.get(p)!]), r.errors).toBe(0);
      await restart();
    }
    // After the last restart: everything readable and right, twice (the second pass comes from the cache).
    await readAllAndVerify(want);
    await readAllAndVerify(want);
    const st = await daemon.status();
    expect(st.mounts.filter((m) => m.state !== 'ok')).toEqual([]);
    expect(st.mounts.find((m) => m.name === 'team')?.resolved).toBe(`${ds}:${v1}`);
  }, 240_000);

  it('during writes to a bucket: acknowledged writes are in the bucket, journaled closes are retried and arrive, never-closed files are dropped', async () => {
    const rounds = LONG ? 4 : 1;
    await daemon.start();
    for (let round = 0; round < rounds; round++) {
      const dir = `w${round}`; // a directory per round, so each round's files are its own
      const src = path.join(home, `src-${dir}`);
      mkdirSync(src, { recursive: true });
      const make = (name: string, size: number) => {
        const b = randomBytes(size);
        writeFileSync(path.join(src, name), b);
        bucketFiles.set(`${dir}/${name}`, b);
        return name;
      };
      // ack: closed while the bucket answers. hang: the bucket never answers their upload (close() still
      // waiting at the kill). fail: the bucket answers 500 (close() fails with EIO, retried in the background).
      // held: written half-way, never closed.
      const ack = [...Array.from({ length: 6 }, (_, i) => make(`ack-${i}`, randomInt(1, 500 << 10))), make('ack-big', 20 * MiB + 7)];
      const hang = [make('hang-0', 3000), make('hang-1', 300 << 10), make('hang-big', 20 * MiB + 11)];
      const fail = [make('fail-0', 5000), make('fail-1', 200 << 10)];
      const held = [make('held-0', 100 << 10), make('held-big', 20 * MiB)];
      const upload = (m: string) => m === 'PUT' || m === 'POST';
      proxy.plan = (method, url) => (upload(method) && url.includes(`/${dir}/hang-`) ? 'hang' : upload(method) && url.includes(`/${dir}/fail-`) ? 'error500' : 'pass');
      const dst = (n: string) => path.join(mnt, 'bkt', dir, n);
      await shStatus(`mkdir -p ${path.join(mnt, 'bkt', dir)}`);

      const copy = (n: string, hold?: number) =>
        spawnFsio(['copy', path.join(src, n), dst(n), ...(hold !== undefined ? ['--hold-at', String(hold)] : [])], { stdin: hold !== undefined });
      const acked = ack.map((n) => copy(n));
      await settle(acked);
      expect(acked.map((c) => c.lines[0]?.kind)).toEqual(ack.map(() => 'ok'));
      const failed = fail.map((n) => copy(n));
      await settle(failed);
      expect(failed.map((c) => c.lines[0]?.errno)).toEqual(fail.map(() => 'EIO'));
      const holders = held.map((n) => copy(n, Math.floor(bucketFiles.get(`${dir}/${n}`)!.length / 2)));
      await Promise.all(holders.map((c) => c.waitFor('holding', (ls) => ls.some((l) => l.kind === 'holding'))));
      const hanging = hang.map((n) => copy(n));
      await until('every hang upload to reach the bucket side', async () => proxy.requests, (rq) => hang.every((n) => rq.some((r) => /^(PUT|POST) /.test(r) && r.includes(`/${dir}/${n}`))));
      // A request alone does not mean close() was called: a large file sends parts while it is still being
      // written. close() is on record once its journal is (fail files keep theirs until retried).
      const journals = () => readdirSync(path.join(home, 'cache', 'staging')).filter((f) => f.endsWith('.json'));
      await until('every hang close() to be journaled', async () => journals(), (j) => j.length >= hang.length + fail.length);

      await kill();
      await settle(hanging);
      for (const c of holders) c.release();
      await settle(holders);
      expect(hanging.map((c) => c.lines[0]?.kind)).toEqual(hang.map(() => 'err')); // close() never said ok
      const inBucket = async (n: string) =>
        client.send(new HeadObjectCommand({ Bucket: dataBucket, Key: `work/${dir}/${n}` })).then(() => true, () => false);
      for (const n of ack) expect(await inBucket(n), n).toBe(true);
      for (const n of [...hang, ...fail, ...held]) expect(await inBucket(n), n).toBe(false);

      proxy.plan = () => 'pass';
      await restart();
      // Journaled closes (in flight or failed) are uploaded again by the new daemon without anyone asking.
      const get = async (n: string) =>
        Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: dataBucket, Key: `work/${dir}/${n}` }))).Body!.transformToByteArray());
      for (const n of [...hang, ...fail]) {
        await until(`${n} in the bucket`, () => inBucket(n), (x) => x);
        expect(sha(await get(n)), n).toBe(sha(bucketFiles.get(`${dir}/${n}`)!));
      }
      await until('no upload pending', () => daemon.status(), (st) => st.uploads.length === 0);
      for (const n of ack) expect(sha(await get(n)), n).toBe(sha(bucketFiles.get(`${dir}/${n}`)!));
      totals.acknowledged += ack.length;
      totals.retried += hang.length + fail.length;
      // Never closed: not in the bucket, not on the mount, and their staged bytes are gone.
      for (const n of held) expect(await inBucket(n), n).toBe(false);
      totals.dropped += held.length;
      expect(daemon.log()).toMatch(/dropped staged writes that were never closed/);
      await until('staging to empty', async () => readdirSync(path.join(home, 'cache', 'staging')), (f) => f.length === 0);
      const listing = await shStatus(`ls ${path.join(mnt, 'bkt', dir)}`);
      expect(listing.stdout.split('\n').filter(Boolean).sort()).toEqual([...ack, ...hang, ...fail].sort());
      // And through the mount, every written file reads back as written.
      const want = new Map([...ack, ...hang, ...fail].map((n) => [dst(n), sha(bucketFiles.get(`${dir}/${n}`)!)]));
      await readAllAndVerify(want);
    }
  }, 300_000);

  it('during a version switch: the restarted daemon serves the version settings.yaml names, and only its bytes', async () => {
    const rounds = LONG ? 10 : 4;
    // Where the kill lands after the save: before the watcher's debounce, during the catalog lookups, after the swap.
    const delays = [0, 90, 180, 400];
    let current = v1;
    saveSettings(current);
    await daemon.start();
    for (let round = 0; round < rounds; round++) {
      const next = current === v1 ? v2 : v1;
      const both = (p: string) => {
        const rel = path.relative(path.join(mnt, 'team'), p);
        return [versions.get(v1)!.get(rel), versions.get(v2)!.get(rel)].filter((h): h is string => h !== undefined);
      };
      const paths = [...versions.get(current)!.keys()].map((p) => path.join(mnt, 'team', p));
      const readers = Array.from({ length: 3 }, (_, i) => spawnFsio(['read', '--list', listFile(shuffled(paths), `sw${i}`), '--loops', '1000', '--stop-on-dead']));
      await Promise.all(readers.map((r) => r.waitFor('3 reads', (ls) => ls.filter((l) => l.kind === 'ok').length >= 3)));
      saveSettings(next);
      await new Promise((r) => setTimeout(r, delays[round % delays.length]!));
      await kill();
      await settle(readers);
      // A file read across the switch is all of one version or all of the other, never a mix.
      for (const r of readers) expect(verifyReads(r.lines, both), r.errors).toBe(0);
      await restart();
      const st = await daemon.status();
      expect(st.mounts.find((m) => m.name === 'team')).toMatchObject({ resolved: `${ds}:${next}`, state: 'ok' });
      await readAllAndVerify(expected(next));
      const gone = path.join(mnt, 'team', current === v1 ? 'only-v1.txt' : 'only-v2.txt');
      expect((await shStatus(`cat ${gone}`)).stderr).toMatch(/No such file/);
      current = next;
    }
  }, 240_000);

  it('never logged the secret in any of the runs', () => {
    expect(daemon.starts).toBeGreaterThan(0);
    expect(daemon.log()).not.toContain(s.secretAccessKey);
  });
});
