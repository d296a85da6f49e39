// Write-through: getting staged files into the bucket. `sync` is what close() and fsync() wait for: it
// returns once the bucket holds every byte written before the call (one upload in flight per file; writes
// made meanwhile ride on the next one). A failed upload keeps the staged bytes, answers the caller with the
// error, and is retried in the background with backoff until it succeeds or the file is unlinked.
//
// A journal file (<id>.json next to <id>.data) marks a staged file whose bytes were handed to us by a
// close() or fsync(): if the daemon dies, the next run uploads it. Staged data that no close() ever asked
// for is dropped at the next start, as a crashed writer's partial file would be.
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jitteredBackoffMs, type BackoffOptions } from '../../storage/backoff.js';
import type { ObjectInfo, ObjectStore } from '../../storage/object-store.js';
import { StagedFile } from './staged-file.js';
import { canUploadEagerly, EagerUpload } from './eager-upload.js';

export interface UploadStatus {
  key: string;
  bytes: number;
  state: 'uploading' | 'pending' | 'failed';
  attempts: number;
  lastError: string | null;
}

interface JournalRecord {
  location: string;
  key: string;
}

export interface UploadsOptions {
  store: ObjectStore;
  stagingDir: string;
  /** Called once the bucket holds a file's bytes (to refresh metadata). */
  onUploaded?: (file: StagedFile, info: ObjectInfo) => void;
  /** Called when a file has nothing left to upload and no open handle: the owner drops it. */
  onIdle?: (file: StagedFile) => void;
  /** Background retry delays. */
  backoff?: BackoffOptions;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const RETRY_BACKOFF: BackoffOptions = { baseMs: 1_000, capMs: 60_000 };

export class Uploads {
  /** Files with bytes the bucket does not hold yet (failed or waiting for a retry). */
  private readonly pending = new Set<StagedFile>();
  /** Files with an upload in flight. */
  private readonly active = new Set<StagedFile>();
  private closed = false;

  constructor(private readonly opts: UploadsOptions) {}

  get stagingDir(): string {
    return this.opts.stagingDir;
  }

  /**
   * A file is about to be written: from now on, full parts of it go to the bucket as they are written
   * (eager-upload.ts), unless the store cannot do multipart uploads or this round already gave up.
   */
  watch(file: StagedFile): void {
    const store = this.opts.store;
    if (file.eager || !canUploadEagerly(store)) return;
    file.eager = new EagerUpload(store, file.key, file);
  }

  /** Resolves once the bucket holds the file's bytes as of this call; rejects if an upload failed. */
  async sync(file: StagedFile): Promise<void> {
    const target = file.generation;
    while (file.uploadedGeneration < target && !file.deleted) {
      if (!file.inflight) {
        this.active.add(file);
        file.inflight = this.uploadOnce(file).finally(() => {
          file.inflight = undefined;
          this.active.delete(file);
        });
      }
      await file.inflight;
    }
  }

  private async uploadOnce(file: StagedFile): Promise<void> {
    const generation = file.generation;
    const key = file.key;
    clearTimeout(file.retryTimer);
    await this.writeJournal(file);
    // Parts sent while the file was written carry this upload if they still match the file (a rename
    // abandons them); the next round of writes starts a new one.
    const eager = file.eager;
    file.eager = undefined;
    try {
      const info = (await eager?.finish(file.size)) ?? (await this.opts.store.write(key, { path: file.dataPath }));
      file.uploadedGeneration = Math.max(file.uploadedGeneration, generation);
      file.attempts = 0;
      file.lastError = undefined;
      this.opts.onUploaded?.(file, info);
      if (!file.dirty) {
        this.pending.delete(file);
        await rm(this.journalPath(file), { force: true });
        if (file.refs === 0) this.opts.onIdle?.(file);
      }
    } catch (err) {
      file.attempts++;
      file.lastError = err instanceof Error ? err.message : String(err);
      this.pending.add(file);
      this.opts.log?.warn({ key, attempts: file.attempts, err: file.lastError }, 'upload failed: the data is kept and will be retried');
      this.scheduleRetry(file);
      throw err;
    }
  }

