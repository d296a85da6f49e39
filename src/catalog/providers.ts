// Opens the ObjectStore behind a configured storage provider, resolving `secret:<name>` references.
import { resolveSecret } from '../config/secrets.js';
import { ConfigError, type StorageProvider } from '../config/config-file.js';
import { expandHome } from '../config/paths.js';
import { LocalStore } from '../storage/local-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { S3Store, type S3StoreOptions } from '../storage/s3/store.js';

/** `s3`: options for an S3 provider's store beyond the provider's own (the daemon's request counters). */
export function openStore(
  provider: StorageProvider,
  env: NodeJS.ProcessEnv = process.env,
  s3: Pick<S3StoreOptions, 'requestCounts'> = {},
): ObjectStore {
  if (provider.type === 'local') return new LocalStore(expandHome(provider.path, env));
  if (provider.accessKey !== undefined && provider.secretAccessKey === undefined) {
    throw new ConfigError('Invalid', `storage provider "${provider.name}" has an accessKey but no secretAccessKey`);
  }
  return new S3Store({
    ...s3,
    bucket: provider.bucket,
    prefix: provider.prefix,
    endpoint: provider.endpoint,
    region: provider.region,
    credentials: provider.anonymous
      ? { kind: 'anonymous' }
      : provider.accessKey !== undefined
        ? {
            kind: 'static',
            accessKeyId: resolveSecret(provider.accessKey, env),
            secretAccessKey: resolveSecret(provider.secretAccessKey!, env),
          }
        : { kind: 'default' },
  });
}
