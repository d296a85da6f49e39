// Writes a fetched chunk into its entry's data file, in whole pages with O_DIRECT straight from the chunk's
// page-aligned buffer: buffered writes (filling fresh page-cache pages) cost more CPU than the download
// itself, 1.2–3.7 s of system time per GiB against 0.1 s. The unaligned tail of the file, and everything on a
// filesystem that opens with O_DIRECT but refuses the write, go through the ordinary descriptor. Durability is
// the group commit's: its fdatasync comes before the blocks are recorded.
import type { FileHandle } from 'node:fs/promises';
import { alignDown } from '../memory/index.js';
import type { Chunk } from './retained-chunks.js';

/** How an entry's data file takes direct writes (an open entry). */
export interface DirectWrites {
  /** The data file opened with O_DIRECT, where the filesystem allows it. */
  readonly direct: FileHandle | undefined;
  /** Set once the filesystem refused an O_DIRECT write: the page cache from then on. */
  directRefused: boolean;
}

/** Writes bytes [chunk.start, chunk.end) from the chunk's buffer at their own offsets of the data file `fh`. */
export async function writeChunk(file: DirectWrites, fh: FileHandle, chunk: Chunk): Promise<void> {
  const length = chunk.end - chunk.start;
  const head = alignDown(length);
  let written = 0;
  const direct = file.directRefused ? undefined : file.direct;
  if (direct && head > 0) {
    try {
      await writeAll(direct, chunk.buf, 0, head, chunk.start);
      written = head;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      file.directRefused = true;
    }
  }
  if (written < length) await writeAll(fh, chunk.buf, written, length - written, chunk.start + written);
}

export async function writeAll(fh: FileHandle, buf: Buffer, offset: number, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
    done += bytesWritten;
  }
}
