// The daemon end to end minus FUSE: real settings file edits (rename-and-replace), real chokidar, the real
// team catalog on a local store, the real public catalog and embedded MNIST, the real status socket, CLI and
// metrics port. Only the namespace (src/fs, wired separately) is a recording stand-in.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStatus, statusCommand } from '../../../src/cli/status.js';
import { fetchStatus, requestRefresh, waitForReady } from '../../../src/daemon/client.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/daemon.js';
import { createLogger } from '../../../src/daemon/logger.js';
import type { Notifier } from '../../../src/daemon/notify.js';
import type { MountTarget, ResolvedMount } from '../../../src/daemon/reconciler.js';
import type { MountPayload } from '../../../src/daemon/resolvers.js';
import { Catalog, type ResolvedVersion } from '../../../src/catalog/catalog.js';
import { putFiles } from '../../../src/catalog/put.js';
import type { StorageProvider } from '../../../src/config/config-file.js';
import { StatusServer } from '../../../src/daemon/status-server.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';
import { until } from '../../helpers/until.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

/** What a view would serve: the resolved ref and the manifest's file list. */
class Namespace implements MountTarget<MountPayload<ResolvedVersion>> {
  views = new Map<string, string>();
  files = new Map<string, string[]>();
  private record(name: string, m: ResolvedMount<MountPayload<ResolvedVersion>>) {
    this.views.set(name, m.resolved);
    if (m.payload.kind === 'dataset') this.files.set(name, m.payload.version.manifest.files.map((f) => f.path));
    if (m.payload.kind === 'embedded') this.files.set(name, m.payload.dataset.files.map((f) => f.path));
  }
  mount(name: string, m: ResolvedMount<MountPayload<ResolvedVersion>>) {
    this.record(name, m);
  }
  swap(name: string, m: ResolvedMount<MountPayload<ResolvedVersion>>) {
    this.record(name, m);
  }
  unmount(name: string) {
    this.views.delete(name);
    this.files.delete(name);
  }
}

/** A real team catalog on a local store: one dataset, versions v1 and v2 committed, tag prod → v1, one uncommitted. */
async function teamCatalog(root: string) {
  const provider: StorageProvider = { id: 'sp1', name: 'local', type: 'local', path: path.join(root, 'store') };
  const catalog = new Catalog({ teamId: 'team1', providers: [provider], managedProviderId: 'sp1' });
  const dataset = await catalog.createDataset({ name: 'reports' });
  const version = async (file: string, commit: boolean) => {
    const v = await catalog.createVersion(dataset.id);
    const src = path.join(root, `src-${v.id}`);
    mkdirSync(src);
    writeFileSync(path.join(src, file), file);
    await putFiles(catalog, `${dataset.id}:${v.id}`, src);
    if (commit) await catalog.commitVersion(dataset.id, v.id);
    return v.id;
  };
  const v1 = await version('q1.csv', true);
  const v2 = await version('q2.csv', true);
  const wip = await version('draft.csv', false);
  await catalog.setTag(dataset.id, v1, 'prod');
  return { catalog, id: dataset.id, v1, v2, wip };
}

let DS = '';
const ds = (name: string, version: string, id = DS) => `${name}:\n  type: dataset\n  id: ${id}\n  version: ${version}\n`;
const bucket = 'bkt:\n  type: s3\n  url: s3://bkt/data\n  accessKeyId: AK123\n  secretAccessKey: secret:bkt-key\n  endpoint: http://127.0.0.1:9\n';

const mount = (s: DaemonStatus, name: string) => s.mounts.find((m) => m.name === name);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');


