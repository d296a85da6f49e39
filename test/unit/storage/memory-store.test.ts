// The in-memory store against the ObjectStore contract every store meets, and what it adds for fast tests:
// S3's ordering, paging, multipart ETags and part-size rule, versions.
import { describe, expect, it } from 'vitest';
import { isStorageError } from '../../../src/storage/errors.js';
import { compareKeys, MemoryStore } from '../../../src/storage/memory-store.js';
import type { ListOptions } from '../../../src/storage/object-store.js';
import { storeContract } from '../../integration/storage/store-contract.js';

storeContract('MemoryStore', async () => ({ store: new MemoryStore(), cleanup: async () => undefined }));

async function pages(store: MemoryStore, prefix: string, opts: ListOptions = {}) {
  const out: Array<{ objects: string[]; prefixes: string[] }> = [];
  for await (const p of store.list(prefix, opts)) out.push({ objects: p.objects.map((o) => o.key), prefixes: p.prefixes });
  return out;
}

describe('MemoryStore specifics', () => {
  it('orders keys by UTF-8 bytes, as S3 does', () => {
    const keys = ['\u{1F600}', '\uFF21', 'a', 'Z', 'é'];
    expect([...keys].sort(compareKeys)).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it('pages count objects and prefixes together, and always yield one page', async () => {
    const store = new MemoryStore();
    for (const k of ['d/a', 'd/b/1', 'd/b/2', 'd/c', 'd/e/1', 'd/f']) await store.write(k, k);
    expect(await pages(store, 'd/', { delimiter: '/', maxKeys: 2 })).toEqual([
      { objects: ['d/a'], prefixes: ['d/b/'] },
      { objects: ['d/c'], prefixes: ['d/e/'] },
      { objects: ['d/f'], prefixes: [] },
    ]);
    expect(await pages(store, 'nothing/')).toEqual([{ objects: [], prefixes: [] }]);
    // startAfter inside a common prefix: that prefix counts as listed already (as on RGW).
    expect(await pages(store, 'd/', { delimiter: '/', startAfter: 'd/b/1' })).toEqual([{ objects: ['d/c', 'd/f'], prefixes: ['d/e/'] }]);
  });

  it('completes multipart uploads with an S3-style ETag, keeps them invisible until then, and enforces part sizes', async () => {
    const store = new MemoryStore();
    const part = Buffer.alloc(5 * 1024 * 1024, 1);
    const up = await store.startMultipart('mp');
    await up.uploadPart(2, Buffer.from('tail'));
    await up.uploadPart(1, part);
    expect(store.multipartUploads()).toEqual(['mp']);
    expect(isStorageError(await store.head('mp').catch((e) => e), 'NotFound')).toBe(true);
    const info = await up.complete();
    expect(info.etag).toMatch(/^[0-9a-f]{32}-2$/);
    expect(info.size).toBe(part.length + 4);
    expect((await store.read('mp', { range: { start: part.length, end: part.length + 4 } })).toString()).toBe('tail');
    expect(store.multipartUploads()).toEqual([]);

    const small = await store.startMultipart('small');
    await small.uploadPart(1, Buffer.from('x'));
    await small.uploadPart(2, Buffer.from('y'));
    await expect(small.complete()).rejects.toThrow(/EntityTooSmall/);
    await small.abort();
    expect(isStorageError(await small.uploadPart(3, part).catch((e) => e), 'NotFound')).toBe(true);
  });

  it('keeps versions readable by id when versioned', async () => {
    const store = new MemoryStore({ versioned: true });
    const v1 = await store.write('k', 'one');
    await store.write('k', 'two');
    await store.delete('k');
    expect((await store.read('k', { versionId: v1.versionId! })).toString()).toBe('one');
    expect(isStorageError(await store.head('k').catch((e) => e), 'NotFound')).toBe(true);
    expect(isStorageError(await new MemoryStore().head('k', { versionId: v1.versionId! }).catch((e) => e), 'NotFound')).toBe(true);
  });

  it('refuses keys S3 refuses', async () => {
    const store = new MemoryStore();
    expect(store.invalidKeyReason('k'.repeat(1025))).toMatch(/1025 bytes/);
    for (const key of ['', '/abs', 'k'.repeat(1025)]) {
      expect(isStorageError(await store.write(key, 'x').catch((e) => e), 'InvalidKey'), key).toBe(true);
    }
  });
});
