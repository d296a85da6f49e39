// Signed S3 requests to one bucket over the lean HTTP client: addressing (path-style or virtual-hosted,
// AWS regions or custom endpoints), TLS trust, SigV4, the per-attempt rate limit, and our retry policy
// (full-jitter backoff, Retry-After, no client-wide quota: see retry-strategy.ts). Error responses become
// S3ResponseError with the fields errors.ts reads; everything else surfaces as HttpError.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { jitteredBackoffMs, type BackoffOptions } from '../backoff.js';
import { HttpError } from '../http/errors.js';
import type { HttpResponse, RequestBody, ResponseMode } from '../http/connection.js';
import { Pool } from '../http/pool.js';
import type { ResponseHead } from '../http/response-parser.js';
import type { RateLimiter } from '../rate-limit.js';
import { storeOpSlot, type StoreRequestCounts } from '../request-counts.js';
import { BackoffRetryStrategy } from '../retry-strategy.js';
import { RequestSigner, UNSIGNED_PAYLOAD, uriEncode, type CredentialProvider } from './signer.js';
import { parseError } from './xml.js';

export interface S3ClientOptions {
  bucket: string;
  region: string;
  /** Custom endpoint URL; default: AWS's endpoint for the region (https). */
  endpoint?: string;
  forcePathStyle: boolean;
  /** undefined: anonymous (unsigned) requests. */
  credentials: CredentialProvider | undefined;
  maxAttempts: number;
  backoff: BackoffOptions;
  maxSockets: number;
  connectionTimeoutMs: number;
  idleTimeoutMs: number;
  rateLimiter?: RateLimiter;
  /** Counts every attempt sent, by operation (the daemon's status and metrics). */
  requestCounts?: StoreRequestCounts;
  /** PEM file of extra CAs to trust for https endpoints (default: $AWS_CA_BUNDLE). */
  caBundle?: string;
}

export interface S3Call {
  /** The SDK's command name for this operation: the rate limiter tells writes from reads by it. */
  op: string;
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** Full key in the bucket; undefined addresses the bucket itself. */
  key?: string;
  query?: Record<string, string>;
  /** Extra headers, lower-case names. */
  headers?: Record<string, string>;
  body?: RequestBody;
  /** The body's SHA-256 (hex) when known; else it is computed over plain http, or UNSIGNED-PAYLOAD over TLS. */
  sha256?: string;
  /** Where each attempt's 2xx body goes (default: collected). */
  response?: () => ResponseMode;
  /** The head of a response, before its body (any status). */
  onHead?(head: ResponseHead): void;
  /** The answer may be a 200 with an <Error> body (CopyObject, CompleteMultipartUpload): check it. */
  errorIn200?: boolean;
  /** False once a failed attempt must not be repeated (a streamed body already handed out). */
  retryable?: () => boolean;
  signal?: AbortSignal;
}

/** An S3 error response, shaped like the SDK's errors (name = S3 code, $metadata.httpStatusCode). */
export class S3ResponseError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(
    override readonly name: string,
    readonly status: number,
    message: string,
    /** The bucket's region, when the answer says. */
    readonly region: string | undefined,
    readonly retryAfter: Date | undefined,
  ) {
    super(message);
    this.$metadata = { httpStatusCode: status };
  }
}

/** Codes for bodiless error answers (HEAD), as the SDK names them. */
const STATUS_CODES: Record<number, string> = {
  301: 'PermanentRedirect',
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  412: 'PreconditionFailed',
  416: 'InvalidRange',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
};
const THROTTLING_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestLimitExceeded', 'ServiceUnavailable']);
const TRANSIENT_CODES = new Set(['RequestTimeout', 'RequestTimeoutException', 'InternalError']);
/** The server refused our clock: signing again with its clock fixes it (the SDK did this too). */
const CLOCK_SKEW_CODES = new Set(['RequestTimeTooSkewed', 'RequestExpired']);

/** How the retry strategy sees a failed attempt; undefined = not worth repeating. */
function retryType(err: unknown): 'THROTTLING' | 'TRANSIENT' | undefined {
  if (err instanceof S3ResponseError) {
    if (err.status === 429 || THROTTLING_CODES.has(err.name)) return 'THROTTLING';
    if (TRANSIENT_CODES.has(err.name) || CLOCK_SKEW_CODES.has(err.name) || [500, 502, 503, 504].includes(err.status)) return 'TRANSIENT';
    return undefined;
  }
  return err instanceof HttpError && err.retryable ? 'TRANSIENT' : undefined;
}

