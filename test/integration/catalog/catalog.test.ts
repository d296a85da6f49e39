// The catalog against both real backends: the S3 store on RGW (through a counting proxy, to count the
// real PUTs on the wire) and the local store in a temp dir.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../../src/catalog/catalog.js';
import { isCatalogError } from '../../../src/catalog/errors.js';
import { putFiles } from '../../../src/catalog/put.js';
import { getFiles } from '../../../src/catalog/get.js';
import type { StorageProvider } from '../../../src/config/config-file.js';
import type { ObjectStore } from '../../../src/storage/object-store.js';
import { openStore } from '../../../src/catalog/providers.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';
import { sampleTree, writeTree } from '../../helpers/tree.js';
import { readFile } from 'node:fs/promises';

interface Backend {
  provider: StorageProvider;
  /** Blob uploads so far (S3: PUT requests seen on the wire; local: writes seen by a counting wrapper). */
  blobPuts(): number;
  cleanup(): Promise<void>;
  openStore?: (p: StorageProvider) => ObjectStore;
}

async function s3Backend(): Promise<Backend> {
  const bucket = await freshBucket('catalog');
  const proxy: FaultProxy = await startFaultProxy(s3Server().endpoint);
  const s = s3Server();
  return {
    provider: {
      id: 'sp1',
      name: 'rgw',
      type: 's3',
      bucket,
      endpoint: proxy.endpoint,
      accessKey: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
    },
    blobPuts: () => proxy.requests.filter((r) => /^(PUT|POST) \/[^/]+\/team1\/blobs\//.test(r) && !r.includes('uploadId=')).length,
    cleanup: async () => {
      await proxy.close();
      await emptyAndDeleteBucket(bucket);
    },
  };
}

async function localBackend(): Promise<Backend> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gd-catalog-store-'));
  let puts = 0;
  return {
    provider: { id: 'sp1', name: 'local', type: 'local', path: dir },
    blobPuts: () => puts,
    openStore: (p) => {
      const inner = openStore(p);
      return new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'write') {
            return (key: string, ...rest: unknown[]) => {
              if (key.startsWith('team1/blobs/')) puts++;
              return (target.write as (...a: unknown[]) => unknown).call(target, key, ...rest);
            };
          }
          return Reflect.get(target, prop, receiver);
        },
      });
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

