// Upload coalescing and retry bookkeeping over a store fake (pure logic: real staging files, fake bucket).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore, WriteBody } from '../../../src/storage/object-store.js';
import { DaemonMemory } from '../../../src/memory/index.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { EAGER_PART_BYTES } from '../../../src/upload/eager-upload.js';
import { StagedFile } from '../../../src/upload/staged-file.js';
import { Staging } from '../../../src/upload/staging.js';
import { UploadQueue, type UploadQueueOptions } from '../../../src/upload/upload-queue.js';

function fakeStore(opts: { failures?: number; delayMs?: number } = {}) {
  const puts: string[] = [];
  let failures = opts.failures ?? 0;
  const store = {
    location: 's3://fake/',
    async write(key: string, body: WriteBody) {
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 5));
      if (failures > 0) {
        failures--;
        throw new Error('cannot reach S3 endpoint');
      }
      puts.push(`${key}:${(body as { path: string }).path.length > 0 ? 'file' : ''}`);
      return { key, size: 0, etag: 'e', lastModified: new Date() };
    },
  } as unknown as ObjectStore;
  return { store, puts };
}

describe('upload queue', () => {
  let dir: string;
  const queue = (target: ObjectStore, opts: Partial<UploadQueueOptions> = {}) =>
    new UploadQueue({ target, staging: new Staging(dir), memory: new DaemonMemory(), ...opts });
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gd-uploads-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('coalesces writes made while an upload is in flight into one more upload', async () => {
    const { store, puts } = fakeStore({ delayMs: 30 });
    const uploads = queue(store);
    const file = await StagedFile.create(dir, 'k');
    await file.write(0, Buffer.from('a'));
    const first = uploads.sync(file);
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 5; i++) await file.write(i, Buffer.from('b'));
    await Promise.all([first, uploads.sync(file), uploads.sync(file), uploads.sync(file)]);
    expect(puts).toHaveLength(2);
    expect(file.dirty).toBe(false);
    expect(await readdir(dir)).toEqual([path.basename(file.dataPath)]); // journal gone once uploaded
    await file.remove();
  });

  it('keeps a failed upload journaled, reports it, and retries it in the background', async () => {
    const { store, puts } = fakeStore({ failures: 2 });
    const uploads = queue(store, { backoff: { baseMs: 10, capMs: 20 } });
    const file = await StagedFile.create(dir, 'k');
    await file.write(0, Buffer.from('data'));
    await expect(uploads.sync(file)).rejects.toThrow(/cannot reach/);
    expect(uploads.status()).toMatchObject([{ key: 'k', bytes: 4, attempts: 1 }]);
    expect((await readdir(dir)).some((n) => n.endsWith('.json'))).toBe(true);
    for (let i = 0; i < 100 && uploads.status().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(uploads.status()).toEqual([]);
    expect(puts).toHaveLength(1);
    uploads.close();
    await file.remove();
  });

  it('recovers journaled files of its own store after a restart', async () => {
    const { store, puts } = fakeStore({ failures: 1 });
    const first = queue(store);
    const file = await StagedFile.create(dir, 'later');
    await file.write(0, Buffer.from('x'));
    await expect(first.sync(file)).rejects.toThrow();
    first.close();
    await file.closeFile();
    const other = queue({ ...store, location: 's3://elsewhere/' } as ObjectStore);
    expect(await other.recover()).toEqual([]);
    const again = queue(store, { backoff: { baseMs: 1, capMs: 5 } });
    const [recovered] = await again.recover();
    expect(recovered?.key).toBe('later');
    for (let i = 0; i < 100 && again.status().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(puts).toEqual(['later:file']);
    again.close();
    await recovered!.remove();
  });

  it('sends the file\'s attributes with its PutObject, and keeps them in the journal', async () => {
    const store = new MemoryStore();
    const uploads = queue(store);
    const file = await StagedFile.create(dir, 'k');
    file.attributes = { metadata: { mode: '33261' }, contentType: 'text/x-sh' };
    await file.write(0, Buffer.from('#!/bin/sh'));
    await uploads.sync(file);
    expect(await store.head('k')).toMatchObject({ metadata: { mode: '33261' }, contentType: 'text/x-sh' });
    await file.write(0, Buffer.from('#'));
    await new Staging(dir).journal(file, store.location);
    const [again] = await new Staging(dir).journaled(store.location);
    expect(again?.attributes).toEqual(file.attributes);
    await again!.closeFile();
    await file.remove();
  });

  it('a multipart upload carries the attributes it was created with; changed ones follow as one copy', async () => {
    const store = new MemoryStore();
    const copies: string[] = [];
    const copy = store.copy.bind(store);
    store.copy = (from, to, opts) => (copies.push(`${from}->${to}`), copy(from, to, opts));
    const uploads = queue(store);
    const file = await StagedFile.create(dir, 'big');
    file.attributes = { metadata: { mode: '33188', uid: '1000' } };
    uploads.startEagerUpload(file);
    await file.write(0, Buffer.alloc(EAGER_PART_BYTES + 10, 1));
    await new Promise((r) => setTimeout(r, 50));
    file.attributes = { metadata: { mode: '33261', uid: '1000', mtime: '1700000000' } }; // futimens, fchmod before close
    await uploads.sync(file);
    expect((await store.head('big')).metadata).toEqual({ mode: '33261', uid: '1000', mtime: '1700000000' });
    expect(copies).toEqual(['big->big']);
    await file.remove();
  });
});
