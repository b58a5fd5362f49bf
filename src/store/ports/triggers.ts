/**
 * Triggers as declared by flows, their cursors and the history of their firings.
 *
 * Invariants:
 * - A firing is atomic: the runs it creates, its history entries, the cancel requests it
 *   makes and the move of the cursor happen in one transaction, or not at all.
 * - Compare and set on the cursor: a firing computed from a cursor that moved meanwhile is
 *   refused and writes nothing, so two schedulers cannot fire one tick twice.
 * - Redeclaring a flow keeps the cursor and pause of each trigger that remains (the cursor
 *   only while its kind is unchanged) and drops the triggers no longer declared.
 */
import type { TriggerSpec } from '../../core/trigger-spec.js';
import type { FireTriggerInput, FiringRecord, FiringResult, TriggerRecord } from '../store.js';

export interface Triggers {
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
}
