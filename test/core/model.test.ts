/**
 * Model-based test of the run machine. fast-check generates a random DAG and a stream of
 * choices; a small driver turns each choice into an input that is legal at that moment
 * (or deliberately stale), plays the engine's part (dispatch, timers, crash takeover) and
 * checks the invariants after every step. When the choices run out the driver makes
 * progress on its own, so every run ends. A failure prints the seed and the shrunk case.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { BatonError } from '../../src/core/errors.js';
import type { TaskError } from '../../src/core/model.js';
import type { Decision, FlowPlan, RunEvent, RunInput, RunState, TaskRun } from '../../src/core/run-machine.js';
import { createRunState, decide, foldRun } from '../../src/core/run-machine.js';
import type { TaskStateName, TriggerRule } from '../../src/core/states.js';
import { isTerminalRun, isTerminalTask, TRIGGER_RULES } from '../../src/core/states.js';
import { describeSkip } from '../../src/core/trigger-rules.js';
import type { Upstream } from './airflow-reference.js';
import { referenceRule } from './airflow-reference.js';
import type { TaskDef } from './fixtures.js';
import { comparable, plan, seededRandom } from './fixtures.js';

const BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 250;
const STEP_LIMIT = 3_000;

const flaky: TaskError = { code: 'BOOM', message: 'flaky', source: 'user' };
const invalid: TaskError = { code: 'VALIDATION', message: 'never retried', source: 'user' };

// ---------------------------------------------------------------------------------------
// Generators

const ruleArb: fc.Arbitrary<TriggerRule> = fc.oneof(
  { arbitrary: fc.constant<TriggerRule>('all_success'), weight: 3 },
  { arbitrary: fc.constantFrom(...TRIGGER_RULES), weight: 5 },
);

/** Task i depends on up to 4 earlier tasks (picked modulo i), so the graph is a DAG. */
const flowArb: fc.Arbitrary<TaskDef[]> = fc
  .array(
    fc.record({
      deps: fc.array(fc.nat(), { maxLength: 4 }),
      rule: ruleArb,
      maxAttempts: fc.integer({ min: 1, max: 3 }),
    }),
    { maxLength: 25, size: 'max' },
  )
  .map((raw) =>
    raw.map((t, i) => ({
      id: `t${i}`,
      deps: i === 0 ? [] : [...new Set(t.deps.map((d) => `t${d % i}`))],
      rule: t.rule,
      retry: { maxAttempts: t.maxAttempts, backoffMs: BACKOFF_MS, maxBackoffMs: MAX_BACKOFF_MS, jitter: 'none' },
    })),
  );

/** One choice: which kind of input (by weight), which task, and a free bit of variety. */
const stepArb = fc.tuple(fc.nat(999), fc.nat(), fc.nat());
type Step = [roll: number, target: number, variety: number];

const rerunArb = fc.option(
  fc.record({
    mode: fc.constantFrom('failed' as const, 'tasks' as const),
    tasks: fc.array(fc.nat(), { maxLength: 3 }),
    downstream: fc.boolean(),
  }),
  { freq: 2 },
);
type RerunPlan = { mode: 'failed' | 'tasks'; tasks: number[]; downstream: boolean } | null;

// ---------------------------------------------------------------------------------------
// An independent shadow of task states, advanced from the events alone

interface Shadow {
  state: TaskStateName;
  upstreamFailed: boolean;
  failures: number;
  attempt: number;
  succeededEvents: number;
  /** Upstream states at the moment the task was first queued (since the last rerun). */
  queuedWith: Upstream[] | null;
}

/** What a terminal task must keep until a rerun reopens it. */
function terminalSnapshot(t: TaskRun): unknown {
  const { state, endedAt, output, error, skipReason, attempt, upstreamFailed, failures } = t;
  return { state, endedAt, output, error, skipReason, attempt, upstreamFailed, failures };
}

/** The fields of a task that the engine persists in its task row and timer. */
function taskRow(t: TaskRun): unknown {
  const { state, attempt, startedAt, endedAt, skipReason, output, error, retryAt } = t;
  return { state, attempt, startedAt, endedAt, skipReason, output, error, retryAt };
}

function asUpstream(s: Shadow): Upstream {
  if (s.state === 'succeeded') return 'succeeded';
  if (s.state === 'failed' || s.state === 'cancelled' || (s.state === 'skipped' && s.upstreamFailed)) return 'failed';
  if (s.state === 'skipped') return 'skipped';
  return 'open';
}

class Model {
  readonly events: RunEvent[] = [];
  readonly shadow: Shadow[];
  readonly frozen: (unknown | null)[];
  run: RunState;
  now = 0;
  readonly random = seededRandom(1);
  lastAt = 0;

