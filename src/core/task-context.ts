/**
 * What task code sees of an attempt: the context passed to function tasks. Pure types,
 * shared by the flow builder (which types it for flow authors) and the engine (which
 * fills it in).
 */
import type { TaskError } from './model.js';

/** Logger handed to task code; lines go to the task log, batched with the next commit. */
export interface TaskLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Everything an attempt may read. Passed to function tasks as their context. */
export interface AttemptContext {
  readonly runId: string;
  readonly flow: string;
  readonly taskId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Stable across attempts and restarts: `<run>/<task>/<map index>`; use it to make side effects idempotent. */
  readonly idempotencyKey: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** The task's `with` values, templates rendered. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** Outputs of the direct upstream tasks that succeeded, by task id. */
  readonly upstream: Readonly<Record<string, unknown>>;
  /** Aborted on cancellation or timeout; `signal.reason` says which. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** Inside a map: the item this instance works on (an array of items when the map batches). */
  readonly item?: unknown;
  /** Inside a map: the instance's position among the map's items (among its batches, when it batches). */
  readonly mapIndex?: number;
  /** In an on_failure handler: the failure of the task it handles. */
  readonly error?: TaskError | null;
}

/** The signature of a function task. */
export type TaskFunction = (context: AttemptContext) => unknown;
