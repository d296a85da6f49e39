// One GET of an identity's bytes straight into a buffer (ObjectStore.readInto: the socket reads into it, no
// stream, no copy): every byte asked for, or an error. A short or long body is never a success, so it is
// never cached; If-Match / VersionId ride on every request, so two versions never mix.
import { isStorageError, StorageError } from '../storage/errors.js';
import type { ByteRange, ReadOptions } from '../storage/object-store.js';
import { CacheError } from './errors.js';
import type { CacheSource } from './identity.js';

/** Reads `range` of the source's object, or the whole object without one, into the start of `into`. */
export async function fetchInto(source: CacheSource, range: ByteRange | undefined, into: Buffer): Promise<void> {
  const { store, key, ifMatch, versionId } = source;
  const want = range ? range.end - range.start : source.size;
  const what = range ? `bytes ${range.start}-${range.end}` : `${want} bytes`;
  let got: number;
  try {
    got = await readInto(source, { range, ifMatch, versionId }, into.subarray(0, want));
  } catch (err) {
    // Without a range the buffer holds exactly the size we were told: a larger object does not fit.
    if (!range && isStorageError(err, 'InvalidRange')) got = want + 1;
    else if (isStorageError(err) || err instanceof CacheError) throw err;
    else throw new CacheError('Io', `${store.location}/${key}: reading ${what}: ${(err as Error).message}`, { cause: err });
  }
  if (got !== want) {
    throw new CacheError(
      'SizeMismatch',
      `${store.location}/${key}: asked for ${what}, got ${got > want ? 'more' : `${got} bytes`} (the object is not the size the cache was told)`,
    );
  }
}

/** store.readInto where the store has it; else a read and one copy (stores written before readInto). */
async function readInto(source: CacheSource, opts: ReadOptions, into: Buffer): Promise<number> {
  const store = source.store;
  if (store.readInto) return store.readInto(source.key, opts, into);
  const data = await store.read(source.key, opts);
  return data.length > into.length ? into.length + 1 : data.copy(into);
}

/** Confirms with a HEAD that the source's object still has the ETag it is fetched with. */
export async function confirmUnchanged(source: CacheSource): Promise<void> {
  const { store, key, ifMatch } = source;
  const info = await store.head(key);
  if (info.etag !== ifMatch) {
    throw new StorageError('PreconditionFailed', `${store.location}/${key} changed: its ETag is now ${info.etag}, not ${ifMatch}`, {
      location: store.location,
      key,
    });
  }
}
