// The shared cache tier's store, from config.yaml's cache.shared: secrets resolved here (and registered with
// the redactor, so no log, error or status line shows them), one S3Store with few retries and short timeouts,
// because a tier that does not answer must send reads to the origin quickly rather than hold them.
import { S3_URL, type SharedTierConfig } from '../cache/config.js';
import { parseSize, type SharedTierOptions } from '../cache/index.js';
import { resolveSecret } from '../config/secrets.js';
import type { StoreRequestCounts } from '../storage/request-counts.js';
import { S3Store } from '../storage/s3/store.js';
import type { Redactor } from './redact.js';

export function openSharedTierStore(config: SharedTierConfig, env: NodeJS.ProcessEnv, redactor: Redactor, requestCounts?: StoreRequestCounts): S3Store {
  const m = S3_URL.exec(config.url)!;
  let credentials: ConstructorParameters<typeof S3Store>[0]['credentials'] = { kind: 'default' };
  if (config.accessKeyId !== undefined && config.secretAccessKey !== undefined) {
    const accessKeyId = resolveSecret(config.accessKeyId, env);
    const secretAccessKey = resolveSecret(config.secretAccessKey, env);
    redactor.addSecret(secretAccessKey);
    credentials = { kind: 'static', accessKeyId, secretAccessKey };
  }
  return new S3Store({
    bucket: m[1]!,
    prefix: m[2] ?? '',
    endpoint: config.endpoint,
    region: config.region,
    credentials,
    maxAttempts: 2,
    connectionTimeoutMs: 2000,
    idleTimeoutMs: 10_000,
    requestCounts,
  });
}

export function sharedTierOptions(config: SharedTierConfig, store: S3Store): SharedTierOptions {
  return {
    store,
    leaseWaitMs: config.leaseWait !== undefined ? config.leaseWait * 1000 : undefined,
    upload: config.uploadRate !== undefined ? { bytesPerSecond: parseSize(config.uploadRate) } : undefined,
  };
}
