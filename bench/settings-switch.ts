// Settings edit → view swapped: the daemon's share of "edit settings.yaml, see the new version", measured from
// the rename of a safely-saved settings.yaml to the namespace's swap() call (watch, debounce, parse, resolve,
// apply). The kernel side (entry invalidation) is measured by the FUSE benches.
//   node --import tsx bench/settings-switch.ts [--switches 50]
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { startDaemon } from '../src/daemon/daemon.js';
import { createLogger } from '../src/daemon/logger.js';
import type { MountTarget } from '../src/daemon/reconciler.js';
import type { MountPayload, ResolvedDataset } from '../src/daemon/resolvers.js';
import { printTable, saveResults } from './lib.js';

const { values } = parseArgs({ options: { switches: { type: 'string', default: '50' } } });
const switches = Number(values.switches);
const dir = mkdtempSync(path.join(tmpdir(), 'gd-bench-switch-'));
const file = path.join(dir, 'settings.yaml');
const entry = (v: string) => `reports:\n  type: dataset\n  id: dst1\n  version: ${v}\n`;

let swapped: ((resolved: string) => void) | undefined;
const target: MountTarget<MountPayload<ResolvedDataset>> = {
  mount: () => undefined,
  swap: (_name, m) => swapped?.(m.resolved),
  unmount: () => undefined,
};
// The catalog's share is a few object reads; here only the daemon's own path is timed.
const catalog = { resolve: async (ref: string) => ({ datasetId: ref.split(':')[0]!, versionId: ref.split(':')[1]! }) };

writeFileSync(file, entry('v0'));
const daemon = await startDaemon({
  settingsFile: file,
  mountpoint: '/datasets',
  target,
  catalog,
  socketPath: path.join(dir, 'daemon.sock'),
  handleSignals: false,
  notifier: { ready: async () => undefined, status: async () => undefined, stopping: async () => undefined },
  logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
});

const ms: number[] = [];
try {
  for (let i = 1; i <= switches; i++) {
    const version = `v${i}`;
    const tmp = path.join(dir, `.settings.yaml.${i}.tmp`);
    writeFileSync(tmp, entry(version));
    const seen = new Promise<void>((resolve) => (swapped = (r) => r.endsWith(`:${version}`) && resolve()));
    const t0 = process.hrtime.bigint();
    renameSync(tmp, file);
    await seen;
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 20));
  }
} finally {
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
}

const sorted = [...ms].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const row = { switches, 'p50 ms': pct(50), 'p99 ms': pct(99), 'max ms': sorted.at(-1)!, 'target p99 ms': 1000 };
printTable('settings edit → view swapped (rename-and-replace saves)', [row]);
console.log(`results: ${saveResults('settings-switch', { row, samplesMs: ms })}`);
