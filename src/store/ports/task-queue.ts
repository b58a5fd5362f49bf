/**
 * The task queue: attempts a run's owner hands to worker processes (put on the queue by
 * `CommitEntry.dispatches`, in the run's commit), and their outcomes on the way back.
 *
 * Invariants:
 * - One worker at a time: a ready attempt is claimed by one worker, with a lease measured
 *   on the database clock, and each claim increments its fencing token. Workers racing for
 *   one attempt get one token between them.
 * - Fencing: a completion or renewal whose token is no longer the attempt's is refused, so
 *   an outcome is recorded once even if the attempt's body ran twice.
 * - A claim whose lease lapsed is reported to the run's owner as lost, and stays refused
 *   to its worker.
 * - An outcome stays on the queue until the owner's commit records it
 *   (`CommitEntry.harvested`); the rows of a finished run go with its last commit.
 */
import type { ClaimedTask, TaskCompletion, TaskOutcome, TaskRenewal } from '../store.js';

export interface TaskQueue {
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
}
