// `gradient cache stats|prune|clear`: the operator's view of the on-disk cache. When a daemon runs (its status
// socket answers) and serves the directory asked about, it is the truth — its flags may differ from the config
// file — and prune/clear go through it, since it owns the directory's lock. Otherwise stats reads the index
// (read-only), and prune/clear take the lock themselves.
import { Command, Option } from 'commander';
import path from 'node:path';
import {
  cacheOptionsFrom,
  formatSize,
  inspectCache,
  openCache,
  parseCacheConfig,
  parseSize,
  pruneSharedTier,
  resolveCacheOptions,
  type PruneResult,
} from '../cache/index.js';
import { defaultCacheDir } from '../config/paths.js';
import { fetchStatus, requestCachePrune } from '../daemon/client.js';
import { redactor } from '../daemon/redact.js';
import { openSharedTierStore } from '../daemon/shared-tier.js';
import { defaultSocketPath } from '../daemon/socket-path.js';
import type { CacheStatus } from '../daemon/status.js';
import { action, type CliIO, type CommandContext } from './context.js';
import { CliError, EXIT } from './exit-codes.js';
import { count, table } from './output.js';

interface CacheFlags {
  cacheDir?: string;
  socket: string;
}

async function cacheOptions(s: CommandContext, opts: CacheFlags) {
  const { config } = await s.config();
  return resolveCacheOptions(cacheOptionsFrom(parseCacheConfig(config.cache), { cacheDir: opts.cacheDir, defaultDir: defaultCacheDir(s.io.env) }));
}

interface DaemonCache {
  pid: number;
  cache: CacheStatus & { dir: string };
}

/** The running daemon's cache, when a daemon answers and its cache is the directory asked about. */
async function daemonCache(flags: CacheFlags): Promise<DaemonCache | undefined> {
  const status = await fetchStatus(flags.socket, 2000).catch(() => undefined);
  const cache = status?.cache;
  if (!status || !cache?.dir) return undefined;
  if (flags.cacheDir !== undefined && path.resolve(flags.cacheDir) !== cache.dir) return undefined;
  return { pid: status.pid, cache: { ...cache, dir: cache.dir } };
}

/** Evicts down to `target` through the daemon, or on the directory itself when none runs. */
async function prune(flags: CacheFlags, s: CommandContext, d: DaemonCache | undefined, target: number): Promise<{ result: PruneResult; holder: string }> {
  if (d) {
    const result = await requestCachePrune(flags.socket, target);
    return { result, holder: `the daemon (pid ${result.pid})` };
  }
  const cache = await openCache(await cacheOptions(s, flags));
  try {
    return { result: await cache.prune(target), holder: 'this process' };
  } finally {
    await cache.close();
  }
}

/** Why a prune stopped above its target: entries held open, and what no eviction frees. */
function shortfall(r: PruneResult, target: number, holder: string): string {
  const why: string[] = [];
  if (r.inUseEntries > 0) {
    why.push(`${count(r.inUseEntries, 'entry', 'entries')} (${formatSize(r.inUseBytes)}) ${r.inUseEntries === 1 ? 'is' : 'are'} open in ${holder}: files read through its mounts, evictable once closed`);
  }
  if (r.overheadBytes > target) why.push(`the index and directories alone take ${formatSize(r.overheadBytes)}, the least the cache can use`);
  if (why.length === 0) why.push('entries were being filled while it ran: try again');
  return `${why.join('; ')}; it uses ${formatSize(r.usedBytes)} (${formatSize(r.beforeBytes)} before, ${count(r.evicted, 'entry', 'entries')} evicted)`;
}

const AGE = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/;
const AGE_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "3600s", "2w" → milliseconds. */
function parseAge(text: string): number {
  const m = AGE.exec(text.trim());
  if (!m) throw new CliError(EXIT.usage, `--older-than: "${text}" is not an age: use a number and s, m, h, d or w (e.g. 30d)`);
  return Number(m[1]) * AGE_UNIT_MS[m[2]!]!;
}

