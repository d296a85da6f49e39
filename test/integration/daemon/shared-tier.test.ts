// The shared tier through `gradient mount`, as users run it: a team dataset on RGW (the origin, reached
// through a proxy that counts its requests), a second RGW bucket as the tier in config.yaml with its secret
// by reference. A first daemon reads a version; a second one with an empty cache reads it without a single
// blob GET at the origin; with the origin stopped, a third with an empty cache still resolves `latest` and a
// tag (shown as last known answers) and reads every byte right. No log line ever holds a secret.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { runCli } from '../../helpers/cli.js';
import { daemonHome } from '../../helpers/daemon-process.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { sh } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';
import { writeTree } from '../../helpers/tree.js';
import { until } from '../../helpers/until.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('gradient mount with a shared cache tier', () => {
  const s = s3Server();
  let originBucket = '';
  let tierBucket = '';
  let proxy: FaultProxy | undefined;
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('a small file\n'),
    'mid.bin': randomBytes(9 << 20),
    'sub/big.bin': randomBytes((20 << 20) + 123),
  };
  let ds = '';
  let v = '';
  const homes = [daemonHome('gd-tier-a-'), daemonHome('gd-tier-b-'), daemonHome('gd-tier-c-'), daemonHome('gd-tier-d-')];
  /** The tier secret of the last home: refused by the tier, and never to be seen in its log. */
  const wrongSecret = randomBytes(20).toString('hex');

  async function gradient(env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
    const r = await runCli(args, env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }

  async function readAll(mnt: string): Promise<void> {
    for (const name of ['data', 'tagged']) {
      for (const [file, data] of Object.entries(files)) {
        const got = (await sh(`sha256sum < ${mnt}/${name}/${file}`)).split(' ')[0];
        expect(got, `${name}/${file}`).toBe(sha(data));
      }
    }
  }

  const blobGets = () => proxy!.requests.filter((r) => r.startsWith('GET ') && r.includes('/blobs/')).length;

  beforeAll(async () => {
    originBucket = await freshBucket('tier-origin');
    tierBucket = await freshBucket('tier-tier');
    proxy = await startFaultProxy(s.endpoint);
    const first = homes[0]!;
    first.work.create();
    first.writeSecret('tier-key', s.secretAccessKey);
    const env = first.env;
    const provider = (
      await gradient(env, 'storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', originBucket, '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', proxy.endpoint)
    ).match(/spl[a-z0-9]+/)![0];
    ds = (await gradient(env, 'datasets', 'create', '--name', 'shared', '--storageProviderId', provider)).match(/Created dataset: (\S+)/)![1]!;
    v = (await gradient(env, 'datasets', 'versions', 'create', '--id', ds)).match(/:(\S+)\n/)![1]!;
    const src = await writeTree(path.join(first.home, 'src'), files);
    await gradient(env, 'datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', src);
    await gradient(env, 'datasets', 'versions', 'commit', '--id', `${ds}:${v}`);
    await gradient(env, 'datasets', 'tags', 'set', '--id', `${ds}:${v}`, '--name', 'stable');
    const configFile = path.join(first.home, '.config/gradient/config.yaml');
    appendFileSync(
      configFile,
      `cache:\n  shared:\n    url: s3://${tierBucket}/gradient\n    endpoint: ${s.endpoint}\n    accessKeyId: ${s.accessKeyId}\n    secretAccessKey: secret:tier-key\n`,
    );
    // One team: every home gets the same config.yaml and secrets; each its own cache and mountpoint.
    for (const h of homes) {
      if (h !== first) h.work.create();
      const dir = path.join(h.home, '.config/gradient');
      mkdirSync(dir, { recursive: true });
      copyFileSync(configFile, path.join(dir, 'config.yaml'));
      mkdirSync(h.env.GRADIENT_SECRETS_DIR!, { recursive: true });
      for (const name of readdirSync(first.env.GRADIENT_SECRETS_DIR!)) {
        copyFileSync(path.join(first.env.GRADIENT_SECRETS_DIR!, name), path.join(h.env.GRADIENT_SECRETS_DIR!, name));
      }
      if (h === homes[3]) h.writeSecret('tier-key', wrongSecret);
      writeFileSync(h.settings, `data:\n  type: dataset\n  id: ${ds}\n  version: latest\ntagged:\n  type: dataset\n  id: ${ds}\n  version: stable\n`);
    }
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) {
      await h.daemon.cleanup();
      h.work.remove();
    }
    await proxy?.close();
    await emptyAndDeleteBucket(originBucket).catch(() => undefined);
    await emptyAndDeleteBucket(tierBucket).catch(() => undefined);
  });

  it('a first daemon reads from the origin and fills the tier', async () => {
    const a = homes[0]!;
    await a.daemon.start();
    await readAll(a.mnt);
    expect(blobGets()).toBeGreaterThan(0);
    // Three blobs and the manifest go up in the background.
    const st = await until('uploads to the tier', () => a.daemon.status(), (x) => (x.cache?.tier?.uploads ?? 0) >= 4, 60_000);
    expect(st.cache?.tier?.location).toContain(tierBucket);
    await a.daemon.stop();
  });

  it('a second daemon with an empty cache reads the version without one blob GET at the origin', async () => {
    const b = homes[1]!;
    const before = blobGets();
    await b.daemon.start();
    await readAll(b.mnt);
    expect(blobGets() - before).toBe(0);
    const st = await b.daemon.status();
    expect(st.cache?.tier?.bytesFromTier).toBeGreaterThanOrEqual(Object.values(files).reduce((n, f) => n + f.length, 0));
    expect(st.cache?.tier?.bytesFromOrigin).toBe(0);
    await b.daemon.stop();
  });

  it('a tier that refuses us: reads go to the origin with a warning, nothing fails, its secret is never logged', async () => {
    const d = homes[3]!;
    await d.daemon.start();
    await readAll(d.mnt);
    const st = await d.daemon.status();
    expect(st.cache?.tier?.unavailable).toBeGreaterThanOrEqual(1);
    expect(st.cache?.tier?.bytesFromTier).toBe(0);
    expect(JSON.stringify(st)).not.toContain(wrongSecret);
    await d.daemon.stop();
    expect(d.daemon.log()).toMatch(/"code":"TierUnavailable"/);
    expect(d.daemon.log()).not.toContain(wrongSecret);
  });

  it('with the origin stopped, a fresh daemon resolves latest and the tag to their last known answers and reads every byte', async () => {
    await proxy!.close(); // the origin's endpoint now refuses connections
    const c = homes[2]!;
    await c.daemon.start(120_000);
    const st = await until('entries served', () => c.daemon.status(), (x) => x.mounts.filter((m) => m.resolved?.includes(v)).length === 2, 60_000);
    for (const name of ['data', 'tagged']) {
      const m = st.mounts.find((x) => x.name === name)!;
      expect(m.resolved).toContain('last known answer');
      expect(m.resolved).toContain(`${ds}:${v}`);
    }
    await readAll(c.mnt);
    await c.daemon.stop();
  });

  it('gradient cache prune --shared --older-than removes tier objects by age', async () => {
    const env = homes[0]!.env;
    const kept = JSON.parse(await gradient(env, '--json', 'cache', 'prune', '--shared', '--older-than', '30d')) as { deleted: number; kept: number };
    expect(kept.deleted).toBe(0);
    expect(kept.kept).toBeGreaterThanOrEqual(4);
    await new Promise((r) => setTimeout(r, 1100)); // LastModified has one-second resolution
    const all = JSON.parse(await gradient(env, '--json', 'cache', 'prune', '--shared', '--older-than', '1s')) as { deleted: number; kept: number };
    expect(all.deleted).toBe(kept.kept);
    expect(all.kept).toBe(0);
    const usage = await runCli(['cache', 'prune', '--shared'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--older-than');
  });

  it('no daemon logged a secret', () => {
    for (const h of homes) {
      const log = h.daemon.log();
      expect(log.length).toBeGreaterThan(0);
      expect(log).not.toContain(s.secretAccessKey);
      expect(log).not.toContain(wrongSecret);
    }
  });
});
