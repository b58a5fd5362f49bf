/**
 * Schedules of time triggers. Cron expressions are read by croner in an IANA time zone;
 * across daylight-saving changes croner follows Vixie cron: a fire time in the skipped
 * local hour fires once, at the first valid instant after the jump, and a fire time in
 * the repeated hour fires once, at its first occurrence. Intervals are fixed steps from an
 * anchor (the trigger's start, or the Unix epoch).
 */
import { Cron } from 'croner';
import { BatonError } from '../core/errors.js';
import type { Schedule } from '../core/schedule.js';

/** A cron schedule; throws DEF_INVALID for a bad expression or time zone. */
export function cronSchedule(expression: string, timezone: string): Schedule {
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone, paused: true });
    cron.nextRun(new Date(0));
  } catch (error) {
    throw new BatonError('DEF_INVALID', `cron "${expression}" in ${timezone}: ${(error as Error).message}`, {
      hint: 'Use five fields (minute hour day month weekday), e.g. "0 2 * * *", and an IANA zone like Europe/Berlin.',
      cause: error,
    });
  }
  return {
    next(after) {
      return cron.nextRun(new Date(after))?.getTime() ?? null;
    },
    previous(before, count) {
      return cron
        .previousRuns(count, new Date(before))
        .map((d) => d.getTime())
        .filter((t) => t < before);
    },
  };
}

/** Fire times every `everyMs`, on the grid anchored at `anchor`. */
export function intervalSchedule(everyMs: number, anchor = 0): Schedule {
  if (!(everyMs > 0)) throw new BatonError('DEF_INVALID', `an interval must be longer than 0 ms, got ${everyMs}`);
  return {
    next(after) {
      const k = Math.floor((after - anchor) / everyMs) + 1;
      return anchor + k * everyMs;
    },
    previous(before, count) {
      const out: number[] = [];
      let k = Math.ceil((before - anchor) / everyMs) - 1;
      for (let i = 0; i < count; i++, k--) out.push(anchor + k * everyMs);
      return out;
    },
  };
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
