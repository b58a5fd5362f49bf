/**
 * The types of Baton's public client: what a program passes to `openClient` and its
 * methods, and what it gets back. Kept apart from the implementation so that importing
 * `baton-orchestrator` for `defineFlow` loads no store driver.
 */
import type { RunEvent } from '../core/run-machine.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import type { TaskError } from '../core/model.js';
import type { FlowDefinition } from '../define/builder.js';
import type { ParamDef, ParamValues, TaskRef } from '../define/builder-types.js';
import type { AssetDetail } from '../app/assets.js';
import type { AssetSummary, RunMaterialization } from '../store/ports/assets.js';
import type { RunHandle } from './run-handle.js';

export interface ClientOptions {
  /**
   * A Baton server (`baton server`, `baton dev`) to talk to over its HTTP API instead of a
   * store: `http://127.0.0.1:8420`. Not with `database` or `project` (USAGE); the flows
   * are the server project's.
   */
  readonly url?: string;
  /** Headers sent with every request to `url` (e.g. an `authorization` a proxy asks for). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The store: the path of a SQLite file (relative to the working directory) or a
   * `postgres://` URL. Default: the store of `project` (its baton.yaml `database`, else
   * `.baton/baton.db` in it). One of `database`, `project` and `url` is required.
   */
  readonly database?: string;
  /**
   * A Baton project folder (with baton.yaml or flows/): its settings apply, and its flow
   * files can be started by name. Without it, the settings are the defaults and flows are
   * those registered in code (or flow files given by path).
   */
  readonly project?: string;
  /** Flows defined in code to register at once (see `BatonClient.register`). */
  readonly flows?: readonly FlowDefinition[];
  /**
   * Environment variables to read settings from (`BATON_DATABASE_URL`, `BATON_CONCURRENCY`,
   * …), e.g. `process.env`. Default: none; the client reads only what it is given.
   */
  readonly env?: NodeJS.ProcessEnv;
  /** Attempt bodies a worker of this client runs at once. Default: the project's `concurrency` (32). */
  readonly concurrency?: number;
}

/** The params a flow takes when a run is started: those with a default may be left out. */
export type ParamInput<P extends Record<string, ParamDef>> = {
  readonly [K in keyof P as P[K] extends { readonly default: unknown } ? never : K]: ParamValues<P>[K];
} & {
  readonly [K in keyof P as P[K] extends { readonly default: unknown } ? K : never]?: ParamValues<P>[K];
};

/** What `result()` resolves with when no `output` task was named: each succeeded task run's output, by id. */
export type RunOutputs = Readonly<Record<string, unknown>>;

export interface StartOptions<O = RunOutputs> {
  /**
   * A run with this key is created once, whoever asks and however often: starting it again
   * returns a handle on the existing run (`handle.created` is false).
   */
  readonly dedupeKey?: string;
  /**
   * Tags kept on the run, to find it again with \`list({ labels })\` or \`baton runs --label\`:
   * \`{ team: 'growth', env: 'prod' }\`. At most 64; a key has at most 63 characters (letters,
   * digits, \`_ . / -\`, starting and ending with a letter or digit), a value 1 to 256
   * (RUN_LABEL_INVALID otherwise, and nothing is created).
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The task whose output is the run's result (`handle.result()`), typed by that task when
   * the flow is defined in code: `{ output: loadTask }` where `loadTask` is what
   * `flow.task('load', …)` returned. Default: the outputs of every task run, by id.
   */
  readonly output?: TaskRef<O> | string;
}

