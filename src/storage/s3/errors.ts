// Maps S3 error responses (S3ResponseError, shaped like the AWS SDK's errors) and network errors (HttpError,
// socket errors) to StorageError codes with a message that names the bucket (and endpoint) and says what
// to do. Never includes credentials: only the access key id's absence/presence is implied.
import { StorageError, type StorageErrorCode } from '../errors.js';

interface SdkLikeError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
  /** The bucket's region, when the server said (S3ResponseError). */
  region?: string;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'TimeoutError',
  'RequestTimeout',
  // Our HTTP client's (src/storage/http/errors.ts): the connection broke or the answer was garbled.
  'ConnectionClosed',
  'ResponseTruncated',
  'BadResponse',
  'ConnectTimeout',
]);
/** The server's TLS certificate is not trusted (or not for this host): no retry fixes that. */
const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CaBundleUnreadable',
]);
const BAD_CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
  'AuthorizationHeaderMalformed',
]);
/** What a rejection says about the settings, in words. */
const CREDENTIAL_CAUSES: Record<string, string> = {
  SignatureDoesNotMatch: 'SignatureDoesNotMatch: the secret access key does not match the access key id',
  InvalidAccessKeyId: 'InvalidAccessKeyId: no such access key id',
};
/** Out of file descriptors: our own limit, not the network's fault (a socket could not even be opened). */
const FD_LIMIT_CODES = new Set(['EMFILE', 'ENFILE']);
const THROTTLE_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestLimitExceeded']);

export interface S3ErrorContext {
  bucket: string;
  /** Endpoint URL or region, for the message. */
  where: string;
  key?: string;
  /** What we were doing: 'read', 'write', 'list'... */
  op: string;
  /** The region requests are signed for: an answer naming another one is a wrong-region error. */
  region?: string;
}

function errorCode(err: SdkLikeError): string {
  const cause = (err as { cause?: SdkLikeError }).cause;
  return err.Code ?? err.code ?? (err.name && err.name !== 'Error' ? err.name : undefined) ?? cause?.code ?? 'Unknown';
}

function statusOf(err: SdkLikeError): number | undefined {
  return err.$metadata?.httpStatusCode ?? err.$response?.statusCode;
}

/** Classifies an error thrown by the SDK into a StorageErrorCode (pure: used by tests too). */
export function classifyS3Error(err: unknown): StorageErrorCode {
  const e = (err ?? {}) as SdkLikeError;
  const code = errorCode(e);
  const status = statusOf(e);
  if (code === 'AbortError' || FD_LIMIT_CODES.has(code)) return 'Io';
  if (TLS_TRUST_CODES.has(code)) return 'Unreachable';
  if (BAD_CREDENTIAL_CODES.has(code)) return 'BadCredentials';
  if (THROTTLE_CODES.has(code) || status === 429) return 'Throttled';
  if (code === 'PreconditionFailed' || status === 412) return 'PreconditionFailed';
  if (code === 'InvalidRange' || status === 416) return 'InvalidRange';
  if (code === 'NoSuchBucket' || code === 'NoSuchKey' || code === 'NotFound' || status === 404) return 'NotFound';
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) return 'AccessDenied';
  if (NETWORK_CODES.has(code) || (status === undefined && /socket|connect|network/i.test(e.message ?? ''))) {
    return 'Unreachable';
  }
  if (status === 503) return 'Throttled';
  return 'Io';
}

/** The region the server says the bucket is in, when it is not the one we sign for. */
function otherRegion(e: SdkLikeError, ctx: S3ErrorContext): string | undefined {
  return e.region && ctx.region && e.region !== ctx.region ? e.region : undefined;
}

/** Turns any error from an S3 call into a StorageError that says what failed and what to do. */
export function toStorageError(err: unknown, ctx: S3ErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as SdkLikeError;
  const sdkCode = errorCode(e);
  const region = otherRegion(e, ctx);
  const target = ctx.key === undefined ? `bucket "${ctx.bucket}"` : `"${ctx.key}" in bucket "${ctx.bucket}"`;
  const at = `at ${ctx.where}`;
  const details = { location: `s3://${ctx.bucket}`, key: ctx.key, cause: err };
  if (region) {
    // A wrong region is a setting to fix, never worth a retry.
    return new StorageError(
      'Unreachable',
      `bucket "${ctx.bucket}" is in region ${region}, not ${ctx.region} (${sdkCode} ${at}): set the region to ${region}`,
      { ...details, retryable: false },
    );
  }
  if (TLS_TRUST_CODES.has(sdkCode)) {
    const fix =
      sdkCode === 'CaBundleUnreadable'
        ? e.message ?? sdkCode
        : sdkCode === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'the certificate is for another host name: check the endpoint URL'
          : 'if a private CA signed it, point AWS_CA_BUNDLE (or NODE_EXTRA_CA_CERTS) at a PEM file with that CA';
    return new StorageError('Unreachable', `cannot trust the TLS certificate of ${ctx.where} for bucket "${ctx.bucket}" (${sdkCode}): ${fix}`, {
      ...details,
      retryable: false,
    });
  }
  const code = classifyS3Error(err);
  let message: string;
  switch (code) {
    case 'BadCredentials':
      message =
        sdkCode === 'CredentialsProviderError'
          ? `no usable credentials for bucket "${ctx.bucket}" ${at} (${e.message ?? sdkCode}): check the access key id and secret access key, or the AWS credential chain (environment, profile, role)`
          : `S3 ${at} rejected the credentials for bucket "${ctx.bucket}" (${CREDENTIAL_CAUSES[sdkCode] ?? sdkCode}): check the access key id and secret access key`;
      break;
    case 'AccessDenied':
      message = `access denied to ${target} ${at} (${ctx.op}): check the credentials and that their policy allows this bucket`;
      break;
    case 'NotFound':
      message =
        sdkCode === 'NoSuchBucket'
          ? `bucket "${ctx.bucket}" does not exist ${at}: create it or fix the bucket name/region/endpoint`
          : `${target} not found ${at}`;
      break;
    case 'Unreachable':
      message =
        sdkCode === 'ResponseTruncated' || sdkCode === 'BadResponse'
          ? `S3 endpoint ${ctx.where} sent a broken response for ${target} (${sdkCode}: ${e.message ?? ''}) even after retries: check the endpoint URL and the network`
          : `cannot reach S3 endpoint ${ctx.where} for bucket "${ctx.bucket}" (${sdkCode}): check the endpoint URL and the network`;
      break;
    case 'Throttled':
      message = `S3 ${at} is throttling requests to bucket "${ctx.bucket}" (${sdkCode}) even after retries: slow down or retry later`;
      break;
    case 'PreconditionFailed':
      message = `${target} ${at} changed or already exists (${ctx.op} precondition failed)`;
      break;
    case 'InvalidRange':
      message = `invalid byte range for ${target} ${at}`;
      break;
    default:
      if (FD_LIMIT_CODES.has(sdkCode)) {
        message = `S3 ${ctx.op} of ${target} ${at} failed: this process is out of file descriptors (${sdkCode}): raise its open-file limit (ulimit -n, or LimitNOFILE= in the systemd unit)`;
        break;
      }
      message = `S3 ${ctx.op} of ${target} ${at} failed: ${sdkCode}${e.message && e.message !== sdkCode ? `: ${e.message}` : ''}`;
  }
  const status = statusOf(e);
  const retryable = code === 'Throttled' || code === 'Unreachable' || (status !== undefined && status >= 500);
  return new StorageError(code, message, { ...details, retryable });
}
