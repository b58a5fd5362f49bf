/**
 * The store: everything Baton persists goes through asynchronous ports, and nothing above
 * them writes SQL. Each port (run log, task queue, leadership, triggers, backfills, logs,
 * data objects, …) lives in its own file under `ports/` with the invariants it keeps; `Store` is their
 * composition, and the records they exchange are declared here. SQLite and PostgreSQL
 * implement every port and pass the same conformance suite, one file per port.
 *
 * Across all ports, driver errors never escape: they become BatonErrors with STORE_* codes.
 */
import type { TaskError } from '../core/model.js';
import type { RunEvent } from '../core/run-machine.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import type { BackfillState, TriggerSpec } from '../core/trigger-spec.js';
import type { Backfills } from './ports/backfills.js';
import type { DataObjects } from './ports/data-objects.js';
import type { Assets } from './ports/assets.js';
import type { FlowVersions } from './ports/flow-versions.js';
import type { Leadership } from './ports/leadership.js';
import type { StoreLifecycle } from './ports/lifecycle.js';
import type { Logs } from './ports/logs.js';
import type { Retention } from './ports/retention.js';
import type { RunLog } from './ports/run-log.js';
import type { RunRequests } from './ports/run-requests.js';
import type { TaskQueue } from './ports/task-queue.js';
import type { Triggers } from './ports/triggers.js';
import type { Wakeups } from './ports/wakeups.js';

export type {
  Assets,
  Backfills,
  DataObjects,
  FlowVersions,
  Leadership,
  Logs,
  Retention,
  RunLog,
  RunRequests,
  StoreLifecycle,
  TaskQueue,
  Triggers,
  Wakeups,
};

/** One version of a flow definition, pinned by its hash. */
export interface FlowVersionRecord {
  readonly flow: string;
  readonly version: string;
  /** The normalized FlowSpec, as JSON. */
  readonly spec: string;
  /** Absolute path of the file the flow was loaded from. */
  readonly sourcePath: string;
  readonly createdAt: number;
}

export interface RunRecord {
  readonly id: string;
  readonly flow: string;
  readonly version: string;
  readonly state: RunStateName;
  readonly params: Readonly<Record<string, unknown>>;
  readonly dedupeKey: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly error: TaskError | null;
  readonly owner: string | null;
  readonly epoch: number;
  readonly leaseUntil: number | null;
  /** Task runs of the run, counting those a commit created at run time (one per map item). */
  readonly taskCount: number;
  readonly maxActiveRuns: number | null;
  /** Claim order among queued runs: higher first; backfills use -1. */
  readonly priority: number;
  /** What created the run: a trigger (`<flow>/<name>`), a backfill (`<flow>/<name>#backfill-<id>`), or null. */
  readonly triggerId: string | null;
  /** The run whose task started this one (a subflow), or null for a top-level run. */
  readonly parentRunId: string | null;
  /** The id of that task in the parent run; null when `parentRunId` is. */
  readonly parentTask: string | null;
  /** How deep the run is nested: 0 for a top-level run, its parent's depth + 1 for a child run. */
  readonly depth: number;
  /** `key=value` tags given when the run was started (`{ team: 'growth' }`), fixed from then on; `{}` for none. */
  readonly labels: Readonly<Record<string, string>>;
}

export interface TaskRunRecord {
  readonly runId: string;
  readonly index: number;
  readonly taskId: string;
  readonly state: TaskStateName;
  readonly attempts: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly skipReason: string | null;
  readonly output: unknown;
  readonly error: TaskError | null;
}

export interface StoredEvent {
  readonly runId: string;
  readonly seq: number;
  readonly event: RunEvent;
}

