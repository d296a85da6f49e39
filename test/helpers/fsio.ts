// Runs test/helpers/fsio.py (reads, copies, many open files) in child processes and collects its output
// lines as they come: the test process never does blocking I/O on a mount itself.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const script = path.join(import.meta.dirname, 'fsio.py');

// Resolved once: pyenv's `python3` is a shell shim, too slow to start a hundred times.
let python: string | undefined;
function pythonPath(): string {
  python ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  return python;
}

export interface FsioLine {
  kind: 'ok' | 'err' | 'holding' | 'opened' | 'paused' | 'closed';
  path: string;
  /** ok from read/many: the content hash and length (opened/closed: the count); err: the errno name. */
  sha256?: string;
  bytes?: number;
  errno?: string;
}

export class Fsio {
  readonly lines: FsioLine[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = '';
  private waiters: Array<() => void> = [];

  constructor(args: string[], opts: { stdin?: boolean } = {}) {
    this.child = spawn(pythonPath(), [script, ...args], { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      const text = partial + d.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const l of parts) this.lines.push(parse(l));
      this.notify();
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.notify();
        resolve(code);
      }),
    );
  }

  get done(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  get errors(): string {
    return this.stderr;
  }

  /** Resolves once `pred` holds over the lines seen so far; rejects if the child exits first. */
  async waitFor(what: string, pred: (lines: FsioLine[]) => boolean): Promise<void> {
    while (!pred(this.lines)) {
      if (this.done) throw new Error(`fsio exited before ${what}: ${this.stderr.slice(-2000)} last lines: ${JSON.stringify(this.lines.slice(-5))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Closes the child's stdin: a `copy --hold-at` child exits without ever closing its file. */
  release(): void {
    this.child.stdin?.end();
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

function parse(line: string): FsioLine {
  // Paths may hold spaces: the fields around them are taken from the ends.
  const sp = line.indexOf(' ');
  const kind = (sp < 0 ? line : line.slice(0, sp)) as FsioLine['kind'];
  const rest = sp < 0 ? '' : line.slice(sp + 1);
  if (kind === 'ok' && / [0-9a-f]{64} \d+$/.test(rest)) {
    const parts = rest.split(' ');
    return { kind, path: parts.slice(0, -2).join(' '), sha256: parts.at(-2)!, bytes: Number(parts.at(-1)) };
  }
  if (kind === 'err') return { kind, path: rest.slice(0, rest.lastIndexOf(' ')), errno: rest.slice(rest.lastIndexOf(' ') + 1) };
  // opened/closed: a count (kept in `bytes`).
  if (kind === 'opened' || kind === 'closed') return { kind, path: '', bytes: Number(rest) };
  return { kind, path: rest };
}

/** Waits for every child to exit, killing those still running after `graceMs` (a hang guard). */
export async function settle(children: Fsio[], graceMs = 60_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(children.map((c) => c.exited));
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  for (const c of children) c.kill();
  await all;
}

/**
 * Runs a small Python program in a child process and parses the JSON it prints: for checks that need
 * exact bytes in names (NUL-free but otherwise anything) or errno names, e.g. listdir, create, chdir walks.
 */
export async function pythonJson(program: string, args: string[] = []): Promise<unknown> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(pythonPath(), ['-c', program, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`python failed: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
  return JSON.parse(out) as unknown;
}
