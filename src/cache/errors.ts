// Typed cache errors: each names the cache directory or entry involved and what the operator can do.
export type CacheErrorCode =
  /** The cache filesystem is full (ENOSPC/EDQUOT): reads still succeed, uncached. */
  | 'NoSpace'
  /** The size bound (or the free-space floor) cannot be met because every entry is in use. */
  | 'BoundExceeded'
  /** A whole file did not match its manifest hash: nothing was cached, the source is suspect. */
  | 'VerifyFailed'
  /** The source returned a different number of bytes than the identity's size. */
  | 'SizeMismatch'
  /** Another live process (the daemon) owns the cache directory. */
  | 'Busy'
  /** A shared-tier object failed verification: the bytes were read from the origin instead. */
  | 'TierCorrupt'
  /** The shared tier failed (unreachable, refused): reads go to the origin for a while. */
  | 'TierUnavailable'
  | 'InvalidIdentity'
  | 'InvalidOptions'
  | 'InvalidSize'
  | 'Closed'
  | 'Io';

export class CacheError extends Error {
  override readonly name = 'CacheError';
  constructor(
    readonly code: CacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isCacheError(err: unknown, code?: CacheErrorCode): err is CacheError {
  return err instanceof CacheError && (code === undefined || err.code === code);
}

/** True for the errno codes that mean "the disk under the cache is full". */
export function isNoSpaceErrno(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** An I/O failure as a cache error (NoSpace when the disk is full), naming what was being done. */
export function ioError(err: unknown, what: string): CacheError {
  if (err instanceof CacheError) return err;
  return new CacheError(isNoSpaceErrno(err) ? 'NoSpace' : 'Io', `${what}: ${(err as Error).message}`, { cause: err });
}
