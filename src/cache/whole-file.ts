// Small files (≤ smallFileBytes): one GET of the whole object, without a Range, when the file is opened (or
// prefetched), read straight into a pooled page-aligned buffer, verified against its hash (content
// identities) and written into place in one write. The entry is complete at once: the engine serves it from
// the file (passthrough), so its bytes are not kept in memory.
import { createHash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { BlockMap, roundUp } from './blocks.js';
import { writeAll } from './chunk-writer.js';
import type { EntryRecord } from './entry-record.js';
import { OpenEntry, type EntryContext } from './entry.js';
import { CacheError, isNoSpaceErrno } from './errors.js';
import { fetchInto } from './fetch-into.js';
import type { Priority } from './fetch-queue.js';
import type { CacheSource } from './identity.js';

const EMPTY_SHA256 = createHash('sha256').digest('hex');

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Fetches `rec` whole from `source` into `file`. Where the cache has no room for it (or the write fails) the
 * entry holds the bytes in memory instead, served from there while open.
 */
export async function fetchWhole(ctx: EntryContext, rec: EntryRecord, source: CacheSource, file: string, priority: Priority): Promise<OpenEntry> {
  if (rec.size === 0) return keep(ctx, rec, source, file, Buffer.alloc(0), 0);
  // The buffer is held until the bytes are on disk, so the fetch's budget covers the write too.
  return ctx.queue.run(priority, rec.size, async () => {
    const buf = ctx.chunks.takeBuffer(rec.size);
    const tier = ctx.tier?.entry(rec, source);
    try {
      if (tier) {
        await tier.fetch(undefined, buf);
        // The tier's CRCs matched but the hash does not: the origin's bytes instead, reported.
        if (tier.usedTier && rec.sha256 && sha256(buf.subarray(0, rec.size)) !== rec.sha256) {
          tier.rejected();
          await tier.fromOriginInto(undefined, buf);
        }
      } else {
        await fetchInto(source, undefined, buf);
      }
      ctx.stats.counters.bytesFetched += rec.size;
      const entry = await keep(ctx, rec, source, file, buf.subarray(0, rec.size), Date.now());
      if (tier) {
        entry.tier = tier;
        if (entry.fh) tier.complete(file);
        else tier.abandon();
      }
      return entry;
    } finally {
      ctx.chunks.giveBuffer(buf);
    }
  });
}

/**
 * Verifies the bytes (content identities) and writes them into place: the entry, complete. `confirmedAt`:
 * when a GET confirmed them (0 for an empty file, which needs no GET).
 */
async function keep(ctx: EntryContext, rec: EntryRecord, source: CacheSource, file: string, data: Buffer, confirmedAt: number): Promise<OpenEntry> {
  if (rec.sha256) {
    const actual = data.length === 0 ? EMPTY_SHA256 : sha256(data);
    if (actual !== rec.sha256) {
      const err = new CacheError('VerifyFailed', `${source.store.location}/${source.key} hashes to ${actual}, its manifest says ${rec.sha256}: not cached`);
      ctx.stats.report(err);
      throw err;
    }
  }
  const blocks = Math.ceil(rec.size / rec.blockSize);
  const map = new BlockMap(blocks);
  const bytes = roundUp(data.length);
  // Served from memory while open: a copy, since `data` lives in a pooled buffer.
  const confirmed = (entry: OpenEntry): OpenEntry => {
    entry.confirmedAt = confirmedAt;
    return entry;
  };
  const inMemory = () => confirmed(new OpenEntry(ctx, rec, source, undefined, map, file, Buffer.from(data)));
  if (!ctx.space.reserve(bytes)) return inMemory();
  // Straight into data/: the file has no index row until the flush has fdatasynced it, so a crash before
  // that leaves an orphan that startup removes. (A temp file and a rename cost three more syscalls per file.)
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'w+', 0o600);
    await writeAll(fh, data, 0, data.length, 0);
  } catch (err) {
    ctx.space.release(bytes);
    await fh?.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    ctx.stats.report(
      isNoSpaceErrno(err)
        ? new CacheError('NoSpace', `the disk under the cache (${ctx.opts.dir}) is full: reading uncached`, { cause: err })
        : new CacheError('Io', `cannot write cache file ${file}: ${(err as Error).message}`, { cause: err }),
    );
    return inMemory();
  }
  map.markWritten(0, blocks);
  ctx.space.settle(rec, bytes);
  rec.complete = true; // verified above (content) or pinned by If-Match/VersionId (object)
  const entry = confirmed(new OpenEntry(ctx, rec, source, fh, map, file));
  entry.writtenWhole = true;
  ctx.commit.markDirty(entry);
  return entry;
}
