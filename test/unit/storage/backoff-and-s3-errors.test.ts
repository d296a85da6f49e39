import { describe, expect, it } from 'vitest';
import { jitteredBackoffMs } from '../../../src/storage/backoff.js';
import { classifyS3Error, toStorageError } from '../../../src/storage/s3/errors.js';

describe('jitteredBackoffMs', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const opts = { baseMs: 100, capMs: 1000 };
    expect(jitteredBackoffMs(1, opts, () => 0.999)).toBe(99);
    expect(jitteredBackoffMs(3, opts, () => 0.999)).toBe(399);
    expect(jitteredBackoffMs(10, opts, () => 0.999)).toBe(999);
    expect(jitteredBackoffMs(5, opts, () => 0)).toBe(0);
  });
});

describe('classifyS3Error', () => {
  const sdk = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  it('maps SDK and network errors to storage codes', () => {
    expect(classifyS3Error(sdk('SlowDown', 503))).toBe('Throttled');
    expect(classifyS3Error(sdk('ServiceUnavailable', 503))).toBe('Throttled');
    expect(classifyS3Error(sdk('InvalidAccessKeyId', 403))).toBe('BadCredentials');
    expect(classifyS3Error(sdk('SignatureDoesNotMatch', 403))).toBe('BadCredentials');
    expect(classifyS3Error(sdk('AccessDenied', 403))).toBe('AccessDenied');
    expect(classifyS3Error(sdk('403', 403))).toBe('AccessDenied');
    expect(classifyS3Error(sdk('NoSuchBucket', 404))).toBe('NotFound');
    expect(classifyS3Error(sdk('NotFound', 404))).toBe('NotFound');
    expect(classifyS3Error(sdk('PreconditionFailed', 412))).toBe('PreconditionFailed');
    expect(classifyS3Error(sdk('InvalidRange', 416))).toBe('InvalidRange');
    expect(classifyS3Error(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('Unreachable');
    expect(classifyS3Error(sdk('InternalError', 500))).toBe('Io');
  });
  it('out of file descriptors is our limit, not an unreachable endpoint, and says how to raise it', () => {
    const emfile = Object.assign(new Error('connect EMFILE 127.0.0.1:9000 - Local (undefined:undefined)'), { code: 'EMFILE' });
    expect(classifyS3Error(emfile)).toBe('Io');
    const e = toStorageError(emfile, { bucket: 'b', where: 'http://h:1', op: 'read', key: 'k' });
    expect(e.message).toMatch(/out of file descriptors \(EMFILE\).*LimitNOFILE/);
    expect(e.message).not.toMatch(/cannot reach/);
  });
  it('names bucket and endpoint, marks 5xx retryable', () => {
    const e = toStorageError(sdk('InternalError', 500), { bucket: 'b', where: 'http://h:1', op: 'write', key: 'k' });
    expect(e.message).toContain('"k" in bucket "b" at http://h:1');
    expect(e.retryable).toBe(true);
  });
});
