// The daemon's configuration: the config file's own fields (src/config/config-file.ts) and the sections of
// the parts the daemon wires together, each validated by the part that owns it.
import { parseCacheConfig, type CacheConfig } from '../cache/config.js';
import { publicDatasetsConfigSchema, type PublicDatasetsConfig } from '../catalog/public-datasets.js';
import { configSection, loadConfig, type Config } from '../config/config-file.js';
import type { ConfigLocation } from '../config/paths.js';
import { bucketsConfigSchema, DEFAULT_BUCKETS_CONFIG, type BucketsConfig } from '../fs/bucket/config.js';
import { memoryConfigSchema, parseMemoryConfig } from './memory-target.js';

export interface DaemonConfig extends Omit<Config, 'cache' | 'publicDatasets' | 'buckets' | 'memory'> {
  cache: CacheConfig;
  /** `memory.target` in bytes (absent: the flag, the cgroup's limit or nothing decides). */
  memory: { targetBytes?: number };
  publicDatasets: PublicDatasetsConfig;
  buckets: BucketsConfig;
}

/** Loads and validates the whole file; the first problem found is thrown (ConfigError, or CacheError for `cache:`). */
export async function loadDaemonConfig(where: string | ConfigLocation): Promise<DaemonConfig> {
  const loaded = await loadConfig(where);
  const publicDatasets = configSection(loaded, 'publicDatasets', publicDatasetsConfigSchema) ?? {};
  const buckets = configSection(loaded, 'buckets', bucketsConfigSchema) ?? DEFAULT_BUCKETS_CONFIG;
  const memory = parseMemoryConfig(configSection(loaded, 'memory', memoryConfigSchema), loaded.path);
  return { ...loaded.config, cache: parseCacheConfig(loaded.config.cache), publicDatasets, buckets, memory };
}
