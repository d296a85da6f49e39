// `gradient cache stats|prune|clear`: the operator's view of the on-disk cache. `stats` only reads (it works
// while the daemon runs); `prune` and `clear` take the cache directory's lock, so they refuse while the daemon
// owns it rather than delete a file it is serving.
import { Command, Option } from 'commander';
import { cacheOptionsFrom, formatSize, inspectCache, openCache, parseCacheConfig, parseSize, resolveCacheOptions } from '../cache/index.js';
import { action, type CliIO, type CommandContext } from './context.js';
import { count, table } from './output.js';

interface DirOpts {
  cacheDir?: string;
}

async function cacheOptions(s: CommandContext, opts: DirOpts) {
  const { config } = await s.config();
  return resolveCacheOptions(cacheOptionsFrom(parseCacheConfig(config.cache), { cacheDir: opts.cacheDir }));
}

const dirOption = () => new Option('--cache-dir <dir>', 'cache directory (default: cache.dir in the config file, else /var/cache/gradient)');

export function registerCache(program: Command, io: CliIO): void {
  const group = program.command('cache').description('the on-disk cache shared by all mounts');

  group
    .command('stats')
    .description('size, bound, entries, hit ratio, bytes fetched and saved')
    .addOption(dirOption())
    .action(
      action(io, async (s, opts: DirOpts) => {
        const o = await cacheOptions(s, opts);
        const i = inspectCache(o.dir);
        const reads = i.counters.hits + i.counters.misses;
        const served = i.counters.bytesFromCache + i.counters.bytesFetched;
        const value = {
          dir: i.dir,
          exists: i.exists,
          ownerPid: i.owner ?? null,
          diskBytes: i.diskBytes,
          maxBytes: o.maxBytes,
          minFreeBytes: o.minFreeBytes,
          entries: i.entries,
          completeEntries: i.completeEntries,
          hitRatio: reads > 0 ? i.counters.hits / reads : null,
          ...i.counters,
          bytesSaved: i.counters.bytesFromCache,
        };
        s.out.result(
          () =>
            table(
              [
                ['directory', `${i.dir}${i.exists ? '' : ' (empty: nothing cached yet)'}`],
                ['in use by', i.owner ? `pid ${i.owner}` : '-'],
                ['size on disk', `${formatSize(i.diskBytes)} of ${formatSize(o.maxBytes)} (keeping ${formatSize(o.minFreeBytes)} free)`],
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
    .description('evict least recently used entries until the cache fits SIZE (default: its configured bound)')
    .option('--to <size>', 'target size, e.g. 10G, 512MiB, 0')
    .addOption(dirOption())
    .action(
      action(io, async (s, opts: DirOpts & { to?: string }) => {
        const o = await cacheOptions(s, opts);
        const target = opts.to === undefined ? o.maxBytes : parseSize(opts.to);
        const cache = await openCache(o);
        try {
          const r = await cache.prune(target);
          const used = cache.stats().usedBytes;
          s.out.result(
            () => `Pruned ${count(r.evicted, 'entry', 'entries')} (${formatSize(r.freedBytes)}); the cache now uses ${formatSize(used)}.`,
            { evicted: r.evicted, freedBytes: r.freedBytes, usedBytes: used },
          );
        } finally {
          await cache.close();
        }
      }),
    );

  group
    .command('clear')
    .description('remove every cached entry')
    .addOption(dirOption())
    .action(
      action(io, async (s, opts: DirOpts) => {
        const o = await cacheOptions(s, opts);
        const cache = await openCache(o);
        try {
          const r = await cache.clear();
          s.out.result(() => `Cleared ${count(r.evicted, 'entry', 'entries')} (${formatSize(r.freedBytes)}).`, {
            evicted: r.evicted,
            freedBytes: r.freedBytes,
          });
        } finally {
          await cache.close();
        }
      }),
    );
}