/** `prune --shared`: the tier's objects uploaded more than `--older-than` ago. */
async function pruneShared(s: CommandContext, olderThan: string | undefined): Promise<void> {
  if (olderThan === undefined) throw new CliError(EXIT.usage, '--shared needs --older-than AGE (e.g. 30d): the tier has no size bound of its own');
  const age = parseAge(olderThan);
  const shared = parseCacheConfig((await s.config()).config.cache).shared;
  if (!shared) throw new CliError(EXIT.config, 'no shared tier is configured: add cache.shared (url, endpoint or region, keys) to the config file');
  const store = openSharedTierStore(shared, s.io.env, redactor);
  try {
    const r = await pruneSharedTier(store, age);
    s.out.result(
      () =>
        `Removed ${count(r.deleted, 'object', 'objects')} (${formatSize(r.freedBytes)}) uploaded over ${olderThan} ago from ${store.location}; ${count(r.kept, 'object', 'objects')} (${formatSize(r.keptBytes)}) kept.`,
      { location: store.location, olderThanMs: age, ...r },
    );
  } finally {
    store.close();
  }
}

const dirOption = () =>
  new Option('--cache-dir <dir>', "cache directory (default: the running daemon's, else cache.dir in the config file, else /var/cache/gradient as root, ~/.cache/gradient for others)");
const socketOption = (io: CliIO) =>
  new Option('--socket <path>', 'status socket of the daemon to ask first').default(defaultSocketPath(io.env), 'see `gradient status --help`');

