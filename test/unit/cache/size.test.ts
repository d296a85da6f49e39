import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../../../src/cache/size.js';
import { isCacheError } from '../../../src/cache/errors.js';

describe('parseSize', () => {
  it('reads bytes, binary units with or without "i", and decimal "xB"', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize(123)).toBe(123);
    expect(parseSize('10G')).toBe(10 * 2 ** 30);
    expect(parseSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseSize('512mib')).toBe(512 * 2 ** 20);
    expect(parseSize('1.5T')).toBe(1.5 * 2 ** 40);
    expect(parseSize('64 k')).toBe(64 * 1024);
    expect(parseSize('20GB')).toBe(20e9);
    expect(parseSize('7B')).toBe(7);
  });

  it('rejects anything else with a typed error that shows the accepted forms', () => {
    for (const bad of ['', 'ten', '-1G', '1X', '1.2.3M', 'G']) {
      let err: unknown;
      try {
        parseSize(bad);
      } catch (e) {
        err = e;
      }
      expect(isCacheError(err, 'InvalidSize'), bad).toBe(true);
      expect((err as Error).message).toContain('512MiB');
    }
    expect(() => parseSize(-5)).toThrow(/whole number/);
  });

  it('formats sizes that parse back', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(512 * 2 ** 20)).toBe('512 MiB');
    expect(formatSize(1.5 * 2 ** 30)).toBe('1.5 GiB');
    expect(parseSize(formatSize(10 * 2 ** 30).replace(' ', ''))).toBe(10 * 2 ** 30);
  });
});
