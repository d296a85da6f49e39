// The staging directory (the cache's `staging/`, counted in the cache bound): a staged file's bytes are
// <id>.data, and its close journal <id>.json. A journal marks a staged file whose bytes were handed to us by a
// close() or fsync(): if the daemon dies, the next run uploads it. Staged data that no close() ever asked for
// is removed at the next start, as a crashed writer's partial file would be.
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StagedFile, type ObjectAttributes } from './staged-file.js';

interface JournalRecord {
  /** Where the bytes go (the target's location, e.g. an S3Store's). */
  location: string;
  key: string;
  /** What the upload carries besides the bytes (absent in journals of earlier versions). */
  attributes?: ObjectAttributes;
}

export class Staging {
  constructor(readonly dir: string) {}

  /** A new empty staged file for `key` (create, O_TRUNC). */
  create(key: string): Promise<StagedFile> {
    return StagedFile.create(this.dir, key);
  }

  /** A staged file holding `body` (an existing object opened for writing). */
  copyOf(key: string, body: Readable): Promise<StagedFile> {
    return StagedFile.fromStream(this.dir, key, body);
  }

  /** A staged file an earlier process of this session was writing (found by id after a takeover). */
  async reopen(key: string, id: string): Promise<StagedFile> {
    if (!/^[0-9a-f]+$/.test(id)) throw new Error(`not a staged file id: ${id}`);
    return StagedFile.reopen(this.dir, key, id);
  }

  private journalPath(file: StagedFile): string {
    return path.join(this.dir, `${file.id}.json`);
  }

  /** Marks the file's bytes as asked for by a close(): they survive a restart (written tmp + rename). */
  async journal(file: StagedFile, location: string): Promise<void> {
    const record: JournalRecord = { location, key: file.key, attributes: file.attributes };
    const tmp = `${this.journalPath(file)}.tmp`;
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await rename(tmp, this.journalPath(file));
  }

  /** The file's bytes no longer need to survive a restart (uploaded, or their name is gone). */
  async unjournal(file: StagedFile): Promise<void> {
    await rm(this.journalPath(file), { force: true });
  }

  /** Reopens the journaled files an earlier run left for `location`. */
  async journaled(location: string): Promise<StagedFile[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const found: StagedFile[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -'.json'.length);
      let record: JournalRecord;
      try {
        record = JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as JournalRecord;
      } catch {
        continue;
      }
      if (record.location !== location || typeof record.key !== 'string') continue;
      try {
        const file = await StagedFile.reopen(this.dir, record.key, id);
        if (record.attributes && typeof record.attributes === 'object') file.attributes = record.attributes;
        found.push(file);
      } catch {
        await rm(path.join(this.dir, name), { force: true }); // its data is gone: nothing to upload
      }
    }
    return found;
  }

  /**
   * Removes staged data that no close() asked to upload (no journal) and that predates this process: a
   * crashed writer's partial file. Called once at daemon start; returns how many files went.
   */
  async removeUnjournaled(startedAtMs: number, keep: ReadonlySet<string> = new Set()): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    // keep: files of writers that live on through a takeover of the FUSE session (their handles are still open).
    const journaled = new Set([...keep, ...names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5))]);
    let removed = 0;
    for (const name of names) {
      const id = name.endsWith('.data') ? name.slice(0, -5) : undefined;
      if (id === undefined || journaled.has(id)) continue;
      const p = path.join(this.dir, name);
      const st = await stat(p).catch(() => undefined);
      if (st && st.mtimeMs < startedAtMs) {
        await rm(p, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
