/**
 * A clock that only moves when told to. The engine takes its durable timers (retry
 * backoff, sleeps, waits, run timeouts) from it, so a test jumps from one due timer to
 * the next instead of waiting: an hour of backoff passes in no time. (Attempt timeouts
 * measure real running time, as the body runs in real time.)
 *
 * Its timers keep the limit of Node's: a delay above 2^31-1 ms fires after 1 ms, with the
 * same TimeoutOverflowWarning. A test on virtual time thus sees what a real process would,
 * rather than a long timer that only works on the virtual clock.
 */
import { readDuration } from '../core/duration.js';
import { BatonError } from '../core/errors.js';
import type { EngineClock, TimerHandle } from '../engine/engine.js';
import { MAX_TIMER_STEP_MS } from '../engine/long-timer.js';

interface Pending {
  readonly at: number;
  readonly fn: () => void;
}

export class VirtualClock implements EngineClock {
  private current: number;
  private readonly timers = new Map<number, Pending>();
  private nextId = 1;

  constructor(start: number | string | Date = Date.UTC(2030, 0, 1)) {
    this.current = typeof start === 'number' ? start : new Date(start).getTime();
    if (Number.isNaN(this.current)) {
      throw new BatonError('USAGE', `VirtualClock: ${String(start)} is not a time`, {
        hint: 'Give an ISO 8601 time, a Date, or milliseconds since the epoch.',
      });
    }
  }

  now(): number {
    return this.current;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    let delay = Math.max(0, ms);
    if (delay > MAX_TIMER_STEP_MS) {
      process.emitWarning(
        `${ms} does not fit into a 32-bit signed integer.\nTimeout duration was set to 1.`,
        'TimeoutOverflowWarning',
      );
      delay = 1;
    }
    this.timers.set(id, { at: this.current + delay, fn });
    return id;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }

  /** When the next timer is due, or null if none is armed. */
  nextDue(): number | null {
    let due: number | null = null;
    for (const t of this.timers.values()) if (due === null || t.at < due) due = t.at;
    return due;
  }

  /** Moves to the next due timer and fires every timer due then. False if none is armed. */
  jumpToNext(): boolean {
    const due = this.nextDue();
    if (due === null) return false;
    this.advanceTo(Math.max(due, this.current));
    return true;
  }

  /** Moves time forward by a duration (`90s`, `2h`, or ms), firing the timers it passes. */
  advance(by: number | string): void {
    const read = readDuration(by);
    if (!read.ok && read.reason === 'not_a_duration') {
      throw new BatonError('USAGE', `advance: ${String(by)} is not a duration`, { hint: 'Write 30s, 10m, 2h or 1d.' });
    }
    // A span over the limit duration_ms is advanced in several calls.
    if (!read.ok) throw new BatonError('USAGE', `advance: ${read.message}`, { hint: read.hint });
    this.advanceTo(this.current + read.ms);
  }

  /** Moves time to an instant, firing due timers in order. */
  advanceTo(at: number): void {
    for (;;) {
      let first: [number, Pending] | undefined;
      for (const entry of this.timers) if (entry[1].at <= at && (!first || entry[1].at < first[1].at)) first = entry;
      if (!first) break;
      this.timers.delete(first[0]);
      this.current = Math.max(this.current, first[1].at);
      first[1].fn();
    }
    this.current = Math.max(this.current, at);
  }
}
