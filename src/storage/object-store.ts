// The one interface every byte source implements: an S3 bucket (prefix), or a local directory (the
// embedded default). Keys are relative to the store's root and use '/' separators.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  /** ETag without quotes; for S3 an MD5 or "md5-N" for multipart; for the local store a content-derived tag. */
  etag: string;
  lastModified: Date;
  versionId?: string;
  /**
   * User metadata, when the object has any (from head(); listings do not carry it). On S3 these are the
   * x-amz-meta-* headers: names lower-cased, without the prefix. Values are ASCII. Added after v0.
   */
  metadata?: Record<string, string>;
  /** Content-Type, when the store reports one (from head()): a metadata copy must pass it to keep it. */
  contentType?: string;
}

/** Half-open byte range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface ReadOptions {
  range?: ByteRange;
  /** Fail with PreconditionFailed unless the object still has this ETag: never mix two versions in one file. */
  ifMatch?: string;
  versionId?: string;
  signal?: AbortSignal;
}

export interface WriteOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** '*' = create only: fail with PreconditionFailed if the key exists (where the store supports it). */
  ifNoneMatch?: '*';
  signal?: AbortSignal;
  /** Called with the cumulative number of bytes sent. */
  onProgress?: (bytesSent: number) => void;
  /**
   * The body's SHA-256 (hex), when the caller already knows it (added after v0, optional). S3 uses it as the
   * signed payload hash instead of hashing the body again, and the server rejects a body that does not match.
   */
  sha256?: string;
}

export interface CopyOptions {
  /**
   * Replaces the copy's user metadata with this (S3: the REPLACE metadata directive) instead of keeping
   * the source's; a copy of a key onto itself with new metadata is how metadata changes. The content type
   * is replaced too: pass it to keep one.
   */
  metadata?: Record<string, string>;
  contentType?: string;
  /**
   * The source's size, when the caller knows it: the answer is then made from the copy's own response
   * (ETag, LastModified) where the store can, with no HEAD after it (a metadata change is one request).
   */
  sourceSize?: number;
}

/** What a multipart upload's object carries besides its bytes (S3's CreateMultipartUpload takes them). */
export interface MultipartOptions {
  metadata?: Record<string, string>;
  contentType?: string;
}

export interface ListOptions {
  /** '/' lists one level (objects + common prefixes); undefined lists recursively. */
  delimiter?: string;
  startAfter?: string;
  /** Page size hint. */
  maxKeys?: number;
  signal?: AbortSignal;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Common prefixes (with the trailing delimiter), relative to the store root. */
  prefixes: string[];
}

/** A body to upload: bytes in memory, a stream (with its size when known), or a local file by path. */
export type WriteBody = Buffer | Uint8Array | string | { path: string } | { stream: Readable; size?: number };

/** A multipart upload driven part by part (every part but the last at least 5 MiB). */
export interface MultipartUpload {
  /** Uploads part `partNumber` (1-based); parts may be sent in any order and concurrently. */
  uploadPart(partNumber: number, body: Buffer): Promise<void>;
  /** Makes the object visible, whole, from the parts sent. */
  complete(): Promise<ObjectInfo>;
  /** Throws the parts away (the object never appears). */
  abort(): Promise<void>;
}

export interface ObjectStore {
  /** Where this store points, for messages and status: never contains secrets. */
  readonly location: string;
  head(key: string, opts?: { versionId?: string; signal?: AbortSignal }): Promise<ObjectInfo>;
  /** Reads the object (or a range of it) into memory. */
  read(key: string, opts?: ReadOptions): Promise<Buffer>;
  /**
   * The hot path: reads the object, or `opts.range` of it, into `into` from offset 0 and returns the number
   * of bytes written. A range is clamped to the object's end (a range at or past the end, or any range of an
   * empty object, reads 0 bytes) and must fit in `into` (else RangeError); without a range the whole object
   * must fit (else InvalidRange). Bytes are written straight from the socket or file where the store can.
   * On failure the contents of `into` are unspecified. Optional (added after v0).
   */
  readInto?(key: string, opts: ReadOptions, into: Buffer): Promise<number>;
  /** Streams the object (or a range of it). */
  stream(key: string, opts?: ReadOptions): Promise<Readable>;
  write(key: string, body: WriteBody, opts?: WriteOptions): Promise<ObjectInfo>;
  delete(key: string): Promise<void>;
  /** Lists keys under a prefix, page by page. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListPage>;
  /** Copies an object (server-side on S3); `opts` added after v0. */
  copy(fromKey: string, toKey: string, opts?: CopyOptions): Promise<ObjectInfo>;
  /**
   * Why the store could never hold `key` (e.g. longer than S3's 1024 bytes), else undefined: lets callers
   * refuse a name up front instead of failing at upload time. Optional (added after v0).
   */
  invalidKeyReason?(key: string): string | undefined;
  /**
   * Starts a multipart upload to `key`, for callers that produce the bytes over time (optional: S3 stores;
   * added after v0; `opts` later still).
   */
  startMultipart?(key: string, opts?: MultipartOptions): Promise<MultipartUpload>;
  /** Releases sockets/handles (optional; added after v0: callers must tolerate its absence). */
  close?(): void;
}
