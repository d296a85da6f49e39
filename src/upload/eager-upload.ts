// Uploading a file while it is being written. Once a staged file holds a full part past what has been sent,
// that part goes to the bucket as a part of a multipart upload, so close() only has to send the tail and
// complete the upload: writing 1 GiB and closing costs about the upload, not the write plus the upload.
//
// Only bytes that no longer change can be sent early, so any change below the frontier (a write or a
// truncate into bytes already sent), a failed part, or a rename gives it up: the close() then uploads the
// file whole, as it would without this. Nothing is visible in the bucket before the upload completes; an
// abandoned one is aborted (or, after a crash, left as invisible parts for a bucket lifecycle rule).
import type { MultipartOptions, MultipartUpload, ObjectInfo, ObjectStore } from '../storage/object-store.js';
import type { DaemonMemory } from '../memory/index.js';

/** Part size: as S3Store's own multipart uploads (S3's minimum is 5 MiB). */
export const EAGER_PART_BYTES = 16 * 1024 * 1024;
/** Parts read from the staging file and in flight at once, per file (each one part of memory); the
 *  process-wide part slots bound them for all files together. */
const MAX_PARTS_IN_FLIGHT = 4;
/** S3 allows 10,000 parts; the last one is kept for the tail. */
const MAX_EAGER_PARTS = 9_999;

/**
 * The process-wide memory parts are read into: page-aligned part buffers (so that parts are read around the
 * page cache, StagedFile.readAligned) and the slots that bound parts in flight for the whole process.
 */
export type PartMemory = Pick<DaemonMemory, 'partBuffers' | 'partSlots'>;

type MultipartStore = Required<Pick<ObjectStore, 'startMultipart'>>;

export function canUploadEagerly<T extends Pick<ObjectStore, 'startMultipart'>>(store: T): store is T & MultipartStore {
  return typeof store.startMultipart === 'function';
}

/** Where the parts' bytes come from (a StagedFile). */
export interface PartSource {
  read(offset: number, length: number): Promise<Buffer>;
  /** Fills `into` (page-aligned, whole pages) from `offset`; returns the bytes read. */
  readAligned(offset: number, into: Buffer): Promise<number>;
}

export class EagerUpload {
  /** Bytes [0, frontier) have been handed to parts. */
  private frontier = 0;
  private size = 0;
  private nextPart = 1;
  private inFlight = 0;
  private readonly parts: Promise<void>[] = [];
  private upload: Promise<MultipartUpload> | undefined;
  private givenUp = false;
  /** Has a full part ready and waits for a process-wide slot. */
  private waitingForSlot = false;
  /** A slot granted after a wait, not yet used by a part. */
  private slotGranted = false;
  /** Ends the wait for a slot when the upload is given up. */
  private readonly stopWaiting = new AbortController();
  /** Wakes finish() when a part of this upload ends. */
  private onPartEnded: (() => void) | undefined;
  /** The metadata and content type the multipart upload was created with (what its object will carry). */
  startedWith: MultipartOptions | undefined;

  constructor(
    private readonly store: MultipartStore,
    /** The key the parts go to (a rename cancels the upload: StagedFile.cancelEagerUpload). */
    private readonly key: string,
    private readonly source: PartSource,
    private readonly memory: PartMemory,
    /** What the object carries besides its bytes, as of when the upload is created. */
    private readonly attributes: () => MultipartOptions = () => ({}),
  ) {}

  /** The file's bytes from `offset` on changed; it is now `size` bytes long. */
  changed(offset: number, size: number): void {
    if (this.givenUp) return;
    if (offset < this.frontier || size < this.frontier) {
      void this.cancel();
      return;
    }
    this.size = size;
    this.pump();
  }

