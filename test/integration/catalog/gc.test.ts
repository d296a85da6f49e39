// gc against puts: a put uploads a blob before it journals the entry naming it, so gc must keep a blob that is
// named by any journal or manifest, or younger than the grace period. First the one dangerous schedule, step
// by step (uploaded before gc lists blobs, journaled after gc read the journals); then gc running in a loop on
// RGW while a real put of hundreds of files goes on, and every file read back.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../../src/catalog/catalog.js';
import { deleteVersion } from '../../../src/catalog/delete.js';
import { collectGarbage } from '../../../src/catalog/gc.js';
import { getFiles } from '../../../src/catalog/get.js';
import { blobKey } from '../../../src/catalog/layout.js';
import { putFiles } from '../../../src/catalog/put.js';
import type { StorageProvider } from '../../../src/config/config-file.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { freshBucket, s3Client, s3Server } from '../../helpers/s3.js';
import { writeTree } from '../../helpers/tree.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('gc and a put at the same time', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'gd-gc-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('keeps a blob uploaded before gc listed the blobs and journaled after gc read the journals, while it is young', async () => {
    const store = new MemoryStore();
    const provider: StorageProvider = { id: 'mem', name: 'memory', type: 'local', path: '/unused' };
    const catalog = new Catalog({ teamId: 't', providers: [provider], managedProviderId: 'mem', openStore: () => store });
    const ds = await catalog.createDataset({ name: 'race' });
    const v = await catalog.createVersion(ds.id);
    // The put's first half: the blob is there, the entry naming it is not yet.
    const bytes = Buffer.from('uploaded, not yet journaled');
    await store.write(blobKey('t', sha(bytes)), bytes);
    const kept = await collectGarbage(catalog, { graceMs: 60_000, dryRun: false });
    expect(kept[0]).toMatchObject({ blobs: 1, referenced: 0, young: 1, removed: [] });
    // The second half: the entry lands, and from then on the name keeps the blob whatever its age.
    await catalog.appendJournal(ds.id, v.id, [{ path: 'f', size: bytes.length, sha256: sha(bytes), mtime: 0 }]);
    const named = await collectGarbage(catalog, { graceMs: 0, dryRun: false });
    expect(named[0]).toMatchObject({ blobs: 1, referenced: 1, removed: [] });
    // Unnamed and past the grace period is what goes.
    const orphan = Buffer.from('nothing names me');
    await store.write(blobKey('t', sha(orphan)), orphan);
    expect((await collectGarbage(catalog, { graceMs: 0, dryRun: false }))[0]!.removed).toEqual([{ sha256: sha(orphan), bytes: orphan.length }]);
  });

  it('runs gc over and over during a real put on RGW: garbage goes, every file of the put reads back', async () => {
    const bucket = await freshBucket('gc-race');
    const s = s3Server();
    const provider: StorageProvider = { id: 'rgw', name: 'rgw', type: 's3', bucket, endpoint: s.endpoint, accessKey: s.accessKeyId, secretAccessKey: s.secretAccessKey };
    const catalog = new Catalog({ teamId: 'team', providers: [provider], managedProviderId: 'rgw' });
    const GRACE_MS = 3000;
    try {
      // Garbage: the contents of a version deleted before it was committed, older than the grace period.
      const ds = await catalog.createDataset({ name: 'race' });
      const scrap = await catalog.createVersion(ds.id);
      const garbage: Record<string, Buffer> = {};
      for (let i = 0; i < 20; i++) garbage[`g${i}.bin`] = randomBytes(1000 + i);
      await putFiles(catalog, `${ds.id}:${scrap.id}`, await writeTree(path.join(tmp, 'garbage'), garbage));
      await deleteVersion(catalog, ds.id, scrap.id);
      await new Promise((r) => setTimeout(r, GRACE_MS + 300));

      // The put: many small files, each journaled within half a second of its upload.
      const files: Record<string, Buffer> = {};
      for (let i = 0; i < 400; i++) files[`dir${i % 7}/f${i}.bin`] = randomBytes(512 + (i % 97));
      const src = await writeTree(path.join(tmp, 'put'), files);
      const v = await catalog.createVersion(ds.id);
      let putDone = false;
      const put = putFiles(catalog, `${ds.id}:${v.id}`, src, { concurrency: 4, journalIntervalMs: 500 }).finally(() => (putDone = true));
      let rounds = 0;
      let removed = 0;
      while (!putDone) {
        const [r] = await collectGarbage(catalog, { graceMs: GRACE_MS, dryRun: false });
        removed += r!.removed.length;
        rounds++;
      }
      expect(await put).toMatchObject({ files: 400, uploadedFiles: 400 });
      removed += (await collectGarbage(catalog, { graceMs: GRACE_MS, dryRun: false }))[0]!.removed.length;
      expect(rounds).toBeGreaterThanOrEqual(2); // gc really ran while the put did
      expect(removed).toBe(20);
      for (const bytes of Object.values(garbage)) {
        await expect(s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: blobKey('team', sha(bytes)) }))).rejects.toMatchObject({ name: 'NotFound' });
      }

      await catalog.commitVersion(ds.id, v.id);
      const out = path.join(tmp, 'out');
      expect(await getFiles(catalog, `${ds.id}:latest`, out)).toMatchObject({ files: 400 });
      for (const [rel, bytes] of Object.entries(files)) expect((await readFile(path.join(out, rel))).equals(bytes), rel).toBe(true);
    } finally {
      catalog.close();
      await emptyAndDeleteBucket(bucket);
    }
  }, 120_000);
});
