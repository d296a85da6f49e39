// ObjectStore in memory, for fast in-process tests: behaves as an S3 bucket does where callers can tell.
// ETags are the MD5 of the bytes ("md5-of-part-md5s-N" after a multipart upload), keys list in UTF-8 byte
// order, a delimited listing rolls keys up into common prefixes, a page holds at most `maxKeys` objects and
// prefixes together, and there is always at least one page. Reads honour ranges, If-Match and (on a
// versioned store) version ids; writes honour If-None-Match: *. A multipart upload is invisible until it
// completes, and every part but the last must be at least 5 MiB.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { StorageError } from './errors.js';
import type {
  ListOptions,
  ListPage,
  MultipartOptions,
  MultipartUpload,
  CopyOptions,
  ObjectInfo,
  ObjectStore,
  ReadOptions,
  WriteBody,
  WriteOptions,
} from './object-store.js';

export interface MemoryStoreOptions {
  /** Names the store in its location (memory://<name>/). */
  name?: string;
  /** Keep every version, readable by version id (as a bucket with versioning enabled). */
  versioned?: boolean;
}

interface StoredObject {
  key: string;
  body: Buffer;
  etag: string;
  lastModified: Date;
  versionId?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** S3's limit on a key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
const MAX_PAGE = 1000;
const STREAM_CHUNK = 64 * 1024;

/**
 * Orders keys as S3 does, by UTF-8 bytes, which is code point order. JavaScript compares UTF-16 code units:
 * the same order except that surrogates (astral code points) sort below U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy && (x >= 0xe000 || y >= 0xe000)) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

export class MemoryStore implements ObjectStore {
  readonly location: string;
  private readonly objects = new Map<string, StoredObject>();
  /** Every version written, by version id (versioned stores only). */
  private readonly versions = new Map<string, StoredObject>();
  /** Keys in S3 order, rebuilt on the first listing after the set of keys changed. */
  private sorted: string[] | undefined;
  private readonly uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();

  constructor(private readonly opts: MemoryStoreOptions = {}) {
    this.location = `memory://${opts.name ?? 'bucket'}/`;
  }

  private error(code: StorageError['code'], key: string | undefined, message: string): StorageError {
    return new StorageError(code, `${key === undefined ? '' : `"${key}" in `}${this.location}: ${message}`, { location: this.location, key });
  }

  invalidKeyReason(key: string): string | undefined {
    const bytes = Buffer.byteLength(key);
    return bytes > MAX_KEY_BYTES ? `the object key would be ${bytes} bytes long; S3 allows ${MAX_KEY_BYTES}` : undefined;
  }

  private checkKey(key: string): void {
    if (key === '' || key.startsWith('/')) throw this.error('InvalidKey', key, 'keys are relative and non-empty');
    const why = this.invalidKeyReason(key);
    if (why) throw this.error('InvalidKey', key, why);
  }

  private find(key: string, versionId: string | undefined): StoredObject {
    this.checkKey(key);
    const o = versionId === undefined ? this.objects.get(key) : this.versions.get(versionId);
    if (!o || o.key !== key) throw this.error('NotFound', key, versionId === undefined ? 'not found' : `no version ${versionId}`);
    return o;
  }

  private info(o: StoredObject): ObjectInfo {
    const info: ObjectInfo = { key: o.key, size: o.body.length, etag: o.etag, lastModified: o.lastModified };
    if (o.versionId !== undefined) info.versionId = o.versionId;
    if (o.metadata !== undefined && Object.keys(o.metadata).length > 0) info.metadata = { ...o.metadata };
    if (o.contentType !== undefined) info.contentType = o.contentType;
    return info;
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectInfo> {
    opts.signal?.throwIfAborted();
    return this.info(this.find(key, opts.versionId));
  }

  /** The bytes a read returns: the range clamped to the object, after If-Match. */
  private bytes(key: string, opts: ReadOptions): Buffer {
    opts.signal?.throwIfAborted();
    const o = this.find(key, opts.versionId);
    if (opts.ifMatch !== undefined && opts.ifMatch !== o.etag) {
      throw this.error('PreconditionFailed', key, `changed (ETag is no longer ${opts.ifMatch})`);
    }
    const start = Math.min(opts.range?.start ?? 0, o.body.length);
    const end = Math.max(start, Math.min(opts.range?.end ?? o.body.length, o.body.length));
    return o.body.subarray(start, end);
  }

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    return Buffer.from(this.bytes(key, opts)); // a copy: the caller may change it
  }

