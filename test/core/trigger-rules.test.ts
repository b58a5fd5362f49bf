import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { TriggerRule } from '../../src/core/states.js';
import { TRIGGER_RULES } from '../../src/core/states.js';
import type { RuleOutcome, UpstreamCounts } from '../../src/core/trigger-rules.js';
import { describeSkip, evaluateTriggerRule } from '../../src/core/trigger-rules.js';
import type { Upstream } from './airflow-reference.js';
import { referenceRule } from './airflow-reference.js';

/** Tally shorthand: total, succeeded, failed, skipped (the rest are still open). */
const c = (total: number, succeeded: number, failed: number, skipped: number): UpstreamCounts => ({
  total,
  succeeded,
  failed,
  skipped,
});

// Columns: nothing done | one open, rest succeeded | all succeeded | one failed, rest open |
// one failed, rest succeeded | all failed | one skipped, rest open | one skipped, rest
// succeeded | all skipped | succeeded+failed+skipped | failed+skipped.
const tallies: readonly [string, UpstreamCounts][] = [
  ['none done', c(3, 0, 0, 0)],
  ['2 ok, 1 open', c(3, 2, 0, 0)],
  ['all ok', c(3, 3, 0, 0)],
  ['1 failed, 2 open', c(3, 0, 1, 0)],
  ['1 failed, 2 ok', c(3, 2, 1, 0)],
  ['all failed', c(3, 0, 3, 0)],
  ['1 skipped, 2 open', c(3, 0, 0, 1)],
  ['1 skipped, 2 ok', c(3, 2, 0, 1)],
  ['all skipped', c(3, 0, 0, 3)],
  ['ok+failed+skipped', c(3, 1, 1, 1)],
  ['failed+skipped', c(3, 0, 2, 1)],
];

const W: RuleOutcome = 'wait';
const R: RuleOutcome = 'run';
const S: RuleOutcome = 'skip';
const U: RuleOutcome = 'upstream_failed';

// The table reads as a grid: keep it aligned.
// prettier-ignore
const expected: Record<TriggerRule, readonly RuleOutcome[]> = {
  //                            none 2ok+o allok 1f+o 1f+ok allf 1s+o 1s+ok alls mix  f+s
  all_success:                 [W,   W,    R,    U,   U,    U,   S,   S,    S,   U,   U],
  all_failed:                  [W,   S,    S,    W,   S,    R,   S,   S,    S,   S,   S],
  all_done:                    [W,   W,    R,    W,   R,    R,   W,   R,    R,   R,   R],
  one_success:                 [W,   R,    R,    W,   R,    U,   W,   R,    S,   R,   U],
  one_failed:                  [W,   W,    S,    R,   R,    R,   W,   S,    S,   R,   R],
  none_failed:                 [W,   W,    R,    U,   U,    U,   W,   R,    R,   U,   U],
  none_failed_min_one_success: [W,   W,    R,    U,   U,    U,   W,   R,    S,   U,   U],
  always:                      [R,   R,    R,    R,   R,    R,   R,   R,    R,   R,   R],
  k_of_n:                      [W,   R,    R,    W,   R,    U,   W,   R,    S,   R,   U],
};

function tally(ups: readonly Upstream[]): UpstreamCounts {
  const count = (s: Upstream): number => ups.filter((u) => u === s).length;
  return { total: ups.length, succeeded: count('succeeded'), failed: count('failed'), skipped: count('skipped') };
}

describe('k_of_n with a quorum above one', () => {
  // prettier-ignore
  const cases: readonly [string, UpstreamCounts, number, RuleOutcome][] = [
    ['2 of 3, one ok', c(3, 1, 0, 0), 2, W],
    ['2 of 3, two ok', c(3, 2, 0, 0), 2, R],
    ['2 of 3, one failed, rest open', c(3, 0, 1, 0), 2, W],
    ['2 of 3, two failed', c(3, 1, 2, 0), 2, U],
    ['2 of 3, two skipped', c(3, 1, 0, 2), 2, S],
    ['3 of 3, one skipped one failed', c(3, 1, 1, 1), 3, U],
    ['3 of 5, three ok, two open', c(5, 3, 0, 0), 3, R],
  ];
  for (const [name, counts, k, outcome] of cases) {
    it(`${name} → ${outcome}`, () => expect(evaluateTriggerRule('k_of_n', counts, k)).toBe(outcome));
  }
  it('says why a quorum task was skipped', () => {
    expect(describeSkip('k_of_n', 'upstream_failed', ['a', 'b'])).toBe(
      'quorum can no longer be reached: a, b did not succeed',
    );
  });
});

describe('evaluateTriggerRule', () => {
  it('has a table row for every trigger rule', () => {
    expect(Object.keys(expected).sort()).toEqual([...TRIGGER_RULES].sort());
  });

  for (const rule of TRIGGER_RULES) {
    describe(rule, () => {
      tallies.forEach(([name, counts], column) => {
        it(`${name} → ${expected[rule][column]}`, () => {
          expect(evaluateTriggerRule(rule, counts)).toBe(expected[rule][column]);
        });
      });

      it('runs a task that has no upstream', () => {
        expect(evaluateTriggerRule(rule, c(0, 0, 0, 0))).toBe('run');
      });
    });
  }

  it('agrees with a brute force of Airflow semantics on every upstream combination', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TRIGGER_RULES),
        fc.array(fc.constantFrom<Upstream>('open', 'succeeded', 'failed', 'skipped'), { maxLength: 12 }),
        (rule, ups) => {
          expect(evaluateTriggerRule(rule, tally(ups))).toBe(referenceRule(rule, ups));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decides early only when the outcome is certain', () => {
    // The machine closes a task at its first decision, so the decision must be final.
    fc.assert(
      fc.property(
        fc.constantFrom(...TRIGGER_RULES),
        fc.array(fc.constantFrom<Upstream>('succeeded', 'failed', 'skipped'), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (rule, final, order) => {
          // Reveal the final states one by one in an order derived from `order`.
          const pending = final.map((_, i) => i);
          const seen: Upstream[] = final.map(() => 'open');
          let first: RuleOutcome | undefined;
          for (let k = 0; pending.length > 0; k++) {
            const pick = (order[k] ?? 0) % pending.length;
            const i = pending.splice(pick, 1)[0] as number;
            seen[i] = final[i] as Upstream;
            const outcome = evaluateTriggerRule(rule, tally(seen));
            if (first === undefined && outcome !== 'wait') first = outcome;
          }
          const atEnd = evaluateTriggerRule(rule, tally(final));
          expect(atEnd).not.toBe('wait');
          // Run and upstream-failed are final. A skip may be decided before a failure
          // shows up (all_success with one upstream skipped): still not a run.
          if (first === 'skip') expect(['skip', 'upstream_failed']).toContain(atEnd);
          else expect(atEnd).toBe(first);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('describeSkip', () => {
  it('names the failed upstream tasks and the rule', () => {
    expect(describeSkip('all_success', 'upstream_failed', ['extract'])).toBe(
      'upstream failed: extract (trigger rule all_success)',
    );
  });

  it('names skipped upstream tasks', () => {
    expect(describeSkip('none_failed_min_one_success', 'skip', ['a', 'b'])).toBe(
      'upstream skipped or not matching trigger rule none_failed_min_one_success: a, b',
    );
  });

  it('lists at most five culprits and says how many there were', () => {
    expect(describeSkip('all_success', 'upstream_failed', ['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toBe(
      'upstream failed: a, b, c, d, e, … (7 in all) (trigger rule all_success)',
    );
  });
});
