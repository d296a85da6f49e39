// `gradient mount` in the foreground: the wiring of config, cache, catalog, namespace and FUSE session
// into the daemon's lifecycle (src/daemon/daemon.ts).
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { cacheOptionsFrom, openCache } from '../cache/index.js';
import { Catalog } from '../catalog/catalog.js';
import { openStore } from '../catalog/providers.js';
import { PublicCatalog } from '../catalog/public-datasets.js';
import { allProviders, managedProviderId } from '../config/config-file.js';
import type { MountOptions } from '../config/mount-options.js';
import { configLocation, defaultCacheDir } from '../config/paths.js';
import { RootFs } from '../fs/root.js';
import { ROOT_INO } from '../fuse/filesystem.js';
import { filesystemTypeOf } from '../fuse/mountpoint.js';
import { nativeFuse } from '../fuse/native.js';
import { FuseSession, type FuseMountOptions, type HandedSession } from '../fuse/session.js';
import { SessionState } from '../fuse/session-state.js';
import { CACHE_DEFAULTS } from '../cache/options.js';
import { DaemonMemory, MEMORY_DEFAULTS, MemoryTarget, procStatusBytes, splitTarget, type MemoryOptions } from '../memory/index.js';
import { RateLimiters } from '../storage/rate-limit.js';
import { StoreRequestCounts } from '../storage/request-counts.js';
import { Uploader } from '../upload/index.js';
import { BucketMounts } from './bucket-mounts.js';
import { loadDaemonConfig } from './config.js';
import { cgroupMemoryLimit, chooseMemoryTarget } from './memory-target.js';
import { memoryStatus } from './memory-status.js';
import { startDaemon, type RunningDaemon } from './daemon.js';
import { RememberingCatalog } from './known-refs.js';
import { createLogger } from './logger.js';
import { Namespace } from './namespace.js';
import { Outputs } from './outputs.js';
import { redactor } from './redact.js';
import { openSharedTierStore, sharedTierOptions } from './shared-tier.js';
import { handedSession } from './supervisor.js';

