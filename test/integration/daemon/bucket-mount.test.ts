// `gradient mount` with bucket entries on RGW: a read-write bucket whose secret comes from the secrets
// directory, a single object pinned by ETag (good, then bad), a bucket that refuses the credentials, and
// a public dataset (coco) served from an anonymous, public-read bucket. The daemon's log and status must
// never contain the secret.
import { GetObjectCommand, PutBucketAclCommand, PutObjectAclCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchStatus, waitForReady } from '../../../src/daemon/client.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { forceUnmount, sh, shStatus } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';
import { until } from '../../helpers/until.js';

const root = path.resolve(import.meta.dirname, '../../..');

describe('gradient mount with S3 bucket entries on RGW', () => {
  const s = s3Server();
  const client = s3Client();
  let home: string;
  let bucket: string;
  let publicBucket: string;
  let mnt: string;
  let settings: string;
  let socket: string;
  let logFile: string;
  let daemon: ChildProcess | undefined;
  let modelEtag: string;

  const status = (): Promise<DaemonStatus> => fetchStatus(socket);
  const entry = async (name: string) => (await status()).mounts.find((m) => m.name === name);
  const bucketEntry = (name: string, extra = '') =>
    `${name}:\n  type: s3\n  url: s3://${bucket}/work\n  endpoint: ${s.endpoint}\n  accessKeyId: ${s.accessKeyId}\n  secretAccessKey: secret:rgw-key\n${extra}`;
  const pinnedEntry = (etag: string) =>
    `model:\n  type: s3\n  url: s3://${bucket}/models/model.bin\n  endpoint: ${s.endpoint}\n  accessKeyId: ${s.accessKeyId}\n  secretAccessKey: secret:rgw-key\n  etag: "${etag}"\n`;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'gd-bmount-'));
    bucket = await freshBucket('bmount');
    publicBucket = await freshBucket('public');
    mnt = path.join(home, 'datasets');
    settings = path.join(home, 'settings.yaml');
    socket = path.join(home, 'daemon.sock');
    logFile = path.join(home, 'daemon.log');
    await mkdir(path.join(home, 'secrets'));
    await writeFile(path.join(home, 'secrets', 'rgw-key'), `${s.secretAccessKey}\n`);
    const config = path.join(home, 'config.yaml');
    await writeFile(
      config,
      `publicDatasets:\n  datasets:\n    coco:\n      bucket: ${publicBucket}\n      prefix: coco\n      endpoint: ${s.endpoint}\nbuckets:\n  metadataTtl: 1\n`,
    );
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'work/existing.txt', Body: 'from the bucket\n' }));
    const model = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/model.bin', Body: 'weights v1' }));
    modelEtag = model.ETag!.replace(/"/g, '');
    await client.send(new PutBucketAclCommand({ Bucket: publicBucket, ACL: 'public-read' })); // anonymous listing
    for (const [key, body] of [['coco/annotations/instances.json', '{"images": []}'], ['coco/README', 'COCO sample\n']]) {
      await client.send(new PutObjectCommand({ Bucket: publicBucket, Key: key, Body: body }));
      await client.send(new PutObjectAclCommand({ Bucket: publicBucket, Key: key, ACL: 'public-read' }));
    }
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry(modelEtag));
    const env = {
      HOME: home,
      PATH: process.env.PATH,
      GRADIENT_SECRETS_DIR: path.join(home, 'secrets'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const log = openSync(logFile, 'w');
    try {
      daemon = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'mount', '--settings', settings, '--mountpoint', mnt, '--socket', socket, '--config', config, '--cache-dir', path.join(home, 'cache'), '--cache-size', '1G'],
        { cwd: root, env, stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    await waitForReady(socket, { timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      daemon.kill('SIGKILL');
    }
    await forceUnmount(mnt);
    await emptyAndDeleteBucket(bucket).catch(() => undefined);
    await emptyAndDeleteBucket(publicBucket).catch(() => undefined);
    client.destroy();
    await rm(home, { recursive: true, force: true });
  });

  it('mounts a bucket read-write with its secret from the secrets directory', async () => {
    const st = await status();
    expect(st.mounts.filter((m) => m.state !== 'ok'), JSON.stringify(st.mounts)).toEqual([]);
    expect((await sh(`ls ${mnt}`)).split('\n')).toEqual(expect.arrayContaining(['bucket', 'model', 'coco', 'mnist']));
    expect(await sh(`cat ${mnt}/bucket/existing.txt`)).toBe('from the bucket\n');
    await sh(`mkdir -p ${mnt}/bucket/out && printf 'result 42' > ${mnt}/bucket/out/r.txt`);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'work/out/r.txt' }));
    expect(await got.Body!.transformToString()).toBe('result 42');
    expect((await entry('bucket'))).toMatchObject({ state: 'ok', resolved: `s3://${bucket}/work` });
  });

  it('counts FUSE requests that reach JavaScript and store requests, by operation, in status', async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'work/counted.txt', Body: 'count me' }));
    const before = (await status()).requests;
    expect(await sh(`cat ${mnt}/bucket/counted.txt`)).toBe('count me');
    const after = (await status()).requests;
    const grew = (a: Record<string, number>, b: Record<string, number>, op: string) => (b[op] ?? 0) - (a[op] ?? 0);
    // A small object is fetched whole, once, when opened; its bytes then never pass through JavaScript.
    expect(grew(before.store, after.store, 'GET')).toBe(1);
    expect(grew(before.fuse, after.fuse, 'OPEN')).toBe(1);
    expect(grew(before.fuse, after.fuse, 'READ')).toBe(0);
    expect(grew(before.fuse, after.fuse, 'LOOKUP')).toBeGreaterThanOrEqual(1);
  });

  it('serves a pinned object, and refuses a pin that does not match (keeping the last good mount)', async () => {
    expect(await sh(`cat ${mnt}/model/model.bin`)).toBe('weights v1');
    expect((await shStatus(`printf x > ${mnt}/model/model.bin`)).stderr).toMatch(/Read-only/);
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry('0123456789abcdef0123456789abcdef'));
    const bad = await until('pin mismatch', () => entry('model'), (e) => /etag/.test(e?.lastError ?? ''));
    expect(bad!.lastError).toMatch(/settings\.yaml:\d+:\d+: model\.etag: .*has ETag/);
    expect(await sh(`cat ${mnt}/model/model.bin`)).toBe('weights v1');
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry(modelEtag));
    await until('pin fixed', () => entry('model'), (e) => e?.state === 'ok');
  });

  it('names the field when the bucket refuses the credentials', async () => {
    await writeFile(path.join(home, 'secrets', 'wrong-key'), 'not-the-secret');
    await writeFile(settings, bucketEntry('bucket') + bucketEntry('other').replace('secret:rgw-key', 'secret:wrong-key'));
    const e = await until('credentials refused', () => entry('other'), (x) => x?.state === 'error');
    expect(e!.lastError).toMatch(/other\.secretAccessKey: .*rejected the credentials/);
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry(modelEtag));
    await until('other removed', () => entry('other'), (x) => x === undefined);
  });

  it('serves a public dataset from an anonymous bucket', async () => {
    expect(await sh(`ls ${mnt}/coco`)).toBe('README\nannotations\n');
    expect(await sh(`cat ${mnt}/coco/annotations/instances.json`)).toBe('{"images": []}');
    expect((await shStatus(`touch ${mnt}/coco/new`)).stderr).toMatch(/Read-only/);
    expect((await entry('coco'))?.state).toBe('ok');
  });

  it("takes an entry's POSIX defaults from settings.yaml for objects without metadata; modes set through the mount stay", async () => {
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry(modelEtag) + bucketEntry('posix', '  uid: 1000\n  gid: 100\n  fileMode: 0640\n  dirMode: "0750"\n'));
    await until('posix mounted', () => entry('posix'), (e) => e?.state === 'ok');
    expect(await sh(`stat -c '%a %u %g' ${mnt}/posix ${mnt}/posix/existing.txt ${mnt}/posix/out/r.txt`)).toBe('750 1000 100\n640 1000 100\n644 0 0\n');
    await sh(`chmod 600 ${mnt}/posix/existing.txt`);
    expect(await sh(`stat -c '%a %u' ${mnt}/bucket/existing.txt`)).toBe('600 1000\n'); // in the bucket, seen by the other entry
    await sh(`chmod 666 ${mnt}/bucket/existing.txt`);
    await writeFile(settings, bucketEntry('bucket') + pinnedEntry(modelEtag));
    await until('posix removed', () => entry('posix'), (x) => x === undefined);
  });

  it('never shows the secret in status or logs', async () => {
    const st = JSON.stringify(await status());
    expect(st).not.toContain(s.secretAccessKey);
    expect(st).not.toContain('not-the-secret');
    const log = await readFile(logFile, 'utf8');
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(s.secretAccessKey);
    expect(log).not.toContain('not-the-secret');
  });
});
