import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStorageError } from '../../../src/storage/errors.js';
import { LocalStore } from '../../../src/storage/local-store.js';
import { storeContract } from './store-contract.js';

storeContract('LocalStore', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gd-local-'));
  return { store: new LocalStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LocalStore specifics', () => {
  let dir: string;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gd-local-'));
    store = new LocalStore(path.join(dir, 'root'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('refuses keys that could escape the directory', async () => {
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/./b', '', 'a\0b', 'a/..']) {
      const err = await store.write(key, 'x').catch((e) => e);
      expect(isStorageError(err, 'InvalidKey'), key).toBe(true);
    }
    expect(await readdir(dir)).toEqual([]); // validation happens before anything touches the disk
  });

  it('keeps "x" and "x/y" apart, as S3 does', async () => {
    await store.write('x', 'file');
    await store.write('x/y', 'nested');
    expect((await store.read('x')).toString()).toBe('file');
    expect((await store.read('x/y')).toString()).toBe('nested');
    await store.delete('x/y');
    expect((await store.read('x')).toString()).toBe('file');
  });

  it('replaces objects atomically: concurrent readers see one whole version, never a mix', async () => {
    const a = Buffer.alloc(2 * 1024 * 1024, 'a');
    const b = Buffer.alloc(2 * 1024 * 1024, 'b');
    await store.write('k', a);
    const writers = Array.from({ length: 10 }, (_, i) => store.write('k', i % 2 ? a : b));
    const readers = Array.from({ length: 20 }, async () => {
      const got = await store.read('k');
      expect(got.equals(a) || got.equals(b)).toBe(true);
    });
    await Promise.all([...writers, ...readers]);
    // no temp files left behind; empty dirs removed after delete
    expect(await readdir(path.join(dir, 'root', '.tmp'))).toEqual([]);
    await store.delete('k');
  });

  it('one create-only winner among concurrent writers', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.write('race/key', `w${i}`, { ifNoneMatch: '*' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const data = randomBytes(10);
    await store.write('gone/deep/key', data);
    await store.delete('gone/deep/key');
    await expect(stat(path.join(dir, 'root', 'gone.d'))).rejects.toThrow();
  });
});

describe('LocalStore housekeeping', () => {
  it('sweeps temp files a crashed writer left behind, but not fresh ones', async () => {
    const { mkdir, writeFile, utimes } = await import('node:fs/promises');
    const dir = await mkdtemp(path.join(tmpdir(), 'gd-local-'));
    const tmp = path.join(dir, '.tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, 'stale'), 'x');
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await utimes(path.join(tmp, 'stale'), old, old);
    await writeFile(path.join(tmp, 'fresh'), 'x');
    const store = new LocalStore(dir);
    await store.write('k', 'v');
    await new Promise((r) => setTimeout(r, 100));
    expect(await readdir(tmp)).toEqual(['fresh']);
    await rm(dir, { recursive: true, force: true });
  });
});
