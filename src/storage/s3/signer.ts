// AWS Signature Version 4 for our requests, by the SDK's own signer (@smithy/signature-v4): the same
// canonicalisation the SDK used, without the SDK's middleware around it. Credentials come from a provider
// that is asked on every request (the default chain memoises and refreshes before expiry); anonymous
// requests (public buckets) are not signed at all.
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type CredentialProvider = () => Promise<Credentials>;

/** The payload hash S3 accepts in place of the body's SHA-256 (integrity then rests on TLS or on MD5). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

type Bytes = string | ArrayBuffer | ArrayBufferView;

function bytes(data: Bytes): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/** SHA-256 (or HMAC-SHA256 with a key) for the signer, by node:crypto. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: Bytes) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Bytes): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
  reset(): void {
    throw new Error('not resettable: make a new one');
  }
}

export interface SignableRequest {
  method: string;
  /** The host header's value (with the port if not the default). */
  host: string;
  /** The path as sent: already percent-encoded for S3 (see uriEscapePath). */
  path: string;
  query: Record<string, string | string[]>;
  /** Headers to send and sign (lower-case names); `x-amz-content-sha256` gives the payload hash. */
  headers: Record<string, string>;
  /** Only hashed, when no x-amz-content-sha256 header gives the hash; never sent from here. */
  body?: string | Uint8Array;
}

export interface SignerOptions {
  region: string;
  credentials: CredentialProvider;
  /** Default 's3'. */
  service?: string;
  /** S3 signs the path exactly as sent; other services normalise and encode it again (default false). */
  uriEscapePath?: boolean;
}

export class RequestSigner {
  private readonly v4: SignatureV4;

  constructor(opts: SignerOptions) {
    this.v4 = new SignatureV4({
      credentials: opts.credentials,
      region: opts.region,
      service: opts.service ?? 's3',
      sha256: Sha256,
      uriEscapePath: opts.uriEscapePath ?? false,
      applyChecksum: false,
    });
  }

  /** The headers to send: the given ones plus authorization, x-amz-date and x-amz-security-token. */
  async sign(req: SignableRequest, date = new Date()): Promise<Record<string, string>> {
    const hostname = req.host;
    const signed = await this.v4.sign(
      { method: req.method, protocol: 'https:', hostname, path: req.path, query: req.query, headers: { ...req.headers, host: req.host }, body: req.body },
      { signingDate: date },
    );
    return signed.headers;
  }
}

/** Percent-encodes like SigV4 (RFC 3986 unreserved characters stay): for query strings and key segments. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
