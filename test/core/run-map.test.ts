/**
 * Map tasks in the run machine: expansion into instances, ordered starts under
 * `maxParallel`, per-instance retries, the map's output, item failures, group and nested
 * maps, reruns, and a large fan-out. Every scenario checks that folding the recorded
 * events reproduces the live state.
 */
import { describe, it, expect } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import type { TaskDef } from './fixtures.js';
import { boom, plan, RunHarness } from './fixtures.js';

const NOW = 1_000;

/** Ids of the instances whose items a decision started. */
function startedItems(events: readonly RunEvent[], task: string): number[] {
  return events.flatMap((e) => (e.type === 'map_items_started' && e.task === task ? [...e.items] : []));
}

describe('a plain map', () => {
  const flow = (extra: Partial<TaskDef> = {}, map: TaskDef['map'] = {}): TaskDef[] => [
    { id: 'src' },
    { id: 'm', deps: ['src'], map, ...extra },
    { id: 'after', deps: ['m'] },
  ];

  it('expands into one instance per item, dispatches them, and succeeds with the ordered outputs', () => {
    const h = new RunHarness(plan(flow()));
    h.feed({ type: 'start' });
    h.succeed('src', ['a', 'b', 'c']);
    expect(h.task('m').state).toBe('queued');
    expect(h.startAttempt('m')).toBe(1);
    expect(h.task('m').state).toBe('running');
    h.expectFoldMatches();

    h.now = 2_000;
    const d = h.feed({ type: 'map_items', task: h.index('m'), attempt: 1, items: ['a', 'b', 'c'] });
    expect(d.events).toEqual([
      { type: 'task_expanded', at: 2_000, task: 'm', items: ['a', 'b', 'c'] },
      { type: 'map_items_started', at: 2_000, task: 'm', items: [0, 1, 2] },
      { type: 'tasks_queued', at: 2_000, tasks: ['m[0]', 'm[1]', 'm[2]'] },
    ]);
    expect(h.dispatched(d)).toEqual(['m[0]', 'm[1]', 'm[2]']);
    expect(h.task('m')).toMatchObject({ state: 'waiting', wait: { kind: 'items' } });
    expect(h.states()).toEqual({
      src: 'succeeded',
      m: 'waiting',
      after: 'pending',
      'm[0]': 'queued',
      'm[1]': 'queued',
      'm[2]': 'queued',
    });
    expect(h.state.open).toBe(5);
    expect([...d.touched].sort()).toEqual([1, 3, 4, 5]);
    h.expectFoldMatches();

    // Items end out of order; the output keeps the item order.
    h.succeed('m[2]', 'C');
    h.succeed('m[0]', 'A');
    expect(h.task('m').state).toBe('waiting');
    h.expectFoldMatches();
    h.now = 3_000;
    const last = h.succeed('m[1]', 'B');
    expect(last.events).toEqual([
      { type: 'task_succeeded', at: 3_000, task: 'm[1]', attempt: 1, output: 'B' },
      { type: 'task_succeeded', at: 3_000, task: 'm', attempt: 1, output: ['A', 'B', 'C'] },
      { type: 'tasks_queued', at: 3_000, tasks: ['after'] },
    ]);
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: ['A', 'B', 'C'], endedAt: 3_000 });
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', open: 0, failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('gives a null output for an item that succeeded without one', () => {
    const h = new RunHarness(plan(flow()));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.expand('m', [1, 2]);
    h.startAttempt('m[0]');
    h.feed({ type: 'attempt_succeeded', task: h.index('m[0]'), attempt: 1, output: undefined });
    h.succeed('m[1]', 2);
    expect(h.task('m').output).toEqual([null, 2]);
    h.expectFoldMatches();
  });

  it('succeeds at once with [] when the list is empty, and moves on downstream', () => {
    const h = new RunHarness(plan(flow()));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.startAttempt('m');
    const d = h.feed({ type: 'map_items', task: h.index('m'), attempt: 1, items: [] });
    expect(d.events).toEqual([
      { type: 'task_expanded', at: NOW, task: 'm', items: [] },
      { type: 'task_succeeded', at: NOW, task: 'm', attempt: 1, output: [] },
      { type: 'tasks_queued', at: NOW, tasks: ['after'] },
    ]);
    expect(h.task('m').map).toMatchObject({ count: 0, ended: 0 });
    h.expectFoldMatches();
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('succeeds an empty map that is the last task, ending the run', () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    const d = h.expand('m', []);
    expect(d.events.map((e) => e.type)).toEqual(['task_expanded', 'task_succeeded', 'run_succeeded']);
    expect(d.commands).toEqual([{ type: 'finished', state: 'succeeded' }]);
    h.expectFoldMatches();
  });

  it('starts items in order, at most maxParallel at a time', () => {
    const h = new RunHarness(plan(flow({}, { maxParallel: 2 })));
    h.feed({ type: 'start' });
    h.succeed('src');
    const d = h.expand('m', ['a', 'b', 'c', 'd', 'e']);
    expect(startedItems(d.events, 'm')).toEqual([0, 1]);
    expect(h.dispatched(d)).toEqual(['m[0]', 'm[1]']);
    expect(h.states()).toMatchObject({ 'm[2]': 'pending', 'm[3]': 'pending', 'm[4]': 'pending' });
    expect(h.task('m').map).toMatchObject({ active: 2, cursor: 2, ended: 0 });
    h.expectFoldMatches();

    // Starting an attempt does not free a slot; ending an item does.
    expect(startedItems(h.feed({ type: 'attempt_started', task: h.index('m[1]') }).events, 'm')).toEqual([]);
    const freed = h.feed({ type: 'attempt_succeeded', task: h.index('m[1]'), attempt: 1, output: 'B' });
    expect(startedItems(freed.events, 'm')).toEqual([2]);
    expect(h.dispatched(freed)).toEqual(['m[2]']);
    h.expectFoldMatches();

    // A failed item frees its slot too (the map fails only once every item ended).
    const failed = h.fail('m[0]');
    expect(startedItems(failed.events, 'm')).toEqual([3]);
    expect(h.task('m').state).toBe('waiting');
    const lastStart = h.succeed('m[2]');
    expect(startedItems(lastStart.events, 'm')).toEqual([4]);
    expect(h.task('m').map).toMatchObject({ active: 2, cursor: 5, ended: 3 });
    expect(startedItems(h.succeed('m[3]').events, 'm')).toEqual([]);
    h.expectFoldMatches();
    h.succeed('m[4]');
    expect(h.task('m').state).toBe('failed');
    h.expectFoldMatches();
  });

  it('never has more than maxParallel items in flight while items end in any order', () => {
    const h = new RunHarness(plan([{ id: 'm', map: { maxParallel: 3 } }]));
    h.feed({ type: 'start' });
    h.expand(
      'm',
      Array.from({ length: 12 }, (_, k) => k),
    );
    const order = [2, 0, 1, 4, 3, 5, 8, 7, 6, 11, 10, 9];
    for (const k of order) {
      const m = h.task('m').map;
      const inFlight = h.state.tasks.filter((t, i) => i >= 1 && (t.state === 'queued' || t.state === 'running'));
      expect(inFlight.length).toBeLessThanOrEqual(3);
      expect(m?.active).toBe(inFlight.length);
      if (h.task(`m[${k}]`).state !== 'queued') {
        // Not yet started: end an item that is in flight instead.
        const open = h.state.tasks.findIndex((t, i) => i >= 1 && t.state === 'queued');
        h.succeed(`m[${open - 1}]`, open - 1);
        continue;
      }
      h.succeed(`m[${k}]`, k);
    }
    while (h.task('m').state === 'waiting') {
      const open = h.state.tasks.findIndex((t, i) => i >= 1 && t.state === 'queued');
      h.succeed(`m[${open - 1}]`, open - 1);
    }
    expect(h.task('m').output).toEqual(Array.from({ length: 12 }, (_, k) => k));
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('passes over an item cancelled before it started, without holding up the items after it', () => {
    const h = new RunHarness(plan([{ id: 'm', map: { maxParallel: 1, onItemFailure: 'continue' } }]));
    h.feed({ type: 'start' });
    h.expand('m', ['a', 'b', 'c']);
    h.feed({ type: 'cancel', reason: 'skip b', task: h.index('m[1]') });
    expect(h.task('m[1]').state).toBe('cancelled');
    const d = h.succeed('m[0]', 'A');
    expect(startedItems(d.events, 'm')).toEqual([1, 2]);
    expect(h.dispatched(d)).toEqual(['m[2]']);
    expect(h.task('m').map).toMatchObject({ active: 1, cursor: 3 });
    h.expectFoldMatches();
    h.succeed('m[2]', 'C');
    expect(h.task('m').output).toEqual({
      results: ['A', 'C'],
      failures: [{ index: 1, item: 'b', error: { code: 'TASK_CANCELLED', message: 'skip b', source: 'user' } }],
    });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('retries an instance by its own policy without touching its siblings', () => {
    const h = new RunHarness(plan(flow({ retry: { maxAttempts: 2, backoffMs: 500 } })));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.expand('m', ['a', 'b']);
    const first = h.fail('m[0]');
    expect(first.events.map((e) => e.type)).toEqual(['attempt_failed', 'retry_scheduled']);
    expect(first.commands).toEqual([{ type: 'arm_timer', task: h.index('m[0]'), dueAt: NOW + 500 }]);
    expect(h.task('m[0]')).toMatchObject({ state: 'retrying', failures: 1 });
    expect(h.task('m').map?.itemFailed[0]).toBe(0);
    h.succeed('m[1]', 'B');
    expect(h.task('m').state).toBe('waiting');
    h.expectFoldMatches();

    h.now = NOW + 500;
    const due = h.feed({ type: 'retry_due', task: h.index('m[0]') });
    expect(h.dispatched(due)).toEqual(['m[0]']);
    expect(h.startAttempt('m[0]')).toBe(2);
    h.feed({ type: 'attempt_succeeded', task: h.index('m[0]'), attempt: 2, output: 'A' });
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: ['A', 'B'] });
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('re-queues a lost instance attempt for free and fences the stale one out', () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    h.expand('m', ['x']);
    h.startAttempt('m[0]');
    const lost = h.feed({ type: 'attempt_lost', task: h.index('m[0]'), attempt: 1 });
    expect(h.dispatched(lost)).toEqual(['m[0]']);
    expect(h.startAttempt('m[0]')).toBe(2);
    expect(h.feed({ type: 'attempt_succeeded', task: h.index('m[0]'), attempt: 1, output: 'stale' }).events).toEqual(
      [],
    );
    h.feed({ type: 'attempt_succeeded', task: h.index('m[0]'), attempt: 2, output: 'fresh' });
    expect(h.task('m').output).toEqual(['fresh']);
    h.expectFoldMatches();
  });

  it('fails with MAP_ITEM_FAILED once every item ended when an item failed, and skips the downstream', () => {
    const h = new RunHarness(plan(flow()));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.expand('m', ['a', 'b', 'c']);
    h.succeed('m[0]');
    h.fail('m[1]');
    // The failed instance does not fail the run by itself.
    expect(h.state).toMatchObject({ state: 'running', failedTasks: 0 });
    expect(h.task('m').state).toBe('waiting');
    h.expectFoldMatches();
    h.now = 5_000;
    const d = h.succeed('m[2]');
    const failed = d.events.find((e) => e.type === 'task_failed');
    expect(failed).toEqual({
      type: 'task_failed',
      at: 5_000,
      task: 'm',
      error: {
        code: 'MAP_ITEM_FAILED',
        message: '1 of 3 item(s) of m failed: #1 (BOOM: task body threw)',
        source: 'user',
        hint: 'Set on_item_failure: continue to hand the successes and the failures downstream instead.',
        details: { failures: [{ index: 1, error: boom }] },
      },
    });
    expect(h.task('after')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    expect(h.state.state).toBe('failed');
    expect(h.state.error?.message).toBe('1 task(s) failed: m');
    expect(h.state.failedTasks).toBe(2);
    h.expectFoldMatches();
  });

  it('lists at most five failed items in the message', () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    h.expand('m', [0, 1, 2, 3, 4, 5, 6]);
    for (let k = 0; k < 7; k++) h.fail(`m[${k}]`, { code: `E${k}`, message: `item ${k}` });
    expect(h.task('m').error).toMatchObject({
      code: 'MAP_ITEM_FAILED',
      message:
        '7 of 7 item(s) of m failed: #0 (E0: item 0); #1 (E1: item 1); #2 (E2: item 2); #3 (E3: item 3); #4 (E4: item 4); …',
    });
    h.expectFoldMatches();
  });

  it("with onItemFailure 'continue' succeeds with results and failures, and the run succeeds", () => {
    const h = new RunHarness(plan(flow({}, { onItemFailure: 'continue' })));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.expand('m', ['a', 'b', 'c']);
    h.succeed('m[0]', 'A');
    h.fail('m[1]');
    h.succeed('m[2]', 'C');
    expect(h.task('m')).toMatchObject({
      state: 'succeeded',
      output: { results: ['A', 'C'], failures: [{ index: 1, item: 'b', error: boom }] },
    });
    expect(h.task('after').state).toBe('queued');
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('cancels the map and every instance, aborting the running ones, on a task cancel', () => {
    const h = new RunHarness(plan([...flow({}, { maxParallel: 2 }), { id: 'other' }]));
    h.feed({ type: 'start' });
    h.succeed('src');
    h.expand('m', ['a', 'b', 'c']);
    h.startAttempt('m[0]');
    const d = h.feed({ type: 'cancel', reason: 'enough', task: h.index('m') });
    expect(d.events.find((e) => e.type === 'tasks_cancelled')).toEqual({
      type: 'tasks_cancelled',
      at: NOW,
      tasks: ['m', 'm[0]', 'm[1]', 'm[2]'],
      reason: 'enough',
    });
    expect(h.commands(d, 'abort')).toEqual([{ type: 'abort', task: h.index('m[0]'), attempt: 1, reason: 'enough' }]);
    expect(h.task('after')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
    h.succeed('other');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('cancels every instance on a run cancel and a run timeout', () => {
    for (const input of [{ type: 'cancel', reason: 'stop' } as const, { type: 'run_timeout' } as const]) {
      const h = new RunHarness(plan([{ id: 'm', map: { maxParallel: 1 } }]));
      h.feed({ type: 'start' });
      h.expand('m', [1, 2, 3]);
      h.startAttempt('m[0]');
      const d = h.feed(input);
      expect(h.states()).toEqual({ m: 'cancelled', 'm[0]': 'cancelled', 'm[1]': 'cancelled', 'm[2]': 'cancelled' });
      expect(startedItems(d.events, 'm')).toEqual([]);
      expect(h.state.state).toBe(input.type === 'cancel' ? 'cancelled' : 'failed');
      h.expectFoldMatches();
    }
  });

  it('ignores stale map_items inputs', () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    expect(h.feed({ type: 'map_items', task: 0, attempt: 1, items: [1] }).events).toEqual([]);
    h.startAttempt('m');
    expect(h.feed({ type: 'map_items', task: 0, attempt: 2, items: [1] }).events).toEqual([]);
    h.feed({ type: 'map_items', task: 0, attempt: 1, items: [1] });
    expect(h.feed({ type: 'map_items', task: 0, attempt: 1, items: [1, 2] }).events).toEqual([]);
    expect(h.task('m').map?.count).toBe(1);
    h.expectFoldMatches();
  });

  it('ignores a late failure of the map attempt once it has its items', () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    h.expand('m', [1]);
    expect(h.feed({ type: 'attempt_failed', task: 0, attempt: 1, error: boom }).events).toEqual([]);
    expect(h.feed({ type: 'attempt_lost', task: 0, attempt: 1 }).events).toEqual([]);
    expect(h.task('m').state).toBe('waiting');
    h.expectFoldMatches();
  });

  it('fails the map like a task when its list cannot be evaluated', () => {
    const h = new RunHarness(plan(flow({ retry: { maxAttempts: 3 } })));
    h.feed({ type: 'start' });
    h.succeed('src');
    const d = h.fail('m', { code: 'MAP_OVER_INVALID', message: 'not an array' });
    expect(d.events.map((e) => e.type)).toEqual(['attempt_failed', 'task_failed', 'tasks_skipped', 'run_failed']);
    h.expectFoldMatches();
  });
});

describe('a map over a group', () => {
  const grouped = (extra: TaskDef['map'] = {}): TaskDef[] => [
    {
      id: 'm',
      map: {
        group: [{ id: 'fetch' }, { id: 'parse', deps: ['fetch'] }, { id: 'load', deps: ['parse'] }],
        ...extra,
      },
    },
    { id: 'after', deps: ['m'] },
  ];

  it('adds the group per item with prefixed ids and runs each item as its own small graph', () => {
    const h = new RunHarness(plan(grouped()));
    h.feed({ type: 'start' });
    const d = h.expand('m', ['x', 'y']);
    expect(d.events.find((e) => e.type === 'tasks_queued')).toEqual({
      type: 'tasks_queued',
      at: NOW,
      tasks: ['m[0].fetch', 'm[1].fetch'],
    });
    expect(Object.keys(h.states())).toEqual([
      'm',
      'after',
      'm[0].fetch',
      'm[0].parse',
      'm[0].load',
      'm[1].fetch',
      'm[1].parse',
      'm[1].load',
    ]);
    h.expectFoldMatches();

    const next = h.succeed('m[1].fetch');
    expect(h.dispatched(next)).toEqual(['m[1].parse']);
    expect(h.task('m[0].parse').state).toBe('pending');
    h.succeed('m[1].parse');
    h.succeed('m[1].load', 'L1');
    h.succeed('m[0].fetch');
    h.succeed('m[0].parse');
    expect(h.task('m').state).toBe('waiting');
    h.succeed('m[0].load', 'L0');
    // One sink: the map's output is the sink's output per item.
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: ['L0', 'L1'] });
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('gives an object keyed by sink ids when the group has several sinks', () => {
    const h = new RunHarness(
      plan([{ id: 'm', map: { group: [{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['a'] }] } }]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1]);
    h.succeed('m[0].a', 'A');
    h.succeed('m[0].b', 'B');
    h.succeed('m[0].c', 'C');
    expect(h.task('m').output).toEqual([{ b: 'B', c: 'C' }]);
    h.expectFoldMatches();
  });

  it('counts maxParallel in items, not in task runs', () => {
    const h = new RunHarness(plan(grouped({ maxParallel: 1 })));
    h.feed({ type: 'start' });
    const d = h.expand('m', ['x', 'y']);
    expect(h.dispatched(d)).toEqual(['m[0].fetch']);
    expect(startedItems(h.succeed('m[0].fetch').events, 'm')).toEqual([]);
    expect(startedItems(h.succeed('m[0].parse').events, 'm')).toEqual([]);
    const done = h.succeed('m[0].load');
    expect(startedItems(done.events, 'm')).toEqual([1]);
    expect(h.dispatched(done)).toEqual(['m[1].fetch']);
    h.expectFoldMatches();
  });

  it('skips the rest of a failed item and fails the map once all items ended', () => {
    const h = new RunHarness(plan(grouped()));
    h.feed({ type: 'start' });
    h.expand('m', ['x', 'y']);
    h.fail('m[0].fetch');
    expect(h.states()).toMatchObject({ 'm[0].parse': 'skipped', 'm[0].load': 'skipped', m: 'waiting' });
    expect(h.state.failedTasks).toBe(0);
    h.succeed('m[1].fetch');
    h.succeed('m[1].parse');
    h.succeed('m[1].load');
    expect(h.task('m').error).toMatchObject({
      code: 'MAP_ITEM_FAILED',
      details: { failures: [{ index: 0, error: boom }] },
    });
    expect(h.task('after').state).toBe('skipped');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it("with 'continue' reports the failing task's error for an item whose middle task failed", () => {
    const h = new RunHarness(plan(grouped({ onItemFailure: 'continue' })));
    h.feed({ type: 'start' });
    h.expand('m', ['x', 'y']);
    h.succeed('m[0].fetch');
    h.fail('m[0].parse', { code: 'PARSE', message: 'bad row' });
    h.succeed('m[1].fetch');
    h.succeed('m[1].parse');
    h.succeed('m[1].load', 'ok');
    expect(h.task('m').output).toEqual({
      results: ['ok'],
      failures: [{ index: 0, item: 'x', error: { code: 'PARSE', message: 'bad row' } }],
    });
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs a map nested in a group template, with paths for ids', () => {
    const h = new RunHarness(
      plan([
        {
          id: 'outer',
          map: {
            group: [{ id: 'list' }, { id: 'inner', deps: ['list'], map: {} }, { id: 'sum', deps: ['inner'] }],
          },
        },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('outer', ['p', 'q']);
    h.succeed('outer[0].list', [1, 2]);
    expect(h.task('outer[0].inner').state).toBe('queued');
    const d = h.expand('outer[0].inner', [1, 2]);
    expect(h.dispatched(d)).toEqual(['outer[0].inner[0]', 'outer[0].inner[1]']);
    h.expectFoldMatches();

    h.succeed('outer[0].inner[0]', 10);
    h.succeed('outer[0].inner[1]', 20);
    expect(h.task('outer[0].inner')).toMatchObject({ state: 'succeeded', output: [10, 20] });
    h.succeed('outer[0].sum', 30);
    h.succeed('outer[1].list', []);
    h.expand('outer[1].inner', []);
    expect(h.task('outer[1].inner').output).toEqual([]);
    h.succeed('outer[1].sum', 0);
    expect(h.task('outer')).toMatchObject({ state: 'succeeded', output: [30, 0] });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('fails the outer map when a nested item fails, and cancels nested instances with their map', () => {
    const h = new RunHarness(
      plan([
        {
          id: 'outer',
          map: {
            group: [
              { id: 'inner', map: {} },
              { id: 'after', deps: ['inner'] },
            ],
          },
        },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('outer', ['p', 'q']);
    h.expand('outer[0].inner', [1]);
    h.fail('outer[0].inner[0]');
    expect(h.task('outer[0].inner').error?.code).toBe('MAP_ITEM_FAILED');
    expect(h.task('outer[0].after').state).toBe('skipped');
    h.expand('outer[1].inner', [1, 2]);
    h.startAttempt('outer[1].inner[0]');
    const d = h.feed({ type: 'cancel', reason: 'stop', task: h.index('outer') });
    expect(h.commands(d, 'abort').map((c) => c.task)).toEqual([h.index('outer[1].inner[0]')]);
    expect(h.state.state).toBe('failed');
    expect(h.state.open).toBe(0);
    h.expectFoldMatches();
  });
});

describe('rerun of a map', () => {
  const failedMap = () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: {} },
        { id: 'after', deps: ['m'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', ['a', 'b', 'c']);
    h.succeed('m[0]', 'A');
    h.fail('m[1]');
    h.succeed('m[2]', 'C');
    expect(h.state.state).toBe('failed');
    return h;
  };

  it("'failed' reruns only the failed items, keeps the items, and rebuilds the output", () => {
    const h = failedMap();
    h.now = 9_000;
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events).toEqual([
      { type: 'run_retried', at: 9_000, tasks: ['m', 'after', 'm[1]'] },
      { type: 'map_items_started', at: 9_000, task: 'm', items: [1] },
      { type: 'tasks_queued', at: 9_000, tasks: ['m[1]'] },
    ]);
    expect(d.events.some((e) => e.type === 'task_expanded')).toBe(false);
    expect(h.states()).toEqual({
      m: 'waiting',
      after: 'pending',
      'm[0]': 'succeeded',
      'm[1]': 'queued',
      'm[2]': 'succeeded',
    });
    expect(h.task('m').map).toMatchObject({ count: 3, ended: 2, active: 1 });
    h.expectFoldMatches();

    expect(h.startAttempt('m[1]')).toBe(2);
    h.feed({ type: 'attempt_succeeded', task: h.index('m[1]'), attempt: 2, output: 'B' });
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: ['A', 'B', 'C'], error: null });
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'failed' respects maxParallel among the reopened items", () => {
    const h = new RunHarness(plan([{ id: 'm', map: { maxParallel: 1 } }]));
    h.feed({ type: 'start' });
    h.expand('m', [0, 1, 2, 3]);
    h.fail('m[0]');
    h.succeed('m[1]');
    h.fail('m[2]');
    h.fail('m[3]');
    expect(h.state.state).toBe('failed');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(h.dispatched(d)).toEqual(['m[0]']);
    expect(startedItems(h.succeed('m[0]').events, 'm')).toEqual([2]);
    expect(startedItems(h.succeed('m[2]').events, 'm')).toEqual([3]);
    h.succeed('m[3]');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'tasks' on a map reruns all its items without expanding it again", () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: {} },
        { id: 'after', deps: ['m'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', ['a', 'b']);
    h.succeed('m[0]', 'A');
    h.succeed('m[1]', 'B');
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [h.index('m')], downstream: false });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['m', 'm[0]', 'm[1]'] });
    expect(h.dispatched(d)).toEqual(['m[0]', 'm[1]']);
    expect(h.task('m')).toMatchObject({ state: 'waiting', attempt: 1 });
    h.succeed('m[0]', 'A2');
    h.succeed('m[1]', 'B2');
    expect(h.task('m').output).toEqual(['A2', 'B2']);
    expect(h.task('after').state).toBe('succeeded');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'tasks' on one instance reopens its map too, and only that item runs", () => {
    const h = new RunHarness(plan([{ id: 'm', map: {} }]));
    h.feed({ type: 'start' });
    h.expand('m', ['a', 'b']);
    h.succeed('m[0]', 'A');
    h.succeed('m[1]', 'B');
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [h.index('m[1]')], downstream: false });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['m', 'm[1]'] });
    expect(h.dispatched(d)).toEqual(['m[1]']);
    h.succeed('m[1]', 'B2');
    expect(h.task('m').output).toEqual(['A', 'B2']);
    h.expectFoldMatches();
  });

  it("'failed' after a group item failed reruns the failed task and what it skipped, not the item's successes", () => {
    const h = new RunHarness(
      plan([{ id: 'm', map: { group: [{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['b'] }] } }]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1]);
    h.succeed('m[0].a', 'A');
    h.fail('m[0].b');
    expect(h.state.state).toBe('failed');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['m', 'm[0].b', 'm[0].c'] });
    expect(h.dispatched(d)).toEqual(['m[0].b']);
    h.succeed('m[0].b');
    h.succeed('m[0].c', 'C');
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: ['C'] });
    expect(h.task('m[0].a').output).toBe('A');
    h.expectFoldMatches();
  });
});

describe('a large map', () => {
  it('expands 10,000 items without a limit, succeeds them all, and folds back to the same state', () => {
    const n = 10_000;
    const h = new RunHarness(
      plan([
        { id: 'm', map: {} },
        { id: 'after', deps: ['m'] },
      ]),
    );
    h.feed({ type: 'start' });
    const items = Array.from({ length: n }, (_, k) => k);
    const d = h.expand('m', items);
    expect(d.commands).toHaveLength(n);
    expect(h.state.open).toBe(n + 2);
    const first = h.index('m[0]');
    for (let k = 0; k < n; k++) {
      const task = first + k;
      h.feed({ type: 'attempt_started', task });
      h.feed({ type: 'attempt_succeeded', task, attempt: 1, output: k * 2 });
    }
    const output = h.task('m').output as number[];
    expect(output).toHaveLength(n);
    expect(output[n - 1]).toBe((n - 1) * 2);
    expect(h.task('after').state).toBe('queued');
    h.expectFoldMatches();
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
  });
});
