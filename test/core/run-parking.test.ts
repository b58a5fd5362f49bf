/**
 * Parking tasks in the run machine: timers, events (signals), approvals and child runs.
 * A parked task holds no slot; a durable timer ends its wait, a signal, a decision or a
 * child's end wakes it, and a timeout fails the attempt under the task's retry policy.
 */
import { describe, it, expect } from 'vitest';
import type { RunInput } from '../../src/core/run-machine.js';
import type { TaskDef } from './fixtures.js';
import { plan, RunHarness } from './fixtures.js';

const NOW = 1_000;

const one = (def: Omit<TaskDef, 'id'>, extra: TaskDef[] = []): RunHarness =>
  new RunHarness(plan([{ id: 'w', ...def }, { id: 'after', deps: ['w'] }, ...extra]));

function signal(id: string, event: string, key: string | null = null, data: unknown = { id }): RunInput {
  return { type: 'signal', id, event, key, data, by: 'alice' };
}

describe('timer waits', () => {
  it('parks until the timer is due, then succeeds and moves on downstream', () => {
    const h = one({ kind: 'sleep' });
    h.feed({ type: 'start' });
    h.startAttempt('w');
    const d = h.feed({ type: 'attempt_parked', task: 0, attempt: 1, wait: { kind: 'timer', until: 5_000 } });
    expect(d.events).toEqual([
      { type: 'task_waiting', at: NOW, task: 'w', attempt: 1, wait: { kind: 'timer', until: 5_000 } },
    ]);
    expect(d.commands).toEqual([{ type: 'arm_timer', task: 0, dueAt: 5_000 }]);
    expect(h.task('w')).toMatchObject({ state: 'waiting', retryAt: 5_000, wait: { kind: 'timer', until: 5_000 } });
    h.expectFoldMatches();

    // A timer that fires early (a clock skew, a replayed row) changes nothing.
    h.now = 4_999;
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    h.now = 5_000;
    const due = h.feed({ type: 'retry_due', task: 0 });
    expect(due.events).toEqual([
      { type: 'task_succeeded', at: 5_000, task: 'w', attempt: 1, output: { until: 5_000 } },
      { type: 'tasks_queued', at: 5_000, tasks: ['after'] },
    ]);
    expect(h.task('w')).toMatchObject({ state: 'succeeded', retryAt: null, wait: null, endedAt: 5_000 });
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('succeeds at once when the time already passed', () => {
    for (const until of [NOW, NOW - 1]) {
      const h = one({ kind: 'wait_until' });
      h.feed({ type: 'start' });
      const d = h.park('w', { kind: 'timer', until });
      expect(d.events[0]).toEqual({ type: 'task_succeeded', at: NOW, task: 'w', attempt: 1, output: { until } });
      expect(h.commands(d, 'arm_timer')).toEqual([]);
      expect(h.task('after').state).toBe('queued');
      h.expectFoldMatches();
    }
  });

  it('ignores a park for a stale attempt or a task that is not running', () => {
    const h = one({ kind: 'sleep' });
    h.feed({ type: 'start' });
    expect(
      h.feed({ type: 'attempt_parked', task: 0, attempt: 1, wait: { kind: 'timer', until: 9_000 } }).events,
    ).toEqual([]);
    h.startAttempt('w');
    expect(
      h.feed({ type: 'attempt_parked', task: 0, attempt: 2, wait: { kind: 'timer', until: 9_000 } }).events,
    ).toEqual([]);
    h.feed({ type: 'attempt_parked', task: 0, attempt: 1, wait: { kind: 'timer', until: 9_000 } });
    expect(
      h.feed({ type: 'attempt_parked', task: 0, attempt: 1, wait: { kind: 'timer', until: 2_000 } }).events,
    ).toEqual([]);
    expect(h.task('w').retryAt).toBe(9_000);
    h.expectFoldMatches();
  });

  it('is cancelled without an abort, and its timer then does nothing', () => {
    const h = one({ kind: 'sleep' });
    h.feed({ type: 'start' });
    h.park('w', { kind: 'timer', until: 5_000 });
    const d = h.feed({ type: 'cancel', reason: 'stop', task: 0 });
    expect(d.commands).toEqual([{ type: 'finished', state: 'failed' }]);
    expect(h.task('w')).toMatchObject({ state: 'cancelled', wait: null, retryAt: null });
    h.now = 5_000;
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });
});

describe('event waits', () => {
  const eventWait = (key: string | null = null, timeoutAt: number | null = null) =>
    ({ kind: 'event', event: 'file_ready', key, timeoutAt }) as const;

  it('wakes on a matching signal with its data as the output', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    const parked = h.park('w', eventWait('day-1', 60_000));
    expect(parked.commands).toEqual([{ type: 'arm_timer', task: 0, dueAt: 60_000 }]);
    h.expectFoldMatches();

    expect(h.feed(signal('s0', 'other_event', 'day-1')).events.map((e) => e.type)).toEqual(['signal_received']);
    expect(h.feed(signal('s1', 'file_ready', 'day-2')).events.map((e) => e.type)).toEqual(['signal_received']);
    expect(h.task('w').state).toBe('waiting');
    h.now = 2_000;
    const d = h.feed(signal('s2', 'file_ready', 'day-1', { path: '/x' }));
    expect(d.events).toEqual([
      {
        type: 'signal_received',
        at: 2_000,
        id: 's2',
        event: 'file_ready',
        key: 'day-1',
        data: { path: '/x' },
        by: 'alice',
      },
      { type: 'task_succeeded', at: 2_000, task: 'w', attempt: 1, output: { path: '/x' }, signal: 's2' },
      { type: 'tasks_queued', at: 2_000, tasks: ['after'] },
    ]);
    expect(h.state.signals.map((s) => [s.id, s.consumed])).toEqual([
      ['s0', false],
      ['s1', false],
      ['s2', true],
    ]);
    // The timeout timer is now stale.
    h.now = 60_000;
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('a wait with key null takes a signal with any key', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    h.park('w', eventWait(null));
    h.feed(signal('s1', 'file_ready', 'whatever'));
    expect(h.task('w')).toMatchObject({ state: 'succeeded', output: { id: 's1' } });
    h.expectFoldMatches();
  });

  it('a keyed wait does not take a signal without a key', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    h.park('w', eventWait('k'));
    h.feed(signal('s1', 'file_ready', null));
    expect(h.task('w').state).toBe('waiting');
    h.expectFoldMatches();
  });

  it('wakes every waiting task that matches one signal', () => {
    const h = new RunHarness(
      plan([
        { id: 'w1', kind: 'wait_for_event' },
        { id: 'w2', kind: 'wait_for_event' },
        { id: 'w3', kind: 'wait_for_event' },
      ]),
    );
    h.feed({ type: 'start' });
    h.park('w1', eventWait(null));
    h.park('w2', eventWait('k1'));
    h.park('w3', eventWait('k2'));
    const d = h.feed(signal('s1', 'file_ready', 'k1', 7));
    expect(
      d.events.filter((e) => e.type === 'task_succeeded').map((e) => e.type === 'task_succeeded' && e.task),
    ).toEqual(['w1', 'w2']);
    expect(h.task('w3').state).toBe('waiting');
    h.expectFoldMatches();
  });

  it('buffers a signal sent before the task waits, and the task consumes it when it parks', () => {
    const h = one({ kind: 'wait_for_event' }, [{ id: 'w2', kind: 'wait_for_event' }]);
    h.feed({ type: 'start' });
    h.now = 1_500;
    h.feed(signal('early', 'file_ready', 'day-1', 'payload'));
    expect(h.state.signals).toMatchObject([{ id: 'early', consumed: false }]);
    h.expectFoldMatches();

    h.now = 2_000;
    const d = h.park('w', eventWait('day-1', 90_000));
    expect(d.events).toEqual([
      { type: 'task_succeeded', at: 2_000, task: 'w', attempt: 1, output: 'payload', signal: 'early' },
      { type: 'tasks_queued', at: 2_000, tasks: ['after'] },
    ]);
    expect(h.commands(d, 'arm_timer')).toEqual([]);
    expect(h.state.signals).toMatchObject([{ id: 'early', consumed: true }]);
    h.expectFoldMatches();

    // Consumed: the next task to wait for the same event waits for a new one.
    h.park('w2', eventWait('day-1'));
    expect(h.task('w2').state).toBe('waiting');
    h.feed(signal('late', 'file_ready', 'day-1', 'second'));
    expect(h.task('w2')).toMatchObject({ state: 'succeeded', output: 'second' });
    h.expectFoldMatches();
  });

  it('takes the oldest buffered signal first', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    h.feed(signal('s1', 'file_ready', null, 1));
    h.feed(signal('s2', 'file_ready', null, 2));
    h.park('w', eventWait(null));
    expect(h.task('w').output).toBe(1);
    expect(h.state.signals.map((s) => s.consumed)).toEqual([true, false]);
    h.expectFoldMatches();
  });

  it('ignores a signal whose id it has seen', () => {
    const h = one({ kind: 'wait_for_event' }, [{ id: 'w2', kind: 'wait_for_event' }]);
    h.feed({ type: 'start' });
    h.park('w', eventWait(null));
    h.feed(signal('s1', 'file_ready', null, 'first'));
    h.park('w2', eventWait(null));
    // Delivered twice (a retried HTTP call): the second copy must not wake w2.
    expect(h.feed(signal('s1', 'file_ready', null, 'first')).events).toEqual([]);
    expect(h.task('w2').state).toBe('waiting');
    expect(h.state.signals).toHaveLength(1);
    h.expectFoldMatches();
  });

  it('fails the attempt with WAIT_TIMEOUT when the timeout is due, and the retry policy applies', () => {
    const h = one({ kind: 'wait_for_event', retry: { maxAttempts: 2, backoffMs: 1_000 } });
    h.feed({ type: 'start' });
    h.park('w', eventWait('day-1', 10_000));
    h.now = 10_000;
    const d = h.feed({ type: 'retry_due', task: 0 });
    expect(d.events).toEqual([
      {
        type: 'attempt_failed',
        at: 10_000,
        task: 'w',
        attempt: 1,
        error: {
          code: 'WAIT_TIMEOUT',
          message: 'no event "file_ready" with key "day-1" arrived in time',
          source: 'user',
          hint: "Send it with: baton signal run-1 file_ready --data '<json>'",
        },
        lost: false,
      },
      { type: 'retry_scheduled', at: 10_000, task: 'w', dueAt: 11_000, delayMs: 1_000 },
    ]);
    expect(d.commands).toEqual([{ type: 'arm_timer', task: 0, dueAt: 11_000 }]);
    expect(h.task('w')).toMatchObject({ state: 'retrying', wait: null, retryAt: 11_000, failures: 1 });
    h.expectFoldMatches();

    // A signal while retrying is buffered; the second attempt takes it as it parks.
    h.feed(signal('s1', 'file_ready', 'day-1', 'ok'));
    expect(h.task('w').state).toBe('retrying');
    h.now = 11_000;
    h.feed({ type: 'retry_due', task: 0 });
    expect(h.startAttempt('w')).toBe(2);
    h.feed({ type: 'attempt_parked', task: 0, attempt: 2, wait: eventWait('day-1', 20_000) });
    expect(h.task('w')).toMatchObject({ state: 'succeeded', output: 'ok' });
    h.expectFoldMatches();
  });

  it('fails the task with WAIT_TIMEOUT when no retry is left', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    h.park('w', eventWait(null, 10_000));
    h.now = 10_000;
    h.feed({ type: 'retry_due', task: 0 });
    expect(h.task('w')).toMatchObject({ state: 'failed', error: { code: 'WAIT_TIMEOUT' } });
    expect(h.task('w').error?.message).toBe('no event "file_ready" arrived in time');
    expect(h.task('after')).toMatchObject({ state: 'skipped', upstreamFailed: true });
    expect(h.state.state).toBe('failed');
    h.expectFoldMatches();
  });

  it('waits forever without a timeout, and arms no timer', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    const d = h.park('w', eventWait(null, null));
    expect(d.commands).toEqual([]);
    expect(h.task('w').retryAt).toBeNull();
    h.now = 10_000_000;
    expect(h.feed({ type: 'retry_due', task: 0 }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('keeps received signals across a rerun and does not replay consumed ones', () => {
    const h = one({ kind: 'wait_for_event' });
    h.feed({ type: 'start' });
    h.park('w', eventWait(null));
    h.feed(signal('s1', 'file_ready', null, 'one'));
    h.fail('after');
    h.feed({ type: 'rerun', mode: 'tasks', tasks: [0], downstream: true });
    h.park('w', eventWait(null));
    expect(h.task('w').state).toBe('waiting');
    h.feed(signal('s2', 'file_ready', null, 'two'));
    expect(h.task('w').output).toBe('two');
    h.expectFoldMatches();
  });
});

describe('approval waits', () => {
  const approval = (approvers: readonly string[] = [], timeoutAt: number | null = null) =>
    ({ kind: 'approval', timeoutAt, approvers }) as const;

  it('succeeds on an approval with who, what they said and when', () => {
    const h = one({ kind: 'approval' });
    h.feed({ type: 'start' });
    h.park('w', approval());
    h.now = 3_000;
    const d = h.feed({ type: 'decision', task: 0, approved: true, by: 'bob', comment: 'lgtm' });
    expect(d.events).toEqual([
      { type: 'approval_decided', at: 3_000, task: 'w', approved: true, by: 'bob', comment: 'lgtm' },
      {
        type: 'task_succeeded',
        at: 3_000,
        task: 'w',
        attempt: 1,
        output: { approved: true, by: 'bob', comment: 'lgtm', at: 3_000 },
      },
      { type: 'tasks_queued', at: 3_000, tasks: ['after'] },
    ]);
    // A second decision has nothing left to decide.
    expect(h.feed({ type: 'decision', task: 0, approved: false, by: 'bob', comment: null }).events).toEqual([]);
    h.expectFoldMatches();
  });

  it('fails with APPROVAL_REJECTED on a rejection and does not retry it', () => {
    const h = one({ kind: 'approval', retry: { maxAttempts: 3 } });
    h.feed({ type: 'start' });
    h.park('w', approval());
    const d = h.feed({ type: 'decision', task: 0, approved: false, by: 'carol', comment: 'not today' });
    expect(d.events.map((e) => e.type)).toEqual([
      'approval_decided',
      'attempt_failed',
      'task_failed',
      'tasks_skipped',
      'run_failed',
    ]);
    expect(h.task('w')).toMatchObject({
      state: 'failed',
      error: {
        code: 'APPROVAL_REJECTED',
        kind: 'rejected',
        message: 'carol rejected w: not today',
        details: { by: 'carol', comment: 'not today' },
      },
    });
    h.expectFoldMatches();
  });

  it('does not retry a rejection even under a policy that retries everything', () => {
    const h = one({ kind: 'approval', retry: { maxAttempts: 3, neverRetryOn: [] } });
    h.feed({ type: 'start' });
    h.park('w', approval());
    h.feed({ type: 'decision', task: 0, approved: false, by: 'carol', comment: null });
    expect(h.task('w')).toMatchObject({ state: 'failed', error: { message: 'carol rejected w' } });
    h.expectFoldMatches();
  });

  it('ignores a decision from someone who is not an approver', () => {
    const h = one({ kind: 'approval' });
    h.feed({ type: 'start' });
    h.park('w', approval(['alice', 'bob']));
    expect(h.feed({ type: 'decision', task: 0, approved: true, by: 'mallory', comment: null }).events).toEqual([]);
    expect(h.task('w').state).toBe('waiting');
    h.feed({ type: 'decision', task: 0, approved: true, by: 'bob', comment: null });
    expect(h.task('w').output).toMatchObject({ approved: true, by: 'bob' });
    h.expectFoldMatches();
  });

  it('ignores a decision for a task that is not waiting for one', () => {
    const h = one({ kind: 'approval' }, [{ id: 'sleepy', kind: 'sleep' }]);
    h.feed({ type: 'start' });
    expect(h.feed({ type: 'decision', task: 0, approved: true, by: 'bob', comment: null }).events).toEqual([]);
    h.park('sleepy', { kind: 'timer', until: 99_000 });
    expect(
      h.feed({ type: 'decision', task: h.index('sleepy'), approved: true, by: 'bob', comment: null }).events,
    ).toEqual([]);
    h.expectFoldMatches();
  });

  it('fails the attempt with APPROVAL_TIMEOUT when nobody decided in time, and retries by policy', () => {
    const h = one({ kind: 'approval', retry: { maxAttempts: 2, backoffMs: 100 } });
    h.feed({ type: 'start' });
    h.park('w', approval([], 50_000));
    h.now = 50_000;
    const d = h.feed({ type: 'retry_due', task: 0 });
    expect(d.events[0]).toMatchObject({
      type: 'attempt_failed',
      error: { code: 'APPROVAL_TIMEOUT', message: 'nobody approved or rejected w in time' },
    });
    expect(h.task('w').state).toBe('retrying');
    h.now = 50_100;
    h.feed({ type: 'retry_due', task: 0 });
    h.startAttempt('w');
    h.feed({ type: 'attempt_parked', task: 0, attempt: 2, wait: approval([], 60_000) });
    h.now = 60_000;
    h.feed({ type: 'retry_due', task: 0 });
    expect(h.task('w')).toMatchObject({ state: 'failed', attempt: 2, error: { code: 'APPROVAL_TIMEOUT' } });
    h.expectFoldMatches();
  });
});

describe('child run waits', () => {
  const child = (runId = 'child-1', timeoutAt: number | null = null) => ({ kind: 'run', runId, timeoutAt }) as const;

  it("succeeds with the child's output when it succeeded", () => {
    const h = one({ kind: 'subflow' });
    h.feed({ type: 'start' });
    h.park('w', child());
    expect(h.task('w').wait).toEqual(child());
    const d = h.feed({
      type: 'child_finished',
      task: 0,
      runId: 'child-1',
      state: 'succeeded',
      output: { total: 3 },
      error: null,
    });
    expect(d.events[0]).toEqual({ type: 'task_succeeded', at: NOW, task: 'w', attempt: 1, output: { total: 3 } });
    h.expectFoldMatches();
  });

  it('ignores the end of another child run, or of a child once the task moved on', () => {
    const h = one({ kind: 'subflow' });
    h.feed({ type: 'start' });
    h.park('w', child('child-2'));
    const stale: RunInput = {
      type: 'child_finished',
      task: 0,
      runId: 'child-1',
      state: 'succeeded',
      output: 1,
      error: null,
    };
    expect(h.feed(stale).events).toEqual([]);
    expect(h.task('w').state).toBe('waiting');
    h.expectFoldMatches();
  });

  it('fails the attempt with SUBFLOW_FAILED, and a retry starts a new attempt (a new child)', () => {
    const h = one({ kind: 'subflow', retry: { maxAttempts: 2, backoffMs: 10 } });
    h.feed({ type: 'start' });
    h.park('w', child('child-1'));
    const childError = { code: 'TASK_FAILED', message: '1 task(s) failed: load', source: 'user' } as const;
    const d = h.feed({
      type: 'child_finished',
      task: 0,
      runId: 'child-1',
      state: 'failed',
      output: null,
      error: childError,
    });
    expect(d.events[0]).toEqual({
      type: 'attempt_failed',
      at: NOW,
      task: 'w',
      attempt: 1,
      error: {
        code: 'SUBFLOW_FAILED',
        message: 'child run child-1 failed: 1 task(s) failed: load',
        source: 'user',
        details: { runId: 'child-1', state: 'failed', error: childError },
      },
      lost: false,
    });
    expect(h.task('w').state).toBe('retrying');
    h.now = NOW + 10;
    h.feed({ type: 'retry_due', task: 0 });
    expect(h.startAttempt('w')).toBe(2);
    h.feed({ type: 'attempt_parked', task: 0, attempt: 2, wait: child('child-2') });
    // The first child's end (a duplicate delivery) no longer applies.
    expect(
      h.feed({ type: 'child_finished', task: 0, runId: 'child-1', state: 'failed', output: null, error: null }).events,
    ).toEqual([]);
    h.feed({ type: 'child_finished', task: 0, runId: 'child-2', state: 'succeeded', output: 'ok', error: null });
    expect(h.task('w')).toMatchObject({ state: 'succeeded', output: 'ok', attempt: 2 });
    expect(h.state.state).toBe('running');
    h.expectFoldMatches();
  });

  it('fails with SUBFLOW_FAILED when the child was cancelled', () => {
    const h = one({ kind: 'subflow' });
    h.feed({ type: 'start' });
    h.park('w', child());
    h.feed({ type: 'child_finished', task: 0, runId: 'child-1', state: 'cancelled', output: null, error: null });
    expect(h.task('w').error).toMatchObject({ code: 'SUBFLOW_FAILED', message: 'child run child-1 cancelled' });
    h.expectFoldMatches();
  });

  it('cancels the child when the task is cancelled', () => {
    const h = one({ kind: 'subflow' });
    h.feed({ type: 'start' });
    h.park('w', child());
    const d = h.feed({ type: 'cancel', reason: 'not needed', task: 0 });
    expect(h.commands(d, 'cancel_child')).toEqual([
      { type: 'cancel_child', task: 0, runId: 'child-1', reason: 'not needed' },
    ]);
    expect(h.task('w').state).toBe('cancelled');
    h.expectFoldMatches();
  });

  it('cancels the children of every waiting task when the run is cancelled or times out', () => {
    for (const input of [{ type: 'cancel', reason: 'stop' } as const, { type: 'run_timeout' } as const]) {
      const h = new RunHarness(
        plan([
          { id: 'c1', kind: 'subflow' },
          { id: 'c2', kind: 'subflow' },
        ]),
      );
      h.feed({ type: 'start' });
      h.park('c1', child('child-1'));
      h.park('c2', child('child-2'));
      const d = h.feed(input);
      const reason = input.type === 'cancel' ? 'stop' : 'run timeout';
      expect(h.commands(d, 'cancel_child')).toEqual([
        { type: 'cancel_child', task: 0, runId: 'child-1', reason },
        { type: 'cancel_child', task: 1, runId: 'child-2', reason },
      ]);
      expect(h.state.state).toBe(input.type === 'cancel' ? 'cancelled' : 'failed');
      h.expectFoldMatches();
    }
  });

  it('cancels the child and fails the attempt when the wait times out', () => {
    const h = one({ kind: 'subflow' });
    h.feed({ type: 'start' });
    h.park('w', child('child-1', 30_000));
    h.now = 30_000;
    const d = h.feed({ type: 'retry_due', task: 0 });
    expect(h.commands(d, 'cancel_child')).toEqual([
      { type: 'cancel_child', task: 0, runId: 'child-1', reason: 'w timed out' },
    ]);
    expect(h.task('w')).toMatchObject({ state: 'failed', error: { code: 'TASK_TIMEOUT' } });
    h.expectFoldMatches();
  });
});

describe('parked tasks and the engine', () => {
  it('lets the engine fail a parked attempt, and re-queues a lost one', () => {
    const h = one({ kind: 'sleep', retry: { maxAttempts: 2, backoffMs: 10 } });
    h.feed({ type: 'start' });
    h.park('w', { kind: 'timer', until: 50_000 });
    const lost = h.feed({ type: 'attempt_lost', task: 0, attempt: 1 });
    expect(h.dispatched(lost)).toEqual(['w']);
    expect(h.task('w')).toMatchObject({ state: 'queued', failures: 0, wait: null, retryAt: null });
    h.expectFoldMatches();
  });
});
