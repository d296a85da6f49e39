// `gradient mount` in the foreground: the wiring of config, cache, catalog, namespace and FUSE session
// into the daemon's lifecycle (src/daemon/daemon.ts).
import { statfs } from 'node:fs/promises';
import { cacheOptionsFrom, openCache } from '../cache/index.js';
import { Catalog } from '../catalog/catalog.js';
import { PublicCatalog } from '../catalog/public-datasets.js';
import { allProviders, managedProviderId } from '../config/config-file.js';
import type { MountOptions } from '../config/mount-options.js';
import { configLocation, defaultCacheDir } from '../config/paths.js';
import { RootFs } from '../fs/root.js';
import { filesystemTypeOf } from '../fuse/mountpoint.js';
import { FuseSession } from '../fuse/session.js';
import { DaemonMemory } from '../memory/index.js';
import { RateLimiters } from '../storage/rate-limit.js';
import { Uploader } from '../upload/index.js';
import { BucketMounts } from './bucket-mounts.js';
import { loadDaemonConfig } from './config.js';
import { startDaemon, type RunningDaemon } from './daemon.js';
import { createLogger } from './logger.js';
import { Namespace } from './namespace.js';

// The CLI's MountRunner (src/cli/mount.ts); of the CLI's I/O it needs only the environment.
export const runMount = async (opts: MountOptions, io: { env: NodeJS.ProcessEnv }): Promise<RunningDaemon> => {
  const log = createLogger();
  const config = await loadDaemonConfig(configLocation(opts.config, io.env));
  const cacheFlags: { cacheDir?: string; cacheSize?: number; defaultDir: string } = { defaultDir: defaultCacheDir(io.env) };
  if (opts.cacheDir !== undefined) cacheFlags.cacheDir = opts.cacheDir;
  if (opts.cacheBytes !== undefined) cacheFlags.cacheSize = opts.cacheBytes;
  // Buffer pools and memory budgets shared by the cache and the uploader: built once, here.
  const memory = new DaemonMemory();
  const cache = await openCache(cacheOptionsFrom(config.cache, cacheFlags), memory);
  cache.on('condition', (err) => log.warn({ code: err.code }, err.message));
  // Write-through for every writable bucket view; part buffers and slots are process-wide.
  const uploader = new Uploader({ stagingDir: cache.stagingDir, memory, log });
  // Staged writes no close() asked for, left by a daemon that died: a crashed writer's partial files.
  const dropped = await uploader.staging.removeUnjournaled(Date.now() - process.uptime() * 1000);
  if (dropped > 0) log.warn({ files: dropped }, 'dropped staged writes that were never closed by a writer before the last daemon stopped');
  const buckets = new BucketMounts({ cache, uploader, config: config.buckets, rateLimiters: new RateLimiters(), attributeStore: cache.attributes, log });
  const catalog = new Catalog({
    teamId: config.teamId,
    providers: allProviders(config, io.env),
    managedProviderId: managedProviderId(config),
    env: io.env,
  });
  const root = new RootFs({
    statfs: async () => {
      const s = await statfs(cache.dir);
      return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, namelen: 255, frsize: s.bsize };
    },
  });
  // Passthrough needs the backing files' filesystem to sit below the FUSE mount's stack depth.
  const maxStackDepth = (await filesystemTypeOf(cache.dir)) === 'overlay' ? 2 : 1;
  let session: FuseSession | undefined;
  const closeAll = async () => {
    await cache.close();
    catalog.close();
  };
  try {
    return await startDaemon({
      settingsFile: opts.settings,
      mountpoint: opts.mountpoint,
      socketPath: opts.socket,
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
      target: new Namespace(root, cache, buckets, log),
      catalog,
      publicCatalog: new PublicCatalog(config.publicDatasets),
      logger: log,
      env: io.env,
      mountFilesystem: async () => {
        session = await FuseSession.mount(root, opts.mountpoint, {
          // Notebook users are not the daemon's user: let them in (as root this needs no fuse.conf).
          allowOther: process.getuid?.() === 0,
          maxStackDepth,
          log,
        });
        root.onEntryChanged = (parent, name) => session?.invalidateEntry(parent, name);
        log.info({ mountpoint: opts.mountpoint, kernel: session.kernel }, 'mounted');
      },
      unmountFilesystem: async () => {
        try {
          await session?.unmount();
        } finally {
          await closeAll();
        }
      },
      drain: async () => {
        const left = await buckets.drain();
        if (left > 0) log.warn({ files: left }, 'uploads still pending at stop: kept on disk, retried at next start');
      },
      uploads: () => buckets.uploads(),
      cacheStats: () => {
        const s = cache.stats();
        return {
          usedBytes: s.usedBytes,
          capacityBytes: s.effectiveMaxBytes,
          hits: s.hits,
          misses: s.misses,
          dir: s.dir,
          maxBytes: s.maxBytes,
          minFreeBytes: s.minFreeBytes,
        };
      },
      pruneCache: (toBytes) => cache.prune(toBytes),
    });
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
};
