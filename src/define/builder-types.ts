/**
 * The public types of the TypeScript flow builder: task options, the contexts task code
 * receives, and the handles tasks return. Types only; the builder is in builder.ts and
 * builder-tasks.ts.
 */
import type { ParamType, TaskError } from '../core/model.js';
import type { TriggerRule } from '../core/states.js';
import type { AttemptContext } from '../core/task-context.js';

/** A param declaration; the value type follows `type`. */
export interface ParamDef {
  readonly type: ParamType;
  readonly default?: unknown;
  readonly description?: string;
  readonly enum?: readonly unknown[];
}

type ValueOf<T extends ParamType> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'array'
        ? unknown[]
        : Record<string, unknown>;

/** The params object a task sees, typed from the declarations. */
export type ParamValues<P extends Record<string, ParamDef>> = { readonly [K in keyof P]: ValueOf<P[K]['type']> };

/** A duration in ms or as text (`250ms`, `30s`, `5m`, `1d`). */
export type DurationInput = number | string;

export interface RetryInput {
  readonly maxAttempts?: number;
  readonly backoff?: DurationInput;
  readonly maxBackoff?: DurationInput;
  readonly jitter?: 'full' | 'none';
  /** Error codes or kinds (`timeout`, `transient`, …) that are retried; all others are not. */
  readonly retryOn?: readonly string[];
  /** Error codes or kinds that are never retried. */
  readonly neverRetryOn?: readonly string[];
  /** Count attempts lost with their worker against maxAttempts (default false). */
  readonly countLost?: boolean;
}

/** A handle on a declared task; `O` is its output type. */
export interface TaskRef<O = unknown> {
  readonly id: string;
  /** Phantom field carrying the output type; never set at run time. */
  readonly __output?: O;
}

export type OutputOf<R> = R extends TaskRef<infer O> ? O : never;

/** An upstream task: a ref, or a name (a task id, or a group, which stands for its tasks). */
export type Upstream = TaskRef | string;

/** A trigger rule, or a quorum: run once `kOfN` upstream tasks succeeded. */
export type TriggerRuleInput = TriggerRule | { readonly kOfN: number; readonly cancelRest?: boolean };

/** What a function task receives. */
export interface FlowTaskContext<P, I> extends Omit<AttemptContext, 'params' | 'inputs'> {
  readonly params: P;
  readonly inputs: I;
}

/** What a task inside a map receives besides: its item (or batch of items) and its position. */
export interface MapItemContext<T> {
  readonly item: T;
  readonly mapIndex: number;
}

/** What a failure handler receives besides: the failure it handles. */
export interface HandlerContext {
  readonly error: TaskError;
}

/** A task context: params typed `P`, inputs `I`, plus `X` (the item, inside a map). */
export type TaskContext<P extends Record<string, ParamDef>, I, X extends object> = FlowTaskContext<ParamValues<P>, I> &
  X;

/** The inputs a task sees, typed from the refs it names. */
export type InputsOf<I extends Record<string, TaskRef>> = { [K in keyof I]: OutputOf<I[K]> };