export function registerCache(program: Command, io: CliIO): void {
  const group = program.command('cache').description('the on-disk cache shared by all mounts');

  group
    .command('stats')
    .description('size, bound, entries, hit ratio, bytes fetched and saved')
    .addOption(dirOption())
    .addOption(socketOption(io))
    .addHelpText('after', '\nAsks the running daemon for its directory and bounds; without one, reads the index.\n\nExample:\n  gradient cache stats --json')
    .action(
      action(io, async (s, flags: CacheFlags) => {
        const o = await cacheOptions(s, flags);
        const d = await daemonCache(flags);
        const dir = d?.cache.dir ?? o.dir;
        const maxBytes = d?.cache.maxBytes ?? o.maxBytes;
        const minFreeBytes = d?.cache.minFreeBytes ?? o.minFreeBytes;
        const i = inspectCache(dir);
        const reads = i.counters.hits + i.counters.misses;
        const served = i.counters.bytesFromCache + i.counters.bytesFetched;
        const value = {
          dir: i.dir,
          exists: i.exists,
          source: d ? 'daemon' : 'index',
          ownerPid: d?.pid ?? i.owner ?? null,
          diskBytes: i.diskBytes,
          /** Counted against the bound, by the daemon (null without one). */
          usedBytes: d?.cache.usedBytes ?? null,
          maxBytes,
          effectiveMaxBytes: d?.cache.capacityBytes ?? null,
          minFreeBytes,
          entries: i.entries,
          completeEntries: i.completeEntries,
          hitRatio: reads > 0 ? i.counters.hits / reads : null,
          ...i.counters,
          bytesSaved: i.counters.bytesFromCache,
        };
        const bound = d && d.cache.capacityBytes < maxBytes ? `; ${formatSize(d.cache.capacityBytes)} in effect for lack of free disk` : '';
        s.out.result(
          () =>
            table(
              [
                ['directory', `${i.dir}${i.exists ? '' : ' (empty: nothing cached yet)'}`],
                ['in use by', d ? `the daemon, pid ${d.pid}` : i.owner ? `pid ${i.owner}` : '-'],
                ['size on disk', `${formatSize(i.diskBytes)} of ${formatSize(maxBytes)} (keeping ${formatSize(minFreeBytes)} free${bound})`],
                ['entries', `${i.entries} (${i.completeEntries} complete)`],
                ['hit ratio', reads > 0 ? `${((i.counters.hits / reads) * 100).toFixed(1)}% of ${reads} reads` : 'no reads yet'],
                ['bytes fetched', formatSize(i.counters.bytesFetched)],
                ['bytes saved', `${formatSize(i.counters.bytesFromCache)}${served ? ` (${((i.counters.bytesFromCache / served) * 100).toFixed(1)}% of bytes read)` : ''}`],
                ['evictions', `${i.counters.evictions} (${formatSize(i.counters.evictedBytes)})`],
              ],
              false,
            ),
          value,
        );
      }),
    );

  group
    .command('prune')
    .description('evict least recently used entries until the cache fits SIZE (default: its bound)')
    .option('--to <size>', 'target size, e.g. 10G, 512MiB, 0')
    .option('--shared', "prune the shared tier (cache.shared in the config file) instead of this machine's cache")
    .option('--older-than <age>', 'with --shared: remove objects uploaded more than AGE ago, e.g. 30d, 12h')
    .addOption(dirOption())
    .addOption(socketOption(io))
    .addHelpText(
      'after',
      '\nThrough the running daemon when there is one. Exit 4 when the target cannot be reached (entries held\nopen, or below what the index and directories take), saying why. With --shared, removes the shared tier\'s\nobjects uploaded more than --older-than ago (besides the tier bucket\'s own lifecycle rules).\n\nExamples:\n  gradient cache prune --to 5G\n  gradient cache prune --shared --older-than 30d',
    )
    .action(
      action(io, async (s, flags: CacheFlags & { to?: string; shared?: boolean; olderThan?: string }) => {
        if (flags.shared) return pruneShared(s, flags.olderThan);
        if (flags.olderThan !== undefined) throw new CliError(EXIT.usage, '--older-than applies to --shared only (this cache prunes by size: --to)');
        const d = await daemonCache(flags);
        const target = flags.to !== undefined ? parseSize(flags.to) : (d?.cache.maxBytes ?? (await cacheOptions(s, flags)).maxBytes);
        const { result, holder } = await prune(flags, s, d, target);
        const reached = result.usedBytes <= target;
        const value = { targetBytes: target, reached, ...result };
        if (!reached) {
          s.out.data(value);
          throw new CliError(EXIT.refused, `cannot prune the cache to ${formatSize(target)}: ${shortfall(result, target, holder)}`);
        }
        s.out.result(
          () =>
            `Pruned ${count(result.evicted, 'entry', 'entries')} (${formatSize(result.freedBytes)}); the cache uses ${formatSize(result.usedBytes)} of the ${formatSize(target)} asked for.`,
          value,
        );
      }),
    );

  group
    .command('clear')
    .description('remove every cached entry')
    .addOption(dirOption())
    .addOption(socketOption(io))
    .addHelpText('after', '\nThrough the running daemon when there is one; exit 4 if entries held open remain.\n\nExample:\n  gradient cache clear')
    .action(
      action(io, async (s, flags: CacheFlags) => {
        const d = await daemonCache(flags);
        let result: PruneResult;
        let holder = 'this process';
        if (d) {
          ({ result, holder } = await prune(flags, s, d, 0));
        } else {
          const cache = await openCache(await cacheOptions(s, flags));
          try {
            result = await cache.clear();
          } finally {
            await cache.close();
          }
        }
        const value = { evicted: result.evicted, freedBytes: result.freedBytes, inUseEntries: result.inUseEntries, inUseBytes: result.inUseBytes };
        const cleared = `Cleared ${count(result.evicted, 'entry', 'entries')} (${formatSize(result.freedBytes)})`;
        if (result.inUseEntries > 0) {
          s.out.data(value);
          throw new CliError(
            EXIT.refused,
            `${cleared}; ${count(result.inUseEntries, 'entry', 'entries')} (${formatSize(result.inUseBytes)}) still open in ${holder} stay`,
          );
        }
        s.out.result(() => `${cleared}.`, value);
      }),
    );
}
