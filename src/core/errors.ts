/**
 * The error catalog. Every error Baton raises carries a stable string `code` (the
 * contract), a message saying what happened, a hint saying what to do next, and whether
 * it came from user code or from Baton itself. `docs/errors.md` lists the catalog.
 */

/** Where the fault lies: in the user's flow/code/input, or inside Baton. */
export type ErrorSource = 'user' | 'baton';

/** One entry of the catalog: the default hint and the CLI exit code for a code. */
export interface ErrorCodeInfo {
  readonly summary: string;
  readonly hint: string;
  readonly exitCode: number;
  readonly source: ErrorSource;
}

export const ERROR_CODES = {
  DEF_INVALID: {
    summary: 'A flow definition does not match the flow schema.',
    hint: 'Fix the key named in the message; `baton validate` lists every problem at once.',
    exitCode: 3,
    source: 'user',
  },
  DEF_CYCLE: {
    summary: 'The task graph has a cycle.',
    hint: 'Remove one of the depends_on edges named in the cycle.',
    exitCode: 3,
    source: 'user',
  },
  DEF_UNKNOWN_DEPENDENCY: {
    summary: 'A task depends on a task that does not exist.',
    hint: 'Check the spelling of the task id in depends_on.',
    exitCode: 3,
    source: 'user',
  },
  DEF_DUPLICATE_TASK: {
    summary: 'Two tasks share one id.',
    hint: 'Give every task of a flow its own id.',
    exitCode: 3,
    source: 'user',
  },
  DEF_EXPRESSION: {
    summary: 'A `${{ }}` expression is malformed or refers to something that does not exist.',
    hint: 'Expressions may read `params.<name>` and `tasks.<upstream>.output`; see docs/flows.md.',
    exitCode: 3,
    source: 'user',
  },
  DEF_LOAD: {
    summary: 'A flow file could not be read or imported.',
    hint: 'Check that the file exists and that it exports a flow (default export or `flow`).',
    exitCode: 3,
    source: 'user',
  },
  DEF_LIMIT: {
    summary:
      'A flow file goes over a limit met while it is parsed: its nesting (flow_depth) or what its aliases expand to (flow_alias_nodes). A file over flow_file_bytes is DEF_LOAD: it is refused before it is read.',
    hint: 'The message names the limit and the line: flatten the data there, or write out what the aliases repeat (docs/operations.md#limits).',
    exitCode: 3,
    source: 'user',
  },
  DEF_MODULE: {
    summary:
      'A function task names a module that is missing or cannot be imported, or an export that is not a function.',
    hint: 'Fix `module:` (relative to the flow file) or `export:`; `baton validate` lists the functions a module exports.',
    exitCode: 3,
    source: 'user',
  },
  DEF_SHELL_EXPRESSION: {
    summary: 'A `${{ }}` expression is written inside a command line that a shell parses.',
    hint: 'Pass the value through `env:` and read it as "$NAME" in the script, or write `command:` as an argv list, which runs without a shell.',
    exitCode: 3,
    source: 'user',
  },
  DEF_UNKNOWN_FLOW: {
    summary: 'A subflow task names a flow that is not in the project.',
    hint: 'Check the spelling of `subflow.flow` (the message suggests the closest flow name); `baton validate` lists the flows of the project.',
    exitCode: 3,
    source: 'user',
  },
  FLOW_NOT_FOUND: {
    summary: 'No flow with that name or path.',
    hint: 'Run `baton flows` to list the flows of this project, or pass a path to a flow file.',
    exitCode: 4,
    source: 'user',
  },
  FLOW_VERSION_MISMATCH: {
    summary: 'The flow code changed since the run started.',
    hint: 'Restore the code the run was started with, or cancel the run and start a new one.',
    exitCode: 5,
    source: 'user',
  },
  RUN_PARAM_INVALID: {
    summary: 'A run parameter is unknown, missing or of the wrong type.',
    hint: 'Check the flow params with `baton flows --json`; pass values with --param k=v.',
    exitCode: 2,
    source: 'user',
  },
  RUN_LABEL_INVALID: {
    summary: 'A run label is malformed: a bad key or value, or too many labels.',
    hint: 'Give at most 64 labels as key=value: a key of letters, digits and `_ . / -` (63 characters at most, starting and ending with a letter or digit), a non-empty value of at most 256 characters.',
    exitCode: 2,
    source: 'user',
  },
  RUN_NOT_FOUND: {
    summary: 'No run with that id or id prefix, or no run yet for `last`.',
    hint: 'List runs with `baton runs`.',
    exitCode: 4,
    source: 'user',
  },
  RUN_AMBIGUOUS: {
    summary: 'A run id prefix matches more than one run.',
    hint: 'Give more characters of the run id; the message lists the runs it matches.',
    exitCode: 2,
    source: 'user',
  },
  RUN_NOT_RETRYABLE: {
    summary: 'The run cannot be retried in its current state.',
    hint: 'Only finished runs can be retried; cancel a running run first.',
    exitCode: 5,
    source: 'user',
  },
  RUN_OWNED: {
    summary: 'Another live process is executing this run.',
    hint: 'Wait for it, or stop that process; its lease expires if it dies.',
    exitCode: 5,
    source: 'user',
  },
  RUN_FAILED: {
    summary:
      'A run that a program waited for through the client ended without succeeding: failed, cancelled or timed out.',
    hint: 'details.state and details.error say how it ended; `baton show <run>` shows which task failed and why.',
    exitCode: 1,
    source: 'user',
  },
  RUN_WAIT_TIMEOUT: {
    summary: 'A run that a program waited for through the client had not ended when the wait timed out.',
    hint: 'Check that a worker executes runs (`baton worker`, `baton dev`, or client.startWorker()), or wait longer.',
    exitCode: 1,
    source: 'user',
  },
  TASK_NOT_FOUND: {
    summary: 'The run has no task with that id.',
    hint: 'List the tasks of the run with `baton show <run>`.',
    exitCode: 4,
    source: 'user',
  },
  TASK_FAILED: {
    summary: 'A task body threw an error or a command exited non-zero.',
    hint: 'Read the task log with `baton logs <run> <task>`.',
    exitCode: 1,
    source: 'user',
  },
  TASK_TIMEOUT: {
    summary: 'A task attempt ran longer than its timeout and was stopped.',
    hint: 'Raise the task `timeout` or make the task faster.',
    exitCode: 1,
    source: 'user',
  },
  TASK_CANCELLED: {
    summary: 'A task attempt was cancelled.',
    hint: 'The run or the task was cancelled by a user or by a run timeout.',
    exitCode: 1,
    source: 'user',
  },
  TASK_INPUT: {
    summary: 'A task input expression could not be evaluated at run time.',
    hint: 'Check that the upstream output has the shape the expression reads.',
    exitCode: 1,
    source: 'user',
  },
  TASK_OUTPUT_TOO_LARGE: {
    summary: 'A task returned an output larger than the configured limit.',
    hint: 'Write large data to a file or table and return a reference; or raise limits.output_bytes.',
    exitCode: 1,
    source: 'user',
  },
  TASK_OUTPUT_INVALID: {
    summary: 'A task returned a value that is not JSON-serializable.',
    hint: 'Return plain objects, arrays, strings, numbers, booleans or null.',
    exitCode: 1,
    source: 'user',
  },
  WORKER_LOST: {
    summary: 'The process running an attempt died or lost its lease.',
    hint: 'The attempt is retried by the next process that takes the run.',
    exitCode: 1,
    source: 'baton',
  },
  RUN_TIMEOUT: {
    summary: 'The run exceeded its run timeout.',
    hint: 'Raise the flow `timeout` or make the flow faster.',
    exitCode: 1,
    source: 'user',
  },
  PAYLOAD_TOO_LARGE: {
    summary: 'A payload is larger than the configured limit.',
    hint: 'Pass a reference (a path or a key) instead of the data, or raise the limit.',
    exitCode: 2,
    source: 'user',
  },
  STORE_CONFLICT: {
    summary: 'The store refused a write because another process changed the same row.',
    hint: 'Retry the command.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_FENCED: {
    summary: 'This process no longer owns the run; its write was refused.',
    hint: 'Another process took the run over after this one lost its lease. Nothing to do.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_BUSY: {
    summary: 'The database is locked by another process.',
    hint: 'Retry in a moment; the engine retries by itself.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_FULL: {
    summary: 'The disk holding the database is full.',
    hint: 'Free disk space; the engine retries by itself and loses nothing.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_UNAVAILABLE: {
    summary: 'The database server cannot be reached or dropped the connection.',
    hint: 'Retry the command; workers and schedulers reconnect by themselves once the server is back.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_IO: {
    summary: 'The database could not be read or written.',
    hint: 'Check the database path and its permissions.',
    exitCode: 6,
    source: 'baton',
  },
  STORE_TOO_NEW: {
    summary: 'The database was migrated by a newer Baton.',
    hint: 'Upgrade Baton to the version that last migrated this database.',
    exitCode: 6,
    source: 'baton',
  },
  HISTORY_TOO_NEW: {
    summary:
      'A run history or a pinned flow definition was written in a format newer than this Baton reads (a newer Baton wrote it).',
    hint: 'Upgrade Baton to the version that wrote the run; an older Baton cannot read a newer history.',
    exitCode: 6,
    source: 'baton',
  },
  RUN_INVALID_TRANSITION: {
    summary:
      'A run history holds an event that is illegal in the state the run or task is in: the history does not fit the run machine. Baton stops executing that run rather than continue from a half-applied decision.',
    hint: 'Nothing of the run is changed. Report it with the output of `baton show <run> --events --json`; the message names the run, the state and the event.',
    exitCode: 70,
    source: 'baton',
  },
  CONFIG_INVALID: {
    summary: 'The project configuration is invalid.',
    hint: 'Fix the key named in the message in baton.yaml or the environment.',
    exitCode: 2,
    source: 'user',
  },
  DATABASE_URL_INVALID: {
    summary:
      'The database setting (`--db`, `BATON_DATABASE_URL`, `BATON_DATABASE` or `database` in baton.yaml) is neither a PostgreSQL URL nor a file path.',
    hint: 'Write a PostgreSQL URL as postgres://user@host:5432/database, or give the path of a SQLite file.',
    exitCode: 2,
    source: 'user',
  },
  MAP_OVER_INVALID: {
    summary: "A map's `over` did not yield a list.",
    hint: 'Make `map.over` name an array, such as ${{ tasks.list.output }} or a param of type array.',
    exitCode: 1,
    source: 'user',
  },
  MAP_ITEM_FAILED: {
    summary: 'Items of a map task failed.',
    hint: 'See the failed items with `baton show <run>`; set `on_item_failure: continue` to go on without them.',
    exitCode: 1,
    source: 'user',
  },
  SUBFLOW_FAILED: {
    summary: 'The child run of a subflow task did not succeed.',
    hint: 'Inspect the child run named in the message with `baton show <child run>`.',
    exitCode: 1,
    source: 'user',
  },
  SUBFLOW_DEPTH: {
    summary: 'A subflow task would start a child run nested deeper than the limit subflow_depth.',
    hint: 'A flow that starts itself needs a condition that ends the recursion (a choice, a map over a shorter list); raise limits.subflow_depth in baton.yaml if the nesting is meant.',
    exitCode: 1,
    source: 'user',
  },
  SUBFLOW_CHILD_RUNS: {
    summary: 'A subflow task would start more child runs of one run than the limit child_runs_per_run.',
    hint: 'Map over fewer items, or raise limits.child_runs_per_run in baton.yaml.',
    exitCode: 1,
    source: 'user',
  },
  WAIT_TIMEOUT: {
    summary: 'The event a task waited for did not arrive in time.',
    hint: 'Send events with `baton signal <run> <event> --data <json>`, or raise the wait timeout.',
    exitCode: 1,
    source: 'user',
  },
  APPROVAL_TIMEOUT: {
    summary: 'Nobody approved or rejected an approval task in time.',
    hint: 'Decide with `baton approve` or `baton reject`, or raise the approval timeout.',
    exitCode: 1,
    source: 'user',
  },
  APPROVAL_REJECTED: {
    summary: 'An approval task was rejected.',
    hint: 'The comment in the message says why; `baton retry <run>` asks again.',
    exitCode: 1,
    source: 'user',
  },
  APPROVAL_NOT_WAITING: {
    summary: 'The task is not waiting for an approval.',
    hint: 'Check the task id and its state with `baton show <run>`.',
    exitCode: 2,
    source: 'user',
  },
  APPROVER_NOT_ALLOWED: {
    summary: 'This person is not among the approvers of the task.',
    hint: 'Pass --by with one of the approvers listed in the message.',
    exitCode: 2,
    source: 'user',
  },
  RACE_NO_WINNER: {
    summary: 'No branch of a race succeeded.',
    hint: 'See why each branch failed with `baton show <run>`.',
    exitCode: 1,
    source: 'user',
  },
  SIGNAL_INVALID: {
    summary: 'A signal to a run is malformed.',
    hint: 'Give an event name of letters, digits, `_`, `.` or `-`, and --data as JSON.',
    exitCode: 2,
    source: 'user',
  },
  DATA_PATH_INVALID: {
    summary:
      'A data path is malformed: not `data://<mount>/<key>`, an empty segment, a backslash or a control character.',
    hint: 'Write the path as `data://<mount>/<folder>/<file>`, with the mount named under `data.mounts` in baton.yaml.',
    exitCode: 2,
    source: 'user',
  },
  DATA_PATH_ESCAPE: {
    summary:
      'A data path would reach outside its mount: a `..` or `.` segment, an encoded dot or slash, an absolute key, or a symbolic link.',
    hint: 'Name the object by its key inside the mount; links and relative segments are refused on purpose.',
    exitCode: 2,
    source: 'user',
  },
  DATA_MOUNT_UNKNOWN: {
    summary: 'A data path names a mount that baton.yaml does not configure.',
    hint: 'Add the mount under `data.mounts` in baton.yaml (docs/data.md#mounts), or fix its name; `baton data mounts` lists them.',
    exitCode: 4,
    source: 'user',
  },
  DATA_NOT_FOUND: {
    summary: 'The object a data path names does not exist in its mount.',
    hint: 'Check the key with `baton data ls <folder>`.',
    exitCode: 4,
    source: 'user',
  },
  DATA_UNSUPPORTED: {
    summary:
      'The mount cannot do what was asked: a write to a read-only mount (HTTP), or a listing where the mount has none.',
    hint: 'Write to a mount of kind local, s3 or postgres; read HTTP objects by their full key.',
    exitCode: 2,
    source: 'user',
  },
  DATA_IO: {
    summary:
      'The storage behind a mount failed or refused the operation (network, permissions, a full disk, a server error).',
    hint: 'The message names the mount, the key and what the storage answered; fix that, then retry. Retrying a task is safe: writes are atomic.',
    exitCode: 6,
    source: 'user',
  },
  DATA_FORMAT: {
    summary:
      'A body written to a mount does not parse in the format its key names (JSON Lines, CSV, UTF-8), or does not fit the table it replaces.',
    hint: 'The message names the line; fix the data there and write again. Nothing was written: the table keeps its old contents.',
    exitCode: 2,
    source: 'user',
  },
  ASSET_NOT_FOUND: {
    summary: 'No task has materialized an asset of that key.',
    hint: 'List the known assets with `baton assets`; an asset is known once a task that produces it succeeded.',
    exitCode: 4,
    source: 'user',
  },
  CHECK_FAILED: {
    summary:
      'A data quality check of severity error failed on an asset the task produced: the attempt fails, and tasks downstream of it are blocked by their trigger rules.',
    hint: 'The message names the asset, the check and how many rows failed; `baton asset show <asset>` shows sample rows. Fix the data (or the check), then retry the task.',
    exitCode: 1,
    source: 'user',
  },
  NO_PROJECT: {
    summary: 'The command needs a Baton project and the current folder is none.',
    hint: 'Run `baton init` to create a project, or cd into a folder that holds baton.yaml or flows/.',
    exitCode: 2,
    source: 'user',
  },
  SQL_FAILED: {
    summary:
      'The SQL of a `sql` task failed: a syntax error, an unknown table or column, a type error, or a constraint the output broke.',
    hint: "The message names the task and gives the database's own message with the line; fix the SQL (or the data), then retry.",
    exitCode: 1,
    source: 'user',
  },
  DEP_MISSING: {
    summary:
      'An optional npm package is not installed: a trigger client (S3, Redis, NATS, RabbitMQ), DuckDB for `sql` tasks, or TypeScript for `validate --types`.',
    hint: 'Run the `npm install` line the message gives, in the project, then validate again.',
    exitCode: 3,
    source: 'user',
  },
  LIMIT_EXCEEDED: {
    summary: 'An input is over one of the limits in docs/operations.md#limits.',
    hint: 'The message names the limit and the baton.yaml setting that raises it, when there is one.',
    exitCode: 2,
    source: 'user',
  },
  USAGE: {
    summary: 'The command line is malformed.',
    hint: 'Run `baton <command> --help`.',
    exitCode: 2,
    source: 'user',
  },
  BACKFILL_NOT_FOUND: {
    summary: 'No backfill has this id.',
    hint: 'List backfills with `baton backfill list`.',
    exitCode: 4,
    source: 'user',
  },
  ROUTE_NOT_FOUND: {
    summary: 'An HTTP request to the Baton server names no route of its API (`/api/v1/...`).',
    hint: 'The routes are listed in the OpenAPI document at /api/v1/openapi.json (docs/http-api.md).',
    exitCode: 4,
    source: 'user',
  },
  REQUEST_INVALID: {
    summary:
      'An HTTP request to the Baton server is malformed: its body is not JSON, or a body field or query parameter has the wrong type.',
    hint: 'The message names the field; the OpenAPI document at /api/v1/openapi.json gives every request shape.',
    exitCode: 2,
    source: 'user',
  },
  SERVER_UNREACHABLE: {
    summary:
      'A client opened with `openClient({ url })` could not reach the Baton server, or what answered was not a Baton server.',
    hint: 'Check that the server runs (`baton server` or `baton dev`) and that the url names its host and port, e.g. http://127.0.0.1:8420.',
    exitCode: 1,
    source: 'user',
  },
  PORT_IN_USE: {
    summary: 'Another process already listens on the port a Baton server was asked to listen on.',
    hint: 'Stop the process that holds the port, or choose another one (`baton dev --port <n>`, `baton scheduler --webhook-port <n>`).',
    exitCode: 2,
    source: 'user',
  },
  ENGINE_STOPPED: {
    summary: 'A stopped or draining engine (a worker being shut down) was asked to take work again.',
    hint: 'Start a new worker (`client.startWorker()`, `baton worker`) instead of reusing one that was drained or stopped.',
    exitCode: 1,
    source: 'user',
  },
  INTERNAL: {
    summary: 'Baton failed in a way it did not expect: a bug in Baton, not in your flow or command.',
    hint: 'Please report it with the command you ran and the output of running it again with BATON_DEBUG=1, which prints the stack.',
    exitCode: 70,
    source: 'baton',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A location in a source file, 1-based. */
export interface SourceLocation {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** Dotted path of the offending key, e.g. `tasks.transform.retry.max_attempts`. */
  readonly path?: string;
}

export interface BatonErrorOptions {
  readonly hint?: string;
  readonly details?: Record<string, unknown>;
  readonly cause?: unknown;
  readonly location?: SourceLocation;
  /** Several problems reported at once (validation). */
  readonly problems?: readonly Problem[];
}

/** One problem found while validating; many are reported together. */
export interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly hint?: string;
  readonly location?: SourceLocation;
}

/**
 * Longest message or hint an error keeps, in characters. Messages quote what was given (an
 * option value, a key, an id), and a given value may be megabytes long; every error passes
 * through the constructor below, so no message needs to bound its own quotes.
 */
export const MESSAGE_LIMIT_CHARS = 8192;
/** Most problems one error lists; the rest are counted in a last one. */
export const PROBLEMS_LIMIT = 200;

function cutMessage(text: string, limit = MESSAGE_LIMIT_CHARS): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… [${text.length - limit} more characters not shown]`;
}

function boundLocation(location: SourceLocation): SourceLocation {
  return location.path !== undefined && location.path.length > 512
    ? { ...location, path: cutMessage(location.path, 512) }
    : location;
}

function boundProblems(problems: readonly Problem[]): readonly Problem[] {
  const cut = (p: Problem): Problem => ({
    ...p,
    message: cutMessage(p.message),
    ...(p.hint === undefined ? {} : { hint: cutMessage(p.hint) }),
    ...(p.location === undefined ? {} : { location: boundLocation(p.location) }),
  });
  if (problems.length <= PROBLEMS_LIMIT) return problems.map(cut);
  const first = problems[0] as Problem;
  return [
    ...problems.slice(0, PROBLEMS_LIMIT).map(cut),
    {
      code: first.code,
      message: `… and ${problems.length - PROBLEMS_LIMIT} more problems not shown (${problems.length} in all)`,
      hint: 'Fix the problems above first; the rest are often the same mistake repeated.',
    },
  ];
}

/** Brand shared by every copy of this module (a flow file may load its own copy of Baton). */
const BATON_ERROR = Symbol.for('baton.error');

/** The base of every error Baton raises on purpose. */
export class BatonError extends Error {
  /** `instanceof` recognizes BatonErrors made by any loaded copy of Baton. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BATON_ERROR] === true;
  }

  readonly [BATON_ERROR] = true;
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, unknown>;
  readonly location: SourceLocation | undefined;
  readonly problems: readonly Problem[];

  constructor(code: ErrorCode, message: string, options: BatonErrorOptions = {}) {
    super(cutMessage(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BatonError';
    this.code = code;
    this.hint = cutMessage(options.hint ?? ERROR_CODES[code].hint);
    this.details = options.details ?? {};
    this.location = options.location && boundLocation(options.location);
    this.problems = boundProblems(options.problems ?? []);
  }

  get source(): ErrorSource {
    return ERROR_CODES[this.code].source;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exitCode;
  }

  /** The structured form printed by `--json` and stored in task errors. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      source: this.source,
      ...(this.location ? { location: this.location } : {}),
      ...(this.problems.length ? { problems: this.problems } : {}),
      ...(Object.keys(this.details).length ? { details: this.details } : {}),
    };
  }
}

export function isBatonError(value: unknown): value is BatonError {
  return value instanceof BatonError;
}

/** Formats a location as `file:line:column` (parts that are known). */
export function formatLocation(loc: SourceLocation | undefined): string {
  if (!loc) return '';
  const parts = [loc.file ?? '<input>'];
  if (loc.line !== undefined) parts.push(String(loc.line));
  if (loc.line !== undefined && loc.column !== undefined) parts.push(String(loc.column));
  return parts.join(':');
}
