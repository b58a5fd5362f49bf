/**
 * Building blocks of the flow-file schemas: names, durations, integer ranges. Shared by the
 * task and trigger schemas.
 */
import { z } from 'zod';
import type { DurationReading, DurationRule } from '../core/duration.js';
import { DURATION_FORMS, readDuration } from '../core/duration.js';

/** Flow names, task ids, param and pool names. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
export const NAME_MAX_LENGTH = 128;
export const NAME_RULE = `must start with a letter or _ and contain only letters, digits, _ and - (at most ${NAME_MAX_LENGTH} characters)`;

export function isValidName(name: string): boolean {
  return name.length <= NAME_MAX_LENGTH && NAME_PATTERN.test(name);
}

/** Explains why `name` is not a valid name, or returns undefined when it is. */
export function checkName(name: string): string | undefined {
  return isValidName(name) ? undefined : `${NAME_RULE}, got ${JSON.stringify(name)}`;
}

export { DURATION_FORMS };

/**
 * Milliseconds of a written duration of zero or more, up to the limit duration_ms;
 * undefined otherwise. Numbers must be whole, as `parseDuration` accepts fractions.
 */
export function durationMs(value: unknown): number | undefined {
  const read = readDuration(value, 'non_negative', { wholeNumbers: true });
  return read.ok ? read.ms : undefined;
}

/**
 * A duration as written (`5m`, `1m30s`, `250`) in; milliseconds out. The rule and the
 * bound come from core/duration.ts, the one place durations are judged: every key that
 * takes a duration uses one of the two schemas below.
 */
function durationUnder(rule: DurationRule) {
  return z
    .custom<string | number>((v) => typeof v === 'string' || typeof v === 'number', {
      error: `must be a duration like ${DURATION_FORMS}`,
    })
    .transform((v, ctx) => {
      const read = readDuration(v, rule, { wholeNumbers: true });
      if (read.ok) return read.ms;
      ctx.addIssue(durationIssue(read, v));
      return z.NEVER;
    });
}

/**
 * The schema issue for a refused duration. Text that is no duration gets `notADuration`
 * and the shared wording of the issue mapper ("…, got …" and its hint); a duration out of
 * bounds keeps the words (and, over the limit, the limit's name) that core/duration.ts gave.
 */
export function durationIssue(
  read: Extract<DurationReading, { ok: false }>,
  input: unknown,
  notADuration: string = read.message,
): z.core.$ZodRawIssue {
  return read.reason === 'not_a_duration'
    ? { code: 'custom', message: notADuration, input }
    : { code: 'custom', message: read.message, input, params: { hint: read.hint } };
}

/** Zero or more, where zero means "at once" on purpose: retry backoffs, jitter, kill grace. */
export const durationSchema = durationUnder('non_negative');

/** More than zero, where zero would end at once what must take time: timeouts, intervals, leases, polls, deadlines. */
export const positiveDurationSchema = durationUnder('positive');

export function intRange(min: number, max: number) {
  const error = `must be an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

export const POSITIVE = 'must be a positive integer';
export const positiveInt = z.number({ error: POSITIVE }).int({ error: POSITIVE }).positive({ error: POSITIVE });
export const nameSchema = z.string().refine(isValidName, { error: NAME_RULE });
