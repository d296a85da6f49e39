// Destructive commands ask before they act when a person is at a terminal; scripts confirm with --yes. With
// no terminal and no --yes the command refuses (exit 2) rather than guess what the caller meant.
import { createInterface } from 'node:readline/promises';
import type { CommandContext } from './context.js';
import { CliError, EXIT } from './exit-codes.js';

/** Resolves when `what` (e.g. "delete dataset democli (ds…)") is confirmed; throws otherwise. */
export async function confirm(s: CommandContext, what: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  const stdin = s.io.stdin;
  if (!stdin?.isTTY || !s.io.stderr.isTTY) {
    throw new CliError(EXIT.usage, `refusing to ${what} without confirmation: pass --yes (there is no terminal to ask on)`);
  }
  const rl = createInterface({ input: stdin, output: s.io.stderr, terminal: false });
  try {
    const answer = await rl.question(`${what[0]!.toUpperCase()}${what.slice(1)}? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError(EXIT.refused, `not confirmed: did not ${what}`);
  } finally {
    rl.close();
  }
}
