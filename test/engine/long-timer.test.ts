/**
 * The timer helper over the whole range of durations Baton accepts, [1 ms, 366 d], on a
 * fake host that behaves as Node's timers do: a delay above 2^31-1 ms fires after 1 ms,
 * and a timer may wake a little before its time. Nothing waits in real time.
 *
 * Then the same through the testing kit: a sleep and a run timeout of a random duration
 * up to the limit end exactly at their due virtual time (the kit's clock keeps Node's
 * limit too, so a timer that is not chained fires early there as well).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DURATION_MS } from '../../src/core/duration.js';
import { defineFlow } from '../../src/define/builder.js';
import type { TimerHost } from '../../src/engine/long-timer.js';
import { MAX_TIMER_STEP_MS, setLongInterval, setLongTimeout } from '../../src/engine/long-timer.js';
import type { TestKit } from '../../src/testing/index.js';
import { createTestKit } from '../../src/testing/index.js';

/**
 * Node's timers, simulated: integer ms, a delay over MAX_TIMER_STEP_MS becomes 1 ms (as
 * Node does, with its warning), and each timer wakes up to `early` ms before its time but
 * at least 1 ms after it was armed (a delay of 0 fires on the next turn).
 */
class FakeNodeTimers implements TimerHost {
  current: number;
  overflows = 0;
  armed = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;

  constructor(
    start: number,
    private readonly early: () => number = () => 0,
  ) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.armed++;
    let delay = Math.max(0, Math.ceil(ms));
    if (delay > MAX_TIMER_STEP_MS) {
      this.overflows++;
      delay = 1;
    }
    const at = delay === 0 ? this.current : Math.max(this.current + 1, this.current + delay - this.early());
    const id = this.nextId++;
    this.pending.set(id, { at, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Fires timers in order up to `until` (or all), moving the clock to each. */
  runUntil(until = Number.POSITIVE_INFINITY, maxSteps = 10_000): void {
    for (let step = 0; step < maxSteps; step++) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.pending) if (!first || entry[1].at < first[1].at) first = entry;
      if (!first || first[1].at > until) break;
      this.pending.delete(first[0]);
      this.current = Math.max(this.current, first[1].at);
      first[1].fn();
    }
    if (Number.isFinite(until)) this.current = Math.max(this.current, until);
  }

  get size(): number {
    return this.pending.size;
  }
}

/** Durations over the accepted range, with the edges around Node's limit drawn often. */
const anyDuration = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: MAX_DURATION_MS }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      1,
      MAX_TIMER_STEP_MS - 1,
      MAX_TIMER_STEP_MS,
      MAX_TIMER_STEP_MS + 1,
      2 * MAX_TIMER_STEP_MS,
      2 * MAX_TIMER_STEP_MS + 1,
      25 * 86_400_000,
      MAX_DURATION_MS - 1,
      MAX_DURATION_MS,
    ),
  },
);
const anyStart = fc.integer({ min: 0, max: 4_102_444_800_000 });

