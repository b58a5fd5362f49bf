/**
 * Requests addressed to whichever process owns a run: cancel, cancel a task, a signal, an
 * approval.
 *
 * Invariants:
 * - A request is kept until a commit of the run's owner answers it (`CommitEntry.answered`),
 *   in the same transaction as the events that record its effect: a request is neither
 *   lost nor applied twice across a crash.
 * - Recording a request makes a parked run due at once.
 */
import type { RunRequest, RunRequestKind } from '../store.js';

export interface RunRequests {
  addRequest(runId: string, kind: RunRequestKind, payload: Readonly<Record<string, unknown>>): Promise<void>;
  /** The requests not yet answered for these runs, oldest first. */
  pendingRequests(runIds: readonly string[]): Promise<RunRequest[]>;
}
