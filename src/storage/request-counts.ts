// Store requests sent, by operation: every HTTP attempt of an S3 client (retries included), counted for the
// daemon's status and metrics (how many requests a workload cost). One per daemon, shared by all its stores.
// Counting is an array increment: nothing is allocated per request.

/** The operations counted, in the order of their slots. */
export const STORE_OPS = [
  'GET',
  'HEAD',
  'LIST',
  'PUT',
  'COPY',
  'DELETE',
  'MULTIPART_START',
  'MULTIPART_PART',
  'MULTIPART_COMPLETE',
  'MULTIPART_ABORT',
  'OTHER',
] as const;

export type StoreOp = (typeof STORE_OPS)[number];

/** The slot of an S3 operation, by the SDK's command name (what S3Call.op holds). */
const SLOT_OF_COMMAND: Readonly<Record<string, number>> = {
  GetObjectCommand: 0,
  HeadObjectCommand: 1,
  ListObjectsV2Command: 2,
  PutObjectCommand: 3,
  CopyObjectCommand: 4,
  DeleteObjectCommand: 5,
  CreateMultipartUploadCommand: 6,
  UploadPartCommand: 7,
  CompleteMultipartUploadCommand: 8,
  AbortMultipartUploadCommand: 9,
};
const OTHER_SLOT = STORE_OPS.length - 1;

/** The counting slot for an SDK command name (S3Call.op); look it up once per request, count per attempt. */
export function storeOpSlot(command: string): number {
  return SLOT_OF_COMMAND[command] ?? OTHER_SLOT;
}

export class StoreRequestCounts {
  private readonly counts = new Float64Array(STORE_OPS.length);

  /** One attempt of the operation in `slot` (storeOpSlot) was sent. */
  add(slot: number): void {
    this.counts[slot]!++;
  }

  /** Attempts so far, by operation; operations never sent are left out. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    STORE_OPS.forEach((op, i) => {
      if (this.counts[i]! > 0) out[op] = this.counts[i]!;
    });
    return out;
  }
}
