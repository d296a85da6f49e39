// Dataset versions as outputs, for real: a `gradient mount` daemon on RGW serving `version: new` entries
// read-write; a tree (a `git clone` included) written through the mount, committed with the CLI while
// mounted, read back byte-exact through a second entry and through `files list`; EROFS after the commit,
// for new opens and for a writer that was open across it; `from:` reusing content (PUTs counted); entries
// naming a version that cannot be written.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../../src/daemon/status.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { runCli } from '../../helpers/cli.js';
import { daemonHome } from '../../helpers/daemon-process.js';
import { sh } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';
import { writeTree } from '../../helpers/tree.js';
import { until } from '../../helpers/until.js';

/** Every regular file under `dir`: relative path → sha256. */
async function digestTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (d: string, rel: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await visit(path.join(d, e.name), r);
      else if (e.isFile()) out.set(r, createHash('sha256').update(await fsp.readFile(path.join(d, e.name))).digest('hex'));
    }
  };
  await visit(dir, '');
  return out;
}

const errnoOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code ?? String(e));

describe('dataset versions as outputs (RGW, real mounts)', () => {
  const h = daemonHome('gd-outputs-');
  let bucket = '';
  let ds = '';
  let base = '';
  let cli: NodeJS.ProcessEnv;
  const big = randomBytes(40 << 20);

  async function gradient(...args: string[]): Promise<string> {
    const r = await runCli(args, cli);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }
  const status = (): Promise<DaemonStatus> => h.daemon.status();
  const output = async (name: string) => (await status()).outputs?.find((o) => o.mount === name);
  const entry = async (name: string) => (await status()).mounts.find((m) => m.name === name);
  const settings = (entries: Record<string, Record<string, string>>) =>
    writeFile(
      h.settings,
      Object.entries(entries)
        .map(([name, fields]) => `${name}:\n  type: dataset\n  id: ${ds}\n${Object.entries(fields).map(([k, v]) => `  ${k}: ${v}\n`).join('')}`)
        .join(''),
    );

  beforeAll(async () => {
    h.work.create();
    cli = { ...h.env, GRADIENT_DAEMON_SOCKET: h.daemon.opts.socket };
    bucket = await freshBucket('outputs');
    const s = s3Server();
    const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
    ds = (await gradient('datasets', 'create', '--name', 'outs', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
    base = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
    const src = await writeTree(path.join(h.home, 'base'), { 'keep.txt': 'kept from base\n', 'data/shared.bin': randomBytes(300_000) });
    await gradient('datasets', 'files', 'put', '--id', `${ds}:${base}`, '--source-path', src);
    await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${base}`);
    await settings({ out: { version: 'new' } });
    await h.daemon.start();
  }, 120_000);

  afterAll(async () => {
    await h.daemon.cleanup();
    await emptyAndDeleteBucket(bucket).catch(() => undefined);
    h.work.remove();
  });

  it('writes a tree (git clone included), commits it while mounted, and reads it back byte-exact', async () => {
    const out = path.join(h.mnt, 'out');
    const o = await output('out');
    expect(o?.committed).toBe(false);
    const version = o!.version;
    expect(version).toMatch(new RegExp(`^${ds}:`));
    expect(h.daemon.log()).toContain(version);

    // A small git repository, cloned into the output.
    const repo = path.join(h.home, 'repo');
    await writeTree(repo, { 'README.md': '# tiny\n', 'src/main.py': 'print("hi")\n', 'src/lib/util.py': 'X = 1\n' });
    await sh(`cd ${repo} && git init -q && git -c user.email=t@t -c user.name=t add -A && git -c user.email=t@t -c user.name=t commit -qm first`);
    await sh(`git clone -q ${repo} ${out}/clone`);
    expect(await sh(`cd ${out}/clone && git log --format=%s`)).toBe('first\n');
    expect(await sh(`cd ${out}/clone && git status --porcelain`)).toBe('');

    // Files, a large one, and the usual changes within the version.
    await mkdir(path.join(out, 'results/run1'), { recursive: true });
    await writeFile(path.join(out, 'results/run1/metrics.json'), '{"loss": 0.1}\n');
    await writeFile(path.join(out, 'results/big.bin'), big);
    await writeFile(path.join(out, 'results/draft.txt'), 'first draft, long enough to be cut\n');
    await fsp.truncate(path.join(out, 'results/draft.txt'), 11);
    await writeFile(path.join(out, 'results/over.txt'), 'one\n');
    await writeFile(path.join(out, 'results/over.txt'), 'two, overwritten\n');
    await writeFile(path.join(out, 'tmp.txt'), 'renamed\n');
    await fsp.rename(path.join(out, 'tmp.txt'), path.join(out, 'results/final.txt'));
    await writeFile(path.join(out, 'gone.txt'), 'deleted\n');
    await fsp.unlink(path.join(out, 'gone.txt'));
    await mkdir(path.join(out, 'empty'));
    await fsp.rmdir(path.join(out, 'empty'));
    expect(await sh(`cat ${out}/results/draft.txt`)).toBe('first draft');
    await fsp.chmod(path.join(out, 'results/final.txt'), 0o640);
    expect((await fsp.stat(path.join(out, 'results/final.txt'))).mode & 0o777).toBe(0o640);

    const written = await digestTree(out);
    const during = await output('out');
    expect(during?.files).toBe(written.size);
    expect(during?.pendingUploads).toBe(0);

    // A writer open across the commit: its close must fail, not lose its bytes silently.
    const late = await fsp.open(path.join(out, 'late.txt'), 'w');
    await late.write('written before the commit, closed after\n');

    await gradient('datasets', 'versions', 'commit', '--id', version);
    expect((await output('out'))?.committed).toBe(true);
    expect(await errnoOf(late.close())).toBe('EROFS');
    expect(await errnoOf(writeFile(path.join(out, 'after.txt'), 'x'))).toBe('EROFS');
    expect(await errnoOf(writeFile(path.join(out, 'results/final.txt'), 'x'))).toBe('EROFS');
    expect(await errnoOf(fsp.unlink(path.join(out, 'results/final.txt')))).toBe('EROFS');
    expect(await errnoOf(mkdir(path.join(out, 'newdir')))).toBe('EROFS');
    // Still readable as committed.
    expect((await fsp.readFile(path.join(out, 'results/big.bin'))).equals(big)).toBe(true);

    // `files list` agrees with what was written.
    const listed = JSON.parse(await gradient('--json', 'datasets', 'files', 'list', '--id', version)) as Array<{ path: string; sha256: string }>;
    expect(new Map(listed.map((f) => [f.path, f.sha256]))).toEqual(written);

    // `latest` through a second entry: the committed manifest, byte-exact.
    await settings({ out: { version: 'new' }, back: { version: 'latest' } });
    await until('back is mounted', () => entry('back'), (e) => e?.state === 'ok' && e.resolved === version);
    expect(await digestTree(path.join(h.mnt, 'back'))).toEqual(written);
    expect(await sh(`cd ${h.mnt}/back/clone && git log --format=%s && git status --porcelain`)).toBe('first\n');
  }, 180_000);

  it('from: starts with another version\'s files without copying data; known content is not uploaded again', async () => {
    await settings({ derived: { version: 'new', from: base } });
    await until('derived is mounted', () => entry('derived'), (e) => e?.state === 'ok');
    const d = path.join(h.mnt, 'derived');
    expect(await sh(`cat ${d}/keep.txt`)).toBe('kept from base\n');
    const puts = async () => (await status()).requests.store.PUT ?? 0;
    const p0 = await puts();
    // The same bytes as a file of the base version: only its journal record is written.
    await fsp.copyFile(path.join(h.home, 'base/data/shared.bin'), path.join(d, 'copy-of-shared.bin'));
    const p1 = await puts();
    expect(p1 - p0).toBe(1);
    // New bytes: their blob and the record.
    await writeFile(path.join(d, 'fresh.txt'), `fresh ${randomBytes(8).toString('hex')}\n`);
    expect((await puts()) - p1).toBe(2);
    const version = (await output('derived'))!.version;
    const listed = JSON.parse(await gradient('--json', 'datasets', 'files', 'list', '--id', version)) as Array<{ path: string }>;
    expect(listed.map((f) => f.path).sort()).toEqual(['copy-of-shared.bin', 'data/shared.bin', 'fresh.txt', 'keep.txt']);
  }, 120_000);

  it('refuses to write a committed version, and names the entry for an unknown one', async () => {
    await settings({ sealed: { version: base, commit: 'onExit' }, nosuch: { version: 'zzzzzzz' } });
    await until('both in error', status, (s) => ['sealed', 'nosuch'].every((n) => s.mounts.find((m) => m.name === n)?.state === 'error'));
    const st = await status();
    const sealed = st.mounts.find((m) => m.name === 'sealed')!.lastError!;
    expect(sealed).toMatch(/sealed\.version/);
    expect(sealed).toMatch(/cannot be written/);
    const nosuch = st.mounts.find((m) => m.name === 'nosuch')!.lastError!;
    expect(nosuch).toMatch(/nosuch\.version/);
    expect(nosuch).toMatch(/not found/);
  }, 60_000);
});

describe('outputs across crashes and stops (RGW, real mounts)', () => {
  const h = daemonHome('gd-outputs-crash-');
  let bucket = '';
  let ds = '';
  let cli: NodeJS.ProcessEnv;

  async function gradient(...args: string[]): Promise<string> {
    const r = await runCli(args, cli);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }
  const listFiles = async (ref: string) =>
    new Map((JSON.parse(await gradient('--json', 'datasets', 'files', 'list', '--id', ref)) as Array<{ path: string; sha256: string }>).map((f) => [f.path, f.sha256]));
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

  beforeAll(async () => {
    h.work.create();
    cli = { ...h.env, GRADIENT_DAEMON_SOCKET: h.daemon.opts.socket };
    bucket = await freshBucket('outputs-crash');
    const s = s3Server();
    const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
    ds = (await gradient('datasets', 'create', '--name', 'ckpts', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
  }, 60_000);

  afterAll(async () => {
    await h.daemon.cleanup();
    await emptyAndDeleteBucket(bucket).catch(() => undefined);
    h.work.remove();
  });

  it('kill -9 during writes: every closed file is in the version, nothing half-written, and it commits', async () => {
    const v = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
    await writeFile(h.settings, `ckpt:\n  type: dataset\n  id: ${ds}\n  version: ${v}\n`);
    await h.daemon.start();
    const dir = path.join(h.mnt, 'ckpt');
    const closed = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const body = `step ${i} ${randomBytes(16).toString('hex')}\n`;
      await writeFile(path.join(dir, `step-${i}.txt`), body);
      closed.set(`step-${i}.txt`, sha(body));
    }
    const large = randomBytes(24 << 20);
    await writeFile(path.join(dir, 'weights.bin'), large);
    closed.set('weights.bin', sha(large));
    // Mid-write when the daemon dies: never closed.
    const open = await fsp.open(path.join(dir, 'partial.bin'), 'w');
    await open.write(randomBytes(8 << 20));
    await h.daemon.kill9();
    await open.close().catch(() => undefined);

    await h.daemon.start();
    expect(await digestTree(dir)).toEqual(closed);
    expect(await listFiles(`${ds}:${v}`)).toEqual(closed);
    await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
    expect(await listFiles(`${ds}:latest`)).toEqual(closed);
    expect(await errnoOf(writeFile(path.join(dir, 'more.txt'), 'x'))).toBe('EROFS');
    await h.daemon.stop();
  }, 180_000);

  it('version: new survives a restart of the serving process, and commit: onExit commits at a clean stop', async () => {
    await writeFile(h.settings, `job:\n  type: dataset\n  id: ${ds}\n  version: new\n  commit: onExit\n`);
    await h.daemon.start();
    const version = (await h.daemon.status()).outputs!.find((o) => o.mount === 'job')!.version;
    await writeFile(path.join(h.mnt, 'job/one.txt'), 'one\n');
    await h.daemon.killServer9();
    await until('a new serving process', () => h.daemon.status().catch(() => undefined), (s) => s?.ready === true);
    expect((await h.daemon.status()).outputs!.find((o) => o.mount === 'job')!.version).toBe(version);
    await writeFile(path.join(h.mnt, 'job/two.txt'), 'two\n');
    await h.daemon.stop();
    const versions = JSON.parse(await gradient('--json', 'datasets', 'versions', 'list', '--id', ds)) as Array<{ id: string; state: string }>;
    expect(versions.find((x) => `${ds}:${x.id}` === version)?.state).toBe('committed');
    expect(await listFiles(version)).toEqual(new Map([['one.txt', sha('one\n')], ['two.txt', sha('two\n')]]));
  }, 180_000);
});
