// Where the daemon looks for things when not told, in one place (documented in docs/ARCHITECTURE.md).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Gradient notebooks keep the user's files (and `.gradient/settings.yaml`) under /notebooks. */
export const NOTEBOOKS_DIR = '/notebooks';

/**
 * settings.yaml, in order: $GRADIENT_SETTINGS; /notebooks/.gradient/settings.yaml when /notebooks exists
 * (a notebook container); else ~/.gradient/settings.yaml. The file need not exist yet: the daemon starts with
 * the public datasets and picks the file up when it appears.
 */
export function defaultSettingsPath(env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): string {
  if (env.GRADIENT_SETTINGS) return env.GRADIENT_SETTINGS;
  if (exists(NOTEBOOKS_DIR)) return path.join(NOTEBOOKS_DIR, '.gradient', 'settings.yaml');
  return path.join(env.HOME || homedir(), '.gradient', 'settings.yaml');
}

/**
 * The mount root: $GRADIENT_MOUNTPOINT, else /datasets as root (what notebooks expect), else ~/datasets, since
 * an unprivileged user cannot create /datasets (mounting unprivileged needs fusermount3, setuid, which FUSE
 * packages install).
 */
export function defaultMountpoint(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (env.GRADIENT_MOUNTPOINT) return env.GRADIENT_MOUNTPOINT;
  return uid === 0 ? '/datasets' : path.join(env.HOME || homedir(), 'datasets');
}
