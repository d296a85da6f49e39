// The cache: section's shared tier: what is accepted, and errors that name the field and never quote a secret.
import { describe, expect, it } from 'vitest';
import { parseCacheConfig } from '../../../src/cache/config.js';

describe('cache.shared', () => {
  it('accepts a tier with keys by reference, and one without keys (the default chain)', () => {
    const shared = { url: 's3://team-cache/gradient', endpoint: 'http://rgw:8080', accessKeyId: 'AK', secretAccessKey: 'secret:tier', uploadRate: '100M', leaseWait: 5 };
    expect(parseCacheConfig({ shared }).shared).toEqual(shared);
    expect(parseCacheConfig({ shared: { url: 's3://team-cache', region: 'us-east-1' } }).shared?.url).toBe('s3://team-cache');
  });

  it('names the field at fault and never quotes a plaintext secret', () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    expect(() => parseCacheConfig({ shared: { url: 's3://team-cache', secretAccessKey: secret } })).toThrow(/cache\.shared\.accessKeyId/);
    for (const bad of [{ url: 'http://team-cache' }, { url: 's3://team-cache', uploadRate: 'fast' }, { url: 's3://team-cache', leaseWait: -1 }]) {
      let message = '';
      try {
        parseCacheConfig({ shared: { ...bad, accessKeyId: 'AK', secretAccessKey: secret } });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/cache\.shared\./);
      expect(message).not.toContain(secret);
    }
  });
});
