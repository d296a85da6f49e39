// The daemon's MountTarget: turns what each settings entry resolved to into a view under the mount
// root. Swapping = attaching a new view under the same name; the root tells the kernel to forget the
// name, and files already open keep the view they were opened through.
import type { ResolvedVersion } from '../catalog/catalog.js';
import type { ContentCache } from '../fs/content.js';
import type { RootFs } from '../fs/root.js';
import { datasetVersionView, embeddedView } from '../fs/views.js';
import type { Filesystem } from '../fuse/filesystem.js';
import { EntryError, type MountTarget, type ResolvedMount } from './reconciler.js';
import type { MountPayload } from './resolvers.js';

export type DaemonPayload = MountPayload<ResolvedVersion>;

export class Namespace implements MountTarget<DaemonPayload> {
  constructor(
    private readonly root: RootFs,
    private readonly cache: ContentCache,
  ) {}

  mount(name: string, m: ResolvedMount<DaemonPayload>): void {
    this.root.attach(name, this.viewFor(m.payload));
  }

  swap(name: string, m: ResolvedMount<DaemonPayload>): void {
    this.root.attach(name, this.viewFor(m.payload));
  }

  unmount(name: string): void {
    this.root.detach(name);
  }

  private viewFor(p: DaemonPayload): Filesystem {
    switch (p.kind) {
      case 'dataset': {
        const v = p.version;
        return datasetVersionView(v.manifest.files, {
          cache: this.cache,
          store: v.store,
          blobKey: (sha256) => v.blobKey({ sha256 }),
        }, { committedAtMs: Date.parse(v.committed.committedAt) || 0 });
      }
      case 'embedded':
        return embeddedView(p.dataset);
      case 's3':
      case 'public-s3':
        throw new EntryError('NotSupported', 'S3 bucket mounts are not available in this version of gradient-datasets yet', 'type');
    }
  }
}
