// Attributes remembered by object version: trusted while the bucket shows the same version, our own uploads
// matched without a server time, and kept in a persistent store.
import { describe, expect, it } from 'vitest';
import { AttributeCache, type AttributeRecord, type AttributeStore } from '../../../src/fs/bucket/attribute-cache.js';

const v = (etag: string, mtimeMs: number, size = 3) => ({ etag, size, mtimeMs });
const A = { metadata: { mode: '33261' } };

describe('attribute cache', () => {
  it('answers for the version it was told of, to the second: a metadata copy (new LastModified) is a new version', () => {
    const c = new AttributeCache({ ttlMs: 5000 });
    c.set('k', v('e', 10_000), A, 'head');
    expect(c.get('k', v('e', 10_900))).toEqual(A); // a listing's ms vs a HEAD's seconds
    expect(c.get('k', v('e', 11_000))).toBeUndefined();
    expect(c.get('k', v('other', 10_000))).toBeUndefined();
    expect(c.get('k', v('e', 10_000, 4))).toBeUndefined();
  });

  it("our upload's answer (our clock) matches itself, and the first listed version with its bytes within the TTL", () => {
    const c = new AttributeCache({ ttlMs: 5000 });
    c.set('k', v('e', 123_456), A, 'upload');
    expect(c.get('k', v('e', 123_456))).toEqual(A);
    expect(c.get('k', v('e', 120_000))).toEqual(A); // the server's LastModified, adopted
    expect(c.get('k', v('e', 130_000))).toBeUndefined();
  });

  it('an answer learnt within its version\'s second (or the next) is trusted for the TTL only: a second change could share that second', async () => {
    const c = new AttributeCache({ ttlMs: 20 });
    const now = Date.now();
    c.set('fresh', v('e', now), A, 'head');
    c.set('old', v('e', now - 5000), A, 'head');
    expect(c.get('fresh', v('e', now))).toEqual(A);
    await new Promise((r) => setTimeout(r, 30));
    expect(c.get('fresh', v('e', now))).toBeUndefined();
    expect(c.get('old', v('e', now - 5000))).toEqual(A);
  });

  it('keeps answers with a server time in a persistent store, and reads them back in a new process', () => {
    const rows = new Map<string, AttributeRecord>();
    const store: AttributeStore = {
      get: (l, k) => rows.get(`${l}|${k}`),
      put: (l, k, r) => void rows.set(`${l}|${k}`, r),
      delete: (l, k) => void rows.delete(`${l}|${k}`),
    };
    new AttributeCache({ ttlMs: 5000, persist: { store, location: 's3://b/' } }).set('k', v('e', 10_000), { ...A, contentType: 'text/x' }, 'head');
    expect(rows.get('s3://b/|k')).toEqual({ etag: 'e', size: 3, lastModifiedSec: 10, metadata: A.metadata, contentType: 'text/x' });
    const again = new AttributeCache({ ttlMs: 5000, persist: { store, location: 's3://b/' } });
    expect(again.get('k', v('e', 10_500))).toEqual({ ...A, contentType: 'text/x' });
    again.delete('k');
    expect(rows.size).toBe(0);
  });
});
