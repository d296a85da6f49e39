// Which memory target the daemon runs with, and why: `--memory-target`, else the config file's
//   memory:
//     target: 512M
// else a share of the memory limit of the cgroup the daemon runs in (a container's), else none. The target
// itself is enforced by src/memory (MemoryTarget, splitTarget); this module only chooses it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseSize } from '../cache/size.js';
import { ConfigError } from '../config/errors.js';

const MiB = 1024 * 1024;

export const memoryConfigSchema = z.strictObject({
  target: z.union([z.string(), z.number().int().positive()]).optional(),
});
export type MemoryConfig = z.infer<typeof memoryConfigSchema>;

/** Validates `memory.target` as a size (the schema only knows it is a string or a number). */
export function parseMemoryConfig(raw: MemoryConfig | undefined, file: string): { targetBytes?: number } {
  if (raw?.target === undefined) return {};
  try {
    const bytes = parseSize(raw.target);
    if (bytes <= 0) throw new Error('must be more than 0');
    return { targetBytes: bytes };
  } catch (err) {
    throw new ConfigError('Invalid', `config file ${file} is invalid: memory.target: ${(err as Error).message}`);
  }
}

export interface MemoryTargetChoice {
  /** Undefined: no target. */
  bytes: number | undefined;
  source: 'flag' | 'config' | 'cgroup' | 'none';
  /** The cgroup's memory limit, when there is one. */
  cgroupLimitBytes: number | undefined;
}

/**
 * The share of a cgroup's limit the daemon takes by default: a quarter, so that the container's own work (the
 * training job) keeps the rest, but at least 192 MiB (what a reader and a writer need to run at speed) as long
 * as that is at most half of the limit.
 */
export function defaultTargetFor(limitBytes: number): number {
  return Math.min(Math.max(limitBytes / 4, 192 * MiB), limitBytes / 2);
}

export function chooseMemoryTarget(flagBytes: number | undefined, configBytes: number | undefined, cgroupLimitBytes: number | undefined): MemoryTargetChoice {
  if (flagBytes !== undefined) return { bytes: flagBytes, source: 'flag', cgroupLimitBytes };
  if (configBytes !== undefined) return { bytes: configBytes, source: 'config', cgroupLimitBytes };
  if (cgroupLimitBytes !== undefined) return { bytes: Math.floor(defaultTargetFor(cgroupLimitBytes)), source: 'cgroup', cgroupLimitBytes };
  return { bytes: undefined, source: 'none', cgroupLimitBytes };
}

/** Limits at or above this mean "no limit" (cgroup v1 writes 2^63 rounded down to a page). */
const UNLIMITED = 2 ** 60;

/**
 * The memory limit that applies to this process: the smallest limit of its memory cgroup and of every cgroup
 * above it (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes` on hybrid hosts). Undefined when there is
 * none, or when the hierarchy cannot be read.
 */
export function cgroupMemoryLimit(root = '/sys/fs/cgroup', procCgroup = '/proc/self/cgroup'): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(procCgroup, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const limits: number[] = [];
  for (const line of lines) {
    const [, controllers = '', where = ''] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (!where.startsWith('/')) continue;
    if (controllers === '') {
      // v2: the unified hierarchy at the root (a pure v2 host, a container) or at unified/ (hybrid).
      for (const base of [root, path.join(root, 'unified')]) limits.push(...limitsUp(base, where, 'memory.max'));
    } else if (controllers.split(',').includes('memory')) {
      limits.push(...limitsUp(path.join(root, 'memory'), where, 'memory.limit_in_bytes'));
    }
  }
  const real = limits.filter((n) => n > 0 && n < UNLIMITED);
  return real.length > 0 ? Math.min(...real) : undefined;
}

/** The numeric limits in `file` of cgroup `where` under `base` and of its ancestors (a namespaced `/` too). */
function limitsUp(base: string, where: string, file: string): number[] {
  const out: number[] = [];
  for (let dir = where; ; dir = path.dirname(dir)) {
    try {
      const n = Number(readFileSync(path.join(base, dir, file), 'utf8').trim());
      if (Number.isFinite(n)) out.push(n); // "max": no limit
    } catch {
      // not there: another hierarchy, or a cgroup namespace that hides the path
    }
    if (dir === '/') return out;
  }
}
