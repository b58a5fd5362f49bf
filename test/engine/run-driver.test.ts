/**
 * The per-run driver, driven directly on a compiled plan, without an engine or a store:
 * effects leave it only once a commit is acknowledged, a failed commit goes back in front
 * of what came since, an input the machine refuses midway fences the driver off its run,
 * and a run taken over from its history gets its timers and in-flight work back.
 */
import { describe, expect, it } from 'vitest';
import type { RunEvent, RunInput } from '../../src/core/run-machine.js';
import { createRunState, decide, foldRun } from '../../src/core/run-machine.js';
import { MAX_HOLD_MS } from '../../src/engine/database-clock.js';
import type { RunDriverInit } from '../../src/engine/run-driver.js';
import { RunDriver } from '../../src/engine/run-driver.js';
import { boom, plan, seededRandom } from '../core/fixtures.js';
import type { TaskDef } from '../core/fixtures.js';
import { thrown } from '../helpers/thrown.js';

const LEASE = { runId: 'run-1', owner: 'host/1/test', epoch: 3 };

interface Driven {
  readonly driver: RunDriver;
  readonly diagnostics: string[];
}

/** A driver for a fresh (queued) run of `tasks`, or for the fold of `history`. */
function drive(tasks: readonly TaskDef[], history: readonly RunEvent[] = []): Driven {
  const p = plan(tasks);
  const state = history.length === 0 ? createRunState(LEASE.runId, p) : foldRun(LEASE.runId, p, history);
  const lastAt = history.reduce((latest, e) => Math.max(latest, e.at), Number.NEGATIVE_INFINITY);
  const diagnostics: string[] = [];
  const init: RunDriverInit = { lease: LEASE, state, lastAt };
  const driver = new RunDriver(init, { random: seededRandom(7), diagnostic: (m) => diagnostics.push(m) });
  return { driver, diagnostics };
}

/** Starts a fresh run and the attempt of every task it dispatches; returns the tasks. */
function startAll(driver: RunDriver, now: number): readonly number[] {
  const dispatch = driver.take({ type: 'start' }, now);
  if (!dispatch) throw new Error('start was not decided');
  for (const task of dispatch) expect(driver.startAttempt(task, now)).toBe(1);
  return dispatch;
}

const types = (events: readonly RunEvent[]) => events.map((e) => e.type);

