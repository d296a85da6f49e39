// Bucket metadata caching against a fake, empty bucket that counts requests.
import { describe, expect, it } from 'vitest';
import { BucketMetadata } from '../../../src/fs/bucket/metadata.js';
import { StorageError } from '../../../src/storage/errors.js';
import type { ListPage, ObjectStore } from '../../../src/storage/object-store.js';

function emptyBucket() {
  const requests: string[] = [];
  const store = {
    location: 's3://fake/',
    async head(key: string) {
      requests.push(`HEAD ${key}`);
      throw new StorageError('NotFound', `${key} not found`);
    },
    async *list(prefix: string): AsyncIterable<ListPage> {
      requests.push(`LIST ${prefix}`);
      yield { objects: [], prefixes: [] };
    },
  } as unknown as ObjectStore;
  return { store, requests };
}

describe('bucket metadata', () => {
  it('a name outside any listing costs one HEAD + one LIST', async () => {
    const { store, requests } = emptyBucket();
    const meta = new BucketMetadata(store, { ttlMs: 60_000 });
    expect(await meta.lookup('dir', 'f')).toBeUndefined();
    expect(requests.sort()).toEqual(['HEAD dir/f', 'LIST dir/f/']);
  });

  it('once a listed directory expires, looking up its names lists it again once instead of probing each name', async () => {
    const { store, requests } = emptyBucket();
    const meta = new BucketMetadata(store, { ttlMs: 20 });
    await meta.list('dir');
    await new Promise((r) => setTimeout(r, 40));
    const names = Array.from({ length: 50 }, (_, i) => `f${i}`);
    expect(await Promise.all(names.map((n) => meta.lookup('dir', n)))).toEqual(names.map(() => undefined));
    expect(requests).toEqual(['LIST dir/', 'LIST dir/']);
  });

  it('a listing read near the end of its TTL is listed again in the background: readers never wait for it', async () => {
    const clock = { t: 10_000, now: () => clock.t };
    const requests: string[] = [];
    let release: (() => void) | undefined;
    let file = 'old';
    const store = {
      location: 's3://fake/',
      async *list(prefix: string): AsyncIterable<ListPage> {
        requests.push(`LIST ${prefix}`);
        if (requests.length > 1) await new Promise<void>((r) => (release = r));
        yield { objects: [{ key: `${prefix}${file}`, size: 1, etag: 'e', lastModified: new Date(0) }], prefixes: [] };
      },
    } as unknown as ObjectStore;
    const meta = new BucketMetadata(store, { ttlMs: 1000, clock });
    await meta.list('dir');
    clock.t = 10_850;
    expect(await meta.lookup('dir', 'old')).toMatchObject({ kind: 'file' }); // fresh: nothing asked
    expect(requests).toHaveLength(1);
    clock.t = 10_950;
    file = 'new';
    // In the last tenth of the TTL: answered at once from the listing, while it is listed again.
    expect(await meta.lookup('dir', 'old')).toMatchObject({ kind: 'file' });
    expect(await meta.lookup('dir', 'new')).toBeUndefined();
    expect(requests).toEqual(['LIST dir/', 'LIST dir/']);
    release!();
    await new Promise((r) => setImmediate(r));
    clock.t = 11_500; // the first listing would have expired: the second one answers
    expect(await meta.lookup('dir', 'new')).toMatchObject({ kind: 'file' });
    expect(await meta.lookup('dir', 'old')).toBeUndefined();
    expect(requests).toHaveLength(2);
  });

  it('a listing that started before one of our changes in its directory is not kept', async () => {
    const requests: string[] = [];
    let release: (() => void) | undefined;
    const store = {
      location: 's3://fake/',
      async *list(prefix: string): AsyncIterable<ListPage> {
        requests.push(`LIST ${prefix}`);
        await new Promise<void>((r) => (release = r));
        yield { objects: [], prefixes: [] }; // sent before our file was put
      },
    } as unknown as ObjectStore;
    const meta = new BucketMetadata(store, { ttlMs: 60_000 });
    const listing = meta.list('dir');
    await new Promise((r) => setImmediate(r));
    meta.putFile('dir/made', { size: 3, etag: 'e', mtimeMs: 1 });
    release!();
    expect([...(await listing).keys()]).toEqual([]);
    expect(await meta.lookup('dir', 'made')).toMatchObject({ kind: 'file', size: 3 }); // not from that listing
  });

  it('a directory we created is known empty: names created in it next cost no request', async () => {
    const { store, requests } = emptyBucket();
    const meta = new BucketMetadata(store, { ttlMs: 60_000 });
    meta.createdDir('new');
    expect(await meta.lookup('', 'new')).toEqual({ kind: 'dir' });
    expect(await meta.lookup('new', 'f')).toBeUndefined();
    meta.putFile('new/f', { size: 3, etag: 'e', mtimeMs: 1 });
    expect(await meta.lookup('new', 'f')).toMatchObject({ kind: 'file', size: 3 });
    expect([...(await meta.list('new')).keys()]).toEqual(['f']);
    expect(requests).toEqual([]);
  });
});
