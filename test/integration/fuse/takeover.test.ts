// The engine's session takeover, without the daemon: this test process mounts and keeps /dev/fuse (as the
// supervisor does) and hands it to a server process; files are opened through every path (C reads of a bound
// file, JS reads, the C write path), the server is killed with -9 while they are open, and a new server takes
// the session over (saved INIT, handles opened again, FUSE_NOTIFY_RESEND). The files opened before the kill
// then read and write right. Also under AddressSanitizer + UBSan, since adopting a session is C.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeFuse } from '../../../src/fuse/native.js';
import { forceUnmount, sh, tempDir } from '../../helpers/fuse-mount.js';

const root = path.resolve(import.meta.dirname, '../../..');

for (const asan of [false, true]) {
  describe(`session takeover${asan ? ' under AddressSanitizer' : ''}`, () => {
    const mnt = tempDir('gd-takeover-mnt-');
    const data = tempDir('gd-takeover-data-');
    const servers: ChildProcess[] = [];
    let fd = -1;
    afterAll(async () => {
      for (const s of servers) s.kill('SIGKILL');
      await forceUnmount(mnt.dir);
      if (fd >= 0) closeSync(fd);
      mnt.remove();
      data.remove();
    });

    it('files opened before a kill -9 of the server read and write right through the next one', async () => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      if (asan) {
        const addon = execFileSync('bash', ['scripts/build-native-asan.sh'], { cwd: root, encoding: 'utf8' }).trim();
        env.LD_PRELOAD = execFileSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
        env.ASAN_OPTIONS = 'detect_leaks=0:abort_on_error=0';
        env.GRADIENT_NATIVE_ADDON = path.join(root, addon);
      }
      await sh(`head -c 20000000 /dev/urandom > ${data.dir}/backing.bin; head -c 3000000 /dev/urandom > ${data.dir}/src.bin; : > ${data.dir}/local.bin`);
      const spec = {
        files: { 'mem.txt': 'in memory\n'.repeat(1000) },
        backed: { 'big.bin': `${data.dir}/backing.bin` },
        local: { 'local.bin': `${data.dir}/local.bin` },
        passthrough: false,
      };
      fd = nativeFuse().mount(mnt.dir, { fsname: 'gd-takeover', subtype: 'gd-takeover', allowOther: false, defaultPermissions: true, readOnly: false }).fd;
      const stateDir = mkdtempSync(path.join(tmpdir(), 'gd-takeover-state-'));
      let stderr = '';
      const serve = async (): Promise<ChildProcess> => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/memfs-server.ts', mnt.dir, JSON.stringify(spec)], {
          cwd: root,
          env: { ...env, GRADIENT_SESSION_FD: '3', GRADIENT_SESSION_DIR: stateDir },
          stdio: ['ignore', 'pipe', 'pipe', fd],
        });
        servers.push(child);
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        await new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
          child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        });
        return child;
      };
      const first = await serve();
      const m = mnt.dir;
      // One process holds three files open across the restart: it reads half of each (and writes half of
      // local.bin), waits for a line on stdin, then does the rest and prints the hashes.
      const holder = spawn(
        'python3',
        [
          '-c',
          `import sys, hashlib
paths = sys.argv[1:3]
fs = [open(p, 'rb', buffering=0) for p in paths]
hs = [hashlib.sha256() for _ in paths]
src = open(sys.argv[4], 'rb').read()
w = open(sys.argv[3], 'r+b', buffering=0)
w.write(src[:len(src)//2])
for f, h in zip(fs, hs):
    h.update(f.read(4096 * 100))
print('half', flush=True)
sys.stdin.readline()
for f, h in zip(fs, hs):
    while True:
        b = f.read(1 << 20)
        if not b: break
        h.update(b)
w.write(src[len(src)//2:])
w.close()
print(' '.join(h.hexdigest() for h in hs), flush=True)`,
          `${m}/big.bin`,
          `${m}/mem.txt`,
          `${m}/local.bin`,
          `${data.dir}/src.bin`,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let out = '';
      holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
      holder.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const finished = new Promise<number | null>((r) => holder.once('exit', r));
      while (!out.includes('half')) await new Promise((r) => setTimeout(r, 20));

      const killed = new Promise((r) => first.once('exit', r));
      first.kill('SIGKILL');
      await killed;
      const second = await serve();
      expect(stderr).not.toMatch(/cannot adopt|RESEND refused/);
      holder.stdin.end('go\n');
      expect(await finished, out).toBe(0);
      const [bigHash, memHash] = out.trim().split('\n').at(-1)!.split(' ');
      expect(`${bigHash}  -\n`).toBe(await sh(`sha256sum < ${data.dir}/backing.bin`));
      expect(`${memHash}  -\n`).toBe(await sh(`sha256sum < ${m}/mem.txt`));
      expect(await sh(`sha256sum < ${data.dir}/local.bin`)).toBe(await sh(`sha256sum < ${data.dir}/src.bin`));
      // New opens, listings and lookups are served by the new process too.
      expect(await sh(`ls ${m} | sort`)).toBe('big.bin\nlocal.bin\nmem.txt\n');
      expect(await sh(`sha256sum < ${m}/big.bin`)).toBe(await sh(`sha256sum < ${data.dir}/backing.bin`));

      const code = new Promise<number | null>((r) => second.once('exit', r));
      second.kill('SIGTERM');
      expect(await code).toBe(0);
      expect(stderr).not.toMatch(/AddressSanitizer|runtime error:/);
      rmSync(stateDir, { recursive: true, force: true });
    }, 180_000);
  });
}
