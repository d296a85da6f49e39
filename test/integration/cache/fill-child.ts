// Run as a separate process by crash.test.ts (via vite-node) and killed with SIGKILL mid-fill: it opens the
// cache and keeps filling it with a mix of whole small files, random blocks and sequential scans of large
// objects, forever, printing one line per completed read so the parent can choose its moment.
import { randomInt } from 'node:crypto';
import { openCache } from '../../../src/cache/index.js';
import { nativeFuse } from '../../../src/fuse/native.js';
import { S3Store } from '../../../src/storage/s3/store.js';

interface Obj {
  key: string;
  size: number;
  etag: string;
}

const [cacheDir, bucket, objectsJson] = process.argv.slice(2);
if (!cacheDir || !bucket || !objectsJson) throw new Error('usage: fill-child <cacheDir> <bucket> <objects.json>');
const objects = JSON.parse(objectsJson) as Obj[];
const store = new S3Store({
  bucket,
  endpoint: process.env.S3_ENDPOINT,
  credentials: {
    kind: 'static',
    accessKeyId: process.env.AWS_ACCESS_KEY_ID!,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY!,
  },
});
// Short flush interval: many group commits, so a kill lands between every kind of step. GD_FILL_SYNCFS=1:
// flushes made durable by syncfs, as in the daemon, instead of an fdatasync per file.
const services = process.env.GD_FILL_SYNCFS ? { syncFilesystem: (fd: number) => nativeFuse().syncfs(fd) } : {};
const cache = await openCache({ dir: cacheDir, maxBytes: '1G', minFreeBytes: 0, flushIntervalMs: 5 }, undefined, services);
let n = 0;
const worker = async (): Promise<never> => {
  for (;;) {
    const o = objects[randomInt(0, objects.length)]!;
    const h = await cache.open({ kind: 'object', location: store.location, key: o.key, etag: o.etag }, { store, key: o.key, size: o.size });
    if (randomInt(0, 3) === 0) {
      for (let off = 0; off < o.size; off += 256 * 1024) await h.read(off, 256 * 1024);
    } else {
      await h.read(randomInt(0, o.size), 64 * 1024);
    }
    h.close();
    process.stdout.write(`read ${++n}\n`);
  }
};
await Promise.all([worker(), worker(), worker()]);
