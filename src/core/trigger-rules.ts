/**
 * Trigger rules decide, from the final states of a task's upstream tasks, whether the
 * task runs, waits, is skipped, or is skipped because an upstream failed. Semantics
 * follow Airflow: a failure propagates as "upstream failed", a skip as "skipped", and a
 * rule decides as early as the outcome is certain (e.g. `one_success` runs on the first
 * success without waiting for the rest).
 */
import type { TriggerRule } from './states.js';

/** Upstream tallies; `failed` includes failed, cancelled and upstream-failed tasks. */
export interface UpstreamCounts {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
}

export type RuleOutcome = 'run' | 'wait' | 'skip' | 'upstream_failed';

/** `k` is the quorum of the `k_of_n` rule (ignored by the others). */
export function evaluateTriggerRule(rule: TriggerRule, c: UpstreamCounts, k = 1): RuleOutcome {
  const done = c.succeeded + c.failed + c.skipped;
  const allDone = done === c.total;
  if (c.total === 0) return 'run';
  switch (rule) {
    case 'all_success':
      if (c.failed > 0) return 'upstream_failed';
      if (c.skipped > 0) return 'skip';
      return c.succeeded === c.total ? 'run' : 'wait';
    case 'all_failed':
      if (c.succeeded > 0 || c.skipped > 0) return 'skip';
      return c.failed === c.total ? 'run' : 'wait';
    case 'all_done':
      return allDone ? 'run' : 'wait';
    case 'one_success':
      if (c.succeeded > 0) return 'run';
      if (!allDone) return 'wait';
      return c.skipped === c.total ? 'skip' : 'upstream_failed';
    case 'one_failed':
      if (c.failed > 0) return 'run';
      return allDone ? 'skip' : 'wait';
    case 'none_failed':
      if (c.failed > 0) return 'upstream_failed';
      return allDone ? 'run' : 'wait';
    case 'none_failed_min_one_success':
      if (c.failed > 0) return 'upstream_failed';
      if (!allDone) return 'wait';
      return c.succeeded > 0 ? 'run' : 'skip';
    case 'always':
      return 'run';
    case 'k_of_n': {
      if (c.succeeded >= k) return 'run';
      // Still reachable while enough upstream tasks are open.
      if (c.total - c.failed - c.skipped >= k) return 'wait';
      return c.failed > 0 ? 'upstream_failed' : 'skip';
    }
  }
}

/** Why a task was skipped, in words, for `skip_reason`. */
export function describeSkip(
  rule: TriggerRule,
  outcome: 'skip' | 'upstream_failed',
  culprits: readonly string[],
): string {
  const names = culprits.slice(0, 5).join(', ') + (culprits.length > 5 ? `, … (${culprits.length} in all)` : '');
  if (rule === 'k_of_n') return `quorum can no longer be reached: ${names} did not succeed`;
  if (outcome === 'upstream_failed') return `upstream failed: ${names} (trigger rule ${rule})`;
  return `upstream skipped or not matching trigger rule ${rule}: ${names}`;
}
