// AWS Signature Version 4 for our requests: the canonical request, the string to sign and the signature,
// as the SDK's signer (@smithy/signature-v4) computes them (the AWS test suite and the S3 examples check
// both, test/unit/storage/sigv4.test.ts), in a few string joins and two digests. Ours because the SDK's took
// 20 µs of CPU per request against 9 (and made garbage: part of it is an HMAC of the credentials, computed
// only to look its signing key up in a cache), a cost paid per small file. Credentials come from a provider asked
// on every request (the default chain memoises and refreshes before expiry); anonymous requests (public
// buckets) are not signed at all.
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type CredentialProvider = () => Promise<Credentials>;

/** The payload hash S3 accepts in place of the body's SHA-256 (integrity then rests on TLS or on MD5). */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

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

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** Headers never signed (the SDK's list): proxies and clients may change them on the way. */
const UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

export class RequestSigner {
  private readonly service: string;
  /** The signing key of the last (day, secret) signed with: it changes once a day, or with the credentials. */
  private key: { scope: string; secret: string; key: Buffer } | undefined;

  constructor(private readonly opts: SignerOptions) {
    this.service = opts.service ?? 's3';
  }

  /** The headers to send: the given ones plus host, x-amz-date, x-amz-security-token and authorization. */
  async sign(req: SignableRequest, date = new Date()): Promise<Record<string, string>> {
    const creds = await this.opts.credentials();
    const longDate = date.toISOString().replace(/[-:]|\.\d{3}/g, ''); // 20150830T123600Z
    const scope = `${longDate.slice(0, 8)}/${this.opts.region}/${this.service}/aws4_request`;
    const headers: Record<string, string> = { ...req.headers, host: req.host, 'x-amz-date': longDate };
    if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
    const names = Object.keys(headers)
      .filter((n) => !UNSIGNABLE.has(n) && !n.startsWith('proxy-') && !n.startsWith('sec-'))
      .sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${canonicalValue(headers[n]!)}\n`;
    const signedHeaders = names.join(';');
    const payloadHash = headers['x-amz-content-sha256'] ?? sha256Hex(req.body ?? '');
    const canonicalRequest = `${req.method}\n${this.canonicalPath(req.path)}\n${canonicalQuery(req.query)}\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
    const stringToSign = `${ALGORITHM}\n${longDate}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac('sha256', this.signingKey(scope, creds.secretAccessKey)).update(stringToSign).digest('hex');
    headers.authorization = `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  private signingKey(scope: string, secret: string): Buffer {
    if (this.key?.scope !== scope || this.key.secret !== secret) {
      let key: Buffer | string = `AWS4${secret}`;
      for (const part of scope.split('/')) key = createHmac('sha256', key).update(part).digest();
      this.key = { scope, secret, key: key as Buffer };
    }
    return this.key.key;
  }

  /** S3: the path as sent. Other services: dot segments resolved, empty ones dropped, then encoded again. */
  private canonicalPath(path: string): string {
    if (!this.opts.uriEscapePath) return path;
    const segments: string[] = [];
    for (const s of path.split('/')) {
      if (s === '' || s === '.') continue;
      if (s === '..') segments.pop();
      else segments.push(s);
    }
    const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
    return uriEncode(normalized).replace(/%2F/g, '/');
  }
}

/** Trimmed, with runs of spaces and tabs (and line breaks) as one space. */
function canonicalValue(v: string): string {
  return /[\r\n\t]|^ | $| {2}/.test(v) ? v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : v;
}

/** Encoded pairs sorted by encoded key (a repeated key's pairs sorted among themselves). */
function canonicalQuery(query: Record<string, string | string[]>): string {
  const groups: [string, string][] = [];
  for (const key of Object.keys(query)) {
    if (key.toLowerCase() === 'x-amz-signature') continue;
    const k = uriEncode(key);
    const value = query[key]!;
    const pairs = typeof value === 'string' ? `${k}=${uriEncode(value)}` : value.map((v) => `${k}=${uriEncode(v)}`).sort().join('&');
    groups.push([k, pairs]);
  }
  return groups
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map((g) => g[1])
    .join('&');
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Percent-encodes like SigV4 (RFC 3986 unreserved characters stay): for query strings and key segments. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
