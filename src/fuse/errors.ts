// Filesystem errors carry an errno; anything else thrown by a filesystem becomes EIO (and is logged).
import { constants } from 'node:os';

export type ErrnoName = keyof typeof constants.errno;

export class FsError extends Error {
  override readonly name = 'FsError';
  readonly errno: number;
  constructor(
    readonly code: ErrnoName,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? code, options);
    this.errno = constants.errno[code];
  }
}

export function errnoOf(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code in constants.errno) return constants.errno[code as ErrnoName];
  return constants.errno.EIO;
}

export const errno = constants.errno;
