// What the in-process filesystem tests assert on: the errno a call failed with, and a staged open file.
import type { OpenFile } from '../../src/fs/bucket/namespace.js';
import { FsError } from '../../src/fuse/errors.js';
import type { StagedFile } from '../../src/upload/index.js';

/** The errno code (EROFS, ENOENT, …) `p` rejected with; throws if it resolved or failed with anything else. */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FsError)) throw new Error(`expected an FsError, got ${String(err)}`);
  return err.code;
}

/** The staged file of an open file being written; throws for a read-only one. */
export function stagedFile(f: OpenFile): StagedFile {
  if (f.kind !== 'staged') throw new Error('not a staged file');
  return f.file;
}
