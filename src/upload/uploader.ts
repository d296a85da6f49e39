// The process's write-through machinery, built once by the daemon and handed to every writable view: the
// staging directory and the memory for parts sent while files are written (both process-wide), and an
// upload queue per target.
import type { BackoffOptions } from '../storage/backoff.js';
import type { ObjectInfo } from '../storage/object-store.js';
import type { PartMemory } from './eager-upload.js';
import type { ObjectAttributes, StagedFile } from './staged-file.js';
import { Staging } from './staging.js';
import { UploadQueue, type UploadTarget } from './upload-queue.js';

type Log = { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };

export interface UploaderOptions {
  /** Where files being written are staged (the cache's staging directory). */
  stagingDir: string;
  /** The daemon's part buffers and part slots (src/memory). */
  memory: PartMemory;
  log?: Log;
}

export interface QueueOptions {
  /** Called once the target holds a file's bytes (to refresh metadata), with the attributes they went with. */
  onUploaded?: (file: StagedFile, info: ObjectInfo, attributes: ObjectAttributes) => void;
  /** Called when a file has nothing left to upload and no open handle: the owner removes it. */
  onIdle?: (file: StagedFile) => void;
  /** Background retry delays (default 1 s … 60 s). */
  backoff?: BackoffOptions;
  log?: Log;
}

export class Uploader {
  readonly staging: Staging;
  constructor(private readonly opts: UploaderOptions) {
    this.staging = new Staging(opts.stagingDir);
  }

  /** The upload queue of one target (a bucket view's store). */
  queueFor(target: UploadTarget, opts: QueueOptions = {}): UploadQueue {
    const log = opts.log ?? this.opts.log;
    return new UploadQueue({ target, staging: this.staging, memory: this.opts.memory, ...opts, ...(log ? { log } : {}) });
  }
}
