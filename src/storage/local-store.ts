// ObjectStore over a local directory: the embedded default that needs no account.
//
// Layout: key "a/b/c" is stored as <root>/a.d/b.d/c.o. The suffixes keep "x" and "x/y" from colliding
// (a file and a directory may share a name in S3, not on a filesystem), and a key can never name anything
// outside the root: segments "", ".", ".." and NUL are refused.
// Each object file holds the content followed by a small trailer (JSON metadata with the content's MD5 as
// ETag, its length, a magic), written to <root>/.tmp and renamed into place: readers see the old object or
// the new one, never a mix, and a reader that opened a file keeps reading that one object (If-Match holds).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StorageError } from './errors.js';
import type {
  CopyOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  ReadOptions,
  WriteBody,
  WriteOptions,
} from './object-store.js';

const MAGIC = Buffer.from('GDSOBJ01');
const TAIL = 4 + MAGIC.length; // u32 metadata length + magic
const FILE_SUFFIX = '.o';
const DIR_SUFFIX = '.d';
const MAX_SEGMENT_BYTES = 255 - FILE_SUFFIX.length;
const MAX_KEY_BYTES = 1024;

interface Trailer {
  etag: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

interface Opened {
  fh: FileHandle;
  size: number;
  trailer: Trailer;
  mtime: Date;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export class LocalStore implements ObjectStore {
  readonly location: string;
  private readonly tmpDir: string;
  private swept = false;

  constructor(readonly root: string) {
    this.root = path.resolve(root);
    this.location = `file://${this.root}`;
    this.tmpDir = path.join(this.root, '.tmp');
  }

  private invalid(key: string, why: string): StorageError {
    return new StorageError('InvalidKey', `invalid key "${key}" for ${this.location}: ${why}`, {
      location: this.location,
      key,
    });
  }

  /** Key segments, validated: the only way a key becomes a path. */
  private segments(key: string, allowTrailingSlash = false): string[] {
    if (key.includes('\0')) throw this.invalid(key, 'contains NUL');
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw this.invalid(key, `longer than ${MAX_KEY_BYTES} bytes`);
    const parts = key.split('/');
    if (allowTrailingSlash && parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    for (const seg of parts) {
      if (seg === '' || seg === '.' || seg === '..') throw this.invalid(key, 'empty, "." or ".." path segment');
      if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) throw this.invalid(key, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    return parts;
  }

  private dirPath(dirSegs: string[]): string {
    return path.join(this.root, ...dirSegs.map((s) => s + DIR_SUFFIX));
  }

  private filePath(key: string): string {
    const segs = this.segments(key);
    const name = segs.pop()!;
    return path.join(this.dirPath(segs), name + FILE_SUFFIX);
  }

  private fsError(err: unknown, op: string, key?: string): StorageError {
    if (err instanceof StorageError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const what = key === undefined ? this.location : `"${key}" in ${this.location}`;
    const details = { location: this.location, key, cause: err };
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
        return new StorageError('NotFound', `${what} not found`, details);
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new StorageError('AccessDenied', `permission denied to ${op} ${what}: check the directory's owner and mode`, details);
      case 'ENOSPC':
      case 'EDQUOT':
        return new StorageError('NoSpace', `no space left to ${op} ${what}: free disk space`, details);
      case 'ENAMETOOLONG':
        return new StorageError('InvalidKey', `key too long for the filesystem: ${what}`, details);
      default:
        return new StorageError('Io', `cannot ${op} ${what}: ${code ?? String(err)}`, details);
    }
  }

  private async openObject(key: string): Promise<Opened> {
    const file = this.filePath(key);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw this.fsError(err, 'read', key);
    }
    try {
      const st = await fh.stat();
      const tail = Buffer.alloc(TAIL);
      if (st.size < TAIL) throw new Error('truncated');
      await fh.read(tail, 0, TAIL, st.size - TAIL);
      if (!tail.subarray(4).equals(MAGIC)) throw new Error('bad magic');
      const metaLen = tail.readUInt32BE(0);
      const size = st.size - TAIL - metaLen;
      if (size < 0) throw new Error('bad trailer');
      const meta = Buffer.alloc(metaLen);
      await fh.read(meta, 0, metaLen, size);
      return { fh, size, trailer: JSON.parse(meta.toString('utf8')) as Trailer, mtime: st.mtime };
    } catch (err) {
      await fh.close();
      if (err instanceof StorageError || (err as NodeJS.ErrnoException).code) throw this.fsError(err, 'read', key);
      throw new StorageError('Io', `"${key}" in ${this.location} is not a valid object file (${(err as Error).message})`, {
        location: this.location,
        key,
      });
    }
  }

  private info(key: string, o: Opened): ObjectInfo {
    const info: ObjectInfo = { key, size: o.size, etag: o.trailer.etag, lastModified: o.mtime };
    if (o.trailer.metadata && Object.keys(o.trailer.metadata).length > 0) info.metadata = o.trailer.metadata;
    if (o.trailer.contentType !== undefined) info.contentType = o.trailer.contentType;
    return info;
  }

  private noVersions(key: string): StorageError {
    return new StorageError('NotFound', `${this.location} keeps no object versions ("${key}")`, { location: this.location, key });
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectInfo> {
    if (opts.versionId !== undefined) throw this.noVersions(key);
    const o = await this.openObject(key);
    await o.fh.close();
    return this.info(key, o);
  }

  /** Opens the object and checks If-Match; returns the clamped [start, end) to read. */
  private async openForRead(key: string, opts: ReadOptions): Promise<{ o: Opened; start: number; end: number }> {
    if (opts.versionId !== undefined) throw this.noVersions(key);
    const o = await this.openObject(key);
    if (opts.ifMatch !== undefined && opts.ifMatch !== o.trailer.etag) {
      await o.fh.close();
      throw new StorageError('PreconditionFailed', `"${key}" in ${this.location} changed (ETag is no longer ${opts.ifMatch})`, {
        location: this.location,
        key,
      });
    }
    const start = Math.min(opts.range?.start ?? 0, o.size);
    const end = Math.max(start, Math.min(opts.range?.end ?? o.size, o.size));
    return { o, start, end };
  }

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    const { o, start, end } = await this.openForRead(key, opts);
    try {
      const buf = Buffer.alloc(end - start);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await o.fh.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return buf;
    } catch (err) {
      throw this.fsError(err, 'read', key);
    } finally {
      await o.fh.close();
    }
  }

  async readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    const range = opts.range;
    if (range && range.end - range.start > into.length) {
      throw new RangeError(`readInto: a ${range.end - range.start}-byte range does not fit in a ${into.length}-byte buffer`);
    }
    const { o, start, end } = await this.openForRead(key, opts);
    try {
      if (end - start > into.length) {
        throw new StorageError('InvalidRange', `"${key}" in ${this.location} is larger than the ${into.length}-byte buffer`, {
          location: this.location,
          key,
        });
      }
      let got = 0;
      while (got < end - start) {
        const { bytesRead } = await o.fh.read(into, got, end - start - got, start + got);
        if (bytesRead === 0) throw new StorageError('Io', `"${key}" in ${this.location} ended early while being read`, { location: this.location, key });
        got += bytesRead;
      }
      return got;
    } catch (err) {
      throw this.fsError(err, 'read', key);
    } finally {
      await o.fh.close();
    }
  }

  async stream(key: string, opts: ReadOptions = {}): Promise<Readable> {
    const { o, start, end } = await this.openForRead(key, opts);
    if (end === start) {
      await o.fh.close();
      return Readable.from([]);
    }
    return createReadStream('', { fd: o.fh, start, end: end - 1, autoClose: true, highWaterMark: 1024 * 1024 });
  }

  /** Removes temp files a crashed writer left behind (older than a day: never one still being written). */
  private async sweepTmp(): Promise<void> {
    const cutoff = Date.now() - 24 * 3600 * 1000;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const file = path.join(this.tmpDir, name);
      const st = await lstat(file).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) await unlink(file).catch(() => undefined);
    }
  }

