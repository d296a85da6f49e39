// ObjectStore over an S3 bucket (optionally under a prefix): AWS regions, custom S3-compatible endpoints
// (path-style), static keys, the default AWS credential chain, or anonymous access for public buckets.
// Requests go through our lean client (s3/client.ts on http/): SigV4, retries with jittered backoff, and
// bodies read straight into the caller's buffer (readInto). Every error leaves as a StorageError that names
// the bucket and endpoint.
import type { S3Client as SdkS3Client } from '@aws-sdk/client-s3';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DEFAULT_BACKOFF, type BackoffOptions } from '../backoff.js';
import { StorageError } from '../errors.js';
import { BodyStream } from '../http/body-sink.js';
import type { HttpResponse, RequestBody, ResponseMode } from '../http/connection.js';
import { HttpError } from '../http/errors.js';
import type { ResponseHead } from '../http/response-parser.js';
import type {
  CopyOptions,
  ListOptions,
  ListPage,
  MultipartOptions,
  MultipartUpload,
  ObjectInfo,
  ObjectStore,
  ReadOptions,
  WriteBody,
  WriteOptions,
} from '../object-store.js';
import type { RateLimiter } from '../rate-limit.js';
import type { StoreRequestCounts } from '../request-counts.js';
import { S3Client, type S3Call } from './client.js';
import { fileParts, partSizeFor, sendParts, streamParts } from './parts.js';
import { sdkClient } from './sdk-client.js';
import { uriEncode, type CredentialProvider } from './signer.js';
import { completeMultipartXml, parseCopyResult, parseListV2, parseResultEtag, parseUploadId } from './xml.js';
import { toStorageError, type S3ErrorContext } from './errors.js';

export type S3Credentials =
  | { kind: 'static'; accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** The standard AWS chain: env, shared config/credentials files, SSO, web identity, container/instance roles. */
  | { kind: 'default' }
  /** Unsigned requests: public buckets. */
  | { kind: 'anonymous' };

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' or 'a/b'); a trailing '/' is added when missing. */
  prefix?: string;
  /** AWS region; default AWS_REGION or us-east-1. */
  region?: string;
  /** Custom S3-compatible endpoint (DigitalOcean Spaces, Ceph RGW, MinIO...): implies path-style by default. */
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: S3Credentials;
  /** Total attempts per request (first try + retries). */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** Multipart part size in bytes (min 5 MiB). Bodies up to this size go in one PutObject. */
  partSize?: number;
  /** Parts uploaded in parallel per multipart upload. */
  queueSize?: number;
  /** Concurrent sockets to the endpoint. */
  maxSockets?: number;
  connectionTimeoutMs?: number;
  /** A response that sends nothing for this long is abandoned (and retried): stalled servers do happen. */
  idleTimeoutMs?: number;
  /** Client-side request rate limits (every attempt takes a token): see rate-limit.ts. */
  rateLimiter?: RateLimiter;
  /** Counts every request attempt by operation (one per daemon, shared by its stores). */
  requestCounts?: StoreRequestCounts;
  /** A PEM file of CAs to trust for an https endpoint, besides the system's; default $AWS_CA_BUNDLE. */
  caBundle?: string;
  /** Called with the key in the bucket (prefix included) of every object this store wrote, copied to or deleted. */
  onChanged?: (bucketKey: string) => void;
}

const DEFAULTS = {
  maxAttempts: 6,
  partSize: 16 * 1024 * 1024,
  queueSize: 4,
  maxSockets: 64,
  connectionTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
};

/** S3's (and RGW's, and Spaces') limit on a key, in UTF-8 bytes, bucket prefix included. */
const MAX_KEY_BYTES = 1024;
const META_PREFIX = 'x-amz-meta-';

function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

/** The signer's view of our credential settings; undefined = anonymous. */
function credentialProvider(creds: S3Credentials): CredentialProvider | undefined {
  if (creds.kind === 'anonymous') return undefined;
  if (creds.kind === 'static') {
    const value = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken };
    return async () => value;
  }
  // The SDK's chain (env, profiles, SSO, web identity, IMDS, containers): memoised, refreshed before expiry.
  let chain: Promise<CredentialProvider> | undefined;
  return async () => {
    chain ??= import('@aws-sdk/credential-provider-node').then((m) => m.defaultProvider() as CredentialProvider);
    return (await chain)();
  };
}