for (const [name, makeBackend] of [
  ['S3 (RGW)', s3Backend],
  ['local store', localBackend],
] as const) {
  describe(`catalog on ${name}`, () => {
    let backend: Backend;
    let tmp: string;
    const client = () =>
      new Catalog({ teamId: 'team1', providers: [backend.provider], managedProviderId: 'sp1', openStore: backend.openStore });

    beforeAll(async () => {
      backend = await makeBackend();
      tmp = await mkdtemp(path.join(tmpdir(), 'gd-catalog-'));
    });
    afterAll(async () => {
      await backend.cleanup();
      await rm(tmp, { recursive: true, force: true });
    });

    it('runs the whole lifecycle: create → version → put → commit → list → tag → latest moves', async () => {
      const cat = client();
      const ds = await cat.createDataset({ name: 'lifecycle', description: 'd' });
      expect((await cat.listDatasets()).datasets.map((d) => d.id)).toContain(ds.id);
      const v1 = await cat.createVersion(ds.id, 'first');
      const tree: Record<string, string | Buffer> = { ...sampleTree(), 'big/hundred.bin': randomBytes(100 * 1024 * 1024) };
      const src = await writeTree(path.join(tmp, 'life'), tree);
      const put = await putFiles(cat, `${ds.id}:${v1.id}`, src);
      expect(put.files).toBe(Object.keys(tree).length);
      expect(await cat.versionState(ds.id, v1.id)).toBe('uncommitted');
      const c1 = await cat.commitVersion(ds.id, v1.id);
      expect(c1.fileCount).toBe(Object.keys(tree).length);

      const r = await cat.resolve(`${ds.id}:latest`);
      expect(r.versionId).toBe(v1.id);
      expect(r.manifest.files.map((f) => f.path)).toEqual(Object.keys(tree).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      for (const f of r.manifest.files) {
        expect(f.sha256).toBe(sha(Buffer.from(tree[f.path]!)));
        expect(f.size).toBe(Buffer.byteLength(tree[f.path]!));
      }
      const uni = r.manifest.files.find((f) => f.path.includes('🐱'))!;
      expect((await r.store.read(r.blobKey(uni))).toString()).toBe('unicode!');

      await cat.setTag(ds.id, v1.id, 'golden');
      expect((await cat.resolve(`${ds.id}:golden`)).versionId).toBe(v1.id);
      expect((await cat.listFiles(`${ds.id}:golden/nested/with space`)).files).toHaveLength(1);

      // the next commit moves latest, the tag stays
      const v2 = await cat.createVersion(ds.id, 'second');
      await putFiles(cat, `${ds.id}:${v2.id}`, path.join(src, 'hello.txt'), { targetPath: 'only/' });
      await cat.commitVersion(ds.id, v2.id);
      expect((await cat.resolve(`${ds.id}:latest`)).versionId).toBe(v2.id);
      expect((await cat.resolve(`${ds.id}:golden`)).versionId).toBe(v1.id);
      expect((await cat.listFiles(`${ds.id}:latest`)).files.map((f) => f.path)).toEqual(['only/hello.txt']);
      expect((await cat.listVersions(ds.id)).map((v) => [v.id, v.state, v.tags])).toEqual([
        [v1.id, 'committed', ['golden']],
        [v2.id, 'committed', []],
      ]);

      // download round trip, byte for byte
      const out = path.join(tmp, 'life-out');
      await getFiles(cat, `${ds.id}:golden/nested`, out);
      expect(await readFile(path.join(out, 'with space', 'naïve – ünïcødé 🐱.txt'), 'utf8')).toBe('unicode!');
      expect((await readFile(path.join(out, 'random.bin'))).equals(tree['nested/random.bin'] as Buffer)).toBe(true);
      await rm(path.join(src, 'big'), { recursive: true });
      cat.close();
    });

    it('a new version re-uploads only the changed files (counting the PUTs)', async () => {
      const cat = client();
      const ds = await cat.createDataset({ name: 'dedup' });
      const files: Record<string, Buffer> = {};
      for (let i = 0; i < 20; i++) files[`f${i}.bin`] = randomBytes(2048 + i);
      files['large.bin'] = randomBytes(3 * 1024 * 1024);
      const src = await writeTree(path.join(tmp, 'dedup'), files);
      const v1 = await cat.createVersion(ds.id);
      const before = backend.blobPuts();
      await putFiles(cat, `${ds.id}:${v1.id}`, src);
      expect(backend.blobPuts() - before).toBe(21);
      await cat.commitVersion(ds.id, v1.id);

      await writeFile(path.join(src, 'f3.bin'), randomBytes(100)); // one file changes
      const v2 = await cat.createVersion(ds.id);
      const mid = backend.blobPuts();
      const res = await putFiles(cat, `${ds.id}:${v2.id}`, src);
      expect(backend.blobPuts() - mid).toBe(1);
      expect(res).toMatchObject({ files: 21, uploadedFiles: 1, uploadedBytes: 100 });
      // putting the same tree again into the same version uploads nothing
      const again = backend.blobPuts();
      await putFiles(cat, `${ds.id}:${v2.id}`, src);
      expect(backend.blobPuts() - again).toBe(0);
      await cat.commitVersion(ds.id, v2.id);
      expect((await cat.resolve(`${ds.id}:latest`)).manifest.files).toHaveLength(21);
      cat.close();
    });

    it('refuses to modify a committed version, with a clear error', async () => {
      const cat = client();
      const ds = await cat.createDataset({ name: 'frozen' });
      const v = await cat.createVersion(ds.id);
      const src = await writeTree(path.join(tmp, 'frozen'), { 'a.txt': 'a' });
      await putFiles(cat, `${ds.id}:${v.id}`, src);
      await cat.commitVersion(ds.id, v.id);
      for (const attempt of [
        () => putFiles(cat, `${ds.id}:${v.id}`, src),
        () => putFiles(cat, `${ds.id}:latest`, src),
        () => cat.deleteFiles(`${ds.id}:${v.id}/a.txt`),
        () => cat.commitVersion(ds.id, v.id),
      ]) {
        const err = await attempt().catch((e) => e);
        expect(isCatalogError(err, 'Committed'), String(err)).toBe(true);
        expect(err.message).toContain(`${ds.id}:${v.id}`);
      }
      expect((await cat.resolve(`${ds.id}:${v.id}`)).manifest.files.map((f) => f.path)).toEqual(['a.txt']);
      cat.close();
    });

    it('two clients putting into one version at once both land, and removals apply', async () => {
      const [a, b] = [client(), client()];
      const ds = await a.createDataset({ name: 'concurrent' });
      const v = await a.createVersion(ds.id);
      const treeA: Record<string, string> = {};
      const treeB: Record<string, string> = {};
      for (let i = 0; i < 150; i++) treeA[`a/${i}.txt`] = `a${i}`;
      for (let i = 0; i < 150; i++) treeB[`b/${i}.txt`] = `b${i}`;
      treeA['shared.txt'] = 'from a';
      treeB['shared.txt'] = 'from b';
      const [srcA, srcB] = await Promise.all([writeTree(path.join(tmp, 'ca'), treeA), writeTree(path.join(tmp, 'cb'), treeB)]);
      await Promise.all([putFiles(a, `${ds.id}:${v.id}`, srcA), putFiles(b, `${ds.id}:${v.id}`, srcB)]);
      expect(await b.deleteFiles(`${ds.id}:${v.id}/a/7.txt`)).toBe(1);
      await a.commitVersion(ds.id, v.id);
      const m = (await b.resolve(`${ds.id}:${v.id}`)).manifest;
      expect(m.files).toHaveLength(300);
      expect(m.files.find((f) => f.path === 'a/7.txt')).toBeUndefined();
      const shared = m.files.find((f) => f.path === 'shared.txt')!;
      expect([sha('from a'), sha('from b')]).toContain(shared.sha256);
      a.close();
      b.close();
    });

    it('journal batches written one after another replay in that order, whichever client wrote them', async () => {
      const clients = [client(), client()];
      const ds = await clients[0]!.createDataset({ name: 'order' });
      const v = await clients[0]!.createVersion(ds.id);
      for (let i = 0; i < 20; i++) {
        await clients[i % 2]!.appendJournal(ds.id, v.id, [{ path: 'x.txt', size: i, sha256: sha(String(i)), mtime: i }]);
      }
      expect((await clients[1]!.journalEntries(ds.id, v.id)).get('x.txt')?.size).toBe(19);
      clients.forEach((c) => c.close());
    });

    it('concurrent version creation and concurrent commits: distinct versions, exactly one commit wins', async () => {
      const clients = [client(), client(), client()];
      const ds = await clients[0]!.createDataset({ name: 'race' });
      const versions = await Promise.all(clients.map((c) => c.createVersion(ds.id)));
      expect(new Set(versions.map((v) => v.id)).size).toBe(3);
      const v = versions[0]!;
      await putFiles(clients[0]!, `${ds.id}:${v.id}`, await writeTree(path.join(tmp, 'race'), { 'x.txt': 'x' }));
      const results = await Promise.allSettled(clients.map((c) => c.commitVersion(ds.id, v.id)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(isCatalogError(r.reason, 'Committed')).toBe(true);
      expect((await clients[1]!.resolve(`${ds.id}:latest`)).manifest.files).toHaveLength(1);
      clients.forEach((c) => c.close());
    });

    it('a put racing a commit either makes it into the manifest or fails loudly', async () => {
      const [a, b] = [client(), client()];
      const ds = await a.createDataset({ name: 'seal' });
      const v = await a.createVersion(ds.id);
      const tree: Record<string, string> = {};
      for (let i = 0; i < 400; i++) tree[`f/${i}`] = `content ${i}`;
      const src = await writeTree(path.join(tmp, 'seal'), tree);
      const putting = putFiles(a, `${ds.id}:${v.id}`, src, { concurrency: 4 }).then(
        () => 'ok' as const,
        (e) => e,
      );
      await new Promise((r) => setTimeout(r, 50));
      const committed = await b.commitVersion(ds.id, v.id).then(
        () => 'ok' as const,
        (e) => e,
      );
      const outcome = await putting;
      if (committed === 'ok') {
        const files = (await b.resolve(`${ds.id}:${v.id}`)).manifest.files;
        if (outcome === 'ok') expect(files).toHaveLength(400);
        else expect(isCatalogError(outcome, 'Conflict') || isCatalogError(outcome, 'Committed')).toBe(true);
        // every manifest entry points at a blob that exists
        const r = await b.resolve(`${ds.id}:${v.id}`);
        for (const f of files.slice(0, 20)) expect((await r.store.head(r.blobKey(f))).size).toBe(f.size);
      }
      a.close();
      b.close();
    });

    it('follows a symlinked directory once, even when it loops back up the tree', async () => {
      const { symlink } = await import('node:fs/promises');
      const cat = client();
      const ds = await cat.createDataset({ name: 'links' });
      const v = await cat.createVersion(ds.id);
      const src = await writeTree(path.join(tmp, 'links'), { 'real/a.txt': 'a' });
      await symlink(path.join(src, 'real'), path.join(src, 'alias'));
      await symlink(src, path.join(src, 'real', 'loop'));
      const res = await putFiles(cat, `${ds.id}:${v.id}`, src);
      expect(res.files).toBeGreaterThanOrEqual(1);
      expect(res.files).toBeLessThanOrEqual(2);
      cat.close();
    });

    it('reports bad references and unknown ids clearly', async () => {
      const cat = client();
      const ds = await cat.createDataset({ name: 'errors' });
      const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
        [() => cat.resolve('no-colon'), 'BadRef', /expected <dataset-id>:<version-id\|tag\|latest>/],
        [() => cat.resolve(`${ds.id}:latest`), 'NotFound', /no committed version yet/],
        [() => cat.resolve(`${ds.id}:nosuchtag`), 'NotFound', /not found/],
        [() => cat.resolve('dsunknown:latest'), 'NotFound', /dataset "dsunknown" not found/],
        [() => putFiles(cat, `${ds.id}:abcdefg`, tmp), 'NotFound', /not found/],
      ];
      for (const [fn, code, re] of cases) {
        const err = (await fn().catch((e) => e)) as Error;
        expect(isCatalogError(err, code as never), String(err)).toBe(true);
        expect(err.message).toMatch(re);
      }
      const v = await cat.createVersion(ds.id);
      const err = await putFiles(cat, `${ds.id}:${v.id}`, path.join(tmp, 'does-not-exist')).catch((e) => e);
      expect(isCatalogError(err, 'BadInput')).toBe(true);
      expect(err.message).toMatch(/does not exist/);
      await expect(cat.resolve(`${ds.id}:${v.id}`)).rejects.toThrow(/not committed yet/);
      cat.close();
    });
  });
}
