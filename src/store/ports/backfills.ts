/**
 * Backfills: the runs of a trigger's past intervals, made a few at a time.
 *
 * Invariants:
 * - A backfill moves by compare and set on its version: `updateBackfill` from a stale
 *   version is refused and writes nothing, so two schedulers cannot both advance it.
 * - The runs it creates, the cancel requests it makes and its new indexes and state are
 *   written in one transaction; a run whose dedupe key exists already is found, not made
 *   again.
 */
import type { BackfillState } from '../../core/trigger-spec.js';
import type { BackfillRecord, BackfillUpdate, BackfillUpdateResult, NewBackfill } from '../store.js';

export interface Backfills {
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
}
