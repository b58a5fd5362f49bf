/**
 * Branching in the run machine: choice tasks that skip the branches not taken, `k_of_n`
 * quorums that may cancel the rest benignly, and races between alternatives.
 */
import { describe, it, expect } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import type { TaskDef } from './fixtures.js';
import { boom, plan, RunHarness } from './fixtures.js';

const NOW = 1_000;

function ofType<T extends RunEvent['type']>(events: readonly RunEvent[], type: T): Extract<RunEvent, { type: T }>[] {
  return events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);
}

describe('choice', () => {
  const branching = (): TaskDef[] => [
    { id: 'pick', choice: { targets: ['big', 'small', 'none'] } },
    { id: 'big', deps: ['pick'] },
    { id: 'small', deps: ['pick'] },
    { id: 'none', deps: ['pick'] },
    { id: 'small_after', deps: ['small'] },
    { id: 'join', deps: ['big', 'small_after', 'none'], rule: 'none_failed_min_one_success' },
  ];

  it('runs the selected branch, skips the others as "branch not taken", and the skip propagates', () => {
    const h = new RunHarness(plan(branching()));
    h.feed({ type: 'start' });
    h.now = 2_000;
    const d = h.succeed('pick', { selected: ['big'] });
    expect(d.events).toEqual([
      { type: 'task_succeeded', at: 2_000, task: 'pick', attempt: 1, output: { selected: ['big'] } },
      {
        type: 'tasks_skipped',
        at: 2_000,
        tasks: [
          { task: 'small', reason: 'branch not taken: pick chose big', upstreamFailed: false },
          { task: 'none', reason: 'branch not taken: pick chose big', upstreamFailed: false },
        ],
      },
      {
        type: 'tasks_skipped',
        at: 2_000,
        tasks: [
          {
            task: 'small_after',
            reason: 'upstream skipped or not matching trigger rule all_success: small',
            upstreamFailed: false,
          },
        ],
      },
      { type: 'tasks_queued', at: 2_000, tasks: ['big'] },
    ]);
    expect(h.dispatched(d)).toEqual(['big']);
    expect(h.task('small').skipReason?.startsWith('branch not taken')).toBe(true);
    expect(h.task('join').state).toBe('pending');
    h.expectFoldMatches();

    const joined = h.succeed('big');
    expect(h.dispatched(joined)).toEqual(['join']);
    h.succeed('join');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('runs several selected branches', () => {
    const h = new RunHarness(plan(branching()));
    h.feed({ type: 'start' });
    const d = h.succeed('pick', { selected: ['small', 'big'] });
    expect(h.dispatched(d).sort()).toEqual(['big', 'small']);
    expect(h.task('none').skipReason).toBe('branch not taken: pick chose small, big');
    h.expectFoldMatches();
  });

  it('skips every target, and a join with none_failed_min_one_success, when nothing was selected', () => {
    const h = new RunHarness(plan(branching()));
    h.feed({ type: 'start' });
    h.succeed('pick', { selected: [] });
    expect(h.task('big').skipReason).toBe('branch not taken: pick chose no branch');
    expect(h.states()).toMatchObject({ big: 'skipped', small: 'skipped', none: 'skipped', join: 'skipped' });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('treats an output without a selection as no branch selected', () => {
    const h = new RunHarness(plan(branching()));
    h.feed({ type: 'start' });
    h.succeed('pick', null);
    expect(h.states()).toMatchObject({ big: 'skipped', small: 'skipped', none: 'skipped' });
    h.expectFoldMatches();
  });

  it('leaves a downstream task that is not a target to its trigger rule', () => {
    const h = new RunHarness(
      plan([
        { id: 'pick', choice: { targets: ['a', 'b'] } },
        { id: 'a', deps: ['pick'] },
        { id: 'b', deps: ['pick'] },
        { id: 'audit', deps: ['pick'] },
      ]),
    );
    h.feed({ type: 'start' });
    const d = h.succeed('pick', { selected: ['a'] });
    expect(h.dispatched(d)).toEqual(['a', 'audit']);
    h.expectFoldMatches();
  });

  it('skips its targets as upstream failed when the choice itself fails', () => {
    const h = new RunHarness(plan(branching()));
    h.feed({ type: 'start' });
    h.fail('pick');
    expect(h.states()).toMatchObject({ big: 'skipped', small: 'skipped', join: 'skipped' });
    expect(h.task('big').upstreamFailed).toBe(true);
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('chooses per item inside a map over a group', () => {
    const h = new RunHarness(
      plan([
        {
          id: 'm',
          map: {
            group: [
              { id: 'pick', choice: { targets: ['x', 'y'] } },
              { id: 'x', deps: ['pick'] },
              { id: 'y', deps: ['pick'] },
            ],
          },
        },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1, 2]);
    h.succeed('m[0].pick', { selected: ['x'] });
    h.succeed('m[1].pick', { selected: ['y'] });
    expect(h.states()).toMatchObject({
      'm[0].x': 'queued',
      'm[0].y': 'skipped',
      'm[1].x': 'skipped',
      'm[1].y': 'queued',
    });
    expect(h.task('m[0].y').skipReason).toBe('branch not taken: m[0].pick chose x');
    h.succeed('m[0].x', 'X');
    h.succeed('m[1].y', 'Y');
    expect(h.task('m')).toMatchObject({
      state: 'succeeded',
      output: [
        { x: 'X', y: null },
        { x: null, y: 'Y' },
      ],
    });
    h.expectFoldMatches();
  });
});

describe('k_of_n', () => {
  const quorum = (k: number, cancelRest: boolean, extra: TaskDef[] = []): TaskDef[] => [
    { id: 'a' },
    { id: 'b' },
    { id: 'c' },
    { id: 'q', deps: ['a', 'b', 'c'], rule: 'k_of_n', quorum: { k, cancelRest } },
    ...extra,
  ];

  it('runs on the k-th success and cancels the open upstream tasks benignly, aborting the running ones', () => {
    const h = new RunHarness(plan(quorum(2, true)));
    h.feed({ type: 'start' });
    h.startAttempt('c');
    expect(h.succeed('a').events.some((e) => e.type === 'tasks_queued')).toBe(false);
    h.now = 2_000;
    const d = h.succeed('b');
    expect(d.events).toEqual([
      { type: 'task_succeeded', at: 2_000, task: 'b', attempt: 1, output: 'b-out' },
      { type: 'tasks_queued', at: 2_000, tasks: ['q'] },
      {
        type: 'tasks_cancelled',
        at: 2_000,
        tasks: ['c'],
        reason: 'not needed: q reached its quorum',
        benign: true,
      },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: h.index('c'), attempt: 1, reason: 'not needed: q reached its quorum' },
      { type: 'dispatch', task: h.index('q') },
    ]);
    expect(h.task('c')).toMatchObject({
      state: 'cancelled',
      benign: true,
      error: null,
      skipReason: 'not needed: q reached its quorum',
    });
    h.expectFoldMatches();

    // The aborted attempt's late result is ignored; benign cancels do not fail the run.
    expect(h.feed({ type: 'attempt_failed', task: h.index('c'), attempt: 1, error: boom }).events).toEqual([]);
    h.succeed('q');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('leaves the rest running without cancelRest, and their failure still fails the run', () => {
    const h = new RunHarness(plan(quorum(2, false)));
    h.feed({ type: 'start' });
    h.succeed('a');
    const d = h.succeed('b');
    expect(ofType(d.events, 'tasks_cancelled')).toEqual([]);
    expect(h.task('q').state).toBe('queued');
    h.succeed('q');
    h.fail('c');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('waits through a failure while the quorum is still reachable', () => {
    const h = new RunHarness(plan(quorum(2, true)));
    h.feed({ type: 'start' });
    h.fail('a');
    expect(h.task('q').state).toBe('pending');
    h.succeed('b');
    expect(h.task('q').state).toBe('pending');
    h.succeed('c');
    expect(h.task('q').state).toBe('queued');
    h.succeed('q');
    // a really failed: the run fails even though the quorum ran.
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('is skipped as upstream failed once the quorum cannot be reached', () => {
    const h = new RunHarness(plan(quorum(2, true, [{ id: 'after', deps: ['q'] }])));
    h.feed({ type: 'start' });
    h.fail('a');
    h.startAttempt('c');
    const d = h.fail('b');
    expect(ofType(d.events, 'tasks_skipped')[0]?.tasks).toEqual([
      { task: 'q', reason: 'quorum can no longer be reached: a, b did not succeed', upstreamFailed: true },
      { task: 'after', reason: 'upstream failed: q (trigger rule all_success)', upstreamFailed: true },
    ]);
    // c is not cancelled: nothing reached its quorum.
    expect(h.task('c').state).toBe('running');
    h.expectFoldMatches();
  });

  it('is skipped (not upstream failed) when the upstream tasks that did not succeed were skipped', () => {
    const h = new RunHarness(
      plan([
        { id: 'root' },
        { id: 'a', deps: ['root'], rule: 'all_failed' },
        { id: 'b', deps: ['root'], rule: 'all_failed' },
        { id: 'c' },
        { id: 'q', deps: ['a', 'b', 'c'], rule: 'k_of_n', quorum: { k: 2, cancelRest: false } },
      ]),
    );
    h.feed({ type: 'start' });
    h.succeed('root');
    expect(h.task('q')).toMatchObject({
      state: 'skipped',
      upstreamFailed: false,
      skipReason: 'quorum can no longer be reached: a, b did not succeed',
    });
    h.succeed('c');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('cancels an open map upstream with all its instances, and the run still ends', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'm', map: { maxParallel: 1 } },
        { id: 'q', deps: ['a', 'm'], rule: 'k_of_n', quorum: { k: 1, cancelRest: true } },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1, 2, 3]);
    h.startAttempt('m[0]');
    const d = h.succeed('a');
    expect(ofType(d.events, 'tasks_cancelled')).toEqual([
      {
        type: 'tasks_cancelled',
        at: NOW,
        tasks: ['m', 'm[0]', 'm[1]', 'm[2]'],
        reason: 'not needed: q reached its quorum',
        benign: true,
      },
    ]);
    expect(h.commands(d, 'abort').map((c) => c.task)).toEqual([h.index('m[0]')]);
    h.succeed('q');
    expect(h.state).toMatchObject({ state: 'succeeded', open: 0 });
    h.expectFoldMatches();
  });

  it('cancels a waiting upstream and its child run', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'child', kind: 'subflow' },
        { id: 'q', deps: ['a', 'child'], rule: 'k_of_n', quorum: { k: 1, cancelRest: true } },
      ]),
    );
    h.feed({ type: 'start' });
    h.park('child', { kind: 'run', runId: 'run-2', timeoutAt: null });
    const d = h.succeed('a');
    expect(h.commands(d, 'cancel_child')).toEqual([
      { type: 'cancel_child', task: 1, runId: 'run-2', reason: 'not needed: q reached its quorum' },
    ]);
    expect(h.task('child')).toMatchObject({ state: 'cancelled', benign: true });
    h.expectFoldMatches();
  });

  it('skips the downstream of a benignly cancelled task, and that does not fail the run', () => {
    const h = new RunHarness(plan(quorum(1, true, [{ id: 'after_c', deps: ['c'] }])));
    h.feed({ type: 'start' });
    h.succeed('a');
    expect(h.task('after_c')).toMatchObject({ state: 'skipped', upstreamFailed: false });
    h.succeed('q');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('race', () => {
  const racing = (
    race: TaskDef['race'] = { branches: ['fast', 'slow', 'flaky'] },
    extra: TaskDef[] = [],
  ): TaskDef[] => [
    { id: 'fast' },
    { id: 'slow' },
    { id: 'flaky' },
    { id: 'race', race },
    { id: 'after', deps: ['race'] },
    ...extra,
  ];

  it("'first': the first branch to succeed wins, the others are cancelled benignly, and the race is decided in place", () => {
    const h = new RunHarness(plan(racing()));
    h.feed({ type: 'start' });
    h.now = 1_100;
    h.startAttempt('slow');
    h.now = 1_200;
    h.startAttempt('fast');
    h.now = 1_500;
    const d = h.feed({ type: 'attempt_succeeded', task: h.index('fast'), attempt: 1, output: { rows: 7 } });
    expect(d.events).toEqual([
      { type: 'task_succeeded', at: 1_500, task: 'fast', attempt: 1, output: { rows: 7 } },
      { type: 'tasks_queued', at: 1_500, tasks: ['race'] },
      {
        type: 'tasks_cancelled',
        at: 1_500,
        tasks: ['slow', 'flaky'],
        reason: 'lost the race for race',
        benign: true,
      },
      { type: 'task_started', at: 1_500, task: 'race', attempt: 1 },
      {
        type: 'task_succeeded',
        at: 1_500,
        task: 'race',
        attempt: 1,
        output: {
          winner: 'fast',
          output: { rows: 7 },
          losers: [
            { task: 'slow', state: 'cancelled', runtimeMs: 400, reason: 'lost the race for race' },
            { task: 'flaky', state: 'cancelled', runtimeMs: null, reason: 'lost the race for race' },
          ],
        },
      },
      { type: 'tasks_queued', at: 1_500, tasks: ['after'] },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: h.index('slow'), attempt: 1, reason: 'lost the race for race' },
      { type: 'dispatch', task: h.index('after') },
    ]);
    h.expectFoldMatches();
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it("'first' waits past a failed branch for a success", () => {
    const h = new RunHarness(plan(racing()));
    h.feed({ type: 'start' });
    h.fail('flaky');
    expect(h.task('race').state).toBe('pending');
    h.succeed('slow', 'S');
    expect(h.task('race').output).toMatchObject({ winner: 'slow', output: 'S' });
    const losers = (h.task('race').output as { losers: unknown[] }).losers;
    expect(losers).toContainEqual({ task: 'flaky', state: 'failed', runtimeMs: 0 });
    h.expectFoldMatches();
    // A branch that failed before the winner succeeded is the race's loss, not the run's.
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it("'first' fails with RACE_NO_WINNER when every branch failed", () => {
    const h = new RunHarness(plan(racing()));
    h.feed({ type: 'start' });
    h.fail('fast');
    h.fail('slow');
    const d = h.fail('flaky');
    expect(ofType(d.events, 'task_failed').map((e) => [e.task, e.error.code])).toEqual([
      ['flaky', 'BOOM'],
      ['race', 'RACE_NO_WINNER'],
    ]);
    expect(h.task('race').error).toEqual({
      code: 'RACE_NO_WINNER',
      message: 'no branch of race race succeeded',
      source: 'user',
    });
    expect(h.task('after')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it("'all' waits for every branch and picks the first success in priority order", () => {
    const h = new RunHarness(
      plan(racing({ branches: ['fast', 'slow', 'flaky'], mode: 'all', priority: ['flaky', 'slow', 'fast'] })),
    );
    h.feed({ type: 'start' });
    h.succeed('fast', 'F');
    expect(h.task('race').state).toBe('pending');
    h.fail('flaky');
    expect(h.task('race').state).toBe('pending');
    const d = h.succeed('slow', 'S');
    expect(ofType(d.events, 'tasks_cancelled')).toEqual([]);
    expect(h.task('race').output).toEqual({
      winner: 'slow',
      output: 'S',
      losers: [
        { task: 'fast', state: 'succeeded', runtimeMs: 0 },
        { task: 'flaky', state: 'failed', runtimeMs: 0 },
      ],
    });
    h.expectFoldMatches();
  });

  it("'all' without a priority picks the first branch in declaration order that succeeded", () => {
    const h = new RunHarness(plan(racing({ branches: ['fast', 'slow', 'flaky'], mode: 'all' })));
    h.feed({ type: 'start' });
    h.succeed('flaky', 'X');
    h.succeed('slow', 'S');
    h.fail('fast');
    expect(h.task('race').output).toMatchObject({ winner: 'slow', output: 'S' });
    h.expectFoldMatches();
  });

  it("'all' fails with RACE_NO_WINNER when no branch succeeded", () => {
    const h = new RunHarness(plan(racing({ branches: ['fast', 'slow', 'flaky'], mode: 'all' })));
    h.feed({ type: 'start' });
    h.fail('fast');
    h.fail('slow');
    h.fail('flaky');
    expect(h.task('race')).toMatchObject({ state: 'failed', error: { code: 'RACE_NO_WINNER' } });
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('with score, dispatches the race task and adds the losers to its output', () => {
    const h = new RunHarness(plan(racing({ branches: ['fast', 'slow', 'flaky'], mode: 'all', score: true })));
    h.feed({ type: 'start' });
    h.succeed('fast', 1);
    h.succeed('slow', 2);
    const d = h.fail('flaky');
    expect(h.dispatched(d)).toEqual(['race']);
    expect(h.task('race').state).toBe('queued');
    h.succeed('race', { winner: 'slow', output: 2, score: 0.9 });
    expect(h.task('race').output).toEqual({
      winner: 'slow',
      output: 2,
      score: 0.9,
      losers: [
        { task: 'fast', state: 'succeeded', runtimeMs: 0 },
        { task: 'flaky', state: 'failed', runtimeMs: 0 },
      ],
    });
    h.succeed('after');
    h.expectFoldMatches();
  });

  it("'first' inside a map over a group races per item", () => {
    const h = new RunHarness(
      plan([
        {
          id: 'm',
          map: { group: [{ id: 'x' }, { id: 'y' }, { id: 'r', race: { branches: ['x', 'y'] } }] },
        },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1, 2]);
    h.succeed('m[0].y', 'Y0');
    h.succeed('m[1].x', 'X1');
    expect(h.states()).toMatchObject({ 'm[0].x': 'cancelled', 'm[1].y': 'cancelled' });
    expect(h.task('m')).toMatchObject({
      state: 'succeeded',
      output: [
        {
          winner: 'y',
          output: 'Y0',
          losers: [{ task: 'm[0].x', state: 'cancelled', runtimeMs: null, reason: 'lost the race for m[0].r' }],
        },
        {
          winner: 'x',
          output: 'X1',
          losers: [{ task: 'm[1].y', state: 'cancelled', runtimeMs: null, reason: 'lost the race for m[1].r' }],
        },
      ],
    });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});
