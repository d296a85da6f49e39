// The figures of a benchmark that compares tools (ours, peers) with a limit, workload by workload: every
// sample with what it cost — CPU seconds of the process serving it (/proc/<pid>/stat of our `gradient mount`,
// rclone's or s3fs's mount process; this process for the SDK limits), what RGW served (requests, bytes, its
// CPU) and, for ours, the daemon's own FUSE and store request counts from its status socket — then medians,
// per-round values, ratios and the summary table. A failed sample is recorded as a failure and the run goes on.
import { requestDelta, type RequestCounts, type RequestDelta } from './daemon-process.js';
import { median, perRound, type RgwCounters, type Row } from './lib.js';

/** Whoever a sample is of: a tool (`ours`, `rclone`, `s3fs`) or `limit`. */
export type Who = string;

/** The process that does a workload's work, as a sample's cost sees it. */
export interface Server {
  /** CPU seconds it has used so far. */
  cpu(): number;
  /** Ours: the daemon's request counts. */
  requests?(): Promise<RequestCounts | undefined>;
}

export interface MetricDef {
  label: string;
  unit: string;
  /** Throughputs: higher is better; times: lower is better (their ratio is inverted). */
  higherIsBetter: boolean;
  /** What the limit column measures. */
  limit?: string;
  /** One run's work: CPU is given per GiB moved (s/GiB) or per item (ms/file, ms/entry, ms/read). */
  per: { gib: number } | { items: number; item: string };
  /** Peers and limit of another metric, for ratios (a team dataset against the same files as plain objects). */
  against?: string;
  /** The target for ours vs limit, printed beside it. */
  target?: string;
}

export interface Cost {
  /** CPU seconds of the serving process. */
  cpu: number;
  rgw?: { req: number; get: number; getMiB: number; cpu: number };
  requests?: RequestDelta;
}

export interface Sample {
  round: number;
  value: number;
  cost?: Cost;
}

export interface Snapshot {
  cpu: number;
  rgw?: RgwCounters;
  requests?: RequestCounts;
}

interface Metric extends MetricDef {
  samples: Partial<Record<Who, Sample[]>>;
}

export interface Failure {
  metric: string;
  who: Who;
  round: string;
  error: string;
}

/** Three significant digits, or a dash. */
export function sig(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : a === 0 ? '0' : x.toPrecision(2);
}

const med = (xs: number[] | undefined) => (xs && xs.length ? median(xs) : NaN);

export class Figures {
  readonly metrics = new Map<string, Metric>();
  readonly errors: Failure[] = [];

  constructor(
    private readonly opts: {
      /** RGW's counters, read around every sample that has a server. */
      rgw?: () => Promise<RgwCounters>;
      log: (msg: string) => void;
    },
  ) {}

  define(id: string, def: MetricDef): void {
    this.metrics.set(id, { ...def, samples: {} });
  }

  private get(id: string): Metric {
    const m = this.metrics.get(id);
    if (!m) throw new Error(`no metric ${id}`);
    return m;
  }

  /** Counters now: taken before a workload (the serving process's CPU last, so the other reads are outside). */
  async snapshot(server: Server): Promise<Snapshot> {
    const rgw = await this.opts.rgw?.().catch(() => undefined);
    const requests = await server.requests?.().catch(() => undefined);
    return { cpu: server.cpu(), rgw, requests };
  }

  /** What was spent since `s0` (the serving process's CPU first). */
  async costSince(s0: Snapshot, server: Server): Promise<Cost> {
    const cpu = server.cpu() - s0.cpu;
    const requests = await server.requests?.().catch(() => undefined);
    const rgw = await this.opts.rgw?.().catch(() => undefined);
    const cost: Cost = { cpu };
    const delta = requestDelta(s0.requests, requests);
    if (delta) cost.requests = delta;
    if (s0.rgw && rgw) cost.rgw = { req: rgw.req - s0.rgw.req, get: rgw.get - s0.rgw.get, getMiB: (rgw.getBytes - s0.rgw.getBytes) / 2 ** 20, cpu: rgw.cpu - s0.rgw.cpu };
    return cost;
  }

  record(id: string, who: Who, round: number, value: number, cost?: Cost): void {
    const s: Sample = { round, value };
    if (cost) s.cost = cost;
    (this.get(id).samples[who] ??= []).push(s);
  }

  fail(id: string, who: Who, round: number, err: unknown): void {
    const error = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    this.errors.push({ metric: id, who, round: `r${round}`, error });
    this.opts.log(`${id} ${who} r${round} FAILED: ${error}`);
  }

  /**
   * Runs one sample and records it with its cost (none without a server: local-file limits); a failure is
   * recorded and the run goes on. `since`: count the cost from an earlier snapshot (a write until durable
   * costs from the first byte written). Returns the sample, or undefined if it failed.
   */
  async measure(id: string, who: Who, round: number, server: Server | undefined, fn: () => Promise<number>, opts: { since?: Snapshot } = {}): Promise<Sample | undefined> {
    const s0 = server ? (opts.since ?? (await this.snapshot(server))) : undefined;
    try {
      const value = await fn();
      const cost = server && s0 ? await this.costSince(s0, server) : undefined;
      this.record(id, who, round, value, cost);
      this.opts.log(`${id} ${who} r${round}: ${sig(value)} ${this.get(id).unit}${cost ? `, CPU ${sig(cost.cpu)} s` : ''}`);
      return cost ? { round, value, cost } : { round, value };
    } catch (err) {
      this.fail(id, who, round, err);
      return undefined;
    }
  }

