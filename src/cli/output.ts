// Output for humans (Gradient-style pipe tables, one-line confirmations) and for scripts (--json).
import type { Writable } from 'node:stream';

export interface Output {
  readonly json: boolean;
  /** A line for humans (suppressed with --json). */
  line(text: string): void;
  /** The JSON document for scripts (printed only with --json). */
  data(value: unknown): void;
  /** Either a table for humans or JSON for scripts. */
  result(human: () => string, value: unknown): void;
  warn(text: string): void;
  readonly stderr: Writable & { isTTY?: boolean };
}

export function createOutput(json: boolean, stdout: Writable = process.stdout, stderr: Writable = process.stderr): Output {
  return {
    json,
    stderr,
    line: (text) => {
      if (!json) stdout.write(`${text}\n`);
    },
    data: (value) => {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
    result: (human, value) => {
      stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
    },
    warn: (text) => {
      stderr.write(`warning: ${text}\n`);
    },
  };
}

/** `1 file`, `2 files`; `plural` for words that do not just take an s (`entry` → `entries`). */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/** `| a | b |` rows with padded columns; the first row is a header when `header` is set. */
export function table(rows: string[][], header = true): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  const out = rows.map(fmt);
  if (header) out.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  return out.join('\n');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
