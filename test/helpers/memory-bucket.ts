// A bucket in memory for fast tests of bucket views: a MemoryStore that counts requests, an ObjectCache that
// reads straight from the store (If-Match on every read, as the real cache fetches), and a staging directory.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ObjectCache } from '../../src/fs/content.js';
import { StorageError } from '../../src/storage/errors.js';
import { MemoryStore } from '../../src/storage/memory-store.js';
import type { CopyOptions, ListOptions, ListPage, ObjectInfo, ReadOptions, WriteBody, WriteOptions } from '../../src/storage/object-store.js';
import { DaemonMemory } from '../../src/memory/index.js';
import { Uploader } from '../../src/upload/index.js';

export class CountingMemoryStore extends MemoryStore {
  readonly requests: string[] = [];

  override head(key: string, opts?: { versionId?: string }): Promise<ObjectInfo> {
    this.requests.push(`HEAD ${key}`);
    return super.head(key, opts);
  }

  override list(prefix: string, opts?: ListOptions): AsyncIterable<ListPage> {
    this.requests.push(`LIST ${prefix}`);
    return super.list(prefix, opts);
  }

  override read(key: string, opts?: ReadOptions): Promise<Buffer> {
    this.requests.push(`GET ${key}`);
    return super.read(key, opts);
  }

  override readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    this.requests.push(`GET ${key}`);
    return super.readInto(key, opts, into);
  }

  override write(key: string, body: WriteBody, opts?: WriteOptions): Promise<ObjectInfo> {
    this.requests.push(`PUT ${key}`);
    return super.write(key, body, opts);
  }

  override copy(from: string, to: string, opts?: CopyOptions): Promise<ObjectInfo> {
    this.requests.push(`COPY ${from} ${to}`);
    return super.copy(from, to, opts);
  }

  /** User metadata and content type of a key (not counted as a request). */
  async attributes(key: string): Promise<{ metadata?: Record<string, string>; contentType?: string }> {
    const { metadata, contentType } = await super.head(key);
    return { ...(metadata ? { metadata } : {}), ...(contentType !== undefined ? { contentType } : {}) };
  }

  /** The object's bytes as text (not counted as a request). */
  async text(key: string): Promise<string> {
    return (await super.read(key)).toString();
  }

  /** Whether the bucket holds the key (not counted as a request). */
  async has(key: string): Promise<boolean> {
    return super.head(key).then(
      () => true,
      () => false,
    );
  }
}

/**
 * Reads every range from the store with If-Match, as a cache fill does; keeps nothing. An ETag to validate is
 * confirmed with a HEAD at open, as the cache does for a file it does not fetch at open.
 */
export const storeReadingCache: ObjectCache = {
  async open(_identity, source) {
    if (source.confirmSince !== undefined && (await source.store.head(source.key)).etag !== source.ifMatch) {
      throw new StorageError('PreconditionFailed', `${source.key} changed`, { key: source.key });
    }
    return {
      read: (offset, length) =>
        source.store.read(source.key, {
          range: { start: offset, end: Math.min(source.size, offset + length) },
          ifMatch: source.ifMatch,
          ...(source.versionId ? { versionId: source.versionId } : {}),
        }),
      completePath: () => undefined,
      close: () => undefined,
    };
  },
};

export interface MemoryBucket {
  store: CountingMemoryStore;
  uploader: Uploader;
  stagingDir: string;
  /** Files left in the staging directory. */
  staged(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function memoryBucket(): Promise<MemoryBucket> {
  const stagingDir = await mkdtemp(path.join(tmpdir(), 'gd-mstaging-'));
  return {
    store: new CountingMemoryStore(),
    uploader: new Uploader({ stagingDir, memory: new DaemonMemory() }),
    stagingDir,
    staged: async () => (await readdir(stagingDir)).sort(),
    cleanup: () => rm(stagingDir, { recursive: true, force: true }),
  };
}
