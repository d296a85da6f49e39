// The shared cache tier (issue 20), run as users run it: `gradient mount` daemons on one machine, each with
// its own cache directory and mountpoint, a committed 1 GiB team dataset version (64 × 16 MiB) on one RGW
// bucket (the origin) and a second bucket as the tier (config.yaml cache.shared). Origin bytes are counted at
// the origin: every daemon but the speed runs reaches it through a proxy that counts GET body bytes.
//   staggered  daemon A reads the version, then daemon B (empty cache): B's origin bytes ÷ version size (≤ 5%)
//   together   daemons C and D read it at the same moment: origin bytes ÷ version size (≤ 1.5)
//   speed      a daemon reading from the origin (no tier, straight to RGW) vs one reading from the filled tier (≥ 0.9)
//   offline    origin stopped (its proxy closed): a fresh daemon with an empty cache reads the version; byte-exact?
//   node --import tsx bench/shared-tier.ts [--rounds 2]
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { startRgw } from '../test/helpers/rgw.js';
import { runCli } from '../test/helpers/cli.js';
import { buildDist, removeHome, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { median, printTable, sdkClient, sh, startRun, type Row } from './lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' } } });
const rounds = Number(values.rounds);
const bench = startRun('shared-tier');
const MiB = 1 << 20;
const FILES = 64;
const FILE_BYTES = 16 * MiB;
const SIZE = FILES * FILE_BYTES;
const log = (msg: string) => console.error(`[shared-tier] ${msg}`);

/** A proxy in front of the origin that counts the body bytes of every GET it forwards. */
async function countingProxy(target: string): Promise<{ endpoint: string; bytes: () => number; close: () => Promise<void> }> {
  const up = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  let bytes = 0;
  const server = http.createServer((req, res) => {
    const fwd = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (req.method === 'GET') r.on('data', (b: Buffer) => (bytes += b.length));
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bytes: () => bytes,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      agent.destroy();
    },
  };
}

