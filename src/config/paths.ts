// Where things live on disk, following the XDG base directory spec; each has an env override. Root keeps
// the system's paths (a service, a node's DaemonSet); any other user gets their own (a notebook container
// often runs as one, and cannot create /var/cache/gradient).
//   config file:        --config, else GRADIENT_CONFIG, else $XDG_CONFIG_HOME/gradient/config.yaml,
//                       else ~/.config/gradient/config.yaml
//   managed local store: config `localStorePath`, else GRADIENT_STORE_DIR, else
//                       $XDG_DATA_HOME/gradient/store, else ~/.local/share/gradient/store
//   cache:              --cache-dir, else config `cache.dir`, else /var/cache/gradient as root, else
//                       $XDG_CACHE_HOME/gradient, else ~/.cache/gradient
//   secrets:            see secrets.ts (a user's own directory first, then the system's)
import { homedir } from 'node:os';
import path from 'node:path';

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

const currentUid = (): number => process.getuid?.() ?? 0;

/** $XDG_CONFIG_HOME/gradient, else ~/.config/gradient. */
export function userConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(home(env), '.config'), 'gradient');
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(userConfigDir(env), 'config.yaml');
}

/** The system cache, shared by every mount of a node (the cache's own default); root only. */
export const SYSTEM_CACHE_DIR = '/var/cache/gradient';

/** The cache directory when neither --cache-dir nor the config file's cache.dir names one. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, uid: number = currentUid()): string {
  if (uid === 0) return SYSTEM_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(home(env), '.cache'), 'gradient');
}

/** The config file in effect and how it was named: a path the user names must exist (see loadConfig). */
export interface ConfigLocation {
  path: string;
  source: '--config' | 'GRADIENT_CONFIG' | 'default';
}

/** The config file to use: an explicit flag wins, then GRADIENT_CONFIG, then the XDG default. */
export function configLocation(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfigLocation {
  if (flag) return { path: path.resolve(flag), source: '--config' };
  if (env.GRADIENT_CONFIG) return { path: path.resolve(env.GRADIENT_CONFIG), source: 'GRADIENT_CONFIG' };
  return { path: path.resolve(defaultConfigPath(env)), source: 'default' };
}

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configLocation(flag, env).path;
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
