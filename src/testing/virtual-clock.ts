/**
 * A clock that only moves when told to. The engine takes its durable timers (retry
 * backoff, sleeps, waits, run and attempt timeouts) from it, so a test jumps from one due
 * timer to the next instead of waiting: an hour of backoff passes in no time.
 */
import { parseDuration } from '../core/duration.js';
import { BatonError } from '../core/errors.js';
import type { EngineClock, TimerHandle } from '../engine/engine.js';

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
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn });
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
    const ms = parseDuration(by);
    if (ms === undefined) {
      throw new BatonError('USAGE', `advance: ${String(by)} is not a duration`, { hint: 'Write 30s, 10m, 2h or 1d.' });
    }
    this.advanceTo(this.current + ms);
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
