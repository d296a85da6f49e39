import { describe, expect, it } from 'vitest';
import { StorageError, isStorageError } from '../../../src/storage/errors.js';

describe('StorageError', () => {
  it('is retryable for throttling and unreachable endpoints only, unless told otherwise', () => {
    expect(new StorageError('Throttled', 'slow down').retryable).toBe(true);
    expect(new StorageError('Unreachable', 'down').retryable).toBe(true);
    expect(new StorageError('NotFound', 'gone').retryable).toBe(false);
    expect(new StorageError('Io', 'reset', { retryable: true }).retryable).toBe(true);
    expect(isStorageError(new StorageError('NotFound', 'x'), 'NotFound')).toBe(true);
    expect(isStorageError(new Error('x'))).toBe(false);
  });
});