  /** Starts parts for the full parts written past the frontier, as slots allow. */
  private pump(): void {
    while (
      !this.givenUp &&
      this.inFlight < MAX_PARTS_IN_FLIGHT &&
      this.nextPart <= MAX_EAGER_PARTS &&
      this.size - this.frontier >= EAGER_PART_BYTES
    ) {
      if (!this.takeSlot()) return;
      const offset = this.frontier;
      const partNumber = this.nextPart++;
      this.frontier += EAGER_PART_BYTES;
      this.inFlight++;
      if (!this.upload) {
        const a = this.attributes();
        this.startedWith = { ...(a.metadata ? { metadata: { ...a.metadata } } : {}), ...(a.contentType !== undefined ? { contentType: a.contentType } : {}) };
        this.upload = this.store.startMultipart(this.key, this.startedWith);
      }
      const sent = (async () => {
        const upload = await this.upload!;
        const buf = this.memory.partBuffers.take(EAGER_PART_BYTES);
        try {
          const n = await this.source.readAligned(offset, buf);
          if (n !== EAGER_PART_BYTES) throw new Error(`staging file ended ${n} bytes into a part`);
          await upload.uploadPart(partNumber, buf);
        } finally {
          this.memory.partBuffers.give(buf);
        }
      })();
      this.parts.push(
        sent
          .catch(() => {
            // Not an error to report: close() uploads the file whole and reports what that does.
            this.givenUp = true;
          })
          .finally(() => {
            this.inFlight--;
            this.memory.partSlots.release();
            this.pump();
            this.onPartEnded?.();
          }),
      );
    }
  }

  /** Takes a process-wide part slot, or starts waiting for one (pump() runs again when it is granted). */
  private takeSlot(): boolean {
    if (this.slotGranted) {
      this.slotGranted = false;
      return true;
    }
    if (this.memory.partSlots.tryAcquire()) return true;
    if (!this.waitingForSlot) {
      this.waitingForSlot = true;
      this.memory.partSlots.acquire(1, this.stopWaiting.signal).then(
        () => {
          this.waitingForSlot = false;
          this.slotGranted = true;
          this.pump();
          // Given up meanwhile, or no full part any more: the slot goes back.
          if (this.slotGranted) {
            this.slotGranted = false;
            this.memory.partSlots.release();
          }
        },
        () => undefined, // aborted by cancel(): nothing was taken
      );
    }
    return false;
  }

  /**
   * Sends bytes [frontier, size) as the last part and completes the upload. Undefined when the parts cannot
   * be used (nothing sent early, or given up): the caller uploads the file whole.
   */
  async finish(size: number): Promise<ObjectInfo | undefined> {
    const nothingEarly = !this.upload && !this.waitingForSlot;
    if (nothingEarly || this.givenUp || size < this.frontier) {
      await this.cancel();
      return undefined;
    }
    // Full parts not sent yet (the writer outran the uploads) go as parts too: the tail read into memory
    // below is less than one part, however far ahead the writer was.
    this.size = size;
    this.pump();
    const fullPartsLeft = () => size - this.frontier >= EAGER_PART_BYTES && this.nextPart <= MAX_EAGER_PARTS;
    while (!this.givenUp && (this.inFlight > 0 || fullPartsLeft())) {
      await new Promise<void>((resolve) => (this.onPartEnded = resolve));
    }
    this.onPartEnded = undefined;
    if (this.givenUp) {
      await this.cancel();
      return undefined;
    }
    try {
      const upload = await this.upload!;
      if (size > this.frontier) await upload.uploadPart(this.nextPart, await this.source.read(this.frontier, size - this.frontier));
      return await upload.complete();
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /** Gives up: no more parts, and the upload (if started) is aborted. */
  async cancel(): Promise<void> {
    this.givenUp = true;
    this.waitingForSlot = false;
    this.stopWaiting.abort();
    this.onPartEnded?.();
    if (!this.upload) return;
    const upload = this.upload;
    this.upload = undefined;
    await Promise.all(this.parts);
    await upload.then((u) => u.abort()).catch(() => undefined); // best effort: invisible parts otherwise
  }
}
