/**
 * An independent brute force of Airflow's documented trigger rules, over the list of
 * upstream states rather than tallies, used as the oracle for `evaluateTriggerRule` and
 * for the model test. 'failed' stands for failed, cancelled and upstream-failed tasks.
 */
import type { RuleOutcome } from '../../src/core/trigger-rules.js';
import type { TriggerRule } from '../../src/core/states.js';

export type Upstream = 'open' | 'succeeded' | 'failed' | 'skipped';

export function referenceRule(rule: TriggerRule, ups: readonly Upstream[]): RuleOutcome {
  if (ups.length === 0) return 'run'; // a task without upstream has nothing to wait for
  const any = (s: Upstream): boolean => ups.includes(s);
  const every = (s: Upstream): boolean => ups.every((u) => u === s);
  const done = !any('open');
  switch (rule) {
    case 'always': // run at any time, regardless of upstream
      return 'run';
    case 'all_success': // every upstream succeeded; any failure → upstream_failed; any skip → skipped
      if (any('failed')) return 'upstream_failed';
      if (any('skipped')) return 'skip';
      return every('succeeded') ? 'run' : 'wait';
    case 'all_failed': // every upstream failed; a success or a skip makes it skipped
      if (any('succeeded') || any('skipped')) return 'skip';
      return every('failed') ? 'run' : 'wait';
    case 'all_done': // every upstream finished, whatever the outcome
      return done ? 'run' : 'wait';
    case 'k_of_n': // quorum k, here the default k = 1: the same as one_success
    case 'one_success': // runs at the first success without waiting for the rest
      if (any('succeeded')) return 'run';
      if (!done) return 'wait';
      return every('skipped') ? 'skip' : 'upstream_failed';
    case 'one_failed': // runs at the first failure; all done without one → skipped
      if (any('failed')) return 'run';
      return done ? 'skip' : 'wait';
    case 'none_failed': // nothing failed: every upstream succeeded or was skipped
      if (any('failed')) return 'upstream_failed';
      return done ? 'run' : 'wait';
    case 'none_failed_min_one_success': // nothing failed and at least one succeeded
      if (any('failed')) return 'upstream_failed';
      if (!done) return 'wait';
      return any('succeeded') ? 'run' : 'skip';
  }
}
