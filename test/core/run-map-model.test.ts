/**
 * Model-based test of map tasks: fast-check picks a map (plain or over a two-task group,
 * a size, a parallelism, a failure policy, a retry budget) and a stream of engine
 * actions on its instances (start, succeed, fail, lose, fire a retry timer, cancel one,
 * take the run over after a crash). After every step the map's bookkeeping must agree
 * with the task runs, items must start in order within `maxParallel`, and the fold of
 * the history must be the live state. When the actions run out the driver succeeds
 * whatever is left, so every run ends; then the map's result is checked, and a failed
 * run is rerun to success.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { TaskError } from '../../src/core/model.js';
import type { MapProgress, RunInput, TaskRun } from '../../src/core/run-machine.js';
import { foldRun } from '../../src/core/run-machine.js';
import { instanceOf, taskIdOf } from '../../src/core/run-topology.js';
import { isTerminalRun, isTerminalTask } from '../../src/core/states.js';
import type { TaskDef } from './fixtures.js';
import { comparable, plan, RunHarness } from './fixtures.js';

const flaky: TaskError = { code: 'FLAKY', message: 'flaky', source: 'user' };

const caseArb = fc.record({
  items: fc.integer({ min: 0, max: 12 }),
  maxParallel: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
  group: fc.boolean(),
  onItemFailure: fc.constantFrom('fail' as const, 'continue' as const),
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  steps: fc.array(fc.tuple(fc.nat(99), fc.nat()), { maxLength: 120 }),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function flow(c: Case): TaskDef[] {
  const retry = { maxAttempts: c.maxAttempts, backoffMs: 10, maxBackoffMs: 10, jitter: 'none' as const };
  const map = c.group
    ? {
        group: [
          { id: 'a', retry },
          { id: 'b', deps: ['a'], retry },
        ],
        maxParallel: c.maxParallel,
        onItemFailure: c.onItemFailure,
      }
    : { maxParallel: c.maxParallel, onItemFailure: c.onItemFailure };
  return [
    { id: 'm', map, retry },
    { id: 'after', deps: ['m'], rule: 'all_done' },
  ];
}

/** Checks the map's counters against its task runs, and the start order and limit. */
function checkMap(h: HarnessWithMap, c: Case): void {
  const run = h.state;
  const mt = h.task('m');
  const m = mt.map as MapProgress | null;
  if (!m) return;
  const size = c.group ? 2 : 1;
  const first = h.first;
  let ended = 0;
  let active = 0;
  for (let item = 0; item < m.count; item++) {
    const runs = Array.from({ length: size }, (_, k) => run.tasks[first + item * size + k] as TaskRun);
    const open = runs.filter((t) => !isTerminalTask(t.state)).length;
    expect(m.itemOpen[item]).toBe(open);
    if (open === 0) ended++;
    else if (m.started[item]) active++;
    // An item that has not started has no task run in flight (after a rerun, some ended).
    if (!m.started[item]) for (const t of runs) expect(['queued', 'running', 'retrying']).not.toContain(t.state);
  }
  expect(m.ended).toBe(ended);
  expect(m.active).toBe(active);
  if (c.maxParallel !== null) expect(m.active).toBeLessThanOrEqual(c.maxParallel);
  // Items start in order: every item before the cursor started, none after it did
  // (cancelled items aside, which the map may mark as started when it passes them).
  for (let item = 0; item < m.cursor; item++) expect(m.started[item]).toBe(1);
  if (mt.state === 'waiting' && !run.cancelRequested) {
    // The map does not sit idle: below its limit, every item has started.
    if (c.maxParallel === null || m.active < c.maxParallel) expect(m.cursor).toBe(m.count);
  }
  // Instances never count as failed tasks of the run; the map does.
  const failedFlow = [0, 1].filter((i) => {
    const t = run.tasks[i] as TaskRun;
    return (
      t.state === 'failed' || (t.state === 'cancelled' && !t.benign) || (t.state === 'skipped' && t.upstreamFailed)
    );
  }).length;
  expect(run.failedTasks).toBe(failedFlow);
  expect(run.open).toBe(run.tasks.filter((t) => !isTerminalTask(t.state)).length);
}

class HarnessWithMap extends RunHarness {
  first = -1;
}

function actionable(h: HarnessWithMap): number[] {
  const out: number[] = [];
  h.state.tasks.forEach((t, i) => {
    if (i >= 2 && (t.state === 'queued' || t.state === 'running' || t.state === 'retrying')) out.push(i);
  });
  return out;
}

/** One engine action on instance `i`, by roll. */
function act(h: HarnessWithMap, i: number, roll: number): void {
  const t = h.state.tasks[i] as TaskRun;
  const input = (): RunInput | null => {
    if (roll < 4) return { type: 'cancel', reason: 'by hand', task: i };
    if (t.state === 'queued') return { type: 'attempt_started', task: i };
    if (t.state === 'retrying') {
      h.now = Math.max(h.now, t.retryAt ?? h.now);
      return { type: 'retry_due', task: i };
    }
    if (roll < 60) return { type: 'attempt_succeeded', task: i, attempt: t.attempt, output: taskIdOf(h.state, i) };
    if (roll < 85) return { type: 'attempt_failed', task: i, attempt: t.attempt, error: flaky };
    return { type: 'attempt_lost', task: i, attempt: t.attempt };
  };
  const next = input();
  if (next) h.feed(next);
}

