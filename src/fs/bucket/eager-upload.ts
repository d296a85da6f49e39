// Uploading a file while it is being written. Once a staged file holds a full part past what has been sent,
// that part goes to the bucket as a part of a multipart upload, so close() only has to send the tail and
// complete the upload: writing 1 GiB and closing costs about the upload, not the write plus the upload.
//
// Only bytes that no longer change can be sent early, so any change below the frontier (a write or a
// truncate into bytes already sent), a failed part, or a rename gives it up: the close() then uploads the
// file whole, as it would without this. Nothing is visible in the bucket before the upload completes; an
// abandoned one is aborted (or, after a crash, left as invisible parts for a bucket lifecycle rule).
import type { MultipartUpload, ObjectInfo, ObjectStore } from '../../storage/object-store.js';

/** Part size: as S3Store's own multipart uploads (S3's minimum is 5 MiB). */
export const EAGER_PART_BYTES = 16 * 1024 * 1024;
/** Parts read from the staging file and in flight at once (each one part of memory). */
const MAX_PARTS_IN_FLIGHT = 4;
/** S3 allows 10,000 parts; the last one is kept for the tail. */
const MAX_EAGER_PARTS = 9_999;

type MultipartStore = ObjectStore & Required<Pick<ObjectStore, 'startMultipart'>>;

export function canUploadEagerly(store: ObjectStore): store is MultipartStore {
  return typeof store.startMultipart === 'function';
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
  /** finish() has begun: the tail goes as the last part, nothing more early. */
  private finishing = false;

  constructor(
    private readonly store: MultipartStore,
    /** The key the parts go to; a file renamed meanwhile cannot use them. */
    readonly key: string,
    private readonly readBytes: (offset: number, length: number) => Promise<Buffer>,
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

  private pump(): void {
    while (
      !this.givenUp &&
      !this.finishing &&
      this.inFlight < MAX_PARTS_IN_FLIGHT &&
      this.nextPart <= MAX_EAGER_PARTS &&
      this.size - this.frontier >= EAGER_PART_BYTES
    ) {
      const offset = this.frontier;
      const partNumber = this.nextPart++;
      this.frontier += EAGER_PART_BYTES;
      this.inFlight++;
      this.upload ??= this.store.startMultipart(this.key);
      const sent = (async () => {
        const upload = await this.upload!;
        await upload.uploadPart(partNumber, await this.readBytes(offset, EAGER_PART_BYTES));
      })();
      this.parts.push(
        sent
          .catch(() => {
            // Not an error to report: close() uploads the file whole and reports what that does.
            this.givenUp = true;
          })
          .finally(() => {
            this.inFlight--;
            this.pump();
          }),
      );
    }
  }

  /**
   * Sends bytes [frontier, size) as the last part and completes the upload. Undefined when the parts cannot
   * be used (nothing sent early, or given up): the caller uploads the file whole.
   */
  async finish(size: number): Promise<ObjectInfo | undefined> {
    if (!this.upload || this.givenUp || size < this.frontier) {
      await this.cancel();
      return undefined;
    }
    this.finishing = true;
    await Promise.all(this.parts);
    if (this.givenUp) {
      await this.cancel();
      return undefined;
    }
    try {
      const upload = await this.upload;
      if (size > this.frontier) await upload.uploadPart(this.nextPart, await this.readBytes(this.frontier, size - this.frontier));
      return await upload.complete();
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /** Gives up: no more parts, and the upload (if started) is aborted. */
  async cancel(): Promise<void> {
    this.givenUp = true;
    if (!this.upload) return;
    const upload = this.upload;
    this.upload = undefined;
    await Promise.all(this.parts);
    await upload.then((u) => u.abort()).catch(() => undefined); // best effort: invisible parts otherwise
  }
}
