// The bucket view's FUSE side in process, against an in-memory bucket: handles, open flags and replies
// (page cache, direct I/O, the engine's write descriptor), TTLs, listings by handle.
import { constants as fsConstants, writeSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BucketView } from '../../../src/fs/bucket/index.js';
import { ROOT_INO, type RequestContext } from '../../../src/fuse/filesystem.js';
import { memoryBucket, storeReadingCache, type MemoryBucket } from '../../helpers/memory-bucket.js';
import { errnoOf } from '../../helpers/fs-errors.js';

const ctx: RequestContext = { uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };

describe('bucket view (in memory)', () => {
  let bucket: MemoryBucket;
  let view: BucketView;

  beforeEach(async () => {
    bucket = await memoryBucket();
    await bucket.store.write('a.txt', 'abcdef');
    await bucket.store.write('d/x', 'x');
    view = new BucketView({ store: bucket.store, cache: storeReadingCache, metadataTtlMs: 5000, write: { uploader: bucket.uploader } });
    await view.start();
  });
  afterEach(async () => {
    view.close();
    await bucket.cleanup();
  });

  it('keeps the page cache across opens only while the ETag holds', async () => {
    const { attr, entryTtl } = await view.lookup(ctx, ROOT_INO, 'a.txt');
    expect(attr).toMatchObject({ size: 6, mode: 0o100666 });
    expect(entryTtl).toBe(5);
    const first = await view.open(ctx, attr.ino, fsConstants.O_RDONLY);
    expect(first.keepCache).toBe(false);
    expect((await view.read(ctx, attr.ino, first.fh, 0, 100)).toString()).toBe('abcdef');
    const second = await view.open(ctx, attr.ino, fsConstants.O_RDONLY);
    expect(second.keepCache).toBe(true);
    expect(view.openHandles).toBe(2);
    await view.release(ctx, attr.ino, first.fh);
    await view.release(ctx, attr.ino, second.fh);
    expect(view.openHandles).toBe(0);
    // Written through the mount: the kernel's pages are not the object's any more.
    const w = await view.open(ctx, attr.ino, fsConstants.O_WRONLY);
    await view.release(ctx, attr.ino, w.fh);
    expect((await view.open(ctx, attr.ino, fsConstants.O_RDONLY)).keepCache).toBe(false);
  });

  it('a created file is written by the engine through writeFd, and close() returns once the bucket holds it', async () => {
    const { entry, open } = await view.create(ctx, ROOT_INO, 'new.bin', 0o644, fsConstants.O_WRONLY | fsConstants.O_CREAT);
    expect(open).toMatchObject({ directIo: true });
    expect(open.writeFd).toEqual(expect.any(Number));
    expect(entry.attrTtl).toBe(0); // its size changes under the kernel
    writeSync(open.writeFd!, Buffer.from('from C'), 0, 6, 0);
    view.written(entry.attr.ino, open.fh, 0, 6);
    expect((await view.getattr(ctx, entry.attr.ino)).attr.size).toBe(6);
    await view.flush(ctx, entry.attr.ino, open.fh);
    expect(await bucket.store.text('new.bin')).toBe('from C');
    await view.release(ctx, entry.attr.ino, open.fh);
    expect((await view.getattr(ctx, entry.attr.ino)).ttl).toBe(5);
    expect(await bucket.staged()).toEqual([]);
    // A read-only handle of a file being written: no write descriptor, and writes are refused.
    const rw = await view.open(ctx, entry.attr.ino, fsConstants.O_RDWR);
    const ro = await view.open(ctx, entry.attr.ino, fsConstants.O_RDONLY);
    expect(ro).toEqual({ fh: ro.fh, directIo: true });
    expect(await errnoOf(view.write(ctx, entry.attr.ino, ro.fh, 0, Buffer.from('x')))).toBe('EBADF');
    await view.write(ctx, entry.attr.ino, rw.fh, 6, Buffer.from('!'));
    await view.setattr(ctx, entry.attr.ino, { size: 3, fh: rw.fh });
    await view.fsync(ctx, entry.attr.ino, rw.fh);
    expect(await bucket.store.text('new.bin')).toBe('fro');
  });

  it('lists a directory by handle with . and .., and entries for READDIRPLUS', async () => {
    const d = await view.lookup(ctx, ROOT_INO, 'd');
    expect(d.attr.mode).toBe(0o040777);
    const { fh } = await view.opendir(ctx, d.attr.ino);
    const entries = await view.readdir(ctx, d.attr.ino, fh, 0, true);
    expect(entries.map((e) => [e.name, e.nextOffset])).toEqual([
      ['.', 1],
      ['..', 2],
      ['x', 3],
    ]);
    expect(entries[1]!.ino).toBe(ROOT_INO);
    expect(entries[2]!.entry?.attr.size).toBe(1);
    expect(await view.readdir(ctx, d.attr.ino, fh, 3, false)).toEqual([]);
    await view.releasedir(ctx, d.attr.ino, fh);
    expect(await errnoOf(view.opendir(ctx, (await view.lookup(ctx, ROOT_INO, 'a.txt')).attr.ino))).toBe('ENOTDIR');
  });

  it('maps rename flags and refuses changes on a read-only view', async () => {
    expect(await errnoOf(view.rename(ctx, ROOT_INO, 'a.txt', ROOT_INO, 'd', 2 /* RENAME_EXCHANGE */))).toBe('EINVAL');
    await view.create(ctx, ROOT_INO, 'b.txt', 0o644, fsConstants.O_WRONLY);
    expect(await errnoOf(view.rename(ctx, ROOT_INO, 'a.txt', ROOT_INO, 'b.txt', 1 /* RENAME_NOREPLACE */))).toBe('EEXIST');
    const ro = new BucketView({ store: bucket.store, cache: storeReadingCache, metadataTtlMs: 5000 });
    const a = await ro.lookup(ctx, ROOT_INO, 'a.txt');
    expect(a.attr.mode).toBe(0o100444);
    expect(await errnoOf(ro.open(ctx, a.attr.ino, fsConstants.O_RDWR))).toBe('EROFS');
    expect(await errnoOf(ro.mkdir(ctx, ROOT_INO, 'x', 0o755))).toBe('EROFS');
    ro.close();
  });
});
