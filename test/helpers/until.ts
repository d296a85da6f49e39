/**
 * Polls `probe` every 50 ms until `ok` holds and returns that value; a probe that throws counts as "not
 * yet". At the deadline, throws naming `what` and the last value or error: a hang guard, not a timing
 * assertion, hence the generous default.
 */
export async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      last = await probe();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last) ?? String(lastErr)})`);
}
