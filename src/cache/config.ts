// The `cache:` section of the config file, owned here so that its keys and defaults live next to the cache:
//   cache:
//     dir: /var/cache/gradient
//     maxSize: 50G
//     minFreeSpace: 5G
//     shared:                          # optional: a bucket near the nodes that they all fill and read
//       url: s3://team-cache/gradient
//       endpoint: http://rgw.internal:8080   # or region:
//       accessKeyId: secret:tier-key          # both, or neither (the AWS default chain)
//       secretAccessKey: secret:tier-secret
//       uploadRate: 100M                       # bytes/s sent to the tier, at most (default: no cap)
//       leaseWait: 10                          # seconds a node waits for another's fetch of the same file
// Command-line flags (--cache-dir, --cache-size) override it; see cacheOptionsFrom().
import { z } from 'zod';
import { CacheError } from './errors.js';
import type { CacheOptionsInput } from './options.js';
import { parseSize } from './size.js';

const size = z.union([z.string(), z.number().int().nonnegative()]);

export const S3_URL = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

export const sharedTierSchema = z.strictObject({
  url: z.string().regex(S3_URL, 'must look like s3://bucket or s3://bucket/prefix'),
  endpoint: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  uploadRate: size.optional(),
  leaseWait: z.number().positive().optional(),
});
export type SharedTierConfig = z.infer<typeof sharedTierSchema>;

export const cacheConfigSchema = z.strictObject({
  dir: z.string().min(1).optional(),
  maxSize: size.optional(),
  minFreeSpace: size.optional(),
  shared: sharedTierSchema.optional(),
});
export type CacheConfig = z.infer<typeof cacheConfigSchema>;

/** Validates the raw `cache:` section (undefined = all defaults). */
export function parseCacheConfig(raw: unknown): CacheConfig {
  if (raw === undefined || raw === null) return {};
  const r = cacheConfigSchema.safeParse(raw);
  if (!r.success) {
    const why = r.error.issues.map((i) => `cache.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new CacheError('InvalidOptions', `invalid cache section in the config file: ${why}`);
  }
  const shared = r.data.shared;
  if (shared && (shared.accessKeyId === undefined) !== (shared.secretAccessKey === undefined)) {
    const missing = shared.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey';
    throw new CacheError('InvalidOptions', `cache.shared.${missing}: needed with the other key (or leave both out for the AWS default chain)`);
  }
  if (shared?.uploadRate !== undefined) {
    try {
      parseSize(shared.uploadRate);
    } catch (err) {
      throw new CacheError('InvalidSize', `cache.shared.uploadRate: ${(err as Error).message}`);
    }
  }
  for (const key of ['maxSize', 'minFreeSpace'] as const) {
    const v = r.data[key];
    if (v !== undefined) {
      try {
        parseSize(v);
      } catch (err) {
        throw new CacheError('InvalidSize', `cache.${key}: ${(err as Error).message}`);
      }
    }
  }
  return r.data;
}

/**
 * Cache options from the config file's section and command-line overrides (flags win); `defaultDir` when
 * neither names a directory (it depends on the user: the caller's to say).
 */
export function cacheOptionsFrom(
  config: CacheConfig,
  flags: { cacheDir?: string; cacheSize?: string | number; defaultDir?: string } = {},
): CacheOptionsInput {
  const out: CacheOptionsInput = {};
  const dir = flags.cacheDir ?? config.dir ?? flags.defaultDir;
  const max = flags.cacheSize ?? config.maxSize;
  if (dir !== undefined) out.dir = dir;
  if (max !== undefined) out.maxBytes = parseSize(max);
  if (config.minFreeSpace !== undefined) out.minFreeBytes = parseSize(config.minFreeSpace);
  return out;
}
