import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { RetryPolicy, TaskError } from '../../src/core/model.js';
import { DEFAULT_RETRY, ERROR_KINDS, errorKind, errorMatches, NON_RETRYABLE_CODES } from '../../src/core/model.js';
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

describe('error kinds', () => {
  it('takes the kind the thrower set, when it is a known kind', () => {
    expect(errorKind({ code: 'X', kind: 'transient', message: '' })).toBe('transient');
    expect(errorKind({ code: 'TASK_TIMEOUT', kind: 'validation', message: '' })).toBe('validation');
  });

  it('falls back to the kind of the code, then to error, for an unknown or absent kind', () => {
    expect(errorKind({ code: 'TASK_TIMEOUT', message: '' })).toBe('timeout');
    expect(errorKind({ code: 'WAIT_TIMEOUT', kind: 'made-up', message: '' })).toBe('timeout');
    expect(errorKind({ code: 'WORKER_LOST', message: '' })).toBe('lost');
    expect(errorKind({ code: 'TASK_CANCELLED', message: '' })).toBe('cancelled');
    expect(errorKind({ code: 'APPROVAL_REJECTED', message: '' })).toBe('rejected');
    expect(errorKind({ code: 'MAP_OVER_INVALID', message: '' })).toBe('validation');
    expect(errorKind({ code: 'BOOM', message: '' })).toBe('error');
  });

  it('does not take a kind from Object.prototype for codes such as constructor', () => {
    for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(errorKind(error(code))).toBe('error');
    }
  });

  it('every code that is never retried by default is of kind validation or rejected, and so are the kinds', () => {
    const codes = NON_RETRYABLE_CODES.filter((c) => c === c.toUpperCase());
    for (const code of codes) expect(['validation', 'rejected']).toContain(errorKind(error(code)));
    expect(NON_RETRYABLE_CODES.filter((c) => !codes.includes(c))).toEqual(['validation', 'rejected']);
  });

  it('matches selectors by code or by kind; an empty list matches everything', () => {
    expect(errorMatches([], error('ANY'))).toBe(true);
    expect(errorMatches(['BOOM'], error('BOOM'))).toBe(true);
    expect(errorMatches(['boom'], error('BOOM'))).toBe(false);
    expect(errorMatches(['timeout'], error('TASK_TIMEOUT'))).toBe(true);
    expect(errorMatches(['timeout'], { code: 'SLOW', kind: 'timeout', message: '' })).toBe(true);
    expect(errorMatches(['lost', 'validation'], error('TASK_TIMEOUT'))).toBe(false);
    expect(errorMatches(['error'], error('BOOM'))).toBe(true);
    expect(errorMatches(['error'], error('TASK_TIMEOUT'))).toBe(false);
  });

  it('every error has exactly one of the known kinds', () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.string(), { nil: undefined }), (code, kind) => {
        const e: TaskError = kind === undefined ? { code, message: '' } : { code, kind, message: '' };
        expect(ERROR_KINDS).toContain(errorKind(e));
        expect(errorMatches([errorKind(e)], e)).toBe(true);
        expect(errorMatches([code], e)).toBe(true);
      }),
    );
  });
});

describe('isRetryableError with kinds', () => {
  it('retries only errors of the listed kinds when retryOn names kinds', () => {
    const p = policy({ retryOn: ['timeout', 'transient'] });
    expect(isRetryableError(p, error('TASK_TIMEOUT'))).toBe(true);
    expect(isRetryableError(p, error('WAIT_TIMEOUT'))).toBe(true);
    expect(isRetryableError(p, { code: 'HTTP_503', kind: 'transient', message: '' })).toBe(true);
    expect(isRetryableError(p, error('BOOM'))).toBe(false);
  });

  it('mixes codes and kinds in one list', () => {
    const p = policy({ retryOn: ['HTTP_503', 'lost'] });
    expect(isRetryableError(p, error('HTTP_503'))).toBe(true);
    expect(isRetryableError(p, error('WORKER_LOST'))).toBe(true);
    expect(isRetryableError(p, error('HTTP_500'))).toBe(false);
  });

  it('never retries the kinds neverRetryOn names', () => {
    const p = policy({ neverRetryOn: ['validation'] });
    expect(isRetryableError(p, error('TASK_INPUT'))).toBe(false);
    expect(isRetryableError(p, { code: 'BAD_ROW', kind: 'validation', message: '' })).toBe(false);
    expect(isRetryableError(p, error('BOOM'))).toBe(true);
  });

  it('lets a kind in neverRetryOn win over a code in retryOn', () => {
    const p = policy({ retryOn: ['TASK_TIMEOUT'], neverRetryOn: ['timeout'] });
    expect(isRetryableError(p, error('TASK_TIMEOUT'))).toBe(false);
  });

  it('does not treat the kind "error" as a wildcard for errors of other kinds', () => {
    const p = policy({ retryOn: ['error'] });
    expect(isRetryableError(p, error('BOOM'))).toBe(true);
    expect(isRetryableError(p, error('TASK_TIMEOUT'))).toBe(false);
  });

  it('never retries validation or rejected errors under the default policy, whatever their code', () => {
    expect(isRetryableError(DEFAULT_RETRY, { code: 'BOOM', kind: 'validation', message: '' })).toBe(false);
    expect(isRetryableError(DEFAULT_RETRY, { code: 'BOOM', kind: 'rejected', message: '' })).toBe(false);
    expect(isRetryableError(DEFAULT_RETRY, { code: 'BOOM', kind: 'transient', message: '' })).toBe(true);
    expect(isRetryableError(DEFAULT_RETRY, error('VALIDATION'))).toBe(false);
  });
});
