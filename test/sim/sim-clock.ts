/**
 * Each simulated engine's clock: one virtual time shared by all of them, and timers that
 * belong to the engine that armed them, so that a crashed engine's timers die with it.
 */
import type { EngineClock, TimerHandle } from '../../src/engine/engine.js';
import type { VirtualClock } from '../../src/testing/virtual-clock.js';

/** One engine's view of the shared virtual clock; its timers die with it. */
export class ClockView implements EngineClock {
  private readonly handles = new Set<TimerHandle>();
  private alive = true;

  constructor(private readonly base: VirtualClock) {}

  now(): number {
    return this.base.now();
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const handle: TimerHandle = this.base.setTimer(() => {
      this.handles.delete(handle);
      if (this.alive) fn();
    }, ms);
    if (this.alive) this.handles.add(handle);
    else this.base.clearTimer(handle);
    return handle;
  }

  clearTimer(handle: TimerHandle): void {
    this.handles.delete(handle);
    this.base.clearTimer(handle);
  }

  /** The process died: none of its timers fires. */
  kill(): void {
    this.alive = false;
    for (const h of this.handles) this.base.clearTimer(h);
    this.handles.clear();
  }

  /** Timers armed and not yet fired or cleared. */
  get armed(): number {
    return this.handles.size;
  }
}
