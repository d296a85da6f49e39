// ObjectStore over an S3 bucket (optionally under a prefix): AWS regions, custom S3-compatible endpoints
// (path-style), static keys, the default AWS credential chain, or anonymous access for public buckets.
// Every request goes through the SDK's retry loop with our jittered backoff; every error leaves as a
// StorageError that names the bucket and endpoint.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type GetObjectCommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NoAuthSigner } from '@smithy/core';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { DEFAULT_BACKOFF, jitteredBackoffMs, type BackoffOptions } from './backoff.js';
import { StorageError } from './errors.js';
import type {
  ListOptions,
  ListPage,
  MultipartUpload,
  ObjectInfo,
  ObjectStore,
  ReadOptions,
  WriteBody,
  WriteOptions,
} from './object-store.js';
import { toStorageError, type S3ErrorContext } from './s3-errors.js';
import { BackoffRetryStrategy } from './retry-strategy.js';
import type { RateLimiter } from './rate-limit.js';

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

function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  const p = prefix.replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

export class S3Store implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  /** The underlying client, for callers that need an operation the interface lacks (benchmarks, tests). */
  readonly client: S3Client;
  private readonly where: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix);
    const region = opts.region ?? process.env.AWS_REGION ?? 'us-east-1';
    this.where = opts.endpoint ?? `AWS ${region}`;
    this.location = `s3://${opts.bucket}/${this.prefix}${opts.endpoint ? ` (${opts.endpoint})` : ''}`;
    this.partSize = Math.max(5 * 1024 * 1024, opts.partSize ?? DEFAULTS.partSize);
    this.queueSize = opts.queueSize ?? DEFAULTS.queueSize;
    const backoff = opts.backoff ?? DEFAULT_BACKOFF;
    const maxSockets = opts.maxSockets ?? DEFAULTS.maxSockets;
    const config: S3ClientConfig = {
      region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
      // S3-compatible stores (RGW 16, Spaces) reject or mangle aws-chunked bodies with trailing checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK classifies throttling (503 SlowDown, 429), 5xx and connection resets; we choose the delays.
      retryStrategy: new BackoffRetryStrategy(opts.maxAttempts ?? DEFAULTS.maxAttempts, (attempt) => jitteredBackoffMs(attempt, backoff)),
      requestHandler: new NodeHttpHandler({
        connectionTimeout: opts.connectionTimeoutMs ?? DEFAULTS.connectionTimeoutMs,
        requestTimeout: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
        httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
        httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
      }),
    };
    const creds = opts.credentials ?? { kind: 'default' };
    if (creds.kind === 'static') {
      config.credentials = {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        sessionToken: creds.sessionToken,
      };
    } else if (creds.kind === 'anonymous') {
      config.httpAuthSchemeProvider = () => [{ schemeId: 'smithy.api#noAuth' }];
      config.httpAuthSchemes = [
        { schemeId: 'smithy.api#noAuth', identityProvider: () => async () => ({}), signer: new NoAuthSigner() },
      ];
    }
    this.client = new S3Client(config);
    const limiter = opts.rateLimiter;
    if (limiter) {
      // The deserialize step runs inside the retry loop: each attempt, not each call, is counted.
      this.client.middlewareStack.add(
        (next, context) => async (args) => {
          await limiter.acquire(context.commandName);
          return next(args);
        },
        { step: 'deserialize', name: 'clientRateLimit', priority: 'high' },
      );
    }
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
    return { bucket: this.bucket, where: this.where, key: key === undefined ? undefined : this.prefix + key, op };
  }

  private async call<T>(op: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStorageError(err, this.ctx(op, key));
    }
  }

  async head(key: string, opts: { versionId?: string; signal?: AbortSignal } = {}): Promise<ObjectInfo> {
    const Key = this.fullKey(key);
    const out = await this.call('head', key, () =>
      this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key, VersionId: opts.versionId }), {
        abortSignal: opts.signal,
      }),
    );
    return {
      key,
      size: out.ContentLength ?? 0,
      etag: stripQuotes(out.ETag),
      lastModified: out.LastModified ?? new Date(0),
      versionId: out.VersionId,
    };
  }

  private async get(key: string, opts: ReadOptions): Promise<GetObjectCommandOutput | 'empty'> {
    const Key = this.fullKey(key);
    const range = opts.range;
    if (range && range.end <= range.start) {
      // Nothing to read; still honour If-Match so callers learn that the object changed.
      if (opts.ifMatch !== undefined) await this.checkEtag(key, opts.ifMatch, opts.versionId);
      return 'empty';
    }
    try {
      return await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key,
          Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined,
          IfMatch: opts.ifMatch === undefined ? undefined : `"${opts.ifMatch}"`,
          VersionId: opts.versionId,
        }),
        { abortSignal: opts.signal },
      );
    } catch (err) {
      const mapped = toStorageError(err, this.ctx('read', key));
      // A range at or past the end (including any range of a 0-byte object) is an empty read, not an error.
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

  async read(key: string, opts: ReadOptions = {}): Promise<Buffer> {
    const out = await this.get(key, opts);
    if (out === 'empty') return Buffer.alloc(0);
    return this.call('read', key, async () => {
      const bytes = await out.Body!.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
  }

  async stream(key: string, opts: ReadOptions = {}): Promise<Readable> {
    const out = await this.get(key, opts);
    if (out === 'empty') return Readable.from([]);
    return out.Body as Readable;
  }

  async write(key: string, body: WriteBody, opts: WriteOptions = {}): Promise<ObjectInfo> {
    const Key = this.fullKey(key);
    const common = {
      Bucket: this.bucket,
      Key,
      ContentType: opts.contentType,
      Metadata: opts.metadata,
      IfNoneMatch: opts.ifNoneMatch,
    };
    return this.call('write', key, async () => {
      // Small bodies go as one PutObject from memory (the SDK can retry it); anything larger goes
      // through lib-storage, which buffers each part so that parts are retryable too.
      let bytes: Buffer | undefined;
      let stream: Readable | undefined;
      let size: number | undefined;
      if (typeof body === 'string') bytes = Buffer.from(body);
      else if (body instanceof Uint8Array) bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      else if ('path' in body) {
        size = (await stat(body.path)).size;
        if (size <= this.partSize) bytes = await readFile(body.path);
        else stream = createReadStream(body.path, { highWaterMark: 1024 * 1024 });
      } else {
        stream = body.stream;
        size = body.size;
      }
      if (bytes) {
        const put = new PutObjectCommand({ ...common, Body: bytes });
        if (opts.sha256 !== undefined) {
          const sha = opts.sha256;
          // SigV4 takes a preset x-amz-content-sha256 as the payload hash: one hashing pass fewer, and the
          // server verifies that the bytes it got are the bytes we hashed.
          put.middlewareStack.add(
            (next) => async (args) => {
              (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha;
              return next(args);
            },
            { step: 'build', name: 'presetPayloadSha256' },
          );
        }
        const out = await this.client.send(put, { abortSignal: opts.signal });
        opts.onProgress?.(bytes.length);
        return { key, size: bytes.length, etag: stripQuotes(out.ETag), lastModified: new Date(), versionId: out.VersionId };
      }
      const upload = new Upload({
        client: this.client,
        params: { ...common, Body: stream },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      });
      if (opts.onProgress) {
        const report = opts.onProgress;
        upload.on('httpUploadProgress', (p) => {
          if (p.loaded !== undefined) report(p.loaded);
        });
      }
      const onAbort = () => void upload.abort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await this.completedInfo(key, await upload.done(), size);
      } finally {
        opts.signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  /** What a completed multipart upload made. RGW answers it with an empty ETag: then ask for the real one. */
  private async completedInfo(key: string, out: { ETag?: string; VersionId?: string }, size: number | undefined): Promise<ObjectInfo> {
    const etag = stripQuotes(out.ETag);
    if (etag === '' || size === undefined) return this.head(key);
    return { key, size, etag, lastModified: new Date(), versionId: out.VersionId };
  }

  async startMultipart(key: string): Promise<MultipartUpload> {
    const Key = this.fullKey(key);
    const Bucket = this.bucket;
    const created = await this.call('write', key, () => this.client.send(new CreateMultipartUploadCommand({ Bucket, Key })));
    const UploadId = created.UploadId;
    if (!UploadId) throw new StorageError('Io', `CreateMultipartUpload for "${Key}" in bucket "${this.bucket}" returned no upload id`, { location: this.location, key });
    const etags = new Map<number, string>();
    let size = 0;
    return {
      uploadPart: async (PartNumber, body) => {
        const out = await this.call('write', key, () =>
          this.client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ContentLength: body.length })),
        );
        etags.set(PartNumber, out.ETag ?? '');
        size += body.length;
      },
      complete: async () => {
        const Parts = [...etags].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
        const out = await this.call('write', key, () =>
          this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } })),
        );
        return this.completedInfo(key, out, size);
      },
      abort: async () => {
        await this.call('write', key, () => this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })));
      },
    };
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    await this.call('delete', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })));
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListPage> {
    let token: string | undefined;
    const strip = this.prefix.length;
    do {
      const out = await this.call('list', prefix || undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            Delimiter: opts.delimiter,
            StartAfter: token === undefined && opts.startAfter !== undefined ? this.prefix + opts.startAfter : undefined,
            ContinuationToken: token,
            MaxKeys: opts.maxKeys,
          }),
          { abortSignal: opts.signal },
        ),
      );
      yield {
        objects: (out.Contents ?? []).map((o) => ({
          key: o.Key!.slice(strip),
          size: o.Size ?? 0,
          etag: stripQuotes(o.ETag),
          lastModified: o.LastModified ?? new Date(0),
        })),
        prefixes: (out.CommonPrefixes ?? []).map((p) => p.Prefix!.slice(strip)),
      };
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async copy(fromKey: string, toKey: string): Promise<ObjectInfo> {
    const source = `${this.bucket}/${this.fullKey(fromKey)}`
      .split('/')
      .map((s) => encodeURIComponent(s))
      .join('/');
    const Key = this.fullKey(toKey);
    await this.call('copy', fromKey, () =>
      this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key, CopySource: source })),
    );
    return this.head(toKey);
  }

  /** Closes idle sockets so that a CLI process can exit promptly. */
  close(): void {
    this.client.destroy();
  }
}
