// One live cache instance per directory: the pid in <dir>/lock. SQLite would keep the index consistent
// across processes, but the in-memory state (pins, reservations) would not be shared, so a second writer
// (e.g. `gradient cache clear` while the daemon runs) could evict a file the daemon is serving.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { CacheError } from './errors.js';

export class DirLock {
  private constructor(private readonly file: string) {}

  static acquire(dir: string): DirLock {
    const file = path.join(dir, 'lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new DirLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new CacheError('Io', `cannot lock the cache directory ${dir}: ${(err as Error).message}`, { cause: err });
        }
      }
      const owner = lockOwner(dir);
      if (owner !== undefined && processAlive(owner)) {
        throw new CacheError(
          'Busy',
          `the cache directory ${dir} is in use by process ${owner}${owner === process.pid ? ' (this process)' : ''}; ` +
            'stop the daemon first, or use `gradient cache stats` which only reads',
        );
      }
      // Stale lock from a process that died (kill -9, crash): take it over.
      try {
        unlinkSync(file);
      } catch {
        // raced with another taker: retry
      }
    }
    throw new CacheError('Busy', `could not lock the cache directory ${dir}`);
  }

  release(): void {
    try {
      if (readFileSync(this.file, 'utf8').trim() === String(process.pid)) unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

/** The pid holding the lock, if any. */
export function lockOwner(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dir, 'lock'), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` still runs. A zombie does not: it has let go of every file, and where nothing reaps
 * orphans (a container whose init does not) a dead daemon stays a zombie for good.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ...", comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
