/**
 * Cron schedules across daylight-saving changes, with exact instants, in zones whose
 * shifts differ: America/New_York (1 h, northern), Australia/Sydney (1 h, southern),
 * Australia/Lord_Howe (30 min) and Asia/Tokyo (none). The rule under test (see
 * src/triggers/time-schedule.ts): a fixed-time job whose local time the spring-forward
 * jump skips fires once, at the first valid instant after the jump; one in the repeated
 * hour of fall-back fires once, at its first occurrence; jobs with `*` or `/` in minute or
 * hour keep their wall-clock cadence (nothing in the skipped hour, both occurrences of
 * the repeated one).
 */
import { describe, expect, it } from 'vitest';
import { cronSchedule } from '../../src/triggers/time-schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** The first `count` fire times strictly after `after`, as ISO instants without milliseconds. */
function fires(cron: string, zone: string, after: string, count: number): string[] {
  const schedule = cronSchedule(cron, zone);
  const out: string[] = [];
  let t = at(after);
  for (let i = 0; i < count; i++) {
    const next = schedule.next(t);
    if (next === null) break;
    out.push(iso(next));
    t = next;
  }
  return out;
}

/** Every fire time in [from, to), walked with next(), checked against previous(). */
function between(cron: string, zone: string, from: string, to: string): string[] {
  const schedule = cronSchedule(cron, zone);
  const out: number[] = [];
  for (let t = schedule.next(at(from) - 1); t !== null && t < at(to); t = schedule.next(t)) out.push(t);
  // The same instants walked backwards from the end.
  const back = schedule.previous(at(to), out.length + 1).filter((t) => t >= at(from));
  expect(back.reverse().map(iso)).toEqual(out.map(iso));
  return out.map(iso);
}

/** The local wall-clock time of an instant in a zone, e.g. "2024-03-10 03:00 GMT-4". */
function local(ms: number, zone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'shortOffset',
  }).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')} ${get('timeZoneName')}`;
}

describe('America/New_York (2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 EDT → 01:00 EST)', () => {
  const zone = 'America/New_York';

  it('spring forward: a daily job in the skipped hour fires once, at 03:00 EDT, then at its local time again', () => {
    const times = fires('30 2 * * *', zone, '2024-03-08T12:00:00Z', 4);
    expect(times).toEqual([
      '2024-03-09T07:30:00Z', // 02:30 EST
      '2024-03-10T07:00:00Z', // 02:30 does not exist: 03:00 EDT, the first instant after the jump
      '2024-03-11T06:30:00Z', // 02:30 EDT
      '2024-03-12T06:30:00Z',
    ]);
    expect(local(at(times[1] as string), zone)).toBe('2024-03-10 03:00 GMT-4');
    // A job at 02:00 sharp is in the skipped hour too.
    expect(fires('0 2 * * *', zone, '2024-03-09T12:00:00Z', 2)).toEqual([
      '2024-03-10T07:00:00Z',
      '2024-03-11T06:00:00Z',
    ]);
  });

  it('spring forward: a fixed-time job with a list of minutes in the skipped hour fires once, not twice or never', () => {
    expect(fires('15,45 2 * * *', zone, '2024-03-09T12:00:00Z', 3)).toEqual([
      '2024-03-10T07:00:00Z',
      '2024-03-11T06:15:00Z',
      '2024-03-11T06:45:00Z',
    ]);
  });

  it('fall back: a daily job in the repeated hour fires once, at its first occurrence (EDT)', () => {
    const times = fires('30 1 * * *', zone, '2024-11-02T12:00:00Z', 2);
    expect(times).toEqual(['2024-11-03T05:30:00Z', '2024-11-04T06:30:00Z']);
    expect(local(at(times[0] as string), zone)).toBe('2024-11-03 01:30 GMT-4');
    // Not at the second 01:30 (06:30Z, EST), whichever way the schedule is walked.
    expect(cronSchedule('30 1 * * *', zone).previous(at('2024-11-03T07:00:00Z'), 1).map(iso)).toEqual([
      '2024-11-03T05:30:00Z',
    ]);
    expect(fires('0,30 1 * * *', zone, '2024-11-03T04:00:00Z', 3)).toEqual([
      '2024-11-03T05:00:00Z',
      '2024-11-03T05:30:00Z',
      '2024-11-04T06:00:00Z',
    ]);
  });

  it('fall back: sub-hourly jobs keep firing through both occurrences of the repeated hour', () => {
    expect(between('*/15 * * * *', zone, '2024-11-03T05:00:00Z', '2024-11-03T07:15:00Z')).toEqual([
      '2024-11-03T05:00:00Z', // 01:00 EDT
      '2024-11-03T05:15:00Z',
      '2024-11-03T05:30:00Z',
      '2024-11-03T05:45:00Z',
      '2024-11-03T06:00:00Z', // 01:00 EST
      '2024-11-03T06:15:00Z',
      '2024-11-03T06:30:00Z',
      '2024-11-03T06:45:00Z',
      '2024-11-03T07:00:00Z', // 02:00 EST
    ]);
    // Minutes of hour 1 only: both 01:xx hours.
    expect(fires('*/30 1 * * *', zone, '2024-11-03T04:00:00Z', 5)).toEqual([
      '2024-11-03T05:00:00Z',
      '2024-11-03T05:30:00Z',
      '2024-11-03T06:00:00Z',
      '2024-11-03T06:30:00Z',
      '2024-11-04T06:00:00Z',
    ]);
  });

  it('spring forward: sub-hourly jobs step over the skipped hour; a wildcard job in it does not fire that day', () => {
    expect(between('*/30 * * * *', zone, '2024-03-10T06:00:00Z', '2024-03-10T08:00:00Z')).toEqual([
      '2024-03-10T06:00:00Z', // 01:00 EST
      '2024-03-10T06:30:00Z', // 01:30 EST
      '2024-03-10T07:00:00Z', // 03:00 EDT
      '2024-03-10T07:30:00Z',
    ]);
    expect(fires('*/15 2 * * *', zone, '2024-03-09T12:00:00Z', 5)).toEqual([
      '2024-03-11T06:00:00Z',
      '2024-03-11T06:15:00Z',
      '2024-03-11T06:30:00Z',
      '2024-03-11T06:45:00Z',
      '2024-03-12T06:00:00Z',
    ]);
  });

  it('a job outside the changing hour keeps its local time, so its UTC instant moves by an hour', () => {
    expect(fires('0 12 * * *', zone, '2024-03-09T00:00:00Z', 2)).toEqual([
      '2024-03-09T17:00:00Z',
      '2024-03-10T16:00:00Z',
    ]);
    expect(fires('0 12 * * *', zone, '2024-11-02T00:00:00Z', 2)).toEqual([
      '2024-11-02T16:00:00Z',
      '2024-11-03T17:00:00Z',
    ]);
  });
});