describe('the driver of a run', () => {
  it('returns the tasks to dispatch when it decides, and the effects only once their commit is acknowledged', () => {
    const { driver } = drive([{ id: 'a' }, { id: 'b' }, { id: 'c', deps: ['a', 'b'] }]);
    expect(driver.take({ type: 'start' }, 1_000)).toEqual([0, 1]);
    expect(driver.startAttempt(0, 1_000)).toBe(1);
    expect(driver.startAttempt(1, 1_000)).toBe(1);
    // Decided and pending, but nothing to carry out yet: no commit was taken.
    expect(driver.hasPending()).toBe(true);
    expect(thrown(() => driver.committed()).code).toBe('INTERNAL');

    const entry = driver.takeEntry();
    expect(entry).not.toBeNull();
    expect(entry?.lease).toBe(LEASE);
    expect(types(entry?.events ?? [])).toEqual(['run_started', 'tasks_queued', 'task_started', 'task_started']);
    expect(entry?.tasks.map((t) => [t.taskId, t.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ]);
    expect(entry?.run).toMatchObject({ state: 'running', startedAt: 1_000 });
    expect(driver.hasPending()).toBe(false);
    // One batch in flight at a time.
    expect(thrown(() => driver.takeEntry()).code).toBe('INTERNAL');

    // An outcome decided while the commit is in flight waits for a commit of its own.
    expect(driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 'A' }, 1_010)).toEqual([]);
    const first = driver.committed();
    expect(first.starts).toEqual([
      { task: 0, attempt: 1 },
      { task: 1, attempt: 1 },
    ]);
    expect(first.inline).toEqual([]);
    expect(first.commands).toEqual([]);
    expect(types(first.events)).toEqual(['run_started', 'tasks_queued', 'task_started', 'task_started']);

    expect(driver.take({ type: 'attempt_succeeded', task: 1, attempt: 1, output: 'B' }, 1_020)).toEqual([2]);
    expect(driver.startAttempt(2, 1_020)).toBe(1);
    expect(types(driver.takeEntry()?.events ?? [])).toEqual([
      'task_succeeded',
      'task_succeeded',
      'tasks_queued',
      'task_started',
    ]);
    expect(driver.committed().starts).toEqual([{ task: 2, attempt: 1 }]);
  });

  it("reports the run's end only with the commit of its final event", () => {
    const { driver } = drive([{ id: 'a' }]);
    startAll(driver, 1_000);
    driver.takeEntry();
    driver.committed();
    driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: null }, 1_100);
    expect(driver.takeEntry()?.run).toMatchObject({ state: 'succeeded', endedAt: 1_100 });
    expect(driver.committed().commands).toEqual([{ type: 'finished', state: 'succeeded' }]);
    expect(driver.takeEntry()).toBeNull();
  });

  it('records the answered request and the harvested queue row with the decision', () => {
    const { driver } = drive([{ id: 'a' }]);
    startAll(driver, 1_000);
    driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 1 }, 1_050, undefined, 'row-9');
    driver.take({ type: 'cancel', reason: 'user' }, 1_060, 42);
    const entry = driver.takeEntry();
    expect(entry?.harvested).toEqual(['row-9']);
    expect(entry?.answered).toEqual([42]);
  });

  it('puts a failed commit back in front of what came since, and commits it whole the next time', () => {
    const { driver } = drive([{ id: 'a' }, { id: 'b' }]);
    startAll(driver, 1_000);
    const failed = driver.takeEntry();
    driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 'A' }, 1_010, 5);
    driver.commitFailed();

    const retried = driver.takeEntry();
    expect(retried?.events).toEqual([
      ...(failed?.events ?? []),
      { type: 'task_succeeded', at: 1_010, task: 'a', attempt: 1, output: 'A' },
    ]);
    expect(retried?.answered).toEqual([5]);
    expect(retried?.tasks.map((t) => [t.taskId, t.state])).toEqual([
      ['a', 'succeeded'],
      ['b', 'running'],
    ]);
    const after = driver.committed();
    expect(after.starts).toEqual([
      { task: 0, attempt: 1 },
      { task: 1, attempt: 1 },
    ]);
    expect(after.events).toHaveLength(5);
  });

  it('deletes a timer row only once its deletion is committed, retrying it after a failed commit', () => {
    const { driver } = drive([{ id: 'a', retry: { maxAttempts: 2, backoffMs: 1_000 } }]);
    startAll(driver, 1_000);
    driver.takeEntry();
    driver.committed();

    driver.take({ type: 'attempt_failed', task: 0, attempt: 1, error: boom }, 1_500);
    expect(driver.takeEntry()?.timers).toEqual([{ task: 0, dueAt: 2_500 }]);
    expect(driver.withTimer.has(0)).toBe(false);
    expect(driver.committed().commands).toEqual([{ type: 'arm_timer', task: 0, dueAt: 2_500 }]);
    expect(driver.withTimer.has(0)).toBe(true);

    expect(driver.take({ type: 'retry_due', task: 0 }, 2_500)).toEqual([0]);
    expect(driver.takeEntry()?.timers).toEqual([{ task: 0, dueAt: null }]);
    driver.commitFailed();
    expect(driver.withTimer.has(0)).toBe(true);
    expect(driver.takeEntry()?.timers).toEqual([{ task: 0, dueAt: null }]);
    driver.committed();
    expect(driver.withTimer.has(0)).toBe(false);
  });

  it('fences itself off the run on an input the machine refuses midway, and commits nothing more', () => {
    const { driver, diagnostics } = drive([{ id: 'a' }, { id: 'b' }]);
    startAll(driver, 1_000);
    expect(driver.hasPending()).toBe(true);
    // Items for a task that is no map: illegal in any state.
    expect(driver.take({ type: 'map_items', task: 0, attempt: 1, items: [1] }, 1_010, 8, 'row-1')).toBeNull();
    expect(driver.fault).toBe('RUN_INVALID_TRANSITION on map_items');
    expect(diagnostics).toEqual([
      'run run-1: RUN_INVALID_TRANSITION: run run-1: illegal transition: task_expanded for task a in state running (it is no map); this engine lets the run go',
    ]);
    // The queue row the input came from stays with the run, for the engine to forget when it drops it.
    expect(driver.pending.harvested).toEqual(['row-1']);
    expect(driver.pending.answered).toEqual([]);
    // What was pending came from a state that may be half-applied: none of it is committed.
    expect(driver.takeEntry()).toBeNull();
    expect(driver.take({ type: 'attempt_succeeded', task: 1, attempt: 1, output: 1 }, 1_020)).toBeNull();
    expect(driver.startAttempt(1, 1_020)).toBeNull();
  });

  it('ignores an input the machine refuses before changing anything, and goes on', () => {
    const { driver, diagnostics } = drive([{ id: 'a' }]);
    startAll(driver, 1_000);
    const events = driver.pending.events.length;
    expect(driver.take({ type: 'rerun', mode: 'failed' }, 1_010)).toBeNull();
    expect(driver.fault).toBeNull();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatch(/^run run-1: run run-1 is running; only a finished run can be retried/);
    expect(driver.pending.events).toHaveLength(events);
    expect(driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 1 }, 1_020)).toEqual([]);
    expect(types(driver.takeEntry()?.events ?? []).at(-1)).toBe('run_succeeded');
  });

  it('is fenced off the run by a commit the store refused', () => {
    const { driver } = drive([{ id: 'a' }]);
    startAll(driver, 1_000);
    driver.takeEntry();
    driver.commitFenced();
    expect(driver.fault).toBe('fenced: another process owns this run now');
    expect(driver.take({ type: 'cancel', reason: 'user' }, 1_010)).toBeNull();
    expect(driver.takeEntry()).toBeNull();
  });

  it('records an attempt the engine carries out itself, to carry out after the commit', () => {
    const { driver } = drive([{ id: 'nap', kind: 'sleep' }]);
    expect(driver.take({ type: 'start' }, 1_000)).toEqual([0]);
    expect(driver.startInline(0, 1_000)).toBe(1);
    driver.takeEntry();
    const after = driver.committed();
    expect(after.inline).toEqual([{ task: 0, attempt: 1 }]);
    expect(after.starts).toEqual([]);
  });

  it('never stamps an event earlier than the latest one, unless the clock jumped back', () => {
    const { driver } = drive([{ id: 'a' }, { id: 'b' }]);
    startAll(driver, 10_000);
    driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: 1 }, 10_000 - MAX_HOLD_MS / 2);
    expect(driver.pending.events.at(-1)?.at).toBe(10_000);
    const jumped = 10_000 - MAX_HOLD_MS - 1;
    driver.take({ type: 'attempt_succeeded', task: 1, attempt: 1, output: 1 }, jumped);
    expect(driver.pending.events.at(-1)?.at).toBe(jumped);
  });

  it('takes a run over from its history: timers, bodies in flight, queued tasks and child runs', () => {
    const tasks: TaskDef[] = [
      { id: 'flaky', retry: { maxAttempts: 3, backoffMs: 5_000 } },
      { id: 'busy' },
      { id: 'list', kind: 'map', map: {} },
      { id: 'child', kind: 'subflow' },
      { id: 'later', deps: ['busy'] },
      { id: 'spare' },
    ];
    // The history a previous owner committed, built by the machine itself.
    const state = createRunState(LEASE.runId, plan(tasks));
    const history: RunEvent[] = [];
    const feed = (input: RunInput, now: number) => history.push(...decide(state, input, now, () => 0).events);
    feed({ type: 'start' }, 1_000);
    for (const task of [0, 1, 2, 3]) feed({ type: 'attempt_started', task }, 1_000);
    feed({ type: 'attempt_failed', task: 0, attempt: 1, error: boom }, 2_000);
    const wait = { kind: 'run' as const, runId: 'child-run', timeoutAt: 90_000 };
    feed({ type: 'attempt_parked', task: 3, attempt: 1, wait }, 2_000);

    const { driver } = drive(tasks, history);
    const resumed = driver.resume();
    expect(resumed.timers).toEqual([
      { task: 0, dueAt: 7_000 },
      { task: 3, dueAt: 90_000 },
    ]);
    expect(resumed.running).toEqual([{ task: 1, attempt: 1 }]);
    expect(resumed.queued).toEqual([5]);
    expect(resumed.children).toEqual(['child-run']);
    expect([...driver.withTimer]).toEqual([0, 3]);
    expect([...driver.children]).toEqual([[3, 'child-run']]);
    // The map was listing its items: it lists them again once a commit is through.
    expect(driver.pending.inline).toEqual([{ task: 2, attempt: 1 }]);
    expect(driver.takeEntry()?.events).toEqual([]);
    expect(driver.committed().inline).toEqual([{ task: 2, attempt: 1 }]);

    // The retry comes due on the new owner: its timer row is deleted with the retry's commit.
    expect(driver.take({ type: 'retry_due', task: 0 }, 7_000)).toEqual([0]);
    expect(driver.takeEntry()?.timers).toEqual([{ task: 0, dueAt: null }]);
    // The child ended: its task no longer waits for it once that is committed.
    driver.committed();
    driver.take(
      { type: 'child_finished', task: 3, runId: 'child-run', state: 'succeeded', output: {}, error: null },
      7_100,
    );
    driver.takeEntry();
    driver.committed();
    expect(driver.children.size).toBe(0);
  });

  it('creates its run with every entry until one is committed, and fences itself off a run that exists already', () => {
    const p = plan([{ id: 'a' }]);
    const creation = (settled: string[]) => ({
      input: {
        id: LEASE.runId,
        flow: { flow: 'f', version: 'v', spec: '{}', sourcePath: 'f.yaml', createdAt: 1 },
        params: {},
        taskIds: ['a'],
        createdAt: 1,
      },
      leaseMs: 5_000,
      settle: (error?: Error) => settled.push(error?.message ?? 'ok'),
    });
    const settled: string[] = [];
    const init: RunDriverInit = {
      lease: LEASE,
      state: createRunState(LEASE.runId, p),
      lastAt: 1,
      creating: creation(settled),
    };
    const driver = new RunDriver(init, { random: seededRandom(7), diagnostic: () => undefined });
    startAll(driver, 1_000);
    expect(driver.takeEntry()?.create).toMatchObject({ run: { id: LEASE.runId }, leaseMs: 5_000 });
    // Not written: the next entry still creates the run, with the same events first.
    driver.commitFailed();
    const again = driver.takeEntry();
    expect(again?.create?.run.id).toBe(LEASE.runId);
    expect(types(again?.events ?? [])).toEqual(['run_started', 'tasks_queued', 'task_started']);
    driver.committed();
    // The engine settles the creation once the effects are carried out; later entries create nothing.
    driver.creating = null;
    driver.take({ type: 'attempt_succeeded', task: 0, attempt: 1, output: null }, 1_010);
    expect(driver.takeEntry()?.create).toBeUndefined();

    const other = new RunDriver(
      { lease: LEASE, state: createRunState(LEASE.runId, p), lastAt: 1, creating: creation([]) },
      { random: seededRandom(7), diagnostic: () => undefined },
    );
    startAll(other, 1_000);
    other.takeEntry();
    other.commitFenced();
    expect(other.fault).toBe('a run with this id or dedupe key exists already');
    expect(other.takeEntry()).toBeNull();
  });
});