  async readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    const range = opts.range;
    if (range && range.end - range.start > into.length) {
      throw new RangeError(`readInto: a ${range.end - range.start}-byte range does not fit in a ${into.length}-byte buffer`);
    }
    const bytes = this.bytes(key, opts);
    if (bytes.length > into.length) throw this.error('InvalidRange', key, `larger than the ${into.length}-byte buffer`);
    return bytes.copy(into, 0);
  }

  async stream(key: string, opts: ReadOptions = {}): Promise<Readable> {
    const bytes = this.bytes(key, opts);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += STREAM_CHUNK) chunks.push(Buffer.from(bytes.subarray(at, at + STREAM_CHUNK)));
    return Readable.from(chunks);
  }

  async write(key: string, body: WriteBody, opts: WriteOptions = {}): Promise<ObjectInfo> {
    this.checkKey(key);
    opts.signal?.throwIfAborted();
    const chunks: Buffer[] = [];
    let size = 0;
    const take = (chunk: Uint8Array | string) => {
      opts.signal?.throwIfAborted();
      const b = Buffer.from(typeof chunk === 'string' ? Buffer.from(chunk) : chunk); // a copy
      chunks.push(b);
      size += b.length;
      opts.onProgress?.(size);
    };
    if (typeof body === 'string' || body instanceof Uint8Array) take(body);
    else {
      const src = 'path' in body ? createReadStream(body.path, { highWaterMark: 1024 * 1024 }) : body.stream;
      for await (const chunk of src) take(chunk as Uint8Array | string);
    }
    const bytes = Buffer.concat(chunks, size);
    if (opts.sha256 !== undefined && createHash('sha256').update(bytes).digest('hex') !== opts.sha256) {
      throw this.error('Io', key, 'the body does not match its SHA-256 (XAmzContentSHA256Mismatch)');
    }
    if (opts.ifNoneMatch === '*' && this.objects.has(key)) throw this.error('PreconditionFailed', key, 'already exists');
    return this.put(key, bytes, md5(bytes).toString('hex'), opts);
  }

  private put(key: string, body: Buffer, etag: string, opts: { contentType?: string; metadata?: Record<string, string> } = {}): ObjectInfo {
    const o: StoredObject = { key, body, etag, lastModified: new Date() };
    if (opts.contentType !== undefined) o.contentType = opts.contentType;
    if (opts.metadata !== undefined) o.metadata = { ...opts.metadata };
    if (this.opts.versioned) {
      o.versionId = randomBytes(16).toString('hex');
      this.versions.set(o.versionId, o);
    }
    if (!this.objects.has(key)) this.sorted = undefined;
    this.objects.set(key, o);
    return this.info(o);
  }

  async delete(key: string): Promise<void> {
    this.checkKey(key);
    if (this.objects.delete(key)) this.sorted = undefined; // deleting a missing key succeeds, as in S3
  }

  async copy(fromKey: string, toKey: string, opts: CopyOptions = {}): Promise<ObjectInfo> {
    this.checkKey(toKey);
    const src = this.find(fromKey, undefined);
    const copy: { contentType?: string; metadata?: Record<string, string> } = {};
    // New metadata or content type replaces both, as S3's REPLACE directive does; otherwise both are copied.
    const replace = opts.metadata !== undefined || opts.contentType !== undefined;
    const contentType = replace ? opts.contentType : src.contentType;
    const metadata = replace ? opts.metadata : src.metadata;
    if (contentType !== undefined) copy.contentType = contentType;
    if (metadata !== undefined) copy.metadata = metadata;
    return this.put(toKey, src.body, src.etag, copy); // same bytes, same ETag; the body is never changed in place
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListPage> {
    const max = Math.max(1, Math.min(opts.maxKeys ?? MAX_PAGE, MAX_PAGE));
    const delimiter = opts.delimiter === '' ? undefined : opts.delimiter;
    // Each page is read from the store as it is then, continuing after the last key or prefix returned.
    let after = opts.startAfter !== undefined && compareKeys(opts.startAfter, prefix) > 0 ? opts.startAfter : undefined;
    /** The last common prefix returned; a startAfter inside one counts as having returned it (as RGW does). */
    let rolledUp: string | undefined;
    const d = after === undefined || delimiter === undefined || !after.startsWith(prefix) ? -1 : after.indexOf(delimiter, prefix.length);
    if (d >= 0) rolledUp = after!.slice(0, d + delimiter!.length);
    for (;;) {
      opts.signal?.throwIfAborted();
      const keys = this.sortedKeys();
      const page: ListPage = { objects: [], prefixes: [] };
      let i = firstIndex(keys, after ?? prefix, after !== undefined);
      while (i < keys.length && keys[i]!.startsWith(prefix)) {
        const key = keys[i]!;
        if (rolledUp !== undefined && key.startsWith(rolledUp)) {
          i++; // under a common prefix already returned
          continue;
        }
        if (page.objects.length + page.prefixes.length >= max) break;
        const d = delimiter === undefined ? -1 : key.indexOf(delimiter, prefix.length);
        if (d >= 0) {
          rolledUp = key.slice(0, d + delimiter!.length);
          page.prefixes.push(rolledUp);
        } else {
          page.objects.push(this.info(this.objects.get(key)!));
        }
        after = key;
        i++;
      }
      const more = i < keys.length && keys[i]!.startsWith(prefix);
      yield page;
      if (!more) return;
    }
  }

  private sortedKeys(): string[] {
    this.sorted ??= [...this.objects.keys()].sort(compareKeys);
    return this.sorted;
  }

  async startMultipart(key: string, opts: MultipartOptions = {}): Promise<MultipartUpload> {
    this.checkKey(key);
    const id = randomBytes(8).toString('hex');
    const upload = { key, parts: new Map<number, Buffer>() };
    this.uploads.set(id, upload);
    const live = () => {
      if (!this.uploads.has(id)) throw this.error('NotFound', key, `no multipart upload ${id} (NoSuchUpload)`);
    };
    return {
      uploadPart: async (partNumber, body) => {
        live();
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS) {
          throw this.error('Io', key, `part number ${partNumber} is not in 1..${MAX_PARTS} (InvalidArgument)`);
        }
        upload.parts.set(partNumber, Buffer.from(body));
      },
      complete: async () => {
        live();
        const parts = [...upload.parts].sort(([a], [b]) => a - b).map(([, b]) => b);
        if (parts.length === 0) throw this.error('Io', key, 'a multipart upload needs at least one part (MalformedXML)');
        if (parts.slice(0, -1).some((p) => p.length < MIN_PART_BYTES)) {
          throw this.error('Io', key, 'every part but the last must be at least 5 MiB (EntityTooSmall)');
        }
        this.uploads.delete(id);
        const etag = `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-${parts.length}`;
        return this.put(key, Buffer.concat(parts), etag, opts);
      },
      abort: async () => {
        this.uploads.delete(id);
      },
    };
  }

  /** Keys of multipart uploads started and neither completed nor aborted (S3's ListMultipartUploads). */
  multipartUploads(): string[] {
    return [...this.uploads.values()].map((u) => u.key);
  }
}

/** The index of the first key after `from` (or at it, unless `exclusive`) in sorted `keys`. */
function firstIndex(keys: string[], from: string, exclusive: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(keys[mid]!, from);
    if (c < 0 || (exclusive && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
