/**
 * The run log: runs, their task runs and their event history, and the leases that say
 * which process may write to a run.
 *
 * Invariants:
 * - A run is created with all its task runs pending and a `run_created` event, in one
 *   transaction; a dedupe key names at most one run, and a repeated key returns that run.
 * - One owner at a time: `claimRun`/`claimRuns` hand a run to one owner, with a lease
 *   measured on the database clock, and each claim increments the run's epoch. Claimers
 *   racing for one run get one lease between them; a batch of `claimRuns` never holds a
 *   run that another batch also holds.
 * - Fencing: `commit` appends a run's events and updates its derived rows (run, task runs,
 *   timers, logs, queue rows, answered requests) in one transaction, and only if the
 *   caller's lease epoch is still the run's epoch; a process that lost a run can never
 *   write to it again. Task runs a run grows while it runs (map items) are created by the
 *   same commits. A commit that ends a run (succeeded, failed, cancelled) also lets go of
 *   its lease: a finished run has no owner, and the engine releases it no further.
 * - A commit entry may create its run (`CommitEntry.create`): the run, its lease at the
 *   entry's epoch and the entry's events are written in that one transaction, after its
 *   `run_created`; if the run or its dedupe key exists already the entry is fenced and
 *   writes nothing.
 * - Events of a run are numbered 1, 2, 3, … without gaps, in commit order.
 * - A parked run is held by no process and costs no lease until its wake-up is due, a
 *   request for it is recorded, or a child run it waits for ends.
 */
import type {
  ClaimOptions,
  CommitEntry,
  CommitResult,
  Lease,
  NewRun,
  ParkRequest,
  RunFilter,
  RunRecord,
  StoredEvent,
  TaskRunRecord,
} from '../store.js';

export interface RunLog {
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
  /** Active (queued or running) runs of a flow, oldest first. */
  activeRuns(flow: string): Promise<RunRecord[]>;
  /** Finished runs of a flow that ended after `after` (ms), in order of their end; for flow-to-flow triggers. */
  finishedRuns(flow: string, after: number, limit: number): Promise<RunRecord[]>;
  /**
   * Runs whose dedupe key is one of `keys`, or one of them followed by `#` and anything
   * (`<key>#backfill-…`, reruns of the same interval); in no particular order.
   */
  runsByDedupeKeys(keys: readonly string[]): Promise<RunRecord[]>;

  claimRun(runId: string, options: ClaimOptions): Promise<Lease | null>;
  /**
   * Claims up to `limit` runs: parked runs that are due first (earliest first), then runs
   * whose owner's lease lapsed, then queued runs by priority and age. A parked run counts
   * as due `wakeAheadMs` (default 0) before its wake-up, on the database clock: an engine
   * claims it shortly before, so that its timer fires on time however many fire together.
   */
  claimRuns(options: ClaimOptions & { readonly limit: number; readonly wakeAheadMs?: number }): Promise<Lease[]>;
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

  /**
   * Commits the entries, each fenced by its lease, in one transaction that waits for the
   * disk; returns the runs whose lease was no longer theirs (nothing of them written).
   */
  commit(entries: readonly CommitEntry[]): Promise<CommitResult>;
}
