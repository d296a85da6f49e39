// `gradient cache stats|prune|clear` in-process on a real cache directory filled from the local store,
// with the `cache:` section of a real config file; prune/clear refuse while another owner holds the cache.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCache } from '../../../src/cache/index.js';
import { LocalStore } from '../../../src/storage/local-store.js';
import { sha256, tempDir } from './env.js';
import { Capture, runCli } from '../../helpers/cli.js';


describe('gradient cache', () => {
  let home: ReturnType<typeof tempDir>;
  let cacheDir = '';
  let configFile = '';

  async function gradient(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    // No daemon answers on this socket: the commands work on the directory themselves.
    return runCli(['--config', configFile, ...args], { HOME: home.path, GRADIENT_DAEMON_SOCKET: path.join(home.path, 'no-daemon.sock') });
  }

  beforeAll(async () => {
    home = tempDir('cache-cli');
    cacheDir = path.join(home.path, 'cache');
    configFile = path.join(home.path, 'config.yaml');
    writeFileSync(configFile, `cache:\n  dir: ${cacheDir}\n  maxSize: 64MiB\n  minFreeSpace: 0\n`);
    const store = new LocalStore(path.join(home.path, 'store'));
    const cache = await openCache({ dir: cacheDir, maxBytes: '64MiB', minFreeBytes: 0 });
    try {
      for (let i = 0; i < 4; i++) {
        const data = randomBytes(300_000);
        await store.write(`b/${i}`, data);
        const h = await cache.open({ kind: 'content', sha256: sha256(data) }, { store, key: `b/${i}`, size: data.length });
        await h.read(0, 1000);
        await h.read(0, 1000);
        h.close();
      }
    } finally {
      await cache.close();
    }
  });
  afterAll(() => home?.remove());

  it('stats reads the directory named in the config file, as a table or JSON', async () => {
    const human = await gradient('cache', 'stats');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(cacheDir);
    expect(human.stdout).toMatch(/4 \(4 complete\)/);
    expect(human.stdout).toMatch(/of 64 MiB/);
    const r = await gradient('--json', 'cache', 'stats');
    const s = JSON.parse(r.stdout) as Record<string, number>;
    expect(s.entries).toBe(4);
    expect(s.maxBytes).toBe(64 * 1024 * 1024);
    expect(s.hits).toBe(8);
    expect(s.misses).toBe(0); // small files were fetched whole at open: every read was a hit
    expect(s.bytesFetched).toBe(4 * 300_000);
    expect(s.hitRatio).toBe(1);
  });

  it('prune and clear refuse while another process owns the cache, then work', async () => {
    const owner = await openCache({ dir: cacheDir, maxBytes: '64MiB', minFreeBytes: 0 });
    try {
      const busy = await gradient('cache', 'clear');
      expect(busy.code).toBe(4);
      expect(busy.stderr).toMatch(/in use by process/);
      expect((await gradient('cache', 'stats')).code).toBe(0); // stats only reads
    } finally {
      await owner.close();
    }
    const bad = await gradient('cache', 'prune', '--to', 'lots');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid size "lots"/);
    const pruned = JSON.parse((await gradient('--json', 'cache', 'prune', '--to', '2.5MiB')).stdout) as Record<string, number>;
    expect(pruned.evicted).toBeGreaterThanOrEqual(1);
    expect(pruned.usedBytes).toBeLessThanOrEqual(2.5 * 1024 * 1024);
    const cleared = await gradient('cache', 'clear');
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout).toMatch(/^Cleared \d+ entr(y|ies) /);
    expect(JSON.parse((await gradient('--json', 'cache', 'stats')).stdout)).toMatchObject({ entries: 0 });
  });

  it('prune says why it cannot reach a target below what the index and directories take, exit 4 (#18 bug 5)', async () => {
    const cache = await openCache({ dir: cacheDir, maxBytes: '64MiB', minFreeBytes: 0 });
    const store = new LocalStore(path.join(home.path, 'store'));
    try {
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(500_000);
        await store.write(`p/${i}`, data);
        (await cache.open({ kind: 'content', sha256: sha256(data) }, { store, key: `p/${i}`, size: data.length })).close();
      }
    } finally {
      await cache.close();
    }
    const r = await gradient('cache', 'prune', '--to', '1M');
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/cannot prune the cache to 1 MiB: .*the index and directories alone take [\d.]+ MiB/);
    const j = await gradient('--json', 'cache', 'prune', '--to', '1M');
    expect(j.code).toBe(4);
    const report = JSON.parse(j.stdout) as Record<string, number | boolean>;
    expect(report).toMatchObject({ reached: false, targetBytes: 1 << 20, inUseEntries: 0 });
    expect(report.usedBytes).toBeLessThanOrEqual(report.beforeBytes as number);
    expect(report.usedBytes).toBe(report.overheadBytes); // everything evictable went
    expect(JSON.parse((await gradient('--json', 'cache', 'stats')).stdout)).toMatchObject({ entries: 0 });
  });

  it('rejects a bad cache section in the config file', async () => {
    writeFileSync(configFile, 'cache:\n  maxSize: huge\n');
    const r = await gradient('cache', 'stats');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cache.maxSize/);
  });
});

describe('gradient mount cache flags', () => {
  it('--cache-size and --cache-dir reach the runner parsed, and override the config file section', async () => {
    const { mountCommand } = await import('../../../src/cli/mount.js');
    const { cacheOptionsFrom, resolveCacheOptions } = await import('../../../src/cache/index.js');
    let seen: { cacheDir?: string; cacheBytes?: number } | undefined;
    const err = new Capture();
    const cmd = mountCommand(
      { stdout: new Capture(), stderr: err, env: {} },
      {
        run: async (opts) => {
          seen = opts;
          return { stopped: Promise.resolve() } as never;
        },
      },
    );
    await cmd.parseAsync(['--cache-size', '512MiB', '--cache-dir', '/srv/cache', '--socket', '/tmp/none.sock'], { from: 'user' });
    expect(seen).toMatchObject({ cacheDir: '/srv/cache', cacheBytes: 512 * 1024 * 1024 });
    const o = resolveCacheOptions(
      cacheOptionsFrom({ dir: '/var/c', maxSize: '10G', minFreeSpace: '1G' }, { cacheDir: seen!.cacheDir, cacheSize: seen!.cacheBytes }),
    );
    expect(o).toMatchObject({ dir: '/srv/cache', maxBytes: 512 * 1024 * 1024, minFreeBytes: 2 ** 30 });
    const bad = mountCommand({ stdout: new Capture(), stderr: err, env: {} }).exitOverride().configureOutput({ writeErr: () => undefined });
    await expect(bad.parseAsync(['--cache-size', 'big'], { from: 'user' })).rejects.toThrow(/invalid size "big"/);
  });
});
