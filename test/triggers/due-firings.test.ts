/**
 * The due-firing arithmetic of src/core/schedule.ts, pure: which fire times run after an
 * outage under each catch-up policy (all, latest, none), with max_catchup, the end of a
 * schedule and the grace period, and a brute-force model that enumerates every fire time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DueInput, Schedule } from '../../src/core/schedule.js';
import { dueFirings, intervalParams, jitterDelay, scheduledRunKey } from '../../src/core/schedule.js';
import { cronSchedule, intervalSchedule } from '../../src/triggers/time-schedule.js';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.parse('2024-05-01T00:00:00Z');
const hourly = intervalSchedule(HOUR);
const h = (n: number) => T0 + n * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

function due(o: Partial<DueInput> & Pick<DueInput, 'now'>) {
  return dueFirings({
    schedule: hourly,
    cursor: null,
    origin: T0,
    catchup: 'latest',
    maxCatchup: 100,
    endAt: null,
    graceMs: MIN,
    ...o,
  });
}

describe('dueFirings', () => {
  it('fires nothing before the first fire time after the origin, and says when that is', () => {
    expect(due({ origin: h(0) + 1, now: h(0) + 30 * MIN })).toEqual({
      fire: [],
      skipped: [],
      skippedCount: 0,
      cursor: null,
      nextFireAt: h(1),
    });
    // A fire time equal to the origin is not after it.
    expect(due({ origin: h(1), now: h(1) }).fire).toEqual([]);
  });

  it('fires an on-time fire time once and moves the cursor to it', () => {
    const first = due({ cursor: h(0), now: h(1) + 5000 });
    expect(first).toEqual({ fire: [h(1)], skipped: [], skippedCount: 0, cursor: h(1), nextFireAt: h(2) });
    // The same tick again, from the new cursor: nothing.
    expect(due({ cursor: first.cursor, now: h(1) + 6000 })).toMatchObject({ fire: [], cursor: h(1) });
    // A fire time is due at its instant exactly.
    expect(due({ cursor: h(0), now: h(1) }).fire).toEqual([h(1)]);
    expect(due({ cursor: h(0), now: h(1) - 1 }).fire).toEqual([]);
  });

  describe('after an outage of 5 fire times (cursor at h0, now h5 + 30 min)', () => {
    const now = h(5) + 30 * MIN;

    it('all: every missed fire time runs, oldest first', () => {
      expect(due({ cursor: h(0), now, catchup: 'all' })).toEqual({
        fire: [h(1), h(2), h(3), h(4), h(5)],
        skipped: [],
        skippedCount: 0,
        cursor: h(5),
        nextFireAt: h(6),
      });
    });

    it('all with max_catchup 2: the 2 most recent run, the 3 older are skipped and counted', () => {
      // The list of skipped fire times is bounded (the most recent first); the count is not.
      expect(due({ cursor: h(0), now, catchup: 'all', maxCatchup: 2 })).toEqual({
        fire: [h(4), h(5)],
        skipped: [h(3)],
        skippedCount: 3,
        cursor: h(5),
        nextFireAt: h(6),
      });
    });

    it('latest: only the most recent runs, late as it is', () => {
      expect(due({ cursor: h(0), now, catchup: 'latest' })).toEqual({
        fire: [h(5)],
        skipped: [h(4), h(3), h(2), h(1)],
        skippedCount: 4,
        cursor: h(5),
        nextFireAt: h(6),
      });
    });

    it('none: nothing runs, since even the most recent is past the grace period; the cursor still moves', () => {
      expect(due({ cursor: h(0), now, catchup: 'none' })).toEqual({
        fire: [],
        skipped: [h(5), h(4), h(3), h(2), h(1)],
        skippedCount: 5,
        cursor: h(5),
        nextFireAt: h(6),
      });
    });
  });

  it('none: the most recent fire time runs if it is within the grace period (inclusive)', () => {
    expect(due({ cursor: h(0), now: h(3) + MIN, catchup: 'none' })).toMatchObject({
      fire: [h(3)],
      skipped: [h(2), h(1)],
      skippedCount: 2,
    });
    expect(due({ cursor: h(0), now: h(3) + MIN + 1, catchup: 'none' })).toMatchObject({ fire: [], skippedCount: 3 });
    expect(due({ cursor: h(2), now: h(3) + 10 * MIN, catchup: 'none', graceMs: 15 * MIN })).toMatchObject({
      fire: [h(3)],
      skippedCount: 0,
    });
  });

  it('end: no fire time after it is due, and there is no next one', () => {
    const end = h(3);
    expect(due({ cursor: h(0), now: h(5), catchup: 'all', endAt: end })).toEqual({
      fire: [h(1), h(2), h(3)],
      skipped: [],
      skippedCount: 0,
      cursor: h(3),
      nextFireAt: null,
    });
    expect(due({ cursor: h(0), now: h(1) + MIN, endAt: end })).toMatchObject({ fire: [h(1)], nextFireAt: h(2) });
    expect(due({ cursor: h(3), now: h(9), endAt: end })).toMatchObject({ fire: [], cursor: h(3), nextFireAt: null });
    expect(due({ cursor: h(0), now: h(2), endAt: h(2) + 1 })).toMatchObject({ nextFireAt: null });
  });

  it('counts the fire times a long outage skipped without listing them all', () => {
    const long = due({ cursor: h(0), now: h(20_000) + MIN, catchup: 'latest' });
    expect(long.fire).toEqual([h(20_000)]);
    expect(long.skippedCount).toBe(19_999);
    expect(long.skipped.length).toBeLessThanOrEqual(100);
    expect(long.skipped[0]).toBe(h(19_999));
    const all = due({ cursor: h(0), now: h(20_000), catchup: 'all', maxCatchup: 3 });
    expect(all).toMatchObject({ fire: [h(19_998), h(19_999), h(20_000)], skippedCount: 19_997 });
  });

  it('catches up across a daylight-saving change in the schedule zone', () => {
    // 02:30 in New York: 9 March 02:30 EST, 10 March 03:00 EDT (02:30 skipped), 11 March 02:30 EDT.
    const schedule = cronSchedule('30 2 * * *', 'America/New_York');
    const result = dueFirings({
      schedule,
      cursor: Date.parse('2024-03-08T07:30:00Z'),
      origin: 0,
      now: Date.parse('2024-03-11T12:00:00Z'),
      catchup: 'all',
      maxCatchup: 10,
      endAt: null,
      graceMs: MIN,
    });
    expect(result.fire.map(iso)).toEqual([
      '2024-03-09T07:30:00.000Z',
      '2024-03-10T07:00:00.000Z',
      '2024-03-11T06:30:00.000Z',
    ]);
    expect(iso(result.nextFireAt as number)).toBe('2024-03-12T06:30:00.000Z');
  });
});

describe('run keys and interval params', () => {
  it('name a run by trigger and fire time, and give it the interval the fire time closes', () => {
    expect(scheduledRunKey('daily/nightly', h(2))).toBe('daily/nightly@2024-05-01T02:00:00.000Z');
    expect(intervalParams(hourly, h(2))).toEqual({
      interval_start: '2024-05-01T01:00:00.000Z',
      interval_end: '2024-05-01T02:00:00.000Z',
    });
    const daily = cronSchedule('0 2 * * *', 'UTC');
    expect(intervalParams(daily, Date.parse('2024-01-02T02:00:00Z'))).toEqual({
      interval_start: '2024-01-01T02:00:00.000Z',
      interval_end: '2024-01-02T02:00:00.000Z',
    });
  });

  it('jitter: a delay below the jitter, fixed per trigger, different between triggers', () => {
    expect(jitterDelay('a/b', 0)).toBe(0);
    const delays = Array.from({ length: 50 }, (_, i) => jitterDelay(`flow/t${i}`, 60_000));
    for (const d of delays) expect(d >= 0 && d < 60_000).toBe(true);
    expect(new Set(delays).size).toBeGreaterThan(40);
    expect(jitterDelay('flow/t1', 60_000)).toBe(delays[1]);
  });
});

/** Every fire time of an interval schedule in (after, upTo], oldest first, by stepping. */
function enumerate(every: number, anchor: number, after: number, upTo: number): number[] {
  const out: number[] = [];
  let t = anchor + Math.ceil((after + 1 - anchor) / every) * every;
  for (; t <= upTo; t += every) out.push(t);
  return out;
}

