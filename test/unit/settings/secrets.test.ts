import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SettingsError } from '../../../src/settings/errors.js';
import { parseSettings } from '../../../src/settings/parse.js';
import type { S3Entry } from '../../../src/settings/schema.js';
import { resolveEntryCredentials } from '../../../src/settings/secrets.js';

describe('resolveEntryCredentials', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gd-settings-secrets-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'bucket-key'), 'TOPSECRETVALUE\n');
  const env = { GRADIENT_SECRETS_DIR: dir };
  const settings = parseSettings(
    'good:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK123\n  secretAccessKey: secret:bucket-key\n' +
      'bad:\n  type: s3\n  url: s3://bkt\n  accessKeyId: AK123\n  secretAccessKey: secret:missing-key\n' +
      'anon:\n  type: s3\n  url: s3://bkt\n',
    'settings.yaml',
  );
  const entry = (name: string) => settings.entries.get(name) as S3Entry;

  it('resolves secret references and passes plain values through', () => {
    expect(resolveEntryCredentials(settings, 'good', entry('good'), env)).toEqual({ accessKeyId: 'AK123', secretAccessKey: 'TOPSECRETVALUE' });
    expect(resolveEntryCredentials(settings, 'anon', entry('anon'), env)).toBeUndefined();
  });

  it('names the file, line, entry, field and secret on failure', () => {
    let err: unknown;
    try {
      resolveEntryCredentials(settings, 'bad', entry('bad'), env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SettingsError);
    expect((err as SettingsError).code).toBe('SETTINGS_SECRET');
    expect((err as SettingsError).message).toMatch(/^settings\.yaml:10:20: bad\.secretAccessKey: secret "missing-key" not found/);
    expect((err as SettingsError).message).not.toContain('TOPSECRETVALUE');
  });
});