  constructor(readonly plan: FlowPlan) {
    this.run = createRunState('model-run', plan);
    this.shadow = plan.spec.tasks.map(() => ({
      state: 'pending',
      upstreamFailed: false,
      failures: 0,
      attempt: 0,
      succeededEvents: 0,
      queuedWith: null,
    }));
    this.frozen = plan.spec.tasks.map(() => null);
  }

  private id(i: number): string {
    return this.plan.graph.ids[i] as string;
  }

  private at(id: string): number {
    return this.plan.graph.indexOf.get(id) as number;
  }

  feed(input: RunInput): Decision {
    const before = this.run.tasks.map((t) => ({ state: t.state, attempt: t.attempt }));
    const rows = this.run.tasks.map(taskRow);
    const wasTerminal = isTerminalRun(this.run.state);
    const decision = decide(this.run, input, this.now, this.random);
    this.events.push(...decision.events);
    // The engine rewrites only touched rows of the derived task table and timers.
    this.run.tasks.forEach((t, i) => {
      if (!isDeepStrictEqual(taskRow(t), rows[i])) expect(decision.touched, `row of ${this.id(i)}`).toContain(i);
    });
    this.follow(decision.events);
    this.checkCommands(decision, before, wasTerminal);
    this.checkInvariants();
    return decision;
  }

  /** Feeds an input that must change nothing. */
  feedIgnored(input: RunInput): void {
    const d = this.feed(input);
    expect(d.events, `${JSON.stringify(input)} should be ignored`).toEqual([]);
    expect(d.commands).toEqual([]);
  }

  /** The engine's takeover: rebuild from history, then every running attempt is lost. */
  crash(): void {
    this.run = foldRun(this.run.runId, this.plan, this.events);
    this.run.tasks.forEach((t, i) => {
      if (t.state === 'running') this.feed({ type: 'attempt_lost', task: i, attempt: t.attempt });
    });
  }

  private upstreamOf(i: number): Upstream[] {
    return (this.plan.graph.upstream[i] as number[]).map((u) => asUpstream(this.shadow[u] as Shadow));
  }

  /** The brute-force trigger rule, on the upstream states recorded when it was queued. */
  private expectAllowedToRun(i: number): void {
    const ups = (this.shadow[i] as Shadow).queuedWith;
    const rule = this.plan.spec.tasks[i]?.triggerRule as TriggerRule;
    expect(ups, `${this.id(i)} runs but was never queued`).not.toBeNull();
    expect(referenceRule(rule, ups ?? []), `${this.id(i)} (${rule}) with upstream ${ups?.join(',')}`).toBe('run');
  }

