// A memory cgroup with a limit, for the daemon's memory test and benchmark (needs root).
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface MemoryCgroup {
  dir: string;
  /** A command prefix: the shell joins the cgroup, then becomes the command (its children stay in it). */
  wrap: string[];
  /** OOM kills inside the cgroup so far. */
  oomKills(): number;
  /** Removes the cgroup, waiting up to 10 s for processes still leaving it. */
  remove(): Promise<void>;
}

/** Creates a cgroup limited to `limitBytes`: v2 memory.max, or v1 memory.limit_in_bytes on a hybrid host. */
export function memoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers') && readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').includes('memory');
  const dir = v2 ? path.join('/sys/fs/cgroup', name) : path.join('/sys/fs/cgroup/memory', name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
  return {
    dir,
    wrap: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', path.join(dir, 'cgroup.procs')],
    oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(path.join(dir, v2 ? 'memory.events' : 'memory.oom_control'), 'utf8'))?.[1] ?? 0),
    async remove() {
      for (let i = 0; i < 100 && existsSync(dir); i++) {
        try {
          rmdirSync(dir);
        } catch {
          await new Promise((r) => setTimeout(r, 100)); // processes still leaving
        }
      }
      if (existsSync(dir)) console.error(`cgroup ${dir} could not be removed`);
    },
  };
}