describe('dueFirings against a brute-force model', () => {
  it('agrees on fire, skipped, cursor and next fire time for random schedules, outages and policies', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 2 * HOUR }),
        fc.integer({ min: 0, max: 10 * HOUR }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 2 * HOUR }),
        fc.constantFrom('all' as const, 'latest' as const, 'none' as const),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 3 * HOUR }),
        fc.option(fc.integer({ min: 0, max: 400 }), { nil: null }),
        fc.boolean(),
        (every, anchorOffset, steps, extra, catchup, maxCatchup, graceMs, endSteps, hasCursor) => {
          const anchor = T0 + anchorOffset;
          const schedule: Schedule = intervalSchedule(every, anchor);
          const floor = T0 + 10 * HOUR;
          const now = floor + steps * every + extra;
          const endAt = endSteps === null ? null : floor + endSteps * every + 7;
          const result = dueFirings({
            schedule,
            cursor: hasCursor ? floor : null,
            origin: floor,
            now,
            catchup,
            maxCatchup,
            endAt,
            graceMs,
          });
          const dueTimes = enumerate(every, anchor, floor, endAt === null ? now : Math.min(now, endAt));
          const last = dueTimes[dueTimes.length - 1];
          let fire: number[];
          if (catchup === 'all') fire = dueTimes.slice(-maxCatchup);
          else if (catchup === 'latest') fire = dueTimes.slice(-1);
          else fire = last !== undefined && now - last <= graceMs ? [last] : [];
          const skipped = dueTimes.slice(0, dueTimes.length - fire.length).reverse();
          expect(result.fire).toEqual(fire);
          expect(result.skippedCount).toBe(skipped.length);
          expect(result.skipped).toEqual(skipped.slice(0, result.skipped.length));
          expect(result.cursor).toBe(last ?? (hasCursor ? floor : null));
          const next = enumerate(every, anchor, now, now + every)[0] as number;
          expect(result.nextFireAt).toBe(endAt === null || next <= endAt ? next : null);
        },
      ),
      { numRuns: 500 },
    );
  });
});