  private scheduleRetry(file: StagedFile): void {
    if (this.closed) return;
    clearTimeout(file.retryTimer);
    file.retryTimer = setTimeout(() => {
      if (!file.dirty || file.inflight) return;
      this.sync(file).then(
        () => this.opts.log?.info({ key: file.key, attempts: file.attempts }, 'pending upload succeeded'),
        () => undefined, // counted and rescheduled by uploadOnce
      );
    }, jitteredBackoffMs(file.attempts, this.opts.backoff ?? RETRY_BACKOFF) + 100);
    file.retryTimer.unref();
  }

  /** The file was unlinked or released clean: stop tracking it. */
  forgetFile(file: StagedFile): void {
    clearTimeout(file.retryTimer);
    file.abandonEager();
    this.pending.delete(file);
    void rm(this.journalPath(file), { force: true });
  }

  /** A file released with bytes still not in the bucket: keep trying in the background. */
  keepTrying(file: StagedFile): void {
    if (!file.dirty) return;
    this.pending.add(file);
    if (!file.inflight) this.scheduleRetry(file);
  }

  /** Uploads in flight, waiting for a retry, or failed. */
  status(): UploadStatus[] {
    const out: UploadStatus[] = [];
    for (const f of new Set([...this.active, ...this.pending])) {
      if (!f.dirty && !f.inflight) continue;
      const state = f.inflight ? 'uploading' : f.lastError ? 'failed' : 'pending';
      out.push({ key: f.key, bytes: f.size, state, attempts: f.attempts, lastError: f.lastError ?? null });
    }
    return out;
  }

  /** Tries every pending upload once more, waiting at most `timeoutMs`; returns how many are left. */
  async drain(timeoutMs: number): Promise<number> {
    const work = Promise.allSettled([...this.pending].map((f) => this.sync(f)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([work, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return [...this.pending].filter((f) => f.dirty).length;
  }

  close(): void {
    this.closed = true;
    for (const f of this.pending) clearTimeout(f.retryTimer);
  }

  // -------------------------------------------------- journal

  private journalPath(file: StagedFile): string {
    return path.join(this.opts.stagingDir, `${file.id}.json`);
  }

  private async writeJournal(file: StagedFile): Promise<void> {
    const record: JournalRecord = { location: this.opts.store.location, key: file.key };
    const tmp = `${this.journalPath(file)}.tmp`;
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await rename(tmp, this.journalPath(file));
  }

  /**
   * Picks up what an earlier run left for this store: journaled files are uploaded again (in the background);
   * returns them so that the view can show them until they are in the bucket.
   */
  async recover(): Promise<StagedFile[]> {
    const dir = this.opts.stagingDir;
    const names = await readdir(dir).catch(() => [] as string[]);
    const found: StagedFile[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -'.json'.length);
      let record: JournalRecord;
      try {
        record = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as JournalRecord;
      } catch {
        continue;
      }
      if (record.location !== this.opts.store.location || typeof record.key !== 'string') continue;
      try {
        const file = await StagedFile.reopen(dir, record.key, id);
        found.push(file);
        this.pending.add(file);
        this.scheduleRetry(file);
      } catch {
        await rm(path.join(dir, name), { force: true }); // its data is gone: nothing to upload
      }
    }
    if (found.length > 0) this.opts.log?.info({ location: this.opts.store.location, files: found.length }, 'resuming uploads left by an earlier run');
    return found;
  }
}

/**
 * Drops staged data that no close() asked to upload (no journal) and that predates this process: a
 * crashed writer's partial file. Called once at daemon start.
 */
export async function dropAbandonedStaging(stagingDir: string, startedAtMs: number): Promise<number> {
  const names = await readdir(stagingDir).catch(() => [] as string[]);
  const journaled = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  let dropped = 0;
  for (const name of names) {
    const id = name.endsWith('.data') ? name.slice(0, -5) : undefined;
    if (id === undefined || journaled.has(id)) continue;
    const p = path.join(stagingDir, name);
    const st = await stat(p).catch(() => undefined);
    if (st && st.mtimeMs < startedAtMs) {
      await rm(p, { force: true });
      dropped++;
    }
  }
  return dropped;
}
