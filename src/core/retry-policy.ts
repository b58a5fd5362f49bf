/**
 * Retry decisions: whether a failed attempt is retried, and after how long. Exponential
 * backoff from a base, capped, with optional full jitter; randomness is a parameter.
 */
import type { RetryPolicy, TaskError } from './model.js';
import { errorMatches } from './model.js';

/**
 * True if the error may be retried under the policy, ignoring the attempt budget. Both
 * lists name errors by code (`BOOM`) or by kind (`timeout`, see `errorKind`); an empty
 * `neverRetryOn` excludes nothing and an empty or absent `retryOn` allows everything.
 */
export function isRetryableError(policy: RetryPolicy, error: TaskError): boolean {
  if (policy.neverRetryOn.length > 0 && errorMatches(policy.neverRetryOn, error)) return false;
  if (policy.retryOn && policy.retryOn.length > 0) return errorMatches(policy.retryOn, error);
  return true;
}

/**
 * Delay before the next attempt after `failures` counted failures (1 for the first),
 * in ms. `random` returns a number in [0, 1).
 */
export function retryDelayMs(policy: RetryPolicy, failures: number, random: () => number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 52);
  const computed = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** exponent);
  return policy.jitter === 'full' ? Math.floor(random() * computed) : computed;
}
