// Sibling prefetch through the views and the real cache, on in-memory stores: files read in listing order
// (a bucket's key order, a dataset's tree order) are fetched ahead of the reader (its opens then cost no
// GET); a shuffled order fetches nothing it does not open. (test/integration/bucket checks the same through
// a mount on RGW.)
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import { BucketNamespace, type BucketNode } from '../../../src/fs/bucket/namespace.js';
import { ROOT_INO, type RequestContext } from '../../../src/fuse/filesystem.js';
import { datasetVersionView } from '../../../src/fs/views.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { memoryBucket, type MemoryBucket } from '../../helpers/memory-bucket.js';
import { until } from '../../helpers/until.js';

const FILES = 60;
const name = (i: number) => `f${String(i).padStart(2, '0')}`;

describe('sibling prefetch in a bucket view', () => {
  let bucket: MemoryBucket;
  let cacheDir: string;
  let cache: Cache;
  let ns: BucketNamespace;
  let root: BucketNode;

  beforeEach(async () => {
    bucket = await memoryBucket();
    cacheDir = await mkdtemp(path.join(tmpdir(), 'gd-siblings-cache-'));
    cache = await openCache({ dir: cacheDir, maxBytes: '1G', minFreeBytes: 0 });
    for (const dir of ['ordered', 'shuffled']) {
      for (let i = 0; i < FILES; i++) await bucket.store.write(`${dir}/${name(i)}`, `${dir} ${i}`);
    }
    ns = new BucketNamespace({ store: bucket.store, cache, metadataTtlMs: 60_000 });
    root = ns.node(ROOT_INO);
  });
  afterEach(async () => {
    ns.close();
    await cache.close();
    await rm(cacheDir, { recursive: true, force: true });
    await bucket.cleanup();
  });

  const gets = () => bucket.store.requests.filter((r) => r.startsWith('GET')).map((r) => r.slice(4));
  const complete = async () => cache.list().filter((e) => e.complete).length;
  const read = async (dir: BucketNode, i: number) => {
    const f = await ns.open(await ns.lookup(dir, name(i)), { write: false, truncate: false });
    const text = (await ns.read(f, 0, 100)).toString();
    await ns.release(f);
    return text;
  };

  it('fetches the next files of a directory read in listing order before the reader opens them', async () => {
    const dir = await ns.lookup(root, 'ordered');
    await ns.list(dir);
    bucket.store.requests.length = 0;
    for (let i = 0; i < 3; i++) expect(await read(dir, i)).toBe(`ordered ${i}`);
    // Three in order: the window past f02 is on its way.
    await until('files fetched ahead', complete, (n) => n >= 3 + 32);
    const ahead = gets().slice(3);
    expect(ahead.slice(0, 3)).toEqual(['ordered/f03', 'ordered/f04', 'ordered/f05']);
    // Opening them costs no GET; the window moves on as the reader does.
    bucket.store.requests.length = 0;
    for (let i = 3; i < 20; i++) expect(await read(dir, i)).toBe(`ordered ${i}`);
    expect(gets().filter((k) => Number(k.slice(-2)) < 20)).toEqual([]);
    await until('the window moved', complete, (n) => n >= 20 + 32);
  });

  it('fetches nothing ahead for a shuffled order', async () => {
    const dir = await ns.lookup(root, 'shuffled');
    await ns.list(dir);
    bucket.store.requests.length = 0;
    const order = [41, 7, 33, 18, 52, 2, 27, 46, 12, 38];
    for (const i of order) expect(await read(dir, i)).toBe(`shuffled ${i}`);
    expect(gets().sort()).toEqual(order.map((i) => `shuffled/${name(i)}`).sort());
    expect(await complete()).toBe(order.length);
  });

  it('stops fetching ahead when the pattern breaks', async () => {
    const dir = await ns.lookup(root, 'ordered');
    await ns.list(dir);
    for (let i = 0; i < 3; i++) await read(dir, i);
    await until('files fetched ahead', complete, (n) => n >= 35);
    const fetched = await complete();
    // Jumping about: no further files than those opened.
    for (const i of [55, 38, 58]) await read(dir, i);
    expect(await complete()).toBe(fetched + 3);
  });
});

describe('sibling prefetch in a dataset version', () => {
  it('fetches the next blobs of a directory read in tree order, and nothing for a shuffled one', async () => {
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'gd-siblings-tree-'));
    const cache = await openCache({ dir: cacheDir, maxBytes: '1G', minFreeBytes: 0 });
    const store = new MemoryStore();
    const files = [];
    for (const dir of ['train', 'test']) {
      for (let i = 0; i < FILES; i++) {
        const body = Buffer.from(`${dir} sample ${i}`);
        const sha256 = createHash('sha256').update(body).digest('hex');
        await store.write(`blobs/${sha256}`, body);
        files.push({ path: `${dir}/${name(i)}.png`, size: body.length, sha256, mtime: 0 });
      }
    }
    const view = datasetVersionView(files, { cache, store, blobKey: (h) => `blobs/${h}` });
    const ctx = { uid: 0, gid: 0, pid: 0, signal: new AbortController().signal } as RequestContext;
    const readFile = async (dir: string, i: number) => {
      const d = await view.lookup(ctx, ROOT_INO, dir);
      const e = await view.lookup(ctx, d.attr.ino, `${name(i)}.png`);
      const { fh } = await view.open(ctx, e.attr.ino, 0);
      await view.release(ctx, e.attr.ino, fh);
    };
    const complete = async () => cache.list().filter((e) => e.complete).length;
    try {
      for (let i = 0; i < 3; i++) await readFile('train', i);
      await until('blobs fetched ahead', complete, (n) => n >= 3 + 32);
      const fetched = await complete();
      for (const i of [41, 7, 33, 18, 52, 2, 27, 46, 12, 38]) await readFile('test', i);
      expect(await complete()).toBe(fetched + 10);
    } finally {
      await cache.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
