import { describe, it, expect } from 'vitest';
import type { RunInput } from '../../src/core/run-machine.js';
import { createRunState, decide } from '../../src/core/run-machine.js';
import { boom, plan, RunHarness, seededRandom } from './fixtures.js';
import { thrown } from '../helpers/thrown.js';

const NOW = 1_000;

describe('start', () => {
  it('queues the root tasks and leaves the others pending', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c' }]));
    const d = h.feed({ type: 'start' });
    expect(d.events[0]).toEqual({ type: 'run_started', at: NOW });
    expect(d.events).toHaveLength(2);
    const queued = d.events[1];
    expect(queued?.type).toBe('tasks_queued');
    expect(queued?.type === 'tasks_queued' && [...queued.tasks].sort()).toEqual(['a', 'c']);
    expect(d.commands.map((c) => c.type === 'dispatch' && c.task).sort()).toEqual([0, 2]);
    expect(h.states()).toEqual({ a: 'queued', b: 'pending', c: 'queued' });
    expect(h.state.state).toBe('running');
    expect(h.state.startedAt).toBe(NOW);
    h.expectFoldMatches();
  });

  it('is ignored when the run already started', () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    h.feed({ type: 'start' });
    h.now = 2_000;
    const d = h.feed({ type: 'start' });
    expect(d.events).toEqual([]);
    expect(d.commands).toEqual([]);
    expect(h.state.startedAt).toBe(NOW);
    h.expectFoldMatches();
  });

  it('succeeds an empty flow at once', () => {
    const h = new RunHarness(plan([]));
    const d = h.feed({ type: 'start' });
    expect(d.events).toEqual([
      { type: 'run_started', at: NOW },
      { type: 'run_succeeded', at: NOW },
    ]);
    expect(d.commands).toEqual([{ type: 'finished', state: 'succeeded' }]);
    expect(h.state.state).toBe('succeeded');
    expect(h.state.endedAt).toBe(NOW);
    h.expectFoldMatches();
  });
});

