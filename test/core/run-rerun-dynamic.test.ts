/**
 * Reruns of runs that used the dynamic constructs: choices, handlers, maps reached from
 * an instance, and cancels that take other task runs along.
 */
import { describe, it, expect } from 'vitest';
import { plan, RunHarness } from './fixtures.js';

const NOW = 1_000;

describe('rerun after a choice', () => {
  it("'failed' does not run a branch that was not taken", () => {
    const h = new RunHarness(
      plan([
        { id: 'pick', choice: { targets: ['big', 'small'] } },
        { id: 'big', deps: ['pick'] },
        { id: 'small', deps: ['pick'] },
        { id: 'small_after', deps: ['small'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.succeed('pick', { selected: ['big'] });
    h.fail('big');
    expect(h.state.state).toBe('failed');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(h.dispatched(d)).toEqual(['big']);
    expect(h.task('small')).toMatchObject({ state: 'skipped', skipReason: 'branch not taken: pick chose big' });
    expect(h.task('small_after').state).toBe('skipped');
    h.succeed('big');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'tasks' on the choice with downstream lets it choose again", () => {
    const h = new RunHarness(
      plan([
        { id: 'pick', choice: { targets: ['big', 'small'] } },
        { id: 'big', deps: ['pick'] },
        { id: 'small', deps: ['pick'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.succeed('pick', { selected: ['big'] });
    h.succeed('big');
    h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: true });
    h.succeed('pick', { selected: ['small'] });
    expect(h.states()).toEqual({ pick: 'succeeded', big: 'skipped', small: 'queued' });
    h.succeed('small');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('rerun with handlers', () => {
  const guarded = () =>
    plan([{ id: 'load', onFailure: { handler: 'fix' } }, { id: 'fix', handles: 'load' }, { id: 'other' }]);

  it("'failed' leaves a handler that was not needed alone, and the run can end", () => {
    const h = new RunHarness(guarded());
    h.feed({ type: 'start' });
    h.succeed('load');
    h.fail('other');
    expect(h.task('fix').state).toBe('skipped');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['other'] });
    h.succeed('other');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'failed' runs the handler again when its task fails again", () => {
    const h = new RunHarness(guarded());
    h.feed({ type: 'start' });
    h.fail('load');
    h.succeed('fix');
    h.succeed('other');
    expect(h.task('load')).toMatchObject({ state: 'failed' });
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['load', 'fix'] });
    h.fail('load');
    expect(h.task('fix').state).toBe('queued');
    h.succeed('fix');
    expect(h.task('load')).toMatchObject({ state: 'failed', error: { code: 'BOOM' } });
    h.expectFoldMatches();
  });

  it("'tasks' on a task reruns its handler with it", () => {
    const h = new RunHarness(guarded());
    h.feed({ type: 'start' });
    h.succeed('load');
    h.succeed('other');
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: false });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['load', 'fix'] });
    h.fail('load');
    expect(h.task('fix').state).toBe('queued');
    h.succeed('fix');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it("'tasks' on a handler alone reruns nothing it cannot finish", () => {
    const h = new RunHarness(guarded());
    h.feed({ type: 'start' });
    h.fail('load');
    h.succeed('fix');
    h.succeed('other');
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [1, 2], downstream: false });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['other'] });
    h.succeed('other');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });
});

describe("rerun 'failed' and maps that succeeded", () => {
  it('keeps the skipped instances of a map that succeeded, and the run can end', () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: { group: [{ id: 'a' }, { id: 'alert', deps: ['a'], rule: 'all_failed' }] } },
        { id: 'other' },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1]);
    h.succeed('m[0].a', 'A');
    expect(h.task('m[0].alert').state).toBe('skipped');
    expect(h.task('m').state).toBe('succeeded');
    h.fail('other');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['other'] });
    h.succeed('other');
    expect(h.state.state).toBe('succeeded');
    expect(h.task('m').output).toEqual([null]);
    h.expectFoldMatches();
  });

  it("keeps the failed items of a 'continue' map that succeeded", () => {
    const h = new RunHarness(plan([{ id: 'm', map: { onItemFailure: 'continue' } }, { id: 'other' }]));
    h.feed({ type: 'start' });
    h.expand('m', ['x', 'y']);
    h.succeed('m[0]', 'X');
    h.fail('m[1]');
    h.fail('other');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['other'] });
    h.succeed('other');
    expect(h.state.state).toBe('succeeded');
    expect(h.task('m[1]').state).toBe('failed');
    h.expectFoldMatches();
  });

  it('reruns the failed items of a nested map inside a failed outer map', () => {
    const h = new RunHarness(plan([{ id: 'outer', map: { group: [{ id: 'inner', map: {} }] } }]));
    h.feed({ type: 'start' });
    h.expand('outer', ['p']);
    h.expand('outer[0].inner', [1, 2]);
    h.succeed('outer[0].inner[0]', 'ok');
    h.fail('outer[0].inner[1]');
    expect(h.state.state).toBe('failed');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({
      type: 'run_retried',
      at: NOW,
      tasks: ['outer', 'outer[0].inner', 'outer[0].inner[1]'],
    });
    expect(h.dispatched(d)).toEqual(['outer[0].inner[1]']);
    h.succeed('outer[0].inner[1]', 'ok2');
    expect(h.task('outer')).toMatchObject({ state: 'succeeded', output: [['ok', 'ok2']] });
    h.expectFoldMatches();
  });
});

describe('rerun of an instance with downstream', () => {
  it('reruns the rest of its item and what follows the map', () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: { group: [{ id: 'a' }, { id: 'b', deps: ['a'] }] } },
        { id: 'after', deps: ['m'] },
        { id: 'unrelated' },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1, 2]);
    for (const t of ['m[0].a', 'm[0].b', 'm[1].a', 'm[1].b']) h.succeed(t, t);
    h.succeed('after');
    h.succeed('unrelated');
    expect(h.state.state).toBe('succeeded');
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [h.index('m[1].a')], downstream: true });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['m', 'after', 'm[1].a', 'm[1].b'] });
    h.succeed('m[1].a', 'A2');
    h.succeed('m[1].b', 'B2');
    expect(h.task('m').output).toEqual(['m[0].b', 'B2']);
    expect(h.task('after').state).toBe('queued');
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('cancels that take other task runs along', () => {
  it('settles the downstream of a handler cancelled with its task', () => {
    const h = new RunHarness(
      plan([
        { id: 'load', onFailure: { handler: 'fix' } },
        { id: 'fix', handles: 'load' },
        { id: 'notify', deps: ['fix'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.fail('load');
    h.feed({ type: 'cancel', reason: 'stop', task: 0 });
    expect(h.states()).toEqual({ load: 'cancelled', fix: 'cancelled', notify: 'skipped' });
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });
});
