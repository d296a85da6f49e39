// Wraps a real ObjectStore and records every read, so tests can count GETs (single-flight, sharing, reuse).
import type { Readable } from 'node:stream';
import type { ListOptions, ListPage, ObjectInfo, ObjectStore, ReadOptions, WriteBody, WriteOptions } from '../../src/storage/object-store.js';

export class CountingStore implements ObjectStore {
  readonly reads: Array<{ key: string; start?: number; end?: number }> = [];

  constructor(readonly inner: ObjectStore) {}

  get location(): string {
    return this.inner.location;
  }

  readsOf(key: string): number {
    return this.reads.filter((r) => r.key === key).length;
  }

  bytesRead(): number {
    return this.reads.reduce((n, r) => n + (r.end !== undefined && r.start !== undefined ? r.end - r.start : 0), 0);
  }

  read(key: string, opts?: ReadOptions): Promise<Buffer> {
    this.reads.push({ key, start: opts?.range?.start, end: opts?.range?.end });
    return this.inner.read(key, opts);
  }
  readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    this.reads.push({ key, start: opts.range?.start, end: opts.range?.end });
    return this.inner.readInto!(key, opts, into);
  }
  stream(key: string, opts?: ReadOptions): Promise<Readable> {
    this.reads.push({ key, start: opts?.range?.start, end: opts?.range?.end });
    return this.inner.stream(key, opts);
  }
  head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectInfo> {
    return this.inner.head(key, opts);
  }
  write(key: string, body: WriteBody, opts?: WriteOptions): Promise<ObjectInfo> {
    return this.inner.write(key, body, opts);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListPage> {
    return this.inner.list(prefix, opts);
  }
  copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    return this.inner.copy(fromKey, toKey);
  }
}
