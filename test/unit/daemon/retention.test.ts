// A mounted version's parsed manifest (a million objects for a million files) must not outlive the building of
// its view: neither the reconciler nor the namespace may keep a reference to it.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { ResolvedVersion } from '../../../src/catalog/catalog.js';
import type { BucketMounts } from '../../../src/daemon/bucket-mounts.js';
import type { ContentCache } from '../../../src/fs/content.js';
import { RootFs } from '../../../src/fs/root.js';
import { Namespace, type DaemonPayload } from '../../../src/daemon/namespace.js';
import { Reconciler, type MountEntry } from '../../../src/daemon/reconciler.js';
import type { ObjectStore } from '../../../src/storage/object-store.js';
import type { RequestContext } from '../../../src/fuse/filesystem.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** True once nothing references the target: WeakRefs are cleared after a GC outside the current job. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

function version(versionId: string): ResolvedVersion {
  return {
    datasetId: 'dst1',
    versionId,
    committed: { committedAt: '2026-01-01T00:00:00.000Z', manifestSha256: '0'.repeat(64), fileCount: 2, bytes: 3 },
    manifest: {
      format: 1,
      datasetId: 'dst1',
      versionId,
      files: [
        { path: 'a/b.txt', size: 1, sha256: '1'.repeat(64), mtime: 1 },
        { path: 'c.txt', size: 2, sha256: '2'.repeat(64), mtime: 2 },
      ],
    },
    store: {} as ObjectStore,
    provider: { id: 'managed', name: 'm', type: 'local', path: '/nowhere' },
    blobKey: (e) => `blobs/${e.sha256}`,
  };
}

const entry = (v: string): MountEntry => ({ type: 'dataset', id: 'dst1', version: v });
const ctx = {} as RequestContext;

describe('a mounted version keeps no parsed manifest', () => {
  it('in the reconciler and the namespace, across mount and swap', async () => {
    const root = new RootFs();
    const manifests: WeakRef<object>[] = [];
    const rec = new Reconciler<DaemonPayload>({
      target: new Namespace(root, {} as ContentCache, { retire: () => undefined } as unknown as BucketMounts),
      resolve: async (_name, e) => {
        const v = version(e.type === 'dataset' ? e.version : '');
        manifests.push(new WeakRef(v.manifest));
        return { resolved: `dst1:${v.versionId}`, identity: v.versionId, payload: { kind: 'dataset', version: v } };
      },
    });
    expect(await rec.apply(new Map([['ds', entry('v1')]]))).toMatchObject({ mounted: ['ds'] });
    expect(await rec.apply(new Map([['ds', entry('v2')]]))).toMatchObject({ swapped: ['ds'] });
    expect(await rec.apply(new Map([['ds', entry('v2')]]), undefined, { refresh: true })).toMatchObject({ unchanged: ['ds'] });

    // The view still serves the version from its own compact copy.
    const view = root.viewOf('ds')!;
    const dir = await view.lookup(ctx, 1, 'a');
    expect((await view.lookup(ctx, dir.attr.ino, 'b.txt')).attr.size).toBe(1);
    expect(rec.status()[0]).toMatchObject({ resolved: 'dst1:v2', state: 'ok' });
    expect(manifests).toHaveLength(3);
    for (const m of manifests) expect(await collected(m)).toBe(true);
  });
});
