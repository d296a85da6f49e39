// Removing a tree of catalog objects (a version, a dataset): every object under a prefix, in parallel, and the
// one record whose presence makes the tree exist (version.json, dataset.json) last, so that an interrupted
// removal leaves a tree that still shows and can be removed again, never orphans that nothing lists.
import type { ObjectStore } from '../storage/object-store.js';
import { mapLimit } from './map-limit.js';

const REMOVE_PARALLEL = 16;

/** Deletes everything under `prefix`, `lastKey` after the rest; returns how many objects went. */
export async function removeTree(store: ObjectStore, prefix: string, lastKey: string): Promise<number> {
  const keys: string[] = [];
  for await (const page of store.list(prefix)) keys.push(...page.objects.map((o) => o.key));
  const first = keys.filter((k) => k !== lastKey);
  await mapLimit(first, REMOVE_PARALLEL, (key) => store.delete(key));
  await store.delete(lastKey); // deleting a key that is not there is not an error, in S3 as here
  return keys.length;
}
