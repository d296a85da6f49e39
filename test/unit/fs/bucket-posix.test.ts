// POSIX attributes on a bucket, in process against an in-memory bucket: what each operation stores (in s3fs's
// conventions) and how many requests it costs. The mount tests (test/integration/bucket/posix*.test.ts) run the
// same ground through the kernel.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BucketNamespace, type BucketNode } from '../../../src/fs/bucket/namespace.js';
import { ROOT_INO } from '../../../src/fuse/filesystem.js';
import { memoryBucket, storeReadingCache, type MemoryBucket } from '../../helpers/memory-bucket.js';
import { errnoOf, stagedFile } from '../../helpers/fs-errors.js';

const ME = { uid: 1000, gid: 1000 };
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFIFO = 0o010000;
const NS = 1_000_000_000n;

describe('bucket namespace: POSIX attributes (in memory)', () => {
  let bucket: MemoryBucket;
  let ns: BucketNamespace;
  let root: BucketNode;

  const make = (opts: { ttlMs?: number; posixMetadata?: boolean } = {}) => {
    ns?.close();
    ns = new BucketNamespace({
      store: bucket.store,
      cache: storeReadingCache,
      metadataTtlMs: opts.ttlMs ?? 60_000,
      write: { uploader: bucket.uploader },
      defaults: { uid: 7, gid: 8 },
      ...(opts.posixMetadata !== undefined ? { posixMetadata: opts.posixMetadata } : {}),
    });
    root = ns.node(ROOT_INO);
    return ns;
  };
  const requests = () => bucket.store.requests.splice(0);

  beforeEach(async () => {
    bucket = await memoryBucket();
    await bucket.store.write('plain', 'no metadata', { contentType: 'text/plain' });
    // As s3fs writes them.
    await bucket.store.write('s3fs.sh', '#!/bin/sh', { metadata: { mode: '33261', uid: '1000', gid: '100', mtime: '1600000000', ctime: '1600000000', atime: '1600000000' } });
    await bucket.store.write('rclone.bin', 'r', { metadata: { mtime: '1354040105.5' } });
    await bucket.store.write('link', 'plain', { metadata: { mode: String(S_IFLNK | 0o777) } });
    await bucket.store.write('d/', '', { metadata: { mode: String(S_IFDIR | 0o750), uid: '1000', gid: '1000' } });
    await bucket.store.write('d/f', 'f');
    make();
    requests();
  });
  afterEach(async () => {
    ns.close();
    await bucket.cleanup();
  });

  it('shows what s3fs and rclone stored, and the defaults where nothing is', async () => {
    const byName = new Map((await ns.list(root)).map(([name, c]) => [name, ns.stat(ns.child(root, name, c))]));
    expect(byName.get('plain')).toMatchObject({ mode: S_IFREG | 0o666, uid: 7, gid: 8 });
    expect(byName.get('s3fs.sh')).toMatchObject({ mode: S_IFREG | 0o755, uid: 1000, gid: 100, mtimeNs: 1_600_000_000n * NS });
    expect(byName.get('rclone.bin')).toMatchObject({ mode: S_IFREG | 0o666, mtimeNs: 1_354_040_105_500_000_000n });
    expect(byName.get('link')).toMatchObject({ mode: S_IFLNK | 0o777, size: 5 });
    expect(byName.get('d')).toMatchObject({ mode: S_IFDIR | 0o750, uid: 1000 });
    // One HEAD per object and directory marker, once: a second listing after the TTL asks only LIST, for objects
    // written seconds before (an answer learnt within its version's second is asked again after the TTL).
    expect(requests().sort()).toEqual(['HEAD d/', 'HEAD link', 'HEAD plain', 'HEAD rclone.bin', 'HEAD s3fs.sh', 'LIST ']);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 10_000);
      make({ ttlMs: 1 });
      await ns.list(root);
      requests();
      vi.setSystemTime(Date.now() + 10);
      await ns.list(root);
      expect(requests().filter((r) => r.startsWith('HEAD') && r !== 'HEAD d/')).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a directory of plain objects is judged by its first 16 entries: no HEAD for the others', async () => {
    make({ ttlMs: 1 });
    for (let i = 0; i < 100; i++) await bucket.store.write(`data/img-${String(i).padStart(3, '0')}.jpg`, `bytes ${i}`);
    requests();
    const data = ns.child(root, 'data', { kind: 'dir' });
    const stats = (await ns.list(data)).map(([name, c]) => ns.stat(ns.child(data, name, c)));
    expect(stats).toHaveLength(100);
    for (const st of stats) expect(st).toMatchObject({ mode: S_IFREG | 0o666, uid: 7, gid: 8 });
    expect(requests().filter((r) => r.startsWith('HEAD'))).toHaveLength(16);
    // Another client's chmod of an object past the sample moves its LastModified: the next listing asks it.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 120_000); // past the TTL, and in another second than the first listing
      await bucket.store.copy('data/img-090.jpg', 'data/img-090.jpg', { metadata: { mode: String(S_IFREG | 0o755), uid: '1000', gid: '1000' } });
      await new Promise((r) => setTimeout(r, 5)); // the listing's TTL runs on the real clock
      const relisted = new Map(await ns.list(data));
      expect(ns.stat(ns.child(data, 'img-090.jpg', relisted.get('img-090.jpg')!))).toMatchObject({ mode: S_IFREG | 0o755, uid: 1000 });
      expect(requests()).toContain('HEAD data/img-090.jpg');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a file of a plain directory looked up alone after the TTL shows the defaults without a HEAD', async () => {
    make({ ttlMs: 1 });
    for (let i = 0; i < 100; i++) await bucket.store.write(`plain/f${String(i).padStart(3, '0')}`, `bytes ${i}`);
    const dir = ns.child(root, 'plain', { kind: 'dir' });
    const nodes = (await ns.list(dir)).map(([name, c]) => ns.child(dir, name, c));
    requests();
    await new Promise((r) => setTimeout(r, 5)); // past the TTL: listing and assumed attributes expired
    for (const n of nodes.slice(50)) expect(ns.stat(await ns.refresh(n))).toMatchObject({ mode: S_IFREG | 0o666, uid: 7 });
    // At most the directory judged again (a LIST and its sample), never a HEAD per file.
    expect(requests().filter((r) => r.startsWith('HEAD')).length).toBeLessThanOrEqual(16);
  });

  it('a directory whose first entries carry POSIX attributes has every entry asked', async () => {
    for (let i = 0; i < 40; i++) {
      await bucket.store.write(`repo/f${String(i).padStart(2, '0')}`, 'x', { metadata: { mode: String(S_IFREG | 0o640), uid: '1000', gid: '1000' } });
    }
    requests();
    const repo = ns.child(root, 'repo', { kind: 'dir' });
    const stats = (await ns.list(repo)).map(([name, c]) => ns.stat(ns.child(repo, name, c)));
    for (const st of stats) expect(st).toMatchObject({ mode: S_IFREG | 0o640, uid: 1000 });
    expect(requests().filter((r) => r.startsWith('HEAD'))).toHaveLength(40);
  });

  it('posixMetadata off: a listing costs no HEAD, and everything shows the defaults', async () => {
    make({ posixMetadata: false });
    const [, c] = (await ns.list(root)).find(([n]) => n === 's3fs.sh')!;
    expect(ns.stat(ns.child(root, 's3fs.sh', c)).mode).toBe(S_IFREG | 0o666);
    expect(requests()).toEqual(['LIST ']);
  });

  it('chmod, chown and utimensat on an object: one copy onto itself, content type and other keys kept', async () => {
    const n = await ns.lookup(root, 'plain');
    requests();
    await ns.setAttributes(n, { mode: 0o755 });
    expect(requests()).toEqual(['COPY plain plain']);
    const { metadata, contentType } = await bucket.store.attributes('plain');
    expect(contentType).toBe('text/plain');
    expect(metadata).toMatchObject({ mode: String(S_IFREG | 0o755), uid: '7', gid: '8' });
    expect(metadata?.mtime).toBeDefined(); // the copy moves LastModified: the mtime shown before is kept
    expect(ns.stat(n)).toMatchObject({ mode: S_IFREG | 0o755 });

    await ns.setAttributes(n, { uid: 0, gid: 0 });
    await ns.setAttributes(n, { mtimeNs: 1_700_000_000_123_456_789n, atimeNs: 5n * NS });
    expect(requests()).toEqual(['COPY plain plain', 'COPY plain plain']);
    expect((await bucket.store.attributes('plain')).metadata).toMatchObject({ uid: '0', gid: '0', mtime: '1700000000.123456789', atime: '5' });
    expect(ns.stat(n)).toMatchObject({ mtimeNs: 1_700_000_000_123_456_789n, atimeNs: 5n * NS, uid: 0 });

    await ns.setAttributes(n, { mode: 0o755, uid: 0 }); // nothing changes: no request
    expect(requests()).toEqual([]);
    expect(await bucket.store.text('plain')).toBe('no metadata');
  });

  it('a new file carries its mode and owner with its upload; a change while written rides along', async () => {
    const f = await ns.create(root, 'new', true, { mode: 0o640, ...ME });
    const file = stagedFile(f);
    await ns.write(file, 0, Buffer.from('x'));
    await ns.setAttributes(f.node, { mode: 0o600, mtimeNs: 42n * NS });
    expect(requests()).toEqual([]);
    await ns.sync(file);
    expect(requests()).toEqual(['PUT new']);
    expect((await bucket.store.attributes('new')).metadata).toEqual({ mode: String(S_IFREG | 0o600), uid: '1000', gid: '1000', mtime: '42' });
    // After the upload (the handle still open), a change goes alone.
    await ns.setAttributes(f.node, { mode: 0o644 });
    expect(requests()).toEqual(['COPY new new']);
    await ns.release(f);
    expect(ns.stat(f.node)).toMatchObject({ mode: S_IFREG | 0o644, uid: 1000, mtimeNs: 42n * NS });
  });

  it('rewriting an object keeps its mode and owner; the write replaces a stored mtime', async () => {
    const n = await ns.lookup(root, 's3fs.sh');
    const f = await ns.open(n, { write: true, truncate: true });
    await ns.write(stagedFile(f), 0, Buffer.from('#!/bin/bash'));
    await ns.sync(stagedFile(f));
    await ns.release(f);
    const { metadata } = await bucket.store.attributes('s3fs.sh');
    expect(metadata).toEqual({ mode: '33261', uid: '1000', gid: '100', atime: '1600000000' });
    expect(ns.stat(n).mtimeNs! > 1_700_000_000n * NS).toBe(true);
  });

  it('symlinks: an object holding the target, mode S_IFLNK|0777; readlink; rename keeps it a link', async () => {
    const l = await ns.symlink(root, 'to-d', 'd/f', ME);
    expect(await bucket.store.text('to-d')).toBe('d/f');
    expect((await bucket.store.attributes('to-d')).metadata).toEqual({ mode: String(S_IFLNK | 0o777), uid: '1000', gid: '1000' });
    expect(ns.stat(l)).toMatchObject({ mode: S_IFLNK | 0o777, size: 3 });
    expect(await ns.readlink(l)).toBe('d/f');
    expect(await errnoOf(ns.symlink(root, 'plain', 'x', ME))).toBe('EEXIST');
    expect(await errnoOf(ns.readlink(await ns.lookup(root, 'plain')))).toBe('EINVAL');
    make();
    const existing = await ns.lookup(root, 'link');
    expect(await ns.readlink(existing)).toBe('plain');
    requests();
    await ns.rename(root, 'link', root, 'moved', { noReplace: false, exchange: false });
    expect(requests()).toEqual(['HEAD moved', 'LIST moved/', 'COPY link moved']); // the target name probed, then one copy
    expect(ns.stat(await ns.lookup(root, 'moved')).mode).toBe(S_IFLNK | 0o777);
    expect(requests()).toEqual([]); // its attributes went with the copy: no HEAD
  });

  it('mknod: FIFOs and sockets are empty objects with their mode; device nodes are EPERM', async () => {
    const p = await ns.mknod(root, 'pipe', { mode: S_IFIFO | 0o600, ...ME });
    expect(ns.stat(p).mode).toBe(S_IFIFO | 0o600);
    expect((await bucket.store.attributes('pipe')).metadata?.mode).toBe(String(S_IFIFO | 0o600));
    expect(await errnoOf(ns.mknod(root, 'dev', { mode: 0o020000 | 0o600, ...ME }))).toBe('EPERM');
  });

  it('directories: mkdir stores the mode on the marker; chmod of one without a marker makes one', async () => {
    const m = await ns.mkdir(root, 'made', { mode: S_IFDIR | 0o700, ...ME });
    expect((await bucket.store.attributes('made/')).metadata).toEqual({ mode: String(S_IFDIR | 0o700), uid: '1000', gid: '1000' });
    expect(ns.stat(m).mode).toBe(S_IFDIR | 0o700);
    await bucket.store.write('implicit/x', 'x');
    make();
    const i = await ns.lookup(root, 'implicit');
    expect(ns.stat(i).mode).toBe(S_IFDIR | 0o777);
    requests();
    await ns.setAttributes(i, { mode: 0o755 });
    expect(requests()).toEqual(['PUT implicit/']);
    expect((await bucket.store.attributes('implicit/')).metadata?.mode).toBe(String(S_IFDIR | 0o755));
    const d = await ns.lookup(root, 'd');
    requests();
    await ns.setAttributes(d, { mode: 0o700 });
    expect(requests()).toEqual(['COPY d/ d/']);
    expect(await errnoOf(ns.setAttributes(root, { mode: 0o700 }))).toBe('EPERM');
  });
});