describe('Australia/Sydney (2024-04-07 03:00 AEDT → 02:00 AEST; 2024-10-06 02:00 AEST → 03:00 AEDT)', () => {
  const zone = 'Australia/Sydney';

  it('spring forward (October): a daily job at 02:30 fires once, at 03:00 AEDT', () => {
    const times = fires('30 2 * * *', zone, '2024-10-04T00:00:00Z', 3);
    expect(times).toEqual([
      '2024-10-04T16:30:00Z', // 02:30 AEST, 5 October
      '2024-10-05T16:00:00Z', // 6 October: 03:00 AEDT
      '2024-10-06T15:30:00Z', // 02:30 AEDT
    ]);
    expect(local(at(times[1] as string), zone)).toBe('2024-10-06 03:00 GMT+11');
  });

  it('fall back (April): a daily job at 02:30 fires once, at its first occurrence (AEDT)', () => {
    const times = fires('30 2 * * *', zone, '2024-04-05T00:00:00Z', 3);
    expect(times).toEqual(['2024-04-05T15:30:00Z', '2024-04-06T15:30:00Z', '2024-04-07T16:30:00Z']);
    expect(local(at(times[1] as string), zone)).toBe('2024-04-07 02:30 GMT+11');
  });

  it('fall back: a 20-minute job fires through both 02:xx hours', () => {
    expect(between('*/20 * * * *', zone, '2024-04-06T15:00:00Z', '2024-04-06T17:01:00Z')).toEqual([
      '2024-04-06T15:00:00Z', // 02:00 AEDT
      '2024-04-06T15:20:00Z',
      '2024-04-06T15:40:00Z',
      '2024-04-06T16:00:00Z', // 02:00 AEST
      '2024-04-06T16:20:00Z',
      '2024-04-06T16:40:00Z',
      '2024-04-06T17:00:00Z',
    ]);
  });
});

