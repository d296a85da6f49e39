// Runs the `gradient` CLI in-process with captured output: real commands, real exit codes.
import { Writable } from 'node:stream';
import { run } from '../../src/cli/main.js';

/** A Writable that keeps what was written. */
export class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(args, { stdout, stderr, env });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
