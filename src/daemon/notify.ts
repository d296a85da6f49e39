// systemd readiness (Type=notify): READY=1 once mounts are up, STATUS= lines, STOPPING=1 on shutdown.
//
// Why the systemd-notify binary: sd_notify is one datagram to the AF_UNIX socket in $NOTIFY_SOCKET, and Node
// has no Unix datagram sockets (dgram is UDP only). The alternatives were a new native function in the C core
// (owned by the FUSE engine, for a once-per-lifetime message) or an npm addon (a second native build). The
// binary is on every systemd host, and it is sound: as its man page (systemd 252, Debian 12) describes, it sends with the *invoking* process's
// PID when privileged (so even NotifyAccess=main works as root) and otherwise waits for PID 1 to process the
// message (a barrier) before exiting, so the message is not lost to the "sender already gone" race. The unit
// sets NotifyAccess=all for the unprivileged case. Messages are sent in order, one child at a time.
import { execFile } from 'node:child_process';

export interface Notifier {
  ready(status?: string): Promise<void>;
  status(text: string): Promise<void>;
  stopping(status?: string): Promise<void>;
}

export interface SystemdNotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of the systemd-notify binary; default found on PATH. */
  binary?: string;
  onError?: (err: Error) => void;
}

export class SystemdNotifier implements Notifier {
  private queue: Promise<void> = Promise.resolve();
  private readonly enabled: boolean;
  private readonly binary: string;
  private readonly env: NodeJS.ProcessEnv;
  private warned = false;

  constructor(private readonly opts: SystemdNotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.enabled = Boolean(this.env.NOTIFY_SOCKET);
    this.binary = opts.binary ?? 'systemd-notify';
  }

  /** True when started by systemd with Type=notify (NOTIFY_SOCKET set). */
  get active(): boolean {
    return this.enabled;
  }

  ready(status?: string): Promise<void> {
    return this.send(['READY=1', ...(status ? [`STATUS=${oneLine(status)}`] : [])]);
  }

  status(text: string): Promise<void> {
    return this.send([`STATUS=${oneLine(text)}`]);
  }

  stopping(status?: string): Promise<void> {
    return this.send(['STOPPING=1', ...(status ? [`STATUS=${oneLine(status)}`] : [])]);
  }

  private send(assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.queue = this.queue.then(
      () =>
        new Promise<void>((resolve) => {
          execFile(this.binary, assignments, { env: this.env, timeout: 10_000 }, (err) => {
            if (err && !this.warned) {
              this.warned = true; // once: a host without systemd-notify would otherwise log on every update
              this.opts.onError?.(new Error(`systemd notification failed (${this.binary}): ${err.message.split('\n')[0]}`));
            }
            resolve();
          });
        }),
    );
    return this.queue;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').slice(0, 400);
}
