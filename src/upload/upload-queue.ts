// Write-through: getting staged files to their target (a bucket view's store). `sync` is what close() and
// fsync() wait for: it returns once the target holds every byte written before the call (one upload in
// flight per file; writes made meanwhile ride on the next one). A failed upload keeps the staged bytes,
// answers the caller with the error, and is retried in the background with backoff until it succeeds or
// the file's name is gone. Before each upload the file is journaled (staging.ts), so that a daemon that
// dies with bytes a close() asked for uploads them at its next start.
import { jitteredBackoffMs, type BackoffOptions } from '../storage/backoff.js';
import { isStorageError } from '../storage/errors.js';
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js';
import { canUploadEagerly, EagerUpload, type PartMemory } from './eager-upload.js';
import { sameAttributes, type ObjectAttributes, type StagedFile } from './staged-file.js';
import type { Staging } from './staging.js';

export interface UploadStatus {
  key: string;
  bytes: number;
  state: 'uploading' | 'pending' | 'failed';
  attempts: number;
  lastError: string | null;
}

/**
 * Where staged bytes go: an object store today. A file is committed with one `write` of its staged bytes,
 * or, when the target offers `startMultipart`, with the parts sent while it was written.
 */
export type UploadTarget = Pick<ObjectStore, 'location' | 'write' | 'startMultipart' | 'copy'>;

export interface UploadQueueOptions {
  target: UploadTarget;
  staging: Staging;
  memory: PartMemory;
  /** Called once the target holds a file's bytes (to refresh metadata), with the attributes they went with. */
  onUploaded?: (file: StagedFile, info: ObjectInfo, attributes: ObjectAttributes) => void;
  /** Called when a file has nothing left to upload and no open handle: the owner removes it. */
  onIdle?: (file: StagedFile) => void;
  /** Background retry delays. */
  backoff?: BackoffOptions;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const RETRY_BACKOFF: BackoffOptions = { baseMs: 1_000, capMs: 60_000 };
/** CopyObject's limit. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

/** A copy of a file's attributes as they are now (the owner may change them during the upload). */
function snapshot(a: ObjectAttributes): ObjectAttributes {
  return { ...(a.metadata ? { metadata: { ...a.metadata } } : {}), ...withContentType(a) };
}

function withContentType(a: ObjectAttributes): { contentType?: string } {
  return a.contentType === undefined ? {} : { contentType: a.contentType };
}

export class UploadQueue {
  /** Files with bytes the target does not hold yet (failed or waiting for a retry). */
  private readonly pending = new Set<StagedFile>();
  /** Files with an upload in flight. */
  private readonly active = new Set<StagedFile>();
  private closed = false;

  constructor(private readonly opts: UploadQueueOptions) {}

  /**
   * The file is being written: from now on, full parts of it go to the target as they are written
   * (eager-upload.ts), unless the target cannot take parts or this round already gave up.
   */
  startEagerUpload(file: StagedFile): void {
    const target = this.opts.target;
    if (file.eager || file.abandoned || !canUploadEagerly(target)) return;
    file.eager = new EagerUpload(target, file.key, file, this.opts.memory, () => file.attributes);
  }

  /** Resolves once the target holds the file's bytes as of this call; rejects if an upload failed. */
  async sync(file: StagedFile): Promise<void> {
    const target = file.generation;
    if (file.refused && file.dirty) throw file.refused;
    while (file.uploadedGeneration < target && !file.abandoned) {
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
    await this.opts.staging.journal(file, this.opts.target.location);
    // Parts sent while the file was written carry this upload if they still match the file (a rename
    // cancels them); the next round of writes starts a new one.
    const eager = file.eager;
    file.eager = undefined;
    try {
      const attributes = snapshot(file.attributes);
      let info = await eager?.finish(file.size);
      // Attributes changed after the multipart upload was created (cp -a sets modes and times before close).
      if (info && !sameAttributes(eager!.startedWith, attributes)) info = await this.replaceAttributes(key, info, attributes);
      info ??= await this.opts.target.write(key, { path: file.dataPath }, attributes);
      file.uploadedGeneration = Math.max(file.uploadedGeneration, generation);
      file.attempts = 0;
      file.lastError = undefined;
      this.opts.onUploaded?.(file, info, attributes);
      if (!file.dirty) {
        this.pending.delete(file);
        await this.opts.staging.unjournal(file);
        if (file.refs === 0) this.opts.onIdle?.(file);
      }
    } catch (err) {
      file.attempts++;
      file.lastError = err instanceof Error ? err.message : String(err);
      if (isStorageError(err, 'ReadOnly')) {
        // Refused for good (the version was committed): no retries, nothing for the next start to resume;
        // the writer hears of it at this and every later close or fsync.
        file.refused = err;
        this.pending.delete(file);
        await this.opts.staging.unjournal(file).catch(() => undefined);
        this.opts.log?.warn({ key, err: file.lastError }, 'upload refused: the target takes no more changes');
        throw err;
      }
      this.pending.add(file);
      this.opts.log?.warn({ key, attempts: file.attempts, err: file.lastError }, 'upload failed: the data is kept and will be retried');
      this.scheduleRetry(file);
      throw err;
    }
  }

  /**
   * Gives an uploaded object other attributes: one server-side copy onto itself, or, above CopyObject's
   * 5 GiB, undefined (the caller uploads the bytes again, with them).
   */
  private async replaceAttributes(key: string, info: ObjectInfo, attributes: ObjectAttributes): Promise<ObjectInfo | undefined> {
    if (info.size > MAX_COPY_BYTES) return undefined;
    return this.opts.target.copy(key, key, { metadata: attributes.metadata ?? {}, ...withContentType(attributes), sourceSize: info.size });
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

  /** The file's name is gone, or it was released with nothing to upload: no retries, parts or journal. */
  stopTracking(file: StagedFile): void {
    clearTimeout(file.retryTimer);
    file.cancelEagerUpload();
    this.pending.delete(file);
    void this.opts.staging.unjournal(file);
  }

  /** A file released with bytes still not in the target: keep trying in the background. */
  keepTrying(file: StagedFile): void {
    if (!file.dirty || file.refused) return;
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

  /**
   * Picks up what an earlier run left for this target: journaled files are uploaded again (in the
   * background); returns them so that the owner can show them until the target holds them.
   */
  async recover(): Promise<StagedFile[]> {
    const location = this.opts.target.location;
    const found = await this.opts.staging.journaled(location);
    for (const file of found) {
      this.pending.add(file);
      this.scheduleRetry(file);
    }
    if (found.length > 0) this.opts.log?.info({ location, files: found.length }, 'resuming uploads left by an earlier run');
    return found;
  }
}
