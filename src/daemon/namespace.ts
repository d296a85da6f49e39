// The daemon's MountTarget: turns what each settings entry resolved to into a view under the mount
// root. Swapping = attaching a new view under the same name; the root tells the kernel to forget the
// name, and files already open keep the view they were opened through.
import type { ResolvedVersion } from '../catalog/catalog.js';
import type { ContentCache } from '../fs/content.js';
import type { RootFs } from '../fs/root.js';
import { BucketView } from '../fs/bucket/index.js';
import { datasetVersionView, embeddedView } from '../fs/views.js';
import type { Filesystem } from '../fuse/filesystem.js';
import type { BucketMounts } from './bucket-mounts.js';
import type { Logger } from './logger.js';
import type { MountTarget, ResolvedMount } from './reconciler.js';
import type { Outputs } from './outputs.js';
import type { MountPayload } from './resolvers.js';

export type DaemonPayload = MountPayload<ResolvedVersion>;

export class Namespace implements MountTarget<DaemonPayload> {
  constructor(
    private readonly root: RootFs,
    private readonly cache: ContentCache,
    private readonly buckets: BucketMounts,
    private readonly log?: Logger,
    /** A committed version by `<dataset>:<version>` (the catalog), to build a view an earlier process served. */
    private readonly resolveVersion?: (ref: string) => Promise<ResolvedVersion>,
    /** Dataset versions served read-write. */
    private readonly outputs?: Outputs,
  ) {}

  async mount(name: string, m: ResolvedMount<DaemonPayload>): Promise<void> {
    this.root.attach(name, await this.viewFor(name, m.payload), m.identity);
  }

  async swap(name: string, m: ResolvedMount<DaemonPayload>): Promise<void> {
    const old = this.root.viewOf(name);
    this.root.attach(name, await this.viewFor(name, m.payload), m.identity);
    if (old) this.retire(name, old);
  }

  private retire(name: string, view: Filesystem): void {
    this.buckets.retire(view);
    if (view instanceof BucketView) this.outputs?.detached(name, view);
  }

  /**
   * After a takeover of the FUSE session: the view an earlier process served as `identity` for the inodes the
   * kernel still holds in it, when settings switched the entry away meanwhile (a version switch during a
   * restart). Dataset versions are immutable, so the same version is the same tree; other kinds are not rebuilt
   * (their inodes become ESTALE).
   */
  async restoreView(name: string, identity: string): Promise<Filesystem | undefined> {
    const ref = identity.startsWith('dataset:') ? identity.slice('dataset:'.length) : undefined;
    if (!ref || !this.resolveVersion) return undefined;
    const version = await this.resolveVersion(ref);
    return this.viewFor(name, { kind: 'dataset', version });
  }

  unmount(name: string): void {
    const old = this.root.viewOf(name);
    this.root.detach(name);
    if (old) this.retire(name, old);
  }

  private async viewFor(name: string, p: DaemonPayload): Promise<Filesystem> {
    switch (p.kind) {
      case 'dataset': {
        // Nothing the view keeps may reference `p`: it holds the parsed manifest, which the view copies
        // into compact arrays and must not outlive this call.
        const { store, blobKey } = p.version;
        return datasetVersionView(p.version.manifest.files, {
          cache: this.cache,
          store,
          blobKey: (sha256) => blobKey({ sha256 }),
        }, { committedAtMs: Date.parse(p.version.committed.committedAt) || 0, log: this.log });
      }
      case 'embedded':
        return embeddedView(p.dataset);
      case 's3':
      case 'public-s3':
        return this.buckets.viewFor(name, p);
      case 'output': {
        const view = await this.buckets.outputView(name, p.store);
        this.outputs?.attached(name, p.store, view);
        return view;
      }
    }
  }
}
