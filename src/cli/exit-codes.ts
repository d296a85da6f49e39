// Exit codes scripts can rely on (also listed in `gradient --help`). Errors come from their lean modules:
// every command loads this, the supervisor of `gradient mount` included.
import { ConfigError } from '../config/errors.js';
import { SecretError } from '../config/secrets.js';
import { CatalogError } from '../catalog/errors.js';
import { StorageError } from '../storage/errors.js';
import { CacheError } from '../cache/errors.js';

export const EXIT = {
  ok: 0,
  /** Unexpected failure (a bug, or an I/O error we did not classify). */
  failure: 1,
  /** Bad usage: unknown command/flag, malformed reference, bad input path or name. */
  usage: 2,
  /** The dataset, version, tag, file, bucket or provider does not exist. */
  notFound: 3,
  /** Refused by state: the version is committed (or being committed), or another client conflicted. */
  refused: 4,
  /** Credentials rejected or access denied by the storage provider. */
  auth: 5,
  /** The storage provider is unreachable or throttling after retries. */
  unavailable: 6,
  /** The config file or a secret is missing or invalid. */
  config: 7,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0 success            1 unexpected failure   2 bad usage or input    3 not found
  4 refused (committed version, conflict)     5 credentials/access denied
  6 storage unreachable or throttling          7 bad config or missing secret`;

/** A command's own refusal or usage error, with the exit code it stands for. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof CatalogError) {
    switch (err.code) {
      case 'NotFound':
        return EXIT.notFound;
      case 'BadRef':
      case 'BadInput':
        return EXIT.usage;
      case 'Committed':
      case 'NotCommitted':
      case 'Conflict':
      case 'Refused':
        return EXIT.refused;
      default:
        return EXIT.failure;
    }
  }
  if (err instanceof StorageError) {
    switch (err.code) {
      case 'NotFound':
        return EXIT.notFound;
      case 'BadCredentials':
      case 'AccessDenied':
        return EXIT.auth;
      case 'Unreachable':
      case 'Throttled':
        return EXIT.unavailable;
      case 'InvalidKey':
        return EXIT.usage;
      default:
        return EXIT.failure;
    }
  }
  if (err instanceof ConfigError) {
    if (err.code === 'UnknownProvider') return EXIT.notFound;
    return err.code === 'Duplicate' || err.code === 'BadInput' ? EXIT.usage : EXIT.config;
  }
  if (err instanceof SecretError) return EXIT.config;
  if (err instanceof CacheError) {
    if (err.code === 'Busy') return EXIT.refused;
    if (err.code === 'InvalidSize' || err.code === 'InvalidOptions') return EXIT.usage;
  }
  return EXIT.failure;
}
