// Writes entries fetched from the origin to the shared tier, in the background: a bounded queue, a few
// uploads at a time, one part buffer each, optionally paced to a byte rate, so a reader never waits on it
// and the daemon's memory and uplink stay bounded. The bytes come from the cache's own data file, read
// only while the entry is still the complete one the cache lists (eviction could otherwise hand us a new,
// partly filled file at the same path); content entries are hashed on the way and never sent when wrong.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ObjectStore } from '../storage/object-store.js';
import type { EntryRecord } from './entry-record.js';
import { blockCrcs, encodeTrailer, TIER_BLOCK } from './tier-object.js';

export interface TierUploadJob {
  rec: EntryRecord;
  file: string;
  key: string;
  /** A lease this node holds for the key: removed once the upload ends, however it ends. */
  lease?: string;
}

export interface TierUploadOptions {
  /** Uploads at a time (each holds one part buffer). */
  concurrency: number;
  /** Bytes per multipart part (S3: ≥ 5 MiB); smaller entries go in one PUT. A multiple of TIER_BLOCK. */
  partBytes: number;
  /** Upload rate cap for the whole tier, bytes/s; 0 = none. */
  bytesPerSecond: number;
  /** Jobs waiting beyond this are dropped (counted): the tier is a cache, a missed upload costs a refetch. */
  maxQueued: number;
}

export interface TierUploadHooks {
  /** Whether `rec` is still the complete entry the cache lists (its data file is the one to read). */
  isCurrent(rec: EntryRecord): boolean;
  /** An upload failed: tell the operator (rate-limited by the caller). */
  failed(err: Error): void;
  counters: { uploads: number; bytesUploaded: number; uploadsDropped: number; uploadsFailed: number };
}

export class TierUploads {
  private readonly queue: TierUploadJob[] = [];
  private readonly queuedKeys = new Set<string>();
  private running = 0;
  private readonly idle = new Set<() => void>();
  /** Pacing: when the bytes sent so far may all have gone at the configured rate. */
  private paceAt = 0;
  private closed = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: TierUploadOptions,
    private readonly hooks: TierUploadHooks,
  ) {}

  enqueue(job: TierUploadJob): void {
    if (this.closed || this.queuedKeys.has(job.key)) return void this.releaseLease(job);
    if (this.queue.length >= this.opts.maxQueued) {
      this.hooks.counters.uploadsDropped++;
      return void this.releaseLease(job);
    }
    // Other nodes wait on a leased entry's upload: it goes first.
    if (job.lease) this.queue.unshift(job);
    else this.queue.push(job);
    this.queuedKeys.add(job.key);
    this.pump();
  }

  /** Resolves once nothing is queued or uploading (tests, benchmarks, shutdown). */
  drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Drops what is queued (their leases go); uploads in flight finish. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) await this.releaseLease(job);
    this.queuedKeys.clear();
    await this.drained();
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      this.upload(job)
        .catch((err: unknown) => {
          this.hooks.counters.uploadsFailed++;
          this.hooks.failed(err as Error);
        })
        .finally(async () => {
          this.queuedKeys.delete(job.key);
          await this.releaseLease(job);
          this.running--;
          this.pump();
          if (this.running === 0 && this.queue.length === 0) {
            for (const done of this.idle) done();
            this.idle.clear();
          }
        });
    }
  }

  private async releaseLease(job: TierUploadJob): Promise<void> {
    if (job.lease) await this.store.delete(job.lease).catch(() => undefined);
  }

  private async upload(job: TierUploadJob): Promise<void> {
    const { rec } = job;
    if (!this.hooks.isCurrent(rec)) return;
    let fh: FileHandle;
    try {
      fh = await open(job.file, 'r');
    } catch {
      return; // evicted meanwhile
    }
    try {
      // Opened while listed and complete: this descriptor holds the complete bytes even if evicted now.
      if (!this.hooks.isCurrent(rec)) return;
      const size = rec.size;
      const crcs = new Uint32Array(Math.ceil(size / TIER_BLOCK));
      const hash = rec.sha256 ? createHash('sha256') : undefined;
      const metadata = { 'gradient-size': String(size) };
      const readPart = async (at: number, length: number): Promise<Buffer> => {
        const buf = Buffer.allocUnsafe(length);
        for (let got = 0; got < length; ) {
          const { bytesRead } = await fh.read(buf, got, length - got, at + got);
          if (bytesRead === 0) throw new Error(`cache file ${job.file} is shorter than its entry`);
          got += bytesRead;
        }
        blockCrcs(buf, at / TIER_BLOCK, crcs);
        hash?.update(buf);
        return buf;
      };
      const checkHash = (): void => {
        const actual = hash?.digest('hex');
        if (actual !== undefined && actual !== rec.sha256) throw new Error(`cache file ${job.file} does not hash to ${rec.sha256}: not uploaded`);
      };
      if (size <= this.opts.partBytes || !this.store.startMultipart) {
        const data = await readPart(0, size);
        checkHash();
        await this.pace(size);
        await this.store.write(job.key, Buffer.concat([data, encodeTrailer(size, crcs)]), { metadata });
      } else {
        const mp = await this.store.startMultipart(job.key, { metadata });
        try {
          let part = 1;
          for (let at = 0; at < size; at += this.opts.partBytes, part++) {
            const length = Math.min(this.opts.partBytes, size - at);
            let body = await readPart(at, length);
            if (at + length === size) {
              checkHash();
              body = Buffer.concat([body, encodeTrailer(size, crcs)]);
            }
            await this.pace(body.length);
            await mp.uploadPart(part, body);
          }
          await mp.complete();
        } catch (err) {
          await mp.abort().catch(() => undefined);
          throw err;
        }
      }
      this.hooks.counters.uploads++;
      this.hooks.counters.bytesUploaded += size;
    } finally {
      await fh.close();
    }
  }

  /** Waits until `bytes` more fit under the rate cap. */
  private async pace(bytes: number): Promise<void> {
    if (this.opts.bytesPerSecond <= 0) return;
    const now = Date.now();
    this.paceAt = Math.max(this.paceAt, now) + (bytes / this.opts.bytesPerSecond) * 1000;
    const wait = this.paceAt - now - (bytes / this.opts.bytesPerSecond) * 1000;
    if (wait > 0) await sleep(wait);
  }
}