  values(id: string, who: Who): number[] {
    return (this.get(id).samples[who] ?? []).map((s) => s.value);
  }

  median(id: string, who: Who): number {
    return med(this.values(id, who));
  }

  /** The metric whose samples stand for `who` in `id`'s row: its own for ours, `against`'s for the others. */
  private source(m: Metric, who: Who): Metric {
    return who !== 'ours' && m.against ? this.get(m.against) : m;
  }

  /** > 1: ours is better (throughput ratio; for times, their time over ours). NaN without both. */
  ratio(id: string, other: Who): number {
    const m = this.get(id);
    const a = med(m.samples.ours?.map((s) => s.value));
    const b = med(this.source(m, other).samples[other]?.map((s) => s.value));
    return m.higherIsBetter ? a / b : b / a;
  }

  /** Median CPU of the serving process per unit of work: s/GiB, or ms per item. */
  cpuPerUnit(id: string, who: Who): number {
    const m = this.get(id);
    const src = this.source(m, who);
    const cpus = (src.samples[who] ?? []).flatMap((s) => (s.cost ? [s.cost.cpu] : []));
    const per = src.per;
    return 'gib' in per ? med(cpus) / per.gib : (med(cpus) / per.items) * 1000;
  }

  cpuUnit(id: string): string {
    const per = this.get(id).per;
    return 'gib' in per ? 's/GiB' : `ms/${per.item}`;
  }

  /** Our daemon's requests per item (per run for a byte workload), medians; undefined without counts. */
  requestsPerItem(id: string): RequestDelta | undefined {
    const m = this.get(id);
    const deltas = (m.samples.ours ?? []).flatMap((s) => (s.cost?.requests ? [s.cost.requests] : []));
    if (!deltas.length) return undefined;
    const n = 'items' in m.per ? m.per.items : 1;
    const k = (f: keyof RequestDelta) => median(deltas.map((d) => d[f])) / n;
    return { fuse: k('fuse'), store: k('store'), get: k('get'), head: k('head'), list: k('list') };
  }

  /** RGW's side per item (per run for byte workloads): requests, GETs+HEADs, MiB sent, its CPU. */
  rgwPerItem(id: string, who: Who): string {
    const m = this.get(id);
    const src = this.source(m, who);
    const costs = (src.samples[who] ?? []).flatMap((s) => (s.cost?.rgw ? [s.cost.rgw] : []));
    if (!costs.length) return '—';
    const n = 'items' in src.per ? src.per.items : 1;
    const k = (f: 'req' | 'get' | 'getMiB' | 'cpu') => sig(median(costs.map((c) => c[f])) / n);
    return `${k('req')} / ${k('get')} / ${k('getMiB')} / ${sig(median(costs.map((c) => c.cpu)))} s`;
  }

  /**
   * The summary table: one row per metric with samples; columns for each tool and the limit (medians), ours'
   * ratios, the serving processes' CPU, our requests per item and ours per round.
   */
  rows(tools: readonly Who[], opts: { limit?: boolean } = {}): Row[] {
    const whos = opts.limit === false ? [...tools] : [...tools, 'limit'];
    const others = whos.filter((w) => w !== 'ours');
    const rows: Row[] = [];
    for (const [id, m] of this.metrics) {
      if (!Object.keys(m.samples).length) continue;
      const row: Row = { workload: m.label, unit: m.unit };
      for (const w of whos) row[w] = sig(this.median(m.against && w !== 'ours' ? m.against : id, w));
      for (const w of others) row[`ours vs ${w}`] = sig(this.ratio(id, w));
      if ([...this.metrics.values()].some((x) => x.target)) row.target = m.target ?? '';
      row[`CPU: ${whos.join(' / ')}`] = `${whos.map((w) => sig(this.cpuPerUnit(id, w))).join(' / ')} ${this.cpuUnit(id)}`;
      const q = this.requestsPerItem(id);
      const item = 'items' in m.per ? m.per.item : 'run';
      row['ours requests: FUSE / store (GET, HEAD, LIST)'] = q ? `${sig(q.fuse)} / ${sig(q.store)} (${sig(q.get)}, ${sig(q.head)}, ${sig(q.list)}) per ${item}` : '—';
      row['ours per round'] = perRound(this.values(id, 'ours'));
      rows.push(row);
    }
    return rows;
  }

  /** RGW's side, per tool: requests / GETs+HEADs / MiB sent per item (per run for byte workloads) / its CPU. */
  rgwRows(whos: readonly Who[]): Row[] {
    const rows: Row[] = [];
    for (const [id, m] of this.metrics) {
      if (!Object.keys(m.samples).length) continue;
      const row: Row = { workload: id, per: 'items' in m.per ? m.per.item : 'run' };
      for (const w of whos) row[w] = this.rgwPerItem(id, w);
      rows.push(row);
    }
    return rows;
  }

  /** Everything, for the full results file. */
  json(tools: readonly Who[]): object {
    const whos = [...tools, 'limit'];
    return Object.fromEntries(
      [...this.metrics].map(([id, m]) => [
        id,
        {
          ...m,
          medians: Object.fromEntries(whos.map((w) => [w, this.median(m.against && w !== 'ours' ? m.against : id, w)])),
          ratios: Object.fromEntries(whos.filter((w) => w !== 'ours').map((w) => [w, this.ratio(id, w)])),
          cpuPerUnit: Object.fromEntries(whos.map((w) => [w, this.cpuPerUnit(id, w)])),
          cpuUnit: this.cpuUnit(id),
          oursRequestsPerItem: this.requestsPerItem(id) ?? null,
        },
      ]),
    );
  }
}
