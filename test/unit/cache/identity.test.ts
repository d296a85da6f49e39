import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { canonicalIdentity, dataPath, entryId } from '../../../src/cache/identity.js';
import { isCacheError } from '../../../src/cache/errors.js';

const sha = 'ab'.repeat(32);

describe('cache identities', () => {
  it('equal identities share an entry, different pins do not', () => {
    expect(entryId({ kind: 'content', sha256: sha })).toBe(entryId({ kind: 'content', sha256: sha.toUpperCase() }));
    const a = { kind: 'object' as const, location: 's3://b/p', key: 'k', etag: '"e1"' };
    expect(entryId(a)).toBe(entryId({ ...a, etag: 'e1' }));
    expect(entryId(a)).not.toBe(entryId({ ...a, etag: 'e2' }));
    expect(entryId({ ...a, versionId: 'v1' })).toBe(entryId({ ...a, etag: 'other', versionId: 'v1' }));
    expect(entryId({ kind: 'content', sha256: sha })).not.toBe(entryId({ ...a, etag: sha }));
  });

  it('rejects identities that do not pin bytes', () => {
    expect(() => canonicalIdentity({ kind: 'content', sha256: 'nothex' })).toThrow(/SHA-256/);
    let err: unknown;
    try {
      canonicalIdentity({ kind: 'object', location: 's3://b', key: 'k' });
    } catch (e) {
      err = e;
    }
    expect(isCacheError(err, 'InvalidIdentity')).toBe(true);
  });

  it('no identity can name a path outside the cache directory', () => {
    const dir = '/var/cache/gradient';
    for (const key of ['../../etc/passwd', '/abs', 'a/../../b', '\0', '..']) {
      const id = entryId({ kind: 'object', location: '../..', key, etag: '../x' });
      const p = dataPath(dir, id);
      expect(p.startsWith(path.join(dir, 'data') + path.sep)).toBe(true);
      expect(path.basename(p)).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(() => dataPath(dir, '../../etc')).toThrow();
  });
});
