#!/usr/bin/env node
// The `gradient` command: global options, the command groups, and the mapping of errors to clear messages
// and exit codes. Adding a command group = one line in GROUPS.
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { registerCache } from './cache.js';
import type { CliIO } from './context.js';
import { registerDatasets } from './datasets.js';
import { EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';
import { statusCommand } from './status.js';
import { mountCommand } from './mount.js';
import { runMount, superviseMount } from '../daemon/run.js';
import { registerStorageProviders } from './storage-providers.js';

export type RegisterGroup = (program: Command, io: CliIO) => void;

const GROUPS: RegisterGroup[] = [
  registerDatasets,
  registerStorageProviders,
  (program, io) => void program.addCommand(statusCommand(io)),
  registerCache,
  (program, io) => void program.addCommand(mountCommand(io, { run: runMount, supervise: superviseMount })),
];

export function buildProgram(io: CliIO): Command {
  const program = new Command('gradient')
    .description('Gradient datasets: versioned team datasets in your storage providers, mounted as plain files')
    .option('--config <path>', 'config file (default: $GRADIENT_CONFIG, else $XDG_CONFIG_HOME/gradient/config.yaml)')
    .option('--json', 'print results as JSON for scripts')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  for (const register of GROUPS) register(program, io);
  // Every (sub)command reports usage errors through run() instead of exiting the process.
  const override = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

/** Runs the CLI and returns its exit code (never exits the process itself: tests call this in-process). */
export async function run(
  argv: string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin },
): Promise<number> {
  // The SDK nags about Node 20 on every run; the project supports Node 20 deliberately.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const program = buildProgram(io);
  // Commands may set process.exitCode themselves (e.g. `status`); that becomes our result.
  const prior = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; their text is already printed.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = exitCodeFor(err);
    io.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    if (code === EXIT.failure && io.env.GRADIENT_DEBUG) io.stderr.write(`${(err as Error).stack}\n`);
    return code;
  } finally {
    process.exitCode = prior;
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  void run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
