/**
 * The store port: everything Baton persists goes through this asynchronous interface,
 * and nothing above it writes SQL. SQLite implements it now; PostgreSQL implements the
 * same interface and passes the same conformance suite.
 *
 * Invariants every implementation keeps:
 * - `commit` appends a run's events and updates its derived rows (run, task runs, timers,
 *   logs) in one transaction, and only if the caller's lease epoch is still the run's
 *   epoch (fencing): a process that lost a run can never write to it again. Task runs a
 *   run grows while it runs (map items) are created by the same commits.
 * - `claimRun`/`claimRuns` hand a run to one owner at a time, with a lease measured on
 *   the database clock; each claim increments the epoch.
 * - Driver errors never escape: they become BatonErrors with STORE_* codes.
 */
import type { TaskError } from '../core/model.js';
import type { RunEvent } from '../core/run-machine.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import type { BackfillState, TriggerSpec } from '../core/trigger-spec.js';

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

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies pending migrations; refuses a database newer than this code. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** The database clock, in ms since the epoch. */
  now(): Promise<number>;

  putFlowVersion(record: FlowVersionRecord): Promise<void>;
  getFlowVersion(flow: string, version: string): Promise<FlowVersionRecord | null>;

  /** Creates a run with all its task runs pending; with a dedupe key, returns the existing run instead. */
  createRun(input: NewRun): Promise<{ readonly run: RunRecord; readonly created: boolean }>;
  /**
   * Creates several runs in one transaction, each as `createRun` would (a dedupe key that
   * names an existing run, or an earlier input of the same call, returns that run); one per
   * input, in input order. If any input is refused, none is created.
   */
  createRuns(inputs: readonly NewRun[]): Promise<{ readonly run: RunRecord; readonly created: boolean }[]>;
  getRun(id: string): Promise<RunRecord | null>;
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  /**
   * Runs whose id starts with `prefix` (compared character by character, whatever the
   * database collation), in id order, at most `limit`; the lookup behind short run ids.
   */
  runsByIdPrefix(prefix: string, limit: number): Promise<RunRecord[]>;
  getTaskRuns(runId: string): Promise<TaskRunRecord[]>;
  readEvents(runId: string, afterSeq?: number): Promise<StoredEvent[]>;

  claimRun(runId: string, options: ClaimOptions): Promise<Lease | null>;
  /**
   * Claims up to `limit` runs: parked runs that are due first (earliest first), then runs
   * whose owner's lease lapsed, then queued runs by priority and age.
   */
  claimRuns(options: ClaimOptions & { readonly limit: number }): Promise<Lease[]>;
  /** Extends leases; returns the run ids this owner no longer holds. */
  renewLeases(leases: readonly Lease[], leaseMs: number): Promise<string[]>;
  /**
   * Lets go of a run. An unfinished run is then for any engine to take at once: idle engines
   * are woken (`wake`, default true), unless the caller could not execute it and other
   * engines should find it at their own pace.
   */
  releaseRun(lease: Lease, options?: { readonly wake?: boolean }): Promise<void>;
  /**
   * Releases a run whose open work only waits, and marks it parked: no process holds it
   * until `wakeAt` (its earliest timer; null for none) has passed, a request for it is
   * recorded, or one of the child runs in `awaiting` ends — whichever comes first, in the
   * transaction that records it. If a request is already pending or an awaited child has
   * already ended, the run is due at once. False (nothing written) if the lease is no
   * longer the run's.
   */
  parkRun(lease: Lease, park: ParkRequest): Promise<boolean>;
  /**
   * Calls `listener` with the id of each run that ends (succeeded, failed, cancelled) after
   * the call: for every run on PostgreSQL (LISTEN/NOTIFY), for the runs committed through
   * this store object on SQLite. Returns the function that stops it.
   */
  onRunEnd?(listener: (runId: string) => void): () => void;

  commit(entries: readonly CommitEntry[]): Promise<CommitResult>;

  addRequest(runId: string, kind: RunRequestKind, payload: Readonly<Record<string, unknown>>): Promise<void>;
  /** The requests not yet answered for these runs, oldest first. */
  pendingRequests(runIds: readonly string[]): Promise<RunRequest[]>;

  readLogs(runId: string, options: { task?: string; afterSeq?: number; limit?: number }): Promise<StoredLogLine[]>;
  /** Appends log lines outside a run commit (from worker processes). */
  appendLogs(lines: readonly LogLine[]): Promise<void>;

  /** Claims up to `limit` ready attempts whose labels the worker has, oldest first. */
  claimTasks(options: {
    readonly worker: string;
    readonly labels: readonly string[];
    readonly limit: number;
    readonly leaseMs: number;
  }): Promise<ClaimedTask[]>;
  renewTasks(worker: string, claims: readonly { id: string; token: number }[], leaseMs: number): Promise<TaskRenewal>;
  /** Records outcomes; a completion whose token no longer matches is refused. */
  completeTasks(results: readonly TaskCompletion[]): Promise<{ readonly refused: readonly string[] }>;
  /** Outcomes for these runs: finished attempts, and claims whose lease lapsed (marked lost at once). */
  harvestTasks(runIds: readonly string[], limit: number): Promise<TaskOutcome[]>;

  /**
   * Takes or keeps a named leadership; null if another live holder has it. A holder is live
   * while its lease runs and, where the store can tell (PostgreSQL: its process's session),
   * while its process is. Taking it from another holder ends the leases that holder still
   * holds on runs (a holder is a process, owning its runs under the same name).
   */
  acquireLeadership(name: string, holder: string, leaseMs: number): Promise<LeaderLease | null>;
  releaseLeadership(lease: LeaderLease): Promise<void>;

  /** Records the triggers a flow declares now; keeps the cursor and pause of those that remain, drops the rest. */
  syncTriggers(flow: string, sourcePath: string, specs: readonly TriggerSpec[], now: number): Promise<void>;
  listTriggers(): Promise<TriggerRecord[]>;
  getTrigger(id: string): Promise<TriggerRecord | null>;
  /** Returns false if there is no such trigger. */
  setTriggerPaused(id: string, paused: boolean): Promise<boolean>;
  /**
   * Creates the runs a trigger caused, records every firing, and moves its cursor, in one
   * transaction; null (and nothing written) if the cursor is no longer `expectedCursor`.
   */
  fireTrigger(input: FireTriggerInput): Promise<FiringResult[] | null>;
  listFirings(triggerId: string, limit: number): Promise<FiringRecord[]>;
  /** Active (queued or running) runs of a flow, oldest first. */
  activeRuns(flow: string): Promise<RunRecord[]>;
  /** Finished runs of a flow that ended after `after` (ms), in order of their end; for flow-to-flow triggers. */
  finishedRuns(flow: string, after: number, limit: number): Promise<RunRecord[]>;

  /**
   * Runs whose dedupe key is one of `keys`, or one of them followed by `#` and anything
   * (`<key>#backfill-…`, reruns of the same interval); in no particular order.
   */
  runsByDedupeKeys(keys: readonly string[]): Promise<RunRecord[]>;

  createBackfill(input: NewBackfill): Promise<BackfillRecord>;
  getBackfill(id: string): Promise<BackfillRecord | null>;
  /** Newest first. */
  listBackfills(filter?: {
    readonly states?: readonly BackfillState[];
    readonly limit?: number;
  }): Promise<BackfillRecord[]>;
  /**
   * Creates runs, asks runs to cancel and moves the backfill (indexes, state), in one
   * transaction; null (and nothing written) if its version is no longer `expectedVersion`.
   */
  updateBackfill(input: BackfillUpdate): Promise<BackfillUpdateResult | null>;

  /** Deletes finished runs that ended before `before` (ms), with their history and logs. */
  prune(before: number): Promise<PruneResult>;
  /**
   * Wake-ups on a channel (`tasks`, `results`, `runs`) where the store supports them. A
   * `results` wake-up may carry the outcomes themselves (`TaskOutcome[]`); without them,
   * the subscriber harvests.
   */
  subscribe?(channel: 'tasks' | 'results' | 'runs', onWake: (outcomes?: readonly TaskOutcome[]) => void): () => void;
}
