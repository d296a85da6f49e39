// The bucket namespace in process, against an in-memory bucket: names, reads, write-through, and what S3
// cannot do, without RGW or a mount (as mountpoint-s3's tests/fs.rs). The mount and RGW tests
// (test/integration/bucket, test/reliability) cover the same ground end to end.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BucketNamespace, type BucketNode, type OpenFile } from '../../../src/fs/bucket/namespace.js';
import { ROOT_INO } from '../../../src/fuse/filesystem.js';
import { memoryBucket, storeReadingCache, type MemoryBucket } from '../../helpers/memory-bucket.js';
import { errnoOf, stagedFile } from '../../helpers/fs-errors.js';

const MiB = 1024 * 1024;
const FILE = { mode: 0o644, uid: 1000, gid: 1000 };
const DIR = { mode: 0o40755, uid: 1000, gid: 1000 };

describe('bucket namespace (in memory)', () => {
  let bucket: MemoryBucket;
  let ns: BucketNamespace;
  let root: BucketNode;

  const make = (opts: { ttlMs?: number; readOnly?: boolean } = {}) => {
    ns?.close();
    ns = new BucketNamespace({
      store: bucket.store,
      cache: storeReadingCache,
      metadataTtlMs: opts.ttlMs ?? 60_000,
      ...(opts.readOnly ? {} : { write: { uploader: bucket.uploader } }),
    });
    root = ns.node(ROOT_INO);
    return ns;
  };
  const readAll = async (f: OpenFile) => (await ns.read(f, 0, 1 << 30)).toString();

  beforeEach(async () => {
    bucket = await memoryBucket();
    for (const [key, body] of Object.entries({ 'a.txt': 'abcdef', 'dir/b.txt': 'bee', 'dir/sub/c': 'c', 'empty/': '', 'bad/../x': 'hidden' })) {
      await bucket.store.write(key, body);
    }
    make();
  });
  afterEach(async () => {
    ns.close();
    await bucket.cleanup();
  });

  it('looks names up and lists directories from the bucket', async () => {
    const a = await ns.lookup(root, 'a.txt');
    expect(ns.stat(a)).toMatchObject({ kind: 'file', size: 6, staged: false });
    const dir = await ns.lookup(root, 'dir');
    expect(ns.stat(dir).kind).toBe('dir');
    expect((await ns.lookup(dir, 'b.txt')).key).toBe('dir/b.txt');
    expect(await errnoOf(ns.lookup(root, 'missing'))).toBe('ENOENT');
    expect(await errnoOf(ns.lookup(root, 'x'.repeat(256)))).toBe('ENAMETOOLONG');
    const listing = await ns.list(root);
    const names = listing.map(([name, child]) => `${name}:${child.kind}`).sort();
    expect(names).toEqual(['a.txt:file', 'bad:dir', 'dir:dir', 'empty:dir']);
    expect((await ns.list(await ns.lookup(root, 'bad'))).map(([n]) => n)).toEqual([]); // '..' is no file name
    expect((await ns.list(await ns.lookup(root, 'empty'))).map(([n]) => n)).toEqual([]);
    // The same key keeps its inode; a listed child is the node a lookup finds.
    expect((await ns.lookup(root, 'a.txt')).ino).toBe(a.ino);
    const [, listed] = listing.find(([name]) => name === 'a.txt')!;
    expect(ns.child(root, 'a.txt', listed).ino).toBe(a.ino);
    expect(await readAll(await ns.open(a, { write: false, truncate: false }))).toBe('abcdef');
  });

  it('creates and writes a file: listed and read from staging at once, in the bucket once synced, staging empty after release', async () => {
    const f = await ns.create(root, 'new.txt', true, FILE);
    const file = stagedFile(f);
    await ns.write(file, 0, Buffer.from('hello'));
    expect(await bucket.store.has('new.txt')).toBe(false);
    expect(ns.stat(f.node)).toMatchObject({ size: 5, staged: true });
    expect((await ns.list(root)).map(([n]) => n)).toContain('new.txt');
    expect(await readAll(f)).toBe('hello');
    await ns.sync(file);
    expect(await bucket.store.text('new.txt')).toBe('hello');
    expect(await errnoOf(ns.create(root, 'new.txt', true, FILE))).toBe('EEXIST');
    await ns.release(f);
    expect(await bucket.staged()).toEqual([]);
    expect(ns.stat(f.node)).toMatchObject({ size: 5, staged: false }); // from the upload's answer, no HEAD
    expect(bucket.store.requests.filter((r) => r === 'HEAD new.txt')).toEqual([]);
  });

  it('opens an object for writing with its bytes, and the engine-written bytes count too', async () => {
    const a = await ns.lookup(root, 'a.txt');
    const f = await ns.open(a, { write: true, truncate: false });
    const file = stagedFile(f);
    await ns.write(file, 3, Buffer.from('XY'));
    await ns.sync(file);
    expect(await bucket.store.text('a.txt')).toBe('abcXYf');
    // The C write path lands bytes in the staging file and reports them: as if written here.
    const { writeSync } = await import('node:fs');
    writeSync(file.fd, Buffer.from('!'), 0, 1, 6);
    ns.written(file, 6, 1);
    await ns.sync(file);
    expect(await bucket.store.text('a.txt')).toBe('abcXYf!');
    await ns.release(f);
    const t = await ns.open(a, { write: true, truncate: true });
    await ns.sync(stagedFile(t));
    expect(await bucket.store.text('a.txt')).toBe('');
    await ns.release(t);
  });

  it('unlinks a file while it is open: the handle keeps its bytes, nothing more reaches the bucket', async () => {
    const f = await ns.create(root, 'u.txt', false, FILE);
    const file = stagedFile(f);
    await ns.write(file, 0, Buffer.from('kept'));
    await ns.sync(file);
    await ns.unlink(root, 'u.txt');
    expect(await bucket.store.has('u.txt')).toBe(false);
    expect(await errnoOf(ns.lookup(root, 'u.txt'))).toBe('ENOENT');
    await ns.write(file, 4, Buffer.from('+more'));
    await ns.sync(file);
    expect(await readAll(f)).toBe('kept+more');
    expect(ns.stat(f.node)).toMatchObject({ size: 9 }); // fstat of the orphan
    expect(await bucket.store.has('u.txt')).toBe(false);
    await ns.release(f);
    expect(await bucket.staged()).toEqual([]);
    expect(await errnoOf(ns.unlink(root, 'u.txt'))).toBe('ENOENT');
    expect(await errnoOf(ns.unlink(root, 'dir'))).toBe('EISDIR');
  });

  it('renames files (objects and staged ones); a directory is EXDEV; S3 cannot exchange', async () => {
    const a = await ns.lookup(root, 'a.txt');
    await ns.rename(root, 'a.txt', root, 'b.txt', { noReplace: false, exchange: false });
    expect(await bucket.store.text('b.txt')).toBe('abcdef');
    expect(await bucket.store.has('a.txt')).toBe(false);
    expect((await ns.lookup(root, 'b.txt')).ino).toBe(a.ino);
    expect(await errnoOf(ns.lookup(root, 'a.txt'))).toBe('ENOENT');

    // A file being written goes to its new key at once, whole.
    const f = await ns.create(root, 'w.tmp', false, FILE);
    await ns.write(stagedFile(f), 0, Buffer.from('written'));
    await ns.rename(root, 'w.tmp', root, 'w.txt', { noReplace: false, exchange: false });
    expect(await bucket.store.text('w.txt')).toBe('written');
    expect(await bucket.store.has('w.tmp')).toBe(false);
    await ns.release(f);

    const dir = await ns.lookup(root, 'dir');
    expect(await errnoOf(ns.rename(root, 'dir', root, 'dir2', { noReplace: false, exchange: false }))).toBe('EXDEV');
    expect(await errnoOf(ns.rename(root, 'b.txt', root, 'w.txt', { noReplace: true, exchange: false }))).toBe('EEXIST');
    expect(await errnoOf(ns.rename(root, 'b.txt', dir, 'sub', { noReplace: false, exchange: false }))).toBe('EISDIR');
    expect(await errnoOf(ns.rename(root, 'b.txt', root, 'w.txt', { noReplace: false, exchange: true }))).toBe('EINVAL');
    // Over an existing file: replaced.
    await ns.rename(root, 'b.txt', root, 'w.txt', { noReplace: false, exchange: false });
    expect(await bucket.store.text('w.txt')).toBe('abcdef');
  });

  it('mkdir writes a marker and knows the new directory is empty; rmdir refuses a non-empty one', async () => {
    const d = await ns.mkdir(root, 'made', DIR);
    expect(await bucket.store.has('made/')).toBe(true);
    expect(await errnoOf(ns.mkdir(root, 'made', DIR))).toBe('EEXIST');
    bucket.store.requests.length = 0;
    expect(await errnoOf(ns.lookup(d, 'anything'))).toBe('ENOENT');
    expect(await ns.list(d)).toEqual([]);
    expect(bucket.store.requests).toEqual([]); // answered from the known-empty listing

    expect(await errnoOf(ns.rmdir(root, 'dir'))).toBe('ENOTEMPTY');
    expect(await errnoOf(ns.rmdir(root, 'a.txt'))).toBe('ENOTDIR');
    const f = await ns.create(d, 'inside', false, FILE);
    expect(await errnoOf(ns.rmdir(root, 'made'))).toBe('ENOTEMPTY'); // a staged file counts
    await ns.unlink(d, 'inside');
    await ns.release(f);
    await ns.rmdir(root, 'made');
    await ns.rmdir(root, 'empty');
    expect(await bucket.store.has('made/')).toBe(false);
    expect(await bucket.store.has('empty/')).toBe(false);
    expect(await errnoOf(ns.lookup(root, 'made'))).toBe('ENOENT');
  });

  it('truncates by path (uploaded at once) and through an open file (at the next sync)', async () => {
    const a = await ns.lookup(root, 'a.txt');
    await ns.truncate(a, 2);
    expect(await bucket.store.text('a.txt')).toBe('ab');
    expect(await bucket.staged()).toEqual([]);
    const f = await ns.open(a, { write: true, truncate: false });
    await ns.truncate(a, 0, stagedFile(f));
    expect(await bucket.store.text('a.txt')).toBe('ab');
    await ns.sync(stagedFile(f));
    expect(await bucket.store.text('a.txt')).toBe('');
    await ns.release(f);
  });

  it('trusts metadata for the TTL, then asks the bucket again', async () => {
    make({ ttlMs: 50 });
    await ns.list(root);
    const a = await ns.lookup(root, 'a.txt');
    await bucket.store.write('a.txt', 'changed by another client');
    await bucket.store.write('appeared', 'x');
    expect(ns.stat(await ns.refresh(a)).size).toBe(6);
    expect((await ns.list(root)).map(([n]) => n)).not.toContain('appeared');
    await new Promise((r) => setTimeout(r, 60));
    expect(ns.stat(await ns.refresh(a)).size).toBe(25);
    expect((await ns.list(root)).map(([n]) => n)).toContain('appeared');
  });

  it('an object changed in the bucket while open fails the read with EIO; the next open sees the new bytes', async () => {
    const a = await ns.lookup(root, 'a.txt');
    const f = await ns.open(a, { write: false, truncate: false });
    expect((await ns.read(f, 0, 3)).toString()).toBe('abc');
    await bucket.store.write('a.txt', 'new bytes');
    expect(await errnoOf(ns.read(f, 3, 3))).toBe('EIO');
    await ns.release(f);
    const again = await ns.open(a, { write: false, truncate: false });
    expect(await readAll(again)).toBe('new bytes');
  });

  it('sends full parts while a large file is written; a rename aborts them and the file still arrives whole', async () => {
    const f = await ns.create(root, 'big', false, FILE);
    const file = stagedFile(f);
    const part = Buffer.alloc(16 * MiB, 7);
    await ns.write(file, 0, part);
    await ns.write(file, part.length, part);
    await ns.write(file, 2 * part.length, Buffer.from('tail'));
    expect(bucket.store.multipartUploads()).toEqual(['big']); // invisible until the close
    await ns.sync(file);
    const info = await bucket.store.head('big');
    expect(info).toMatchObject({ size: 32 * MiB + 4 });
    expect(info.etag).toMatch(/-3$/);
    await ns.write(file, 32 * MiB + 4, part);
    await ns.write(file, 48 * MiB + 4, part);
    expect(bucket.store.multipartUploads()).toEqual(['big']);
    await ns.rename(root, 'big', root, 'moved', { noReplace: false, exchange: false });
    for (let i = 0; i < 100 && bucket.store.multipartUploads().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(bucket.store.multipartUploads()).toEqual([]); // aborted: its parts went to the old key
    expect((await bucket.store.head('moved')).size).toBe(64 * MiB + 4);
    await ns.release(f);
  });

  it('a read-only namespace refuses every change with EROFS', async () => {
    make({ readOnly: true });
    const a = await ns.lookup(root, 'a.txt');
    expect(ns.readOnly).toBe(true);
    expect(await errnoOf(ns.open(a, { write: true, truncate: false }))).toBe('EROFS');
    expect(await errnoOf(ns.open(a, { write: false, truncate: true }))).toBe('EROFS');
    expect(await errnoOf(ns.create(root, 'n', false, FILE))).toBe('EROFS');
    expect(await errnoOf(ns.mkdir(root, 'd', DIR))).toBe('EROFS');
    expect(await errnoOf(ns.unlink(root, 'a.txt'))).toBe('EROFS');
    expect(await errnoOf(ns.truncate(a, 0))).toBe('EROFS');
    expect(await readAll(await ns.open(a, { write: false, truncate: false }))).toBe('abcdef');
  });
});
