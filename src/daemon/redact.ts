// Keeps secrets out of logs and status output, two ways: by key (any field named like a secret, at any depth)
// and by value (every secret the daemon resolved is registered here, and any string containing it is masked,
// so even a third-party error message that quotes a key cannot leak it).
export const REDACTED = '[REDACTED]';

// accessKeyId is deliberately absent: it names a key, it is not one, and seeing it helps debugging.
const SECRET_KEY = /^(secretaccesskey|secret_access_key|awssecretaccesskey|aws_secret_access_key|sessiontoken|session_token|password|passwd|authorization|token|secret|secretkey|secret_key|privatekey|private_key)$/i;
const MIN_SECRET_LENGTH = 4; // shorter values would mask ordinary words

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export class Redactor {
  private readonly values = new Set<string>();

  /** Registers a resolved secret value so that it is masked wherever it appears. */
  addSecret(value: string | undefined): void {
    if (value && value.length >= MIN_SECRET_LENGTH) this.values.add(value);
  }

  scrubString(s: string): string {
    let out = s;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }

  /** A copy of `value` with secret fields and secret values masked; Errors become plain objects. */
  scrub(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.scrubString(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth > 8) return '[…]';
    if (value instanceof Error) {
      const out: Record<string, unknown> = { type: value.name, message: this.scrubString(value.message) };
      if (value.stack) out.stack = this.scrubString(value.stack);
      for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : this.scrub(v, depth + 1);
      if (value.cause !== undefined) out.cause = this.scrub(value.cause, depth + 1);
      return out;
    }
    if (Array.isArray(value)) return value.map((v) => this.scrub(v, depth + 1));
    if (value instanceof Date || Buffer.isBuffer(value)) return value;
    if (value instanceof Map) return this.scrub(Object.fromEntries(value), depth);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) && v !== undefined ? REDACTED : this.scrub(v, depth + 1);
    return out;
  }
}

/** One redactor per process: the logger, the status server and the resolvers share it. */
export const redactor = new Redactor();
