/**
 * Retention: how history leaves the store.
 *
 * Invariants:
 * - Only finished runs are pruned, and a pruned run goes whole (events, task runs, timers,
 *   logs, requests, queue rows) in the transaction that deletes it; an active run loses
 *   nothing.
 */
import type { PruneResult } from '../store.js';

export interface Retention {
  /** Deletes finished runs that ended before `before` (ms), with their history and logs. */
  prune(before: number): Promise<PruneResult>;
}
