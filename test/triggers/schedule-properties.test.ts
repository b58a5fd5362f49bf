/**
 * Properties of schedules over years of simulated time, for random cron expressions in
 * random IANA zones (daylight saving of both hemispheres, 30- and 45-minute offsets, a
 * zone that dropped DST) and random intervals: fire times strictly increase, and
 * `previous()` agrees with `next()` at every probe, so that the due-firing arithmetic,
 * which walks backwards from now, sees exactly the fire times the schedule walks forwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/core/schedule.js';
import { TriggerFileSchema } from '../../src/define/trigger-schema.js';
import { cronSchedule, intervalSchedule } from '../../src/triggers/time-schedule.js';

const ZONES = [
  'UTC',
  'America/New_York',
  'America/Santiago',
  'America/St_Johns',
  'Europe/Berlin',
  'Europe/London',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'Asia/Tokyo',
  'Asia/Kolkata',
  'Asia/Tehran',
  'Pacific/Chatham',
] as const;

const YEAR = 365 * 24 * 3600 * 1000;
const FROM = Date.parse('2000-01-01T00:00:00Z');
const TO = Date.parse('2040-01-01T00:00:00Z');

const list = (min: number, max: number) =>
  fc
    .uniqueArray(fc.integer({ min, max }), { minLength: 2, maxLength: 3 })
    .map((xs) => xs.sort((a, b) => a - b).join(','));
const range = (min: number, max: number) =>
  fc
    .tuple(fc.integer({ min, max: max - 1 }), fc.integer({ min: 1, max: max - min }))
    .map(([a, length]) => `${a}-${Math.min(max, a + length)}`);
const minute = fc.oneof(
  fc.integer({ min: 0, max: 59 }).map(String),
  list(0, 59),
  fc.constantFrom('*/5', '*/15', '*/20', '*/30'),
  range(0, 59),
);
const hour = fc.oneof(
  fc.constant('*'),
  fc.integer({ min: 0, max: 23 }).map(String),
  list(0, 23),
  fc.constantFrom('*/2', '*/3', '*/6', '*/12'),
  range(0, 23),
);
const dayOfMonth = fc.oneof(
  { weight: 4, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 31 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1,15', 'L', '1-7') },
);
const month = fc.oneof(
  { weight: 4, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 12 }).map(String) },
  { weight: 1, arbitrary: list(1, 12) },
);
const dayOfWeek = fc.oneof(
  { weight: 4, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('1-5', '0,6') },
);
/** Expressions that fire at all: `0 0 31 4 *` (April has 30 days) is refused by cronSchedule. */
const cronExpression = fc
  .tuple(minute, hour, dayOfMonth, month, dayOfWeek)
  .map((parts) => parts.join(' '))
  .filter((expr) => {
    try {
      cronSchedule(expr, 'UTC');
      return true;
    } catch {
      return false;
    }
  });
const zone = fc.constantFrom(...ZONES);
const instant = fc.integer({ min: FROM, max: TO });

function describeCase(expr: string, tz: string): string {
  return `"${expr}" in ${tz}`;
}

/** next() strictly increases along a walk, and previous() retraces it exactly. */
function checkWalk(schedule: Schedule, start: number, steps: number, label: string): number[] {
  const walk: number[] = [];
  let t = start;
  for (let i = 0; i < steps; i++) {
    const next = schedule.next(t);
    if (next === null) break;
    if (!(next > t)) throw new Error(`${label}: next(${new Date(t).toISOString()}) = ${new Date(next).toISOString()}`);
    walk.push(next);
    t = next;
  }
  for (let i = 1; i < walk.length; i++) {
    const back = schedule.previous(walk[i] as number, 1);
    if (back[0] !== walk[i - 1]) {
      throw new Error(
        `${label}: previous(${new Date(walk[i] as number).toISOString()}) = ${back.map((b) => new Date(b).toISOString())}, walked from ${new Date(walk[i - 1] as number).toISOString()}`,
      );
    }
  }
  const last = walk[walk.length - 1];
  if (last !== undefined) {
    const k = Math.min(walk.length, 40);
    expect(schedule.previous(last + 1, k).reverse(), label).toEqual(walk.slice(-k));
  }
  return walk;
}

