/**
 * Log lines of task attempts.
 *
 * Invariants:
 * - Lines of one run are numbered in the order they were appended (`seq`), whether they
 *   came with a run commit or from a worker process, and read back in that order.
 * - Lines go when their run is pruned, never before.
 */
import type { LogLine, StoredLogLine } from '../store.js';

export interface Logs {
  readLogs(runId: string, options: { task?: string; afterSeq?: number; limit?: number }): Promise<StoredLogLine[]>;
  /** Appends log lines outside a run commit (from worker processes). */
  appendLogs(lines: readonly LogLine[]): Promise<void>;
}
