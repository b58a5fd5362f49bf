/**
 * The bounds on child runs that both stores enforce when they create one (`NewRun.parent`):
 * how deep runs nest (`subflow_depth`) and how many children one run starts
 * (`child_runs_per_run`). Each store checks and counts in the transaction that inserts the
 * child; this module only words the refusal, so that both dialects say the same.
 */
import { BatonError } from '../core/errors.js';
import { limitExceeded } from '../core/limits.js';

export type ChildRunBound = 'depth' | 'child_runs';

/**
 * The error for a child run that the limits refuse; `value` is the depth the child would
 * have, or the children its parent already has.
 */
export function childRunRefused(
  bound: ChildRunBound,
  parent: { readonly runId: string; readonly task: string },
  value: number,
  limit: number,
): BatonError {
  const where = `subflow ${parent.task} of run ${parent.runId}`;
  if (bound === 'child_runs') {
    return limitExceeded('child_runs_per_run', `child run ${value + 1}`, where, { code: 'SUBFLOW_CHILD_RUNS', limit });
  }
  const error = limitExceeded('subflow_depth', `a child run at depth ${value}`, where, {
    code: 'SUBFLOW_DEPTH',
    limit,
  });
  // Most often a flow that starts itself without end: say so before how to raise the limit.
  return new BatonError(error.code, error.message, {
    hint: `A flow that starts itself as a subflow needs a condition that ends the recursion (a choice, a map over a shorter list). ${error.hint ?? ''}`.trim(),
    details: error.details,
  });
}
