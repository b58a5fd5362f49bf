/**
 * The database clock as one process sees it between two readings: a local clock plus an
 * offset measured by reading the database's clock. Engines that follow the database
 * clock stamp event times and due times with it (docs/failure-modes.md, "Clocks disagree
 * or jump"), so two rules keep it sound:
 *
 * - A reading bounds the offset, it does not name it. The database read its clock at
 *   some instant between sending the request (`before`) and handling the response
 *   (`after`), so the offset lies in [db − after, db − before]. A reading whose response
 *   waited behind a blocked event loop has a wide interval, not a wrong midpoint: the
 *   estimate is the middle of what the recent readings all agree on. Readings that
 *   disagree (a clock stepped, or drifted over the window) are dropped, oldest first.
 * - Time does not run backwards. A correction that would move the clock back by at most
 *   `MAX_HOLD_MS` holds it until the new estimate has caught up; a larger one is a jump of
 *   a clock, not an error of measurement, and is followed (each run still keeps its own
 *   event times in order, see `Engine`).
 */

/** The largest step back that is held rather than followed, in ms. */
export const MAX_HOLD_MS = 1000;

/** Readings older than this no longer narrow the estimate (clocks drift). */
const WINDOW_MS = 60_000;
const MAX_READINGS = 32;

interface Reading {
  /** Bounds of the offset (database − local), ms, widened by 1 ms for whole-ms clocks. */
  readonly lo: number;
  readonly hi: number;
  /** Local time of the reading. */
  readonly at: number;
}

export class DatabaseClock {
  private readings: Reading[] = [];
  private offset = 0;
  private last = Number.NEGATIVE_INFINITY;
  private sampled = false;

  /** `local`: the clock to interpolate with; a monotonic one, unless a test injects another. */
  constructor(private readonly local: () => number) {}

  /** True once a reading was taken: before that the clock is the local one. */
  get synced(): boolean {
    return this.sampled;
  }

  /** Current database time in whole ms: never less than an earlier answer, but for jumps. */
  now(): number {
    const estimate = Math.round(this.local() + this.offset);
    if (estimate > this.last || estimate < this.last - MAX_HOLD_MS) this.last = estimate;
    return this.last;
  }

  /** Reads the database clock through `read` and narrows the offset with it. */
  async sync(read: () => Promise<number>): Promise<void> {
    const before = this.local();
    const db = await read();
    const after = this.local();
    this.record(before, db, after);
  }

  /** Narrows the offset with one reading: `db` was read between local times `before` and `after`. */
  record(before: number, db: number, after: number): void {
    // A local clock that went backwards during the reading says nothing about the offset.
    if (after < before) return;
    this.readings.push({ lo: db - after - 1, hi: db - before + 1, at: after });
    this.readings = this.readings.filter((r) => after - r.at <= WINDOW_MS && r.at <= after).slice(-MAX_READINGS);
    let lo = Number.NEGATIVE_INFINITY;
    let hi = Number.POSITIVE_INFINITY;
    // Newest first: the newest reading always counts; an older one only while it agrees.
    for (let i = this.readings.length - 1; i >= 0; i--) {
      const r = this.readings[i] as Reading;
      const nextLo = Math.max(lo, r.lo);
      const nextHi = Math.min(hi, r.hi);
      if (nextLo > nextHi) {
        this.readings = this.readings.slice(i + 1);
        break;
      }
      lo = nextLo;
      hi = nextHi;
    }
    this.offset = (lo + hi) / 2;
    this.sampled = true;
  }
}
