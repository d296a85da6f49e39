// What POSIX metadata costs a listing: `ls -l` and `find` over 10k plain objects (no user metadata), cold and
// again, with posixMetadata on (a HEAD per object not seen before), after a remount that finds the answers in
// the cache's index, and with posixMetadata off. Wall time, the serving process's CPU, requests. A measurement,
// not a check: GRADIENT_MEASURE=1 runs it (GRADIENT_MEASURE_IMPL=<dir with src/> measures another tree's
// BucketView and S3Store, e.g. the code before this feature).
import { PutObjectCommand } from '@aws-sdk/client-s3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache, type Cache } from '../../../src/cache/index.js';
import type { Filesystem } from '../../../src/fuse/filesystem.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { mountForTest, sh, tempDir } from '../../helpers/fuse-mount.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';

const N = 10_000;
const impl = process.env.GRADIENT_MEASURE_IMPL ?? path.resolve(import.meta.dirname, '../../..');

describe.runIf(process.env.GRADIENT_MEASURE === '1')('listing cost of POSIX metadata (measurement)', () => {
  const client = s3Client();
  const s = s3Server();
  let bucket: string;
  let work: { dir: string; remove: () => void };
  const rows: string[] = [];

  beforeAll(async () => {
    bucket = await freshBucket('lcost');
    work = tempDir('gd-lcost-');
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `many/f${String(i).padStart(5, '0')}`, Body: 'x' }));
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  }, 600_000);

  afterAll(async () => {
    console.log(['variant | wall ms | server CPU ms | client CPU ms | HEAD | LIST', ...rows].join('\n'));
    work.remove();
    await emptyAndDeleteBucket(bucket);
    client.destroy();
  });

  async function measure(label: string, cache: Cache, opts: { posixMetadata?: boolean }, cmds: [string, string][]): Promise<void> {
    const { BucketView } = (await import(path.join(impl, 'src/fs/bucket/bucket-view.ts'))) as typeof import('../../../src/fs/bucket/bucket-view.js');
    const { S3Store } = (await import(path.join(impl, 'src/storage/s3/store.ts'))) as typeof import('../../../src/storage/s3/store.js');
    const store = new S3Store({
      bucket,
      endpoint: s.endpoint,
      region: s.region,
      credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    });
    const counts = { HEAD: 0, LIST: 0 };
    const head = store.head.bind(store);
    const list = store.list.bind(store);
    store.head = (k, o) => (counts.HEAD++, head(k, o));
    store.list = (p, o) => (counts.LIST++, list(p, o));
    const view = new BucketView({ store, cache, metadataTtlMs: 5000, attributeStore: cache.attributes, ...opts } as never) as unknown as Filesystem & { close(): void };
    const mounted = await mountForTest(view);
    try {
      for (const [name, cmd] of cmds) {
        counts.HEAD = counts.LIST = 0;
        const cpu = process.cpuUsage();
        const t0 = performance.now();
        const out = await sh(`/usr/bin/time -f '%U %S' bash -c ${JSON.stringify(cmd.replaceAll('MNT', mounted.mountpoint))} 2>&1 >/dev/null | tail -1`);
        const wall = performance.now() - t0;
        const used = process.cpuUsage(cpu);
        const [u, sys] = out.trim().split(' ').map(Number);
        rows.push(`${label}: ${name} | ${wall.toFixed(0)} | ${((used.user + used.system) / 1000).toFixed(0)} | ${(((u ?? 0) + (sys ?? 0)) * 1000).toFixed(0)} | ${counts.HEAD} | ${counts.LIST}`);
      }
    } finally {
      await mounted.cleanup();
      view.close();
      store.close();
    }
  }

  it('ls -l and find over 10k plain objects', async () => {
    const lsl = 'ls -l MNT/many | wc -l';
    const find = 'find MNT/many -type f -newer /etc/hostname | wc -l';
    const variants: [string, { posixMetadata?: boolean }][] = [
      ['posixMetadata on', {}],
      ['posixMetadata off', { posixMetadata: false }],
    ];
    for (const [label, opts] of variants) {
      const dir = path.join(work.dir, label.replace(/\W/g, '-'));
      let cache = await openCache({ dir, maxBytes: 1 << 30 });
      await measure(`${label}, fresh cache`, cache, opts, [
        ['ls -l cold', lsl],
        ['ls -l again', lsl],
      ]);
      await cache.close();
      cache = await openCache({ dir, maxBytes: 1 << 30 });
      await measure(`${label}, remount`, cache, opts, [['ls -l', lsl]]);
      await cache.close();
      cache = await openCache({ dir: `${dir}-find`, maxBytes: 1 << 30 });
      await measure(`${label}, fresh cache`, cache, opts, [['find + stat cold', find]]);
      await cache.close();
    }
    expect(rows.length).toBeGreaterThan(0);
  }, 900_000);
});
