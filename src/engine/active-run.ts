/**
 * A run as the engine holds it in memory while it owns the run's lease: its driver
 * (run-driver.ts: state, pending batch, what the store holds of it), plus what the engine
 * keeps around it: the attempts that hold a slot, the timers armed, and the promise that
 * the run's end settles. Shared by the engine and its attempt modes (attempt-mode.ts).
 */
import type { RunStateName } from '../core/states.js';
import type { AttemptController } from './attempt-controller.js';
import type { ResolvedFlow } from './engine-options.js';
import type { LongTimer } from './long-timer.js';
import type { RunDriverInit, RunDriverSettings } from './run-driver.js';
import { RunDriver } from './run-driver.js';

export interface RunningAttempt {
  readonly task: number;
  readonly attempt: number;
  readonly controller: AttemptController;
  logBytes: number;
  logTruncated: boolean;
  /** False until the batch recording its start is committed and the body launched. */
  bodyStarted: boolean;
}

export interface ActiveRunInit extends RunDriverInit {
  readonly flow: ResolvedFlow;
  readonly params: Readonly<Record<string, unknown>>;
  /** Taken by `execute`, whose caller awaits the end: never parked. */
  readonly pinned: boolean;
}

export class ActiveRun extends RunDriver {
  readonly flow: ResolvedFlow;
  readonly params: Readonly<Record<string, unknown>>;
  readonly pinned: boolean;
  readonly running = new Map<number, RunningAttempt>();
  /** Armed retry backoffs, sleeps and wait timeouts, by task. */
  readonly timers = new Map<number, LongTimer>();
  /** The run's own deadline (the flow's timeout), if it has one. */
  runTimer?: LongTimer;
  /** Ended, dropped or parked: the engine no longer drives it. */
  finished = false;
  /** Engine actions (map lists, waits, child launches) of this run in flight. */
  inlineInFlight = 0;
  /** Being released as parked: inputs are no longer taken (they are durable and wake it again). */
  parking = false;
  /** Settles when the engine lets go of the run: its final state, or why it was dropped. */
  readonly done: Promise<RunStateName>;
  readonly resolveDone: (state: RunStateName) => void;
  readonly rejectDone: (error: Error) => void;

  constructor(init: ActiveRunInit, settings: RunDriverSettings) {
    super(init, settings);
    this.flow = init.flow;
    this.params = init.params;
    this.pinned = init.pinned;
    let resolveDone!: (state: RunStateName) => void;
    let rejectDone!: (error: Error) => void;
    this.done = new Promise<RunStateName>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    this.resolveDone = resolveDone;
    this.rejectDone = rejectDone;
  }
}
