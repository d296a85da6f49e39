// The verbs and rules of #18 through the real CLI (in-process) on RGW: datasets named by name, versions that
// start from another, empty commits, latest and tags in `versions list`, deleting datasets, versions and
// providers (with confirmation), `files get` that will not overwrite, and gc. Outcomes are checked where they
// land: files on disk, exit codes, JSON, objects in the bucket.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { run } from '../../../src/cli/main.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { Capture, runCli } from '../../helpers/cli.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';
import { writeTree } from '../../helpers/tree.js';

describe('gradient datasets: the verbs and rules of #18', () => {
  let home: string;
  let bucket: string;
  let env: NodeJS.ProcessEnv;
  let sp = '';

  const gradient = (...args: string[]) => runCli(args, env);
  async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
    const r = await gradient('--json', ...args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  }
  /** Every key in the bucket under a prefix. */
  async function keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return out;
  }
  /** A dataset on RGW with one committed version of `files`; returns ids. */
  async function datasetWith(name: string, files: Record<string, string>): Promise<{ ds: string; v: string }> {
    const ds = (await json<{ id: string }>('datasets', 'create', '--name', name, '--storageProviderId', sp)).id;
    const v = (await json<{ id: string }>('datasets', 'versions', 'create', '--id', ds)).id;
    const src = await writeTree(await mkdtemp(path.join(home, 'src-')), files);
    expect((await gradient('datasets', 'files', 'put', '--id', `${ds}:${v}`, '--source-path', src)).code).toBe(0);
    expect((await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v}`)).code).toBe(0);
    return { ds, v };
  }

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'gd-verbs-'));
    bucket = await freshBucket('verbs');
    env = { HOME: home, PATH: process.env.PATH, GRADIENT_SECRETS_DIR: path.join(home, 'secrets'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const s = s3Server();
    const r = await gradient('--json', 'storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', bucket,
      '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint);
    expect(r.code, r.stderr).toBe(0);
    sp = (JSON.parse(r.stdout) as { id: string }).id;
  });
  afterAll(async () => {
    await emptyAndDeleteBucket(bucket);
    await rm(home, { recursive: true, force: true });
  });

  it('names a dataset by its name when no other has it; warns on a second one; an ambiguous name lists the ids', async () => {
    const { ds } = await datasetWith('by-name', { 'a.txt': 'A' });
    expect((await json<Array<{ path: string }>>('datasets', 'files', 'list', '--id', 'by-name:latest')).map((f) => f.path)).toEqual(['a.txt']);
    expect((await json<{ id: string }>('datasets', 'details', '--id', 'by-name')).id).toBe(ds);
    const v = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', 'by-name')).ref;
    expect(v.startsWith(`${ds}:`)).toBe(true);

    const second = await gradient('datasets', 'create', '--name', 'by-name', '--storageProviderId', sp);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`warning: 1 dataset already has the name "by-name" (${ds})`);
    const other = second.stdout.trim().split(': ')[1]!;
    const ambiguous = await gradient('datasets', 'versions', 'list', '--id', 'by-name');
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain(`2 datasets are named "by-name" (`);
    expect(ambiguous.stderr).toContain(ds);
    expect(ambiguous.stderr).toContain(other);
    expect((await gradient('datasets', 'files', 'list', '--id', 'no-such-name:latest')).code).toBe(3);
  });

  it('versions create --from starts a version with the files of another, copying no data', async () => {
    const { ds, v } = await datasetWith('from', { 'a.txt': 'A', 'b.txt': 'B', 'nested/c.txt': 'C' });
    const blobs = await keys('default/blobs/');
    const created = await json<{ id: string; ref: string; from: string; fileCount: number }>(
      'datasets', 'versions', 'create', '--id', ds, '--from', `${ds}:latest`, '--message', 'second',
    );
    expect(created).toMatchObject({ from: `${ds}:${v}`, fileCount: 3, message: 'second' });
    expect(await keys(`default/datasets/${ds}/versions/${created.id}/journal/`)).toHaveLength(1);
    const human = await gradient('datasets', 'versions', 'create', '--id', ds, '--from', `${ds}:${v}`);
    expect(human.stdout).toMatch(new RegExp(`^Created dataset version: ${ds}:[a-z0-9]{7} \\(from ${ds}:${v}, 3 files\\)\\n$`));

    // It is an ordinary uncommitted version from here on.
    const src = await writeTree(path.join(home, 'from-new'), { 'd.txt': 'D' });
    expect((await gradient('datasets', 'files', 'put', '--id', created.ref, '--source-path', src)).code).toBe(0);
    expect((await gradient('datasets', 'files', 'delete', '--id', `${created.ref}/a.txt`)).code).toBe(0);
    expect((await gradient('datasets', 'versions', 'commit', '--id', created.ref)).code).toBe(0);
    const paths = async (ref: string) => (await json<Array<{ path: string }>>('datasets', 'files', 'list', '--id', ref, '--recursive')).map((f) => f.path);
    expect(await paths(`${ds}:latest`)).toEqual(['b.txt', 'd.txt', 'nested/c.txt']);
    expect(await paths(`${ds}:${v}`)).toEqual(['a.txt', 'b.txt', 'nested/c.txt']);
    // one new blob (d.txt): the three copied files' contents were not uploaded again
    expect((await keys('default/blobs/')).length).toBe(blobs.length + 1);
  });

  it('refuses to commit an empty version unless --allow-empty; the version stays writable', async () => {
    const ds = (await json<{ id: string }>('datasets', 'create', '--name', 'empty', '--storageProviderId', sp)).id;
    const v = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', ds)).ref;
    const refused = await gradient('datasets', 'versions', 'commit', '--id', v);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(`dataset version ${v} has no files: put some with`);
    expect(refused.stderr).toContain('--allow-empty');
    expect((await json<Array<{ state: string }>>('datasets', 'versions', 'list', '--id', ds))[0]!.state).toBe('uncommitted');
    const ok = await json<{ fileCount: number }>('datasets', 'versions', 'commit', '--id', v, '--allow-empty');
    expect(ok.fileCount).toBe(0);
  });

  it('versions list marks the version latest names and where each tag points', async () => {
    const { ds, v } = await datasetWith('marks', { 'a.txt': 'A' });
    const v2 = (await json<{ id: string }>('datasets', 'versions', 'create', '--id', ds, '--from', `${ds}:${v}`)).id;
    await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v2}`);
    await gradient('datasets', 'tags', 'set', '--id', `${ds}:${v}`, '--name', 'golden');
    await gradient('datasets', 'tags', 'set', '--id', `${ds}:${v}`, '--name', 'prod');
    const list = await json<Array<{ id: string; latest: boolean; tags: string[] }>>('datasets', 'versions', 'list', '--id', ds);
    expect(list.map((x) => [x.id, x.latest, x.tags])).toEqual([[v, false, ['golden', 'prod']], [v2, true, []]]);
    const table = (await gradient('datasets', 'versions', 'list', '--id', ds)).stdout;
    expect(table).toMatch(/\| ID +\| Message \| State +\| Files \| Size +\| Latest \| Tags +\|/);
    expect(table).toMatch(new RegExp(`\\| ${v2} \\|[^\\n]*\\| yes +\\| +\\|`));
    expect(table).toMatch(new RegExp(`\\| ${v} +\\|[^\\n]*\\| +\\| golden, prod \\|`));
  });

  it('versions delete: uncommitted freely, committed or tagged only with --force; --yes without a terminal', async () => {
    const { ds, v } = await datasetWith('deletions', { 'a.txt': 'A' });
    const wip = (await json<{ id: string }>('datasets', 'versions', 'create', '--id', ds)).id;

    const noTty = await gradient('datasets', 'versions', 'delete', '--id', `${ds}:${wip}`);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toContain(`refusing to delete uncommitted dataset version ${ds}:${wip} without confirmation: pass --yes`);
    const gone = await json<{ ref: string; state: string; deleted: boolean; objects: number }>('datasets', 'versions', 'delete', '--id', `${ds}:${wip}`, '--yes');
    expect(gone).toMatchObject({ ref: `${ds}:${wip}`, state: 'uncommitted', deleted: true, tags: [] });
    expect(await keys(`default/datasets/${ds}/versions/${wip}/`)).toEqual([]);

    // v is committed and `latest`; tag it, and make a newer one so that latest must fall back.
    await gradient('datasets', 'tags', 'set', '--id', `${ds}:${v}`, '--name', 'keep');
    const committed = await gradient('datasets', 'versions', 'delete', '--id', `${ds}:${v}`, '--yes');
    expect(committed.code).toBe(4);
    expect(committed.stderr).toContain(`dataset version ${ds}:${v} is committed: delete it anyway with --force`);
    const v2 = (await json<{ id: string }>('datasets', 'versions', 'create', '--id', ds, '--from', `${ds}:${v}`)).id;
    await gradient('datasets', 'versions', 'commit', '--id', `${ds}:${v2}`);
    await gradient('datasets', 'tags', 'set', '--id', `${ds}:${v2}`, '--name', 'newer');
    const tagged = await gradient('datasets', 'versions', 'delete', '--id', `${ds}:${v2}`, '--yes');
    expect(tagged.code).toBe(4);
    const forced = await gradient('datasets', 'versions', 'delete', '--id', `${ds}:${v2}`, '--force', '--yes');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toBe(`Deleted dataset version: ${ds}:${v2} (and tag newer)\n`);
    expect(await keys(`default/datasets/${ds}/versions/${v2}/`)).toEqual([]);
    expect(await keys(`default/datasets/${ds}/tags/newer.json`)).toEqual([]);
    const after = await json<Array<{ id: string; latest: boolean; tags: string[] }>>('datasets', 'versions', 'list', '--id', ds);
    expect(after).toMatchObject([{ id: v, latest: true, tags: ['keep'] }]);
    expect((await gradient('datasets', 'versions', 'delete', '--id', `${ds}:${v2}`, '--yes')).code).toBe(3);
  });

  it('asks on a terminal before deleting: "n" keeps the dataset, "y" deletes it and every object of it', async () => {
    const { ds } = await datasetWith('asked', { 'a.txt': 'A' });
    const atTerminal = async (answer: string, ...args: string[]) => {
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      const stdout = new Capture();
      const stderr = Object.assign(new Capture(), { isTTY: true });
      stdin.end(`${answer}\n`);
      const code = await run(args, { stdin, stdout, stderr, env });
      return { code, stdout: stdout.text, stderr: stderr.text };
    };
    const no = await atTerminal('n', 'datasets', 'delete', '--id', ds);
    expect(no.stderr).toContain(`Delete dataset asked (${ds}) and its 1 version? [y/N] `);
    expect(no.code).toBe(4);
    expect((await keys(`default/datasets/${ds}/`)).length).toBeGreaterThan(0);
    const yes = await atTerminal('y', 'datasets', 'delete', '--id', 'asked');
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toBe(`Deleted dataset: ${ds} (asked, 1 version); \`gradient datasets gc\` frees its file contents\n`);
    expect(await keys(`default/datasets/${ds}/`)).toEqual([]);
    expect((await gradient('datasets', 'details', '--id', ds)).code).toBe(3);
    const scripted = await datasetWith('scripted', { 'a.txt': 'A' });
    expect(await json('datasets', 'delete', '--id', scripted.ds, '--yes')).toEqual({ datasetId: scripted.ds, name: 'scripted', versions: 1, objects: expect.any(Number), deleted: true });
  });

  it('files get refuses to overwrite local files unless --force', async () => {
    const { ds } = await datasetWith('no-clobber', { 'a.txt': 'from the dataset', 'sub/b.txt': 'B' });
    const out = path.join(home, 'no-clobber-out');
    expect((await gradient('datasets', 'files', 'get', '--id', `${ds}:latest`, '--target-path', out)).code).toBe(0);
    await writeFile(path.join(out, 'a.txt'), 'my local edit');
    await rm(path.join(out, 'sub'), { recursive: true });
    const refused = await gradient('datasets', 'files', 'get', '--id', `${ds}:latest`, '--target-path', out);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(`"${path.join(out, 'a.txt')}" exists: nothing was downloaded; pass --force to overwrite`);
    expect(await readFile(path.join(out, 'a.txt'), 'utf8')).toBe('my local edit');
    expect(await stat(path.join(out, 'sub')).then(() => true, () => false)).toBe(false);
    const forced = await json<{ files: number }>('datasets', 'files', 'get', '--id', `${ds}:latest`, '--target-path', out, '--force');
    expect(forced.files).toBe(2);
    expect(await readFile(path.join(out, 'a.txt'), 'utf8')).toBe('from the dataset');
  });

  it('gc removes the contents only deleted versions named, --dry-run first; the rest still reads back', async () => {
    const { ds, v } = await datasetWith('gc', { 'keep.txt': 'kept by v', 'shared.txt': 'shared' });
    const wip = (await json<{ ref: string }>('datasets', 'versions', 'create', '--id', ds)).ref;
    const src = await writeTree(path.join(home, 'gc-src'), { 'doomed-1.bin': 'x'.repeat(1000), 'doomed-2.bin': 'y'.repeat(2000), 'shared.txt': 'shared' });
    await gradient('datasets', 'files', 'put', '--id', wip, '--source-path', src);
    const before = await keys('default/blobs/');
    await json('datasets', 'versions', 'delete', '--id', wip, '--yes');

    const dry = await json<{ dryRun: boolean; removed: number; removedBytes: number; stores: Array<{ location: string; removed: Array<{ sha256: string; bytes: number }> }> }>(
      'datasets', 'gc', '--dry-run', '--grace', '0',
    );
    expect(dry).toMatchObject({ dryRun: true, removed: 2, removedBytes: 3000 });
    expect(await keys('default/blobs/')).toEqual(before);
    const human = await gradient('datasets', 'gc', '--dry-run', '--grace', '0', '--storageProviderId', sp);
    expect(human.stdout).toMatch(new RegExp(`^Would remove 2 blobs \\(2\\.9 KiB\\) of ${before.length} from s3://${bucket}/ \\(.*\\); kept ${before.length - 2} named by versions and 0 younger than 0ms\\n$`));
    expect(human.stderr).toContain('warning: --grace 0 is below 1 h');

    expect((await gradient('datasets', 'gc', '--grace', '0')).code).toBe(2); // no terminal, no --yes
    const young = await json<{ removed: number }>('datasets', 'gc', '--yes'); // default grace: everything is younger
    expect(young.removed).toBe(0);
    const done = await json<{ removed: number; stores: Array<{ removed: Array<{ sha256: string }> }> }>('datasets', 'gc', '--grace', '0', '--yes');
    expect(done.removed).toBe(2);
    const left = await keys('default/blobs/');
    expect(left.length).toBe(before.length - 2);
    for (const { sha256 } of done.stores.flatMap((st) => st.removed)) expect(left.some((k) => k.endsWith(sha256))).toBe(false);
    const out = path.join(home, 'gc-out');
    expect((await gradient('datasets', 'files', 'get', '--id', `${ds}:${v}`, '--target-path', out)).code).toBe(0);
    expect(await readFile(path.join(out, 'shared.txt'), 'utf8')).toBe('shared');
  });

  it('storageProviders delete: refused while datasets live in it; removes the entry and its saved secret', async () => {
    const s = s3Server();
    const other = await freshBucket('verbs-sp');
    try {
      const created = await json<{ id: string; secretAccessKey: string }>('storageProviders', 'create', 's3', '--name', 'second', '--bucket', other,
        '--accessKey', s.accessKeyId, '--secretAccessKey', s.secretAccessKey, '--endpoint', s.endpoint);
      const secretFile = path.join(home, 'secrets', created.secretAccessKey.slice('secret:'.length));
      await stat(secretFile);
      const ds = (await json<{ id: string }>('datasets', 'create', '--name', 'in-second', '--storageProviderId', created.id)).id;

      const refused = await gradient('storageProviders', 'delete', '--id', created.id, '--yes');
      expect(refused.code).toBe(4);
      expect(refused.stderr).toContain(`second (${created.id}) holds 1 dataset (in-second ${ds}): delete it first, or pass --force`);
      expect((await gradient('storageProviders', 'delete', '--id', created.id)).code).toBe(4); // checked before asking
      await json('datasets', 'delete', '--id', ds, '--yes');
      expect((await gradient('storageProviders', 'delete', '--id', created.id)).code).toBe(2); // no terminal, no --yes
      const gone = await json('storageProviders', 'delete', '--id', created.id, '--yes');
      expect(gone).toEqual({ id: created.id, name: 'second', deleted: true, secretRemoved: true });
      expect(await stat(secretFile).then(() => true, () => false)).toBe(false);
      const config = YAML.parse(await readFile(path.join(home, '.config', 'gradient', 'config.yaml'), 'utf8')) as { storageProviders: Array<{ id: string }> };
      expect(config.storageProviders.map((p) => p.id)).toEqual([sp]);
      expect((await json<Array<{ id: string }>>('storageProviders', 'list')).map((p) => p.id)).toEqual(['managed', sp]);
      expect((await gradient('storageProviders', 'delete', '--id', created.id, '--yes')).code).toBe(3);
      expect((await gradient('storageProviders', 'delete', '--id', 'managed', '--yes')).code).toBe(2);
    } finally {
      await emptyAndDeleteBucket(other);
    }
  });
});
