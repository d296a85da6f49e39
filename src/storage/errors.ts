// Typed storage errors: each says which store/key failed and what the user can do about it.
export type StorageErrorCode =
  | 'NotFound'
  | 'AccessDenied'
  | 'BadCredentials'
  | 'Unreachable'
  | 'PreconditionFailed'
  | 'Throttled'
  | 'InvalidRange'
  | 'NoSpace'
  | 'InvalidKey'
  /** The store takes no more writes (a dataset version that was committed). */
  | 'ReadOnly'
  | 'Io';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly details: { location?: string; key?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }

  get retryable(): boolean {
    return this.details.retryable ?? (this.code === 'Throttled' || this.code === 'Unreachable');
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}
