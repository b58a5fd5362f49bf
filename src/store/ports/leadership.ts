/**
 * Named leaderships among scheduler processes.
 *
 * Invariants:
 * - One holder at a time: among contenders for a name, at most one holds it, and each
 *   change of holder increments its epoch, so an epoch names exactly one holder.
 * - A holder keeps its epoch while it renews; a lapsed lease (or, where the store can tell,
 *   a dead process) lets another take it.
 * - Taking a leadership from another holder ends the run leases that holder still holds,
 *   in the same statement: a holder is one process, owning its runs under the same name.
 */
import type { LeaderLease } from '../store.js';

export interface Leadership {
  /**
   * Takes or keeps a named leadership; null if another live holder has it. A holder is live
   * while its lease runs and, where the store can tell (PostgreSQL: its process's session),
   * while its process is. Taking it from another holder ends the leases that holder still
   * holds on runs (a holder is a process, owning its runs under the same name).
   */
  acquireLeadership(name: string, holder: string, leaseMs: number): Promise<LeaderLease | null>;
  releaseLeadership(lease: LeaderLease): Promise<void>;
}