describe('Australia/Lord_Howe, a 30-minute shift (2024-04-07 02:00 +11 → 01:30 +10:30; 2024-10-06 02:00 +10:30 → 02:30 +11)', () => {
  const zone = 'Australia/Lord_Howe';

  it('spring forward: 02:15 is skipped and fires at 02:30 +11; 02:45 exists and fires as usual', () => {
    const times = fires('15 2 * * *', zone, '2024-10-04T00:00:00Z', 3);
    expect(times).toEqual([
      '2024-10-04T15:45:00Z', // 02:15 +10:30
      '2024-10-05T15:30:00Z', // 02:30 +11, the first instant after the jump
      '2024-10-06T15:15:00Z', // 02:15 +11
    ]);
    expect(local(at(times[1] as string), zone)).toBe('2024-10-06 02:30 GMT+11');
    expect(fires('45 2 * * *', zone, '2024-10-05T00:00:00Z', 2)).toEqual([
      '2024-10-05T15:45:00Z',
      '2024-10-06T15:45:00Z',
    ]);
    expect(fires('15,45 2 * * *', zone, '2024-10-05T00:00:00Z', 3)).toEqual([
      '2024-10-05T15:30:00Z',
      '2024-10-05T15:45:00Z',
      '2024-10-06T15:15:00Z',
    ]);
  });

  it('fall back: 01:45 is repeated and fires once, at +11; 01:00 is not repeated', () => {
    const times = fires('45 1 * * *', zone, '2024-04-05T00:00:00Z', 3);
    expect(times).toEqual(['2024-04-05T14:45:00Z', '2024-04-06T14:45:00Z', '2024-04-07T15:15:00Z']);
    expect(local(at(times[1] as string), zone)).toBe('2024-04-07 01:45 GMT+11');
    expect(fires('0 1 * * *', zone, '2024-04-06T00:00:00Z', 2)).toEqual([
      '2024-04-06T14:00:00Z',
      '2024-04-07T14:30:00Z',
    ]);
  });

  it('fall back: a 10-minute job fires on through the repeated half hour, every 10 minutes of real time', () => {
    const times = between('*/10 * * * *', zone, '2024-04-06T14:30:00Z', '2024-04-06T16:01:00Z');
    expect(times).toEqual([
      '2024-04-06T14:30:00Z', // 01:30 +11
      '2024-04-06T14:40:00Z',
      '2024-04-06T14:50:00Z',
      '2024-04-06T15:00:00Z', // 01:30 +10:30
      '2024-04-06T15:10:00Z',
      '2024-04-06T15:20:00Z',
      '2024-04-06T15:30:00Z', // 02:00 +10:30
      '2024-04-06T15:40:00Z',
      '2024-04-06T15:50:00Z',
      '2024-04-06T16:00:00Z',
    ]);
  });
});

describe('Asia/Tokyo (no daylight saving)', () => {
  const zone = 'Asia/Tokyo';

  it('fires at the same UTC instant every day across the dates other zones shift', () => {
    for (const after of [
      '2024-03-08T00:00:00Z',
      '2024-04-05T00:00:00Z',
      '2024-10-04T00:00:00Z',
      '2024-11-01T00:00:00Z',
    ]) {
      const times = fires('0 9 * * *', zone, after, 4).map(at);
      expect(times.every((t) => new Date(t).getUTCHours() === 0 && new Date(t).getUTCMinutes() === 0)).toBe(true);
      expect(times.slice(1).map((t, i) => t - (times[i] as number))).toEqual([86_400_000, 86_400_000, 86_400_000]);
    }
    expect(fires('30 2 * * *', zone, '2024-03-09T00:00:00Z', 2)).toEqual([
      '2024-03-09T17:30:00Z',
      '2024-03-10T17:30:00Z',
    ]);
  });

  it('a 15-minute job has no gap and no repeat in March or November', () => {
    const march = between('*/15 * * * *', zone, '2024-03-09T15:00:00Z', '2024-03-10T15:00:00Z');
    expect(march).toHaveLength(96);
    const november = between('*/15 * * * *', zone, '2024-11-02T15:00:00Z', '2024-11-03T15:00:00Z');
    expect(november).toHaveLength(96);
  });
});

describe('cronSchedule input', () => {
  it('refuses a bad expression or time zone with DEF_INVALID', () => {
    expect(() => cronSchedule('61 * * * *', 'UTC')).toThrow(expect.objectContaining({ code: 'DEF_INVALID' }));
    expect(() => cronSchedule('0 2 * * *', 'Mars/Olympus')).toThrow(expect.objectContaining({ code: 'DEF_INVALID' }));
  });
});
