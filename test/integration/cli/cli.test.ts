// The `gradient` CLI run in-process (run() with captured stdout/stderr) against RGW and the local store:
// real output, real exit codes, real objects in the bucket.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';
import { sampleTree, writeTree } from '../../helpers/tree.js';
import { runCli } from '../../helpers/cli.js';
import { StatusServer } from '../../../src/daemon/status-server.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';


describe('gradient CLI', () => {
  let home: string;
  let bucket: string;
  let env: NodeJS.ProcessEnv;

  async function gradient(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli(args, env);
  }
  async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
    const r = await gradient('--json', ...args);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  }

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'gd-cli-'));
    bucket = await freshBucket('cli');
    // Everything the CLI touches lives under this temp HOME: config, secrets, the managed local store.
    env = {
      HOME: home,
      PATH: process.env.PATH,
      GRADIENT_SECRETS_DIR: path.join(home, 'secrets'),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
  });
  afterAll(async () => {
    await emptyAndDeleteBucket(bucket);
    await rm(home, { recursive: true, force: true });
  });

  it('connects an S3 provider, keeping the secret out of the config file and the output', async () => {
    const s = s3Server();
    const r = await gradient(
      'storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket,
      '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Created storage provider: spl[a-z0-9]{12}\n$/);
    const configText = await readFile(path.join(home, '.config', 'gradient', 'config.yaml'), 'utf8');
    expect(configText).not.toContain(s.secretAccessKey);
    const config = YAML.parse(configText) as { storageProviders: Array<{ secretAccessKey: string; id: string }> };
    const secretRef = config.storageProviders[0]!.secretAccessKey;
    expect(secretRef).toMatch(/^secret:spl/);
    const secretFile = path.join(home, 'secrets', secretRef.slice('secret:'.length));
    expect(((await stat(secretFile)).mode & 0o777).toString(8)).toBe('600');
    const list = await gradient('storageProviders', 'list');
    expect(list.stdout).toContain('| Gradient Managed | managed');
    expect(list.stdout).toContain(`s3://${bucket}/`);
    expect(list.stdout + list.stderr).not.toContain(s.secretAccessKey);
  });

  it('runs the dataset lifecycle on S3 and leaves the objects in the bucket', async () => {
    const providers = await json<Array<{ id: string; type: string }>>('storageProviders', 'list');
    const sp = providers.find((p) => p.type === 's3')!.id;
    const created = await gradient('datasets', 'create', '--name', 'democli', '--storageProviderId', sp);
    expect(created.stdout).toMatch(/^Created dataset: ds[a-z0-9]{13}\n$/);
    const ds = created.stdout.trim().split(': ')[1]!;
    // the dataset record is an object in the provider's bucket, under the team folder
    await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: `default/datasets/${ds}/dataset.json` }));

    const list = await gradient('datasets', 'list');
    expect(list.stdout).toContain(`| democli | ${ds} | rgw (${sp}) |`);
    const details = await gradient('datasets', 'details', `--id=${ds}`);
    expect(details.stdout).toContain(`| ID              | ${ds}`);

    const v = await gradient('datasets', 'versions', 'create', '--id', ds, '--message', 'first');
    expect(v.stdout).toMatch(new RegExp(`^Created dataset version: ${ds}:[a-z0-9]{7}\\n$`));
    const ref = v.stdout.trim().split(': ')[1]!;
    const src = await writeTree(path.join(home, 'src'), sampleTree());
    const put = await gradient('datasets', 'files', 'put', '--id', ref, '--source-path', src);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain(`Uploaded 5 files`);
    expect((await gradient('datasets', 'versions', 'commit', '--id', ref)).stdout).toBe(`Committed dataset version: ${ref}\n`);

    const files = await gradient('datasets', 'files', 'list', `--id=${ref}`);
    expect(files.stdout).toContain('| hello.txt | 12   |');
    expect(files.stdout).toContain('| nested/   |');
    const nested = await gradient('datasets', 'files', 'list', '--id', `${ds}:latest/nested/with space`);
    expect(nested.stdout).toContain('naïve – ünïcødé 🐱.txt | 8');

    expect((await gradient('datasets', 'tags', 'set', '--id', ref, '--name', 'prod')).code).toBe(0);
    expect((await json<Array<{ tag: string }>>('datasets', 'tags', 'list', '--id', ds)).map((t) => t.tag)).toEqual(['prod']);
    const out = path.join(home, 'download');
    const got = await gradient('datasets', 'files', 'get', '--id', `${ds}:prod`, '--target-path', out);
    expect(got.code, got.stderr).toBe(0);
    expect(await readFile(path.join(out, 'nested', 'deeper', 'data.csv'), 'utf8')).toBe('a,b\n1,2\n');
    expect((await stat(path.join(out, 'empty.bin'))).size).toBe(0);
    expect((await gradient('datasets', 'tags', 'delete', '--id', ds, '--name', 'prod')).stdout).toBe('Deleted tag: prod\n');

    const versions = await json<Array<{ state: string; fileCount: number }>>('datasets', 'versions', 'list', '--id', ds);
    expect(versions).toMatchObject([{ state: 'committed', fileCount: 5 }]);

    // writing to the committed version is refused: exit code 4 and a message that says what to do
    const refused = await gradient('datasets', 'files', 'put', '--id', ref, '--source-path', src);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(`${ref} is committed and cannot be changed: create a new version`);
  });

  it('uses the managed local store by default', async () => {
    const ds = (await json<{ id: string }>('datasets', 'create', '--name', 'local-one')).id;
    const v = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', ds)).ref;
    const src = await writeTree(path.join(home, 'small'), { 'a.txt': 'A' });
    expect((await gradient('datasets', 'files', 'put', '--id', v, '--source-path', path.join(src, 'a.txt'), '--target-path', 'x/y.txt')).code).toBe(0);
    expect((await json<Array<{ path: string }>>('datasets', 'files', 'list', '--id', v, '--recursive')).map((f) => f.path)).toEqual(['x/y.txt']);
    await stat(path.join(home, '.local', 'share', 'gradient', 'store', 'default.d', 'datasets.d', `${ds}.d`));
  });

  it('gives a clear error and a reliable exit code for every bad input', async () => {
    const ds = (await json<{ id: string }>('datasets', 'create', '--name', 'bad-inputs')).id;
    const v = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', ds)).ref;
    const cases: Array<[string[], number, RegExp]> = [
      [['datasets', 'files', 'list', '--id', 'no-colon'], 2, /bad reference "no-colon": expected <dataset-id>:<version-id\|tag\|latest>/],
      [['datasets', 'details', '--id', 'dsnope'], 3, /dataset "dsnope" not found/],
      [['datasets', 'versions', 'commit', '--id', `${ds}:zzzzzzz`], 3, /not found/],
      [['datasets', 'files', 'list', '--id', `${ds}:latest`], 3, /no committed version yet/],
      [['datasets', 'files', 'put', '--id', v, '--source-path', path.join(home, 'missing')], 2, /source path ".*missing" does not exist/],
      [['datasets', 'files', 'put', '--id', v], 2, /required option '--source-path <path>' not specified/],
      [['datasets', 'create', '--name', 'x', '--storageProviderId', 'nope'], 3, /unknown storage provider "nope"/],
      [['datasets', 'frobnicate'], 2, /unknown command 'frobnicate'/],
      [['datasets', 'tags', 'set', '--id', v, '--name', 'latest'], 2, /bad tag name "latest"/],
      [['datasets', 'tags', 'set', '--id', v, '--name', 'ok'], 4, /not committed/],
      [['datasets', 'files', 'put', '--id', v, '--source-path', home, '--parallel', '0'], 2, /--parallel must be/],
    ];
    for (const [args, code, re] of cases) {
      const r = await gradient(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(re);
    }
  });

  it('reports bad credentials (exit 5) and an unreachable endpoint (exit 6), naming bucket and endpoint', async () => {
    const s = s3Server();
    const bad = await gradient(
      'storageProviders', 'create', 's3', '--name', 'badcreds', '--bucket', bucket,
      '--accessKey', s.accessKeyId, '--secretAccessKey', 'definitely-wrong-secret', '--endpoint', s.endpoint,
    );
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain(`bucket "${bucket}"`);
    expect(bad.stderr).toContain('check the access key id and secret access key');
    expect(bad.stderr).not.toContain('definitely-wrong-secret');
    const down = await gradient(
      'storageProviders', 'create', 's3', '--name', 'down', '--bucket', bucket,
      '--accessKey', 'AK', '--secretAccessKey', 'SK', '--endpoint', 'http://127.0.0.1:9',
    );
    expect(down.code).toBe(6);
    expect(down.stderr).toContain('cannot reach S3 endpoint http://127.0.0.1:9');
    // neither was saved
    expect((await json<unknown[]>('storageProviders', 'list')).length).toBe(2);
  });

  it('registers the daemon\'s status command and passes its exit code through', async () => {
    // 6 = unavailable: no daemon answers on the socket.
    const r = await gradient('status', '--socket', path.join(home, 'no-daemon.sock'));
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('no daemon is running on');
  });

  it('prints status as JSON with --json before or after the command (#18 bug 1)', async () => {
    const socketPath = path.join(home, 'fake-daemon.sock');
    const status: DaemonStatus = {
      version: 1, pid: 1, startedAt: new Date(0).toISOString(), phase: 'ready', ready: true, mountpoint: '/datasets',
      settings: { file: 's.yaml', state: 'ok', lastError: null, appliedAt: null },
      mounts: [], cache: null, uploads: [], requests: { fuse: {}, store: {} }, fatalError: null,
    };
    const server = new StatusServer({ socketPath, provider: { status: () => status, refresh: async () => undefined } });
    await server.listen();
    try {
      for (const args of [['status', '--json', '--socket', socketPath], ['--json', 'status', '--socket', socketPath]]) {
        const r = await gradient(...args);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(JSON.parse(r.stdout), args.join(' ')).toMatchObject({ phase: 'ready', mounts: [] });
      }
      for (const args of [['mount', '--refresh', '--json', '--socket', socketPath], ['--json', 'mount', '--refresh', '--socket', socketPath]]) {
        expect(JSON.parse((await gradient(...args)).stdout), args.join(' ')).toMatchObject({ phase: 'ready' });
      }
      expect(JSON.parse((await gradient('storageProviders', 'list', '--json')).stdout)[0].id).toBe('managed');
    } finally {
      await server.close();
    }
  });

  it('refuses a provider the config schema would reject, and writes nothing (#18 bug 2)', async () => {
    const cfg = path.join(home, 'short-bucket.yaml');
    const r = await gradient('--config', cfg, 'storageProviders', 'create', 's3', '--name', 'a', '--bucket', 'ab', '--no-verify');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/bucket: .*at least 3/i);
    expect(await stat(cfg).then(() => true, () => false)).toBe(false);
    // an existing file stays as it was, and every later command still reads it
    const ok = await gradient('--config', cfg, 'storageProviders', 'create', 's3', '--name', 'good', '--bucket', bucket, '--no-verify');
    expect(ok.code, ok.stderr).toBe(0);
    const before = await readFile(cfg, 'utf8');
    expect((await gradient('--config', cfg, 'storageProviders', 'create', 's3', '--name', 'b', '--bucket', 'ab', '--no-verify')).code).toBe(2);
    expect((await gradient('--config', cfg, 'storageProviders', 'create', 's3', '--name', 'c', '--bucket', bucket, '--endpoint', 'http://user:pw@host', '--no-verify')).code).toBe(2);
    expect(await readFile(cfg, 'utf8')).toBe(before);
    expect((await gradient('--config', cfg, 'storageProviders', 'list')).code).toBe(0);
  });

  it('refuses an explicit config path that does not exist, naming it (#18 bug 6)', async () => {
    const missing = path.join(home, 'no', 'such', 'config.yaml');
    const viaFlag = await gradient('--config', missing, 'datasets', 'list');
    expect(viaFlag.code).toBe(7);
    expect(viaFlag.stderr).toContain(`config file ${missing} does not exist`);
    const saved = env;
    env = { ...env, GRADIENT_CONFIG: missing };
    try {
      const viaEnv = await gradient('storageProviders', 'list');
      expect(viaEnv.code).toBe(7);
      expect(viaEnv.stderr).toContain(`config file ${missing} does not exist (GRADIENT_CONFIG)`);
      const mount = await gradient('mount', '--socket', path.join(home, 'x.sock'), '--mountpoint', path.join(home, 'x-mnt'));
      expect(mount.code).toBe(7);
      expect(mount.stderr).toContain(missing);
    } finally {
      env = saved;
    }
    // the default location may be absent: defaults apply
    expect((await gradient('--json', 'storageProviders', 'list')).code).toBe(0);
  });

  it('says "1 file", not "1 files" (#18 bug 8)', async () => {
    const ds = (await json<{ id: string }>('datasets', 'create', '--name', 'plurals')).id;
    const v = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', ds)).ref;
    const src = await writeTree(path.join(home, 'one'), { 'only.txt': 'x' });
    const put = await gradient('datasets', 'files', 'put', '--id', v, '--source-path', src);
    expect(put.stdout).toMatch(/^Uploaded 1 file \(1 B; 1 new, 1 B\) to /);
    const got = await gradient('datasets', 'files', 'get', '--id', v, '--target-path', path.join(home, 'one-out'));
    expect(got.stdout).toMatch(/^Downloaded 1 file \(1 B\) to /);
    const del = await gradient('datasets', 'files', 'delete', '--id', `${v}/only.txt`);
    expect(del.stdout).toBe(`Deleted 1 file from ${v}/only.txt\n`);
  });

  it('lists datasets from the providers that answer and warns about one that does not', async () => {
    const cfg = path.join(home, 'with-down.yaml');
    const add = await gradient('--config', cfg, 'storageProviders', 'create', 's3', '--name', 'down', '--bucket', bucket,
      '--endpoint', 'http://127.0.0.1:9', '--accessKey', 'AK', '--secretAccessKey', 'secret:nope', '--no-verify');
    expect(add.code, add.stderr).toBe(0);
    expect((await gradient('--config', cfg, 'datasets', 'create', '--name', 'still-here')).code).toBe(0);
    const list = await gradient('--config', cfg, 'datasets', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('still-here');
    expect(list.stderr).toMatch(/warning: storage provider "down" .*secret "nope" not found/);
    // found by its name among the providers that answer
    const details = await gradient('--config', cfg, '--json', 'datasets', 'details', '--id', 'still-here');
    expect(details.code, details.stderr).toBe(0);
    expect(JSON.parse(details.stdout)).toMatchObject({ name: 'still-here' });
  });

  it('honours --config and GRADIENT_CONFIG', async () => {
    const alt = path.join(home, 'alt.yaml');
    const r = await gradient('--config', alt, 'storageProviders', 'create', 's3', '--name', 'alt', '--bucket', bucket, '--no-verify');
    expect(r.code, r.stderr).toBe(0);
    const viaEnv = await (async () => {
      const saved = env;
      env = { ...env, GRADIENT_CONFIG: alt };
      try {
        return await json<Array<{ name: string }>>('storageProviders', 'list');
      } finally {
        env = saved;
      }
    })();
    expect(viaEnv.map((p) => p.name)).toEqual(['Gradient Managed', 'alt']);
  });

  it('the built entry point runs as a program', async () => {
    const entry = path.resolve('dist/cli/main.js');
    const exists = await stat(entry).then(() => true, () => false);
    if (!exists) return; // `npm run build:ts` first; covered in-process above
    const { stdout } = await promisify(execFile)(process.execPath, [entry, '--json', 'storageProviders', 'list'], { env });
    expect(JSON.parse(stdout)[0].id).toBe('managed');
  });
});
