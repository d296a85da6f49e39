// A file being written to a bucket: its bytes live in a local file under the cache's staging directory
// (counted in the cache bound) until the bucket holds them. Writes bump a generation; an upload records
// the generation it sent, so "dirty" is simply generation > uploaded and repeated writes coalesce into
// whichever upload comes next. Shared by every handle open on the same object.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { EagerUpload } from './eager-upload.js';

/** User metadata and content type an upload carries. */
export interface ObjectAttributes {
  metadata?: Record<string, string>;
  contentType?: string;
}

/** Whether two sets of attributes would make the same object (metadata key order aside). */
export function sameAttributes(a: ObjectAttributes | undefined, b: ObjectAttributes | undefined): boolean {
  if (a?.contentType !== b?.contentType) return false;
  const x = a?.metadata ?? {};
  const y = b?.metadata ?? {};
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}

export class StagedFile {
  /** Incremented by every change of the bytes. */
  generation = 0;
  /** The generation the bucket holds. */
  uploadedGeneration = 0;
  mtimeMs = Date.now();
  /** Open handles (read or write) on this file. */
  refs = 0;
  /** Its name is gone (unlinked, replaced): nothing more is uploaded; the local file goes with the last handle. */
  abandoned = false;
  /** Upload bookkeeping (upload-queue.ts). */
  inflight: Promise<void> | undefined;
  attempts = 0;
  lastError: string | undefined;
  /** The target refuses this file for good (a committed dataset version): every later sync fails with this. */
  refused: Error | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  /** Parts of these bytes already on their way to the bucket (eager-upload.ts), told of every change. */
  eager: EagerUpload | undefined;
  /**
   * What the object carries besides its bytes, sent with every upload of them (the PutObject or the
   * multipart create). Opaque here; its owner (a bucket namespace) keeps it current, and a change of it alone
   * makes the file no dirtier: the owner sends such a change itself when no upload is due.
   */
  attributes: ObjectAttributes = {};

  /** The data file opened O_DIRECT (readAligned), null where the filesystem refuses it. */
  private direct: Promise<FileHandle | null> | undefined;

  private constructor(
    /** Store-relative key the bytes go to (changes on rename). */
    public key: string,
    readonly id: string,
    readonly dataPath: string,
    private readonly fh: FileHandle,
    private sizeBytes: number,
  ) {}

  /** A new empty staging file for `key` (create, O_TRUNC). */
  static async create(dir: string, key: string, id = randomBytes(12).toString('hex')): Promise<StagedFile> {
    const dataPath = path.join(dir, `${id}.data`);
    const fh = await open(dataPath, 'w+', 0o600);
    return new StagedFile(key, id, dataPath, fh, 0);
  }

  /** A staging file holding an object's current bytes (opening an existing object for writing). */
  static async fromStream(dir: string, key: string, body: Readable): Promise<StagedFile> {
    const f = await StagedFile.create(dir, key);
    try {
      // Not fh.createWriteStream(): a stream that never closes its FileHandle keeps it referenced, and
      // FileHandle.close() then waits forever.
      let offset = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        await f.writeAt(offset, chunk);
        offset += chunk.length;
      }
      f.sizeBytes = offset;
      return f;
    } catch (err) {
      await f.remove();
      throw err;
    }
  }

  /** Reopens a staging file left by an earlier run (its journal said it was pending). */
  static async reopen(dir: string, key: string, id: string): Promise<StagedFile> {
    const dataPath = path.join(dir, `${id}.data`);
    const fh = await open(dataPath, 'r+');
    const f = new StagedFile(key, id, dataPath, fh, (await fh.stat()).size);
    f.generation = 1; // never confirmed in the bucket
    return f;
  }

  get size(): number {
    return this.sizeBytes;
  }

  /** The staging file's descriptor (the FUSE engine lands writes in it: wrote()). */
  get fd(): number {
    return this.fh.fd;
  }

  get dirty(): boolean {
    return !this.abandoned && this.generation > this.uploadedGeneration;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.sizeBytes - offset));
    if (n === 0) return Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, offset);
    return buf.subarray(0, bytesRead);
  }

  /**
   * Fills `into` (page-aligned, a whole number of pages) with the bytes from `offset` (page-aligned), around
   * the page cache where the filesystem allows: the engine writes whole pages that way too, and reading them
   * back through the page cache would fill as many fresh pages as it saved. Returns the bytes read.
   */
  async readAligned(offset: number, into: Buffer): Promise<number> {
    this.direct ??= open(this.dataPath, fsConstants.O_RDONLY | fsConstants.O_DIRECT).catch(() => null);
    const fh = (await this.direct) ?? this.fh;
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await fh.read(into, done, into.length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return Math.min(done, Math.max(0, this.sizeBytes - offset));
  }

  async write(offset: number, data: Buffer): Promise<number> {
    await this.writeAt(offset, data);
    this.sizeBytes = Math.max(this.sizeBytes, offset + data.length);
    this.changed(offset);
    return data.length;
  }

  /** `length` bytes at `offset` were written to the staging file by someone else (the engine's C write path). */
  wrote(offset: number, length: number): void {
    this.sizeBytes = Math.max(this.sizeBytes, offset + length);
    this.changed(offset);
  }

  private async writeAt(offset: number, data: Buffer): Promise<void> {
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async truncate(size: number): Promise<void> {
    if (size === this.sizeBytes && this.generation > 0) return;
    await this.fh.truncate(size);
    this.sizeBytes = size;
    this.changed(size);
  }

  /** The bytes from `offset` on changed. */
  private changed(offset: number): void {
    this.generation++;
    this.mtimeMs = Date.now();
    this.eager?.changed(offset, this.sizeBytes);
  }

  /** Stops sending parts early and aborts what was sent (the bytes will not go there, or not that way). */
  cancelEagerUpload(): void {
    void this.eager?.cancel();
    this.eager = undefined;
  }

  /** Closes the local file, keeping it on disk (journaled data is picked up by the next run). */
  async closeFile(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.cancelEagerUpload();
    const direct = this.direct;
    this.direct = undefined;
    await Promise.all([this.fh.close().catch(() => undefined), direct?.then((fh) => fh?.close()).catch(() => undefined)]);
  }

  async remove(): Promise<void> {
    await this.closeFile();
    await rm(this.dataPath, { force: true });
  }
}