describe('a chain of tasks', () => {
  it('runs each task after its upstream succeeds, then succeeds the run', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['b'] }]));
    h.feed({ type: 'start' });

    h.now = 1_100;
    const started = h.feed({ type: 'attempt_started', task: 0 });
    expect(started.events).toEqual([{ type: 'task_started', at: 1_100, task: 'a', attempt: 1 }]);
    expect([...started.touched]).toEqual([0]);

    h.now = 1_200;
    const done = h.feed({ type: 'attempt_succeeded', task: 0, attempt: 1, output: { rows: 3 } });
    expect(done.events).toEqual([
      { type: 'task_succeeded', at: 1_200, task: 'a', attempt: 1, output: { rows: 3 } },
      { type: 'tasks_queued', at: 1_200, tasks: ['b'] },
    ]);
    expect(done.commands).toEqual([{ type: 'dispatch', task: 1 }]);
    expect(h.task('a')).toMatchObject({ state: 'succeeded', output: { rows: 3 }, startedAt: 1_100, endedAt: 1_200 });
    h.expectFoldMatches();

    h.succeed('b');
    h.now = 2_000;
    const last = h.succeed('c');
    expect(last.events.slice(-1)).toEqual([{ type: 'run_succeeded', at: 2_000 }]);
    expect(last.commands).toEqual([{ type: 'finished', state: 'succeeded' }]);
    expect(h.states()).toEqual({ a: 'succeeded', b: 'succeeded', c: 'succeeded' });
    expect(h.state).toMatchObject({ state: 'succeeded', open: 0, failedTasks: 0, endedAt: 2_000, error: null });
    h.expectFoldMatches();
  });

  it('ignores every input once the run is finished', () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    h.feed({ type: 'start' });
    h.succeed('a');
    const late: RunInput[] = [
      { type: 'start' },
      { type: 'attempt_started', task: 0 },
      { type: 'attempt_succeeded', task: 0, attempt: 1, output: 1 },
      { type: 'attempt_failed', task: 0, attempt: 1, error: boom },
      { type: 'attempt_lost', task: 0, attempt: 1 },
      { type: 'retry_due', task: 0 },
      { type: 'cancel', reason: 'late' },
      { type: 'run_timeout' },
    ];
    for (const input of late) expect(h.feed(input).events).toEqual([]);
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('retries', () => {
  const retried = () =>
    new RunHarness(
      plan([
        { id: 'a', retry: { maxAttempts: 3, backoffMs: 1000, maxBackoffMs: 60_000, jitter: 'none' } },
        { id: 'b', deps: ['a'] },
      ]),
    );

  it('schedules a retry after a failed attempt, re-queues it when due, and fails the task when attempts run out', () => {
    const h = retried();
    h.feed({ type: 'start' });

    h.now = 5_000;
    const first = h.fail('a');
    expect(first.events).toEqual([
      { type: 'attempt_failed', at: 5_000, task: 'a', attempt: 1, error: boom, lost: false },
      { type: 'retry_scheduled', at: 5_000, task: 'a', dueAt: 6_000, delayMs: 1000 },
    ]);
    expect(first.commands).toEqual([{ type: 'arm_timer', task: 0, dueAt: 6_000 }]);
    expect(h.task('a')).toMatchObject({ state: 'retrying', retryAt: 6_000, failures: 1, error: boom });
    h.expectFoldMatches();

    h.now = 6_000;
    const due = h.feed({ type: 'retry_due', task: 0 });
    expect(due.events).toEqual([{ type: 'tasks_queued', at: 6_000, tasks: ['a'] }]);
    expect(due.commands).toEqual([{ type: 'dispatch', task: 0 }]);
    expect(h.task('a')).toMatchObject({ state: 'queued', retryAt: null });
    h.expectFoldMatches();

    const second = h.fail('a');
    expect(second.events.at(-1)).toEqual({
      type: 'retry_scheduled',
      at: 6_000,
      task: 'a',
      dueAt: 8_000,
      delayMs: 2000,
    });
    h.now = 8_000;
    h.feed({ type: 'retry_due', task: 0 });

    h.now = 9_000;
    const third = h.fail('a');
    expect(third.events).toEqual([
      { type: 'attempt_failed', at: 9_000, task: 'a', attempt: 3, error: boom, lost: false },
      { type: 'task_failed', at: 9_000, task: 'a', error: boom },
      {
        type: 'tasks_skipped',
        at: 9_000,
        tasks: [{ task: 'b', reason: 'upstream failed: a (trigger rule all_success)', upstreamFailed: true }],
      },
      {
        type: 'run_failed',
        at: 9_000,
        error: { code: 'TASK_FAILED', message: '1 task(s) failed: a', source: 'user' },
      },
    ]);
    expect(third.commands).toEqual([{ type: 'finished', state: 'failed' }]);
    expect(h.task('a')).toMatchObject({ state: 'failed', attempt: 3, failures: 3, startedAt: 5_000, endedAt: 9_000 });
    expect(h.state).toMatchObject({ state: 'failed', open: 0, failedTasks: 2 });
    h.expectFoldMatches();
  });

  it('draws the jitter from the injected random', () => {
    const h = new RunHarness(
      plan([{ id: 'a', retry: { maxAttempts: 2, backoffMs: 1000, maxBackoffMs: 60_000, jitter: 'full' } }]),
      7,
    );
    h.feed({ type: 'start' });
    const d = h.fail('a');
    const delayMs = Math.floor(seededRandom(7)() * 1000);
    expect(d.events.at(-1)).toEqual({ type: 'retry_scheduled', at: NOW, task: 'a', dueAt: NOW + delayMs, delayMs });
    h.expectFoldMatches();
  });

  it('does not retry an error the policy never retries', () => {
    const h = retried();
    h.feed({ type: 'start' });
    const d = h.fail('a', { code: 'VALIDATION', message: 'bad input' });
    expect(d.events.map((e) => e.type)).toEqual(['attempt_failed', 'task_failed', 'tasks_skipped', 'run_failed']);
    h.expectFoldMatches();
  });

  it('ignores a retry timer for a task that is not retrying', () => {
    const h = retried();
    h.feed({ type: 'start' });
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    expect(h.feed({ type: 'retry_due', task: 1 }).events).toEqual([]);
    h.expectFoldMatches();
  });
});

describe('trigger rules and skips', () => {
  it('skips all_success tasks downstream of a failure as upstream failed, transitively', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['b'] }]));
    h.feed({ type: 'start' });
    const d = h.fail('a');
    expect(d.events.find((e) => e.type === 'tasks_skipped')).toEqual({
      type: 'tasks_skipped',
      at: NOW,
      tasks: [
        { task: 'b', reason: 'upstream failed: a (trigger rule all_success)', upstreamFailed: true },
        { task: 'c', reason: 'upstream failed: b (trigger rule all_success)', upstreamFailed: true },
      ],
    });
    expect(h.task('c')).toMatchObject({ state: 'skipped', upstreamFailed: true, upFailed: 1 });
    expect(h.state).toMatchObject({ state: 'failed', failedTasks: 3 });
    h.expectFoldMatches();
  });

  it('runs a none_failed_min_one_success join after a skipped branch, and the run succeeds', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'on_error', deps: ['a'], rule: 'all_failed' },
        { id: 'after_error', deps: ['on_error'] },
        { id: 'main', deps: ['a'] },
        { id: 'join', deps: ['after_error', 'main'], rule: 'none_failed_min_one_success' },
      ]),
    );
    h.feed({ type: 'start' });
    const d = h.succeed('a');
    expect(d.events.find((e) => e.type === 'tasks_skipped')).toEqual({
      type: 'tasks_skipped',
      at: NOW,
      tasks: [
        {
          task: 'on_error',
          reason: 'upstream skipped or not matching trigger rule all_failed: a',
          upstreamFailed: false,
        },
        {
          task: 'after_error',
          reason: 'upstream skipped or not matching trigger rule all_success: on_error',
          upstreamFailed: false,
        },
      ],
    });
    expect(h.states()).toMatchObject({ main: 'queued', join: 'pending' });
    h.expectFoldMatches();

    const joined = h.succeed('main');
    expect(joined.events).toContainEqual({ type: 'tasks_queued', at: NOW, tasks: ['join'] });
    h.succeed('join');
    expect(h.state.state).toBe('succeeded');
    expect(h.task('after_error').skipReason).toBeTruthy();
    h.expectFoldMatches();
  });

  it('skips a none_failed_min_one_success join when every branch was skipped', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'x', deps: ['a'], rule: 'all_failed' },
        { id: 'y', deps: ['a'], rule: 'all_failed' },
        { id: 'join', deps: ['x', 'y'], rule: 'none_failed_min_one_success' },
      ]),
    );
    h.feed({ type: 'start' });
    h.succeed('a');
    expect(h.task('join')).toMatchObject({
      state: 'skipped',
      upstreamFailed: false,
      skipReason: 'upstream skipped or not matching trigger rule none_failed_min_one_success: x, y',
    });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs an all_done task after its upstream failed, and still fails the run', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'cleanup', deps: ['a'], rule: 'all_done' }]));
    h.feed({ type: 'start' });
    const d = h.fail('a');
    expect(d.events.at(-1)).toEqual({ type: 'tasks_queued', at: NOW, tasks: ['cleanup'] });
    expect(d.commands).toEqual([{ type: 'dispatch', task: 1 }]);
    h.expectFoldMatches();
    h.succeed('cleanup');
    expect(h.state.state).toBe('failed');
    expect(h.state.error?.message).toBe('1 task(s) failed: a');
    h.expectFoldMatches();
  });

  it('runs a one_success task at the first success without waiting for the rest', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b' }, { id: 'first', deps: ['a', 'b'], rule: 'one_success' }]));
    h.feed({ type: 'start' });
    h.startAttempt('b');
    const d = h.succeed('a');
    expect(d.events).toContainEqual({ type: 'tasks_queued', at: NOW, tasks: ['first'] });
    expect(h.states()).toEqual({ a: 'succeeded', b: 'running', first: 'queued' });
    h.expectFoldMatches();
    h.succeed('first');
    expect(h.state.state).toBe('running');
    h.feed({ type: 'attempt_failed', task: 1, attempt: 1, error: boom });
    expect(h.state.state).toBe('failed');
    expect(h.task('first').state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('runs a one_failed task at the first failure, and skips it when none failed', () => {
    const h = new RunHarness(
      plan([
        { id: 'a' },
        { id: 'b' },
        { id: 'alert', deps: ['a', 'b'], rule: 'one_failed' },
        { id: 'c' },
        { id: 'quiet', deps: ['c'], rule: 'one_failed' },
      ]),
    );
    h.feed({ type: 'start' });
    h.fail('a');
    expect(h.task('alert').state).toBe('queued');
    h.succeed('c');
    expect(h.task('quiet')).toMatchObject({
      state: 'skipped',
      upstreamFailed: false,
      skipReason: 'upstream skipped or not matching trigger rule one_failed: c',
    });
    h.expectFoldMatches();
  });

  it('names only the skipped upstream tasks, not the succeeded ones, when an all_success task is skipped', () => {
    const h = new RunHarness(
      plan([{ id: 'a' }, { id: 'on_error', deps: ['a'], rule: 'all_failed' }, { id: 'c', deps: ['a', 'on_error'] }]),
    );
    h.feed({ type: 'start' });
    h.succeed('a');
    expect(h.task('c').skipReason).toBe('upstream skipped or not matching trigger rule all_success: on_error');
    h.expectFoldMatches();
  });

  it('does not name an upstream-failed task as the reason an all_failed task is skipped', () => {
    const h = new RunHarness(
      plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c' }, { id: 'alert', deps: ['b', 'c'], rule: 'all_failed' }]),
    );
    h.feed({ type: 'start' });
    h.fail('a');
    expect(h.task('b')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    h.succeed('c');
    expect(h.task('alert').skipReason).toBe('upstream skipped or not matching trigger rule all_failed: c');
    h.expectFoldMatches();
  });

  it('runs an always task at once, before its upstream finishes', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'watch', deps: ['a'], rule: 'always' }]));
    h.feed({ type: 'start' });
    expect(h.states()).toEqual({ a: 'queued', watch: 'queued' });
    h.expectFoldMatches();
  });
});

