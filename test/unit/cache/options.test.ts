import { describe, expect, it } from 'vitest';
import { CACHE_DEFAULTS, resolveCacheOptions } from '../../../src/cache/options.js';

describe('cache options', () => {
  it('fills defaults from one place and parses sizes', () => {
    const o = resolveCacheOptions({ dir: '/tmp/x', maxBytes: '2G', prefetch: { maxWindowBytes: 128 << 20 } });
    expect(o.maxBytes).toBe(2 * 2 ** 30);
    expect(o.blockSize).toBe(CACHE_DEFAULTS.blockSize);
    expect(o.prefetch.initialWindowBytes).toBe(CACHE_DEFAULTS.prefetch.initialWindowBytes);
    expect(o.prefetch.maxWindowBytes).toBe(128 << 20);
  });

  it('rejects inconsistent settings', () => {
    expect(() => resolveCacheOptions({ blockSize: 1000 })).toThrow(/4 KiB/);
    expect(() => resolveCacheOptions({ blockSize: 1 << 20, maxRequestBytes: 4096 })).toThrow(/maxRequestBytes/);
    expect(() => resolveCacheOptions({ maxBytes: 'lots' })).toThrow(/invalid size/);
    expect(() => resolveCacheOptions({ readAheadMemoryBytes: -1 })).toThrow(/readAheadMemoryBytes/);
  });
});
