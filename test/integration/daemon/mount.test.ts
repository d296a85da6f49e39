// `gradient mount` for real: a daemon process mounting team datasets created with the CLI on RGW,
// following settings.yaml edits live (version, tag, latest, added and removed entries, bad edits),
// the public MNIST sample, and a restart that reads everything from the warm cache.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchStatus, waitForReady } from '../../../src/daemon/client.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { forceUnmount, sh } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';
import { until } from '../../helpers/until.js';
import { writeTree } from '../../helpers/tree.js';
import { runCli } from '../../helpers/cli.js';

const root = path.resolve(import.meta.dirname, '../../..');

describe('gradient mount with team datasets on RGW', () => {
  let home: string;
  let bucket: string;
  let env: NodeJS.ProcessEnv;
  let mnt: string;
  let settings: string;
  let socket: string;
  let cacheDir: string;
  let daemon: ChildProcess | undefined;
  let ds = '';
  let v1 = '';
  let v2 = '';
  const big = randomBytes(3 << 20);

  async function gradient(...args: string[]): Promise<string> {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }

  async function startDaemon(): Promise<void> {
    daemon = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'mount', '--settings', settings, '--mountpoint', mnt, '--socket', socket, '--cache-dir', cacheDir, '--cache-size', '1G'],
      { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await waitForReady(socket, { timeoutMs: 30_000 });
  }

  async function stopDaemon(): Promise<void> {
    if (!daemon || daemon.exitCode !== null) return;
    const exited = new Promise((r) => daemon!.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
  }

  const status = (): Promise<DaemonStatus> => fetchStatus(socket);
  const entry = async (name: string) => (await status()).mounts.find((m) => m.name === name);
  const setSettings = (yaml: string) => writeFile(settings, yaml);
  const datasetEntry = (name: string, version: string) => `${name}:\n  type: dataset\n  id: ${ds}\n  version: ${version}\n`;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'gd-mount-'));
    bucket = await freshBucket('mount');
    env = { HOME: home, PATH: process.env.PATH, GRADIENT_SECRETS_DIR: path.join(home, 'secrets'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    mnt = path.join(home, 'datasets');
    settings = path.join(home, 'settings.yaml');
    socket = path.join(home, 'daemon.sock');
    cacheDir = path.join(home, 'cache');
    const s = s3Server();
    const provider = (await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint)).match(/spl[a-z0-9]+/)![0];
    ds = (await gradient('datasets', 'create', '--name', 'reports', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
    const put = async (files: Record<string, string | Buffer>) => {
      const v = (await gradient('datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
      const src = await writeTree(path.join(home, `src-${v}`), files);
      await gradient('datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', src);
      await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
      return v;
    };
    v1 = await put({ 'a.txt': 'version one\n', 'same.txt': 'shared\n', 'sub/big.bin': big });
    v2 = await put({ 'a.txt': 'version two!\n', 'same.txt': 'shared\n', 'sub/big.bin': big, 'new.txt': 'only in v2\n' });
    await gradient('datasets', 'tags', 'set', '--id', `${ds}:${v1}`, '--name', 'stable');
    await setSettings(datasetEntry('reports', v1));
    await startDaemon();
  }, 120_000);

  afterAll(async () => {
    await stopDaemon().catch(() => undefined);
    daemon?.kill('SIGKILL');
    await forceUnmount(mnt);
    await emptyAndDeleteBucket(bucket).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  });

  it('serves the settings entry and the public MNIST sample, read-only', async () => {
    expect(await sh(`ls ${mnt}`)).toBe('mnist\nreports\n');
    expect(await sh(`cat ${mnt}/reports/a.txt`)).toBe('version one\n');
    const got = await fsp.readFile(path.join(mnt, 'reports/sub/big.bin'));
    expect(got.equals(big)).toBe(true);
    expect(await sh(`ls -l ${mnt}/reports/a.txt`)).toMatch(/^-r--r--r-- /);
    const err = await fsp.writeFile(path.join(mnt, 'reports/a.txt'), 'x').then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
    expect(err).toBe('EROFS');
    const labels = await fsp.readFile(path.join(mnt, 'mnist/t10k-labels-idx1-ubyte'));
    expect(labels.readUInt32BE(0)).toBe(0x801);
    expect((await entry('reports'))?.resolved).toBe(`${ds}:${v1}`);
  });

  it('switches versions live: open files keep v1, new opens see v2, within a second', async () => {
    const held = await fsp.open(path.join(mnt, 'reports/a.txt'), 'r');
    try {
      const t0 = Date.now();
      await setSettings(datasetEntry('reports', v2));
      await until('v2 visible', () => fsp.readFile(path.join(mnt, 'reports/a.txt'), 'utf8'), (t) => t === 'version two!\n');
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await sh(`cat ${mnt}/reports/new.txt`)).toBe('only in v2\n');
      const buf = Buffer.alloc(64);
      const { bytesRead } = await held.read(buf, 0, 64, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('version one\n');
    } finally {
      await held.close();
    }
  });

  it('resolves tags and latest', async () => {
    await setSettings(datasetEntry('reports', 'stable'));
    await until('tag stable → v1', () => fsp.readFile(path.join(mnt, 'reports/a.txt'), 'utf8'), (t) => t === 'version one\n');
    await setSettings(datasetEntry('reports', 'latest'));
    await until('latest → v2', () => fsp.readFile(path.join(mnt, 'reports/a.txt'), 'utf8'), (t) => t === 'version two!\n');
    expect((await entry('reports'))?.resolved).toBe(`${ds}:${v2}`);
  });

  it('adds and removes entries', async () => {
    await setSettings(datasetEntry('reports', v2) + datasetEntry('older', v1));
    await until('older appears', () => fsp.readFile(path.join(mnt, 'older/a.txt'), 'utf8'), (t) => t === 'version one\n');
    await setSettings(datasetEntry('reports', v2));
    await until('older disappears', () => sh(`ls ${mnt}`), (t) => t === 'mnist\nreports\n');
  });

  it('keeps the last good mounts through bad edits, and recovers when fixed', async () => {
    const bad: [string, RegExp][] = [
      ['reports:\n  type: dataset\n  id: [unclosed\n', /settings\.yaml:\d+:\d+/],
      [datasetEntry('reports', 'nosuchtag'), /not found/],
      [`reports:\n  type: dataset\n  id: dsdoesnotexist\n  version: latest\n`, /dsdoesnotexist/],
      [datasetEntry('reports', v2) + '  colour: blue\n', /colour/],
    ];
    for (const [yaml, message] of bad) {
      await setSettings(yaml);
      const errors = (s: DaemonStatus) => `${s.settings.lastError ?? ''} ${s.mounts.find((m) => m.name === 'reports')?.lastError ?? ''}`;
      await until(`error ${message}`, status, (s) => message.test(errors(s)));
      expect(await sh(`cat ${mnt}/reports/a.txt`)).toBe('version two!\n');
    }
    await setSettings(datasetEntry('reports', v1));
    await until('recovered', () => fsp.readFile(path.join(mnt, 'reports/a.txt'), 'utf8'), (t) => t === 'version one\n');
    const st = await status();
    expect(st.settings.lastError).toBeNull();
    expect(st.mounts.find((m) => m.name === 'reports')?.state).toBe('ok');
  });

  it('restarts with a warm cache: every file is served without a single fetch', async () => {
    await setSettings(datasetEntry('reports', v2));
    await until('v2', () => fsp.readFile(path.join(mnt, 'reports/a.txt'), 'utf8'), (t) => t === 'version two!\n');
    for (const f of ['a.txt', 'same.txt', 'new.txt', 'sub/big.bin']) await fsp.readFile(path.join(mnt, 'reports', f));
    await stopDaemon();
    expect((await sh(`grep -c ' ${mnt} ' /proc/self/mountinfo || true`)).trim()).toBe('0');
    await startDaemon();
    for (const f of ['a.txt', 'same.txt', 'new.txt']) await fsp.readFile(path.join(mnt, 'reports', f));
    expect((await fsp.readFile(path.join(mnt, 'reports/sub/big.bin'))).equals(big)).toBe(true);
    const cache = (await status()).cache!;
    expect(cache.misses).toBe(0);
    expect(cache.hits).toBeGreaterThan(0);
  });
});