describe('stale and lost attempts', () => {
  it('ignores a result for another attempt number or for a task that is not running', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b' }]));
    h.feed({ type: 'start' });
    expect(h.feed({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 'x' }).events).toEqual([]);
    expect(h.feed({ type: 'attempt_failed', task: 0, attempt: 1, error: boom }).events).toEqual([]);
    expect(h.feed({ type: 'attempt_lost', task: 0, attempt: 1 }).events).toEqual([]);
    h.startAttempt('a');
    expect(h.feed({ type: 'attempt_succeeded', task: 0, attempt: 2, output: 'x' }).events).toEqual([]);
    expect(h.feed({ type: 'attempt_failed', task: 0, attempt: 0, error: boom }).events).toEqual([]);
    expect(h.feed({ type: 'attempt_lost', task: 0, attempt: 7 }).events).toEqual([]);
    expect(h.task('a')).toMatchObject({ state: 'running', attempt: 1 });
    h.succeed('b');
    expect(h.feed({ type: 'attempt_succeeded', task: 1, attempt: 1, output: 'again' }).events).toEqual([]);
    expect(h.task('b').output).toBe('b-out');
    expect(h.feed({ type: 'attempt_started', task: 1 }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('re-queues a lost attempt without using up a retry, and fences the old attempt out', () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    h.feed({ type: 'start' });
    h.startAttempt('a');
    h.now = 3_000;
    const lost = h.feed({ type: 'attempt_lost', task: 0, attempt: 1 });
    expect(lost.events).toEqual([
      {
        type: 'attempt_failed',
        at: 3_000,
        task: 'a',
        attempt: 1,
        error: { code: 'WORKER_LOST', message: 'attempt 1 was lost with the process running it', source: 'baton' },
        lost: true,
      },
      { type: 'tasks_queued', at: 3_000, tasks: ['a'] },
    ]);
    expect(lost.commands).toEqual([{ type: 'dispatch', task: 0 }]);
    expect(h.task('a')).toMatchObject({ state: 'queued', failures: 0 });
    h.expectFoldMatches();

    expect(h.startAttempt('a')).toBe(2);
    expect(h.feed({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 'stale' }).events).toEqual([]);
    h.feed({ type: 'attempt_succeeded', task: 0, attempt: 2, output: 'fresh' });
    expect(h.task('a')).toMatchObject({ state: 'succeeded', output: 'fresh', error: null });
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('lost attempts counted by policy', () => {
  it('with countLost, a lost attempt uses up a retry and the last one fails the task', () => {
    const h = new RunHarness(plan([{ id: 'a', retry: { maxAttempts: 2, countLost: true, backoffMs: 100 } }]));
    h.feed({ type: 'start' });
    h.startAttempt('a');
    const first = h.feed({ type: 'attempt_lost', task: 0, attempt: 1 });
    expect(first.events.map((e) => e.type)).toEqual(['attempt_failed', 'retry_scheduled']);
    expect(first.events[0]).toMatchObject({ lost: false, error: { code: 'WORKER_LOST' } });
    expect(h.task('a')).toMatchObject({ state: 'retrying', failures: 1 });
    h.feed({ type: 'retry_due', task: 0 });
    h.startAttempt('a');
    const second = h.feed({ type: 'attempt_lost', task: 0, attempt: 2 });
    expect(second.events.map((e) => e.type)).toEqual(['attempt_failed', 'task_failed', 'run_failed']);
    h.expectFoldMatches();
  });
});

describe('cancellation', () => {
  it('cancels every open task, aborts the running ones and ends the run cancelled', () => {
    const h = new RunHarness(plan([{ id: 'done' }, { id: 'busy' }, { id: 'ready' }, { id: 'later', deps: ['busy'] }]));
    h.feed({ type: 'start' });
    h.succeed('done');
    h.startAttempt('busy');
    h.now = 4_000;
    const d = h.feed({ type: 'cancel', reason: 'stopped by alice' });
    expect(d.events).toEqual([
      { type: 'cancel_requested', at: 4_000, reason: 'stopped by alice' },
      { type: 'tasks_cancelled', at: 4_000, tasks: ['busy', 'ready', 'later'], reason: 'stopped by alice' },
      { type: 'run_cancelled', at: 4_000, reason: 'cancelled' },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: 1, attempt: 1, reason: 'stopped by alice' },
      { type: 'finished', state: 'cancelled' },
    ]);
    expect(h.states()).toEqual({ done: 'succeeded', busy: 'cancelled', ready: 'cancelled', later: 'cancelled' });
    expect(h.task('later').error).toEqual({ code: 'TASK_CANCELLED', message: 'stopped by alice', source: 'user' });
    expect(h.state).toMatchObject({ state: 'cancelled', cancelRequested: true, open: 0, endedAt: 4_000 });
    h.expectFoldMatches();
    expect(h.feed({ type: 'attempt_succeeded', task: 1, attempt: 1, output: 1 }).events).toEqual([]);
  });

  it('cancels a run that never started', () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    const d = h.feed({ type: 'cancel', reason: 'no longer needed' });
    expect(d.events.map((e) => e.type)).toEqual(['cancel_requested', 'tasks_cancelled', 'run_cancelled']);
    expect(h.state.state).toBe('cancelled');
    h.expectFoldMatches();
  });

  it('cancels one task, settles its downstream, and lets the rest of the run go on', () => {
    const h = new RunHarness(
      plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'cleanup', deps: ['a'], rule: 'all_done' }, { id: 'other' }]),
    );
    h.feed({ type: 'start' });
    h.startAttempt('a');
    const d = h.feed({ type: 'cancel', reason: 'too slow', task: 0 });
    expect(d.events).toEqual([
      { type: 'cancel_requested', at: NOW, reason: 'too slow', task: 'a' },
      { type: 'tasks_cancelled', at: NOW, tasks: ['a'], reason: 'too slow' },
      {
        type: 'tasks_skipped',
        at: NOW,
        tasks: [{ task: 'b', reason: 'upstream failed: a (trigger rule all_success)', upstreamFailed: true }],
      },
      { type: 'tasks_queued', at: NOW, tasks: ['cleanup'] },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: 0, attempt: 1, reason: 'too slow' },
      { type: 'dispatch', task: 2 },
    ]);
    expect(h.state).toMatchObject({ state: 'running', cancelRequested: false });
    h.expectFoldMatches();

    expect(h.feed({ type: 'cancel', reason: 'again', task: 0 }).events).toEqual([]);
    h.succeed('cleanup');
    h.succeed('other');
    expect(h.state.state).toBe('failed');
    expect(h.state.error?.message).toBe('1 task(s) failed: a');
    h.expectFoldMatches();
  });

  it('cancels a retrying task, and its retry timer then does nothing', () => {
    const h = new RunHarness(plan([{ id: 'a', retry: { maxAttempts: 2 } }, { id: 'b' }]));
    h.feed({ type: 'start' });
    h.fail('a');
    expect(h.task('a').state).toBe('retrying');
    const d = h.feed({ type: 'cancel', reason: 'give up', task: 0 });
    expect(d.commands).toEqual([]);
    expect(h.task('a')).toMatchObject({ state: 'cancelled', retryAt: null, error: boom });
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('fails the run with RUN_TIMEOUT on a run timeout', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }]));
    h.feed({ type: 'start' });
    h.startAttempt('a');
    h.now = 60_000;
    const d = h.feed({ type: 'run_timeout' });
    expect(d.events).toEqual([
      { type: 'cancel_requested', at: 60_000, reason: 'run timeout', timeout: true },
      { type: 'tasks_cancelled', at: 60_000, tasks: ['a', 'b'], reason: 'run timeout' },
      {
        type: 'run_failed',
        at: 60_000,
        error: { code: 'RUN_TIMEOUT', message: 'run run-1 exceeded its timeout', source: 'user' },
      },
    ]);
    expect(d.commands).toEqual([
      { type: 'abort', task: 0, attempt: 1, reason: 'run timeout' },
      { type: 'finished', state: 'failed' },
    ]);
    expect(h.state).toMatchObject({ state: 'failed', timedOut: true });
    h.expectFoldMatches();
  });
});

