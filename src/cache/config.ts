// The `cache:` section of the config file, owned here so that its keys and defaults live next to the cache:
//   cache:
//     dir: /var/cache/gradient
//     maxSize: 50G
//     minFreeSpace: 5G
// Command-line flags (--cache-dir, --cache-size) override it; see cacheOptionsFrom().
import { z } from 'zod';
import { CacheError } from './errors.js';
import type { CacheOptionsInput } from './options.js';
import { parseSize } from './size.js';

const size = z.union([z.string(), z.number().int().nonnegative()]);

export const cacheConfigSchema = z.strictObject({
  dir: z.string().min(1).optional(),
  maxSize: size.optional(),
  minFreeSpace: size.optional(),
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