function retryAfterOf(value: string | undefined, now: number): Date | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return new Date(now + Number(value) * 1000);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new HttpError('AbortError', 'request aborted', false, signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new HttpError('AbortError', 'request aborted', false, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A DNS label S3 accepts in a host name (else the bucket is addressed path-style). */
function dnsCompatible(bucket: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(bucket);
}

export class S3Client {
  private readonly origin: URL;
  /** The host header. */
  private readonly host: string;
  /** Path of the bucket ('' when virtual-hosted), with the endpoint's own path in front. */
  private readonly bucketPath: string;
  private readonly signer: RequestSigner | undefined;
  private readonly retry: BackoffRetryStrategy;
  private pool: Pool | undefined;
  /** Server clock minus ours, in ms: learnt from a clock-skew error, applied to every signature after it. */
  private clockOffsetMs = 0;
  readonly https: boolean;

  constructor(private readonly opts: S3ClientOptions) {
    const suffix = opts.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    const base = new URL(opts.endpoint ?? `https://s3.${opts.region}.${suffix}`);
    this.https = base.protocol === 'https:';
    const basePath = base.pathname.replace(/\/+$/, '');
    // Dotted names break the TLS wildcard certificate of virtual-hosted S3, so they go path-style there,
    // as do buckets on an endpoint given by IP address (no host name to put the bucket in).
    const virtual =
      !opts.forcePathStyle &&
      dnsCompatible(opts.bucket) &&
      !(this.https && opts.bucket.includes('.')) &&
      isIP(base.hostname.replace(/^\[|\]$/g, '')) === 0;
    this.origin = new URL(`${base.protocol}//${virtual ? `${opts.bucket}.${base.host}` : base.host}`);
    this.host = this.origin.host;
    this.bucketPath = virtual ? basePath : `${basePath}/${uriEncode(opts.bucket)}`;
    this.signer = opts.credentials ? new RequestSigner({ region: opts.region, credentials: opts.credentials }) : undefined;
    this.retry = new BackoffRetryStrategy(opts.maxAttempts, (attempt) => jitteredBackoffMs(attempt, opts.backoff));
  }

  /** Sends a request with retries; resolves with a 2xx response, else throws S3ResponseError or HttpError. */
  async send(call: S3Call): Promise<HttpResponse> {
    const payloadHash = await this.payloadHash(call);
    const slot = storeOpSlot(call.op);
    let token = await this.retry.acquireInitialRetryToken();
    for (;;) {
      try {
        await this.opts.rateLimiter?.acquire(call.op);
        this.opts.requestCounts?.add(slot);
        return await this.attempt(call, payloadHash);
      } catch (err) {
        const type = retryType(err);
        if (type === undefined || call.signal?.aborted || (call.retryable && !call.retryable())) throw err;
        try {
          const retryAfterHint = err instanceof S3ResponseError ? err.retryAfter : undefined;
          token = await this.retry.refreshRetryTokenForRetry(token, { errorType: type, retryAfterHint });
        } catch {
          throw err; // out of attempts: the last error is the answer
        }
        await sleep(token.getRetryDelay(), call.signal);
      }
    }
  }

  /** Closes every connection. */
  close(): void {
    this.pool?.close();
  }

  private async attempt(call: S3Call, payloadHash: string): Promise<HttpResponse> {
    const path = call.key === undefined ? this.bucketPath || '/' : `${this.bucketPath}/${call.key.split('/').map(uriEncode).join('/')}`;
    const query = call.query ?? {};
    const qs = Object.keys(query)
      .sort()
      .map((k) => (query[k] === '' ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(query[k]!)}`))
      .join('&');
    const headers = { ...call.headers, 'x-amz-content-sha256': payloadHash };
    const signed = this.signer
      ? await this.signer.sign({ method: call.method, host: this.host, path, query, headers }, new Date(Date.now() + this.clockOffsetMs))
      : { ...headers, host: this.host };
    const res = await this.connections().request({
      method: call.method,
      target: qs === '' ? path : `${path}?${qs}`,
      headers: signed,
      body: call.body,
      response: call.response?.(),
      signal: call.signal,
      onHead: call.onHead,
    });
    if (res.status >= 300 || (call.errorIn200 && parseError(res.body))) throw this.errorOf(res);
    return res;
  }

  private errorOf(res: HttpResponse): S3ResponseError {
    const parsed = parseError(res.body);
    const code = parsed?.code ?? STATUS_CODES[res.status] ?? `Http${res.status}`;
    const serverTime = Date.parse(res.headers.date ?? '');
    if (CLOCK_SKEW_CODES.has(code) && !Number.isNaN(serverTime)) this.clockOffsetMs = serverTime - Date.now();
    return new S3ResponseError(
      code,
      res.status,
      parsed?.message ?? `HTTP ${res.status}`,
      parsed?.region ?? res.headers['x-amz-bucket-region'],
      retryAfterOf(res.headers['retry-after'], Date.now()),
    );
  }

  /** UNSIGNED-PAYLOAD without a body or over TLS (which protects the bytes); else the body's SHA-256. */
  private async payloadHash(call: S3Call): Promise<string> {
    if (call.sha256 !== undefined) return call.sha256;
    const body = call.body;
    if (body === undefined || this.https) return UNSIGNED_PAYLOAD;
    const h = createHash('sha256');
    if (Buffer.isBuffer(body)) return h.update(body).digest('hex');
    if (body.length === 0) return h.digest('hex');
    for await (const chunk of createReadStream(body.path, { start: body.start, end: body.start + body.length - 1, highWaterMark: 1 << 20 })) {
      h.update(chunk as Buffer);
    }
    return h.digest('hex');
  }

  /** The pool, made on first use: a CA bundle is read only for an https endpoint, and only then. */
  private connections(): Pool {
    if (this.pool) return this.pool;
    let trust: tls.ConnectionOptions | undefined;
    const bundle = this.opts.caBundle ?? process.env.AWS_CA_BUNDLE;
    if (this.https && bundle) {
      let pem: string;
      try {
        pem = readFileSync(bundle, 'utf8');
      } catch (err) {
        throw new HttpError('CaBundleUnreadable', `cannot read the CA bundle ${bundle} (AWS_CA_BUNDLE): ${(err as Error).message}`, false, err);
      }
      // `ca` replaces the default trust store: keep Node's (with NODE_EXTRA_CA_CERTS) and add the bundle's.
      trust = { ca: [...tls.getCACertificates('default'), pem] };
    }
    this.pool = new Pool(this.origin, {
      maxSockets: this.opts.maxSockets,
      connectTimeoutMs: this.opts.connectionTimeoutMs,
      stallTimeoutMs: this.opts.idleTimeoutMs,
      keepAliveMs: 15_000,
      tls: trust,
    });
    return this.pool;
  }
}
