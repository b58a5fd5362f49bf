/**
 * Schedules of time triggers. Cron expressions are read by croner in an IANA time zone;
 * across daylight-saving changes they follow Vixie cron:
 * - A fixed-time job (minute and hour fields without `*` or `/`, e.g. `30 2 * * *` or
 *   `15,45 2 * * *`) whose local time falls in the skipped hour fires once, at the first
 *   valid instant after the jump (03:00 in New York on the spring-forward day); one in
 *   the repeated hour fires once, at its first occurrence.
 * - A job with `*` or `/` in its minute or hour field (`*\/15 * * * *`, `0 * * * *`,
 *   `*\/15 2 * * *`) keeps its wall-clock cadence: local times the jump skips do not
 *   exist and do not fire; those of the repeated hour fire in both occurrences.
 * Intervals are fixed steps from an anchor (the trigger's start, or the Unix epoch).
 */
import { Cron } from 'croner';
import { BatonError } from '../core/errors.js';
import type { Schedule } from '../core/schedule.js';
import type { CronTriggerConfig, IntervalTriggerConfig, TriggerSpec } from '../core/trigger-spec.js';

/** A cron schedule; throws DEF_INVALID for a bad expression or time zone. */
export function cronSchedule(expression: string, timezone: string): Schedule {
  let cron: Cron;
  try {
    // croner's default counts only single values as fixed times, so a list such as
    // `15,45 2 * * *` would not fire at all on a spring-forward day; Vixie cron (and
    // this module's promise) treat every job without `*` or `/` as fixed-time.
    cron = new Cron(expression, { timezone, paused: true, fixedTimeRule: 'no-wildcard' });
    if (cron.nextRun(new Date(0)) === null) throw new Error('no date matches it, so it never fires');
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

/** The schedule of a cron or interval trigger, from its normalized definition. */
export function triggerSchedule(spec: Pick<TriggerSpec, 'kind' | 'config'>): Schedule {
  if (spec.kind === 'cron') {
    const c = spec.config as unknown as CronTriggerConfig;
    return cronSchedule(c.cron, c.timezone);
  }
  if (spec.kind === 'interval') {
    const c = spec.config as unknown as IntervalTriggerConfig;
    return intervalSchedule(c.everyMs, c.startAt ?? 0);
  }
  throw new BatonError('DEF_INVALID', `a ${spec.kind} trigger has no schedule; only cron and interval triggers do`);
}