describe('map model', () => {
  it('keeps the map bookkeeping, start order, limit and fold right under random instance outcomes', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const h = new HarnessWithMap(plan(flow(c)));
        h.feed({ type: 'start' });
        const values = Array.from({ length: c.items }, (_, k) => `v${k}`);
        h.expand('m', values);
        h.first = h.state.mapFirst.get(0) as number;
        checkMap(h, c);
        let step = 0;
        for (const [roll, pick] of c.steps) {
          const open = actionable(h);
          if (open.length === 0) break;
          h.now += 1;
          if (roll >= 97) {
            // A takeover: the history rebuilds the state, running attempts are lost.
            h.state = foldRun(h.runId, h.plan, h.events);
            for (const i of open) {
              const t = h.state.tasks[i] as TaskRun;
              if (t.state === 'running') h.feed({ type: 'attempt_lost', task: i, attempt: t.attempt });
            }
          } else if (roll < 4) {
            // Cancel any open instance, one that has not started included.
            const anyOpen = h.state.tasks.flatMap((t, i) => (i >= 2 && !isTerminalTask(t.state) ? [i] : []));
            act(h, anyOpen[pick % anyOpen.length] as number, roll);
          } else {
            act(h, open[pick % open.length] as number, roll);
          }
          checkMap(h, c);
          if (++step % 10 === 0) h.expectFoldMatches();
        }
        // Finish: succeed whatever is left.
        for (let guard = 0; guard < 10_000 && h.task('m').state === 'waiting'; guard++) {
          const open = actionable(h);
          const i = open[0] as number;
          h.now += 1;
          act(h, i, 50);
          checkMap(h, c);
        }
        h.expectFoldMatches();
        const mt = h.task('m');
        expect(isTerminalTask(mt.state)).toBe(true);
        expect(h.task('after').state).toBe('queued');
        h.succeed('after');
        expect(isTerminalRun(h.state.state)).toBe(true);

        // The map's result, from the instances' final states.
        const size = c.group ? 2 : 1;
        const failedItems: number[] = [];
        const outputs: unknown[] = [];
        for (let item = 0; item < c.items; item++) {
          const runs = Array.from({ length: size }, (_, k) => h.state.tasks[h.first + item * size + k] as TaskRun);
          const failed = runs.some(
            (t) => t.state === 'failed' || t.state === 'cancelled' || (t.state === 'skipped' && t.upstreamFailed),
          );
          if (failed) failedItems.push(item);
          else outputs.push(c.group ? `m[${item}].b` : `m[${item}]`);
        }
        if (c.onItemFailure === 'continue') {
          expect(mt.state).toBe('succeeded');
          const out = mt.output as { results: unknown[]; failures: { index: number; item: unknown }[] };
          expect(out.results).toEqual(outputs);
          expect(out.failures.map((f) => [f.index, f.item])).toEqual(failedItems.map((k) => [k, values[k]]));
        } else if (failedItems.length === 0) {
          expect(mt).toMatchObject({ state: 'succeeded', output: outputs });
        } else {
          expect(mt).toMatchObject({ state: 'failed', error: { code: 'MAP_ITEM_FAILED' } });
        }
        // The run fails exactly when the map did.
        expect(h.state.state).toBe(mt.state === 'succeeded' ? 'succeeded' : 'failed');
        // Every instance is addressed by the map's path.
        for (let i = h.first; i < h.state.tasks.length; i++) expect(instanceOf(h.state, i)?.parent).toBe(0);
        const folded = comparable(foldRun(h.runId, h.plan, h.events));
        expect(isDeepStrictEqual(folded, comparable(h.state))).toBe(true);

        // A failed run reruns its failed items only, and then succeeds when they do.
        if (h.state.state !== 'failed') return;
        const kept = h.state.tasks.map((t) => (t.state === 'succeeded' ? t.output : undefined));
        h.feed({ type: 'rerun', mode: 'failed' });
        checkMap(h, c);
        for (let guard = 0; guard < 10_000 && !isTerminalRun(h.state.state); guard++) {
          const open = actionable(h);
          const i = open.length > 0 ? (open[0] as number) : 1;
          h.now += 1;
          if (i === 1) h.succeed('after');
          else act(h, i, 50);
          checkMap(h, c);
        }
        expect(h.state.state).toBe('succeeded');
        kept.forEach((output, i) => {
          if (output !== undefined && i !== 0 && i !== 1) expect(h.state.tasks[i]?.output).toBe(output);
        });
        h.expectFoldMatches();
      }),
      { numRuns: 150 },
    );
  });
});
