/**
 * The duration parser over everything a user may write: what it accepts is a whole number
 * of ms from 0 to the limit duration_ms, reads back the same from its exact text, and the
 * schemas of flow files, baton.yaml and the TypeScript builder judge it as the parser does.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS, parseDuration, readDuration, writeDuration } from '../../src/core/duration.js';
import { LIMITS } from '../../src/core/limits.js';
import { defineFlow } from '../../src/define/builder.js';
import { durationSchema, positiveDurationSchema } from '../../src/define/flow-schema-parts.js';

const DAY = 86_400_000;
const UNITS = ['ms', 's', 'm', 'h', 'd'] as const;

/** Text as users write it: one to four parts like `12h`, `1.5d`, `250ms`, or bare digits. */
const writtenDuration = fc.oneof(
  fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.nat({ max: 1000 }).map(String),
          fc.tuple(fc.nat(999), fc.nat(999)).map(([a, b]) => `${a}.${b}`),
        ),
        fc.constantFrom(...UNITS),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((parts) => parts.map(([n, u]) => `${n}${u}`).join('')),
  fc.nat({ max: 2 * MAX_DURATION_MS }).map(String),
);

const accepted = fc.integer({ min: 0, max: MAX_DURATION_MS });

describe('durations', () => {
  it('the limit is the documented duration_ms, 366 days, and fixed', () => {
    expect(MAX_DURATION_MS).toBe(366 * DAY);
    expect(LIMITS.duration_ms).toMatchObject({ default: 366 * DAY, max: 366 * DAY });
    expect('setting' in LIMITS.duration_ms).toBe(false);
  });

  it('every accepted value from 0 to the limit round-trips through its exact text', () => {
    fc.assert(
      fc.property(accepted, (ms) => {
        const text = writeDuration(ms);
        expect(parseDuration(text)).toBe(ms);
        expect(parseDuration(ms)).toBe(ms);
        expect(readDuration(text, 'positive').ok).toBe(ms > 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('whatever the parser accepts is whole, within [0, limit], and reads back the same', () => {
    fc.assert(
      fc.property(writtenDuration, (text) => {
        const ms = parseDuration(text);
        if (ms === undefined) {
          const read = readDuration(text);
          expect(read.ok).toBe(false);
          return;
        }
        expect(Number.isInteger(ms)).toBe(true);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(MAX_DURATION_MS);
        expect(parseDuration(writeDuration(ms))).toBe(ms);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses anything over the limit with a message naming the limit, and by how much', () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_DURATION_MS + 1, max: 100 * MAX_DURATION_MS }), (ms) => {
        for (const input of [ms, writeDuration(ms)]) {
          const read = readDuration(input);
          expect(read).toMatchObject({ ok: false, reason: 'over_limit' });
          if (read.ok) return;
          expect(read.message).toBe(`${writeDuration(ms)} is over the limit duration_ms (366 d)`);
          expect(read.hint).toBe('The limit duration_ms is fixed at 366 d; make it smaller.');
        }
      }),
    );
    expect(parseDuration('367d')).toBeUndefined();
    expect(parseDuration('366d')).toBe(MAX_DURATION_MS);
    expect(parseDuration('366d1ms')).toBeUndefined();
    expect(readDuration('9'.repeat(400) + 'd')).toMatchObject({ ok: false, reason: 'over_limit' });
  });

  it('refuses zero where a duration must take time, and negatives everywhere', () => {
    expect(readDuration('0s', 'positive')).toMatchObject({
      ok: false,
      reason: 'too_small',
      message: 'must be longer than 0, got "0s"',
    });
    expect(readDuration(0, 'positive')).toMatchObject({ ok: false, message: 'must be longer than 0, got 0' });
    // Rounded to whole ms first: 0.4 ms is 0.
    expect(readDuration('0.4ms', 'positive')).toMatchObject({ ok: false, reason: 'too_small' });
    expect(readDuration('0.5ms', 'positive')).toEqual({ ok: true, ms: 1 });
    expect(readDuration(0)).toEqual({ ok: true, ms: 0 });
    expect(readDuration(-5)).toMatchObject({ ok: false, message: 'must not be negative, got -5' });
    expect(readDuration(-5, 'positive')).toMatchObject({ ok: false, message: 'must be longer than 0, got -5' });
    expect(readDuration('-5s')).toMatchObject({ ok: false, reason: 'not_a_duration' });
    expect(readDuration(1.5, 'non_negative', { wholeNumbers: true })).toMatchObject({ reason: 'not_a_duration' });
    for (const bad of ['', ' ', 'soon', '5x', '1e3', '5 m', Number.NaN, Number.POSITIVE_INFINITY, true, null, {}]) {
      expect(readDuration(bad)).toMatchObject({ ok: false, reason: 'not_a_duration' });
    }
  });

  it('the schemas of flow files and baton.yaml judge every value as the parser does', () => {
    const value = fc.oneof(
      writtenDuration,
      fc.integer({ min: -10, max: 2 * MAX_DURATION_MS }),
      fc.constantFrom('0', '0s', 0, '366d', '367d', '25d', 'soon'),
    );
    fc.assert(
      fc.property(value, (v) => {
        const whole = readDuration(v, 'non_negative', { wholeNumbers: true });
        const positive = readDuration(v, 'positive', { wholeNumbers: true });
        const a = durationSchema.safeParse(v);
        const b = positiveDurationSchema.safeParse(v);
        expect(a.success).toBe(whole.ok);
        expect(b.success).toBe(positive.ok);
        if (a.success && whole.ok) expect(a.data).toBe(whole.ms);
        if (!b.success && !positive.ok) expect(b.error.issues[0]?.message).toBe(positive.message);
      }),
      { numRuns: 1000 },
    );
  });

  it('the TypeScript builder refuses the same durations, with the same words', () => {
    const flow = defineFlow({ name: 'bounds', timeout: '367d', defaults: { timeout: 0 } });
    flow.task('a', { timeout: '0s', retry: { maxAttempts: 2, backoff: 0, maxBackoff: '400d' } }, async () => 1);
    let messages: string[] = [];
    try {
      flow.toSpec();
    } catch (error) {
      messages = ((error as { problems?: { message: string }[] }).problems ?? []).map((p) => p.message);
    }
    expect(messages).toEqual(
      expect.arrayContaining([
        'timeout: 367d is over the limit duration_ms (366 d)',
        'defaults.timeout: must be longer than 0, got 0',
        'tasks.a.timeout: must be longer than 0, got "0s"',
        'tasks.a.retry.maxBackoff: 400d is over the limit duration_ms (366 d)',
      ]),
    );
    // A backoff of 0 retries at once: accepted.
    expect(messages.some((m) => m.includes('retry.backoff'))).toBe(false);
  });
});