export interface NewRun {
  readonly id: string;
  readonly flow: FlowVersionRecord;
  readonly params: Readonly<Record<string, unknown>>;
  readonly taskIds: readonly string[];
  readonly createdAt: number;
  readonly dedupeKey?: string | null;
  readonly maxActiveRuns?: number | null;
  /** The trigger that created the run, if any (`<flow>/<name>`; `<flow>/<name>#backfill-<id>` for backfills). */
  readonly triggerId?: string | null;
  /** Claim order among queued runs: higher first. Backfills use -1. Default 0. */
  readonly priority?: number;
  /** Tags of the run, validated by the caller (see app/runs.ts); none by default. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Only these tasks run (their ids, closed over upstream by the caller); the others end skipped. */
  readonly tasks?: readonly string[];
  /**
   * The run and task that started this run (a subflow). Give such a run a dedupe key
   * derived from both, so that a parent which crashed before recording the child finds it
   * again instead of starting a second one.
   */
  readonly parent?: {
    readonly runId: string;
    readonly task: string;
    /**
     * Refuse the child (SUBFLOW_DEPTH, SUBFLOW_CHILD_RUNS) rather than nest it deeper than
     * `depth` or make it more than the parent's `childRuns`-th child; checked and counted
     * in the transaction that creates it, so that children started at once cannot pass the
     * limit together. A child found by its dedupe key is returned whatever the limits.
     */
    readonly limits?: { readonly depth: number; readonly childRuns: number };
  };
}

/** A trigger as the store keeps it: its definition, whether it is paused, and its cursor. */
export interface TriggerRecord {
  readonly id: string;
  readonly flow: string;
  readonly name: string;
  readonly kind: string;
  readonly spec: TriggerSpec;
  /** The flow file that declares it. */
  readonly sourcePath: string;
  readonly paused: boolean;
  /** Kind-specific progress: last fire time, files seen, … (JSON). */
  readonly cursor: unknown;
  readonly nextFireAt: number | null;
  readonly registeredAt: number;
  readonly updatedAt: number;
}

export type FiringOutcome = 'run' | 'deduplicated' | 'skipped' | 'error' | 'deadline_missed';

/** One entry of a trigger's history: it fired (and which run it made), or why it did not. */
export interface FiringRecord {
  readonly seq: number;
  readonly triggerId: string;
  readonly at: number;
  readonly outcome: FiringOutcome;
  readonly reason: string;
  readonly runId: string | null;
  readonly dedupeKey: string | null;
}

export interface FiringInput {
  readonly at: number;
  readonly outcome: 'run' | 'skipped' | 'error' | 'deadline_missed';
  readonly reason: string;
  /** With outcome `run`: the run to create (its dedupe key makes a repeat a no-op). */
  readonly run?: NewRun;
  /** For `deadline_missed` and the like: the run the entry is about. */
  readonly runId?: string;
  /** Runs to ask to cancel in the same transaction (overlap policy `cancel_previous`). */
  readonly cancelRuns?: readonly string[];
}

export interface FireTriggerInput {
  readonly triggerId: string;
  /** The cursor the caller read; the call is refused (null) if it moved meanwhile. */
  readonly expectedCursor: unknown;
  readonly cursor: unknown;
  readonly nextFireAt: number | null;
  readonly firings: readonly FiringInput[];
}

export interface FiringResult {
  readonly outcome: FiringOutcome;
  readonly runId: string | null;
}

/** A backfill as the store keeps it; see BACKFILL_STATES in core/trigger-spec.ts for its lifecycle. */
export interface BackfillRecord {
  readonly id: string;
  readonly flow: string;
  /** The trigger whose intervals are backfilled (`<flow>/<name>`). */
  readonly triggerId: string;
  /** The trigger's definition when the backfill was recorded: its intervals do not move if the flow changes. */
  readonly spec: TriggerSpec;
  readonly sourcePath: string;
  /** Fire times in (fromAt, toAt], ms. */
  readonly fromAt: number;
  readonly toAt: number;
  readonly maxParallel: number;
  /** Intervals whose run did not succeed get a new run. */
  readonly rerun: boolean;
  readonly state: BackfillState;
  /** Number of intervals. */
  readonly total: number;
  /** Intervals before this index have been handled (a run created, or found). */
  readonly nextIndex: number;
  /** Intervals before this index have a finished run. */
  readonly doneIndex: number;
  /** Bumped by every change; `updateBackfill` refuses a stale one. */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
  /** Why it is paused, cancelled or completed, for people. */
  readonly reason: string | null;
}