describe('daemon', () => {
  let dir: string;
  let file: string;
  let daemon: RunningDaemon;
  let team: Awaited<ReturnType<typeof teamCatalog>>;
  const ns = new Namespace();
  const logs: string[] = [];
  const notes: string[] = [];
  const notifier: Notifier = {
    ready: async (s) => void notes.push(`READY=1 ${s ?? ''}`),
    status: async (s) => void notes.push(`STATUS=${s}`),
    stopping: async () => void notes.push('STOPPING=1'),
  };
  let drained = false;
  let fsUnmounted = false;
  const ref = (v: string) => `${team.id}:${v}`;

  const save = (text: string) => {
    // An editor's safe save: a new file renamed over the old one.
    const tmp = path.join(dir, `.settings.yaml.${Date.now()}.swp`);
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gd-daemon-'));
    team = await teamCatalog(dir);
    DS = team.id;
    file = path.join(dir, 'settings.yaml');
    writeFileSync(path.join(dir, 'bkt-key'), `${SECRET}\n`);
    writeFileSync(file, ds('reports', team.v1) + bucket);
    daemon = await startDaemon({
      settingsFile: file,
      mountpoint: '/datasets',
      target: ns,
      catalog: team.catalog,
      socketPath: path.join(dir, 'run', 'daemon.sock'),
      metricsPort: 0,
      handleSignals: false,
      env: { GRADIENT_SECRETS_DIR: dir },
      notifier,
      logger: createLogger({
        destination: new Writable({
          write(c: Buffer, _e, cb) {
            logs.push(c.toString());
            cb();
          },
        }),
      }),
      cacheStats: () => ({ usedBytes: 3 << 20, capacityBytes: 10 << 20, hits: 9, misses: 1 }),
      requests: () => ({ fuse: { LOOKUP: 7, OPEN: 3 }, store: { GET: 5, LIST: 2 } }),
      drain: async () => void (drained = true),
      unmountFilesystem: async () => void (fsUnmounted = true),
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('comes up ready with the settings entries and embedded mnist, and says so to systemd', async () => {
    const s = await waitForReady(daemon.socketPath, { timeoutMs: 2000 });
    expect(s.phase).toBe('ready');
    expect(s.mounts.map((m) => [m.name, m.type, m.state])).toEqual([
      ['mnist', 'public', 'ok'],
      ['reports', 'dataset', 'ok'],
      ['bkt', 's3', 'ok'],
    ]);
    expect(mount(s, 'mnist')!.resolved).toMatch(/^embedded:mnist@[0-9a-f]{12}$/);
    expect(mount(s, 'reports')).toMatchObject({ ref: ref(team.v1), resolved: ref(team.v1) });
    expect(mount(s, 'bkt')).toMatchObject({ ref: 's3://bkt/data', resolved: 's3://bkt/data' });
    expect(s.cache).toEqual({ usedBytes: 3 << 20, capacityBytes: 10 << 20, hits: 9, misses: 1, hitRatio: 0.9 });
    expect(notes[0]).toMatch(/^READY=1 3 entries on \/datasets$/);
    expect(ns.files.get('reports')).toEqual(['q1.csv']);
    expect(ns.files.get('mnist')).toContain('train-images-idx3-ubyte');
  });

  it('switches a version on a rename-and-replace save within a second', async () => {
    const t0 = Date.now();
    save(ds('reports', team.v2) + bucket);
    const s = await until('reports on v2', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'reports')?.resolved === ref(team.v2));
    expect(mount(s, 'reports')).toMatchObject({ ref: ref(team.v2), state: 'ok' });
    expect(ns.files.get('reports')).toEqual(['q2.csv']);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('keeps every mount through a bad edit and shows file:line and field, then recovers', async () => {
    save(ds('reports', team.v1).replace('version', 'verison') + bucket);
    const bad = await until('the settings error', () => fetchStatus(daemon.socketPath), (s) => s.settings.state === 'error');
    expect(bad.settings.lastError).toContain(`${file}:4:3: reports.verison: unknown field for type dataset`);
    expect(mount(bad, 'reports')).toMatchObject({ resolved: ref(team.v2), state: 'ok' });
    save(ds('reports', team.v1) + bucket);
    const good = await until('reports back on v1', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'reports')?.resolved === ref(team.v1));
    expect(good.settings).toMatchObject({ state: 'ok', lastError: null });
  });

  it('keeps the last good version of an entry whose new ref fails; other entries still apply', async () => {
    save(ds('reports', 'nosuchtag') + ds('more', 'latest') + bucket);
    const s = await until('more ok, reports stale', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'more')?.state === 'ok' && mount(s, 'reports')?.state === 'stale');
    expect(mount(s, 'more')).toMatchObject({ ref: ref('latest'), resolved: ref(team.v2) });
    expect(mount(s, 'reports')).toMatchObject({ ref: ref('nosuchtag'), resolved: ref(team.v1), state: 'stale' });
    expect(mount(s, 'reports')!.lastError).toMatch(new RegExp(`^${esc(file)}:4:12: reports\\.version: dataset version ${team.id}:nosuchtag not found`));
    expect(ns.views.get('reports')).toBe(ref(team.v1));

    save(ds('reports', team.wip) + ds('gone', 'v1', 'dsnosuchdataset') + bucket);
    const next = await until('reports on wip, gone in error', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'reports')?.ref === ref(team.wip) && mount(s, 'gone')?.state === 'error');
    expect(mount(next, 'reports')!.lastError).toMatch(/:4:12: reports\.version: .*is not committed/);
    expect(mount(next, 'gone')!.lastError).toMatch(new RegExp(`^${esc(file)}:7:7: gone\\.id: dataset "dsnosuchdataset" not found`));
    expect(ns.views.has('more')).toBe(false);
    expect(ns.views.has('gone')).toBe(false);
  });

  it('while the file is bad, shows only its errors; entries show as the last good settings left them (#18 bug 3)', async () => {
    // The last good file left `reports` stale (4:12) and `gone` in error (7:7). The new file moves every line
    // down and breaks: those old positions would point at the wrong lines of what is on disk now.
    save('# two lines\n# further down\n' + ds('reports', team.wip) + 'gone: [unclosed\n' + bucket);
    const bad = await until('the settings error', () => fetchStatus(daemon.socketPath), (s) => s.settings.state === 'error');
    const check = (s: DaemonStatus) => {
      expect(s.settings.lastError).toMatch(new RegExp(`^${esc(file)}:\\d+:\\d+: `));
      for (const m of s.mounts) expect(m.lastError ?? '', m.name).not.toContain(file);
      expect(mount(s, 'reports')).toMatchObject({ state: 'stale', resolved: ref(team.v1) });
      expect(mount(s, 'reports')!.lastError).toMatch(/^reports\.version: .*is not committed/);
      expect(mount(s, 'gone')!.lastError).toMatch(/^gone\.id: dataset "dsnosuchdataset" not found/);
      const text = formatStatus(s);
      // every positioned line is one of the file's own errors; the entries' follow, under the last good settings
      const positioned = text.split('\n').filter((l) => new RegExp(`${esc(file)}:\\d+:\\d+`).test(l));
      expect(positioned.length).toBeGreaterThan(0);
      for (const line of positioned) expect(s.settings.lastError).toContain(line.trim());
      expect(text).toContain(`errors in ${file}:\n  ${s.settings.lastError!.split('\n')[0]}`);
      expect(text).toMatch(/errors of entries under the last good settings:\n( {2}.*\n)* {2}reports\.version: /);
    };
    check(bad);
    // A refresh resolves the last good settings again: their errors still must not claim positions.
    check(await requestRefresh(daemon.socketPath));
  });

  it('reports a missing secret by entry and secret name, keeping the mount', async () => {
    save(ds('reports', team.v1) + bucket.replace('secret:bkt-key', 'secret:nope'));
    const s = await until('bkt stale', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'bkt')?.state === 'stale');
    expect(mount(s, 'bkt')!.lastError).toMatch(new RegExp(`^${esc(file)}:9:20: bkt\\.secretAccessKey: secret "nope" not found`));
    save(ds('reports', 'prod') + bucket);
    await until('bkt ok, reports on prod', () => fetchStatus(daemon.socketPath), (s) => mount(s, 'bkt')?.state === 'ok' && mount(s, 'reports')?.ref === ref('prod'));
  });

  it('picks up a moved tag on refresh (SIGHUP / gradient mount --refresh)', async () => {
    await team.catalog.setTag(team.id, team.v2, 'prod');
    expect(mount(await fetchStatus(daemon.socketPath), 'reports')!.resolved).toBe(ref(team.v1));
    const s = await requestRefresh(daemon.socketPath);
    expect(mount(s, 'reports')).toMatchObject({ ref: ref('prod'), resolved: ref(team.v2), state: 'ok' });
    expect(ns.files.get('reports')).toEqual(['q2.csv']);
  });

  it('serves Prometheus metrics on 127.0.0.1 only', async () => {
    const res = await fetch(`http://127.0.0.1:${daemon.metricsPort}/metrics`);
    const text = await res.text();
    expect(text).toContain('gradient_mounts{state="ok"} 3');
    expect(text).toContain(`gradient_mount_info{name="reports",type="dataset",ref="${ref('prod')}",resolved="${ref(team.v2)}",state="ok"} 1`);
    expect(text).toContain('gradient_cache_used_bytes 3145728');
    expect(text).toMatch(/gradient_settings_reloads_total\{result="error"\} [1-9]/);
    expect(text).toMatch(/gradient_settings_apply_seconds_count [1-9]/);
    expect(text).toContain('gradient_fuse_requests_total{op="LOOKUP"} 7');
    expect(text).toContain('gradient_fuse_requests_total{op="OPEN"} 3');
    expect(text).toContain('gradient_store_requests_total{op="GET"} 5');
    expect(text).toContain('gradient_store_requests_total{op="LIST"} 2');
    // The same counts as a top-level `requests` in the status JSON.
    expect((await fetchStatus(daemon.socketPath)).requests).toEqual({ fuse: { LOOKUP: 7, OPEN: 3 }, store: { GET: 5, LIST: 2 } });
  });

  it('gradient status prints a table and JSON, with exit codes', async () => {
    const out: string[] = [];
    const io = {
      stdout: new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) }),
      stderr: new Writable({ write: (_c, _e, cb) => cb() }),
      env: {},
    };
    await statusCommand(io).parseAsync(['--socket', daemon.socketPath], { from: 'user' });
    await statusCommand(io).parseAsync(['--socket', daemon.socketPath, '--json'], { from: 'user' });
    expect(process.exitCode).toBe(0);
    const table = out[0]!;
    expect(table).toMatch(/^NAME +TYPE +REF +SERVING +STATE$/m);
    expect(table).toMatch(new RegExp(`^reports +dataset +${ref('prod')} +${ref(team.v2)} +ok$`, 'm'));
    expect(table).toContain('cache: 3.0 MiB of 10.0 MiB (30%), 90.0% hits');
    expect((JSON.parse(out[1]!) as DaemonStatus).mounts).toHaveLength(3);
    process.exitCode = undefined;
  });

  it('never shows a secret in status or logs', async () => {
    const raw = JSON.stringify(await fetchStatus(daemon.socketPath));
    expect(raw).not.toContain(SECRET);
    expect(logs.join('')).not.toContain(SECRET);
    expect(logs.join('')).toContain('switched version');
  });

  it('refuses a second daemon on the same socket', async () => {
    const other = new StatusServer({ socketPath: daemon.socketPath, provider: { status: () => daemon.status(), refresh: async () => undefined } });
    await expect(other.listen()).rejects.toMatchObject({ code: 'DAEMON_RUNNING' });
  });

  it('stops cleanly: STOPPING=1, drain, unmount every entry and the filesystem, remove the socket', async () => {
    await daemon.stop('test');
    await daemon.stopped;
    expect(notes.at(-1)).toBe('STOPPING=1');
    expect(drained && fsUnmounted).toBe(true);
    expect(ns.views.size).toBe(0);
    expect(existsSync(daemon.socketPath)).toBe(false);
    await expect(fetchStatus(daemon.socketPath)).rejects.toMatchObject({ code: 'NO_DAEMON' });
  });
});

