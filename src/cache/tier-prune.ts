// `gradient cache prune --shared --older-than AGE`: removes tier objects uploaded before a cut-off (besides the
// bucket's own lifecycle rules). S3 keeps no last-access time, so age is time since upload; a pruned object a
// node still wants is fetched from the origin once more and uploaded again. Leases and remembered answers
// (refs/) go by the same rule; removing an object a reader is using only sends that reader to the origin.
import type { ObjectStore } from '../storage/object-store.js';

export interface TierPruneResult {
  deleted: number;
  freedBytes: number;
  kept: number;
  keptBytes: number;
}

export async function pruneSharedTier(store: ObjectStore, olderThanMs: number, now = Date.now()): Promise<TierPruneResult> {
  const cutoff = now - olderThanMs;
  const out: TierPruneResult = { deleted: 0, freedBytes: 0, kept: 0, keptBytes: 0 };
  const old: Array<{ key: string; size: number }> = [];
  for await (const page of store.list('')) {
    for (const o of page.objects) {
      if (o.lastModified.getTime() < cutoff) old.push({ key: o.key, size: o.size });
      else {
        out.kept++;
        out.keptBytes += o.size;
      }
    }
  }
  // A few deletes at a time: the tier serves reads meanwhile.
  for (let i = 0; i < old.length; i += 16) {
    await Promise.all(
      old.slice(i, i + 16).map(async (o) => {
        await store.delete(o.key);
        out.deleted++;
        out.freedBytes += o.size;
      }),
    );
  }
  return out;
}