/**
 * At a probe instant a: n = next(a) is after a, p = previous(a + 1) is at or before a,
 * nothing fires in between (next(p) = n, previous(n) = p); across sorted probes, next()
 * never goes back.
 */
function checkProbes(schedule: Schedule, probes: readonly number[], label: string): void {
  let lastNext = -Infinity;
  for (const a of [...probes].sort((x, y) => x - y)) {
    const n = schedule.next(a);
    const [p] = schedule.previous(a + 1, 1);
    const where = `${label} at ${new Date(a).toISOString()}`;
    if (n === null) throw new Error(`${where}: no next fire time`);
    expect(n, where).toBeGreaterThan(a);
    expect(n, where).toBeGreaterThanOrEqual(lastNext);
    lastNext = n;
    if (p === undefined) continue;
    expect(p, where).toBeLessThanOrEqual(a);
    expect(schedule.next(p), `${where}: next(previous(a))`).toBe(n);
    expect(schedule.previous(n, 1)[0], `${where}: previous(next(a))`).toBe(p);
  }
}

describe('cron schedules over years', () => {
  it('next() strictly increases and previous() retraces it, from random instants (300-step walks)', () => {
    fc.assert(
      fc.property(cronExpression, zone, instant, (expr, tz, start) => {
        checkWalk(cronSchedule(expr, tz), start, 300, describeCase(expr, tz));
      }),
      { numRuns: 60 },
    );
  });

  it('next() and previous() agree at random probes spread over 5 years', () => {
    fc.assert(
      fc.property(
        cronExpression,
        zone,
        instant,
        fc.array(fc.integer({ min: 0, max: 5 * YEAR }), { minLength: 20, maxLength: 40 }),
        (expr, tz, base, offsets) => {
          checkProbes(
            cronSchedule(expr, tz),
            offsets.map((o) => base - 5 * YEAR + o),
            describeCase(expr, tz),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a daily job walked across 4 years of DST changes fires once per local day', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 23 }),
        zone,
        fc.integer({ min: 2000, max: 2035 }),
        (m, h, tz, year) => {
          const label = describeCase(`${m} ${h} * * *`, tz);
          const walk = checkWalk(cronSchedule(`${m} ${h} * * *`, tz), Date.UTC(year, 0, 1), 4 * 365, label);
          expect(walk).toHaveLength(4 * 365);
          // One fire per local calendar day: consecutive fire times are 22-26 h apart
          // (a day, give or take the largest DST shift of these zones).
          for (let i = 1; i < walk.length; i++) {
            const gap = ((walk[i] as number) - (walk[i - 1] as number)) / 3_600_000;
            if (gap < 22 || gap > 26) {
              throw new Error(
                `${label}: ${gap} h between ${new Date(walk[i - 1] as number).toISOString()} and the next`,
              );
            }
          }
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('cron expressions that never fire', () => {
  it('are refused, not scheduled into silence', () => {
    expect(() => cronSchedule('0 0 31 4,9 *', 'UTC')).toThrow(/never fires/);
    const parsed = TriggerFileSchema.safeParse({ kind: 'cron', cron: '0 0 31 4,9 *' });
    expect(parsed.error?.issues.map((i) => i.message)).toEqual([
      'never fires: no date matches it (e.g. day 31 of a month that has 30 days)',
    ]);
    expect(cronSchedule('0 0 29 2 *', 'UTC').next(Date.parse('2025-01-01T00:00:00Z'))).toBe(
      Date.parse('2028-02-29T00:00:00Z'),
    );
  });
});

describe('interval schedules', () => {
  it('step by exactly everyMs on the anchored grid, and previous() agrees with next()', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 * 24 * 3600 * 1000 }),
        fc.integer({ min: FROM, max: TO }),
        fc.array(fc.integer({ min: FROM, max: TO }), { minLength: 5, maxLength: 30 }),
        (every, anchor, probes) => {
          const schedule = intervalSchedule(every, anchor);
          checkProbes(schedule, probes, `every ${every} ms from ${anchor}`);
          checkWalk(schedule, probes[0] as number, 50, `every ${every} ms from ${anchor}`);
          for (const a of probes) {
            const n = schedule.next(a) as number;
            expect(Math.abs((n - anchor) % every)).toBe(0);
            expect(n - a).toBeLessThanOrEqual(every);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