describe('setLongTimeout', () => {
  it('fires exactly once, exactly at its due time, for every duration from 1 ms to the limit', () => {
    fc.assert(
      fc.property(anyDuration, anyStart, fc.integer({ min: 0, max: 5 }), (delay, start, early) => {
        const host = new FakeNodeTimers(start, () => early);
        const fired: number[] = [];
        const timer = setLongTimeout(() => fired.push(host.now()), delay, host);
        expect(timer.dueAt).toBe(start + delay);
        host.runUntil(start + delay - 1);
        expect(fired).toEqual([]);
        host.runUntil();
        expect(fired).toEqual([start + delay]);
        // Each step fits in one Node timer: none was cut to 1 ms.
        expect(host.overflows).toBe(0);
        expect(host.size).toBe(0);
        // A step per 24.8 days, plus a few when the host wakes early.
        expect(host.armed).toBeLessThanOrEqual(Math.ceil(delay / MAX_TIMER_STEP_MS) + 2 * (early + 1) + 1);
      }),
      { numRuns: 500 },
    );
  });

  it('never fires once cancelled, at any time before it was due', () => {
    fc.assert(
      fc.property(anyDuration, anyStart, fc.double({ min: 0, max: 1, noNaN: true }), (delay, start, at) => {
        const host = new FakeNodeTimers(start);
        let fired = false;
        const timer = setLongTimeout(() => (fired = true), delay, host);
        host.runUntil(start + Math.floor(at * (delay - 1)));
        timer.cancel();
        timer.cancel();
        host.runUntil();
        expect(fired).toBe(false);
        expect(host.size).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('re-reads its clock: one that jumps past the due time fires it at the next wake-up, one set back delays it', () => {
    const host = new FakeNodeTimers(0);
    const fired: number[] = [];
    setLongTimeout(() => fired.push(host.now()), 3 * MAX_TIMER_STEP_MS, host);
    host.runUntil(MAX_TIMER_STEP_MS);
    expect(fired).toEqual([]);
    // The clock jumps past the due time (a virtual clock, a new database clock offset).
    host.current = 5 * MAX_TIMER_STEP_MS;
    host.runUntil(6 * MAX_TIMER_STEP_MS);
    expect(fired).toEqual([5 * MAX_TIMER_STEP_MS]);

    const back = new FakeNodeTimers(0);
    const late: number[] = [];
    setLongTimeout(() => late.push(back.now()), MAX_TIMER_STEP_MS + 10, back);
    back.runUntil(MAX_TIMER_STEP_MS);
    back.current -= 1000;
    back.runUntil();
    expect(late).toEqual([MAX_TIMER_STEP_MS + 10]);
  });

  it('fires a delay of 0 or less on the next turn, and refuses a delay that is not a number', () => {
    const host = new FakeNodeTimers(100);
    const fired: number[] = [];
    setLongTimeout(() => fired.push(host.now()), 0, host);
    setLongTimeout(() => fired.push(host.now()), -5, host);
    host.runUntil();
    expect(fired).toEqual([100, 100]);
    expect(() => setLongTimeout(() => undefined, Number.NaN, host)).toThrow(/not a number/);
  });
});

describe('setLongInterval', () => {
  it('calls back every period, on time, for periods up to the limit', () => {
    fc.assert(
      fc.property(anyDuration, anyStart, fc.integer({ min: 1, max: 4 }), (every, start, calls) => {
        const host = new FakeNodeTimers(start);
        const at: number[] = [];
        const interval = setLongInterval(() => at.push(host.now()), every, host);
        host.runUntil(start + calls * every);
        interval.cancel();
        host.runUntil();
        expect(at).toEqual(Array.from({ length: calls }, (_, i) => start + (i + 1) * every));
        expect(host.overflows).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('stops when cancelled from its own callback', () => {
    const host = new FakeNodeTimers(0);
    let calls = 0;
    const interval = setLongInterval(
      () => {
        calls++;
        interval.cancel();
      },
      10,
      host,
    );
    host.runUntil(1000);
    expect(calls).toBe(1);
    expect(host.size).toBe(0);
  });
});

describe('long durations on the testing kit', () => {
  let kit: TestKit;
  beforeAll(async () => {
    kit = await createTestKit();
  });
  afterAll(async () => {
    await kit.close();
  });

  it('a sleep and a run timeout of any duration up to the limit end exactly at their due virtual time', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(anyDuration, async (ms) => {
        n++;
        const sleepy = defineFlow({ name: `long_sleep_${n}` });
        sleepy.sleep('nap', { duration: ms });
        const sleepRun = await kit.run(sleepy);
        const sleptFrom = kit.clock.now();
        expect(await sleepRun.settle()).toBe('succeeded');
        expect(sleepRun.task('nap').output).toEqual({ until: sleptFrom + ms });
        const napEnd = (await sleepRun.events()).find((e) => e.type === 'task_succeeded');
        expect(napEnd?.at).toBe(sleptFrom + ms);

        const bounded = defineFlow({ name: `long_timeout_${n}`, timeout: ms });
        bounded.waitForEvent('hold', { event: 'never' });
        const boundedRun = await kit.run(bounded);
        const from = kit.clock.now();
        expect(await boundedRun.settle({ fireWaitTimeouts: true })).toBe('failed');
        const ended = (await boundedRun.events()).find((e) => e.type === 'run_failed');
        expect(ended).toMatchObject({ at: from + ms, error: { code: 'RUN_TIMEOUT' } });
      }),
      { numRuns: 30 },
    );
  }, 120_000);

  it('a sleep an expression computes past the limit fails its attempt with TASK_INPUT, naming the limit', async () => {
    const f = defineFlow({ name: 'computed_sleep', params: { ms: { type: 'integer', default: 0 } } });
    f.sleep('nap', { duration: '${{ params.ms }}' });
    const run = await kit.run(f, { params: { ms: MAX_DURATION_MS + 1 } });
    expect(await run.settle()).toBe('failed');
    expect(run.task('nap').error).toMatchObject({
      code: 'TASK_INPUT',
      message: 'task nap: sleep: 366d1ms is over the limit duration_ms (366 d)',
      hint: 'The limit duration_ms is fixed at 366 d; make it smaller.',
    });
  });
});
