// What a failure of the store, the cache or the local disk looks like to a process using the mount: one
// errno per kind of failure, for every view. Anything not named here is EIO.
import { FsError, type ErrnoName } from '../fuse/errors.js';
import { isStorageError, type StorageError } from '../storage/errors.js';

export interface FailureContext {
  /** The key or path involved, for the log. */
  key?: string;
  /** What failed, for the log (default 'storage request failed'). */
  what?: string;
  /**
   * What a missing object means: ENOENT where the store is the truth for names (a bucket), EIO where the
   * name comes from elsewhere and the store should have had its bytes (a dataset version's blob).
   */
  notFound?: 'ENOENT' | 'EIO';
  log?: { warn(obj: object, msg: string): void };
}

/** The StorageError in an error's cause chain, if any. */
export function storageErrorIn(err: unknown): StorageError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isStorageError(e)) return e;
  }
  return undefined;
}

/** True when a read failed because the object is no longer the one opened (If-Match). */
export function changedInStore(err: unknown): boolean {
  return storageErrorIn(err)?.code === 'PreconditionFailed';
}

function isNoSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'NoSpace') return true;
  }
  return false;
}

export function errnoFor(err: unknown, notFound: 'ENOENT' | 'EIO' = 'ENOENT'): ErrnoName {
  if (err instanceof FsError) return err.code;
  const code = storageErrorIn(err)?.code;
  if (code === 'NotFound') return notFound;
  if (code === 'AccessDenied' || code === 'BadCredentials') return 'EACCES';
  if (code === 'NoSpace' || isNoSpace(err)) return 'ENOSPC';
  if (code === 'InvalidKey') return 'EINVAL';
  if (code === 'ReadOnly') return 'EROFS';
  return 'EIO';
}

/** A failure as the FsError a view throws (the original as its cause); logged unless it is ENOENT. */
export function toFsError(err: unknown, ctx: FailureContext = {}): FsError {
  if (err instanceof FsError) return err;
  const errno = errnoFor(err, ctx.notFound);
  const message = err instanceof Error ? err.message : String(err);
  if (errno !== 'ENOENT') ctx.log?.warn({ key: ctx.key, errno, err: message }, ctx.what ?? 'storage request failed');
  return new FsError(errno, message, { cause: err });
}

/** An error the view itself decides on, logged: the process only sees the errno. */
export function fsFailure(errno: ErrnoName, message: string, log?: { warn(obj: object, msg: string): void }): FsError {
  log?.warn({ errno }, message);
  return new FsError(errno, message);
}
