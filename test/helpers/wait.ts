/** Polling for a condition in tests, bounded in checks and in time. */

export interface WaitOptions {
  /** Give up after this many ms. */
  readonly timeoutMs: number;
  /** Pause between checks, in ms. Default 25. */
  readonly intervalMs?: number;
  /** What is awaited, for the error message. */
  readonly what: string;
}

/**
 * Checks `probe` until it returns something other than undefined; fails after
 * `timeoutMs` or after `timeoutMs / intervalMs + 1` checks, whichever comes first.
 */
export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, o: WaitOptions): Promise<T> {
  const interval = o.intervalMs ?? 25;
  const maxChecks = Math.ceil(o.timeoutMs / interval) + 1;
  const deadline = Date.now() + o.timeoutMs;
  for (let i = 0; i < maxChecks && Date.now() <= deadline; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}`);
}