  /** Advances the shadow by each event and checks the rules and budgets it implies. */
  private follow(events: readonly RunEvent[]): void {
    let lastFailure: { task: string; lost: boolean; retryable: boolean } | null = null;
    for (const e of events) {
      expect(e.at).toBeGreaterThanOrEqual(this.lastAt);
      this.lastAt = e.at;
      switch (e.type) {
        case 'tasks_queued':
          for (const id of e.tasks) {
            const i = this.at(id);
            const s = this.shadow[i] as Shadow;
            if (s.state === 'pending') {
              // First queueing: record the upstream states of this moment.
              s.queuedWith = this.upstreamOf(i);
              this.expectAllowedToRun(i);
            } else {
              expect(['retrying', 'running']).toContain(s.state);
            }
            s.state = 'queued';
          }
          break;
        case 'task_started': {
          const i = this.at(e.task);
          const s = this.shadow[i] as Shadow;
          expect(s.state).toBe('queued');
          expect(e.attempt).toBe(s.attempt + 1);
          this.expectAllowedToRun(i);
          s.attempt = e.attempt;
          s.state = 'running';
          break;
        }
        case 'task_succeeded': {
          const s = this.shadow[this.at(e.task)] as Shadow;
          expect(s.state).toBe('running');
          expect(e.attempt).toBe(s.attempt);
          s.state = 'succeeded';
          s.succeededEvents++;
          expect(s.succeededEvents, `${e.task} succeeded twice`).toBe(1);
          break;
        }
        case 'attempt_failed': {
          const i = this.at(e.task);
          const s = this.shadow[i] as Shadow;
          expect(s.state).toBe('running');
          expect(e.attempt).toBe(s.attempt);
          if (!e.lost) s.failures++;
          const retryable = !this.plan.spec.tasks[i]?.retry.neverRetryOn.includes(e.error.code);
          lastFailure = { task: e.task, lost: e.lost, retryable };
          break;
        }
        case 'retry_scheduled': {
          const i = this.at(e.task);
          const s = this.shadow[i] as Shadow;
          const maxAttempts = this.plan.spec.tasks[i]?.retry.maxAttempts as number;
          expect(lastFailure).toEqual({ task: e.task, lost: false, retryable: true });
          expect(s.failures).toBeLessThan(maxAttempts);
          expect(e.delayMs).toBe(Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (s.failures - 1)));
          expect(e.dueAt).toBe(e.at + e.delayMs);
          s.state = 'retrying';
          break;
        }
        case 'task_failed': {
          const i = this.at(e.task);
          const s = this.shadow[i] as Shadow;
          const maxAttempts = this.plan.spec.tasks[i]?.retry.maxAttempts as number;
          expect(lastFailure?.task).toBe(e.task);
          expect(lastFailure?.lost).toBe(false);
          // Failed for good only when the budget is spent or the error is never retried.
          expect(s.failures >= maxAttempts || !lastFailure?.retryable).toBe(true);
          s.state = 'failed';
          break;
        }
        case 'tasks_skipped':
          for (const skip of e.tasks) {
            const i = this.at(skip.task);
            const s = this.shadow[i] as Shadow;
            expect(s.state).toBe('pending');
            expect(skip.reason).not.toBe('');
            const ups = this.upstreamOf(i);
            const rule = this.plan.spec.tasks[i]?.triggerRule as TriggerRule;
            const outcome = skip.upstreamFailed ? 'upstream_failed' : 'skip';
            expect(referenceRule(rule, ups), `${skip.task} (${rule}) skipped with upstream ${ups.join(',')}`).toBe(
              outcome,
            );
            // The reason names exactly the upstream tasks that caused the skip.
            const blames = (u: Upstream): boolean =>
              skip.upstreamFailed
                ? u === 'failed'
                : u === 'skipped' || (u === 'succeeded' && (rule === 'all_failed' || rule === 'one_failed'));
            const culprits = (this.plan.graph.upstream[i] as number[]).filter((_, k) => blames(ups[k] as Upstream));
            expect(skip.reason).toBe(describeSkip(rule, outcome, culprits.map(this.id, this)));
            s.state = 'skipped';
            s.upstreamFailed = skip.upstreamFailed;
          }
          break;
        case 'tasks_cancelled':
          for (const id of e.tasks) {
            const s = this.shadow[this.at(id)] as Shadow;
            expect(isTerminalTask(s.state)).toBe(false);
            s.state = 'cancelled';
          }
          break;
        case 'run_retried':
          for (const id of e.tasks) {
            const i = this.at(id);
            const s = this.shadow[i] as Shadow;
            expect(isTerminalTask(s.state)).toBe(true);
            Object.assign(s, {
              state: 'pending',
              upstreamFailed: false,
              failures: 0,
              succeededEvents: 0,
              queuedWith: null,
            });
            this.frozen[i] = null;
          }
          break;
        default:
          break;
      }
    }
  }

  private checkCommands(d: Decision, before: { state: TaskStateName; attempt: number }[], wasTerminal: boolean): void {
    for (const c of d.commands) {
      if (c.type === 'dispatch') expect(this.run.tasks[c.task]?.state).toBe('queued');
      if (c.type === 'arm_timer') expect(this.run.tasks[c.task]?.retryAt).toBe(c.dueAt);
      if (c.type === 'abort') expect(before[c.task]).toEqual({ state: 'running', attempt: c.attempt });
      if (c.type === 'finished') expect(c.state).toBe(this.run.state);
    }
    // 'finished' exactly when this decision ended the run (a rerun may reopen and end it).
    const finished = d.commands.some((c) => c.type === 'finished');
    const ended = d.events.some(
      (e) => e.type === 'run_succeeded' || e.type === 'run_failed' || e.type === 'run_cancelled',
    );
    expect(finished).toBe(ended);
    if (ended) expect(isTerminalRun(this.run.state)).toBe(true);
    else if (!wasTerminal) expect(isTerminalRun(this.run.state)).toBe(false);
  }

  checkInvariants(): void {
    const run = this.run;
    // Crash recovery: the history alone rebuilds exactly the live state.
    const folded = comparable(foldRun(run.runId, this.plan, this.events));
    if (!isDeepStrictEqual(folded, comparable(run))) expect(folded).toStrictEqual(comparable(run));

    const tasks = run.tasks;
    tasks.forEach((t, i) => expect(t.state, `state of ${this.id(i)}`).toBe(this.shadow[i]?.state));
    expect(run.open).toBe(tasks.filter((t) => !isTerminalTask(t.state)).length);
    const failed = tasks.filter(
      (t) => t.state === 'failed' || t.state === 'cancelled' || (t.state === 'skipped' && t.upstreamFailed),
    );
    expect(run.failedTasks).toBe(failed.length);

    tasks.forEach((t, i) => {
      if (t.state === 'skipped') expect(t.skipReason).toBeTruthy();
      if (t.failures > (this.plan.spec.tasks[i]?.retry.maxAttempts ?? 0)) throw new Error(`${this.id(i)} over budget`);
      if (!isTerminalTask(t.state)) return;
      const snap = terminalSnapshot(t);
      const frozen = this.frozen[i];
      if (frozen === null) this.frozen[i] = snap;
      else expect(snap, `terminal task ${this.id(i)} changed`).toEqual(frozen);
    });

    const allTerminal = run.open === 0;
    if (isTerminalRun(run.state)) {
      expect(allTerminal).toBe(true);
      // An empty flow has no task to carry a cancel or a timeout: the run flags do.
      const ended = tasks.length > 0 ? failed.length === 0 : !run.cancelRequested && !run.timedOut;
      expect(run.state === 'succeeded').toBe(ended);
      if (run.state === 'succeeded') expect(run.error).toBeNull();
      if (run.error?.code === 'TASK_FAILED') expect(run.error.message).toMatch(/^[1-9]\d* task\(s\) \w/);
    } else if (run.state === 'running') {
      expect(allTerminal).toBe(false);
    } else {
      // queued: nothing has ended the run yet; only an empty flow has no open task.
      expect(allTerminal).toBe(tasks.length === 0);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The driver

function tasksIn(run: RunState, ...states: TaskStateName[]): number[] {
  return run.tasks.flatMap((t, i) => (states.includes(t.state) ? [i] : []));
}

function pickFrom(list: readonly number[], target: number): number | undefined {
  return list.length === 0 ? undefined : list[target % list.length];
}

/** Plays one chosen step; returns false if the chosen kind had nothing to act on. */
function play(m: Model, [roll, target, variety]: Step): boolean {
  const run = m.run;
  const size = run.tasks.length;
  const queued = tasksIn(run, 'queued');
  const running = tasksIn(run, 'running');
  const retrying = tasksIn(run, 'retrying');
  const attemptOf = (i: number): number => (run.tasks[i] as TaskRun).attempt;

  if (roll < 80) {
    if (run.state === 'queued') m.feed({ type: 'start' });
    else m.feedIgnored({ type: 'start' });
    return true;
  }
  if (roll < 300) {
    const i = pickFrom(queued, target);
    if (i === undefined) return false;
    m.feed({ type: 'attempt_started', task: i });
    return true;
  }
  if (roll < 550) {
    const i = pickFrom(running, target);
    if (i === undefined) return false;
    m.feed({
      type: 'attempt_succeeded',
      task: i,
      attempt: attemptOf(i),
      output: `${m.plan.graph.ids[i]}#${attemptOf(i)}`,
    });
    return true;
  }
  if (roll < 680) {
    const i = pickFrom(running, target);
    if (i === undefined) return false;
    m.feed({ type: 'attempt_failed', task: i, attempt: attemptOf(i), error: variety % 5 === 0 ? invalid : flaky });
    return true;
  }
  if (roll < 720) {
    const i = pickFrom(running, target);
    if (i === undefined) return false;
    m.feed({ type: 'attempt_lost', task: i, attempt: attemptOf(i) });
    return true;
  }
  if (roll < 770) {
    // A stale result: another attempt number, or a task that is not running at all.
    if (size === 0) return false;
    const i = target % size;
    const wrong = running.includes(i) ? attemptOf(i) + (variety % 2 === 0 ? 1 : -1) : attemptOf(i);
    const kind = variety % 3;
    if (kind === 0) m.feedIgnored({ type: 'attempt_succeeded', task: i, attempt: wrong, output: 'stale' });
    else if (kind === 1) m.feedIgnored({ type: 'attempt_failed', task: i, attempt: wrong, error: flaky });
    else m.feedIgnored({ type: 'attempt_lost', task: i, attempt: wrong });
    return true;
  }
  if (roll < 870) {
    const i = pickFrom(retrying, target);
    if (i === undefined) return false;
    // The durable timer fires at its due time.
    m.now = Math.max(m.now, (run.tasks[i] as TaskRun).retryAt ?? m.now);
    m.feed({ type: 'retry_due', task: i });
    return true;
  }
  if (roll < 890) {
    const i = size === 0 ? undefined : target % size;
    if (i === undefined || retrying.includes(i)) return false;
    m.feedIgnored({ type: 'retry_due', task: i });
    return true;
  }
  if (roll < 925) {
    m.crash();
    return true;
  }
  if (roll < 975) {
    m.now += 1 + (variety % 500);
    return true;
  }
  // Rare: cancelling a task, cancelling the run, the run timing out. The last two end
  // the run, so they are kept to a few percent of runs.
  if (roll < 985) {
    if (size === 0) return false;
    m.feed({ type: 'cancel', reason: 'task cancelled by the model', task: target % size });
    return true;
  }
  if (variety % 10 !== 0) return false;
  if (roll < 993) m.feed({ type: 'cancel', reason: 'run cancelled by the model' });
  else m.feed({ type: 'run_timeout' });
  return true;
}

/** The engine left alone: start, dispatch, succeed, fire timers. Always moves forward. */
function progress(m: Model): void {
  const run = m.run;
  if (run.state === 'queued') return void m.feed({ type: 'start' });
  const queued = tasksIn(run, 'queued')[0];
  if (queued !== undefined) return void m.feed({ type: 'attempt_started', task: queued });
  const running = tasksIn(run, 'running')[0];
  if (running !== undefined) {
    const attempt = (run.tasks[running] as TaskRun).attempt;
    return void m.feed({ type: 'attempt_succeeded', task: running, attempt, output: 'progress' });
  }
  const retrying = tasksIn(run, 'retrying')[0];
  if (retrying !== undefined) {
    m.now = Math.max(m.now, (run.tasks[retrying] as TaskRun).retryAt ?? m.now);
    return void m.feed({ type: 'retry_due', task: retrying });
  }
  throw new Error(`run is ${run.state} with ${run.open} open task(s) but nothing can move`);
}

function rerun(m: Model, r: NonNullable<RerunPlan>): void {
  const size = m.run.tasks.length;
  const input: RunInput =
    r.mode === 'failed'
      ? { type: 'rerun', mode: 'failed' }
      : {
          type: 'rerun',
          mode: 'tasks',
          tasks: size === 0 ? [] : r.tasks.map((t) => t % size),
          downstream: r.downstream,
        };
  const nothingToDo =
    input.mode === 'failed' ? m.run.tasks.every((t) => t.state === 'succeeded') : input.tasks.length === 0;
  if (nothingToDo) {
    const before = comparable(foldRun(m.run.runId, m.plan, m.events));
    expect(() => m.feed(input)).toThrow(BatonError);
    expect(comparable(m.run)).toStrictEqual(before);
    return;
  }
  const d = m.feed(input);
  // The run reopens; it may end at once if every reset task is skipped again.
  expect(d.events[0]?.type).toBe('run_retried');
}

function drive(tasks: TaskDef[], steps: Step[], rerunPlan: RerunPlan): Model {
  const m = new Model(plan(tasks));
  let pending = rerunPlan;
  let k = 0;
  for (let count = 0; ; count++) {
    if (count > STEP_LIMIT) throw new Error(`run did not finish within ${STEP_LIMIT} steps`);
    if (isTerminalRun(m.run.state)) {
      if (pending === null) break;
      rerun(m, pending);
      pending = null;
      continue;
    }
    const step = steps[k++];
    if (step === undefined || !play(m, step)) progress(m);
  }
  // The end: every task terminal, and late inputs change nothing.
  expect(m.run.tasks.every((t) => isTerminalTask(t.state))).toBe(true);
  if (m.run.tasks.length > 0) {
    const t = m.run.tasks[0] as TaskRun;
    m.feedIgnored({ type: 'attempt_succeeded', task: 0, attempt: t.attempt, output: 'late' });
  }
  m.crash();
  m.checkInvariants();
  return m;
}

describe('run machine model', () => {
  it('keeps its invariants under random flows, inputs, crashes and cancellations', () => {
    fc.assert(
      fc.property(flowArb, fc.array(stepArb, { maxLength: 250, size: 'max' }), rerunArb, (tasks, steps, rerunPlan) => {
        drive(tasks, steps as Step[], rerunPlan);
      }),
      { numRuns: 300 },
    );
  });

  it('succeeds every flow when every attempt succeeds', () => {
    fc.assert(
      fc.property(flowArb, (tasks) => {
        const m = drive(tasks, [], null);
        expect(m.run.state).toBe('succeeded');
        expect(m.run.tasks.every((t) => t.state === 'succeeded' || (t.state === 'skipped' && !t.upstreamFailed))).toBe(
          true,
        );
      }),
      { numRuns: 50 },
    );
  });
});
