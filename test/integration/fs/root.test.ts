// The /datasets namespace mounted for real: entries as directories, the embedded MNIST sample,
// read-only views, and a live view swap while a file of the old view is open.
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEmbeddedMnist } from '../../../src/catalog/embedded-mnist.js';
import { MemoryContent } from '../../../src/fs/content.js';
import { RootFs } from '../../../src/fs/root.js';
import { Tree } from '../../../src/fs/tree.js';
import { TreeView } from '../../../src/fs/tree-view.js';
import { embeddedView } from '../../../src/fs/views.js';
import { mountForTest, sh, type Mounted } from '../../helpers/fuse-mount.js';

function memoryView(files: Record<string, string>): TreeView {
  const list = Object.entries(files).map(([p, c]) => ({ path: p, bytes: Buffer.from(c) }));
  const tree = Tree.build(list.map((f) => ({ path: f.path, size: f.bytes.length, mtimeMs: 0 })));
  return new TreeView(tree, new MemoryContent(list));
}

describe('RootFs mounted', () => {
  const root = new RootFs();
  let m: Mounted;
  let mnt: string;
  beforeAll(async () => {
    root.attach('mnist', embeddedView(await buildEmbeddedMnist()));
    root.attach('reports', memoryView({ 'q1/summary.txt': 'version one\n', 'readme.md': 'v1 readme\n' }));
    m = await mountForTest(root);
    mnt = m.mountpoint;
    root.onEntryChanged = (parent, name) => m.session.invalidateEntry(parent, name);
  });
  afterAll(async () => m?.cleanup());

  it('lists entries and serves the embedded MNIST sample as valid IDX files', async () => {
    expect((await sh(`ls ${mnt}`)).split('\n').filter(Boolean)).toEqual(['mnist', 'reports']);
    const files = (await sh(`ls ${mnt}/mnist`)).split('\n').filter(Boolean);
    expect(files).toContain('train-images-idx3-ubyte');
    expect(files).toContain('t10k-labels-idx1-ubyte');
    const images = await fsp.readFile(path.join(mnt, 'mnist/train-images-idx3-ubyte'));
    expect(images.readUInt32BE(0)).toBe(0x803);
    const count = images.readUInt32BE(4);
    expect([images.readUInt32BE(8), images.readUInt32BE(12)]).toEqual([28, 28]);
    expect(images.length).toBe(16 + count * 28 * 28);
    const labels = await fsp.readFile(path.join(mnt, 'mnist/train-labels-idx1-ubyte'));
    expect(labels.readUInt32BE(0)).toBe(0x801);
    expect(labels.readUInt32BE(4)).toBe(count);
    expect(Math.max(...labels.subarray(8))).toBe(9);
    expect(await sh(`ls -l ${mnt}/mnist | head -2 | tail -1`)).toMatch(/^-r--r--r-- /);
  });

  it('is read-only where it must be', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code);
    expect(await code(fsp.writeFile(path.join(mnt, 'reports/readme.md'), 'x'))).toBe('EROFS');
    expect(await code(fsp.writeFile(path.join(mnt, 'reports/new.txt'), 'x'))).toBe('EROFS');
    expect(await code(fsp.mkdir(path.join(mnt, 'reports/d')))).toBe('EROFS');
    expect(await code(fsp.unlink(path.join(mnt, 'reports/readme.md')))).toBe('EROFS');
    expect(await code(fsp.mkdir(path.join(mnt, 'newentry')))).toBe('EROFS');
    expect(await code(fsp.rmdir(path.join(mnt, 'mnist')))).toBe('EPERM');
    expect(await code(fsp.readFile(path.join(mnt, 'nope/x')))).toBe('ENOENT');
  });

  it('swaps a view live: open files keep the old version, new opens see the new one', async () => {
    const held = await fsp.open(path.join(mnt, 'reports/q1/summary.txt'), 'r');
    try {
      root.attach('reports', memoryView({ 'q1/summary.txt': 'version TWO, longer\n', 'q2/new.txt': 'only in v2\n' }));
      await new Promise((r) => setTimeout(r, 50));
      expect(await sh(`cat ${mnt}/reports/q1/summary.txt`)).toBe('version TWO, longer\n');
      expect(await sh(`cat ${mnt}/reports/q2/new.txt`)).toBe('only in v2\n');
      expect(await sh(`ls ${mnt}/reports`)).toBe('q1\nq2\n');
      const buf = Buffer.alloc(100);
      const { bytesRead } = await held.read(buf, 0, 100, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('version one\n');
    } finally {
      await held.close();
    }
  });

  it('lists a directory larger than one readdir batch completely, in name order', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 2500; i++) files[`many/f${String(i).padStart(4, '0')}`] = String(i);
    root.attach('wide', memoryView(files));
    await new Promise((r) => setTimeout(r, 50));
    const names = (await sh(`ls -f ${mnt}/wide/many`)).split('\n').filter((n) => n && n !== '.' && n !== '..');
    expect(names).toEqual(Object.keys(files).map((p) => p.slice('many/'.length)));
    expect(await sh(`find ${mnt}/wide -type f | wc -l`)).toBe('2500\n');
    expect(await sh(`cat ${mnt}/wide/many/f2499`)).toBe('2499');
    root.detach('wide');
    await new Promise((r) => setTimeout(r, 50));
  });

  it('adds and removes entries live', async () => {
    root.attach('extra', memoryView({ 'x.txt': 'x' }));
    await new Promise((r) => setTimeout(r, 50));
    expect(await sh(`cat ${mnt}/extra/x.txt`)).toBe('x');
    root.detach('extra');
    await new Promise((r) => setTimeout(r, 50));
    expect(await sh(`ls ${mnt}`)).toBe('mnist\nreports\n');
    expect(await sh(`test -e ${mnt}/extra/x.txt && echo yes || echo no`)).toBe('no\n');
  });
});
