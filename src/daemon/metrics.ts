// Prometheus metrics, opt-in (--metrics-port) and bound to 127.0.0.1 only: a scraper on the node reaches it,
// nothing off the machine does. Values are read at scrape time from the same providers as `gradient status`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DaemonStatus, MemoryStatus } from './status.js';

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly reloads: Counter<'result'>;
  private readonly applySeconds: Histogram;

  constructor(status: () => DaemonStatus | Promise<DaemonStatus>) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'gradient_' });
    this.reloads = new Counter({
      name: 'gradient_settings_reloads_total',
      help: 'settings.yaml loads, by result (ok, error)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.applySeconds = new Histogram({
      name: 'gradient_settings_apply_seconds',
      help: 'time from a settings edit being read to its mounts being applied',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    new Gauge({
      name: 'gradient_mounts',
      help: 'entries under the mount root, by state (ok, stale, error)',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        const s = await status();
        this.reset();
        for (const state of ['ok', 'stale', 'error']) this.set({ state }, s.mounts.filter((m) => m.state === state).length);
      },
    });
    new Gauge({
      name: 'gradient_mount_info',
      help: 'one series per entry: its ref and what it resolved to',
      labelNames: ['name', 'type', 'ref', 'resolved', 'state'],
      registers: [registry],
      async collect() {
        const s = await status();
        this.reset();
        for (const m of s.mounts) this.set({ name: m.name, type: m.type, ref: m.ref, resolved: m.resolved ?? '', state: m.state }, 1);
      },
    });
    const cacheGauge = (name: string, help: string, pick: (c: NonNullable<DaemonStatus['cache']>) => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        async collect() {
          const c = (await status()).cache;
          if (c) this.set(pick(c));
        },
      });
    cacheGauge('gradient_cache_used_bytes', 'bytes held by the on-disk cache', (c) => c.usedBytes);
    cacheGauge('gradient_cache_capacity_bytes', 'the cache byte bound', (c) => c.capacityBytes);
    cacheGauge('gradient_cache_hits', 'reads served from the cache (monotonic)', (c) => c.hits);
    cacheGauge('gradient_cache_misses', 'reads that had to fetch (monotonic)', (c) => c.misses);
    // Monotonic counts kept elsewhere (the FUSE session, the store clients): read at scrape time.
    const requestCounter = (name: string, help: string, pick: (s: DaemonStatus) => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: ['op'],
        registers: [registry],
        async collect() {
          const counts = pick(await status());
          this.reset();
          for (const [op, n] of Object.entries(counts)) this.inc({ op }, n);
        },
      });
    requestCounter('gradient_fuse_requests_total', 'FUSE requests that reached the daemon\'s JavaScript, by operation', (s) => s.requests.fuse);
    requestCounter('gradient_store_requests_total', 'store (S3) request attempts, retries included, by operation', (s) => s.requests.store);
    const memoryGauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, m: MemoryStatus) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          const m = (await status()).memory;
          this.reset();
          if (m) fill(this, m);
        },
      });
    memoryGauge('gradient_memory_target_bytes', 'the memory target (absent: none)', [], (g, m) => m.targetBytes !== null && g.set(m.targetBytes));
    memoryGauge('gradient_memory_rss_bytes', 'resident memory (VmRSS) of the serving process and of the supervisor', ['process'], (g, m) => {
      g.set({ process: 'serving' }, m.rssBytes);
      if (m.supervisorRssBytes !== null) g.set({ process: 'supervisor' }, m.supervisorRssBytes);
    });
    memoryGauge('gradient_memory_peak_rss_bytes', 'peak resident memory (VmHWM) of the serving process', [], (g, m) => g.set(m.peakRssBytes));
    memoryGauge('gradient_memory_used_bytes', 'bytes held by consumer (buffers in use, spares, the JS heap)', ['consumer'], (g, m) => {
      for (const [consumer, bytes] of Object.entries(m.consumers)) g.set({ consumer }, bytes);
    });
    memoryGauge('gradient_memory_under_pressure', '1 while near the target: prefetch, retained chunks and spare buffers are off', [], (g, m) => g.set(m.underPressure ? 1 : 0));
    new Gauge({
      name: 'gradient_ready',
      help: '1 once the filesystem is mounted and settings applied',
      registers: [registry],
      async collect() {
        this.set((await status()).ready ? 1 : 0);
      },
    });
  }

  settingsLoaded(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'ok' : 'error' });
  }

  settingsApplied(seconds: number): void {
    this.applySeconds.observe(seconds);
  }
}

export class MetricsServer {
  private server: Server | undefined;

  constructor(private readonly metrics: DaemonMetrics) {}

  /** Listens on 127.0.0.1:port (0 = any free port); returns the port. */
  async listen(port: number): Promise<number> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.metrics.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500).end(err instanceof Error ? err.message : 'error'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