describe('rerun', () => {
  /** a succeeds, b fails, c is skipped: a finished, failed run. */
  const failedRun = () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }, { id: 'c', deps: ['b'] }, { id: 'd' }]));
    h.feed({ type: 'start' });
    h.succeed('a', { n: 1 });
    h.succeed('d', 'd1');
    h.fail('b');
    expect(h.state.state).toBe('failed');
    return h;
  };

  it("'failed' resets only tasks that did not succeed and keeps the outputs of those that did", () => {
    const h = failedRun();
    h.now = 10_000;
    const d = h.feed({ type: 'rerun', mode: 'failed' });
    expect(d.events).toEqual([
      { type: 'run_retried', at: 10_000, tasks: ['b', 'c'] },
      { type: 'tasks_queued', at: 10_000, tasks: ['b'] },
    ]);
    expect(d.commands).toEqual([{ type: 'dispatch', task: 1 }]);
    expect(h.states()).toEqual({ a: 'succeeded', b: 'queued', c: 'pending', d: 'succeeded' });
    expect(h.task('a').output).toEqual({ n: 1 });
    expect(h.task('b')).toMatchObject({ error: null, failures: 0, attempt: 1 });
    expect(h.task('c')).toMatchObject({ skipReason: null, upstreamFailed: false, upSucceeded: 0, upFailed: 0 });
    expect(h.state).toMatchObject({ state: 'running', open: 2, failedTasks: 0, endedAt: null, error: null });
    h.expectFoldMatches();

    expect(h.startAttempt('b')).toBe(2);
    h.feed({ type: 'attempt_succeeded', task: 1, attempt: 2, output: 'b2' });
    h.succeed('c');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'tasks' with downstream resets the tasks and everything after them", () => {
    const h = failedRun();
    const d = h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: true });
    expect(d.events[0]).toEqual({ type: 'run_retried', at: NOW, tasks: ['a', 'b', 'c'] });
    expect(h.states()).toEqual({ a: 'queued', b: 'pending', c: 'pending', d: 'succeeded' });
    expect(h.task('a').output).toBeUndefined();
    expect(h.task('d').output).toBe('d1');
    h.expectFoldMatches();
    h.succeed('a');
    h.succeed('b');
    h.succeed('c');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it("'tasks' without downstream reruns only the named tasks of a succeeded run", () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }]));
    h.feed({ type: 'start' });
    h.succeed('a', 'a1');
    h.succeed('b', 'b1');
    h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: false });
    expect(h.states()).toEqual({ a: 'queued', b: 'succeeded' });
    h.succeed('a', 'a2');
    expect(h.state.state).toBe('succeeded');
    expect(h.task('a').output).toBe('a2');
    expect(h.task('b').output).toBe('b1');
    h.expectFoldMatches();
  });

  it("'tasks' without downstream leaves a dependant skipped for the old failure, and the run error names it", () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }]));
    h.feed({ type: 'start' });
    h.fail('a');
    h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: false });
    h.succeed('a');
    expect(h.states()).toEqual({ a: 'succeeded', b: 'skipped' });
    expect(h.state.state).toBe('failed');
    expect(h.state.error).toEqual({
      code: 'TASK_FAILED',
      message: '1 task(s) skipped because an upstream task failed: b',
      source: 'user',
    });
    h.expectFoldMatches();
  });

  it('refuses to rerun a run that is still running, and changes nothing', () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    h.feed({ type: 'start' });
    const error = thrown(() => h.feed({ type: 'rerun', mode: 'failed' }));
    expect(error.code).toBe('RUN_NOT_RETRYABLE');
    expect(error.message).toBe('run run-1 is running; only a finished run can be retried');
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
  });

  it("refuses a 'failed' rerun of a run where every task succeeded", () => {
    const h = new RunHarness(plan([{ id: 'a' }]));
    h.feed({ type: 'start' });
    h.succeed('a');
    const error = thrown(() => h.feed({ type: 'rerun', mode: 'failed' }));
    expect(error.code).toBe('RUN_NOT_RETRYABLE');
    expect(error.hint).toBe('Use --task <id> to run a succeeded task again.');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });

  it('reruns a cancelled run', () => {
    const h = new RunHarness(plan([{ id: 'a' }, { id: 'b', deps: ['a'] }]));
    h.feed({ type: 'start' });
    h.feed({ type: 'cancel', reason: 'pause' });
    h.feed({ type: 'rerun', mode: 'failed' });
    expect(h.state).toMatchObject({ state: 'running', cancelRequested: false });
    expect(h.states()).toEqual({ a: 'queued', b: 'pending' });
    h.succeed('a');
    h.succeed('b');
    expect(h.state.state).toBe('succeeded');
    h.expectFoldMatches();
  });
});

describe('decide', () => {
  it('is deterministic: the same inputs, clock and seed give the same events', () => {
    const p = plan([
      { id: 'a', retry: { maxAttempts: 3, jitter: 'full' } },
      { id: 'b', deps: ['a'] },
    ]);
    const script = (seed: number) => {
      const run = createRunState('r', p);
      const random = seededRandom(seed);
      const inputs: RunInput[] = [
        { type: 'start' },
        { type: 'attempt_started', task: 0 },
        { type: 'attempt_failed', task: 0, attempt: 1, error: boom },
      ];
      return inputs.flatMap((input, k) => decide(run, input, 100 * k, random).events);
    };
    expect(script(3)).toEqual(script(3));
  });
});
