// The on-disk cache: public API for the filesystem layer, the daemon and the CLI.
export { openCache, Cache, type CacheStats, type CacheEntryInfo, type CacheServices, type PrefetchResult, type PruneResult } from './cache.js';
export { INDEX_FILE, STAGING_DIR } from './directory.js';
export { type CacheCounters } from './stats.js';
export { CacheHandle } from './handle.js';
export { SharedTier, type SharedTierOptions, type TierStatus } from './shared-tier.js';
export { tierKey } from './tier-object.js';
export { pruneSharedTier, type TierPruneResult } from './tier-prune.js';
export { type CacheIdentity, type CacheSource, entryId, canonicalIdentity } from './identity.js';
export { CACHE_DEFAULTS, DEFAULT_CACHE_DIR, resolveCacheOptions, type CacheOptions, type CacheOptionsInput } from './options.js';
export { CacheError, isCacheError, type CacheErrorCode } from './errors.js';
export { parseSize, formatSize } from './size.js';
export { inspectCache, type CacheInspection } from './inspect.js';
export { parseCacheConfig, cacheOptionsFrom, cacheConfigSchema, type CacheConfig } from './config.js';