  async write(key: string, body: WriteBody, opts: WriteOptions = {}): Promise<ObjectInfo> {
    const final = this.filePath(key);
    const tmp = path.join(this.tmpDir, `${randomBytes(8).toString('hex')}`);
    const md5 = createHash('md5');
    let size = 0;
    try {
      await mkdir(this.tmpDir, { recursive: true });
      if (!this.swept) {
        this.swept = true;
        void this.sweepTmp();
      }
      const fh = await open(tmp, 'wx');
      try {
        const put = async (chunk: Uint8Array) => {
          opts.signal?.throwIfAborted();
          md5.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off, size + off)).bytesWritten;
          size += chunk.length;
          opts.onProgress?.(size);
        };
        if (typeof body === 'string') await put(Buffer.from(body));
        else if (body instanceof Uint8Array) await put(body);
        else {
          const src = 'path' in body ? createReadStream(body.path, { highWaterMark: 1024 * 1024 }) : body.stream;
          for await (const chunk of src) await put(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array));
        }
        const trailer: Trailer = { etag: md5.digest('hex'), contentType: opts.contentType, metadata: opts.metadata };
        const meta = Buffer.from(JSON.stringify(trailer));
        const tail = Buffer.alloc(TAIL);
        tail.writeUInt32BE(meta.length, 0);
        MAGIC.copy(tail, 4);
        await fh.write(Buffer.concat([meta, tail]), 0, meta.length + TAIL, size);
        // Durable before visible: after a crash a key holds the old object or the new one, never a torn file.
        await fh.sync();
        await fh.close();
        await this.publish(tmp, final, key, opts.ifNoneMatch === '*');
        return { key, size, etag: trailer.etag, lastModified: new Date() };
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (err instanceof StorageError) throw err;
      if ((err as Error).name === 'AbortError') throw err;
      throw this.fsError(err, 'write', key);
    }
  }

  /** Moves a finished temp file into place (rename, or link for create-only), creating parent dirs. */
  private async publish(tmp: string, final: string, key: string, createOnly: boolean): Promise<void> {
    // A concurrent delete may remove an empty parent between our mkdir and rename: retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        if (createOnly) {
          await link(tmp, final);
          await unlink(tmp);
        } else {
          await rename(tmp, final);
        }
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          throw new StorageError('PreconditionFailed', `"${key}" already exists in ${this.location}`, {
            location: this.location,
            key,
          });
        }
        if (code !== 'ENOENT' || attempt >= 5) throw err;
        await mkdir(path.dirname(final), { recursive: true });
      }
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.filePath(key);
    try {
      await unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw this.fsError(err, 'delete', key);
    }
    // Drop now-empty parent directories so that listings show no empty prefixes (as S3 would).
    let dir = path.dirname(file);
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async copy(fromKey: string, toKey: string, opts: CopyOptions = {}): Promise<ObjectInfo> {
    if (opts.metadata !== undefined || opts.contentType !== undefined) {
      // New metadata means a new trailer: the content goes through write() (same bytes, same ETag).
      const content = await this.stream(fromKey);
      await this.write(toKey, { stream: content }, { metadata: opts.metadata, contentType: opts.contentType });
      return this.head(toKey);
    }
    const src = this.filePath(fromKey);
    const final = this.filePath(toKey);
    const tmp = path.join(this.tmpDir, randomBytes(8).toString('hex'));
    try {
      await mkdir(this.tmpDir, { recursive: true });
      // The object file (content + trailer) is copied whole: same bytes, same ETag.
      await copyFile(src, tmp);
      await this.publish(tmp, final, toKey, false);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw this.fsError(err, 'copy', fromKey);
    }
    return this.head(toKey);
  }

  /** Children of a directory as [segment, isDir], in S3 (UTF-8 byte) key order. */
  private async children(dirSegs: string[]): Promise<Array<{ seg: string; isDir: boolean }>> {
    let names: string[];
    try {
      names = await readdir(this.dirPath(dirSegs));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw this.fsError(err, 'list', dirSegs.join('/'));
    }
    const out: Array<{ seg: string; isDir: boolean; sortKey: string }> = [];
    for (const name of names) {
      if (name.endsWith(FILE_SUFFIX)) {
        const seg = name.slice(0, -FILE_SUFFIX.length);
        out.push({ seg, isDir: false, sortKey: seg });
      } else if (name.endsWith(DIR_SUFFIX)) {
        const seg = name.slice(0, -DIR_SUFFIX.length);
        out.push({ seg, isDir: true, sortKey: `${seg}/` });
      }
    }
    out.sort((a, b) => byteCompare(a.sortKey, b.sortKey));
    return out;
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListPage> {
    if (opts.delimiter !== undefined && opts.delimiter !== '/') {
      throw new StorageError('InvalidKey', `${this.location} lists with delimiter "/" only`, { location: this.location });
    }
    const pageSize = Math.max(1, opts.maxKeys ?? 1000);
    const slash = prefix.lastIndexOf('/');
    const dirKey = prefix.slice(0, slash + 1);
    const partial = prefix.slice(slash + 1);
    let dirSegs: string[];
    try {
      dirSegs = dirKey === '' ? [] : this.segments(dirKey, true);
    } catch {
      return; // a prefix no valid key can have
    }
    let page: ListPage = { objects: [], prefixes: [] };
    for await (const item of this.walk(dirSegs, dirKey, partial, opts.startAfter, opts.delimiter === '/')) {
      opts.signal?.throwIfAborted();
      if (typeof item === 'string') page.prefixes.push(item);
      else page.objects.push(item);
      if (page.objects.length + page.prefixes.length >= pageSize) {
        yield page;
        page = { objects: [], prefixes: [] };
      }
    }
    if (page.objects.length + page.prefixes.length > 0) yield page;
  }

  /** Depth-first walk in key order: objects (and, when delimited, sub-prefixes instead of their contents). */
  private async *walk(
    segs: string[],
    keyPrefix: string,
    filter: string,
    after: string | undefined,
    delimited: boolean,
  ): AsyncGenerator<ObjectInfo | string> {
    for (const child of await this.children(segs)) {
      if (!child.seg.startsWith(filter)) continue;
      const key = keyPrefix + child.seg;
      if (child.isDir) {
        const sub = `${key}/`;
        // Skip subtrees that sort entirely at or before startAfter.
        if (after !== undefined && byteCompare(sub, after) <= 0 && !after.startsWith(sub)) continue;
        if (delimited) {
          if (after === undefined || byteCompare(sub, after) > 0) yield sub;
        } else {
          yield* this.walk([...segs, child.seg], sub, '', after, false);
        }
      } else {
        if (after !== undefined && byteCompare(key, after) <= 0) continue;
        try {
          const o = await this.openObject(key);
          await o.fh.close();
          yield this.info(key, o);
        } catch (err) {
          if (err instanceof StorageError && err.code === 'NotFound') continue; // deleted meanwhile
          throw err;
        }
      }
    }
  }
}
