import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { RetryPolicy, TaskError } from '../../src/core/model.js';
import { DEFAULT_RETRY, NON_RETRYABLE_CODES } from '../../src/core/model.js';
import { isRetryableError, retryDelayMs } from '../../src/core/retry-policy.js';

const policy = (over: Partial<RetryPolicy> = {}): RetryPolicy => ({
  maxAttempts: 5,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  jitter: 'none',
  neverRetryOn: NON_RETRYABLE_CODES,
  ...over,
});

const error = (code: string): TaskError => ({ code, message: `failed with ${code}` });

const never = (): number => {
  throw new Error('random must not be drawn without jitter');
};

describe('retryDelayMs', () => {
  it('waits the base delay after the first failure and doubles after each further one', () => {
    const p = policy();
    expect([1, 2, 3, 4, 5].map((f) => retryDelayMs(p, f, never))).toEqual([1000, 2000, 4000, 8000, 16_000]);
  });

  it('caps a single delay at maxBackoffMs', () => {
    const p = policy({ backoffMs: 1000, maxBackoffMs: 5000 });
    expect([3, 4, 5, 50].map((f) => retryDelayMs(p, f, never))).toEqual([4000, 5000, 5000, 5000]);
  });

  it('stays finite and capped for absurd failure counts', () => {
    const p = policy({ maxBackoffMs: 3_600_000 });
    expect(retryDelayMs(p, 10_000, never)).toBe(3_600_000);
  });

  it('treats a failure count of 0 like the first failure', () => {
    expect(retryDelayMs(policy(), 0, never)).toBe(1000);
  });

  it('scales the computed delay by the injected random under full jitter', () => {
    const p = policy({ jitter: 'full' });
    expect(retryDelayMs(p, 1, () => 0)).toBe(0);
    expect(retryDelayMs(p, 1, () => 0.5)).toBe(500);
    expect(retryDelayMs(p, 3, () => 0.25)).toBe(1000);
    expect(retryDelayMs(p, 1, () => 0.9999999)).toBe(999);
  });

  it('keeps a jittered delay in [0, computed) for any random in [0, 1)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (backoffMs, maxBackoffMs, failures, r) => {
          const computed = retryDelayMs(policy({ backoffMs, maxBackoffMs }), failures, never);
          const delay = retryDelayMs(policy({ backoffMs, maxBackoffMs, jitter: 'full' }), failures, () => r);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(computed);
          expect(computed).toBeLessThanOrEqual(maxBackoffMs);
        },
      ),
    );
  });
});

describe('isRetryableError', () => {
  it('retries any error that no list excludes', () => {
    expect(isRetryableError(policy(), error('BOOM'))).toBe(true);
  });

  it('never retries validation-type errors by default', () => {
    for (const code of NON_RETRYABLE_CODES) expect(isRetryableError(DEFAULT_RETRY, error(code))).toBe(false);
    expect(isRetryableError(DEFAULT_RETRY, error('TASK_FAILED'))).toBe(true);
  });

  it('retries only listed codes when retryOn is set', () => {
    const p = policy({ retryOn: ['HTTP_503', 'ECONNRESET'] });
    expect(isRetryableError(p, error('HTTP_503'))).toBe(true);
    expect(isRetryableError(p, error('ECONNRESET'))).toBe(true);
    expect(isRetryableError(p, error('BOOM'))).toBe(false);
  });

  it('treats an empty retryOn as no restriction', () => {
    expect(isRetryableError(policy({ retryOn: [] }), error('BOOM'))).toBe(true);
  });

  it('lets neverRetryOn win over retryOn', () => {
    const p = policy({ retryOn: ['FLAKY'], neverRetryOn: ['FLAKY'] });
    expect(isRetryableError(p, error('FLAKY'))).toBe(false);
  });

  it('retries codes that are in neither list when neverRetryOn is empty', () => {
    expect(isRetryableError(policy({ neverRetryOn: [] }), error('VALIDATION'))).toBe(true);
  });
});
