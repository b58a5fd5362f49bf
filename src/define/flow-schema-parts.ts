/**
 * Building blocks of the flow-file schemas: names, durations, integer ranges. Shared by the
 * task and trigger schemas.
 */
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

/** Flow names, task ids, param and pool names. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
export const NAME_MAX_LENGTH = 128;
const NAME_RULE = `must start with a letter or _ and contain only letters, digits, _ and - (at most ${NAME_MAX_LENGTH} characters)`;

export function isValidName(name: string): boolean {
  return name.length <= NAME_MAX_LENGTH && NAME_PATTERN.test(name);
}

/** Explains why `name` is not a valid name, or returns undefined when it is. */
export function checkName(name: string): string | undefined {
  return isValidName(name) ? undefined : `${NAME_RULE}, got ${JSON.stringify(name)}`;
}

export const DURATION_FORMS = '250ms, 90s, 5m, 1h, 1m30s or a whole number of milliseconds';

/** Milliseconds of a written duration; numbers must be whole, as `parseDuration` accepts fractions. */
export function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value === 'string') return parseDuration(value);
  return undefined;
}

/** A duration as written (`5m`, `1m30s`, `250`) in; milliseconds out. */
export const durationSchema = z
  .custom<string | number>((v) => durationMs(v) !== undefined, { error: `must be a duration like ${DURATION_FORMS}` })
  .transform((v) => durationMs(v) as number);

export function intRange(min: number, max: number) {
  const error = `must be an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

export const POSITIVE = 'must be a positive integer';
export const positiveInt = z.number({ error: POSITIVE }).int({ error: POSITIVE }).positive({ error: POSITIVE });
export const nameSchema = z.string().refine(isValidName, { error: NAME_RULE });
