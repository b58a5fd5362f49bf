/**
 * Timers for any delay a user may write. Node's `setTimeout` holds at most 2^31-1 ms
 * (24.8 days): a longer delay fires after 1 ms, with a TimeoutOverflowWarning. Every wait
 * on a user's duration (attempt and run timeouts, sleeps, waits, retry backoff, lease
 * heartbeats, kill grace, trigger polls) is armed here instead, and nothing else passes
 * such a duration to `setTimeout`.
 *
 * Invariant: the callback runs once, when its host's clock has reached the due time
 * (`now()` at arming + delay), never before. A delay is waited for in steps of at most
 * `MAX_TIMER_STEP_MS`; after each step the clock is read again and the rest re-armed, so
 * a clock that jumps (a virtual clock, the database clock's offset) or a host timer that
 * wakes a little early costs one more step, not an early firing.
 */
import { BatonError } from '../core/errors.js';

/** The longest delay one host timer holds: Node's limit, 2^31-1 ms. */
export const MAX_TIMER_STEP_MS = 2 ** 31 - 1;

/** A clock and a one-shot timer on the same time base. */
export interface TimerHost {
  /** Current time in ms. */
  now(): number;
  /** Calls `fn` once `ms` (never above MAX_TIMER_STEP_MS here) have passed. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** An armed timer; `cancel` is idempotent and safe after it fired. */
export interface LongTimer {
  /** When it fires, on its host's clock. */
  readonly dueAt: number;
  cancel(): void;
}

/**
 * Node's timers on a monotonic clock: what an attempt timeout measures is real running
 * time, which a wall clock set back or forward must not stretch or cut.
 */
export const realTimers: TimerHost = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Node's timers as `realTimers`, except that a pending one does not keep the process alive. */
export const backgroundTimers: TimerHost = {
  now: realTimers.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: realTimers.clearTimeout,
};

/**
 * Calls `fn` once `delayMs` have passed on the host's clock (a delay of 0 or less: on
 * the next turn of the host's timers). Any finite delay works; `Infinity` never fires.
 * Example: `setLongTimeout(() => abort(), 25 * 86_400_000)` fires after 25 days, not after 1 ms.
 */
export function setLongTimeout(fn: () => void, delayMs: number, host: TimerHost = realTimers): LongTimer {
  if (Number.isNaN(delayMs)) {
    throw new BatonError('INTERNAL', 'a timer was armed with a delay that is not a number', {
      hint: 'This is a bug in Baton; please report it with the flow that caused it.',
    });
  }
  const dueAt = host.now() + Math.max(0, delayMs);
  let handle: unknown;
  let live = true;
  const step = (): void => {
    handle = undefined;
    if (!live) return;
    const left = dueAt - host.now();
    if (left > 0) {
      handle = host.setTimeout(step, Math.min(left, MAX_TIMER_STEP_MS));
      return;
    }
    live = false;
    fn();
  };
  handle = host.setTimeout(step, Math.min(Math.max(0, delayMs), MAX_TIMER_STEP_MS));
  return {
    dueAt,
    cancel() {
      live = false;
      if (handle !== undefined) host.clearTimeout(handle);
      handle = undefined;
    },
  };
}

/**
 * Calls `fn` every `everyMs` (from each call to the next) until cancelled; any period
 * works, as for `setLongTimeout`. Used for heartbeats and polls whose period follows a setting.
 */
export function setLongInterval(fn: () => void, everyMs: number, host: TimerHost = realTimers): LongTimer {
  let current: LongTimer;
  const tick = (): void => {
    // Re-armed before `fn` runs, so that `fn` may cancel the next call.
    current = setLongTimeout(tick, everyMs, host);
    fn();
  };
  current = setLongTimeout(tick, everyMs, host);
  return {
    get dueAt() {
      return current.dueAt;
    },
    cancel() {
      current.cancel();
    },
  };
}
