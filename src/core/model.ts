/**
 * The normalized flow model. Both front ends (the TypeScript builder and the YAML/JSON
 * loader) produce a `FlowSpec`; everything downstream reads only this. Durations are
 * milliseconds here; names are as users wrote them.
 */
import type { AssetSpec } from './asset-spec.js';
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
  /** If set, only errors whose code or kind (see `errorKind`) is listed are retried. */
  readonly retryOn?: readonly string[];
  /** Error codes or kinds that are never retried (default: validation-type errors). */
  readonly neverRetryOn: readonly string[];
  /**
   * When true, an attempt lost with its worker (killed, or paused past its lease) counts
   * against `maxAttempts` like a failure. Default false: lost attempts are retried freely.
   */
  readonly countLost?: boolean;
}

/** Kinds that may declare `cache: inputs`: those whose body computes an output from what it reads. */
export const CACHEABLE_KINDS: ReadonlySet<string> = new Set(['function', 'shell', 'sql']);

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
  /**
   * Where a function task's code is looked up; defaults to `id`. Tasks inside a map
   * template use their path (`<map>/<local id>`), since local ids may repeat across maps.
   */
  readonly key?: string;
  /** The task group it belongs to (display and `depends_on: [<group>]`); none if absent. */
  readonly group?: string;
  /** Set on a task of kind `map`: one instance of `template` per item. */
  readonly map?: MapSpec;
  /** Set on a task of kind `choice`: which direct downstream branches run. */
  readonly choice?: ChoiceSpec;
  /** With trigger rule `k_of_n`: how many upstream successes are enough. */
  readonly quorum?: QuorumSpec;
  /** Set on a task of kind `race`: alternatives, and how the winner is chosen. */
  readonly race?: RaceSpec;
  /** A handler that runs when this task fails after its retries. */
  readonly onFailure?: CatchSpec;
  /** Set on a handler task: the id of the task whose failure it handles. */
  readonly handles?: string;
  /** A cleanup task: runs once every other task ended, however the run ends. */
  readonly finally?: boolean;
  /** Assets its body writes, each materialized and checked after the body succeeds. */
  readonly produces?: readonly AssetSpec[];
  /** Keys of the assets it reads, for lineage (besides the known assets it reads through `ctx.data`). */
  readonly consumes?: readonly string[];
  /**
   * `inputs`: an attempt whose inputs, params, upstream outputs, code and data read are those
   * of an earlier success reuses its output instead of running the body (engine/result-cache.ts).
   */
  readonly cache?: 'inputs';
}

/**
 * A mapped task: the list comes from `over` at run time, and each item (or batch of
 * items) runs `template` once. For a plain map the template is the task itself (one spec
 * whose id is the map's id); for a map over a group it is the group's tasks, with ids and
 * `dependsOn` local to one item.
 */
export interface MapSpec {
  /** A `${{ }}` expression that yields an array (an upstream output or a param). */
  readonly over: string;
  /** Items in flight at once; null for no limit beyond the engine's. */
  readonly maxParallel: number | null;
  /** Items handed to one instance as an array; null for one item per instance. */
  readonly batch: number | null;
  /** `fail`: any failed item fails the map. `continue`: downstream gets results and failures. */
  readonly onItemFailure: 'fail' | 'continue';
  /** True for a map over a group (template ids are prefixed `<map>[i].`). */
  readonly group: boolean;
  readonly template: readonly TaskSpec[];
}

/** Branch selection. `rules` are tried in order; `otherwise` applies when none matched. */
export interface ChoiceSpec {
  /** `when` is an expression; null when a function (the task's code) selects. */
  readonly rules: readonly { readonly when: string | null; readonly then: readonly string[] }[];
  readonly otherwise: readonly string[];
  /** `first`: the first matching rule's branches; `all`: every matching rule's. */
  readonly mode: 'first' | 'all';
  /** Every task a branch may name; those not selected are skipped as "branch not taken". */
  readonly targets: readonly string[];
}

export interface QuorumSpec {
  readonly k: number;
  /** Cancel the upstream tasks still open once k succeeded. */
  readonly cancelRest: boolean;
}

