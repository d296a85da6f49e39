// An in-memory ObjectStore for pure-logic unit tests of the cache (counting reads, optionally slow or
// failing). Integration tests use the real S3 server and the real local store instead.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ListPage, ObjectInfo, ObjectStore, ReadOptions, WriteBody } from '../../src/storage/object-store.js';
import { StorageError } from '../../src/storage/errors.js';

export class MemoryStore implements ObjectStore {
  readonly location = 'memory://test';
  readonly objects = new Map<string, Buffer>();
  /** Every read: key and range. */
  readonly reads: Array<{ key: string; start?: number; end?: number }> = [];
  /** Delay before each read resolves (ms), to make concurrency observable. */
  delayMs = 0;
  /** When set, reads of this key fail with this error. */
  failKey?: string;

  put(key: string, data: Buffer): string {
    this.objects.set(key, data);
    return createHash('sha256').update(data).digest('hex');
  }

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    this.reads.push({ key, start: opts.range?.start, end: opts.range?.end });
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (key === this.failKey) throw new StorageError('Unreachable', `injected failure for ${key}`, { key });
    const data = this.objects.get(key);
    if (!data) throw new StorageError('NotFound', `no such key ${key}`, { key });
    const start = opts.range?.start ?? 0;
    const end = opts.range?.end ?? data.length;
    return Buffer.from(data.subarray(start, end));
  }

  async stream(key: string, opts?: ReadOptions): Promise<Readable> {
    return Readable.from([await this.read(key, opts)]);
  }

  async head(key: string): Promise<ObjectInfo> {
    const data = this.objects.get(key);
    if (!data) throw new StorageError('NotFound', `no such key ${key}`, { key });
    return { key, size: data.length, etag: createHash('md5').update(data).digest('hex'), lastModified: new Date(0) };
  }

  async write(key: string, body: WriteBody): Promise<ObjectInfo> {
    if (!(Buffer.isBuffer(body) || typeof body === 'string')) throw new Error('MemoryStore.write: buffers only');
    this.objects.set(key, Buffer.from(body));
    return this.head(key);
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async *list(): AsyncIterable<ListPage> {
    yield { objects: await Promise.all([...this.objects.keys()].map((k) => this.head(k))), prefixes: [] };
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const data = this.objects.get(fromKey);
    if (!data) throw new StorageError('NotFound', `no such key ${fromKey}`, { key: fromKey });
    this.objects.set(toKey, data);
    return this.head(toKey);
  }
}
