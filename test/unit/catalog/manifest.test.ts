import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/catalog/records.js';

const entry = { path: 'a/b.txt', size: 3, sha256: 'a'.repeat(64), mtime: 1.7e12 };
const bytes = (files: unknown[], header: object = { format: 1, datasetId: 'd', versionId: 'v' }) =>
  Buffer.from(JSON.stringify({ ...header, files }));

describe('parseManifest', () => {
  it('reads a manifest', () => {
    expect(parseManifest(bytes([entry]), 'm.json')).toEqual({ format: 1, datasetId: 'd', versionId: 'v', files: [entry] });
  });

  it('refuses a bad header or any bad entry, naming it', () => {
    expect(() => parseManifest(Buffer.from('{'), 'm.json')).toThrow('m.json is not valid JSON');
    expect(() => parseManifest(bytes([], { format: 2, datasetId: 'd', versionId: 'v' }), 'm.json')).toThrow(/m.json is invalid/);
    for (const bad of [null, 'x', { ...entry, path: 1 }, { ...entry, size: -1 }, { ...entry, size: 1.5 }, { ...entry, sha256: 'A'.repeat(64) }, { ...entry, mtime: '1' }]) {
      expect(() => parseManifest(bytes([entry, bad]), 'm.json')).toThrow('m.json is invalid: files[1] is not {path, size, sha256, mtime}');
    }
  });
});