// The CLI's MountRunner (src/cli/mount.ts); of the CLI's I/O it needs only the environment.
export const runMount = async (opts: MountOptions, io: { env: NodeJS.ProcessEnv }): Promise<RunningDaemon> => {
  const log = createLogger();
  // Under the supervisor (src/daemon/supervisor.ts): the mount's /dev/fuse fd and the session's state.
  const handed = handedSession(io.env);
  const state = handed && SessionState.open(handed.stateDir);
  const config = await loadDaemonConfig(configLocation(opts.config, io.env));
  const cacheFlags: { cacheDir?: string; cacheSize?: number; defaultDir: string } = { defaultDir: defaultCacheDir(io.env) };
  if (opts.cacheDir !== undefined) cacheFlags.cacheDir = opts.cacheDir;
  if (opts.cacheBytes !== undefined) cacheFlags.cacheSize = opts.cacheBytes;
  // One memory target for the process (and the supervisor's private pages, which count against it too): the
  // pools, budgets and the cache's fetch limits take their shares of it; buffer pools and budgets are shared
  // by the cache and the uploader, built once, here.
  const choice = chooseMemoryTarget(opts.memoryTargetBytes, config.memory.targetBytes, cgroupMemoryLimit());
  const supervisorPid = handed ? process.ppid : undefined;
  const target = new MemoryTarget(choice.bytes, () => (supervisorPid ? (procStatusBytes(supervisorPid, 'RssAnon') ?? 0) : 0));
  const memoryOptions: Partial<MemoryOptions> = { target };
  const cacheOptions = cacheOptionsFrom(config.cache, cacheFlags);
  if (choice.bytes !== undefined) {
    const shares = splitTarget(
      choice.bytes,
      {
        fetchBytes: CACHE_DEFAULTS.maxFetchBytes,
        readAheadBytes: CACHE_DEFAULTS.readAheadMemoryBytes,
        chunkSpareBytes: MEMORY_DEFAULTS.chunkSpareBytes,
        uploadPartsInFlight: MEMORY_DEFAULTS.uploadPartsInFlight,
        uploadPartSpareBytes: MEMORY_DEFAULTS.uploadPartSpareBytes,
      },
      MEMORY_DEFAULTS.uploadPartBytes,
    );
    Object.assign(memoryOptions, { chunkSpareBytes: shares.chunkSpareBytes, uploadPartsInFlight: shares.uploadPartsInFlight, uploadPartSpareBytes: shares.uploadPartSpareBytes });
    Object.assign(cacheOptions, { maxFetchBytes: shares.fetchBytes, readAheadMemoryBytes: shares.readAheadBytes });
    log.info({ targetBytes: choice.bytes, source: choice.source, cgroupLimitBytes: choice.cgroupLimitBytes, shares }, 'memory target');
  }
  const memory = new DaemonMemory(memoryOptions);
  // Every store request the daemon sends, by operation (status and metrics), whichever store sends it.
  const storeRequests = new StoreRequestCounts();
  // The shared tier (cache.shared): fills ask it before the origin, and what the origin gave goes up to it.
  const shared = config.cache.shared;
  const tierStore = shared && openSharedTierStore(shared, io.env, redactor, storeRequests);
  // The group commit makes each flush durable with one syncfs (the C core runs it off the JS thread).
  const cache = await openCache(cacheOptions, memory, {
    syncFilesystem: (fd) => nativeFuse().syncfs(fd),
    ...(shared && tierStore ? { sharedTier: sharedTierOptions(shared, tierStore) } : {}),
  });
  cache.on('condition', (err) => log.warn({ code: err.code }, err.message));
  if (tierStore) log.info({ tier: tierStore.location }, 'shared cache tier configured');
  // Write-through for every writable bucket view; part buffers and slots are process-wide.
  const uploader = new Uploader({ stagingDir: cache.stagingDir, memory, log });
  // Staged writes no close() asked for, left by a daemon that died: a crashed writer's partial files.
  // Files still open for writing through a session this process takes over are not a crashed writer's.
  const writing = new Set([...(state?.snapshot.handles.values() ?? [])].flatMap((h) => (h.resume === undefined ? [] : [h.resume])));
  const dropped = await uploader.staging.removeUnjournaled(Date.now() - process.uptime() * 1000, writing);
  if (dropped > 0) log.warn({ files: dropped }, 'dropped staged writes that were never closed by a writer before the last daemon stopped');
  const buckets = new BucketMounts({
    cache,
    uploader,
    config: config.buckets,
    rateLimiters: new RateLimiters(),
    requestCounts: storeRequests,
    attributeStore: cache.attributes,
    log,
  });
  const catalog = new Catalog({
    teamId: config.teamId,
    providers: allProviders(config, io.env),
    managedProviderId: managedProviderId(config),
    env: io.env,
    openStore: (p) => openStore(p, io.env, { requestCounts: storeRequests }),
  });
  const root = new RootFs({
    statfs: async () => {
      const s = await statfs(cache.dir);
      return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, namelen: 255, frsize: s.bsize };
    },
  });
  // Passthrough needs the backing files' filesystem to sit below the FUSE mount's stack depth.
  const maxStackDepth = (await filesystemTypeOf(cache.dir)) === 'overlay' ? 2 : 1;
  const fuseOptions: FuseMountOptions = {
    // Notebook users are not the daemon's user: let them in (as root this needs no fuse.conf).
    allowOther: process.getuid?.() === 0,
    maxStackDepth,
    // GRADIENT_PASSTHROUGH=0: reads of cached files through the C core instead of the kernel (diagnostics, tests).
    passthrough: io.env.GRADIENT_PASSTHROUGH !== '0',
    log,
  };
  // Refs resolve through their last known answers when storage is unreachable (kept in the cache and the tier).
  const datasets = new RememberingCatalog(catalog, config.teamId, cache, log);
  // Dataset versions served read-write: commits wait for pending uploads as long as a stop's drain would.
  const outputs = new Outputs({
    catalog,
    settleTimeoutMs: config.buckets.drainTimeout * 1000,
    ...(handed ? { createdFile: path.join(handed.stateDir, 'outputs.json') } : {}),
    log,
  });
  const namespace = new Namespace(root, cache, buckets, log, (ref) => datasets.resolve(ref), outputs);
  // Inodes the kernel holds in a view an earlier process served and that settings have switched away from since.
  root.restoreView = (name, identity) => namespace.restoreView(name, identity);
  let attachedNow!: () => void;
  const attached = new Promise<void>((resolve) => (attachedNow = resolve));
  let session: FuseSession | undefined;
  root.kernelCache = { inode: (ino) => session?.invalidateInode(ino), entry: (parent, name) => session?.invalidateEntry(parent, name) };
  const serve = async (h: HandedSession) => {
    session = await FuseSession.serve(root, opts.mountpoint, h, fuseOptions);
    root.onEntryChanged = (parent, name) => session?.invalidateEntry(parent, name);
    // The kernel may cache root entries that were switched or removed while no process served: drop them all.
    if (session.adopted) for (const name of root.knownNames()) session.invalidateEntry(ROOT_INO, name);
    log.info({ mountpoint: opts.mountpoint, kernel: session.kernel, adopted: session.adopted }, session.adopted ? 'took over the FUSE session' : 'mounted');
  };
  const closeAll = async () => {
    state?.close();
    await cache.close();
    catalog.close();
  };
  try {
    return await startDaemon({
      settingsFile: opts.settings,
      mountpoint: opts.mountpoint,
      socketPath: opts.socket,
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
      target: namespace,
      catalog: datasets,
      outputs,
      publicCatalog: new PublicCatalog(config.publicDatasets),
      // The embedded sample's files live next to the cache's (6.7 MB, outside its bound), not in memory.
      embeddedDir: path.join(cache.dir, 'embedded'),
      logger: log,
      env: io.env,
      ...(handed ? { supervisorPid: process.ppid } : {}),
      mountFilesystem: async () => {
        if (handed && state) {
          // A session taken over is served at once (readers wait for less); requests for its nodes wait for the
          // first apply to attach the views they route to.
          if (state.init) root.holdUntil(attached);
          await serve({ fd: handed.fd, state });
          return;
        }
        session = await FuseSession.mount(root, opts.mountpoint, fuseOptions);
        root.onEntryChanged = (parent, name) => session?.invalidateEntry(parent, name);
        log.info({ mountpoint: opts.mountpoint, kernel: session.kernel }, 'mounted');
      },
      filesystemReady: async () => attachedNow(),
      handOff: async () => {
        await session?.handoff();
        await closeAll();
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
      requests: () => ({ fuse: session?.requestCounts() ?? {}, store: storeRequests.snapshot() }),
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
          ...(s.tier ? { tier: s.tier } : {}),
        };
      },
      pruneCache: (toBytes) => cache.prune(toBytes),
      memory: () => memoryStatus(choice, memory, supervisorPid),
    });
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
};
