// What a `gradient mount` run is told: the CLI resolves it from flags, environment and defaults, and the
// daemon's wiring (src/daemon/run.ts) runs with it. Kept below both, so that neither imports the other's
// types: the CLI depends on the daemon, never the reverse.
export interface MountOptions {
  settings: string;
  mountpoint: string;
  socket: string;
  metricsPort?: number;
  /** The global --config, when given. */
  config?: string;
  /** --cache-dir: overrides cache.dir of the config file (see cacheOptionsFrom in src/cache/config.ts). */
  cacheDir?: string;
  /** --cache-size, parsed: overrides cache.maxSize of the config file. */
  cacheBytes?: number;
  /** --memory-target, parsed: overrides memory.target of the config file and the cgroup's default. */
  memoryTargetBytes?: number;
}
