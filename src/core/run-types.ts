/**
 * The shapes of the run machine: a run's state and its task runs, the events that record
 * its history, the inputs it decides on, and the commands it gives the engine.
 */
import type { TaskError } from './model.js';
import type { FlowPlan, Topology } from './run-topology.js';
import type { RunStateName, TaskStateName } from './states.js';

/** What a waiting task waits for. Times are ms since the epoch. */
export type Wait =
  | { readonly kind: 'timer'; readonly until: number }
  | { readonly kind: 'event'; readonly event: string; readonly key: string | null; readonly timeoutAt: number | null }
  | { readonly kind: 'approval'; readonly timeoutAt: number | null; readonly approvers: readonly string[] }
  | { readonly kind: 'run'; readonly runId: string; readonly timeoutAt: number | null }
  | { readonly kind: 'items' }
  | { readonly kind: 'handler'; readonly handler: string };

/** A map's progress through its items. */
export interface MapProgress {
  readonly count: number;
  /** Task runs per item (the template's size). */
  readonly size: number;
  readonly started: Uint8Array;
  /** No item before this one is still to start. */
  cursor: number;
  /** Items started and not ended. */
  active: number;
  ended: number;
  /** Open task runs per item. */
  readonly itemOpen: Int32Array;
  readonly itemFailed: Uint8Array;
}

export interface TaskRun {
  state: TaskStateName;
  /** Attempts started so far (numbering continues across reruns). */
  attempt: number;
  /** Failed attempts that count against the retry budget (lost attempts do not). */
  failures: number;
  upSucceeded: number;
  upFailed: number;
  upSkipped: number;
  upstreamFailed: boolean;
  /** Cancelled because another branch won or a quorum was reached: not a failure. */
  benign: boolean;
  startedAt: number | null;
  endedAt: number | null;
  /** When the task's durable timer is due: a retry, a sleep's end, a wait's timeout. */
  retryAt: number | null;
  skipReason: string | null;
  output: unknown;
  error: TaskError | null;
  wait: Wait | null;
  map: MapProgress | null;
  /** The attempt whose output its success reused (`cache: inputs`), if it did. */
  cachedFrom?: string;
}

/** A signal sent to the run (`baton signal`), kept until a waiting task takes it. */
export interface RunSignal {
  readonly id: string;
  readonly event: string;
  readonly key: string | null;
  readonly data: unknown;
  readonly by: string | null;
  consumed: boolean;
}

export interface RunState extends Topology {
  readonly runId: string;
  readonly plan: FlowPlan;
  state: RunStateName;
  readonly tasks: TaskRun[];
  /** Tasks not in a terminal state. */
  open: number;
  /** `finally` tasks not in a terminal state. */
  finallyOpen: number;
  /** Flow tasks (not map instances) that ended failed, cancelled or upstream-failed. */
  failedTasks: number;
  cancelRequested: boolean;
  timedOut: boolean;
  startedAt: number | null;
  endedAt: number | null;
  error: TaskError | null;
  readonly signals: RunSignal[];
  /** The tasks chosen to run (from `run_created`); null when the whole flow runs. */
  selected: ReadonlySet<string> | null;
  /**
   * Task runs whose end other task runs react to (a map's items, a handler's target);
   * filled by `evolve`, drained by `decide`. Not part of the durable state.
   */
  readonly followUps: Set<number>;
}

export interface SkippedTask {
  readonly task: string;
  readonly reason: string;
  readonly upstreamFailed: boolean;
}

/**
 * Durable facts of a run's history. A stored event also carries `v`, the history format it
 * was written in (see run-history.ts); events made by `decide` leave it to the store.
 */
export type RunEvent = RunEventBody & { readonly v?: number };

