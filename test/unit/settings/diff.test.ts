import { describe, expect, it } from 'vitest';
import { diffSettings } from '../../../src/settings/diff.js';
import { parseSettings } from '../../../src/settings/parse.js';

const parse = (text: string) => parseSettings(text, 'settings.yaml').entries;

describe('diffSettings', () => {
  it('splits entries into added, removed, changed and unchanged', () => {
    const before = parse('a:\n  type: dataset\n  id: d1\n  version: v1\nb:\n  type: dataset\n  id: d2\n  version: v1\nc:\n  type: s3\n  url: s3://bkt\n');
    const after = parse('c:\n  url: s3://bkt\n  type: s3\na:\n  type: dataset\n  id: d1\n  version: v2\nd:\n  type: dataset\n  id: d3\n  version: latest\n');
    expect(diffSettings(before, after)).toEqual({ added: ['d'], removed: ['b'], changed: ['a'], unchanged: ['c'] });
  });

  it('treats everything as added on the first load', () => {
    expect(diffSettings(undefined, parse('a:\n  type: dataset\n  id: d1\n  version: v1\n'))).toEqual({
      added: ['a'],
      removed: [],
      changed: [],
      unchanged: [],
    });
  });

  it('sees a change of type or of a credential reference', () => {
    const before = parse('a:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: secret:k1\n');
    const after = parse('a:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: secret:k2\n');
    expect(diffSettings(before, after).changed).toEqual(['a']);
  });
});
