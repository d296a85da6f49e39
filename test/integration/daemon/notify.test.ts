// The real systemd-notify binary sending to a real AF_UNIX datagram socket (the role PID 1 plays), received
// by a tiny python3 listener since Node cannot open datagram Unix sockets.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../../src/daemon/notify.js';

const haveTools =
  spawnSync('systemd-notify', ['--version']).status === 0 && spawnSync('python3', ['-c', 'import socket']).status === 0;

// Receives datagrams and prints each one on a line; closing any passed fds completes systemd-notify's barrier.
const LISTENER = `
import socket, sys, os, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i"); fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            for fd in fds: os.close(fd)
    text = msg.decode()
    if text != "BARRIER=1":
        print(text.replace("\\n", "|"), flush=True)
`;

describe.skipIf(!haveTools)('SystemdNotifier', () => {
  let dir: string;
  let sock: string;
  let listener: ChildProcess;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gd-notify-'));
    sock = path.join(dir, 'notify.sock');
    listener = spawn('python3', ['-c', LISTENER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    listener.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const deadline = Date.now() + 5000;
    while (!lines.includes('listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(sock)).toBe(true);
  });

  afterAll(() => {
    listener?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends READY=1, STATUS= and STOPPING=1 in order to $NOTIFY_SOCKET', async () => {
    const errors: Error[] = [];
    const n = new SystemdNotifier({ env: { ...process.env, NOTIFY_SOCKET: sock }, onError: (e) => errors.push(e) });
    expect(n.active).toBe(true);
    await n.ready('3 entries on /datasets');
    await n.status('line one\nline two');
    await n.stopping();
    const deadline = Date.now() + 5000;
    while (lines.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(errors).toEqual([]);
    expect(lines.slice(1)).toEqual(['READY=1|STATUS=3 entries on /datasets', 'STATUS=line one; line two', 'STOPPING=1']);
  });

  it('is a no-op without NOTIFY_SOCKET, and reports a missing binary once', async () => {
    const off = new SystemdNotifier({ env: {} });
    expect(off.active).toBe(false);
    await off.ready();
    const errors: Error[] = [];
    const broken = new SystemdNotifier({ env: { NOTIFY_SOCKET: sock }, binary: path.join(dir, 'no-such-binary'), onError: (e) => errors.push(e) });
    await broken.ready();
    await broken.status('x');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/systemd notification failed/);
  });
});
