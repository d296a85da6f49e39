// Reference-model testing in the spirit of mountpoint-s3's: a seeded, reproducible random sequence of file
// operations (test/reliability/model.py) runs on a bucket mount and on a local directory side by side, and
// every outcome must match — data, sizes, modes, owners, times set, symlinks, listings and errno. Then the
// bucket itself must hold exactly the model's files and symlinks (SDK listing and GETs). Run more with GRADIENT_MODEL_OPS=5000 GRADIENT_MODEL_SEEDS=10.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../src/cache/index.js';
import { BucketView } from '../../src/fs/bucket/bucket-view.js';
import { S3Store } from '../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../helpers/buckets.js';
import { mountForTest, sh, shStatus, tempDir } from '../helpers/fuse-mount.js';
import { tracedFs } from '../helpers/traced-fs.js';
import { freshBucket, s3Client, s3Server } from '../helpers/s3.js';

const OPS = Number(process.env.GRADIENT_MODEL_OPS ?? 600);
const SEEDS = Array.from({ length: Number(process.env.GRADIENT_MODEL_SEEDS ?? 3) }, (_, i) => i + 1);
const script = path.join(import.meta.dirname, 'model.py');

describe('reliability: random operations on a bucket mount against a local model', () => {
  const s = s3Server();
  const client = s3Client();
  let bucket: string;
  let work: { dir: string; remove: () => void };
  let cache: Cache;
  const totals = { ops: 0, files: 0 };

  beforeAll(async () => {
    bucket = await freshBucket('model');
    work = tempDir('gd-model-');
    cache = await openCache({ dir: path.join(work.dir, 'cache'), maxBytes: 1 << 30 });
  });

  afterAll(async () => {
    await cache.close();
    work.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
    console.log(`model: ${JSON.stringify({ seeds: SEEDS.length, ...totals })}`);
  });

  it.each(SEEDS)('seed %i: every outcome matches the model, and the bucket holds the model', async (seed) => {
    const prefix = `seed-${seed}`;
    const store = new S3Store({
      bucket,
      prefix,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    });
    const view = new BucketView({ store, cache, metadataTtlMs: 1000, write: { stagingDir: cache.stagingDir } });
    // GRADIENT_FS_TRACE=file logs every request; MODEL_TRACE=file (model.py) logs every operation.
    const trace = process.env.GRADIENT_FS_TRACE;
    const mounted = await mountForTest(trace ? tracedFs(view, trace) : view);
    const model = path.join(work.dir, `model-${seed}`);
    try {
      await sh(`mkdir -p ${model} && chmod 777 ${model}`); // as the mount's root shows (the default dirMode)
      const r = await shStatus(`python3 ${script} ${seed} ${OPS} ${mounted.mountpoint} ${model}`);
      expect(r.stderr).toBe('');
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ops: number; files: number; mismatch?: unknown };
      expect(summary.mismatch, r.stdout).toBeUndefined();
      expect(r.code).toBe(0);
      totals.ops += summary.ops;
      totals.files += summary.files;
      // The bucket, seen by another client: exactly the model's files and bytes (directories as markers).
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
      const objects = (listed.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).filter((k) => !k.endsWith('/'));
      const modelFiles = (await sh(`cd ${model} && find . \\( -type f -o -type l \\) | sed 's|^./||' | sort`)).split('\n').filter(Boolean);
      expect(objects.sort()).toEqual(modelFiles);
      for (const f of modelFiles) {
        const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${f}` }))).Body!.transformToByteArray());
        // A symlink is an object holding its target.
        const want = (await lstat(path.join(model, f))).isSymbolicLink() ? Buffer.from(await readlink(path.join(model, f))) : await readFile(path.join(model, f));
        expect(got.equals(want), f).toBe(true);
      }
    } finally {
      await mounted.cleanup();
      view.close();
      store.close();
    }
  }, 180_000);
});
