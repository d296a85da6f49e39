// The daemon's lifecycle, everything except the filesystem itself (injected): signals first, then the
// status socket (so `--wait` can watch startup), the FUSE mount, the first settings apply, READY=1; then
// live edits and SIGHUP refreshes; on SIGTERM: STOPPING=1, drain uploads, unmount, close sockets.
import type { PruneResult } from '../cache/index.js';
import { PublicCatalog } from '../catalog/public-datasets.js';
import type { Settings } from '../settings/parse.js';
import { createLogger, type Logger } from './logger.js';
import type { DaemonMetrics } from './metrics.js';
import { SystemdNotifier, type Notifier } from './notify.js';
import type { Outputs } from './outputs.js';
import { Reconciler, type ApplyResult, type MountTarget } from './reconciler.js';
import { createEntryResolver, desiredEntries, type DatasetCatalog, type MountPayload, type ResolvedDataset } from './resolvers.js';
import { SettingsWatcher } from './settings-watcher.js';
import { defaultSocketPath } from './socket-path.js';
import { StatusServer } from './status-server.js';
import { withHitRatio, type CacheStatus, type DaemonPhase, type DaemonStatus, type MemoryStatus, type PendingUpload, type RequestCounts } from './status.js';

export interface DaemonOptions<V extends ResolvedDataset> {
  settingsFile: string;
  mountpoint: string;
  /** The namespace: one view per entry (src/fs). */
  target: MountTarget<MountPayload<V>>;
  /** The team catalog (`Catalog` from src/catalog/catalog.ts). */
  catalog: DatasetCatalog<V>;
  publicCatalog?: PublicCatalog;
  /** Where the embedded sample (mnist) is written and served from; absent: from memory. */
  embeddedDir?: string;
  /** Dataset versions served read-write (outputs.ts): resolution, commits, status. */
  outputs?: Outputs;
  /** Mounts the (empty) FUSE filesystem; called once signal handlers and the status socket are up. */
  mountFilesystem?: () => Promise<void>;
  /**
   * Called once the first settings apply is done, before READY=1: a process taking over a FUSE session starts
   * serving here, when the views the kernel's node ids route to are attached.
   */
  filesystemReady?: () => Promise<void>;
  /** Hands the FUSE session to the next process (an upgrade): stop serving, keep the mount (see handOff()). */
  handOff?: () => Promise<void>;
  /** The supervisor keeping the FUSE session across serving processes, if any (for status and `--upgrade`). */
  supervisorPid?: number;
  /** Waits for pending write-through uploads before anything is unmounted. */
  drain?: () => Promise<void>;
  unmountFilesystem?: () => Promise<void>;
  cacheStats?: () => CacheStatus | Promise<CacheStatus>;
  /** Evicts cache entries down to a size (`gradient cache prune` while the daemon owns the cache). */
  pruneCache?: (toBytes: number) => Promise<PruneResult>;
  /** Writes not yet in their bucket (bucket mounts). */
  uploads?: () => PendingUpload[];
  /** FUSE and store requests so far, by operation. */
  requests?: () => RequestCounts;
  /** The memory target, use by consumer, resident memory. */
  memory?: () => MemoryStatus;
  /** Default: defaultSocketPath(). */
  socketPath?: string;
  /** Opt-in Prometheus endpoint on 127.0.0.1 (0 = any free port). */
  metricsPort?: number;
  logger?: Logger;
  notifier?: Notifier;
  /** Install SIGHUP/SIGTERM/SIGINT handlers (default true; tests drive refresh/stop directly). */
  handleSignals?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface RunningDaemon {
  status(): Promise<DaemonStatus>;
  /** Re-reads settings.yaml and re-resolves tags and `latest` (SIGHUP, `gradient mount --refresh`). */
  refresh(): Promise<void>;
  stop(reason?: string): Promise<void>;
  /**
   * Leaves the FUSE session to the next process without unmounting (an upgrade): stops watching settings,
   * answers the requests in flight, closes the cache and the status socket. Uploads not done are journaled and
   * taken over. Resolves once this process may exit.
   */
  handOff(): Promise<void>;
  /** Settles when the daemon has stopped. */
  readonly stopped: Promise<void>;
  readonly socketPath: string;
  readonly metricsPort: number | undefined;
}

export async function startDaemon<V extends ResolvedDataset>(opts: DaemonOptions<V>): Promise<RunningDaemon> {
  const log = opts.logger ?? createLogger();
  const notifier = opts.notifier ?? new SystemdNotifier({ env: opts.env, onError: (err) => log.warn({ err }, 'systemd notify') });
  const publicCatalog = opts.publicCatalog ?? new PublicCatalog();
  const socketPath = opts.socketPath ?? defaultSocketPath(opts.env);
  const startedAt = new Date();
  let phase: DaemonPhase = 'starting';
  let ready = false;
  let fatalError: string | null = null;
  let settingsError: string | null = null;
  let appliedAt: Date | null = null;
  let lastApply: Promise<unknown> = Promise.resolve();
  /** A refresh is under way: the apply of the file it reads looks tags and `latest` up again too. */
  let refreshNext = false;

  const reconciler = new Reconciler<MountPayload<V>>({
    target: opts.target,
    resolve: createEntryResolver({
      catalog: opts.catalog,
      publicCatalog,
      env: opts.env,
      ...(opts.outputs ? { outputs: opts.outputs } : {}),
      ...(opts.embeddedDir ? { embeddedDir: opts.embeddedDir } : {}),
    }),
  });

  const status = async (): Promise<DaemonStatus> => ({
    version: 1,
    pid: process.pid,
    supervisorPid: opts.supervisorPid ?? null,
    startedAt: startedAt.toISOString(),
    phase,
    ready,
    mountpoint: opts.mountpoint,
    settings: {
      file: opts.settingsFile,
      state: settingsError ? 'error' : 'ok',
      lastError: settingsError,
      appliedAt: appliedAt?.toISOString() ?? null,
    },
    // While the file on disk is bad, entries show what the last good one made of them, without positions
    // in a text that is no longer there.
    mounts: reconciler.status({ positions: settingsError === null }),
    cache: opts.cacheStats ? withHitRatio(await opts.cacheStats()) : null,
    uploads: opts.uploads?.() ?? [],
    outputs: opts.outputs?.status() ?? [],
    requests: opts.requests?.() ?? { fuse: {}, store: {} },
    memory: opts.memory?.() ?? null,
    fatalError,
  });

  // prom-client is loaded only when metrics are asked for: most daemons never serve them.
  const metricsModule = opts.metricsPort === undefined ? undefined : await import('./metrics.js');
  const metrics: DaemonMetrics | undefined = metricsModule && new metricsModule.DaemonMetrics(status);
  const logApply = (r: ApplyResult) => {
    for (const name of r.mounted) log.info({ entry: name, resolved: entryOf(name)?.resolved }, 'mounted');
    for (const name of r.swapped) log.info({ entry: name, resolved: entryOf(name)?.resolved }, 'switched version');
    for (const name of r.unmounted) log.info({ entry: name }, 'unmounted');
    for (const name of r.failed) log.warn({ entry: name }, entryOf(name)?.lastError ?? 'failed');
  };
  const entryOf = (name: string) => reconciler.status().find((s) => s.name === name);
  const summary = () => {
    const mounts = reconciler.status();
    const bad = mounts.filter((m) => m.state !== 'ok').length;
    return `${mounts.length} ${mounts.length === 1 ? 'entry' : 'entries'} on ${opts.mountpoint}${bad ? `, ${bad} in error` : ''}${settingsError ? ', settings.yaml has errors' : ''}`;
  };

  const applySettings = (settings: Settings | undefined, refresh = false): Promise<unknown> => {
    const t0 = process.hrtime.bigint();
    const run = reconciler.apply(desiredEntries(settings, publicCatalog), settings, { refresh }).then((r) => {
      metrics?.settingsApplied(Number(process.hrtime.bigint() - t0) / 1e9);
      appliedAt = new Date();
      logApply(r);
      if (ready) void notifier.status(summary());
    });
    lastApply = run.catch((err: unknown) => log.error({ err }, 'applying settings failed'));
    return lastApply;
  };

  const watcher = new SettingsWatcher({
    file: opts.settingsFile,
    onSettings: (s) => {
      if (settingsError) log.info({ file: opts.settingsFile }, 'settings fixed: applying');
      settingsError = null;
      metrics?.settingsLoaded(true);
      const refresh = refreshNext;
      refreshNext = false;
      void applySettings(s, refresh);
    },
    onError: (err) => {
      settingsError = err.message;
      metrics?.settingsLoaded(false);
      log.error({ code: err.code, file: opts.settingsFile }, `${err.message} (keeping the last good settings)`);
      if (ready) void notifier.status(summary());
    },
  });

  const refresh = async (): Promise<void> => {
    // Before READY the first apply is still on its way (and the filesystem may not be mounted yet).
    if (phase !== 'ready') return;
    // One apply: of the file read again, or (when it is bad or absent) of the last good settings. Never
    // "wait for the last apply, then refresh": an entry that takes seconds to fail would hold up the others.
    refreshNext = true;
    await watcher.reload();
    if (!refreshNext) return void (await lastApply);
    refreshNext = false;
    logApply(await reconciler.refresh());
  };
  const pruneCache = opts.pruneCache;
  const statusServer = new StatusServer({
    socketPath,
    provider: {
      status,
      refresh,
      ...(opts.outputs ? { commit: (ds: string, v: string, o: { allowEmpty?: boolean }) => opts.outputs!.commit(ds, v, o) } : {}),
      ...(pruneCache ? { pruneCache: async (to: number) => ({ pid: process.pid, ...(await pruneCache(to)) }) } : {}) },
  });
  const metricsServer = metricsModule && metrics && new metricsModule.MetricsServer(metrics);

  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const onHup = () => {
    log.info('SIGHUP: refreshing tags and latest');
    void refresh().catch((err: unknown) => log.error({ err }, 'refresh failed'));
  };
  const onTerm = (signal: NodeJS.Signals) => void stop(signal);
  const handleSignals = opts.handleSignals ?? true;

  const stop = (reason = 'stop requested'): Promise<void> => {
    stopping ??= (async () => {
      phase = 'stopping';
      ready = false;
      log.info({ reason }, 'stopping: draining uploads and unmounting');
      await notifier.stopping(`stopping (${reason})`);
      await watcher.close();
      await lastApply;
      // Before the drain closes the views: a commit finishes their uploads first.
      await opts.outputs?.commitOnExit();
      try {
        await opts.drain?.();
      } catch (err) {
        log.error({ err }, 'draining uploads failed');
      }
      await reconciler.unmountAll().catch((err: unknown) => log.error({ err }, 'unmounting entries failed'));
      try {
        await opts.unmountFilesystem?.();
      } catch (err) {
        log.error({ err, mountpoint: opts.mountpoint }, 'unmounting the filesystem failed');
      }
      await releaseProcess('stopped');
    })();
    return stopping;
  };

  /** The last of a stop or a handoff: the servers and signal handlers go, and `stopped` resolves. */
  const releaseProcess = async (how: string): Promise<void> => {
    await metricsServer?.close();
    await statusServer.close();
    if (handleSignals) {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
    }
    log.info(how);
    resolveStopped();
  };

  const handOff = (): Promise<void> => {
    stopping ??= (async () => {
      phase = 'stopping';
      ready = false;
      log.info('handing the FUSE session to a new process');
      await watcher.close();
      await lastApply;
      try {
        await opts.handOff?.();
      } catch (err) {
        log.error({ err }, 'handing the session over failed');
      }
      await releaseProcess('handed over');
    })();
    return stopping;
  };

  // Handlers before anything is mounted: a signal that lands before them would kill the process and leave a
  // dead mount behind.
  if (handleSignals) {
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
  }
  let metricsPort: number | undefined;
  try {
    await statusServer.listen();
    if (metricsServer) metricsPort = await metricsServer.listen(opts.metricsPort!);
    await opts.mountFilesystem?.();
  } catch (err) {
    fatalError = err instanceof Error ? err.message : String(err);
    log.fatal({ err }, 'cannot start');
    await notifier.status(`cannot start: ${fatalError}`);
    await stop('startup failed');
    throw err;
  }
  await watcher.start();
  // A bad settings file at startup must not keep the public datasets (and the status) from coming up.
  if (!watcher.current) void applySettings(undefined);
  await lastApply;
  try {
    await opts.filesystemReady?.();
  } catch (err) {
    fatalError = err instanceof Error ? err.message : String(err);
    log.fatal({ err }, 'cannot serve the FUSE session');
    await stop('startup failed');
    throw err;
  }
  phase = 'ready';
  ready = true;
  // What starting left behind (the first apply's manifests, the embedded sample's build) would stay resident in
  // an idle daemon until V8 next needs room: collect it once now (`gc`: the supervisor starts the serving process
  // with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  await notifier.ready(summary());
  log.info({ mountpoint: opts.mountpoint, socket: socketPath, metricsPort, entries: reconciler.status().length }, 'ready');

  return {
    status,
    refresh,
    stop,
    handOff,
    stopped,
    socketPath,
    metricsPort,
  };
}
