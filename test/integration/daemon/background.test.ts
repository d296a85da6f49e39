// `gradient mount --wait` semantics with real child processes and a real status socket. The child is a
// small script that speaks the status protocol (the real daemon needs the FUSE mount, which lands separately).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startInBackground } from '../../../src/daemon/background.js';
import { fetchStatus } from '../../../src/daemon/client.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gd-bg-'));
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

// Becomes ready after `delay` ms; exits on SIGTERM, removing its socket.
const FAKE_DAEMON = `
import { createServer } from 'node:http';
import { unlinkSync } from 'node:fs';
const [socket, delay] = process.argv.slice(2);
let ready = false;
setTimeout(() => { ready = true; }, Number(delay));
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ version: 1, pid: process.pid, phase: ready ? 'ready' : 'starting', ready, mounts: [], fatalError: null }));
});
server.listen(socket, () => console.log('listening'));
process.on('SIGTERM', () => { server.close(); try { unlinkSync(socket); } catch {} process.exit(0); });
`;
const script = path.join(dir, 'fake-daemon.mjs');
writeFileSync(script, FAKE_DAEMON);

describe('startInBackground', () => {
  it('starts the daemon detached and returns once it reports ready', async () => {
    const socketPath = path.join(dir, 'a.sock');
    const logFile = path.join(dir, 'logs', 'a.log');
    const t0 = Date.now();
    const r = await startInBackground({ command: [process.execPath, script, socketPath, '300'], socketPath, timeoutMs: 5000, logFile });
    pids.push(r.pid!);
    expect(r.status.ready).toBe(true);
    expect(r.pid).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(readFileSync(logFile, 'utf8')).toContain('listening');

    // A second --wait finds the running daemon and starts nothing.
    const again = await startInBackground({ command: ['/bin/false'], socketPath, timeoutMs: 2000 });
    expect(again.pid).toBeUndefined();
    expect(again.status.pid).toBe(r.pid);
  });

  it('fails fast with the exit status when the daemon dies before it is ready', async () => {
    const socketPath = path.join(dir, 'b.sock');
    const t0 = Date.now();
    await expect(
      startInBackground({ command: [process.execPath, '-e', 'process.exit(2)'], socketPath, timeoutMs: 10_000, logFile: path.join(dir, 'b.log') }),
    ).rejects.toThrow(/the daemon exited with code 2 before it was ready; see .*b\.log/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('gives up at the deadline and stops the half-started daemon', async () => {
    const socketPath = path.join(dir, 'c.sock');
    await expect(
      startInBackground({ command: [process.execPath, script, socketPath, '60000'], socketPath, timeoutMs: 600 }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    const deadline = Date.now() + 3000;
    while (existsSync(socketPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(socketPath)).toBe(false);
    await expect(fetchStatus(socketPath)).rejects.toMatchObject({ code: 'NO_DAEMON' });
  });
});
