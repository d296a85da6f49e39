// What every command action gets: output (human or --json), the config file, and a catalog opened lazily
// from it. Command groups (datasets, storageProviders, and later mount/status/cache) share this.
import type { Command } from 'commander';
import type { Readable, Writable } from 'node:stream';
import { Catalog } from '../catalog/catalog.js';
import { allProviders, loadConfig, managedProviderId, type LoadedConfig } from '../config/config-file.js';
import { configLocation, type ConfigLocation } from '../config/paths.js';
import { createOutput, type Output } from './output.js';

export interface CliIO {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Where confirmations are read (a terminal); absent: there is none to ask on. */
  stdin?: Readable & { isTTY?: boolean };
}

export interface CommandContext {
  io: CliIO;
  out: Output;
  /** The config file path in effect (--config, GRADIENT_CONFIG, or the XDG default). */
  configPath: string;
  /** The same, with how it was named (an explicit path must exist). */
  configLocation: ConfigLocation;
  config(): Promise<LoadedConfig>;
  catalog(): Promise<Catalog>;
  /** Whether to draw progress bars (a terminal on stderr, and not --json). */
  progress: boolean;
}

interface GlobalOpts {
  config?: string;
  json?: boolean;
}

/** Wraps a command action: builds its context from the global options and closes what it opened. */
export function action<A extends unknown[]>(
  io: CliIO,
  fn: (s: CommandContext, ...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const globals = cmd.optsWithGlobals<GlobalOpts>();
    const location = configLocation(globals.config, io.env);
    let loaded: Promise<LoadedConfig> | undefined;
    let catalog: Catalog | undefined;
    const ctx: CommandContext = {
      io,
      out: createOutput(globals.json === true, io.stdout, io.stderr),
      configPath: location.path,
      configLocation: location,
      progress: globals.json !== true && io.stderr.isTTY === true,
      config: () => (loaded ??= loadConfig(location)),
      catalog: async () => {
        if (!catalog) {
          const { config } = await ctx.config();
          catalog = new Catalog({
            teamId: config.teamId,
            providers: allProviders(config, io.env),
            managedProviderId: managedProviderId(config),
            env: io.env,
          });
        }
        return catalog;
      },
    };
    try {
      await fn(ctx, ...args);
    } finally {
      catalog?.close();
    }
  };
}
