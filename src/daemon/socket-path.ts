// Where the daemon's status socket lives. Documented defaults, in order:
//   $GRADIENT_DAEMON_SOCKET                        explicit
//   /run/gradient/daemon.sock                      when running as root (system service, container sidecar)
//   $XDG_RUNTIME_DIR/gradient/daemon.sock          a user's session (systemd --user)
//   /tmp/gradient-<uid>/daemon.sock                otherwise
import { tmpdir } from 'node:os';
import path from 'node:path';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (env.GRADIENT_DAEMON_SOCKET) return env.GRADIENT_DAEMON_SOCKET;
  if (uid === 0) return '/run/gradient/daemon.sock';
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'gradient', 'daemon.sock');
  return path.join(tmpdir(), `gradient-${uid}`, 'daemon.sock');
}
