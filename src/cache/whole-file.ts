// Small files (≤ smallFileBytes): one GET of the whole object, without a Range, when the file is opened;
// verified against its hash (content identities) and written into place in one go.
import { createHash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { BlockMap, roundUp } from './blocks.js';
import type { EntryRecord } from './entry-record.js';
import { OpenEntry, type EntryContext } from './entry.js';
import { CacheError, isNoSpaceErrno } from './errors.js';
import type { CacheSource } from './identity.js';

const EMPTY_SHA256 = createHash('sha256').digest('hex');

/**
 * Fetches `rec` whole from `source` into `file`. Where the cache has no room for it (or the write fails) the
 * entry holds the bytes in memory instead, served from there while open.
 */
export async function fetchWhole(ctx: EntryContext, rec: EntryRecord, source: CacheSource, file: string): Promise<OpenEntry> {
  const blocks = Math.ceil(rec.size / rec.blockSize);
  const { store, key, ifMatch, versionId } = source;
  const data = rec.size === 0 ? Buffer.alloc(0) : await ctx.queue.run('demand', () => store.read(key, { ifMatch, versionId }));
  if (data.length !== rec.size) {
    throw new CacheError('SizeMismatch', `${store.location}/${key} has ${data.length} bytes, the cache was told ${rec.size}`);
  }
  ctx.stats.counters.bytesFetched += data.length;
  if (rec.sha256) {
    const actual = rec.size === 0 ? EMPTY_SHA256 : createHash('sha256').update(data).digest('hex');
    if (actual !== rec.sha256) {
      const err = new CacheError('VerifyFailed', `${store.location}/${key} hashes to ${actual}, its manifest says ${rec.sha256}: not cached`);
      ctx.stats.report(err);
      throw err;
    }
  }
  const bytes = roundUp(data.length);
  const map = new BlockMap(blocks);
  if (!ctx.space.reserve(bytes)) {
    return new OpenEntry(ctx, rec, source, undefined, map, file, data);
  }
  // Straight into data/: the file has no index row until the flush has fdatasynced it, so a crash before
  // that leaves an orphan that startup removes. (A temp file and a rename cost three more syscalls per file.)
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'w+', 0o600);
    if (data.length > 0) await fh.writeFile(data);
  } catch (err) {
    ctx.space.release(bytes);
    await fh?.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    ctx.stats.report(
      isNoSpaceErrno(err)
        ? new CacheError('NoSpace', `the disk under the cache (${ctx.opts.dir}) is full: reading uncached`, { cause: err })
        : new CacheError('Io', `cannot write cache file ${file}: ${(err as Error).message}`, { cause: err }),
    );
    return new OpenEntry(ctx, rec, source, undefined, map, file, data);
  }
  map.markWritten(0, blocks);
  ctx.space.settle(rec, bytes);
  rec.complete = true; // verified above (content) or pinned by If-Match/VersionId (object)
  const entry = new OpenEntry(ctx, rec, source, fh, map, file);
  ctx.commit.markDirty(entry);
  // The first read, which typically follows at once, is served from memory.
  if (data.length > 0) ctx.chunks.retain(entry, { start: 0, end: data.length, b0: 0, b1: blocks, buf: data, pooled: false });
  return entry;
}