/** One run of `startMany`. */
export interface StartManyInput {
  readonly flow: string | FlowDefinition;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly dedupeKey?: string;
  /** Tags kept on the run: see \`StartOptions.labels\`. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A run as the client reports it. Times are ms since the epoch. */
export interface RunInfo {
  readonly id: string;
  readonly flow: string;
  /** The flow version the run is pinned to. */
  readonly version: string;
  readonly state: RunStateName;
  readonly params: Readonly<Record<string, unknown>>;
  readonly dedupeKey: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  /** Why the run failed, when it did. */
  readonly error: TaskError | null;
  /** The trigger that created it, if any. */
  readonly triggerId: string | null;
  /** The run whose subflow task started it, if any. */
  readonly parentRunId: string | null;
  /** The labels it was started with; \`{}\` for none. */
  readonly labels: Readonly<Record<string, string>>;
}

/** A task run as the client reports it. */
export interface TaskRunInfo {
  readonly id: string;
  readonly state: TaskStateName;
  readonly attempts: number;
  readonly output: unknown;
  readonly error: TaskError | null;
}

/** One event of a run's history: its position and the event. */
export interface RunEventRecord {
  readonly runId: string;
  readonly seq: number;
  readonly event: RunEvent;
}

export interface WaitOptions {
  /** Give up after this many ms with RUN_WAIT_TIMEOUT. Default: no limit. */
  readonly timeoutMs?: number;
  /** Stop waiting when aborted; the promise rejects with the abort reason. */
  readonly signal?: AbortSignal;
}

export interface ListOptions {
  readonly flow?: string;
  readonly state?: RunStateName;
  /** Only runs that have every one of these labels, each with exactly this value. */
  readonly labels?: Readonly<Record<string, string>>;
  /** At most this many, newest first. Default 1000. */
  readonly limit?: number;
}

export interface SignalOptions {
  /** Only tasks waiting with this match key take it. */
  readonly key?: string;
  /** The event's data: it becomes the output of the task it wakes. */
  readonly data?: unknown;
  /** Who sent it, for the history. */
  readonly by?: string;
  /** Makes the signal idempotent: a second signal with the same id changes nothing. */
  readonly id?: string;
}

export interface SignalOutcome {
  readonly id: string;
  /** Task runs the signal woke. */
  readonly woke: readonly string[];
  /** Received, and no task has taken it yet: the first task to wait for it will. */
  readonly kept: boolean;
  /** A signal with this id had been received before: nothing changed. */
  readonly duplicate: boolean;
}

export interface DecisionOptions {
  /** Who decides; must be one of the task's approvers when it names some. */
  readonly by: string;
  readonly comment?: string;
}

export interface DecisionOutcome {
  readonly task: string;
  /** The approval task's state after the decision: `succeeded` when approved, `failed` when rejected. */
  readonly taskState: TaskStateName;
  readonly runState: RunStateName;
}

export interface CancelOptions {
  /** Cancel only this task run of the run. */
  readonly task?: string;
  readonly reason?: string;
}

export interface RetryOptions {
  /** Rerun what did not succeed. */
  readonly fromFailed?: boolean;
  /** Rerun these tasks … */
  readonly tasks?: readonly string[];
  /** … and the tasks downstream of them. */
  readonly downstream?: boolean;
}

export interface WorkerOptions {
  /** Attempt bodies run at once. Default: the client's `concurrency`. */
  readonly concurrency?: number;
  /**
   * Take only attempts whose task labels are all among these (PostgreSQL, `mode: 'tasks'`).
   * Giving labels implies `mode: 'tasks'`.
   */
  readonly labels?: readonly string[];
  /**
   * `runs` (default without labels): this process claims queued runs and drives them whole,
   * as `baton worker` does on SQLite and `baton dev` does. `tasks` (PostgreSQL only): it
   * executes the attempts that `baton scheduler` processes put on the task queue, as
   * `baton worker` does on PostgreSQL.
   */
  readonly mode?: 'runs' | 'tasks';
  /** Where the worker reports what went wrong around a run (a claim or a commit that failed). */
  readonly onDiagnostic?: (message: string) => void;
}

/** An in-process worker started by `startWorker`. */
export interface Worker {
  /** Its owner name in the store (`host/pid/random`). */
  readonly id: string;
  readonly mode: 'runs' | 'tasks';
  /**
   * Graceful shutdown: takes no new work, lets running attempts finish and their results
   * be stored, then releases every run it holds (others continue them). Idempotent.
   */
  drain(): Promise<void>;
  /**
   * Stops at once: running attempts are aborted, their runs released; another worker
   * retries what was cut short. Idempotent.
   */
  stop(): Promise<void>;
}

/** What `start` accepts as a flow: its name (or file path), or its definition in code. */
export type FlowInput = string | FlowDefinition;

/** Assets as the client returns them (`assets()`, `asset(key)`, `runAssets(runId)`). */
export type { AssetDetail } from '../app/assets.js';
export type {
  AssetCheckResult,
  AssetColumn,
  AssetInput,
  AssetLink,
  AssetMaterializationRecord,
  AssetSummary as AssetInfo,
  RunMaterialization as RunAssetInfo,
} from '../store/ports/assets.js';

/**
 * What a program can ask of Baton wherever the runs are: of a store in this process
 * (`BatonClient`) or of a server over HTTP (`BatonRemoteClient`). Each method is documented
 * on `BatonClient`.
 */
export interface BatonApi {
  start<O = RunOutputs>(
    flow: string,
    params?: Readonly<Record<string, unknown>>,
    options?: StartOptions<O>,
  ): Promise<RunHandle<O>>;
  startMany(inputs: readonly StartManyInput[]): Promise<RunHandle[]>;
  handle(runId: string): Promise<RunHandle>;
  status(runId: string): Promise<RunInfo>;
  result(runId: string, options?: WaitOptions): Promise<RunOutputs>;
  list(options?: ListOptions): Promise<RunInfo[]>;
  tasks(runId: string): Promise<TaskRunInfo[]>;
  watch(
    runId: string,
    options?: { afterSeq?: number; signal?: AbortSignal },
  ): AsyncGenerator<RunEventRecord, void, undefined>;
  cancel(runId: string, options?: CancelOptions): Promise<RunInfo>;
  retry(runId: string, options: RetryOptions): Promise<RunInfo>;
  signal(runId: string, event: string, options?: SignalOptions): Promise<SignalOutcome>;
  approve(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  reject(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  assets(options?: { readonly limit?: number; readonly afterKey?: string }): Promise<AssetSummary[]>;
  asset(key: string, options?: { readonly limit?: number }): Promise<AssetDetail>;
  runAssets(runId: string, options?: { readonly limit?: number }): Promise<RunMaterialization[]>;
  materialize(key: string): Promise<RunHandle>;
  pauseTrigger(trigger: string): Promise<void>;
  resumeTrigger(trigger: string): Promise<void>;
  close(): Promise<void>;
}
