// The parts of a multipart upload: cut from a file (byte ranges: nothing is buffered, each part is read
// while it is sent) or from a stream (each part buffered once, so that it can be sent again on a retry),
// and sent with a bounded number in flight.
import type { Readable } from 'node:stream';
import type { RequestBody } from '../http/connection.js';

/** S3 allows at most 10,000 parts: a big file gets bigger parts (whole MiB). */
export function partSizeFor(size: number, partSize: number): number {
  const MiB = 1024 * 1024;
  return Math.max(partSize, Math.ceil(size / 10_000 / MiB) * MiB);
}

export function* fileParts(path: string, size: number, partSize: number): Iterable<RequestBody> {
  for (let start = 0; start < size; start += partSize) yield { path, start, length: Math.min(partSize, size - start) };
}

/** The stream's bytes in parts of exactly `partSize` (the last one shorter). */
export async function* streamParts(stream: Readable | AsyncIterable<unknown>, partSize: number): AsyncGenerator<Buffer> {
  let pieces: Buffer[] = [];
  let have = 0;
  for await (const chunk of stream) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    while (have + buf.length >= partSize) {
      const take = partSize - have;
      pieces.push(buf.subarray(0, take));
      yield Buffer.concat(pieces, partSize);
      buf = buf.subarray(take);
      pieces = [];
      have = 0;
    }
    if (buf.length > 0) {
      pieces.push(buf);
      have += buf.length;
    }
  }
  if (have > 0) yield Buffer.concat(pieces, have);
}

/** Sends parts 1, 2, ... with at most `queueSize` in flight; stops at the first failure and throws it. */
export async function sendParts(
  parts: Iterable<RequestBody> | AsyncIterable<RequestBody>,
  queueSize: number,
  send: (partNumber: number, body: RequestBody) => Promise<void>,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let partNumber = 0;
  try {
    for await (const body of parts) {
      const p: Promise<void> = send(++partNumber, body).then(
        () => void inflight.delete(p),
        (err: unknown) => {
          inflight.delete(p);
          failure ??= { err };
        },
      );
      inflight.add(p);
      if (inflight.size >= queueSize) await Promise.race(inflight);
      if (failure) break;
    }
  } finally {
    // Also when reading the parts failed: nothing may still be sending once we return.
    await Promise.all(inflight);
  }
  if (failure) throw failure.err;
}
