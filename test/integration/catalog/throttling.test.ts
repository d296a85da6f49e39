// A put through a proxy that answers a share of requests with 503 SlowDown (as DigitalOcean Spaces does
// under load) and resets some connections: the put retries its way through and the version is complete.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../../src/catalog/catalog.js';
import { putFiles } from '../../../src/catalog/put.js';
import { emptyAndDeleteBucket } from '../../helpers/buckets.js';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';
import { freshBucket, s3Server } from '../../helpers/s3.js';
import { writeTree } from '../../helpers/tree.js';

describe('catalog under throttling', () => {
  let bucket: string;
  let proxy: FaultProxy;
  let tmp: string;
  beforeAll(async () => {
    bucket = await freshBucket('throttle');
    proxy = await startFaultProxy(s3Server().endpoint);
    tmp = await mkdtemp(path.join(tmpdir(), 'gd-throttle-'));
  });
  afterAll(async () => {
    await proxy.close();
    await emptyAndDeleteBucket(bucket);
    await rm(tmp, { recursive: true, force: true });
  });

  it('puts and commits 200 files while 1 request in 4 is refused with SlowDown and 1 in 25 is reset', async () => {
    const s = s3Server();
    const cat = new Catalog({
      teamId: 't',
      managedProviderId: 'sp',
      providers: [
        { id: 'sp', name: 'flaky', type: 's3', bucket, endpoint: proxy.endpoint, accessKey: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      ],
    });
    const ds = await cat.createDataset({ name: 'flaky' });
    const v = await cat.createVersion(ds.id);
    const tree: Record<string, string> = {};
    for (let i = 0; i < 200; i++) tree[`d/${i}.txt`] = `file ${i}`;
    const src = await writeTree(path.join(tmp, 'src'), tree);
    // Every 25th request is reset and every 4th throttled, but no single request is faulted more than twice:
    // with a fixed set of concurrent workers cycling in lockstep, "every 4th" alone can hand the same request
    // the throttled slot on every retry, a starvation no real server produces.
    const faults = new Map<string, number>();
    proxy.plan = (m, u, n) => {
      const fault = n % 25 === 0 ? 'reset' : n % 4 === 0 ? 'slowdown' : 'pass';
      const key = `${m} ${u}`;
      const seen = faults.get(key) ?? 0;
      if (fault === 'pass' || seen >= 2) return 'pass';
      faults.set(key, seen + 1);
      return fault;
    };
    const res = await putFiles(cat, `${ds.id}:${v.id}`, src);
    await cat.commitVersion(ds.id, v.id);
    proxy.plan = () => 'pass';
    const injected = [...faults.values()].reduce((a, b) => a + b, 0);
    expect(injected).toBeGreaterThan(50); // the put really went through heavy throttling
    expect([...faults.values()].some((times) => times === 2)).toBe(true); // and through repeated faults
    expect(res.files).toBe(200);
    const r = await cat.resolve(`${ds.id}:latest`);
    expect(r.manifest.files).toHaveLength(200);
    expect((await r.store.read(r.blobKey(r.manifest.files[0]!))).toString()).toMatch(/^file \d+$/);
    cat.close();
  });
});
