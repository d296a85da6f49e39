// Opening bucket objects through the real cache on an in-memory bucket: the ETag a listing gave is used as
// If-Match at once, even past the metadata TTL, and the object is looked up again only when that GET says
// it changed or went. The requests each open costs are counted (the mount and RGW tests check the same end
// to end through the daemon's counters).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import { BucketNamespace, type BucketNode } from '../../../src/fs/bucket/namespace.js';
import { FsError } from '../../../src/fuse/errors.js';
import { ROOT_INO } from '../../../src/fuse/filesystem.js';
import { memoryBucket, type MemoryBucket } from '../../helpers/memory-bucket.js';

const TTL_MS = 30;
const pastTtl = () => new Promise((r) => setTimeout(r, TTL_MS + 10));

describe('bucket open: optimistic ETag, one look-up again when it changed', () => {
  let bucket: MemoryBucket;
  let cacheDir: string;
  let cache: Cache;
  let ns: BucketNamespace;
  let root: BucketNode;

  beforeEach(async () => {
    bucket = await memoryBucket();
    cacheDir = await mkdtemp(path.join(tmpdir(), 'gd-open-cache-'));
    cache = await openCache({ dir: cacheDir, maxBytes: '1G', minFreeBytes: 0, smallFileBytes: 1024 });
    for (let i = 0; i < 5; i++) await bucket.store.write(`d/f${i}`, `file ${i}`);
    await bucket.store.write('d/large', Buffer.alloc(4096, 1));
    ns = new BucketNamespace({ store: bucket.store, cache, metadataTtlMs: TTL_MS });
    root = ns.node(ROOT_INO);
  });
  afterEach(async () => {
    ns.close();
    await cache.close();
    await rm(cacheDir, { recursive: true, force: true });
    await bucket.cleanup();
  });

  /** Opens and reads a file whole, returning its bytes and the requests it cost. */
  const openAndRead = async (node: BucketNode) => {
    bucket.store.requests.length = 0;
    const f = await ns.open(node, { write: false, truncate: false });
    const text = (await ns.read(f, 0, 1 << 20)).toString();
    const requests = [...bucket.store.requests];
    await ns.release(f);
    return { text, requests };
  };
  const listed = async (name: string) => {
    const dir = await ns.lookup(root, 'd');
    await ns.list(dir);
    return ns.lookup(dir, name);
  };

  it('a small file listed before the TTL ran out costs one GET and nothing else', async () => {
    const f1 = await listed('f1');
    await pastTtl();
    expect(await openAndRead(f1)).toEqual({ text: 'file 1', requests: ['GET d/f1'] });
  });

  it('a small file changed since its listing: the GET fails, one look-up, one GET of the new bytes', async () => {
    const f2 = await listed('f2');
    await pastTtl();
    await bucket.store.write('d/f2', 'file 2, rewritten');
    const { text, requests } = await openAndRead(f2);
    expect(text).toBe('file 2, rewritten'); // never a mix: the old ETag's GET failed whole
    expect(requests.filter((r) => r.startsWith('GET'))).toEqual(['GET d/f2', 'GET d/f2']);
    expect(requests.filter((r) => !r.startsWith('GET')).length).toBeGreaterThan(0); // the look-up
    expect(ns.stat(f2).size).toBe(17);
  });

  it('a small file deleted since its listing: ENOENT after one look-up', async () => {
    const f3 = await listed('f3');
    await pastTtl();
    await bucket.store.delete('d/f3');
    const err = await ns.open(f3, { write: false, truncate: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).code).toBe('ENOENT');
  });

  it('within the TTL nothing is confirmed; past it, a file the open does not fetch is confirmed by one HEAD', async () => {
    const large = await listed('large'); // larger than smallFileBytes: not fetched at open
    bucket.store.requests.length = 0;
    const fresh = await ns.open(large, { write: false, truncate: false });
    expect(bucket.store.requests).toEqual([]);
    await ns.release(fresh);
    await pastTtl();
    const stale = await ns.open(large, { write: false, truncate: false });
    expect(bucket.store.requests).toEqual(['HEAD d/large']);
    await ns.release(stale);
  });

  it('a cached small file past the TTL is confirmed with a HEAD, and a change is seen', async () => {
    const f4 = await listed('f4');
    expect((await openAndRead(f4)).text).toBe('file 4');
    await pastTtl();
    expect(await openAndRead(f4)).toEqual({ text: 'file 4', requests: ['HEAD d/f4'] });
    await pastTtl();
    await bucket.store.write('d/f4', 'file 4 v2');
    expect((await openAndRead(f4)).text).toBe('file 4 v2');
  });
});
