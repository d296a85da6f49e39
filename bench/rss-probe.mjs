// Preloaded into a daemon under measurement (node --expose-gc --import bench/rss-probe.mjs ...): on SIGUSR2,
// a full GC, then one JSON line of memory figures (MiB) appended to $GD_RSS_PROBE_OUT. Not part of the product.
import { appendFileSync, readFileSync } from 'node:fs';
import process from 'node:process';

const MiB = 2 ** 20;
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  globalThis.gc?.();
  const u = process.memoryUsage();
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  const line = {
    rss: u.rss / MiB,
    rssAnon: kib('RssAnon'),
    rssFile: kib('RssFile'),
    peakRss: kib('VmHWM'),
    heapUsed: u.heapUsed / MiB,
    heapTotal: u.heapTotal / MiB,
    external: u.external / MiB,
    arrayBuffers: u.arrayBuffers / MiB,
  };
  appendFileSync(process.env.GD_RSS_PROBE_OUT, `${JSON.stringify(line)}\n`);
});
