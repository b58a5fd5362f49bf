/**
 * A run as the engine holds it in memory while it owns the run's lease, and the attempts of
 * it that hold a slot. Shared by the engine and its attempt modes (attempt-mode.ts).
 */
import type { RunState } from '../core/run-machine.js';
import type { Lease, NewRun } from '../store/store.js';
import type { AttemptController } from './attempt-controller.js';
import type { ResolvedFlow } from './engine-options.js';
import type { LongTimer } from './long-timer.js';
import type { Pending } from './pending-commit.js';
import type { RunStateName } from '../core/states.js';

export interface RunningAttempt {
  readonly task: number;
  readonly attempt: number;
  readonly controller: AttemptController;
  logBytes: number;
  logTruncated: boolean;
  /** False until the batch recording its start is committed and the body launched. */
  bodyStarted: boolean;
}

export interface ActiveRun {
  readonly lease: Lease;
  readonly state: RunState;
  readonly flow: ResolvedFlow;
  readonly params: Readonly<Record<string, unknown>>;
  readonly running: Map<number, RunningAttempt>;
  readonly timers: Map<number, LongTimer>;
  readonly withTimer: Set<number>;
  /** Subflow tasks waiting for their child run: task index → child run id. */
  readonly children: Map<number, string>;
  pending: Pending;
  runTimer?: LongTimer;
  finished: boolean;
  readonly done: Promise<RunStateName>;
  resolveDone: (state: RunStateName) => void;
  rejectDone: (error: Error) => void;
  /** The time of the run's latest event: its next events are stamped no earlier (`stampTime`). */
  lastAt: number;
  /** Taken by `execute`, whose caller awaits the end here: never parked. */
  readonly pinned: boolean;
  /** Engine actions (map lists, waits, child launches) of this run in flight. */
  inlineInFlight: number;
  /** Being released as parked: inputs are no longer taken (they are durable and wake it again). */
  parking: boolean;
  /**
   * Set while the run is not yet in the store (Engine.startNew): every commit entry of it
   * creates it, until one is committed; then `settle` is called and this is null.
   */
  creating: { readonly input: NewRun; readonly settle: (error?: Error) => void } | null;
}
