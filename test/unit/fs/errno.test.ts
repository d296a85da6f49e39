// One errno per kind of failure, for every view.
import { describe, expect, it } from 'vitest';
import { CacheError } from '../../../src/cache/errors.js';
import { changedInStore, errnoFor, toFsError } from '../../../src/fs/errno.js';
import { FsError } from '../../../src/fuse/errors.js';
import { StorageError } from '../../../src/storage/errors.js';

const storage = (code: StorageError['code']) => new StorageError(code, code);

describe('errno mapping', () => {
  it('maps storage, cache and disk failures, looking through causes', () => {
    expect(errnoFor(storage('NotFound'))).toBe('ENOENT');
    expect(errnoFor(storage('NotFound'), 'EIO')).toBe('EIO');
    expect(errnoFor(storage('AccessDenied'))).toBe('EACCES');
    expect(errnoFor(storage('BadCredentials'))).toBe('EACCES');
    expect(errnoFor(storage('NoSpace'))).toBe('ENOSPC');
    expect(errnoFor(new CacheError('NoSpace', 'full'))).toBe('ENOSPC');
    expect(errnoFor(Object.assign(new Error('write'), { code: 'EDQUOT' }))).toBe('ENOSPC');
    expect(errnoFor(storage('InvalidKey'))).toBe('EINVAL');
    expect(errnoFor(storage('Unreachable'))).toBe('EIO');
    expect(errnoFor(new Error('wrapped', { cause: storage('AccessDenied') }))).toBe('EACCES');
    expect(changedInStore(new Error('read', { cause: storage('PreconditionFailed') }))).toBe(true);
    expect(changedInStore(storage('Io'))).toBe(false);
  });

  it('keeps FsErrors, and logs every mapped failure but ENOENT', () => {
    const warned: object[] = [];
    const log = { warn: (obj: object) => warned.push(obj) };
    const own = new FsError('EXDEV');
    expect(toFsError(own, { log })).toBe(own);
    expect(toFsError(storage('NotFound'), { log }).code).toBe('ENOENT');
    const e = toFsError(storage('Throttled'), { key: 'k', log });
    expect(e.code).toBe('EIO');
    expect(e.cause).toBeInstanceOf(StorageError);
    expect(warned).toEqual([{ key: 'k', errno: 'EIO', err: 'Throttled' }]);
  });
});
