// Objects' attributes in the cache's SQLite index: batched writes, read back after a reopen.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';

describe('cache: object attributes index', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gd-attrs-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps what it was told across a close and reopen; deletions too', async () => {
    const cache = await openCache({ dir, maxBytes: 1 << 30 });
    for (let i = 0; i < 1000; i++) cache.attributes.put('s3://b/', `k${i}`, { etag: `e${i}`, size: i, lastModifiedSec: 1, metadata: { mode: '33188' } });
    cache.attributes.put('s3://b/', 'typed', { etag: 'e', size: 1, metadata: {}, contentType: 'text/plain' });
    cache.attributes.delete('s3://b/', 'k0');
    expect(cache.attributes.get('s3://b/', 'k1')).toMatchObject({ etag: 'e1' }); // pending, from memory
    await cache.close();
    const again = await openCache({ dir, maxBytes: 1 << 30 });
    expect(again.attributes.get('s3://b/', 'k999')).toEqual({ etag: 'e999', size: 999, lastModifiedSec: 1, metadata: { mode: '33188' } });
    expect(again.attributes.get('s3://b/', 'typed')).toEqual({ etag: 'e', size: 1, metadata: {}, contentType: 'text/plain' });
    expect(again.attributes.get('s3://b/', 'k0')).toBeUndefined();
    expect(again.attributes.get('s3://other/', 'k1')).toBeUndefined();
    await again.close();
  });
});
