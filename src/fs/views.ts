// Building views from what an entry resolved to.
import type { EmbeddedDataset, MaterializedDataset } from '../catalog/embedded-mnist.js';
import type { ObjectStore } from '../storage/object-store.js';
import { CachedContent, LocalFileContent, MemoryContent, type ContentCache, type ObjectCache } from './content.js';
import { Tree } from './tree.js';
import { TreeView, type TreeViewOptions } from './tree-view.js';

export interface VersionFile {
  path: string;
  size: number;
  sha256: string;
  /** ms since the epoch */
  mtime: number;
}

/** A committed dataset version: metadata from its manifest, bytes through the cache. */
export function datasetVersionView(
  files: readonly VersionFile[],
  source: { cache: ContentCache; store: ObjectStore; blobKey: (sha256: string) => string },
  opts: TreeViewOptions & { committedAtMs?: number } = {},
): TreeView {
  const tree = Tree.build(files.map((f) => ({ path: f.path, size: f.size, mtimeMs: f.mtime })), opts.committedAtMs ?? 0);
  return new TreeView(tree, new CachedContent(source.cache, source.store, source.blobKey, files), opts);
}

/** The embedded sample (MNIST), served from memory, or from its local files once written out. */
export function embeddedView(dataset: EmbeddedDataset | MaterializedDataset, opts: TreeViewOptions = {}): TreeView {
  const tree = Tree.build(
    dataset.files.map((f) => ({ path: f.path, size: f.size, mtimeMs: f.mtime.getTime() })),
    dataset.files[0]?.mtime.getTime() ?? 0,
  );
  const files = dataset.files;
  const content = files.every((f) => 'localPath' in f)
    ? new LocalFileContent(files.map((f) => f.localPath))
    : new MemoryContent(files as readonly EmbeddedDataset['files'][number][]);
  return new TreeView(tree, content, opts);
}

/**
 * One bucket object pinned by ETag (and VersionId when given): a read-only directory holding that file.
 * Every GET carries If-Match (and the VersionId), so a changed object fails instead of serving other bytes.
 */
export function pinnedObjectView(
  store: ObjectStore,
  cache: ObjectCache,
  object: { name: string; size: number; etag: string; versionId?: string | undefined; mtimeMs: number },
  opts: TreeViewOptions = {},
): TreeView {
  const tree = Tree.build([{ path: object.name, size: object.size, mtimeMs: object.mtimeMs }], object.mtimeMs);
  const content = {
    async open() {
      const identity = { kind: 'object' as const, location: store.location, key: object.name, etag: object.etag };
      const source = { store, key: object.name, size: object.size, ifMatch: object.etag };
      const handle = await cache.open(
        object.versionId ? { ...identity, versionId: object.versionId } : identity,
        object.versionId ? { ...source, versionId: object.versionId } : source,
      );
      return { read: handle.read.bind(handle), backingPath: () => handle.completePath(), close: () => handle.close() };
    },
  };
  return new TreeView(tree, content, opts);
}