/** A command as a shell task runs it. */
export interface ShellBody {
  /** argv (run without a shell), or a command line when `shell` is set. */
  readonly command: readonly string[] | string;
  readonly shell?: boolean | string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** A task that runs when another fails, after that task's retries. */
export interface OnFailureInput<P extends Record<string, ParamDef>, X extends object> {
  /** The handler's body: a function (which reads `ctx.error`), or a command. */
  readonly run: ((ctx: TaskContext<P, Readonly<Record<string, never>>, X & HandlerContext>) => unknown) | ShellBody;
  /** If the handler succeeds, its output stands for the failed task's, which then succeeds. Default false. */
  readonly recover?: boolean;
  /** Error codes or kinds the handler takes; default: any error. */
  readonly on?: readonly string[];
  /** Default `<task id>.on_failure`. */
  readonly id?: string;
  readonly retry?: RetryInput;
  readonly timeout?: DurationInput;
}

/** Options of every task. */
export interface BaseTaskOptions {
  /** Extra upstream tasks whose outputs are not needed: refs, task ids, or group names. */
  readonly after?: readonly Upstream[];
  /** The group the task belongs to (declared in `groups`, or implied by this). */
  readonly group?: string;
  readonly triggerRule?: TriggerRuleInput;
  readonly description?: string;
}

/** A check on an asset, written as in YAML: `{ not_null: ['order_id'] }`, `{ unique: ['email'], severity: 'warn' }`. */
export type AssetCheckInput = (
  | { readonly not_null: string | readonly string[] }
  | { readonly unique: string | readonly string[] }
  | {
      readonly accepted_values: { readonly column: string; readonly values: readonly (string | number | boolean)[] };
    }
  | { readonly range: { readonly column: string; readonly min?: number; readonly max?: number } }
  | { readonly row_count: { readonly min?: number; readonly max?: number } }
  | { readonly freshness: { readonly column: string; readonly max_age: DurationInput } }
  | { readonly schema: Readonly<Record<string, string>> }
  | { readonly references: { readonly column: string; readonly asset: string; readonly column_in_asset?: string } }
  | { readonly sql: string }
) & { readonly severity?: 'error' | 'warn'; readonly name?: string };

/** An asset a task produces: its key, where it lives, and its checks. */
export interface AssetDeclaration {
  readonly asset: string;
  /** A data path, `data://<mount>/<key>`. */
  readonly path: string;
  readonly checks?: readonly AssetCheckInput[];
}

/** Options of tasks that run something. */
export interface CommonTaskOptions<
  P extends Record<string, ParamDef> = Record<string, ParamDef>,
  X extends object = object,
> extends BaseTaskOptions {
  readonly retry?: RetryInput;
  readonly timeout?: DurationInput;
  readonly pool?: string;
  /** Labels a worker must have to take this task (PostgreSQL deployments). */
  readonly labels?: readonly string[];
  /** Assets the body writes, materialized and checked after it succeeds (docs/data.md). */
  readonly produces?: readonly AssetDeclaration[];
  /** Keys of the assets the body reads, for lineage. */
  readonly consumes?: readonly string[];
  /** `'inputs'`: reuse the output of an earlier success that read the same (docs/data.md, Result cache). */
  readonly cache?: 'inputs';
  readonly onFailure?: OnFailureInput<P, X>;
  /** A cleanup task: runs once every other task ended, however the run ends; takes no `after`. */
  readonly finally?: boolean;
}

export interface FunctionTaskOptions<
  I extends Record<string, TaskRef>,
  P extends Record<string, ParamDef> = Record<string, ParamDef>,
  X extends object = object,
> extends CommonTaskOptions<P, X> {
  /** Upstream tasks whose outputs this task reads, by input name. */
  readonly inputs?: I;
}

export interface ShellTaskOptions<
  P extends Record<string, ParamDef> = Record<string, ParamDef>,
  X extends object = object,
>
  extends CommonTaskOptions<P, X>, ShellBody {}

/** What a sql task's SQL sees under one name: a file of the namespace, a PostgreSQL query or table, or an upstream output. */
export type SqlInputOption =
  | string
  | { readonly query: string; readonly mount: string }
  | { readonly table: string; readonly mount: string }
  | { readonly task: TaskRef | string };

/** A sql task (docs/data.md): SQL over its inputs, run by DuckDB or by a postgres mount's database. */
export interface SqlTaskOptions<
  P extends Record<string, ParamDef> = Record<string, ParamDef>,
  X extends object = object,
> extends CommonTaskOptions<P, X> {
  /** `duckdb` (default) runs the SQL in the worker; `postgres` on the database of `mount`. */
  readonly engine?: 'duckdb' | 'postgres';
  readonly mount?: string;
  /** Tables by the name the SQL gives them; an upstream task named here becomes a dependency. */
  readonly inputs?: Readonly<Record<string, SqlInputOption>>;
  /** One statement; `$name` takes the value of `params.name`, bound. */
  readonly sql: string;
  /** Values bound to the SQL's `$name` parameters; strings may hold `${{ }}` templates. */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Where the result goes: a file (`.parquet`, `.csv`, `.json`, `.jsonl`) or a table of a postgres mount; none: the rows are the output. */
  readonly output?: {
    readonly to: string;
    readonly mode?: 'append' | 'replace' | 'merge';
    readonly key?: readonly string[];
  };
}

/** How a map takes its items. `over` is a task whose output is a list, or a `${{ }}` expression. */
export interface MapOverOptions<T, B extends number | undefined = undefined> {
  readonly over: TaskRef<readonly T[]> | string;
  /** Items in flight at once; default: no limit beyond the engine's. */
  readonly maxParallel?: number;
  /** Items handed to one instance, as an array; default one item per instance. */
  readonly batch?: B;
  /** `fail` (default): a failed item fails the map. `continue`: downstream gets results and failures. */
  readonly onItemFailure?: 'fail' | 'continue';
}

export interface MapTaskOptions<
  T,
  I extends Record<string, TaskRef>,
  P extends Record<string, ParamDef>,
  X extends object,
  B extends number | undefined,
>
  extends FunctionTaskOptions<I, P, X>, MapOverOptions<T, B> {}

export interface MapGroupOptions<T, B extends number | undefined = undefined>
  extends BaseTaskOptions, MapOverOptions<T, B> {}

/** The item a mapped task sees: one item, or an array of them with `batch`. */
export type ItemOf<T, B extends number | undefined> = B extends number ? T[] : T;

export interface ChoiceRule {
  /** One `${{ }}` expression; the rule applies when it is truthy. */
  readonly when: string;
  /** Tasks (or groups) selected by the rule. */
  readonly then: readonly Upstream[];
}

export interface ChoiceRulesOptions extends BaseTaskOptions {
  readonly rules: readonly ChoiceRule[];
  /** Tasks selected when no rule matched. */
  readonly otherwise?: readonly Upstream[];
  /** `first` (default): the first matching rule's tasks; `all`: every matching rule's. */
  readonly mode?: 'first' | 'all';
}

export interface ChoiceFunctionOptions<B extends string> extends BaseTaskOptions {
  /** Every task the function may select, by id (it returns one or several of them). */
  readonly branches: readonly B[];
}

/** A race picks its winner itself, so it takes no trigger rule; it waits for its branches. */
/** A race waits for its branches alone: no `after` or trigger rule of its own. */
export interface RaceOptions<R extends readonly Upstream[]> extends Omit<BaseTaskOptions, 'triggerRule' | 'after'> {
  readonly branches: R;
  /** `first` (default): the first success wins and the rest are cancelled; `all`: wait for every branch. */
  readonly mode?: 'first' | 'all';
  /** With `all`: the first branch in this order that succeeded wins (default: the order of branches). */
  readonly priority?: readonly Upstream[];
}

/** The output a branch of a race may produce. */
export type BranchOutput<R> = R extends TaskRef<infer O> ? O : unknown;

/** What a race hands downstream: the winning branch, its output, and what the others did. */
export interface RaceResult<O> {
  readonly winner: string;
  readonly output: O;
  readonly losers: readonly {
    readonly task: string;
    readonly state: string;
    /** How long the branch ran before it ended or was cancelled; null if it never started. */
    readonly runtimeMs: number | null;
    readonly reason?: string;
  }[];
  /** With a scoring function: each successful branch's score. */
  readonly scores?: Readonly<Record<string, number>>;
}

/** Scores one successful branch of a race in mode `all`; the highest score wins. */
export type RaceScoreFunction<O = unknown> = (output: O, branchId: string) => number | Promise<number>;

/**
 * Options of the tasks the engine carries out itself (sleeps, waits, approvals, child
 * runs): they take no worker slot, so no pool, labels or attempt timeout.
 */
export interface ParkingTaskOptions<
  P extends Record<string, ParamDef> = Record<string, ParamDef>,
  X extends object = object,
> extends BaseTaskOptions {
  readonly onFailure?: OnFailureInput<P, X>;
  readonly retry?: RetryInput;
}

export interface SleepOptions<P extends Record<string, ParamDef>, X extends object> extends ParkingTaskOptions<P, X> {
  /** How long: a duration, or one `${{ }}` expression that yields milliseconds. */
  readonly duration: DurationInput;
}

export interface WaitUntilOptions<P extends Record<string, ParamDef>, X extends object> extends ParkingTaskOptions<
  P,
  X
> {
  /** An ISO 8601 instant, epoch milliseconds, or one `${{ }}` expression. */
  readonly until: string | number;
}

export interface WaitForEventOptions<P extends Record<string, ParamDef>, X extends object> extends ParkingTaskOptions<
  P,
  X
> {
  /** Event name: letters, digits, `_`, `.` and `-`. */
  readonly event: string;
  /** Only an event sent with this match value (templated) ends the wait. */
  readonly match?: string;
  /** Fail after this long without the event; default: wait forever. */
  readonly timeout?: DurationInput;
}

export interface ApprovalOptions<P extends Record<string, ParamDef>, X extends object> extends ParkingTaskOptions<
  P,
  X
> {
  readonly message?: string;
  /** Fail after this long without an answer; default: wait forever. */
  readonly timeout?: DurationInput;
  /** Who may answer; empty or absent: anyone. */
  readonly approvers?: readonly string[];
}

export interface SubflowOptions<P extends Record<string, ParamDef>, X extends object> extends ParkingTaskOptions<P, X> {
  /** The child flow's name. */
  readonly flow: string;
  /** Pin a version of the child flow; default: its current one. */
  readonly version?: string;
  /** The child run's params; strings may hold `${{ }}` templates. */
  readonly params?: Readonly<Record<string, unknown>>;
}