export type NewBackfill = Omit<
  BackfillRecord,
  'nextIndex' | 'doneIndex' | 'version' | 'updatedAt' | 'endedAt' | 'reason'
>;

export interface BackfillUpdate {
  readonly id: string;
  /** The version the caller read; the call is refused (null) if it moved meanwhile. */
  readonly expectedVersion: number;
  readonly at: number;
  readonly state?: BackfillState;
  readonly nextIndex?: number;
  readonly doneIndex?: number;
  readonly reason?: string | null;
  /** Runs to create in the same transaction (a repeated dedupe key finds the existing run). */
  readonly runs?: readonly NewRun[];
  /** Runs to ask to cancel in the same transaction. */
  readonly cancelRuns?: readonly { readonly runId: string; readonly reason: string }[];
}

export interface BackfillUpdateResult {
  readonly backfill: BackfillRecord;
  /** One per run asked for, in order: its id and whether this call created it. */
  readonly runs: readonly { readonly runId: string; readonly created: boolean }[];
}

/** The right to write to one run, until the lease lapses or another process claims it. */
export interface Lease {
  readonly runId: string;
  readonly owner: string;
  readonly epoch: number;
}

/** The snapshot of a run row after a batch. */
export interface RunPatch {
  readonly state: RunStateName;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly error: TaskError | null;
}

/**
 * The snapshot of one task run row after a batch. A commit creates the row if the run has
 * none at `index` yet (task runs made at run time, e.g. one per map item) and overwrites it
 * otherwise; `taskId` is recorded only when the row is created.
 */
export interface TaskRunPatch {
  readonly index: number;
  readonly taskId: string;
  readonly state: TaskStateName;
  readonly attempts: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly skipReason: string | null;
  readonly output: unknown;
  readonly error: TaskError | null;
}

export interface LogLine {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly stream: 'stdout' | 'stderr' | 'log';
  readonly at: number;
  readonly text: string;
}

export interface StoredLogLine extends LogLine {
  readonly seq: number;
}

export type DataAccessOp = 'read' | 'write';

/**
 * Most bytes of an object's schema, as JSON (UTF-8): a larger schema is stored as null,
 * so that a row stays small whatever a task declares.
 */
export const DATA_SCHEMA_BYTES_MOST = 64 * 1024;

/** Most characters of an ETag, a SHA-256 or a content type: a longer one is stored as null. */
export const DATA_TAG_CHARS_MOST = 1024;

/**
 * One read or write of an object through a mount, as `recordDataAccesses` takes it. `run`,
 * `task` and `attempt` are absent (or null) for accesses outside a task, such as the CLI's.
 */
export interface DataAccessBase {
  /** The object's canonical path: `data://raw/orders/2024.csv`. */
  readonly path: string;
  readonly runId?: string | null;
  readonly taskId?: string | null;
  readonly attempt?: number | null;
  /** Bytes read or written. */
  readonly size: number;
  /** The ETag the mount gave (see `ObjectInfo.etag` in data/mount.ts); null for none. */
  readonly etag: string | null;
  /** When the access happened, ms since the epoch, on the caller's clock. */
  readonly at: number;
}

export interface DataRead extends DataAccessBase {
  readonly op: 'read';
}

export interface DataWrite extends DataAccessBase {
  readonly op: 'write';
  /** SHA-256 of the bytes written, hex. */
  readonly sha256?: string | null;
  /** What the producer declared of the content's shape (JSON); see DATA_SCHEMA_BYTES_MOST. */
  readonly schema?: unknown;
  readonly contentType?: string | null;
}

export type DataAccess = DataRead | DataWrite;

