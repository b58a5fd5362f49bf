/**
 * The normalized flow model. Both front ends (the TypeScript builder and the YAML/JSON
 * loader) produce a `FlowSpec`; everything downstream reads only this. Durations are
 * milliseconds here; names are as users wrote them.
 */
import type { TriggerRule } from './states.js';
import type { OverlapPolicy, TriggerSpec } from './trigger-spec.js';

export type ParamType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

export interface ParamSpec {
  readonly type: ParamType;
  /** Present when the param has a default; a param without one is required. */
  readonly default?: unknown;
  readonly description?: string;
  /** Allowed values, if restricted. */
  readonly enum?: readonly unknown[];
}

export interface RetryPolicy {
  /** Total attempts including the first; 1 means no retry. */
  readonly maxAttempts: number;
  /** Base delay before the first retry, in ms; doubles with each failure. */
  readonly backoffMs: number;
  /** Cap on a single delay, in ms. */
  readonly maxBackoffMs: number;
  /** `full`: a uniformly random delay in [0, computed); `none`: exactly the computed delay. */
  readonly jitter: 'full' | 'none';
  /** If set, only errors whose code is listed are retried. */
  readonly retryOn?: readonly string[];
  /** Error codes that are never retried (default: validation-type errors). */
  readonly neverRetryOn: readonly string[];
  /**
   * When true, an attempt lost with its worker (killed, or paused past its lease) counts
   * against `maxAttempts` like a failure. Default false: lost attempts are retried freely.
   */
  readonly countLost?: boolean;
}

export interface TaskSpec {
  readonly id: string;
  /** Executor kind: `function`, `shell`, and more registered later. */
  readonly kind: string;
  readonly dependsOn: readonly string[];
  readonly triggerRule: TriggerRule;
  readonly retry: RetryPolicy;
  /** Per-attempt timeout in ms, or null for none. */
  readonly timeoutMs: number | null;
  /** Named pool whose slots bound this task's concurrency, or null. */
  readonly pool: string | null;
  /** Labels a worker must all have to take this task (`gpu`, `region-eu`); empty for any worker. */
  readonly labels?: readonly string[];
  /** Templated inputs (`${{ }}` expressions inside strings). */
  readonly with: Readonly<Record<string, unknown>>;
  /** Kind-specific settings (e.g. `command` for shell, `module`/`export` for function). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly description?: string;
}

export interface FlowSpec {
  readonly name: string;
  readonly description?: string;
  readonly params: Readonly<Record<string, ParamSpec>>;
  readonly tasks: readonly TaskSpec[];
  /** Pools declared by the flow (name → slots), merged with the project's. */
  readonly pools: Readonly<Record<string, number>>;
  /** At most this many runs of the flow execute at once; null for no limit. */
  readonly maxActiveRuns: number | null;
  /** Whole-run timeout in ms, or null. */
  readonly timeoutMs: number | null;
  /** What creates runs besides users: schedules, webhooks, files, objects, streams, other flows. */
  readonly triggers?: readonly TriggerSpec[];
  /** What a trigger does when a run of the flow is still active. Default `allow`. */
  readonly overlap?: OverlapPolicy;
}

/** Error codes that describe bad input rather than a transient fault: never retried. */
export const NON_RETRYABLE_CODES: readonly string[] = [
  'DEF_LOAD',
  'DEF_INVALID',
  'TASK_INPUT',
  'TASK_OUTPUT_TOO_LARGE',
  'TASK_OUTPUT_INVALID',
  'VALIDATION',
];

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 1,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  jitter: 'full',
  neverRetryOn: NON_RETRYABLE_CODES,
};

/** A failure as recorded in history: typed by code, with its origin. */
export interface TaskError {
  readonly code: string;
  readonly message: string;
  readonly source?: 'user' | 'baton';
  readonly hint?: string;
  readonly details?: Record<string, unknown>;
}
