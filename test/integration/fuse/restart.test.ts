// A daemon killed with SIGKILL leaves a dead mount ("Transport endpoint is not connected");
// the next daemon on the same mountpoint must clean it up and serve again.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forceUnmount, sh, shStatus, tempDir } from '../../helpers/fuse-mount.js';

const root = path.resolve(import.meta.dirname, '../../..');

function startServer(mountpoint: string, spec: object): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/memfs-server.ts', mountpoint, JSON.stringify(spec)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
  });
}

describe('daemon killed and restarted', () => {
  const tmp = tempDir('gd-restart-');
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await forceUnmount(tmp.dir);
    tmp.remove();
  });

  it('recovers the mountpoint after SIGKILL', async () => {
    const first = await startServer(tmp.dir, { files: { 'a.txt': 'first' } });
    children.push(first);
    expect(await sh(`cat ${tmp.dir}/a.txt`)).toBe('first');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const dead = await shStatus(`ls ${tmp.dir}`);
    expect(dead.stderr).toMatch(/Transport endpoint is not connected/);

    const second = await startServer(tmp.dir, { files: { 'a.txt': 'second' } });
    children.push(second);
    expect(await sh(`cat ${tmp.dir}/a.txt`)).toBe('second');
    expect((await sh(`grep -c ' ${tmp.dir} ' /proc/self/mountinfo`)).trim()).toBe('1');

    second.kill('SIGTERM'); // clean unmount on SIGTERM
    await new Promise((r) => second.once('exit', r));
    expect((await shStatus(`grep -c ' ${tmp.dir} ' /proc/self/mountinfo`)).stdout.trim()).toBe('0');
  });

  it('recovers the mountpoint right after SIGKILL, while the kernel still holds the root attributes', async () => {
    // A stat of the dead mount's root is answered from the attribute cache (here for an hour): the restart
    // must not take that for a live daemon.
    const first = await startServer(tmp.dir, { files: { 'a.txt': 'first' }, ttl: 3600 });
    children.push(first);
    expect(await sh(`cat ${tmp.dir}/a.txt && stat ${tmp.dir} > /dev/null`)).toBe('first');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect((await shStatus(`stat ${tmp.dir}`)).code).toBe(0); // from the attribute cache: looks alive
    expect((await shStatus(`ls ${tmp.dir}`)).stderr).toMatch(/Transport endpoint is not connected/);

    const second = await startServer(tmp.dir, { files: { 'a.txt': 'second' } });
    children.push(second);
    expect(await sh(`cat ${tmp.dir}/a.txt`)).toBe('second');
    expect((await sh(`grep -c ' ${tmp.dir} ' /proc/self/mountinfo`)).trim()).toBe('1');
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
  });
});
