/**
 * Failure handlers (`on_failure`) and `finally` tasks in the run machine.
 */
import { describe, it, expect } from 'vitest';
import type { TaskError } from '../../src/core/model.js';
import type { RunEvent } from '../../src/core/run-machine.js';
import type { TaskDef } from './fixtures.js';
import { boom, plan, RunHarness } from './fixtures.js';

const NOW = 1_000;

function types(events: readonly RunEvent[]): string[] {
  return events.map((e) => e.type);
}

describe('on_failure', () => {
  const guarded = (onFailure: Omit<NonNullable<TaskDef['onFailure']>, 'handler'> = {}, extra: TaskDef[] = []) => [
    { id: 'load', retry: { maxAttempts: 2, backoffMs: 100 }, onFailure: { handler: 'fix', ...onFailure } },
    { id: 'fix', handles: 'load' },
    { id: 'after', deps: ['load'] },
    ...extra,
  ];

  it('runs the handler after the last retry failed; recover makes the task succeed with its output', () => {
    const h = new RunHarness(plan(guarded({ recover: true })));
    const start = h.feed({ type: 'start' });
    // The handler is never started by a trigger rule, though it has no upstream.
    expect(h.dispatched(start)).toEqual(['load']);
    const first = h.fail('load');
    expect(types(first.events)).toEqual(['attempt_failed', 'retry_scheduled']);
    h.now = 1_100;
    h.feed({ type: 'retry_due', task: 0 });
    h.startAttempt('load');
    const d = h.feed({ type: 'attempt_failed', task: 0, attempt: 2, error: boom });
    expect(d.events).toEqual([
      { type: 'attempt_failed', at: 1_100, task: 'load', attempt: 2, error: boom, lost: false },
      { type: 'task_catching', at: 1_100, task: 'load', error: boom, handler: 'fix' },
      { type: 'tasks_queued', at: 1_100, tasks: ['fix'] },
    ]);
    expect(h.dispatched(d)).toEqual(['fix']);
    expect(h.task('load')).toMatchObject({ state: 'waiting', wait: { kind: 'handler', handler: 'fix' }, error: boom });
    expect(h.task('after').state).toBe('pending');
    h.expectFoldMatches();

    h.now = 1_200;
    const fixed = h.succeed('fix', { repaired: true });
    expect(fixed.events).toEqual([
      { type: 'task_succeeded', at: 1_200, task: 'fix', attempt: 1, output: { repaired: true } },
      {
        type: 'task_succeeded',
        at: 1_200,
        task: 'load',
        attempt: 2,
        output: { repaired: true },
        recoveredBy: 'fix',
      },
      { type: 'tasks_queued', at: 1_200, tasks: ['after'] },
    ]);
    // The original error stays visible on the recovered task.
    expect(h.task('load')).toMatchObject({ state: 'succeeded', output: { repaired: true }, error: boom });
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('without recover, fails the task once the handler succeeded, naming the handler', () => {
    const h = new RunHarness(plan(guarded()));
    h.feed({ type: 'start' });
    h.fail('load', { code: 'VALIDATION', message: 'bad' });
    expect(h.task('load').state).toBe('waiting');
    const d = h.succeed('fix');
    expect(d.events[1]).toEqual({
      type: 'task_failed',
      at: NOW,
      task: 'load',
      error: { code: 'VALIDATION', message: 'bad' },
      handledBy: 'fix',
    });
    expect(h.task('after')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    expect(h.state.state).toBe('failed');
    expect(h.state.error?.message).toBe('1 task(s) failed: load');
    h.expectFoldMatches();
  });

  it('fails the task with its own error when the handler fails, and both count as failed', () => {
    const h = new RunHarness(plan(guarded({ recover: true })));
    h.feed({ type: 'start' });
    h.fail('load', { code: 'VALIDATION', message: 'bad' });
    h.fail('fix', { code: 'FIX_FAILED', message: 'could not fix' });
    expect(h.task('load')).toMatchObject({ state: 'failed', error: { code: 'VALIDATION' } });
    expect(h.state).toMatchObject({ state: 'failed', failedTasks: 3 });
    expect(h.state.error?.message).toBe('2 task(s) failed: load, fix');
    h.expectFoldMatches();
  });

  it('retries a failing handler by its own policy before giving up', () => {
    const h = new RunHarness(
      plan([
        { id: 'load', onFailure: { handler: 'fix', recover: true } },
        { id: 'fix', handles: 'load', retry: { maxAttempts: 2, backoffMs: 50 } },
      ]),
    );
    h.feed({ type: 'start' });
    h.fail('load');
    h.fail('fix');
    expect(h.task('fix').state).toBe('retrying');
    expect(h.task('load').state).toBe('waiting');
    h.now = NOW + 50;
    h.feed({ type: 'retry_due', task: 1 });
    h.startAttempt('fix');
    h.feed({ type: 'attempt_succeeded', task: 1, attempt: 2, output: 'ok' });
    expect(h.task('load')).toMatchObject({ state: 'succeeded', output: 'ok' });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('takes only the errors its selectors name, by code or by kind', () => {
    const cases: { on: string[]; error: TaskError; caught: boolean }[] = [
      { on: ['BOOM'], error: boom, caught: true },
      { on: ['OTHER'], error: boom, caught: false },
      { on: ['timeout'], error: { code: 'TASK_TIMEOUT', message: 'slow' }, caught: true },
      { on: ['timeout'], error: { code: 'X', kind: 'timeout', message: 'slow' }, caught: true },
      { on: ['timeout'], error: { code: 'VALIDATION', message: 'bad' }, caught: false },
      { on: ['validation', 'lost'], error: { code: 'VALIDATION', message: 'bad' }, caught: true },
      { on: ['error'], error: boom, caught: true },
      { on: [], error: { code: 'ANYTHING', message: '?' }, caught: true },
    ];
    for (const c of cases) {
      const h = new RunHarness(
        plan([
          { id: 'load', onFailure: { handler: 'fix', on: c.on } },
          { id: 'fix', handles: 'load' },
        ]),
      );
      h.feed({ type: 'start' });
      const d = h.fail('load', { ...c.error });
      if (c.caught) {
        expect(types(d.events), JSON.stringify(c)).toEqual(['attempt_failed', 'task_catching', 'tasks_queued']);
      } else {
        expect(h.task('load').state, JSON.stringify(c)).toBe('failed');
        expect(h.task('fix')).toMatchObject({ state: 'skipped', skipReason: 'not needed: load ended failed' });
      }
      h.expectFoldMatches();
    }
  });

  it('skips the handler as not needed when the task succeeds', () => {
    const h = new RunHarness(plan(guarded()));
    h.feed({ type: 'start' });
    const d = h.succeed('load');
    expect(d.events).toContainEqual({
      type: 'tasks_skipped',
      at: NOW,
      tasks: [{ task: 'fix', reason: 'not needed: load ended succeeded', upstreamFailed: false }],
    });
    h.succeed('after');
    expect(h.state).toMatchObject({ state: 'succeeded', failedTasks: 0 });
    h.expectFoldMatches();
  });

  it('settles what depends on a handler that was not needed', () => {
    const h = new RunHarness(plan(guarded({}, [{ id: 'notify', deps: ['fix'] }])));
    h.feed({ type: 'start' });
    h.succeed('load');
    h.succeed('after');
    expect(h.task('notify')).toMatchObject({ state: 'skipped', upstreamFailed: false });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs what depends on a handler once the handler ran', () => {
    const h = new RunHarness(plan(guarded({ recover: true }, [{ id: 'notify', deps: ['fix'] }])));
    h.feed({ type: 'start' });
    h.fail('load');
    h.now = 1_100;
    h.feed({ type: 'retry_due', task: 0 });
    h.fail('load');
    const d = h.succeed('fix');
    expect(h.dispatched(d).sort()).toEqual(['after', 'notify']);
    h.succeed('notify');
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('skips the handler when the task is cancelled, and cancels a running handler with its task', () => {
    const h = new RunHarness(plan(guarded()));
    h.feed({ type: 'start' });
    h.feed({ type: 'cancel', reason: 'stop', task: 0 });
    expect(h.task('fix')).toMatchObject({ state: 'skipped', skipReason: 'not needed: load ended cancelled' });
    h.expectFoldMatches();

    const k = new RunHarness(plan(guarded()));
    k.feed({ type: 'start' });
    k.fail('load', { code: 'VALIDATION', message: 'bad' });
    k.startAttempt('fix');
    const d = k.feed({ type: 'cancel', reason: 'stop', task: 0 });
    expect(d.events.find((e) => e.type === 'tasks_cancelled')).toEqual({
      type: 'tasks_cancelled',
      at: NOW,
      tasks: ['load', 'fix'],
      reason: 'stop',
    });
    expect(k.commands(d, 'abort')).toEqual([{ type: 'abort', task: 1, attempt: 1, reason: 'stop' }]);
    expect(k.state.state).toBe('failed');
    k.expectFoldMatches();
  });

  it('fails a task whose handler is cancelled on its own', () => {
    const h = new RunHarness(plan(guarded({ recover: true })));
    h.feed({ type: 'start' });
    h.fail('load', { code: 'VALIDATION', message: 'bad' });
    h.feed({ type: 'cancel', reason: 'no', task: 1 });
    expect(h.task('load')).toMatchObject({ state: 'failed', error: { code: 'VALIDATION' } });
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('does not catch once the run is being cancelled', () => {
    const h = new RunHarness(plan([...guarded(), { id: 'fin', finally: true }]));
    h.feed({ type: 'start' });
    h.feed({ type: 'cancel', reason: 'stop' });
    expect(h.states()).toMatchObject({ load: 'cancelled', fix: 'cancelled', fin: 'queued' });
    h.expectFoldMatches();
  });

  it('catches the failure of a map, whose handler recovers it', () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: {}, onFailure: { handler: 'fallback', recover: true } },
        { id: 'fallback', handles: 'm' },
        { id: 'after', deps: ['m'] },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1, 2]);
    h.succeed('m[0]');
    const d = h.fail('m[1]');
    expect(types(d.events)).toEqual(['attempt_failed', 'task_failed', 'task_catching', 'tasks_queued']);
    expect(h.task('m')).toMatchObject({ state: 'waiting', wait: { kind: 'handler', handler: 'fallback' } });
    expect(h.task('m').error?.code).toBe('MAP_ITEM_FAILED');
    h.expectFoldMatches();
    h.succeed('fallback', []);
    expect(h.task('m')).toMatchObject({ state: 'succeeded', output: [] });
    h.succeed('after');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('catches a race nobody won', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'b' },
        { id: 'r', race: { branches: ['a', 'b'], mode: 'all' }, onFailure: { handler: 'h', on: ['RACE_NO_WINNER'] } },
        { id: 'h', handles: 'r' },
      ]),
    );
    h.feed({ type: 'start' });
    h.fail('a');
    h.fail('b');
    expect(h.task('r').state).toBe('waiting');
    expect(h.task('h').state).toBe('queued');
    h.succeed('h');
    expect(h.task('r')).toMatchObject({ state: 'failed', error: { code: 'RACE_NO_WINNER' } });
    h.expectFoldMatches();
  });

  it('handles per item inside a map over a group, and a recovered item counts as a success', () => {
    const h = new RunHarness(
      plan([
        {
          id: 'm',
          map: {
            group: [
              { id: 'work', onFailure: { handler: 'fix', recover: true } },
              { id: 'fix', handles: 'work' },
            ],
          },
        },
      ]),
    );
    h.feed({ type: 'start' });
    const d = h.expand('m', [1, 2]);
    expect(h.dispatched(d)).toEqual(['m[0].work', 'm[1].work']);
    h.succeed('m[0].work', 'W0');
    expect(h.task('m[0].fix').state).toBe('skipped');
    h.fail('m[1].work');
    expect(h.task('m[1].fix').state).toBe('queued');
    h.succeed('m[1].fix', 'F1');
    expect(h.task('m')).toMatchObject({
      state: 'succeeded',
      output: [
        { work: 'W0', fix: null },
        { work: 'F1', fix: 'F1' },
      ],
    });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('finally', () => {
  it('starts only after every other task ended, and the run ends after it', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'cleanup', finally: true }]));
    const start = h.feed({ type: 'start' });
    expect(h.dispatched(start)).toEqual(['a']);
    h.succeed('a');
    expect(h.task('cleanup').state).toBe('pending');
    h.now = 2_000;
    const d = h.succeed('b');
    expect(d.events).toEqual([
      { type: 'task_succeeded', at: 2_000, task: 'b', attempt: 1, output: 'b-out' },
      { type: 'tasks_queued', at: 2_000, tasks: ['cleanup'] },
    ]);
    expect(h.dispatched(d)).toEqual(['cleanup']);
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
    const end = h.succeed('cleanup');
    expect(types(end.events)).toEqual(['task_succeeded', 'run_succeeded']);
    h.expectFoldMatches();
  });

  it('runs alone in a flow of only finally tasks, all at once', () => {
    const h = new RunHarness(
      plan([
        { id: 'f1', finally: true },
        { id: 'f2', finally: true },
      ]),
    );
    const d = h.feed({ type: 'start' });
    expect(h.dispatched(d)).toEqual(['f1', 'f2']);
    h.succeed('f1');
    h.succeed('f2');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs after a failure too; the run fails after it', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    const d = h.fail('a');
    expect(types(d.events)).toEqual(['attempt_failed', 'task_failed', 'tasks_skipped', 'tasks_queued']);
    h.succeed('cleanup');
    expect(h.state.state).toBe('failed');
    expect(h.state.error?.message).toBe('1 task(s) failed: a');
    h.expectFoldMatches();
  });

  it('is not cancelled by a run cancel: it runs once the rest is cancelled, and the run ends cancelled', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    h.startAttempt('a');
    h.now = 3_000;
    const d = h.feed({ type: 'cancel', reason: 'stop' });
    expect(d.events).toEqual([
      { type: 'cancel_requested', at: 3_000, reason: 'stop' },
      { type: 'tasks_cancelled', at: 3_000, tasks: ['a', 'b'], reason: 'stop' },
      { type: 'tasks_queued', at: 3_000, tasks: ['cleanup'] },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: 0, attempt: 1, reason: 'stop' },
      { type: 'dispatch', task: 2 },
    ]);
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
    h.now = 4_000;
    const end = h.succeed('cleanup');
    expect(end.events.at(-1)).toEqual({ type: 'run_cancelled', at: 4_000, reason: 'cancelled' });
    h.expectFoldMatches();
  });

  it('a second run cancel leaves a running finally task alone', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    h.feed({ type: 'cancel', reason: 'stop' });
    h.startAttempt('cleanup');
    const d = h.feed({ type: 'cancel', reason: 'stop again' });
    expect(d.commands).toEqual([]);
    expect(h.task('cleanup').state).toBe('running');
    h.succeed('cleanup');
    h.expectFoldMatches();
  });

  it('runs after a run timeout, and the run then fails with RUN_TIMEOUT', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    h.startAttempt('a');
    h.now = 60_000;
    const d = h.feed({ type: 'run_timeout' });
    expect(types(d.events)).toEqual(['cancel_requested', 'tasks_cancelled', 'tasks_queued']);
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
    h.now = 61_000;
    h.succeed('cleanup');
    expect(h.state).toMatchObject({ state: 'failed', error: { code: 'RUN_TIMEOUT' }, endedAt: 61_000 });
    h.expectFoldMatches();
  });

  it('is not retried once the run timed out or was cancelled, so the run ends', () => {
    for (const input of [{ type: 'cancel', reason: 'stop' } as const, { type: 'run_timeout' } as const]) {
      const h = new RunHarness(
        plan([{ id: 'a' }, { id: 'cleanup', finally: true, retry: { maxAttempts: 3, backoffMs: 5 } }]),
      );
      h.feed({ type: 'start' });
      h.feed(input);
      const d = h.fail('cleanup');
      expect(types(d.events)).toEqual([
        'attempt_failed',
        'task_failed',
        input.type === 'cancel' ? 'run_cancelled' : 'run_failed',
      ]);
      h.expectFoldMatches();
    }
  });

  it('fails an otherwise successful run when it fails', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    h.succeed('a');
    h.fail('cleanup');
    expect(h.state).toMatchObject({ state: 'failed', error: { message: '1 task(s) failed: cleanup' } });
    h.expectFoldMatches();
  });

  it('retries by its policy in an ordinary run', () => {
    const h = new RunHarness(
      plan([{ id: 'a' }, { id: 'cleanup', finally: true, retry: { maxAttempts: 2, backoffMs: 5 } }]),
    );
    h.feed({ type: 'start' });
    h.succeed('a');
    h.fail('cleanup');
    expect(h.task('cleanup').state).toBe('retrying');
    h.now = NOW + 5;
    h.feed({ type: 'retry_due', task: 1 });
    h.succeed('cleanup');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('waits for a map and its items, and for a handler', () => {
    const h = new RunHarness(
      plan([
        { id: 'm', map: {} },
        { id: 'load', onFailure: { handler: 'fix' } },
        { id: 'fix', handles: 'load' },
        { id: 'cleanup', finally: true },
      ]),
    );
    h.feed({ type: 'start' });
    h.expand('m', [1]);
    h.fail('load');
    expect(h.task('cleanup').state).toBe('pending');
    h.succeed('m[0]');
    expect(h.task('cleanup').state).toBe('pending');
    const d = h.succeed('fix');
    expect(h.dispatched(d)).toEqual(['cleanup']);
    h.succeed('cleanup');
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('runs again after a rerun', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', finally: true }]));
    h.feed({ type: 'start' });
    h.fail('a');
    h.succeed('cleanup', 'c1');
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['a', 'cleanup'] });
    expect(h.dispatched(d)).toEqual(['a']);
    const done = h.succeed('a');
    expect(h.dispatched(done)).toEqual(['cleanup']);
    h.succeed('cleanup', 'c2');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('is cancelled with the rest when a run is cancelled before it started', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', finally: true }]));
    const d = h.feed({ type: 'cancel', reason: 'never mind' });
    expect(d.events).toEqual([
      { type: 'cancel_requested', at: NOW, reason: 'never mind' },
      { type: 'tasks_cancelled', at: NOW, tasks: ['a', 'cleanup'], reason: 'never mind' },
      { type: 'run_cancelled', at: NOW, reason: 'cancelled' },
    ]);
    expect(h.state.state).toBe('cancelled');
    h.expectFoldMatches();
  });

  it('is never started by its trigger rule even with an upstream', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b' }, { id: 'cleanup', deps: ['a'], finally: true }]));
    h.feed({ type: 'start' });
    h.succeed('a');
    expect(h.task('cleanup').state).toBe('pending');
    const d = h.succeed('b');
    expect(h.dispatched(d)).toEqual(['cleanup']);
    h.expectFoldMatches();
  });
});

