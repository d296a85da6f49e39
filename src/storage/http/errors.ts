// Errors of the HTTP client. `code` is a socket errno code (ECONNRESET, ECONNREFUSED...) or one of ours;
// `retryable` says whether sending the same request again may succeed.
export type HttpErrorCode =
  /** The server closed the connection before sending any byte of a response. */
  | 'ConnectionClosed'
  /** The connection ended before the response was complete (short body, half a head). */
  | 'ResponseTruncated'
  /** Not a valid HTTP/1.1 response. */
  | 'BadResponse'
  /** Connecting took longer than the connect timeout. */
  | 'ConnectTimeout'
  /** A response stalled (nothing sent or received) for longer than the stall timeout. */
  | 'TimeoutError'
  /** The response body does not fit in the caller's buffer. */
  | 'BodyTooLarge'
  | 'AbortError';

export class HttpError extends Error {
  override readonly name: string;
  constructor(
    readonly code: HttpErrorCode | string,
    message: string,
    readonly retryable: boolean,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    // AbortError keeps its conventional name so that callers can tell a cancellation from a failure.
    this.name = code === 'AbortError' ? 'AbortError' : 'HttpError';
  }
}

/** Socket-level failures worth another attempt (the request may not even have reached the server). */
const RETRYABLE_SOCKET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/** Wraps a socket error (or passes an HttpError through). */
export function socketError(err: unknown, origin: string): HttpError {
  if (err instanceof HttpError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'ECONNRESET';
  const message = `${origin}: ${(err as Error).message ?? code}`;
  return new HttpError(code, message, RETRYABLE_SOCKET_CODES.has(code), err);
}
