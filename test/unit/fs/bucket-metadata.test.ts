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