describe('daemon signals', () => {
  it('refreshes on a real SIGHUP and stops cleanly on a real SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-daemon-sig-'));
    const team = await teamCatalog(dir);
    const file = path.join(dir, 'settings.yaml');
    writeFileSync(file, ds('reports', 'prod', team.id));
    const ns = new Namespace();
    const hupsBefore = process.listenerCount('SIGHUP');
    const daemon = await startDaemon({
      settingsFile: file,
      mountpoint: '/datasets',
      target: ns,
      catalog: team.catalog,
      socketPath: path.join(dir, 'daemon.sock'),
      notifier: { ready: async () => undefined, status: async () => undefined, stopping: async () => undefined },
      logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    });
    try {
      expect(ns.views.get('reports')).toBe(`${team.id}:${team.v1}`);
      await team.catalog.setTag(team.id, team.v2, 'prod');
      process.kill(process.pid, 'SIGHUP');
      const s = await until('reports on v2', () => daemon.status(), (s) => mount(s, 'reports')?.resolved === `${team.id}:${team.v2}`);
      expect(mount(s, 'reports')!.resolved).toBe(`${team.id}:${team.v2}`);
      process.kill(process.pid, 'SIGTERM');
      await daemon.stopped;
      expect(ns.views.size).toBe(0);
      expect(process.listenerCount('SIGHUP')).toBe(hupsBefore);
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('daemon refresh with a slow entry', () => {
  it('applies the other entries at once while one entry takes seconds to fail (#18 bug 7)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-daemon-slow-'));
    const team = await teamCatalog(dir);
    const file = path.join(dir, 'settings.yaml');
    writeFileSync(path.join(dir, 'bkt-key'), 'k\n');
    writeFileSync(file, ds('reports', 'prod', team.id) + bucket);
    // The bucket is unreachable: its probe fails only after the SDK's retries, seconds later.
    const SLOW_MS = 3000;
    const ns = new Namespace();
    const target: MountTarget<MountPayload<ResolvedVersion>> = {
      mount: async (name, m) => {
        if (m.payload.kind === 's3') {
          await new Promise((r) => setTimeout(r, SLOW_MS));
          throw new Error('cannot reach S3 endpoint http://127.0.0.1:9');
        }
        ns.mount(name, m);
      },
      swap: (name, m) => ns.swap(name, m),
      unmount: (name) => ns.unmount(name),
    };
    const daemon = await startDaemon({
      settingsFile: file,
      mountpoint: '/datasets',
      target,
      catalog: team.catalog,
      socketPath: path.join(dir, 'daemon.sock'),
      handleSignals: false,
      env: { GRADIENT_SECRETS_DIR: dir },
      notifier: { ready: async () => undefined, status: async () => undefined, stopping: async () => undefined },
      logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    });
    try {
      expect(mount(await daemon.status(), 'bkt')!.state).toBe('error');
      await team.catalog.setTag(team.id, team.v2, 'prod');
      const t0 = Date.now();
      const refreshed = daemon.refresh(); // what SIGHUP runs
      await until('reports on v2', () => daemon.status(), (s) => mount(s, 'reports')?.resolved === `${team.id}:${team.v2}`);
      expect(Date.now() - t0).toBeLessThan(SLOW_MS / 2);
      await refreshed;
      expect(mount(await daemon.status(), 'bkt')!.state).toBe('error');
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('status socket directory', () => {
  it('tightens a directory it owns that others could write, and refuses one owned by someone else', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gd-sockdir-'));
    try {
      const open = path.join(dir, 'open');
      mkdirSync(open, { mode: 0o777 });
      chmodSync(open, 0o777);
      const provider = { status: () => Promise.reject(new Error('unused')), refresh: async () => undefined };
      const a = new StatusServer({ socketPath: path.join(open, 'daemon.sock'), provider });
      await a.listen();
      expect(statSync(open).mode & 0o777).toBe(0o755);
      await a.close();
      if (process.getuid?.() !== 0) return; // giving a directory away needs root
      const foreign = path.join(dir, 'foreign');
      mkdirSync(foreign);
      chownSync(foreign, 12345, 12345);
      await expect(new StatusServer({ socketPath: path.join(foreign, 'daemon.sock'), provider }).listen()).rejects.toMatchObject({
        code: 'SOCKET_UNAVAILABLE',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
