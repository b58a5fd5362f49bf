/**
 * Which fire times of a time trigger are due, and what becomes of missed ones: pure
 * arithmetic over a schedule (the next and previous fire times around an instant), the
 * last fire time already acted on (the cursor), the current time, and the catch-up policy.
 *
 * Policy
 * - A fire time is due when it is after the cursor (or the trigger's start) and not after
 *   `now`. A due fire time no older than `graceMs` is on time; older ones were missed.
 * - `all`: every due fire time runs, but at most `maxCatchup` of them (the most recent);
 *   older ones are skipped and counted.
 * - `latest`: only the most recent due fire time runs; the others are skipped.
 * - `none`: only an on-time fire time runs; missed ones are skipped.
 * The cursor always moves to the most recent due fire time, so nothing is considered twice.
 */

export interface Schedule {
  /** The first fire time strictly after `after`, or null if there is none. */
  next(after: number): number | null;
  /** Up to `count` fire times strictly before `before`, most recent first. */
  previous(before: number, count: number): number[];
}

export interface DueInput {
  readonly schedule: Schedule;
  /** Last fire time acted on; null before the first. */
  readonly cursor: number | null;
  /** Where a trigger without a cursor starts counting from (its start, or when it was registered). */
  readonly origin: number;
  readonly now: number;
  readonly catchup: 'all' | 'latest' | 'none';
  readonly maxCatchup: number;
  readonly endAt: number | null;
  /** How late a fire time may be and still count as on time. */
  readonly graceMs: number;
}

export interface DueFirings {
  /** Fire times to create runs for, oldest first. */
  readonly fire: number[];
  /** Missed fire times skipped by the policy (most recent first, bounded), and how many in all. */
  readonly skipped: number[];
  readonly skippedCount: number;
  /** The new cursor: the most recent due fire time, or the old cursor if none was due. */
  readonly cursor: number | null;
  /** The next fire time after `now`, or null if the schedule has ended. */
  readonly nextFireAt: number | null;
}

export function dueFirings(input: DueInput): DueFirings {
  const floor = input.cursor ?? input.origin;
  const limit = input.endAt === null ? input.now : Math.min(input.now, input.endAt);
  const window = Math.max(input.maxCatchup, 1) + 1;
  // Most recent first; one more than can run tells whether older ones were missed.
  const due = input.schedule.previous(limit + 1, window).filter((t) => t > floor);
  let fire: number[];
  if (due.length === 0) fire = [];
  else if (input.catchup === 'all') fire = due.slice(0, input.maxCatchup);
  else if (input.catchup === 'latest') fire = due.slice(0, 1);
  else fire = due.slice(0, 1).filter((t) => input.now - t <= input.graceMs);
  const skipped = due.slice(fire.length);
  const skippedCount =
    skipped.length < window - fire.length ? skipped.length : countBetween(input.schedule, floor, skipped);
  const next = input.schedule.next(input.now);
  return {
    fire: fire.reverse(),
    skipped,
    skippedCount,
    cursor: due[0] ?? input.cursor,
    nextFireAt: next !== null && (input.endAt === null || next <= input.endAt) ? next : null,
  };
}

/** Counts missed fire times back to `floor`, stopping at a bound so that a long outage stays cheap. */
function countBetween(schedule: Schedule, floor: number, seen: readonly number[]): number {
  let count = seen.length;
  let before = seen[seen.length - 1];
  for (let rounds = 0; before !== undefined && rounds < 100; rounds++) {
    const older = schedule.previous(before, 1000).filter((t) => t > floor);
    count += older.length;
    if (older.length < 1000) break;
    before = older[older.length - 1];
  }
  return count;
}

/**
 * The dedupe key of the run of a time trigger for one fire time: `<flow>/<trigger>@<ISO>`.
 * Scheduled runs and backfills share it, so that an interval runs once whichever created
 * it first.
 */
export function scheduledRunKey(triggerId: string, fireTime: number): string {
  return `${triggerId}@${new Date(fireTime).toISOString()}`;
}

/**
 * The data interval a fire time closes: from the previous fire time (or the fire time
 * itself when there is none) to the fire time, as the `interval_start`/`interval_end`
 * params (ISO 8601) of the run.
 */
export function intervalParams(
  schedule: Schedule,
  fireTime: number,
): { readonly interval_start: string; readonly interval_end: string } {
  const previous = schedule.previous(fireTime, 1)[0] ?? fireTime;
  return { interval_start: new Date(previous).toISOString(), interval_end: new Date(fireTime).toISOString() };
}

/**
 * How long after its fire time a trigger with `jitterMs` creates its run: a delay in
 * [0, jitterMs) taken from an FNV-1a hash of the trigger id. The same on every process
 * and after restarts (so that the cursor only ever moves forward), different between
 * triggers (so that many triggers on one schedule do not all fire in the same instant).
 */
export function jitterDelay(triggerId: string, jitterMs: number): number {
  if (!(jitterMs > 0)) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < triggerId.length; i++) {
    hash ^= triggerId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return Math.floor((hash / 2 ** 32) * jitterMs);
}
