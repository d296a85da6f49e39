// Shared set-up for the cache integration tests: temp cache dirs, a store on a fresh RGW bucket, cleanup.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Store } from '../../../src/storage/s3/store.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const p = mkdtempSync(path.join(tmpdir(), `gd-${prefix}-`));
  return { path: p, remove: () => rmSync(p, { recursive: true, force: true }) };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface RgwBucket {
  bucket: string;
  store: S3Store;
  /** Deletes every object and the bucket: memstore keeps objects in RAM. */
  remove: () => Promise<void>;
}

export async function rgwBucket(prefix = 'cache'): Promise<RgwBucket> {
  const s = s3Server();
  const bucket = await freshBucket(prefix);
  const store = new S3Store({
    bucket,
    endpoint: s.endpoint,
    region: s.region,
    credentials: { kind: 'static', accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  return {
    bucket,
    store,
    remove: async () => {
      await emptyAndDeleteBucket(bucket);
      store.close();
    },
  };
}