/** Refuses empty keys up front: else the signer fails with a message that names nothing. */
function checked(provider: CredentialProvider | undefined): CredentialProvider | undefined {
  if (!provider) return undefined;
  return async () => {
    const creds = await provider();
    if (!creds.accessKeyId || !creds.secretAccessKey) {
      const missing = !creds.accessKeyId ? 'access key id' : 'secret access key';
      throw Object.assign(new Error(`the credentials have no ${missing}`), { name: 'CredentialsProviderError' });
    }
    return creds;
  };
}

/** Headers for user metadata and content type. */
function metadataHeaders(metadata: Record<string, string> | undefined, contentType: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata ?? {})) headers[META_PREFIX + k.toLowerCase()] = v;
  if (contentType !== undefined) headers['content-type'] = contentType;
  return headers;
}

export class S3Store implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly where: string;
  private readonly region: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly s3: S3Client;
  private sdk: SdkS3Client | undefined;

  constructor(private readonly opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix);
    this.region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
    this.where = opts.endpoint ?? `AWS ${this.region}`;
    this.location = `s3://${opts.bucket}/${this.prefix}${opts.endpoint ? ` (${opts.endpoint})` : ''}`;
    this.partSize = Math.max(5 * 1024 * 1024, opts.partSize ?? DEFAULTS.partSize);
    this.queueSize = opts.queueSize ?? DEFAULTS.queueSize;
    this.s3 = new S3Client({
      bucket: opts.bucket,
      region: this.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      credentials: checked(credentialProvider(opts.credentials ?? { kind: 'default' })),
      maxAttempts: opts.maxAttempts ?? DEFAULTS.maxAttempts,
      backoff: opts.backoff ?? DEFAULT_BACKOFF,
      maxSockets: opts.maxSockets ?? DEFAULTS.maxSockets,
      connectionTimeoutMs: opts.connectionTimeoutMs ?? DEFAULTS.connectionTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      rateLimiter: opts.rateLimiter,
      requestCounts: opts.requestCounts,
      caBundle: opts.caBundle,
    });
  }

  /**
   * An AWS SDK client for this bucket's endpoint and credentials, for operations the interface lacks
   * (creating buckets in benchmarks and tests). Made on first use; the store itself never uses it.
   */
  get client(): SdkS3Client {
    this.sdk ??= sdkClient({
      region: this.region,
      endpoint: this.opts.endpoint,
      forcePathStyle: this.opts.forcePathStyle ?? this.opts.endpoint !== undefined,
      credentials: this.opts.credentials ?? { kind: 'default' },
    });
    return this.sdk;
  }

  /** The full key in the bucket for a store-relative key. */
  fullKey(key: string): string {
    if (key === '' || key.startsWith('/')) {
      throw new StorageError('InvalidKey', `invalid key "${key}" for ${this.location}: keys are relative and non-empty`, {
        location: this.location,
        key,
      });
    }
    return this.prefix + key;
  }

  invalidKeyReason(key: string): string | undefined {
    const bytes = Buffer.byteLength(this.prefix + key);
    if (bytes <= MAX_KEY_BYTES) return undefined;
    return `the object key would be ${bytes} bytes long${this.prefix ? ` (with the prefix "${this.prefix}")` : ''}; S3 allows ${MAX_KEY_BYTES}`;
  }

  private ctx(op: string, key?: string): S3ErrorContext {
    return { bucket: this.bucket, where: this.where, key: key === undefined ? undefined : this.prefix + key, op, region: this.region };
  }

  /** One S3 request; any failure leaves as a StorageError. */
  private async send(op: string, key: string | undefined, call: S3Call): Promise<HttpResponse> {
    try {
      return await this.s3.send(call);
    } catch (err) {
      throw toStorageError(err, this.ctx(op, key));
    }
  }

  private infoOf(key: string, headers: Record<string, string>): ObjectInfo {
    let metadata: Record<string, string> | undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(META_PREFIX)) (metadata ??= {})[name.slice(META_PREFIX.length)] = value;
    }
    const info: ObjectInfo = {
      key,
      size: Number(headers['content-length'] ?? 0),
      etag: stripQuotes(headers.etag),
      lastModified: headers['last-modified'] ? new Date(headers['last-modified']) : new Date(0),
      versionId: headers['x-amz-version-id'],
    };
    if (metadata) info.metadata = metadata;
    if (headers['content-type'] !== undefined) info.contentType = headers['content-type'];
    return info;
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectInfo> {
    const res = await this.send('head', key, {
      op: 'HeadObjectCommand',
      method: 'HEAD',
      key: this.fullKey(key),
      query: opts.versionId === undefined ? undefined : { versionId: opts.versionId },
      signal: opts.signal,
    });
    return this.infoOf(key, res.headers);
  }

  /**
   * GET of the object or a range of it, the body going where `response` says. 'empty' when there is
   * nothing to read: an empty range, or a range at or past the end (RGW answers 416 to any range of a
   * 0-byte object).
   */
  private async get(key: string, opts: ReadOptions, response: () => ResponseMode, more: Partial<S3Call> = {}): Promise<HttpResponse | 'empty'> {
    const fullKey = this.fullKey(key);
    const range = opts.range;
    if (range && range.end <= range.start) {
      // Nothing to read; still honour If-Match so callers learn that the object changed.
      if (opts.ifMatch !== undefined) await this.checkEtag(key, opts.ifMatch, opts.versionId);
      return 'empty';
    }
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end - 1}`;
    if (opts.ifMatch !== undefined) headers['if-match'] = `"${opts.ifMatch}"`;
    const onHead = (head: ResponseHead) => {
      if (head.status < 300 && range) checkRange(head, range.start, range.end);
      more.onHead?.(head);
    };
    try {
      return await this.s3.send({
        op: 'GetObjectCommand',
        method: 'GET',
        key: fullKey,
        query: opts.versionId === undefined ? undefined : { versionId: opts.versionId },
        headers,
        response,
        signal: opts.signal,
        ...more,
        onHead,
      });
    } catch (err) {
      const mapped = toStorageError(err, this.ctx('read', key));
      if (mapped.code === 'InvalidRange' && range) {
        const info = await this.head(key, { versionId: opts.versionId, signal: opts.signal });
        if (opts.ifMatch !== undefined && info.etag !== opts.ifMatch) throw this.changed(key);
        if (range.start >= info.size) return 'empty';
      }
      throw mapped;
    }
  }

  private changed(key: string): StorageError {
    return new StorageError('PreconditionFailed', `"${this.prefix + key}" in bucket "${this.bucket}" changed while being read`, {
      location: this.location,
      key,
    });
  }

  private async checkEtag(key: string, etag: string, versionId?: string): Promise<void> {
    const info = await this.head(key, { versionId });
    if (info.etag !== etag) throw this.changed(key);
  }

  async readInto(key: string, opts: ReadOptions, into: Buffer): Promise<number> {
    const range = opts.range;
    if (range && range.end - range.start > into.length) {
      throw new RangeError(`readInto: a ${range.end - range.start}-byte range does not fit in a ${into.length}-byte buffer`);
    }
    try {
      const res = await this.get(key, opts, () => ({ into }));
      return res === 'empty' ? 0 : res.length;
    } catch (err) {
      if (err instanceof StorageError && (err.cause as HttpError | undefined)?.code === 'BodyTooLarge') {
        throw new StorageError('InvalidRange', `"${this.prefix + key}" in bucket "${this.bucket}" is larger than the ${into.length}-byte buffer`, {
          location: this.location,
          key,
          cause: err.cause,
        });
      }
      throw err;
    }
  }

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    const range = opts.range;
    if (range) {
      const buf = Buffer.allocUnsafe(Math.max(0, range.end - range.start));
      return buf.subarray(0, await this.readInto(key, opts, buf));
    }
    const res = await this.get(key, opts, () => 'buffer');
    return res === 'empty' ? Buffer.alloc(0) : res.body;
  }

  async stream(key: string, opts: ReadOptions = {}): Promise<Readable> {
    let body: BodyStream | undefined;
    let handedOut = false;
    return new Promise<Readable>((resolve, reject) => {
      const mapError = (err: Error) => toStorageError(err, this.ctx('read', key));
      const done = this.get(key, opts, () => ({ stream: (body = new BodyStream(mapError)) }), {
        // Once the body flows to the caller, a failure ends the stream with an error instead of a retry.
        retryable: () => !handedOut,
        onHead: (head) => {
          if (head.status >= 300) return;
          handedOut = true;
          resolve(body!);
        },
      });
      done.then(
        (res) => {
          if (res === 'empty') resolve(Readable.from([]));
        },
        (err: unknown) => {
          if (handedOut) body!.destroy(err as Error);
          else reject(err);
        },
      );
    });
  }

  async write(key: string, body: WriteBody, opts: WriteOptions = {}): Promise<ObjectInfo> {
    const fullKey = this.fullKey(key);
    const headers = metadataHeaders(opts.metadata, opts.contentType);
    if (opts.ifNoneMatch !== undefined) headers['if-none-match'] = opts.ifNoneMatch;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      return this.putObject(key, fullKey, bytes, bytes.length, headers, opts);
    }
    if ('path' in body) {
      const size = await this.call('write', key, async () => (await stat(body.path)).size);
      if (size <= this.partSize) return this.putObject(key, fullKey, { path: body.path, start: 0, length: size }, size, headers, opts);
      return this.multipartUpload(key, headers, fileParts(body.path, size, partSizeFor(size, this.partSize)), opts);
    }
    // A stream: its first part decides between one PutObject and a multipart upload.
    const parts = streamParts(body.stream, this.partSize)[Symbol.asyncIterator]();
    const first = await this.call('write', key, () => parts.next());
    const second = first.done ? first : await this.call('write', key, () => parts.next());
    if (second.done) {
      const bytes = first.done ? Buffer.alloc(0) : first.value;
      return this.putObject(key, fullKey, bytes, bytes.length, headers, opts);
    }
    async function* all(): AsyncGenerator<Buffer> {
      yield first.value as Buffer;
      yield second.value as Buffer;
      for (let next = await parts.next(); !next.done; next = await parts.next()) yield next.value;
    }
    return this.multipartUpload(key, headers, all(), opts);
  }

  /** Runs non-S3 work (files, streams) of an operation, with its errors as StorageErrors too. */
  private async call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new StorageError(code === 'ENOENT' ? 'NotFound' : 'Io', `cannot ${op} "${key}" to ${this.location}: ${(err as Error).message}`, {
        location: this.location,
        key,
        cause: err,
      });
    }
  }

  private async putObject(
    key: string,
    fullKey: string,
    body: RequestBody,
    size: number,
    headers: Record<string, string>,
    opts: WriteOptions,
  ): Promise<ObjectInfo> {
    // A known SHA-256 is the signed payload hash: no second hashing pass, and the server rejects a body
    // that does not match it.
    const res = await this.send('write', key, {
      op: 'PutObjectCommand',
      method: 'PUT',
      key: fullKey,
      headers,
      body,
      sha256: opts.sha256,
      signal: opts.signal,
    });
    opts.onProgress?.(size);
    this.opts.onChanged?.(fullKey);
    return { key, size, etag: stripQuotes(res.headers.etag), lastModified: new Date(), versionId: res.headers['x-amz-version-id'] };
  }

  private async multipartUpload(
    key: string,
    headers: Record<string, string>,
    parts: Iterable<RequestBody> | AsyncIterable<RequestBody>,
    opts: WriteOptions,
  ): Promise<ObjectInfo> {
    const upload = await this.createMultipart(key, headers);
    let sent = 0;
    try {
      await sendParts(parts, this.queueSize, async (partNumber, body) => {
        opts.signal?.throwIfAborted();
        await upload.uploadPart(partNumber, body, opts.signal);
        sent += Buffer.isBuffer(body) ? body.length : body.length;
        opts.onProgress?.(sent);
      });
      opts.signal?.throwIfAborted();
      return await upload.complete(opts.ifNoneMatch);
    } catch (err) {
      await upload.abort().catch(() => undefined);
      throw toStorageError(err, this.ctx('write', key));
    }
  }

  async startMultipart(key: string, opts: MultipartOptions = {}): Promise<MultipartUpload> {
    const upload = await this.createMultipart(key, metadataHeaders(opts.metadata, opts.contentType));
    return {
      uploadPart: (partNumber, body) => upload.uploadPart(partNumber, body),
      complete: () => upload.complete(),
      abort: () => upload.abort(),
    };
  }

  private async createMultipart(key: string, headers: Record<string, string>) {
    const fullKey = this.fullKey(key);
    const created = await this.send('write', key, {
      op: 'CreateMultipartUploadCommand',
      method: 'POST',
      key: fullKey,
      query: { uploads: '' },
      headers,
    });
    const uploadId = parseUploadId(created.body);
    if (!uploadId) {
      throw new StorageError('Io', `CreateMultipartUpload for "${fullKey}" in bucket "${this.bucket}" returned no upload id`, {
        location: this.location,
        key,
      });
    }
    const etags = new Map<number, string>();
    let size = 0;
    return {
      uploadPart: async (partNumber: number, body: RequestBody, signal?: AbortSignal): Promise<void> => {
        const res = await this.send('write', key, {
          op: 'UploadPartCommand',
          method: 'PUT',
          key: fullKey,
          query: { partNumber: String(partNumber), uploadId },
          body,
          signal,
        });
        etags.set(partNumber, res.headers.etag ?? '');
        size += Buffer.isBuffer(body) ? body.length : body.length;
      },
      complete: async (ifNoneMatch?: '*'): Promise<ObjectInfo> => {
        const parts = [...etags].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
        const res = await this.send('write', key, {
          op: 'CompleteMultipartUploadCommand',
          method: 'POST',
          key: fullKey,
          query: { uploadId },
          headers: ifNoneMatch === undefined ? { 'content-type': 'application/xml' } : { 'content-type': 'application/xml', 'if-none-match': ifNoneMatch },
          body: Buffer.from(completeMultipartXml(parts)),
          errorIn200: true,
        });
        this.opts.onChanged?.(fullKey);
        // RGW answers with an empty ETag: then ask for the real one.
        const etag = stripQuotes(parseResultEtag(res.body));
        if (etag === '') return this.head(key);
        return { key, size, etag, lastModified: new Date(), versionId: res.headers['x-amz-version-id'] };
      },
      abort: async (): Promise<void> => {
        await this.send('write', key, { op: 'AbortMultipartUploadCommand', method: 'DELETE', key: fullKey, query: { uploadId } });
      },
    };
  }

  async delete(key: string): Promise<void> {
    await this.send('delete', key, { op: 'DeleteObjectCommand', method: 'DELETE', key: this.fullKey(key) });
    this.opts.onChanged?.(this.fullKey(key));
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListPage> {
    let token: string | undefined;
    const strip = this.prefix.length;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: this.prefix + prefix };
      if (opts.delimiter !== undefined) query.delimiter = opts.delimiter;
      if (token !== undefined) query['continuation-token'] = token;
      else if (opts.startAfter !== undefined) query['start-after'] = this.prefix + opts.startAfter;
      if (opts.maxKeys !== undefined) query['max-keys'] = String(opts.maxKeys);
      const res = await this.send('list', prefix || undefined, { op: 'ListObjectsV2Command', method: 'GET', query, signal: opts.signal });
      let page: ReturnType<typeof parseListV2>;
      try {
        page = parseListV2(res.body);
      } catch (err) {
        throw new StorageError('Io', `unreadable listing of ${this.location} at ${this.where}: ${(err as Error).message}`, {
          location: this.location,
          cause: err,
        });
      }
      yield {
        objects: page.objects.map((o) => ({ key: o.key.slice(strip), size: o.size, etag: stripQuotes(o.etag), lastModified: o.lastModified })),
        prefixes: page.prefixes.map((p) => p.slice(strip)),
      };
      token = page.nextToken;
    } while (token);
  }

  async copy(fromKey: string, toKey: string, opts: CopyOptions = {}): Promise<ObjectInfo> {
    const source = `/${uriEncode(this.bucket)}/${this.fullKey(fromKey).split('/').map(uriEncode).join('/')}`;
    const headers: Record<string, string> = { 'x-amz-copy-source': source };
    if (opts.metadata !== undefined || opts.contentType !== undefined) {
      Object.assign(headers, metadataHeaders(opts.metadata, opts.contentType), { 'x-amz-metadata-directive': 'REPLACE' });
    }
    const res = await this.send('copy', fromKey, { op: 'CopyObjectCommand', method: 'PUT', key: this.fullKey(toKey), headers, errorIn200: true });
    this.opts.onChanged?.(this.fullKey(toKey));
    // With the size known, CopyObjectResult (ETag, LastModified) says the rest: a metadata change is one request.
    const result = opts.sourceSize === undefined ? undefined : parseCopyResult(res.body);
    if (!result) return this.head(toKey);
    const info: ObjectInfo = { key: toKey, size: opts.sourceSize!, etag: stripQuotes(result.etag), lastModified: result.lastModified };
    if (res.headers['x-amz-version-id']) info.versionId = res.headers['x-amz-version-id'];
    if (opts.metadata && Object.keys(opts.metadata).length > 0) info.metadata = { ...opts.metadata };
    if (opts.contentType !== undefined) info.contentType = opts.contentType;
    return info;
  }

  /** Closes the connections so that a CLI process can exit promptly. */
  close(): void {
    this.s3.close();
    this.sdk?.destroy();
  }
}

/**
 * A 2xx answer to a ranged GET must be that range: a 206 starting where we asked, or (a server that
 * ignores Range) a 200 for a whole object that the range covers. Anything else would put the wrong bytes
 * at the caller's offset.
 */
function checkRange(head: ResponseHead, start: number, end: number): void {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(head.headers['content-range'] ?? '');
  const length = Number(head.headers['content-length'] ?? NaN);
  if (head.status === 206 && m && Number(m[1]) === start && Number(m[2]) < end && Number(m[2]) - start + 1 === length) return;
  if (head.status === 200 && start === 0 && !m && length <= end) return;
  throw new HttpError('RangeMismatch', `asked for bytes ${start}-${end - 1}, got status ${head.status} with Content-Range "${head.headers['content-range'] ?? ''}"`, false);
}
