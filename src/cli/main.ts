#!/usr/bin/env node
// The `gradient` command: global options, the command groups, and the mapping of errors to clear messages
// and exit codes. Adding a command group = one line in GROUPS.
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { CliIO } from './context.js';
import { EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';

export type RegisterGroup = (program: Command, io: CliIO) => void;

/**
 * The command groups by the name typed on the command line, each loaded only when it may run: `gradient mount`'s
 * supervisor stays up as long as the mount and should hold (and load) nothing it does not use.
 */
const GROUPS: Record<string, () => Promise<RegisterGroup>> = {
  datasets: async () => (await import('./datasets.js')).registerDatasets,
  storageProviders: async () => (await import('./storage-providers.js')).registerStorageProviders,
  status: async () => {
    const { statusCommand } = await import('./status.js');
    return (program, io) => void program.addCommand(statusCommand(io));
  },
  cache: async () => (await import('./cache.js')).registerCache,
  mount: async () => {
    const { mountCommand } = await import('./mount.js');
    return (program, io) =>
      void program.addCommand(
        mountCommand(io, {
          run: async (opts, io) => (await import('../daemon/run.js')).runMount(opts, io),
          preload: () => import('../daemon/run.js'),
          supervise: async (opts, io) => (await import('../daemon/supervise-mount.js')).superviseMount(opts, io),
        }),
      );
  },
};

/** The group a command line runs: its first word that is not a global option (undefined: help, a typo). */
function groupOf(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config') i++;
    else if (!a.startsWith('-')) return Object.hasOwn(GROUPS, a) ? a : undefined;
  }
  return undefined;
}

/** The program with the group `argv` runs, or every group (for help and suggestions). */
async function buildProgram(io: CliIO, argv: string[]): Promise<Command> {
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
  const group = groupOf(argv);
  const names = group ? [group] : Object.keys(GROUPS);
  for (const register of await Promise.all(names.map((n) => GROUPS[n]!()))) register(program, io);
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
  const program = await buildProgram(io, argv);
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
