import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { embeddedView } from '../../../src/fs/views.js';
import { ROOT_INO } from '../../../src/fuse/filesystem.js';
import { buildEmbeddedMnist, materializeEmbedded, materializedMnist, type EmbeddedDataset, readPixels, TEST_PER_DIGIT, TRAIN_PER_DIGIT } from '../../../src/catalog/embedded-mnist.js';

/** A minimal IDX reader, written from the format description: magic, dimensions, then bytes. */
function parseIdx(buf: Buffer): { dims: number[]; data: Buffer } {
  expect(buf.readUInt16BE(0)).toBe(0); // two zero bytes
  expect(buf[2]).toBe(0x08); // unsigned byte
  const ndim = buf[3]!;
  const dims = Array.from({ length: ndim }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const data = buf.subarray(4 + 4 * ndim);
  expect(data.length).toBe(dims.reduce((a, b) => a * b, 1));
  return { dims, data };
}

describe('embedded MNIST', () => {
  let ds: EmbeddedDataset;
  beforeAll(async () => {
    ds = await buildEmbeddedMnist();
  });

  it('builds quickly from the package', async () => {
    const t0 = performance.now();
    await buildEmbeddedMnist();
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('has the four usual files, as valid IDX with matching counts and labels 0..9', async () => {
    expect(ds.files.map((f) => f.path)).toEqual([
      'train-images-idx3-ubyte',
      'train-labels-idx1-ubyte',
      't10k-images-idx3-ubyte',
      't10k-labels-idx1-ubyte',
    ]);
    const get = (p: string) => ds.files.find((f) => f.path === p)!;
    for (const [prefix, perDigit] of [['train', TRAIN_PER_DIGIT], ['t10k', TEST_PER_DIGIT]] as const) {
      const images = parseIdx(get(`${prefix}-images-idx3-ubyte`).bytes);
      const labels = parseIdx(get(`${prefix}-labels-idx1-ubyte`).bytes);
      expect(images.dims).toEqual([perDigit * 10, 28, 28]);
      expect(labels.dims).toEqual([perDigit * 10]);
      const counts = new Array<number>(10).fill(0);
      for (const l of labels.data) counts[l] = (counts[l] ?? 0) + 1;
      expect(Math.max(...labels.data)).toBeLessThanOrEqual(9);
      expect(counts).toEqual(new Array(10).fill(perDigit));
      // Classes are interleaved, not sorted.
      expect(labels.data.subarray(0, 20).some((l) => l !== labels.data[0])).toBe(true);
    }
    for (const f of ds.files) {
      expect(f.size).toBe(f.bytes.length);
      expect(f.sha256).toBe(createHash('sha256').update(f.bytes).digest('hex'));
    }
  });

  it('holds real handwritten digits: ink in the middle, blank borders, full grey range', async () => {
    const { data } = parseIdx(ds.files[0]!.bytes);
    const image = (i: number) => data.subarray(i * 784, (i + 1) * 784);
    for (let i = 0; i < 50; i++) {
      const px = image(i);
      const ink = px.filter((v) => v > 128).length;
      expect(ink).toBeGreaterThan(20); // a stroke, not noise or a blank
      expect(ink).toBeLessThan(400);
      expect(px.subarray(0, 28).every((v) => v === 0)).toBe(true); // MNIST digits are centred in a 20×20 box
    }
    expect(new Set(data.subarray(0, 784 * 200)).size).toBeGreaterThan(200); // anti-aliased grey levels
  });

  it('is deterministic across builds', async () => {
    expect(ds.version).toMatch(/^[0-9a-f]{12}$/);
    expect(ds.files.map((f) => f.sha256)).toMatchSnapshot();
    const again = await buildEmbeddedMnist();
    expect(again.files.map((f) => f.sha256)).toEqual(ds.files.map((f) => f.sha256));
  });

  it('reads grey levels without parsing the whole array, and refuses short or bad data', () => {
    expect([...readPixels('{ "data": [0, 0.5,1,0.2]}', 3, 0)]).toEqual([0, 128, 255]);
    expect(() => readPixels('{"data":[0,1]}', 3, 7)).toThrow(/mnist digit 7: only 2 of 3 pixels/);
    expect(() => readPixels('{"data":[0,2,1]}', 3, 1)).toThrow(/out of range/);
  });

  it('materializes content-addressed files once, for the kernel fast path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-mnist-'));
    try {
      const paths = await materializeEmbedded(ds, path.join(dir, 'embedded'));
      expect([...paths.keys()]).toEqual(ds.files.map((f) => f.path));
      for (const f of ds.files) expect(readFileSync(paths.get(f.path)!).equals(f.bytes)).toBe(true);
      const first = statSync(paths.get('train-images-idx3-ubyte')!).mtimeMs;
      await materializeEmbedded(ds, path.join(dir, 'embedded'));
      expect(statSync(paths.get('train-images-idx3-ubyte')!).mtimeMs).toBe(first); // not rewritten
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is served from its written files, holding none of its bytes (the daemon\'s way)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-mnist-'));
    try {
      const on = await materializedMnist(path.join(dir, 'embedded'));
      expect(on.version).toBe(ds.version);
      for (const f of on.files) expect('bytes' in f).toBe(false);
      const view = embeddedView(on);
      const labels = ds.files.find((f) => f.path === 't10k-labels-idx1-ubyte')!;
      const ctx = { uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
      const entry = await view.lookup(ctx, ROOT_INO, 't10k-labels-idx1-ubyte');
      const opened = await view.open(ctx, entry.attr.ino, 0);
      // The engine serves the local file itself; a read through JS gives the same bytes.
      expect(opened.backingPath).toBe(on.files.find((f) => f.path === labels.path)!.localPath);
      expect((await view.read(ctx, entry.attr.ino, opened.fh, 0, labels.size)).equals(labels.bytes)).toBe(true);
      await view.release(ctx, entry.attr.ino, opened.fh);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
