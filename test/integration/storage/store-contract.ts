// The ObjectStore contract, run against every implementation (S3 on the real RGW, the local store, the in-memory store).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageError } from '../../../src/storage/errors.js';
import type { ObjectStore } from '../../../src/storage/object-store.js';

async function collect(store: ObjectStore, prefix: string, opts: Parameters<ObjectStore['list']>[1] = {}) {
  const objects: string[] = [];
  const prefixes: string[] = [];
  for await (const page of store.list(prefix, opts)) {
    objects.push(...page.objects.map((o) => o.key));
    prefixes.push(...page.prefixes);
  }
  return { objects, prefixes };
}

export function storeContract(name: string, make: () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>) {
  describe(`${name}: ObjectStore contract`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    let tmp: string;
    beforeAll(async () => {
      ({ store, cleanup } = await make());
      tmp = await mkdtemp(path.join(tmpdir(), 'gd-store-'));
    });
    afterAll(async () => {
      await cleanup();
      await rm(tmp, { recursive: true, force: true });
    });

    it('writes, heads and reads back bytes with a content-derived ETag', async () => {
      const data = randomBytes(100_000);
      const w = await store.write('dir/one.bin', data);
      expect(w.size).toBe(data.length);
      const h = await store.head('dir/one.bin');
      expect(h.size).toBe(data.length);
      expect(h.etag).toBe(w.etag);
      expect(h.etag).not.toBe('');
      expect((await store.read('dir/one.bin')).equals(data)).toBe(true);
      // same content → same ETag; different content → different ETag
      expect((await store.write('dir/two.bin', data)).etag).toBe(w.etag);
      expect((await store.write('dir/two.bin', randomBytes(10))).etag).not.toBe(w.etag);
    });

    it('reads ranges, honours If-Match, and reads empty objects and empty ranges', async () => {
      const data = randomBytes(4096);
      const { etag } = await store.write('r/data', data);
      expect((await store.read('r/data', { range: { start: 100, end: 200 } })).equals(data.subarray(100, 200))).toBe(true);
      expect((await store.read('r/data', { range: { start: 4000, end: 9999 } })).equals(data.subarray(4000))).toBe(true);
      expect((await store.read('r/data', { range: { start: 0, end: 10 }, ifMatch: etag })).length).toBe(10);
      const err = await store.read('r/data', { range: { start: 0, end: 10 }, ifMatch: '0'.repeat(32) }).catch((e) => e);
      expect(isStorageError(err, 'PreconditionFailed')).toBe(true);
      await store.write('r/empty', Buffer.alloc(0));
      expect((await store.read('r/empty')).length).toBe(0);
      expect((await store.read('r/empty', { range: { start: 0, end: 100 } })).length).toBe(0);
      expect((await store.head('r/empty')).size).toBe(0);
      const chunks: Buffer[] = [];
      for await (const c of await store.stream('r/data', { range: { start: 10, end: 20 } })) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(data.subarray(10, 20))).toBe(true);
    });

    it('uploads files by path and streams of unknown size, reporting progress', async () => {
      const data = randomBytes(12 * 1024 * 1024 + 7);
      const file = path.join(tmp, 'big.bin');
      await writeFile(file, data);
      let last = 0;
      const w = await store.write('up/big.bin', { path: file }, { onProgress: (n) => (last = n) });
      expect(w.size).toBe(data.length);
      expect(last).toBe(data.length);
      expect((await store.head('up/big.bin')).etag).toBe(w.etag);
      expect((await store.read('up/big.bin')).equals(data)).toBe(true);
      const s = await store.write('up/stream.bin', { stream: Readable.from([data.subarray(0, 1000), data.subarray(1000, 3000)]) });
      expect(s.size).toBe(3000);
      expect((await store.read('up/stream.bin')).equals(data.subarray(0, 3000))).toBe(true);
      await store.delete('up/big.bin');
    });

    it('reports missing keys as NotFound and deletes idempotently', async () => {
      const e1 = await store.head('nope/missing').catch((e) => e);
      expect(isStorageError(e1, 'NotFound')).toBe(true);
      const e2 = await store.read('nope/missing').catch((e) => e);
      expect(isStorageError(e2, 'NotFound')).toBe(true);
      await store.write('del/x', 'x');
      await store.delete('del/x');
      await store.delete('del/x');
      expect(isStorageError(await store.head('del/x').catch((e) => e), 'NotFound')).toBe(true);
    });

    it('creates only when asked with ifNoneMatch *', async () => {
      await store.write('once/k', 'first', { ifNoneMatch: '*' });
      const err = await store.write('once/k', 'second', { ifNoneMatch: '*' }).catch((e) => e);
      expect(isStorageError(err, 'PreconditionFailed')).toBe(true);
      expect((await store.read('once/k')).toString()).toBe('first');
    });

    it('lists recursively and one level, in key order, with paging and startAfter; odd names survive', async () => {
      const keys = ['l/a', 'l/b/c', 'l/b/d e', 'l/b-x', 'l/é/ü + %?#~&', 'l/z', 'l/b/f/g'];
      for (const k of keys) await store.write(k, k);
      const all = await collect(store, 'l/');
      expect(all.objects).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      const top = await collect(store, 'l/', { delimiter: '/' });
      expect(top.objects).toEqual(['l/a', 'l/b-x', 'l/z']);
      expect(top.prefixes).toEqual(['l/b/', 'l/é/']);
      const paged: string[] = [];
      for await (const page of store.list('l/', { maxKeys: 2 })) paged.push(...page.objects.map((o) => o.key));
      expect(paged).toEqual(all.objects);
      expect((await collect(store, 'l/', { startAfter: 'l/b/d e' })).objects).toEqual(
        all.objects.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from('l/b/d e')) > 0),
      );
      expect((await collect(store, 'l/b')).objects).toEqual(['l/b-x', 'l/b/c', 'l/b/d e', 'l/b/f/g'].sort());
      expect((await store.read('l/é/ü + %?#~&')).toString()).toBe('l/é/ü + %?#~&');
      expect((await collect(store, 'nothing-here/')).objects).toEqual([]);
    });

    it('copies objects', async () => {
      const w = await store.write('cp/src', 'copy me');
      const c = await store.copy('cp/src', 'cp/dst ü');
      expect(c.etag).toBe(w.etag);
      expect((await store.read('cp/dst ü')).toString()).toBe('copy me');
    });

    it('keeps user metadata, and copy() with metadata replaces it (a copy onto itself changes it in place)', async () => {
      const w = await store.write('meta/k', 'bytes', { metadata: { mode: '100644', uid: '1000' } });
      expect((await store.head('meta/k')).metadata).toEqual({ mode: '100644', uid: '1000' });
      expect((await store.copy('meta/k', 'meta/copy')).metadata).toEqual({ mode: '100644', uid: '1000' });
      const c = await store.copy('meta/k', 'meta/k', { metadata: { mode: '100600', mtime: '1700000000123' } });
      expect(c.etag).toBe(w.etag);
      expect(c.metadata).toEqual({ mode: '100600', mtime: '1700000000123' });
      expect((await store.head('meta/k')).metadata).toEqual({ mode: '100600', mtime: '1700000000123' });
      expect((await store.read('meta/k')).toString()).toBe('bytes');
      await store.write('meta/none', 'x');
      expect((await store.head('meta/none')).metadata).toBeUndefined();
    });

    it('readInto: byte-exact ranges and whole objects at offset 0; empty, past-the-end, If-Match, too small', async () => {
      expect(store.readInto).toBeDefined();
      const readInto = store.readInto!.bind(store);
      const data = randomBytes(300_000);
      const { etag } = await store.write('ri/data', data);
      const into = Buffer.alloc(400_000, 0xee);
      expect(await readInto('ri/data', {}, into)).toBe(data.length);
      expect(into.subarray(0, data.length).equals(data)).toBe(true);
      expect(into[data.length]).toBe(0xee);
      for (const [start, end] of [
        [0, 1],
        [12_345, 200_000],
        [299_999, 300_000],
        [250_000, 350_000], // clamped to the end
      ] as const) {
        into.fill(0xee);
        const n = await readInto('ri/data', { range: { start, end }, ifMatch: etag }, into);
        expect(n).toBe(Math.min(end, data.length) - start);
        expect(into.subarray(0, n).equals(data.subarray(start, end))).toBe(true);
        expect(into[n]).toBe(0xee);
      }
      expect(await readInto('ri/data', { range: { start: 300_000, end: 300_100 } }, into)).toBe(0);
      expect(await readInto('ri/data', { range: { start: 400_000, end: 400_100 } }, into)).toBe(0);
      expect(await readInto('ri/data', { range: { start: 10, end: 10 } }, into)).toBe(0);
      await store.write('ri/empty', Buffer.alloc(0));
      expect(await readInto('ri/empty', {}, into)).toBe(0);
      expect(await readInto('ri/empty', { range: { start: 0, end: 100 } }, into)).toBe(0);
      const changed = await readInto('ri/data', { range: { start: 0, end: 10 }, ifMatch: '0'.repeat(32) }, into).catch((e) => e);
      expect(isStorageError(changed, 'PreconditionFailed')).toBe(true);
      const whole = await readInto('ri/data', { ifMatch: '0'.repeat(32) }, into).catch((e) => e);
      expect(isStorageError(whole, 'PreconditionFailed')).toBe(true);
      await expect(readInto('ri/data', { range: { start: 0, end: 100 } }, Buffer.alloc(50))).rejects.toThrow(RangeError);
      const small = await readInto('ri/data', {}, Buffer.alloc(1000)).catch((e) => e);
      expect(isStorageError(small, 'InvalidRange')).toBe(true);
      expect(isStorageError(await readInto('ri/missing', {}, into).catch((e) => e), 'NotFound')).toBe(true);
    });
  });
}
