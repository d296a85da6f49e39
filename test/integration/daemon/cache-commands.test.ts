// `gradient cache stats|prune` while a real daemon owns the cache: the numbers are the running daemon's (its
// --cache-size, not the config file's), and prune goes through the daemon's socket, which says what it could
// not evict and who holds it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { daemonHome } from '../../helpers/daemon-process.js';
import { until } from '../../helpers/until.js';
import { writeTree } from '../../helpers/tree.js';

const MiB = 1 << 20;

describe('gradient cache with a running daemon', () => {
  const { work, home, mnt, settings, env, daemon } = daemonHome('gd-cache-daemon-', { config: 'config.yaml' });
  const config = path.join(home, 'config.yaml');
  const files: Record<string, Buffer> = { 'a.bin': randomBytes(512 * 1024), 'b.bin': randomBytes(512 * 1024), 'c.bin': randomBytes(512 * 1024) };
  let holder: ChildProcess | undefined;

  // The daemon's socket is where `gradient` looks by default ($GRADIENT_DAEMON_SOCKET).
  const gradient = (...args: string[]) => runCli(['--config', config, ...args], { ...env, GRADIENT_DAEMON_SOCKET: daemon.opts.socket });

  beforeAll(async () => {
    work.create();
    // The file says 200 MiB; the daemon runs with --cache-size 4M, which is what is in force.
    writeFileSync(config, `cache:\n  maxSize: 200MiB\n  minFreeSpace: 0\n`);
    const created = await runCli(['--config', config, '--json', 'datasets', 'create', '--name', 'cached'], env);
    const ds = (JSON.parse(created.stdout) as { id: string }).id;
    const v = (JSON.parse((await runCli(['--config', config, '--json', 'datasets', 'versions', 'create', '--id', ds], env)).stdout) as { ref: string }).ref;
    const src = await writeTree(path.join(home, 'src'), files);
    expect((await runCli(['--config', config, 'datasets', 'files', 'put', '--id', v, '--source-path', src], env)).code).toBe(0);
    expect((await runCli(['--config', config, 'datasets', 'versions', 'commit', '--id', v], env)).code).toBe(0);
    writeFileSync(settings, `data:\n  type: dataset\n  id: ${ds}\n  version: latest\n`);
    daemon.opts.cacheSize = '4M';
    await daemon.start();
    for (const [name, bytes] of Object.entries(files)) expect(readFileSync(path.join(mnt, 'data', name)).equals(bytes)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    holder?.kill('SIGKILL');
    await daemon.cleanup();
    work.remove();
  });

  it('stats shows the running daemon\'s bound, not the config file\'s (#18 bug 4)', async () => {
    const r = await gradient('cache', 'stats');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(daemon.opts.cacheDir);
    expect(r.stdout).toMatch(/of 4 MiB/);
    expect(r.stdout).not.toMatch(/200 MiB/);
    // The index shows the daemon's entries once its group commit has recorded them (within ~100 ms).
    // Three files and the version's manifest (kept through the cache for offline use).
    const j = await until(
      'four entries in the index',
      async () => JSON.parse((await gradient('--json', 'cache', 'stats')).stdout) as Record<string, unknown>,
      (v) => v.entries === 4,
    );
    expect(j).toMatchObject({ dir: daemon.opts.cacheDir, maxBytes: 4 * MiB, source: 'daemon', ownerPid: await daemon.serverPid() }); // the serving process holds the cache
  });

  it('prune goes through the daemon and says which entries it could not evict and who holds them (#18 bug 5)', async () => {
    // A reader keeps a.bin open: its cache entry is pinned.
    holder = spawn('python3', ['-c', 'import sys,time; f=open(sys.argv[1],"rb"); f.read(1); print("open", flush=True); time.sleep(120)', path.join(mnt, 'data', 'a.bin')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => holder!.stdout!.once('data', () => resolve()));
    const r = await gradient('cache', 'prune', '--to', '0');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`cannot prune the cache to 0 B: 1 entry \\(512 KiB\\) is open in the daemon \\(pid ${await daemon.serverPid()}\\)`));
    const j = await gradient('--json', 'cache', 'prune', '--to', '0');
    expect(JSON.parse(j.stdout)).toMatchObject({ reached: false, inUseEntries: 1, inUseBytes: 512 * 1024, evicted: 0 });
    const stats = JSON.parse((await gradient('--json', 'cache', 'stats')).stdout) as { entries: number };
    expect(stats.entries).toBe(1);

    holder.kill('SIGKILL');
    holder = undefined;
    // The kernel releases the file when the reader is gone; then the entry can go, and only the index and
    // directories are left (0 is never reached: exit 4 still, for that reason alone).
    const last = await until(
      'the released entry to be evicted',
      async () => JSON.parse((await gradient('--json', 'cache', 'prune', '--to', '0')).stdout) as Record<string, number>,
      (rep) => rep.inUseEntries === 0,
    );
    expect(last.usedBytes).toBe(last.overheadBytes);
    const ok = await gradient('cache', 'prune', '--to', '3M');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^Pruned 0 entries \(0 B\); the cache uses [\d.]+ MiB of the 3 MiB asked for\.\n$/);
    expect(daemon.running).toBe(true);
  });
});
