import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveSecret, SecretError } from '../../../src/config/secrets.js';

describe('resolveSecret', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gd-secrets-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'bucket-key'), 'TOPSECRET\n');
  const env = { GRADIENT_SECRETS_DIR: dir, GRADIENT_SECRET_FROM_ENV: 'envvalue' };

  it('passes plain values through and reads secret files, trimming one newline', () => {
    expect(resolveSecret('plain', env)).toBe('plain');
    expect(resolveSecret('secret:bucket-key', env)).toBe('TOPSECRET');
  });

  it('falls back to GRADIENT_SECRET_<NAME>', () => {
    expect(resolveSecret('secret:from-env', env)).toBe('envvalue');
  });

  it('names the secret and where it looked, never a value', () => {
    expect(() => resolveSecret('secret:missing', env)).toThrow(SecretError);
    expect(() => resolveSecret('secret:missing', env)).toThrow(/secret "missing" not found: no file .*missing .*GRADIENT_SECRET_MISSING/);
    expect(() => resolveSecret('secret:../etc/passwd', env)).toThrow(/invalid secret name/);
  });
});
