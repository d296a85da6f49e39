// `gradient status`: what the running daemon serves, as a table or as JSON (--json).
// Exit codes: 0 every entry ok; 1 ready, but some entry or the settings file is in error; 6 (unavailable)
// no daemon answers, or it is not ready.
import { Command, Option } from 'commander';
import { DaemonClientError, fetchStatus, waitForReady } from '../daemon/client.js';
import { defaultSocketPath } from '../daemon/socket-path.js';
import type { CliIO } from './context.js';
import { EXIT } from './exit-codes.js';
import type { DaemonStatus, MemoryStatus } from '../daemon/status.js';

export const STATUS_EXIT = { ok: EXIT.ok, degraded: 1, noDaemon: EXIT.unavailable } as const;

export function statusCommand(io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Command {
  return new Command('status')
    .description('show what the running daemon mounts, what each ref resolved to, errors, and cache use')
    .addHelpText('after', '\nExit codes: 0 all ok; 1 ready but some entry or settings.yaml in error; 6 no ready daemon.\n\nExamples:\n  gradient status\n  gradient status --wait --timeout 120 --json')
    .option('--json', 'print the full status as JSON')
    .addOption(new Option('--socket <path>', 'daemon status socket').default(defaultSocketPath(io.env), 'see docs/ARCHITECTURE.md'))
    .option('--wait', 'wait until the daemon is ready (for scripts)')
    .addOption(new Option('--timeout <seconds>', 'with --wait: give up after this long').default('60').argParser(positiveSeconds))
    .action(async (_opts: unknown, cmd: Command) => {
      // With the globals: `gradient --json status` and `gradient status --json` (which the program-level flag
      // takes wherever it stands) both mean JSON.
      const opts = cmd.optsWithGlobals<{ json?: boolean; socket: string; wait?: boolean; timeout: number | string }>();
      const timeoutMs = Number(opts.timeout) * 1000;
      let status: DaemonStatus;
      try {
        status = opts.wait ? await waitForReady(opts.socket, { timeoutMs }) : await fetchStatus(opts.socket);
      } catch (err) {
        io.stderr.write(`gradient status: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = err instanceof DaemonClientError ? STATUS_EXIT.noDaemon : EXIT.failure;
        return;
      }
      io.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
      process.exitCode = statusExitCode(status);
    });
}

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--timeout must be a positive number of seconds, got ${v}`);
  return n;
}

export function statusExitCode(status: DaemonStatus): number {
  if (!status.ready) return STATUS_EXIT.noDaemon;
  if (status.settings.state === 'error' || status.mounts.some((m) => m.state !== 'ok')) return STATUS_EXIT.degraded;
  return STATUS_EXIT.ok;
}

/** The human view: a header, one row per mount, then every error in full (they are too long for a column). */
export function formatStatus(s: DaemonStatus): string {
  const lines: string[] = [];
  lines.push(`daemon: ${s.phase} (pid ${s.pid}, since ${s.startedAt})${s.mountpoint ? `, mounted on ${s.mountpoint}` : ''}`);
  lines.push(`settings: ${s.settings.file} — ${s.settings.state === 'ok' ? 'ok' : 'ERROR (last good settings still in force)'}`);
  if (s.cache) {
    const ratio = s.cache.hitRatio === null ? 'no reads yet' : `${(s.cache.hitRatio * 100).toFixed(1)}% hits`;
    const pct = s.cache.capacityBytes > 0 ? ` (${((s.cache.usedBytes / s.cache.capacityBytes) * 100).toFixed(0)}%)` : '';
    lines.push(`cache: ${bytes(s.cache.usedBytes)} of ${bytes(s.cache.capacityBytes)}${pct}, ${ratio}`);
    const t = s.cache.tier;
    if (t) {
      const down = t.unavailableUntil ? `, unavailable (reads go to the origin) until ${t.unavailableUntil}` : '';
      const bad = t.corrupt > 0 ? `, ${t.corrupt} corrupt object(s) read from the origin instead` : '';
      lines.push(
        `shared tier ${t.location}: ${bytes(t.bytesFromTier)} read from it, ${bytes(t.bytesFromOrigin)} from the origin, ${bytes(t.bytesUploaded)} uploaded${bad}${down}`,
      );
    }
  }
  if (s.memory) lines.push(formatMemory(s.memory));
  if (s.fatalError) lines.push(`fatal: ${s.fatalError}`);
  lines.push('');
  const rows = [['NAME', 'TYPE', 'REF', 'SERVING', 'STATE'], ...s.mounts.map((m) => [m.name, m.type, m.ref, m.resolved ?? '-', m.state])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) lines.push(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  if (s.mounts.length === 0) lines.push('(nothing mounted)');
  const outputs = s.outputs ?? [];
  if (outputs.length > 0) {
    lines.push('', 'outputs (dataset versions mounted read-write):');
    for (const o of outputs) {
      const state = o.committed ? 'committed (read-only)' : `uncommitted${o.commitOnExit ? ', commits on exit' : ''}`;
      lines.push(
        `  ${o.mount}  ${o.version}  ${state}  ${o.filesWritten} ${o.filesWritten === 1 ? 'file' : 'files'} / ${bytes(o.bytesWritten)} written, ${o.files} in the version, ${o.pendingUploads} pending`,
      );
    }
  }
  const uploads = s.uploads ?? [];
  if (uploads.length > 0) {
    lines.push('', `uploads not yet in the bucket (${uploads.length}):`);
    for (const u of uploads) {
      const tries = u.attempts > 0 ? `, ${u.attempts} failed attempt${u.attempts > 1 ? 's' : ''}` : '';
      lines.push(`  ${u.mount}/${u.key}  ${bytes(u.bytes)}  ${u.state}${tries}${u.lastError ? `: ${u.lastError}` : ''}`);
    }
  }
  const entryErrors = s.mounts.filter((m) => m.lastError).map((m) => m.lastError!);
  const indent = (e: string) => e.split('\n').map((l) => `  ${l}`);
  if (s.settings.state === 'error' && s.settings.lastError) {
    // Only the file on disk has positions; the entries' errors are from the last good settings, so they
    // name entry and field only (the daemon leaves the positions out).
    lines.push('', `errors in ${s.settings.file}:`, ...indent(s.settings.lastError));
    if (entryErrors.length > 0) lines.push('', 'errors of entries under the last good settings:', ...entryErrors.flatMap(indent));
  } else if (entryErrors.length > 0) {
    lines.push('', 'errors:', ...entryErrors.flatMap(indent));
  }
  return `${lines.join('\n')}\n`;
}

/** One line: resident memory of both processes, the target and its source, the largest consumers. */
function formatMemory(m: MemoryStatus): string {
  const target = m.targetBytes === null ? 'no target' : `target ${bytes(m.targetBytes)} (${m.targetSource === 'cgroup' ? `a share of the cgroup's ${bytes(m.cgroupLimitBytes ?? 0)}` : m.targetSource})`;
  const supervisor = m.supervisorRssBytes === null ? '' : ` + supervisor ${bytes(m.supervisorRssBytes)} (${bytes(m.supervisorPrivateBytes ?? 0)} private)`;
  const top = Object.entries(m.consumers)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${bytes(n)}`)
    .join(', ');
  return `memory: ${bytes(m.rssBytes)} resident (peak ${bytes(m.peakRssBytes)})${supervisor}, ${target}${m.underPressure ? ', UNDER PRESSURE' : ''}${top ? `; ${top}` : ''}`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}
