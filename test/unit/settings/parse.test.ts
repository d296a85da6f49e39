import { describe, expect, it } from 'vitest';
import { isSettingsError, SettingsError } from '../../../src/settings/errors.js';
import { locate, parseSettings } from '../../../src/settings/parse.js';

const FILE = 'settings.yaml';

function errorOf(text: string): SettingsError {
  try {
    parseSettings(text, FILE);
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error('expected a SettingsError');
}

describe('parseSettings', () => {
  it('parses the format users already have, in file order', () => {
    const s = parseSettings(
      [
        'quarterly-reports:            # mounts in /datasets/quarterly-reports',
        '  type: dataset',
        '  id: dst123abc',
        '  version: fo5rp4m',
        'my-bucket-data:',
        '  type: s3',
        '  url: s3://my-bucket/my-data',
        '  accessKeyId: AK123',
        '  secretAccessKey: secret:my-bucket-secret-key',
        '  region: "us-west-1"',
        '  endpoint: ""               # Gradient\'s template leaves this empty',
      ].join('\n'),
      FILE,
    );
    expect([...s.entries.keys()]).toEqual(['quarterly-reports', 'my-bucket-data']);
    expect(s.entries.get('quarterly-reports')).toEqual({ type: 'dataset', id: 'dst123abc', version: 'fo5rp4m' });
    expect(s.entries.get('my-bucket-data')).toEqual({
      type: 's3',
      url: 's3://my-bucket/my-data',
      bucket: 'my-bucket',
      prefix: 'my-data',
      accessKeyId: 'AK123',
      secretAccessKey: 'secret:my-bucket-secret-key',
      region: 'us-west-1',
      readOnly: false,
    });
    expect(locate(s, 'quarterly-reports', 'version')).toBe('settings.yaml:4:12: quarterly-reports.version');
    expect(locate(s, 'my-bucket-data')).toBe('settings.yaml:5:1: my-bucket-data');
  });

  it('accepts an empty file and a comment-only file as no entries', () => {
    expect(parseSettings('', FILE).entries.size).toBe(0);
    expect(parseSettings('# nothing mounted yet\n', FILE).entries.size).toBe(0);
  });

  it('reads pinning and readOnly; a pinned source is read-only', () => {
    const s = parseSettings('pinned:\n  type: s3\n  url: s3://b-1/mnist.zip\n  etag: ee1d4fd1b3a97b5384355941ee99d3e4\n', FILE);
    expect(s.entries.get('pinned')).toMatchObject({ readOnly: true, etag: 'ee1d4fd1b3a97b5384355941ee99d3e4', prefix: 'mnist.zip' });
    const ro = parseSettings('ro:\n  type: s3\n  url: s3://bucket\n  readOnly: true\n  endpoint: http://127.0.0.1:9000\n', FILE);
    expect(ro.entries.get('ro')).toMatchObject({ readOnly: true, bucket: 'bucket', prefix: '', endpoint: 'http://127.0.0.1:9000' });
  });

  it('reads output entries: version new, from, commit onExit; refuses from without new and other commit values', () => {
    const s = parseSettings('out:\n  type: dataset\n  id: dst1\n  version: new\n  from: latest\n  commit: onExit\n', FILE);
    expect(s.entries.get('out')).toEqual({ type: 'dataset', id: 'dst1', version: 'new', from: 'latest', commit: 'onExit' });
    const fromOld = errorOf('out:\n  type: dataset\n  id: dst1\n  version: v1abcde\n  from: latest\n');
    expect(fromOld.message).toMatch(/^settings\.yaml:5:9: out\.from: applies to `version: new` only/);
    const commit = errorOf('out:\n  type: dataset\n  id: dst1\n  version: new\n  commit: always\n');
    expect(commit.message).toBe('settings.yaml:5:11: out.commit: must be "onExit"');
  });

  it('names file, line, column and field for a missing field', () => {
    const err = errorOf('quarterly-reports:\n  type: dataset\n  id: dst123abc\n');
    expect(err.code).toBe('SETTINGS_INVALID');
    expect(err.message).toBe('settings.yaml:1:1: quarterly-reports.version: required');
  });

  it('rejects unknown fields at the field key', () => {
    const err = errorOf('a:\n  type: dataset\n  id: dst1\n  verison: v1\n  version: v1\n');
    expect(err.message).toBe('settings.yaml:4:3: a.verison: unknown field for type dataset');
  });

  it('reports every issue at once with its own position', () => {
    const err = errorOf('a:\n  type: dataset\n  id: 5\n  version: v1\nb:\n  type: ftp\n');
    expect(err.issues.map((i) => `${i.line}:${i.col} ${i.field}`)).toEqual(['3:7 a.id', '6:9 b.type']);
    expect(err.message).toContain('a.id: expected a string, got a number (quote it)');
    expect(err.message).toContain('b.type: must be "dataset" or "s3"');
  });

  it('rejects region together with endpoint, and half a key pair', () => {
    const both = errorOf('x:\n  type: s3\n  url: s3://bkt\n  region: us-east-1\n  endpoint: https://nyc3.digitaloceanspaces.com\n');
    expect(both.message).toBe('settings.yaml:5:13: x.endpoint: set either region or endpoint, not both');
    const half = errorOf('x:\n  type: s3\n  url: s3://bkt\n  secretAccessKey: secret:k\n');
    expect(half.message).toMatch(/^settings\.yaml:1:1: x\.accessKeyId: required when the other key is set/);
  });

  it('rejects a pin on a prefix and readOnly: false with a pin', () => {
    const err = errorOf('x:\n  type: s3\n  url: s3://bkt/dir/\n  versionId: abc\n  readOnly: false\n');
    expect(err.issues.map((i) => i.field).sort()).toEqual(['x.readOnly', 'x.versionId']);
  });

  it('rejects invalid names', () => {
    for (const [yaml, why] of [
      ['"..":\n  type: dataset\n  id: d\n  version: v\n', /"\.\." is not a valid directory name/],
      ['".":\n  type: dataset\n  id: d\n  version: v\n', /"\." is not a valid directory name/],
      ['"a/b":\n  type: dataset\n  id: d\n  version: v\n', /cannot contain "\/"/],
      ['"":\n  type: dataset\n  id: d\n  version: v\n', /the name is empty/],
      ['"a\\0b":\n  type: dataset\n  id: d\n  version: v\n', /NUL/],
      [`${'x'.repeat(256)}:\n  type: dataset\n  id: d\n  version: v\n`, /256 bytes long; the limit is 255/],
    ] as const) {
      const err = errorOf(yaml);
      expect(err.message).toMatch(/^settings\.yaml:1:1: /);
      expect(err.message).toMatch(why);
    }
    // 255 bytes of multi-byte characters is fine; 256 is not.
    expect(() => parseSettings(`${'é'.repeat(127)}a:\n  type: dataset\n  id: d\n  version: v\n`, FILE)).not.toThrow();
  });

  it('reads POSIX defaults for buckets written by other tools: ids, octal modes as written, posixMetadata', () => {
    const text = 'b:\n  type: s3\n  url: s3://bucket\n  uid: 1000\n  gid: 100\n  fileMode: 0644\n  dirMode: "0o750"\n  posixMetadata: false\n';
    expect(parseSettings(text, FILE).entries.get('b')).toMatchObject({ uid: 1000, gid: 100, fileMode: 0o644, dirMode: 0o750, posixMetadata: false });
    expect(errorOf('b:\n  type: s3\n  url: s3://bucket\n  fileMode: 0689\n').message).toBe(
      'settings.yaml:4:13: b.fileMode: must be permission bits in octal, e.g. 0644 or 0755',
    );
    expect(errorOf('b:\n  type: s3\n  url: s3://bucket\n  uid: -1\n').message).toBe('settings.yaml:4:8: b.uid: must be 0 or more');
  });

  it('reports YAML syntax errors with a position and without echoing the source', () => {
    const err = errorOf('a:\n  type: s3\n  secretAccessKey: wJalrXUtnFEMI: K7MDENG\n');
    expect(err.code).toBe('SETTINGS_SYNTAX');
    expect(err.message).toMatch(/^settings\.yaml:3:\d+: YAML: /);
    expect(err.message).not.toContain('wJalrXUtnFEMI');
    expect(errorOf('a:\n  b: 1\n  b: 2\n').message).toBe('settings.yaml:3:3: YAML: Map keys must be unique');
  });

  it('never puts a value in a validation message', () => {
    const err = errorOf('a:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK\n  secretAccessKey: [wJalrXUtnFEMI]\n');
    expect(err.message).toBe('settings.yaml:5:20: a.secretAccessKey: expected a string, got a list');
    expect(isSettingsError(err, 'SETTINGS_INVALID')).toBe(true);
  });

  it('rejects a document that is not a mapping, and entries that are not mappings', () => {
    expect(errorOf('- a\n- b\n').message).toBe('settings.yaml:1:1: expected a mapping of entry names to entries');
    expect(errorOf('a:\n').message).toBe('settings.yaml:1:1: a: expected a mapping with a type field (dataset or s3)');
    expect(errorOf('a:\n  id: x\n').message).toBe('settings.yaml:1:1: a.type: required (dataset or s3)');
  });
});
