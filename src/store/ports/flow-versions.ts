/**
 * The flow versions runs are pinned to.
 *
 * Invariants:
 * - A version, once recorded, never changes: `putFlowVersion` of a (flow, version) already
 *   present keeps the first record, so a run always reads the definition it was created with.
 */
import type { FlowVersionRecord } from '../store.js';

export interface FlowVersions {
  putFlowVersion(record: FlowVersionRecord): Promise<void>;
  getFlowVersion(flow: string, version: string): Promise<FlowVersionRecord | null>;
}
