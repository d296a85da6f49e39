// `gradient mount` as an unprivileged user (a notebook container often runs as one), with every default: the
// cache under ~/.cache/gradient, the mount at ~/datasets through the setuid fusermount3, the status socket
// under /tmp/gradient-<uid>. It reads /datasets' mnist as that user.
//
// What it changes on the machine, only while it runs (afterAll puts everything back, also after a failure):
//  - the user `gd-unpriv` (and its group), created with useradd if absent and then removed with userdel;
//  - /dev/fuse: group set to that user's group with mode 0660 (fusermount3 opens it as the user), then its
//    owner, group and mode restored as they were;
//  - a home directory under /tmp, the socket directory /tmp/gradient-<uid> and tsx's /tmp/tsx-<uid>, removed.
// The project tree must be readable by that user: it is checked (world-readable files), not changed.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEmbeddedMnist } from '../../../src/catalog/embedded-mnist.js';
import type { DaemonStatus } from '../../../src/daemon/status.js';
import { mountCount } from '../../helpers/daemon-process.js';
import { forceUnmount } from '../../helpers/fuse-mount.js';
import { until } from '../../helpers/until.js';

const root = path.resolve(import.meta.dirname, '../../..');
const USER = 'gd-unpriv';
const FUSE = '/dev/fuse';

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

describe.skipIf(process.getuid?.() !== 0)('gradient mount as an unprivileged user', () => {
  let createdUser = false;
  let uid = -1;
  let gid = -1;
  let home = '';
  let fuseBefore: { uid: number; gid: number; mode: number } | undefined;
  let daemonPid: number | undefined;

  /** Runs a command as the user, with only HOME and PATH from the environment: every default applies. */
  const asUser = (cmd: string, args: string[], timeoutMs = 60_000): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { cwd: root, uid, gid, env: { HOME: home, PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out), stderr: err });
      });
    });
  const gradient = (...args: string[]) => asUser(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args]);
  const mnt = () => path.join(home, 'datasets');

  beforeAll(() => {
    try {
      execFileSync('id', ['-u', USER], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', USER]);
      createdUser = true;
    }
    uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
    gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }));
    home = mkdtempSync(path.join(tmpdir(), 'gd-unpriv-home-'));
    chownSync(home, uid, gid);
    chmodSync(home, 0o700);
  });

  afterAll(async () => {
    if (daemonPid !== undefined) {
      try {
        process.kill(daemonPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (home) await forceUnmount(mnt());
    if (fuseBefore) {
      chownSync(FUSE, fuseBefore.uid, fuseBefore.gid);
      chmodSync(FUSE, fuseBefore.mode);
    }
    if (home) rmSync(home, { recursive: true, force: true });
    if (uid >= 0) {
      rmSync(path.join(tmpdir(), `gradient-${uid}`), { recursive: true, force: true });
      rmSync(path.join(tmpdir(), `tsx-${uid}`), { recursive: true, force: true });
    }
    if (createdUser) execFileSync('userdel', [USER]);
  });

  it('can read the project tree', async () => {
    const r = await asUser('test', ['-r', path.join(root, 'src/cli/main.ts'), '-a', '-r', path.join(root, 'native/build/Release/gradient_fuse.node')]);
    expect(r.code, `${USER} cannot read ${root}: make the tree readable (or run from a copy)`).toBe(0);
  });

  it('says what fusermount3 said, and the usual causes, when it cannot mount', async () => {
    // A mountpoint the user does not own, and (unless /dev/fuse is 0666 here) no access to /dev/fuse yet:
    // fusermount3 refuses either way, in its own words.
    const foreign = path.join(home, 'root-owned');
    mkdirSync(foreign);
    const r = await gradient('mount', '--mountpoint', foreign);
    rmSync(foreign, { recursive: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/fusermount3 failed to mount \S+ \(exit 1\): fusermount3: \S.*/);
    expect(r.stderr).toContain('usual causes: no read-write access to /dev/fuse');
    expect(r.stderr).toContain('user_allow_other');
    // The defaults it got that far with are the user's own: the socket's directory (the supervisor keeps its
    // session state there) was made for that user; the cache, opened after the mount, was not touched.
    expect(statSync(path.join(tmpdir(), `gradient-${uid}`)).uid).toBe(uid);
    expect(mountCount(mnt())).toBe(0);
  });

  it('mounts with the user\'s defaults through fusermount3 and serves mnist to that user', async () => {
    const st = statSync(FUSE);
    fuseBefore = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
    chownSync(FUSE, st.uid, gid);
    chmodSync(FUSE, 0o660);

    const started = await gradient('mount', '--wait', '--timeout', '60', '--log-file', path.join(home, 'daemon.log'));
    expect(started.code, `${started.stderr}\n${readLog(home)}`).toBe(0);
    daemonPid = Number(/started \(pid (\d+)\)/.exec(started.stderr)![1]);
    expect(started.stderr).toContain(`ready, 1 entry on ${mnt()}`);

    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt())!;
    expect(line).toMatch(/ - fuse\.gradient gradient .*user_id=\d+/);
    expect(line).toContain(`user_id=${uid}`);

    const mnist = await buildEmbeddedMnist();
    for (const f of mnist.files) {
      const r = await asUser('cat', [path.join(mnt(), 'mnist', f.path)]);
      expect(r.code, r.stderr).toBe(0);
      expect(createHash('sha256').update(r.stdout).digest('hex'), f.path).toBe(f.sha256);
    }

    const status = JSON.parse((await gradient('--json', 'status')).stdout.toString()) as DaemonStatus;
    expect(status).toMatchObject({ ready: true, mountpoint: mnt(), cache: { dir: path.join(home, '.cache', 'gradient') } });
    expect(statSync(path.join(home, '.cache', 'gradient')).uid).toBe(uid);
    expect(existsSync(path.join(tmpdir(), `gradient-${uid}`, 'daemon.sock'))).toBe(true);

    process.kill(daemonPid, 'SIGTERM');
    await until('the daemon to stop and unmount', async () => mountCount(mnt()), (n) => n === 0);
    await until('the daemon to exit', async () => isAlive(daemonPid!), (alive) => !alive);
    daemonPid = undefined;
  });
});

function readLog(home: string): string {
  try {
    return readFileSync(path.join(home, 'daemon.log'), 'utf8').slice(-3000);
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
