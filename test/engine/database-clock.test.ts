/**
 * The engine's estimate of the database clock (src/engine/database-clock.ts), on a local
 * clock the test moves: a reading whose answer waited behind a blocked event loop must not
 * pull the clock back, corrections never make it run backwards, and a real jump is followed.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseClock, MAX_HOLD_MS } from '../../src/engine/database-clock.js';

/** The database's clock is `local + offset`; `local` is what the test sets. */
function setup(offset: number) {
  const t = { local: 1_000_000 };
  const clock = new DatabaseClock(() => t.local);
  /** A reading whose request takes `upMs` to reach the database and whose answer is handled `downMs` later. */
  const read = (upMs: number, downMs: number) => {
    const before = t.local;
    const db = before + upMs + offset;
    t.local = before + upMs + downMs;
    clock.record(before, db, t.local);
  };
  return { t, clock, read };
}

describe('database clock', () => {
  it('follows the database clock to within a round trip', () => {
    const { t, clock, read } = setup(3_600_000);
    read(1, 1);
    expect(Math.abs(clock.now() - (t.local + 3_600_000))).toBeLessThanOrEqual(2);
  });

  it('keeps its estimate when the answer to a reading waited behind a stalled event loop', () => {
    const { t, clock, read } = setup(250);
    for (let i = 0; i < 5; i++) {
      read(1, 1);
      t.local += 1000;
    }
    const truth = () => t.local + 250;
    expect(Math.abs(clock.now() - truth())).toBeLessThanOrEqual(2);
    // The database answered at once; the process handled the answer 680 ms later. Halving
    // the round trip would put the clock 340 ms behind.
    read(1, 680);
    expect(Math.abs(clock.now() - truth())).toBeLessThanOrEqual(2);
    t.local += 500;
    read(600, 1);
    expect(Math.abs(clock.now() - truth())).toBeLessThanOrEqual(2);
  });

  it('never runs backwards when a reading corrects it, and follows a jump', () => {
    const t = { local: 1_000_000 };
    const clock = new DatabaseClock(() => t.local);
    clock.record(t.local, t.local + 500, t.local);
    const first = clock.now();
    // The database turns out to be 300 ms behind what was thought: the clock waits for it.
    clock.record(t.local, t.local + 200, t.local);
    expect(clock.now()).toBe(first);
    t.local += 100;
    expect(clock.now()).toBe(first);
    t.local += 250;
    expect(clock.now()).toBe(t.local + 200);
    // The database's clock was set back an hour: that is followed, not waited out.
    clock.record(t.local, t.local - 3_600_000, t.local);
    expect(clock.now()).toBe(t.local - 3_600_000);
    expect(MAX_HOLD_MS).toBeLessThan(3_600_000);
  });

  it('drops readings that disagree with a newer one (a clock stepped) and settles on the new offset', () => {
    const { t, clock, read } = setup(0);
    read(1, 1);
    t.local += 1000;
    // From here on the database is 5 s ahead.
    const before = t.local;
    clock.record(before, before + 5001, before + 2);
    t.local = before + 2;
    expect(Math.abs(clock.now() - (t.local + 5000))).toBeLessThanOrEqual(2);
  });
});