/** What the store knows of one object read or written through a mount. */
export interface DataObjectRecord {
  /** `data://<mount>/<key>`; the primary key. */
  readonly path: string;
  readonly mount: string;
  readonly key: string;
  /** Bytes, as of the last read or write. */
  readonly size: number;
  /** As of the last read or write; null when the mount gave none. */
  readonly etag: string | null;
  /**
   * SHA-256 of the bytes Baton last wrote; null if it never wrote them, or if a read since
   * saw another size or ETag (the object changed outside Baton).
   */
  readonly sha256: string | null;
  /** The schema its last write declared; null for none, or one over DATA_SCHEMA_BYTES_MOST. */
  readonly schema: unknown;
  readonly contentType: string | null;
  /** The run and task of the last write; null for an object only read, or written outside a run. */
  readonly producerRunId: string | null;
  readonly producerTaskId: string | null;
  /** When Baton last wrote it (ms); null if it only read it. */
  readonly writtenAt: number | null;
  /** When Baton last read it (ms); null if it never did. */
  readonly lastReadAt: number | null;
}

/** One recorded read or write, as history keeps it. */
export interface DataAccessRecord {
  /** Order of recording, increasing across all accesses. */
  readonly seq: number;
  readonly runId: string | null;
  readonly taskId: string | null;
  readonly attempt: number | null;
  readonly path: string;
  readonly op: DataAccessOp;
  readonly size: number;
  readonly etag: string | null;
  readonly at: number;
}

/** Which object rows `listDataObjects` returns; see ports/data-objects.ts. */
export interface DataObjectListOptions {
  /** Only the objects of this mount. */
  readonly mount?: string;
  /** Only the paths that start with this text (a plain string prefix: `data://raw/a` matches `data://raw/ab`). */
  readonly prefix?: string;
  readonly limit: number;
  /** Only the paths after this one, bytewise: the last path of the previous page. */
  readonly afterPath?: string;
}

/** Which accesses `dataAccesses` returns; see ports/data-objects.ts. */
export interface DataAccessFilter {
  readonly runId?: string;
  readonly path?: string;
  readonly limit: number;
  /** Only the accesses recorded after this one: the last `seq` of the previous page. */
  readonly afterSeq?: number;
}

/** Durable timers (retry backoff today; sleeps and schedules later). */
export interface TimerChange {
  /** The task run's index, including one a commit creates (in the same commit or before). */
  readonly task: number;
  /** Due time in ms, or null to clear the timer. */
  readonly dueAt: number | null;
}

/** Everything one run changes in one group commit. */
export interface CommitEntry {
  readonly lease: Lease;
  readonly events: readonly RunEvent[];
  readonly run?: RunPatch;
  readonly tasks: readonly TaskRunPatch[];
  readonly timers: readonly TimerChange[];
  readonly logs: readonly LogLine[];
  /** Requests (see `pendingRequests`) that these events answered; deleted in the same transaction. */
  readonly answered?: readonly number[];
  /** Attempts handed to worker processes through the task queue. */
  readonly dispatches?: readonly TaskDispatch[];
  /** Queue rows whose outcome these events recorded; deleted in the same transaction. */
  readonly harvested?: readonly string[];
  /** Attempts whose worker must stop (cancellation, run timeout). */
  readonly cancels?: readonly { readonly task: number; readonly attempt: number }[];
  /**
   * Creates the run in this same transaction, already owned by the lease's owner at the
   * lease's epoch for `leaseMs`, before the entry's events are appended after its
   * `run_created` (the engine's create-and-start: one synced commit, not two). A run with
   * this id (or this entry's dedupe key) that exists already is fenced: nothing is written.
   */
  readonly create?: { readonly run: NewRun; readonly leaseMs: number };
}

