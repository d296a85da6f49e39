// `gradient mount` without the filesystem: defaults, the injected foreground runner (here the real daemon with
// a recording namespace), --refresh against it over the real socket, and --wait with a real child process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { mountCommand } from '../../../src/cli/mount.js';
import type { MountOptions } from '../../../src/config/mount-options.js';
import { fetchStatus } from '../../../src/daemon/client.js';
import { startDaemon, type RunningDaemon } from '../../../src/daemon/daemon.js';
import { defaultCacheDir } from '../../../src/config/paths.js';
import { secretsDir, secretsDirs } from '../../../src/config/secrets.js';
import { defaultMountpoint, defaultSettingsPath } from '../../../src/daemon/defaults.js';
import { createLogger } from '../../../src/daemon/logger.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gd-mountcmd-'));
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) }),
      stderr: new Writable({ write: (c: Buffer, _e, cb) => (err.push(c.toString()), cb()) }),
      env,
    },
  };
}

describe('defaults', () => {
  it('look for settings.yaml where notebooks keep it, and mount where notebooks expect it', () => {
    expect(defaultSettingsPath({ GRADIENT_SETTINGS: '/x/s.yaml' }, () => true)).toBe('/x/s.yaml');
    expect(defaultSettingsPath({}, (p) => p === '/notebooks')).toBe('/notebooks/.gradient/settings.yaml');
    expect(defaultSettingsPath({ HOME: '/home/u' }, () => false)).toBe('/home/u/.gradient/settings.yaml');
    expect(defaultMountpoint({}, 0)).toBe('/datasets');
    expect(defaultMountpoint({ HOME: '/home/u' }, 1000)).toBe('/home/u/datasets');
    expect(defaultMountpoint({ GRADIENT_MOUNTPOINT: '/mnt/d' }, 1000)).toBe('/mnt/d');
  });

  it('keep the system paths for root and give any other user their own', () => {
    expect(defaultCacheDir({ HOME: '/root' }, 0)).toBe('/var/cache/gradient');
    expect(defaultCacheDir({ HOME: '/home/u' }, 1000)).toBe('/home/u/.cache/gradient');
    expect(defaultCacheDir({ HOME: '/home/u', XDG_CACHE_HOME: '/xdg/cache' }, 1000)).toBe('/xdg/cache/gradient');
    expect(secretsDirs({ HOME: '/root' }, 0)).toEqual(['/var/run/secrets/gradient']);
    // a user's own first (where `storageProviders create` saves), then the system's (a container's mounted secrets)
    expect(secretsDirs({ HOME: '/home/u' }, 1000)).toEqual(['/home/u/.config/gradient/secrets', '/var/run/secrets/gradient']);
    expect(secretsDir({ HOME: '/home/u' }, 1000)).toBe('/home/u/.config/gradient/secrets');
    expect(secretsDirs({ HOME: '/home/u', GRADIENT_SECRETS_DIR: '/s' }, 1000)).toEqual(['/s']);
  });
});

describe('gradient mount', () => {
  it('runs the injected daemon in the foreground until it stops; --refresh talks to it', async () => {
    const socket = path.join(dir, 'fg.sock');
    const settings = path.join(dir, 'fg-settings.yaml'); // absent: public datasets only
    let seen: MountOptions | undefined;
    let daemon: RunningDaemon | undefined;
    const { io: fgIo } = io({ GRADIENT_SETTINGS: settings, GRADIENT_MOUNTPOINT: '/mnt/fg' });
    const running = mountCommand(fgIo, {
      run: async (opts) => {
        seen = opts;
        daemon = await startDaemon({
          settingsFile: opts.settings,
          mountpoint: opts.mountpoint,
          socketPath: opts.socket,
          target: { mount: () => undefined, swap: () => undefined, unmount: () => undefined },
          catalog: { resolve: () => Promise.reject(new Error('no team datasets here')) },
          handleSignals: false,
          notifier: { ready: async () => undefined, status: async () => undefined, stopping: async () => undefined },
          logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
        });
        return daemon;
      },
    }).parseAsync(['--socket', socket, '--metrics-port', '0'], { from: 'user' });
    const deadline = Date.now() + 5000;
    while (!(await fetchStatus(socket).then((s) => s.ready).catch(() => false)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual({ settings, mountpoint: '/mnt/fg', socket, metricsPort: 0 });

    const r = io();
    await mountCommand(r.io).parseAsync(['--refresh', '--socket', socket], { from: 'user' });
    expect(r.out.join('')).toMatch(/^mnist +public +public:mnist +embedded:mnist@[0-9a-f]+ +ok$/m);
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;

    await daemon!.stop();
    await running; // the command returns once the daemon has stopped
  });

  it('--refresh without a daemon says so and exits 6', async () => {
    const r = io();
    await mountCommand(r.io).parseAsync(['--refresh', '--socket', path.join(dir, 'none.sock')], { from: 'user' });
    expect(r.err.join('')).toMatch(/no daemon is running on/);
    expect(process.exitCode).toBe(6);
    process.exitCode = undefined;
  });

  it('--wait starts the daemon in the background with the resolved options and returns when ready', async () => {
    // Stands in for `gradient mount` in the child: records its argv, then serves a ready status.
    const script = path.join(dir, 'child.mjs');
    writeFileSync(
      script,
      `import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
const argv = process.argv.slice(2);
writeFileSync(${JSON.stringify(path.join(dir, 'argv.json'))}, JSON.stringify(argv));
const socket = argv[argv.indexOf('--socket') + 1];
createServer((_q, res) => res.end(JSON.stringify({ ready: true, phase: 'ready', mounts: [{ state: 'ok' }], mountpoint: '/mnt/w', settings: { state: 'ok' } }))).listen(socket);
process.on('SIGTERM', () => process.exit(0));
`,
    );
    const socket = path.join(dir, 'w.sock');
    const r = io({ GRADIENT_SETTINGS: '/s.yaml', GRADIENT_MOUNTPOINT: '/mnt/w' });
    await mountCommand(r.io, { selfCommand: () => [process.execPath, script] }).parseAsync(
      ['--wait', '--socket', socket, '--timeout', '10', '--log-file', path.join(dir, 'w.log')],
      { from: 'user' },
    );
    const msg = r.err.join('');
    expect(msg).toMatch(/gradient-datasets started \(pid \d+\): ready, 1 entry on \/mnt\/w/);
    pids.push(Number(/pid (\d+)/.exec(msg)![1]));
    expect(process.exitCode).toBe(0);
    process.exitCode = undefined;
    const { readFileSync } = await import('node:fs');
    expect(JSON.parse(readFileSync(path.join(dir, 'argv.json'), 'utf8'))).toEqual([
      'mount', '--settings', '/s.yaml', '--mountpoint', '/mnt/w', '--socket', socket,
    ]);
  });
});