export interface RaceSpec {
  /** The competing tasks (the race task depends on them). */
  readonly branches: readonly string[];
  /** `first`: first success wins, the rest are cancelled; `all`: wait for all, then choose. */
  readonly mode: 'first' | 'all';
  /** With `all`: the first branch in this order that succeeded wins. */
  readonly priority: readonly string[] | null;
  /** With `all`: the task's code scores each success; the highest wins. */
  readonly score: boolean;
}

export interface CatchSpec {
  /** Id of the handler task. */
  readonly handler: string;
  /** If the handler succeeds, its output replaces the failed task's and the task succeeds. */
  readonly recover: boolean;
  /** Error codes or kinds the handler takes; empty for any error. */
  readonly on: readonly string[];
}

/** Kinds the engine carries out itself, without an executor or a worker slot. */
export const PARKING_KINDS = ['sleep', 'wait_until', 'wait_for_event', 'approval', 'subflow'] as const;
export type ParkingKind = (typeof PARKING_KINDS)[number];

export function isParkingKind(kind: string): kind is ParkingKind {
  return (PARKING_KINDS as readonly string[]).includes(kind);
}

/** Kinds of errors, so that retry and catch can match on a family rather than each code. */
export const ERROR_KINDS = ['timeout', 'validation', 'lost', 'cancelled', 'rejected', 'transient', 'error'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

const KIND_OF_CODE: Readonly<Record<string, ErrorKind>> = {
  TASK_TIMEOUT: 'timeout',
  RUN_TIMEOUT: 'timeout',
  WAIT_TIMEOUT: 'timeout',
  APPROVAL_TIMEOUT: 'timeout',
  WORKER_LOST: 'lost',
  TASK_CANCELLED: 'cancelled',
  APPROVAL_REJECTED: 'rejected',
  DEF_LOAD: 'validation',
  DEF_INVALID: 'validation',
  TASK_INPUT: 'validation',
  TASK_OUTPUT_TOO_LARGE: 'validation',
  TASK_OUTPUT_INVALID: 'validation',
  VALIDATION: 'validation',
  MAP_OVER_INVALID: 'validation',
  // A retry would meet the same limit (and, deep in a recursion, start a new tree each time).
  SUBFLOW_DEPTH: 'validation',
  SUBFLOW_CHILD_RUNS: 'validation',
};

/** The kind of an error: as thrown (`error.kind`), else from its code, else `error`. */
export function errorKind(error: TaskError): ErrorKind {
  if (error.kind && (ERROR_KINDS as readonly string[]).includes(error.kind)) return error.kind as ErrorKind;
  // Own keys only: a code such as `constructor` must not find Object.prototype's members.
  return Object.hasOwn(KIND_OF_CODE, error.code) ? (KIND_OF_CODE[error.code] as ErrorKind) : 'error';
}

/** True if `selectors` (codes or kinds) name this error; an empty list names every error. */
export function errorMatches(selectors: readonly string[], error: TaskError): boolean {
  if (selectors.length === 0) return true;
  return selectors.includes(error.code) || selectors.includes(errorKind(error));
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
  /** Task groups by name; tasks name theirs in `group`. */
  readonly groups?: Readonly<Record<string, { readonly description?: string }>>;
  /**
   * Data paths (templates over `params` allowed) fetched into the cache when a run's first
   * attempts start in a process, so that the tasks reading them find them warm.
   */
  readonly prefetch?: readonly string[];
}

/**
 * Error codes, and kinds, that describe bad input or a decision rather than a transient
 * fault: never retried unless a policy's own `neverRetryOn` says otherwise.
 */
export const NON_RETRYABLE_CODES: readonly string[] = [
  'DEF_LOAD',
  'DEF_INVALID',
  'TASK_INPUT',
  'TASK_OUTPUT_TOO_LARGE',
  'TASK_OUTPUT_INVALID',
  'VALIDATION',
  'MAP_OVER_INVALID',
  'APPROVAL_REJECTED',
  'validation',
  'rejected',
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
  /** A family of errors (`timeout`, `validation`, …) when the thrower set one; see `errorKind`. */
  readonly kind?: string;
  readonly message: string;
  readonly source?: 'user' | 'baton';
  readonly hint?: string;
  readonly details?: Record<string, unknown>;
  /**
   * The stack of an error thrown by task code: its name and message, then the frames of
   * the user's code (Baton's own frames and Node's internals left out), at most
   * limits.error_bytes (64 KiB by default), like the message, the hint and the details.
   */
  readonly stack?: string;
}
