// Sibling prefetch for a bucket view: which files follow an opened one in its directory's listing order
// (src/fs/sibling-prefetch.ts decides when and how many to fetch ahead). Only a fresh listing is used: a
// prefetch never costs a LIST.
import type { ObjectStore } from '../../storage/object-store.js';
import type { ObjectCache } from '../content.js';
import { SiblingPrefetch } from '../sibling-prefetch.js';
import { childKey, splitKey, type BucketMetadata } from './metadata.js';

export class BucketSiblings {
  private readonly pattern = new SiblingPrefetch<string>();

  constructor(
    private readonly meta: BucketMetadata,
    private readonly store: ObjectStore,
    private readonly cache: ObjectCache,
  ) {}

  /** An object was opened for reading. */
  opened(key: string): void {
    const cache = this.cache;
    if (!cache.prefetch) return;
    const { dir, name } = splitKey(key);
    const order = this.meta.listingOrder(dir);
    const position = order?.position.get(name);
    if (!order || position === undefined) return;
    const location = this.store.location;
    this.pattern.opened(dir, position, order.names.length, (i) => {
      const sibling = order.names[i]!;
      const child = order.children.get(sibling);
      if (child?.kind !== 'file' || child.etag === '') return undefined;
      const siblingKey = childKey(dir, sibling);
      return {
        size: child.size,
        prefetch: () =>
          cache.prefetch!(
            { kind: 'object', location, key: siblingKey, etag: child.etag },
            { store: this.store, key: siblingKey, size: child.size, ifMatch: child.etag },
          ),
      };
    });
  }
}