type RunEventBody =
  | {
      readonly type: 'run_created';
      readonly at: number;
      readonly flow: string;
      readonly version: string;
      readonly params: Readonly<Record<string, unknown>>;
      /**
       * When present, only these tasks (flow task ids) run; every other task ends skipped
       * with a reason (`baton asset materialize` runs a producer and its upstream).
       */
      readonly tasks?: readonly string[];
    }
  | { readonly type: 'run_started'; readonly at: number }
  | { readonly type: 'tasks_queued'; readonly at: number; readonly tasks: readonly string[] }
  | { readonly type: 'task_started'; readonly at: number; readonly task: string; readonly attempt: number }
  | {
      readonly type: 'task_succeeded';
      readonly at: number;
      readonly task: string;
      readonly attempt: number;
      readonly output: unknown;
      /** The signal that woke the task, if any. */
      readonly signal?: string;
      /** The handler whose output replaced the failed task's. */
      readonly recoveredBy?: string;
      /**
       * `<run>/<task run>/<attempt>`: the earlier attempt whose output this one reused
       * (`cache: inputs`) instead of running the body. An older Baton reading it ignores it,
       * which changes nothing but what `show` says: no new history format.
       */
      readonly cachedFrom?: string;
    }
  | {
      readonly type: 'attempt_failed';
      readonly at: number;
      readonly task: string;
      readonly attempt: number;
      readonly error: TaskError;
      /** The attempt's process died or lost its lease; it does not use up a retry. */
      readonly lost: boolean;
    }
  | {
      readonly type: 'retry_scheduled';
      readonly at: number;
      readonly task: string;
      readonly dueAt: number;
      readonly delayMs: number;
    }
  | {
      readonly type: 'task_failed';
      readonly at: number;
      readonly task: string;
      readonly error: TaskError;
      readonly handledBy?: string;
    }
  | { readonly type: 'tasks_skipped'; readonly at: number; readonly tasks: readonly SkippedTask[] }
  | {
      readonly type: 'tasks_cancelled';
      readonly at: number;
      readonly tasks: readonly string[];
      readonly reason: string;
      /** Lost a race or not needed for a quorum: counts as skipped, not as a failure. */
      readonly benign?: boolean;
    }
  | {
      readonly type: 'cancel_requested';
      readonly at: number;
      readonly reason: string;
      readonly task?: string;
      /** The run exceeded its timeout (it ends failed, after its `finally` tasks). */
      readonly timeout?: boolean;
    }
  | { readonly type: 'run_retried'; readonly at: number; readonly tasks: readonly string[] }
  | {
      readonly type: 'task_waiting';
      readonly at: number;
      readonly task: string;
      readonly attempt: number;
      readonly wait: Wait;
    }
  | { readonly type: 'task_expanded'; readonly at: number; readonly task: string; readonly items: readonly unknown[] }
  | {
      readonly type: 'map_items_started';
      readonly at: number;
      readonly task: string;
      readonly items: readonly number[];
    }
  | {
      readonly type: 'task_catching';
      readonly at: number;
      readonly task: string;
      readonly error: TaskError;
      readonly handler: string;
    }
  | {
      readonly type: 'signal_received';
      readonly at: number;
      readonly id: string;
      readonly event: string;
      readonly key: string | null;
      readonly data: unknown;
      readonly by: string | null;
    }
  | {
      readonly type: 'approval_decided';
      readonly at: number;
      readonly task: string;
      readonly approved: boolean;
      readonly by: string;
      readonly comment: string | null;
    }
  | { readonly type: 'run_succeeded'; readonly at: number }
  | { readonly type: 'run_failed'; readonly at: number; readonly error: TaskError }
  | { readonly type: 'run_cancelled'; readonly at: number; readonly reason: string };

export type RunEventType = RunEvent['type'];

/** Things that happen to a run, fed to `decide`. */
export type RunInput =
  | { readonly type: 'start' }
  | { readonly type: 'attempt_started'; readonly task: number }
  | {
      readonly type: 'attempt_succeeded';
      readonly task: number;
      readonly attempt: number;
      readonly output: unknown;
      /** The earlier attempt whose output was reused (`<run>/<task run>/<attempt>`), if the body did not run. */
      readonly cachedFrom?: string;
    }
  | { readonly type: 'attempt_failed'; readonly task: number; readonly attempt: number; readonly error: TaskError }
  | { readonly type: 'attempt_lost'; readonly task: number; readonly attempt: number }
  /** The engine worked out what a parking task (sleep, wait, approval, subflow) waits for. */
  | { readonly type: 'attempt_parked'; readonly task: number; readonly attempt: number; readonly wait: Wait }
  /** The engine evaluated a map's list. */
  | { readonly type: 'map_items'; readonly task: number; readonly attempt: number; readonly items: readonly unknown[] }
  | { readonly type: 'retry_due'; readonly task: number }
  | {
      readonly type: 'signal';
      readonly id: string;
      readonly event: string;
      readonly key: string | null;
      readonly data: unknown;
      readonly by: string | null;
    }
  | {
      readonly type: 'decision';
      readonly task: number;
      readonly approved: boolean;
      readonly by: string;
      readonly comment: string | null;
    }
  | {
      readonly type: 'child_finished';
      readonly task: number;
      readonly runId: string;
      readonly state: RunStateName;
      readonly output: unknown;
      readonly error: TaskError | null;
    }
  | { readonly type: 'cancel'; readonly reason: string; readonly task?: number }
  | { readonly type: 'run_timeout' }
  | { readonly type: 'rerun'; readonly mode: 'failed' }
  | { readonly type: 'rerun'; readonly mode: 'tasks'; readonly tasks: readonly number[]; readonly downstream: boolean };

/** What the engine must do after the events are committed. */
export type RunCommand =
  | { readonly type: 'dispatch'; readonly task: number }
  | { readonly type: 'arm_timer'; readonly task: number; readonly dueAt: number }
  | { readonly type: 'abort'; readonly task: number; readonly attempt: number; readonly reason: string }
  | { readonly type: 'cancel_child'; readonly task: number; readonly runId: string; readonly reason: string }
  | { readonly type: 'finished'; readonly state: RunStateName };

export interface Decision {
  readonly events: RunEvent[];
  readonly commands: RunCommand[];
  /** Task indexes whose row changed (for the derived task_runs table). */
  readonly touched: Set<number>;
}