describe('retry by error kind', () => {
  it('retries the kinds retryOn names and fails other errors at once', () => {
    const h = new RunHarness(
      plan([
        { id: 'a', retry: { maxAttempts: 3, backoffMs: 10, retryOn: ['timeout', 'transient'] } },
        { id: 'b', retry: { maxAttempts: 3, backoffMs: 10, retryOn: ['timeout', 'transient'] } },
        { id: 'c', retry: { maxAttempts: 3, backoffMs: 10, retryOn: ['timeout', 'transient'] } },
      ]),
    );
    h.feed({ type: 'start' });
    h.fail('a', { code: 'TASK_TIMEOUT', message: 'slow' });
    h.fail('b', { code: 'HTTP_503', kind: 'transient', message: 'unavailable' });
    h.fail('c', boom);
    expect(h.states()).toEqual({ a: 'retrying', b: 'retrying', c: 'failed' });
    h.expectFoldMatches();
  });

  it('never retries the kinds neverRetryOn names', () => {
    const h = new RunHarness(plan([{ id: 'a', retry: { maxAttempts: 3, neverRetryOn: ['validation'] } }]));
    h.feed({ type: 'start' });
    h.fail('a', { code: 'BAD_ROW', kind: 'validation', message: 'row 3' });
    expect(h.task('a')).toMatchObject({ state: 'failed', attempt: 1 });
    h.expectFoldMatches();
  });

  it('retries a wait that timed out when retryOn names the timeout kind', () => {
    const h = new RunHarness(
      plan([{ id: 'w', kind: 'wait_for_event', retry: { maxAttempts: 2, backoffMs: 10, retryOn: ['timeout'] } }]),
    );
    h.feed({ type: 'start' });
    h.park('w', { kind: 'event', event: 'go', key: null, timeoutAt: 5_000 });
    h.now = 5_000;
    h.feed({ type: 'retry_due', task: 0 });
    expect(h.task('w')).toMatchObject({ state: 'retrying', error: { code: 'WAIT_TIMEOUT' } });
    h.expectFoldMatches();
  });
});
