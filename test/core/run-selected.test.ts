/**
 * A run of chosen tasks (`run_created` with `tasks`, as `baton asset materialize` makes):
 * the chosen tasks run in dependency order; every other task ends skipped with the reason
 * `not selected`, and the run succeeds; the fold of the history gives the same state.
 */
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import { evolve } from '../../src/core/run-fold.js';
import { plan, RunHarness } from './fixtures.js';

function selected(tasks: readonly string[]): RunHarness {
  const h = new RunHarness(
    plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['b'] }, { id: 'd' }, { id: 'e', deps: ['d'] }]),
  );
  const created: RunEvent = { type: 'run_created', at: 0, flow: 'test-flow', version: 'v1', params: {}, tasks };
  evolve(h.state, created);
  h.events.push(created);
  return h;
}

describe('a run of chosen tasks', () => {
  it('runs the chosen tasks and skips the others with a reason', () => {
    const h = selected(['a', 'b']);
    const start = h.feed({ type: 'start' });
    expect(h.dispatched(start)).toEqual(['a']);
    expect(h.states()).toEqual({ a: 'queued', b: 'pending', c: 'skipped', d: 'skipped', e: 'skipped' });
    expect(h.task('d').skipReason).toBe('not selected: this run runs only a, b');
    h.succeed('a');
    expect(h.states()).toMatchObject({ b: 'queued' });
    h.succeed('b');
    expect(h.states()).toEqual({ a: 'succeeded', b: 'succeeded', c: 'skipped', d: 'skipped', e: 'skipped' });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs the whole flow without a selection', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'd' }]));
    expect(h.dispatched(h.feed({ type: 'start' }))).toEqual(['a', 'd']);
  });
});