const rgw = await startRgw({ name: 'bench-tier', memstoreBytes: '5G' });
const work = mkdtempSync('/tmp/gd-bench-tier-');
const daemons = new Set<DaemonProcess>();
const proxy = await countingProxy(rgw.endpoint);
const secrets = path.join(work, 'secrets');
mkdirSync(secrets, { mode: 0o700 });
writeFileSync(path.join(secrets, 'tier-secret'), `${rgw.secretAccessKey}\n`, { mode: 0o600 });
const envOf = (home: string): NodeJS.ProcessEnv => ({
  HOME: home,
  PATH: process.env.PATH,
  GRADIENT_SECRETS_DIR: secrets,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

try {
  await buildDist();
  const client = sdkClient(rgw);
  for (const b of ['origin', 'tier']) await client.send(new CreateBucketCommand({ Bucket: b }));
  client.destroy();

  // The version, made as users make one; the catalog's config straight to RGW.
  const src = path.join(work, 'src');
  mkdirSync(src);
  const hashes = new Map<string, string>();
  for (let i = 0; i < FILES; i++) {
    const name = `shard-${String(i).padStart(3, '0')}.bin`;
    const data = randomBytes(FILE_BYTES);
    hashes.set(name, createHash('sha256').update(data).digest('hex'));
    writeFileSync(path.join(src, name), data);
  }
  const catalogHome = path.join(work, 'catalog');
  mkdirSync(catalogHome);
  const configFile = path.join(catalogHome, 'config.yaml');
  const gradient = async (...args: string[]) => {
    const r = await runCli(['--config', configFile, '--json', ...args], envOf(catalogHome));
    if (r.code !== 0) throw new Error(`gradient ${args.slice(0, 3).join(' ')}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout || '{}') as { id: string };
  };
  const sp = await gradient('storageProviders', 'create', 's3', '--name', 'rgw', '--bucket', 'origin', '--endpoint', rgw.endpoint, '--accessKey', rgw.accessKeyId, '--secretAccessKey', rgw.secretAccessKey);
  const ds = await gradient('datasets', 'create', '--name', 'tier-bench', '--storageProviderId', sp.id);
  const v = await gradient('datasets', 'versions', 'create', '--id', ds.id);
  await gradient('datasets', 'files', 'put', '--id', `${ds.id}:${v.id}`, '--source-path', src);
  await gradient('datasets', 'versions', 'commit', '--id', `${ds.id}:${v.id}`);
  await sh(`rm -rf ${src}`);
  const catalog = YAML.parse(readFileSync(configFile, 'utf8')) as { teamId: string; storageProviders: Array<Record<string, unknown>> };
  const withEndpoint = (endpoint: string) => ({ teamId: catalog.teamId, storageProviders: catalog.storageProviders.map((p) => ({ ...p, endpoint })) });
  const tierAt = (prefix: string) => ({
    url: `s3://tier/${prefix}`,
    endpoint: rgw.endpoint,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: 'secret:tier-secret',
  });
  log(`version ${ds.id}:${v.id} committed (${FILES} × ${FILE_BYTES / MiB} MiB)`);

  let seq = 0;
  async function daemon(opts: { origin: 'proxy' | 'direct'; tier?: string }): Promise<DaemonProcess> {
    const home = path.join(work, `d${seq++}`);
    mkdirSync(home);
    const d = await startDaemonProcess({
      home,
      env: envOf(home),
      settings: `data:\n  type: dataset\n  id: ${ds.id}\n  version: latest\n`,
      config: { ...withEndpoint(opts.origin === 'proxy' ? proxy.endpoint : rgw.endpoint), publicDatasets: { datasets: { mnist: false } } },
      cacheMaxSize: '2G',
      cacheMinFreeSpace: 0,
      ...(opts.tier ? { cacheShared: tierAt(opts.tier) } : {}),
      entries: ['data'],
      timeoutMs: 120_000,
    });
    daemons.add(d);
    return d;
  }
  const stop = async (d: DaemonProcess) => {
    await d.stop();
    daemons.delete(d);
  };
  /** Reads every file (4 at a time, in name order); seconds. */
  const readAll = async (d: DaemonProcess): Promise<number> => {
    const t = process.hrtime.bigint();
    await sh(`cd ${d.mnt}/data && ls | sort | xargs -P 4 -n 4 cat > /dev/null`, { timeoutMs: 600_000 });
    return Number(process.hrtime.bigint() - t) / 1e9;
  };
  /** Waits until the daemon has nothing left to upload to the tier (every file and the manifest). */
  const uploaded = async (d: DaemonProcess, n: number) => {
    for (let i = 0; i < 1200; i++) {
      const t = (await d.status()).cache?.tier;
      if (t && t.uploads + t.uploadsFailed + t.uploadsDropped >= n) return t;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('uploads to the tier did not end');
  };
  const rate = (secs: number) => SIZE / MiB / secs;

  // staggered
  const o0 = proxy.bytes();
  const a = await daemon({ origin: 'proxy', tier: 'staggered' });
  const aSecs = await readAll(a);
  const aTier = await uploaded(a, FILES + 1);
  await stop(a);
  const o1 = proxy.bytes();
  const b = await daemon({ origin: 'proxy', tier: 'staggered' });
  const bSecs = await readAll(b);
  await stop(b);
  const o2 = proxy.bytes();
  log(`staggered: A ${(o1 - o0) / MiB} MiB from the origin (${aSecs.toFixed(1)} s, ${aTier.uploads} uploads), B ${(o2 - o1) / MiB} MiB (${bSecs.toFixed(1)} s)`);

  // together
  const c = await daemon({ origin: 'proxy', tier: 'together' });
  const d = await daemon({ origin: 'proxy', tier: 'together' });
  const t0 = proxy.bytes();
  const [cSecs, dSecs] = await Promise.all([readAll(c), readAll(d)]);
  const t1 = proxy.bytes();
  const [cTier, dTier] = [(await c.status()).cache?.tier, (await d.status()).cache?.tier];
  await stop(c);
  await stop(d);
  log(`together: ${(t1 - t0) / MiB} MiB from the origin (${cSecs.toFixed(1)} / ${dSecs.toFixed(1)} s; lease waits ${cTier?.leaseWaits}+${dTier?.leaseWaits}, timeouts ${cTier?.leaseTimeouts}+${dTier?.leaseTimeouts})`);

  // speed: origin straight (no tier) vs the filled tier, alternating, fresh caches each time
  const fromOrigin: number[] = [];
  const fromTier: number[] = [];
  const cpuOrigin: number[] = [];
  const cpuTier: number[] = [];
  /** Reads the version; MiB/s, and the daemon's CPU seconds per GiB for it. */
  const measured = async (d: DaemonProcess, rates: number[], cpus: number[]) => {
    const cpu0 = d.cpu();
    rates.push(rate(await readAll(d)));
    cpus.push(((d.cpu() - cpu0) * (1 << 30)) / SIZE);
  };
  for (let r = 0; r < rounds; r++) {
    const e = await daemon({ origin: 'direct' });
    await measured(e, fromOrigin, cpuOrigin);
    await stop(e);
    const f = await daemon({ origin: 'direct', tier: 'staggered' });
    await measured(f, fromTier, cpuTier);
    const ft = (await f.status()).cache?.tier;
    if (ft && ft.bytesFromOrigin > 0) log(`speed round ${r}: the tier run read ${ft.bytesFromOrigin} bytes from the origin`);
    await stop(f);
    log(`speed round ${r}: origin ${fromOrigin[r]!.toFixed(0)} MiB/s (${cpuOrigin[r]!.toFixed(2)} CPU-s/GiB), tier ${fromTier[r]!.toFixed(0)} MiB/s (${cpuTier[r]!.toFixed(2)} CPU-s/GiB)`);
  }

  // offline: the origin's proxy closed; a fresh daemon, empty cache
  await proxy.close();
  const g = await daemon({ origin: 'proxy', tier: 'staggered' });
  const gStatus = await g.status();
  const resolved = gStatus.mounts.find((m) => m.name === 'data')?.resolved ?? '';
  const sums = await sh(`cd ${g.mnt}/data && sha256sum *`, { timeoutMs: 600_000 });
  let exact = 0;
  for (const line of sums.trim().split('\n')) {
    const [sum, name] = line.split(/\s+/);
    if (name && hashes.get(name) === sum) exact++;
  }
  await stop(g);
  log(`offline: ${exact}/${FILES} files byte-exact; resolved "${resolved}"`);

  const pct = (x: number) => `${((x / SIZE) * 100).toFixed(1)}%`;
  const rows: Row[] = [
    { measure: 'staggered: second daemon, bytes from the origin', value: pct(o2 - o1), target: '≤ 5%' },
    { measure: 'staggered: first daemon, bytes from the origin', value: pct(o1 - o0), target: '—' },
    { measure: 'together: both daemons, bytes from the origin ÷ version size', value: ((t1 - t0) / SIZE).toFixed(2), target: '≤ 1.5' },
    { measure: 'read 1 GiB from the origin, no tier (MiB/s, median)', value: median(fromOrigin).toFixed(0), target: '—' },
    { measure: 'read 1 GiB from the tier (MiB/s, median)', value: median(fromTier).toFixed(0), target: '—' },
    { measure: 'tier ÷ origin', value: (median(fromTier) / median(fromOrigin)).toFixed(2), target: '≥ 0.9' },
    { measure: "daemon CPU-s per GiB read: origin / tier (median)", value: `${median(cpuOrigin).toFixed(2)} / ${median(cpuTier).toFixed(2)}`, target: '—' },
    { measure: 'together: wall time of the two readers (s)', value: `${cSecs.toFixed(1)} / ${dSecs.toFixed(1)}`, target: '—' },
    { measure: 'staggered: wall time, first / second daemon (s)', value: `${aSecs.toFixed(1)} / ${bSecs.toFixed(1)}`, target: '—' },
    { measure: 'origin stopped: fresh daemon, files byte-exact', value: `${exact}/${FILES}`, target: `${FILES}/${FILES}` },
  ];
  printTable('shared tier', rows);
  const saved = bench.save(
    {
      size: SIZE,
      staggered: { originA: o1 - o0, originB: o2 - o1, secsA: aSecs, secsB: bSecs, tierA: aTier },
      together: { origin: t1 - t0, secs: [cSecs, dSecs], tiers: [cTier, dTier] },
      speed: { fromOriginMiBps: fromOrigin, fromTierMiBps: fromTier, cpuPerGiBOrigin: cpuOrigin, cpuPerGiBTier: cpuTier },
      offline: { exact, files: FILES, resolved },
    },
    [{ title: `1 GiB version (${FILES} × 16 MiB), two RGW buckets (origin, tier), one machine`, rows }],
    [
      'Origin bytes: GET body bytes through a counting proxy in front of the origin (catalog records and manifest included).',
      `Speed: ${rounds} rounds alternating, fresh daemon and cache each, 4 readers (xargs -P 4 cat), origin straight to RGW; per round origin ${fromOrigin.map((x) => x.toFixed(0)).join(' / ')}, tier ${fromTier.map((x) => x.toFixed(0)).join(' / ')} MiB/s.`,
      `Offline: the status showed \`${resolved}\`.`,
    ],
  );
  log(`summary: ${saved.summary}`);
} finally {
  for (const d of daemons) await d.stop().catch(() => undefined);
  await proxy.close().catch(() => undefined);
  rgw.stop();
  removeHome(work);
}
