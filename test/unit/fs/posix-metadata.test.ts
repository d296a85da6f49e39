// The metadata conventions shared with s3fs and rclone: exact strings both ways.
import { describe, expect, it } from 'vitest';
import { afterWrite, decodePosix, encodePosix, formatTime, parseTime } from '../../../src/fs/bucket/posix-metadata.js';

describe('posix metadata', () => {
  it('reads what s3fs writes', () => {
    const a = decodePosix({ mode: '33188', uid: '1000', gid: '100', mtime: '1700000000', ctime: '1700000001.000000005', atime: '1700000002' });
    expect(a).toEqual({ mode: 0o100644, uid: 1000, gid: 100, mtimeNs: 1_700_000_000_000_000_000n, ctimeNs: 1_700_000_001_000_000_005n, atimeNs: 1_700_000_002_000_000_000n });
    expect(decodePosix({ mode: String(0o120777) }).mode).toBe(0o120777);
  });

  it("reads rclone's mtime: a float string with trailing zeros dropped, or RFC 3339", () => {
    expect(parseTime('1354040105.5')).toBe(1_354_040_105_500_000_000n);
    expect(parseTime('1354040105.123456789')).toBe(1_354_040_105_123_456_789n);
    expect(parseTime('1354040105.1234567891')).toBe(1_354_040_105_123_456_789n);
    expect(parseTime('2012-11-27T18:15:05.123456789Z')).toBe(1_354_040_105_123_456_789n);
    expect(parseTime('2012-11-27T19:15:05+01:00')).toBe(1_354_040_105_000_000_000n);
    expect(parseTime('-1.5')).toBe(-1_500_000_000n);
  });

  it('writes whole seconds, or nine fraction digits (readable by s3fs and rclone alike)', () => {
    expect(formatTime(1_700_000_000_000_000_000n)).toBe('1700000000');
    expect(formatTime(1_700_000_000_000_000_005n)).toBe('1700000000.000000005');
    expect(formatTime(-1_500_000_000n)).toBe('-1.500000000');
    expect(parseTime(formatTime(-1_500_000_000n))).toBe(-1_500_000_000n);
    const m = encodePosix({ other: 'kept', mtime: '1' }, { mode: 0o100755, uid: 0, gid: 0, mtimeNs: 2_000_000_001n });
    expect(m).toEqual({ other: 'kept', mode: '33261', uid: '0', gid: '0', mtime: '2.000000001' });
  });

  it('ignores values that do not parse, and a write drops the stored times it changes', () => {
    expect(decodePosix({ mode: 'rwx', uid: '-1', gid: '99999999999', mtime: 'yesterday' })).toEqual({});
    expect(afterWrite({ mode: '33188', mtime: '1', ctime: '1', atime: '1' })).toEqual({ mode: '33188', atime: '1' });
  });
});
