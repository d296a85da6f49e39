// Where things live on disk, following the XDG base directory spec; each has an env override.
//   config file:        --config, else GRADIENT_CONFIG, else $XDG_CONFIG_HOME/gradient/config.yaml,
//                       else ~/.config/gradient/config.yaml
//   managed local store: config `localStorePath`, else GRADIENT_STORE_DIR, else
//                       $XDG_DATA_HOME/gradient/store, else ~/.local/share/gradient/store
import { homedir } from 'node:os';
import path from 'node:path';

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(home(env), '.config');
  return path.join(base, 'gradient', 'config.yaml');
}

/** The config file to use: an explicit flag wins, then GRADIENT_CONFIG, then the XDG default. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag || env.GRADIENT_CONFIG || defaultConfigPath(env));
}

export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GRADIENT_STORE_DIR) return path.resolve(env.GRADIENT_STORE_DIR);
  const base = env.XDG_DATA_HOME || path.join(home(env), '.local', 'share');
  return path.join(base, 'gradient', 'store');
}

/** Expands a leading "~/" so that config files can say `~/data`. */
export function expandHome(p: string, env: NodeJS.ProcessEnv = process.env): string {
  return p === '~' ? home(env) : p.startsWith('~/') ? path.join(home(env), p.slice(2)) : p;
}
