import { describe, expect, it } from 'vitest';
import { findFileDirClash } from '../../../src/catalog/catalog.js';
import { isCatalogError } from '../../../src/catalog/errors.js';
import { blobKey, commitMarkerKey, journalKey } from '../../../src/catalog/layout.js';
import { comparePaths, isUnder, normalizeDatasetPath } from '../../../src/catalog/paths.js';
import { parseRef } from '../../../src/catalog/refs.js';

describe('parseRef', () => {
  it('parses id:version, id:tag, id:latest, with an optional path', () => {
    expect(parseRef('dst364npcw6ccok:fo5rp4m')).toEqual({ datasetId: 'dst364npcw6ccok', version: 'fo5rp4m', path: '' });
    expect(parseRef('ds1:latest/a//b/./c.txt', { allowPath: true })).toEqual({ datasetId: 'ds1', version: 'latest', path: 'a/b/c.txt' });
    expect(parseRef('ds1:prod/', { allowPath: true }).path).toBe('');
  });
  it('rejects malformed references with the expected syntax in the message', () => {
    for (const bad of ['ds1', ':v', 'ds1:', 'd s:v', 'ds1:v/x', 'ds1:bad tag']) {
      let err: unknown;
      try {
        parseRef(bad);
      } catch (e) {
        err = e;
      }
      expect(isCatalogError(err, 'BadRef'), bad).toBe(true);
      expect((err as Error).message).toContain('<dataset-id>:<version-id|tag|latest>');
    }
    expect(() => parseRef('ds1:v/../x', { allowPath: true })).toThrow(/".." is not allowed/);
  });
});

describe('dataset paths', () => {
  it('normalizes and orders like S3 keys', () => {
    expect(normalizeDatasetPath('/a/./b//c/')).toBe('a/b/c');
    expect(() => normalizeDatasetPath('')).toThrow(/empty/);
    expect(['a/x', 'a.txt', 'a', 'é', 'z'].sort(comparePaths)).toEqual(['a', 'a.txt', 'a/x', 'z', 'é']);
    expect(isUnder('a/b', 'a')).toBe(true);
    expect(isUnder('ab', 'a')).toBe(false);
    expect(isUnder('x', '')).toBe(true);
  });
  it('finds a path that is both a file and a directory', () => {
    expect(findFileDirClash(['a', 'a.txt', 'b/c'])).toBeUndefined();
    expect(findFileDirClash(['a/b/c', 'a/b'])).toEqual({ file: 'a/b', under: 'a/b/c' });
  });
});

describe('layout', () => {
  it('content-addresses blobs and orders commit markers and journal batches by time', () => {
    expect(blobKey('t', 'ab'.repeat(32))).toBe(`t/blobs/sha256/ab/${'ab'.repeat(32)}`);
    const early = commitMarkerKey('t', 'd', 'v1', new Date(1_000));
    const late = commitMarkerKey('t', 'd', 'v0', new Date(20_000));
    expect(early < late).toBe(true);
    expect(journalKey('t', 'd', 'v', 1_000, 'zz') < journalKey('t', 'd', 'v', 1_001, 'aa')).toBe(true);
    expect(journalKey('t', 'd', 'v', 999, 'zz') < journalKey('t', 'd', 'v', 1_000, 'aa')).toBe(true);
  });
});