/** One attempt put on the task queue for a worker. */
export interface TaskDispatch {
  readonly task: number;
  readonly taskId: string;
  readonly attempt: number;
  /** Labels a worker must all have to take the attempt. */
  readonly labels: readonly string[];
  /** Everything the worker needs besides the flow code: inputs, params, upstream outputs. */
  readonly payload: Readonly<Record<string, unknown>>;
}

/** An attempt a worker claimed; `token` fences its completion. */
export interface ClaimedTask {
  readonly id: string;
  readonly runId: string;
  readonly flow: string;
  readonly version: string;
  readonly task: number;
  readonly taskId: string;
  readonly attempt: number;
  readonly token: number;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** What a worker reports for a claimed attempt. */
export interface TaskCompletion {
  readonly id: string;
  readonly token: number;
  readonly status: 'succeeded' | 'failed';
  readonly output?: unknown;
  readonly error?: TaskError;
  /** A success reused from the result cache (`cache: inputs`): `<run>/<task run>/<attempt>`. */
  readonly cachedFrom?: string;
}

/** An outcome for the run's owner: finished by a worker, or lost with an expired claim. */
export interface TaskOutcome {
  readonly id: string;
  readonly runId: string;
  readonly task: number;
  readonly attempt: number;
  readonly status: 'succeeded' | 'failed' | 'lost';
  readonly output?: unknown;
  readonly error?: TaskError;
  /** As in TaskCompletion. */
  readonly cachedFrom?: string;
}

/** What a worker learns when it renews its claims. */
export interface TaskRenewal {
  /** Claims this worker no longer holds (expired and handed on): abandon them. */
  readonly lost: readonly string[];
  /** Claims whose attempt was cancelled: stop them. */
  readonly cancelled: readonly string[];
}

/** Leadership among scheduler processes: one holder at a time, by lease. */
export interface LeaderLease {
  readonly name: string;
  readonly holder: string;
  readonly epoch: number;
}

export interface PruneResult {
  readonly runs: number;
}

export interface CommitResult {
  /** Runs whose entry was refused because the lease epoch moved on. */
  readonly fenced: readonly string[];
}

export interface RunFilter {
  readonly flow?: string;
  readonly state?: RunStateName;
  /** Only the runs started by this run's tasks (its subflows). */
  readonly parentRunId?: string;
  /** Only the runs that have every one of these labels (each key with exactly this value). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly limit?: number;
}

/**
 * `cancel` (the run) and `cancel_task` from users and overlap policies; `signal` (an event a
 * waiting task listens for) and `approval` (a decision on an approval task) wake waiting tasks.
 */
export type RunRequestKind = 'cancel' | 'cancel_task' | 'signal' | 'approval';

/** A request addressed to whichever process owns a run (e.g. cancel from the CLI); its payload is JSON. */
export interface RunRequest {
  readonly id: number;
  readonly runId: string;
  readonly kind: RunRequestKind;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** What `parkRun` records: when a parked run is due, and the child runs it waits for. */
export interface ParkRequest {
  /** The earliest due time among the run's timers (ms, database clock); null for none. */
  readonly wakeAt: number | null;
  /** Child runs the run waits for: the end of any of them wakes it. */
  readonly awaiting: readonly string[];
}

export interface ClaimOptions {
  readonly owner: string;
  readonly leaseMs: number;
  /** Take the run even if it is owned, provided its epoch is still this (its owner is known dead). */
  readonly takeOverEpoch?: number;
  /** Allow claiming a finished run (to rerun it). */
  readonly includeFinished?: boolean;
  /** Refuse a queued run while its flow already has `max_active_runs` runs active. */
  readonly respectActiveLimit?: boolean;
}

/**
 * Everything Baton persists: the composition of the ports under `ports/`, each of which
 * states the invariants it keeps. Callers that need one job may take that port alone.
 */
export interface Store
  extends
    StoreLifecycle,
    FlowVersions,
    RunLog,
    RunRequests,
    TaskQueue,
    Leadership,
    Triggers,
    Backfills,
    Logs,
    Retention,
    Wakeups,
    DataObjects,
    Assets {}
