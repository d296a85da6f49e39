// An uncommitted version as a bucket (version-store.ts) in process: the bucket namespace writes through it
// into an in-memory provider; what it records is what `files list` and a commit see. The RGW mount tests
// (test/integration/daemon/outputs.test.ts) cover the same end to end.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../../src/catalog/catalog.js';
import { blobKey } from '../../../src/catalog/layout.js';
import { VersionStore } from '../../../src/catalog/version-store.js';
import { BucketNamespace, type BucketNode } from '../../../src/fs/bucket/namespace.js';
import { ROOT_INO } from '../../../src/fuse/filesystem.js';
import { memoryBucket, storeReadingCache, type MemoryBucket } from '../../helpers/memory-bucket.js';
import { errnoOf, stagedFile } from '../../helpers/fs-errors.js';

const FILE = { mode: 0o644, uid: 1000, gid: 1000 };
const DIR = { mode: 0o40755, uid: 1000, gid: 1000 };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('a dataset version as a bucket (in memory)', () => {
  let bucket: MemoryBucket;
  let catalog: Catalog;
  let ds: string;
  let v: string;
  let store: VersionStore;
  let ns: BucketNamespace;
  let root: BucketNode;

  const files = async () => new Map((await catalog.listFiles({ datasetId: ds, version: v, path: '' })).files.map((f) => [f.path, f.sha256]));
  const put = async (dir: BucketNode, name: string, body: string) => {
    const f = await ns.create(dir, name, false, FILE);
    await ns.write(stagedFile(f), 0, Buffer.from(body));
    await ns.sync(stagedFile(f));
    await ns.release(f);
  };

  beforeEach(async () => {
    bucket = await memoryBucket();
    catalog = new Catalog({
      teamId: 'team1',
      providers: [{ id: 'sp1', name: 'mem', type: 'local', path: '/nonexistent' }],
      managedProviderId: 'sp1',
      openStore: () => bucket.store,
    });
    ds = (await catalog.createDataset({ name: 'outs' })).id;
    v = (await catalog.createVersion(ds)).id;
    store = await VersionStore.open(catalog, ds, v);
    ns = new BucketNamespace({ store, cache: storeReadingCache, metadataTtlMs: 60_000, write: { uploader: bucket.uploader } });
    root = ns.node(ROOT_INO);
  });
  afterEach(async () => {
    ns.close();
    await bucket.cleanup();
  });

  it('records each closed file as a content-addressed blob and one journal entry, deduplicated', async () => {
    const sub = await ns.mkdir(root, 'sub', DIR);
    await put(sub, 'a.txt', 'same bytes');
    const before = bucket.store.requests.length;
    await put(root, 'b.txt', 'same bytes');
    // Known content: the journal batch is the only PUT.
    expect(bucket.store.requests.slice(before).filter((r) => r.startsWith('PUT'))).toHaveLength(1);
    expect(await bucket.store.text(blobKey('team1', sha('same bytes')))).toBe('same bytes');
    expect(await files()).toEqual(new Map([['sub/a.txt', sha('same bytes')], ['b.txt', sha('same bytes')]]));
    expect(store.stats).toEqual({ filesWritten: 2, bytesWritten: 20 });
    expect((await ns.list(root)).map(([name]) => name).sort()).toEqual(['b.txt', 'sub']);
  });

  it('renames, overwrites, truncates and unlinks within the version; an empty directory lives only in the mount', async () => {
    await put(root, 'a.txt', 'first');
    await put(root, 'a.txt', 'second');
    await ns.rename(root, 'a.txt', root, 'moved.txt', { noReplace: false, exchange: false });
    await put(root, 'gone.txt', 'x');
    await ns.unlink(root, 'gone.txt');
    await put(root, 'cut.txt', 'long text');
    await ns.truncate(await ns.lookup(root, 'cut.txt'), 4);
    await ns.mkdir(root, 'empty', DIR);
    expect(await files()).toEqual(new Map([['moved.txt', sha('second')], ['cut.txt', sha('long')]]));
    // Reopened from the journal: the same files (the empty directory is not one).
    const again = await VersionStore.open(catalog, ds, v);
    const listed: string[] = [];
    for await (const page of again.list('', { delimiter: '/' })) listed.push(...page.objects.map((o) => o.key), ...page.prefixes);
    expect(listed.sort()).toEqual(['cut.txt', 'moved.txt']);
  });

  it('sealed: new changes are EROFS, an open writer fails at close and keeps failing, and the commit holds what was closed', async () => {
    await put(root, 'kept.txt', 'kept');
    const open = await ns.create(root, 'late.txt', false, FILE);
    await ns.write(stagedFile(open), 0, Buffer.from('late'));
    ns.seal();
    expect(await errnoOf(ns.create(root, 'new.txt', false, FILE))).toBe('EROFS');
    expect(await errnoOf(ns.mkdir(root, 'd', DIR))).toBe('EROFS');
    expect(await errnoOf(ns.unlink(root, 'kept.txt'))).toBe('EROFS');
    expect(await ns.settle(1000)).toBe(0);
    await store.seal();
    expect(await errnoOf(ns.sync(stagedFile(open)))).toBe('EROFS');
    expect(await errnoOf(ns.sync(stagedFile(open)))).toBe('EROFS');
    await ns.release(open);
    expect(ns.uploadStatus()).toEqual([]);
    expect(await bucket.staged()).toEqual([]);
    const committed = await catalog.commitVersion(ds, v);
    expect(committed.fileCount).toBe(1);
    expect(await files()).toEqual(new Map([['kept.txt', sha('kept')]]));
  });

  it('a large file goes up in parts while written, lands under its hash, and leaves no upload behind', async () => {
    const big = Buffer.alloc(40 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const f = await ns.create(root, 'big.bin', false, FILE);
    for (let off = 0; off < big.length; off += 1024 * 1024) await ns.write(stagedFile(f), off, big.subarray(off, off + 1024 * 1024));
    await ns.sync(stagedFile(f));
    await ns.release(f);
    const h = createHash('sha256').update(big).digest('hex');
    expect(bucket.store.requests.some((r) => r.startsWith('COPY ') && r.includes('/uploads/'))).toBe(true);
    expect((await bucket.store.read(blobKey('team1', h))).equals(big)).toBe(true);
    expect(await files()).toEqual(new Map([['big.bin', h]]));
    const left: string[] = [];
    for await (const page of bucket.store.list('team1/datasets/')) left.push(...page.objects.map((o) => o.key).filter((k) => k.includes('/uploads/')));
    expect(left).toEqual([]);
    // The same bytes again: the parts are dropped, nothing is copied.
    const before = bucket.store.requests.length;
    const g = await ns.create(root, 'again.bin', false, FILE);
    for (let off = 0; off < big.length; off += 1024 * 1024) await ns.write(stagedFile(g), off, big.subarray(off, off + 1024 * 1024));
    await ns.sync(stagedFile(g));
    await ns.release(g);
    expect(bucket.store.requests.slice(before).filter((r) => r.startsWith('COPY '))).toEqual([]);
    expect((await files()).get('again.bin')).toBe(h);
  });

  it('closes that arrive together share journal batches, and every one is recorded', async () => {
    const before = bucket.store.requests.length;
    await Promise.all(Array.from({ length: 16 }, (_, i) => store.write(`f${i}`, `body ${i}`)));
    const batches = bucket.store.requests.slice(before).filter((r) => r.includes('/journal/'));
    expect(batches.length).toBeLessThan(16);
    expect((await files()).size).toBe(16);
  });

  it('lists as S3 does (a MemoryStore holding the same keys is the reference)', async () => {
    const { MemoryStore } = await import('../../../src/storage/memory-store.js');
    const ref = new MemoryStore();
    const keys = ['a', 'a.txt', 'a/b', 'a/b/c', 'a/b0', 'a/c/', 'a/c/d', 'b/', 'z\u{1F600}', 'z\uFFFD', 'z/é', 'zz/y/x', 'a/b/c/d/e'];
    for (const k of keys) {
      await store.write(k, k);
      await ref.write(k, k);
    }
    await store.delete('a.txt');
    await ref.delete('a.txt');
    const page = async (s: { list: VersionStore['list'] }, prefix: string, delimiter?: string) => {
      const out: string[] = [];
      for await (const p of s.list(prefix, delimiter ? { delimiter } : {})) out.push(...p.objects.map((o) => o.key), ...p.prefixes.map((x) => `${x}*`));
      return out;
    };
    for (const prefix of ['', 'a', 'a/', 'a/b', 'a/b/', 'a/c/', 'z', 'zz/']) {
      for (const delimiter of [undefined, '/']) {
        expect(await page(store, prefix, delimiter), `${prefix} ${delimiter}`).toEqual(await page(ref, prefix, delimiter));
      }
    }
  });

  it('a commit made elsewhere: the next close is refused (EROFS), not lost silently, and the store takes no more', async () => {
    await put(root, 'a.txt', 'a');
    await catalog.commitVersion(ds, v); // another machine's commit: this store was not told
    const f = await ns.create(root, 'b.txt', false, FILE);
    await ns.write(stagedFile(f), 0, Buffer.from('b'));
    expect(await errnoOf(ns.sync(stagedFile(f)))).toBe('EROFS');
    await ns.release(f);
    expect(store.sealed).toBe(true);
    expect(await files()).toEqual(new Map([['a.txt', sha('a')]]));
  });

  it('refuses to open a committed version for writing', async () => {
    await put(root, 'a.txt', 'a');
    await catalog.commitVersion(ds, v);
    await expect(VersionStore.open(catalog, ds, v)).rejects.toThrow(/committed/);
  });
});
