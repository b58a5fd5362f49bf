/**
 * The run state machine: pure, no IO, no clock. `decide(run, input, now, random)` turns
 * something that happened (an attempt ended, a timer fired, a user cancelled) into the
 * events that record it and the commands the engine must carry out; `evolve(run, event)`
 * applies one event. A run's state is the fold of its events, so a process that takes a
 * run over after a crash replays the events and lands in exactly the state that was
 * committed.
 *
 * Run states
 * - queued: created, no process has started it yet.
 * - running: started; ends when no task is open.
 * - succeeded / failed / cancelled: terminal; `rerun` reopens a terminal run.
 *
 * Task run states
 * - pending: waiting for its upstream tasks (trigger rule not yet decided).
 * - queued: ready; the engine starts it when a concurrency and pool slot is free.
 * - running: an attempt is in flight under the current owner.
 * - retrying: an attempt failed; a durable timer re-queues it at `retryAt`.
 * - succeeded / failed / skipped / cancelled: terminal. A task skipped because an
 *   upstream failed keeps `upstreamFailed` so that it counts as failed downstream.
 *
 * The state is mutated in place (a run may hold 100,000 tasks); decide is still a pure
 * function of (state, input, now, random). Results of attempts that are not the task's
 * current attempt are ignored: that is the fencing at the model level.
 */
import { BatonError } from './errors.js';
import type { FlowGraph } from './graph.js';
import { compileGraph, downstreamClosure } from './graph.js';
import type { FlowSpec, TaskError, TaskSpec } from './model.js';
import { isRetryableError, retryDelayMs } from './retry-policy.js';
import type { RunStateName, TaskStateName } from './states.js';
import { isTerminalRun, isTerminalTask } from './states.js';
import { describeSkip, evaluateTriggerRule } from './trigger-rules.js';

export interface TaskRun {
  state: TaskStateName;
  /** Attempts started so far (numbering continues across reruns). */
  attempt: number;
  /** Failed attempts that count against the retry budget (lost attempts do not). */
  failures: number;
  upSucceeded: number;
  upFailed: number;
  upSkipped: number;
  upstreamFailed: boolean;
  startedAt: number | null;
  endedAt: number | null;
  retryAt: number | null;
  skipReason: string | null;
  output: unknown;
  error: TaskError | null;
}

/** A compiled flow: spec plus graph, shared by all runs of one flow version. */
export interface FlowPlan {
  readonly spec: FlowSpec;
  readonly graph: FlowGraph;
}

export interface RunState {
  readonly runId: string;
  readonly plan: FlowPlan;
  state: RunStateName;
  readonly tasks: TaskRun[];
  /** Tasks not in a terminal state. */
  open: number;
  /** Tasks that ended failed, cancelled or upstream-failed. */
  failedTasks: number;
  cancelRequested: boolean;
  timedOut: boolean;
  startedAt: number | null;
  endedAt: number | null;
  error: TaskError | null;
}

export interface SkippedTask {
  readonly task: string;
  readonly reason: string;
  readonly upstreamFailed: boolean;
}

/** Durable facts of a run's history. */
export type RunEvent =
  | {
      readonly type: 'run_created';
      readonly at: number;
      readonly flow: string;
      readonly version: string;
      readonly params: Readonly<Record<string, unknown>>;
    }
  | { readonly type: 'run_started'; readonly at: number }
  | { readonly type: 'tasks_queued'; readonly at: number; readonly tasks: readonly string[] }
  | { readonly type: 'task_started'; readonly at: number; readonly task: string; readonly attempt: number }
  | {
      readonly type: 'task_succeeded';
      readonly at: number;
      readonly task: string;
      readonly attempt: number;
      readonly output: unknown;
    }
  | {
      readonly type: 'attempt_failed';
      readonly at: number;
      readonly task: string;
      readonly attempt: number;
      readonly error: TaskError;
      /** The attempt's process died or lost its lease; it does not use up a retry. */
      readonly lost: boolean;
    }
  | {
      readonly type: 'retry_scheduled';
      readonly at: number;
      readonly task: string;
      readonly dueAt: number;
      readonly delayMs: number;
    }
  | { readonly type: 'task_failed'; readonly at: number; readonly task: string; readonly error: TaskError }
  | { readonly type: 'tasks_skipped'; readonly at: number; readonly tasks: readonly SkippedTask[] }
  | {
      readonly type: 'tasks_cancelled';
      readonly at: number;
      readonly tasks: readonly string[];
      readonly reason: string;
    }
  | { readonly type: 'cancel_requested'; readonly at: number; readonly reason: string; readonly task?: string }
  | { readonly type: 'run_retried'; readonly at: number; readonly tasks: readonly string[] }
  | { readonly type: 'run_succeeded'; readonly at: number }
  | { readonly type: 'run_failed'; readonly at: number; readonly error: TaskError }
  | { readonly type: 'run_cancelled'; readonly at: number; readonly reason: string };

export type RunEventType = RunEvent['type'];

/** Things that happen to a run, fed to `decide`. */
export type RunInput =
  | { readonly type: 'start' }
  | { readonly type: 'attempt_started'; readonly task: number }
  | { readonly type: 'attempt_succeeded'; readonly task: number; readonly attempt: number; readonly output: unknown }
  | { readonly type: 'attempt_failed'; readonly task: number; readonly attempt: number; readonly error: TaskError }
  | { readonly type: 'attempt_lost'; readonly task: number; readonly attempt: number }
  | { readonly type: 'retry_due'; readonly task: number }
  | { readonly type: 'cancel'; readonly reason: string; readonly task?: number }
  | { readonly type: 'run_timeout' }
  | { readonly type: 'rerun'; readonly mode: 'failed' }
  | { readonly type: 'rerun'; readonly mode: 'tasks'; readonly tasks: readonly number[]; readonly downstream: boolean };

/** What the engine must do after the events are committed. */
export type RunCommand =
  | { readonly type: 'dispatch'; readonly task: number }
  | { readonly type: 'arm_timer'; readonly task: number; readonly dueAt: number }
  | { readonly type: 'abort'; readonly task: number; readonly attempt: number; readonly reason: string }
  | { readonly type: 'finished'; readonly state: RunStateName };

export interface Decision {
  readonly events: RunEvent[];
  readonly commands: RunCommand[];
  /** Task indexes whose row changed (for the derived task_runs table). */
  readonly touched: Set<number>;
}

export function compilePlan(spec: FlowSpec): FlowPlan {
  return { spec, graph: compileGraph(spec.tasks) };
}

function newTaskRun(): TaskRun {
  return {
    state: 'pending',
    attempt: 0,
    failures: 0,
    upSucceeded: 0,
    upFailed: 0,
    upSkipped: 0,
    upstreamFailed: false,
    startedAt: null,
    endedAt: null,
    retryAt: null,
    skipReason: null,
    output: undefined,
    error: null,
  };
}

/** A new run in state `queued`, every task pending. */
export function createRunState(runId: string, plan: FlowPlan): RunState {
  const tasks = plan.spec.tasks.map(newTaskRun);
  return {
    runId,
    plan,
    state: 'queued',
    tasks,
    open: tasks.length,
    failedTasks: 0,
    cancelRequested: false,
    timedOut: false,
    startedAt: null,
    endedAt: null,
    error: null,
  };
}

/** Rebuilds a run's state from its history. */
export function foldRun(runId: string, plan: FlowPlan, events: Iterable<RunEvent>): RunState {
  const run = createRunState(runId, plan);
  for (const event of events) evolve(run, event);
  return run;
}

function indexOf(run: RunState, task: string): number {
  const i = run.plan.graph.indexOf.get(task);
  if (i === undefined) throw new BatonError('TASK_NOT_FOUND', `run ${run.runId} has no task "${task}"`);
  return i;
}

function taskRun(run: RunState, i: number): TaskRun {
  const t = run.tasks[i];
  if (!t) throw new BatonError('TASK_NOT_FOUND', `run ${run.runId} has no task #${i}`);
  return t;
}

function spec(run: RunState, i: number): TaskSpec {
  return run.plan.spec.tasks[i] as TaskSpec;
}

/** Marks a task terminal and updates the upstream tallies of its downstream tasks. */
function close(run: RunState, i: number, state: TaskStateName, at: number): void {
  const t = taskRun(run, i);
  if (isTerminalTask(t.state))
    throw new Error(`illegal transition: task ${run.plan.graph.ids[i]} is already ${t.state}`);
  t.state = state;
  t.endedAt = at;
  t.retryAt = null;
  run.open--;
  const failed = state === 'failed' || state === 'cancelled' || (state === 'skipped' && t.upstreamFailed);
  if (failed) run.failedTasks++;
  for (const d of run.plan.graph.downstream[i] as readonly number[]) {
    const down = run.tasks[d] as TaskRun;
    if (state === 'succeeded') down.upSucceeded++;
    else if (failed) down.upFailed++;
    else down.upSkipped++;
  }
}

function requireState(run: RunState, i: number, allowed: readonly TaskStateName[], event: string): TaskRun {
  const t = taskRun(run, i);
  if (!allowed.includes(t.state)) {
    throw new Error(`illegal transition: ${event} for task ${run.plan.graph.ids[i]} in state ${t.state}`);
  }
  return t;
}

/** Applies one event. Illegal transitions throw: history is never bent to fit. */
export function evolve(run: RunState, event: RunEvent): void {
  switch (event.type) {
    case 'run_created':
      return;
    case 'run_started':
      run.state = 'running';
      run.startedAt ??= event.at;
      return;
    case 'tasks_queued':
      for (const id of event.tasks) {
        const t = requireState(run, indexOf(run, id), ['pending', 'retrying', 'running'], event.type);
        t.state = 'queued';
        t.retryAt = null;
      }
      return;
    case 'task_started': {
      const t = requireState(run, indexOf(run, event.task), ['queued'], event.type);
      t.state = 'running';
      t.attempt = event.attempt;
      t.startedAt ??= event.at;
      return;
    }
    case 'task_succeeded': {
      const i = indexOf(run, event.task);
      const t = requireState(run, i, ['running'], event.type);
      t.output = event.output;
      t.error = null;
      close(run, i, 'succeeded', event.at);
      return;
    }
    case 'attempt_failed': {
      const t = requireState(run, indexOf(run, event.task), ['running'], event.type);
      if (!event.lost) t.failures++;
      t.error = event.error;
      return;
    }
    case 'retry_scheduled': {
      const t = requireState(run, indexOf(run, event.task), ['running'], event.type);
      t.state = 'retrying';
      t.retryAt = event.dueAt;
      return;
    }
    case 'task_failed': {
      const i = indexOf(run, event.task);
      const t = requireState(run, i, ['running'], event.type);
      t.error = event.error;
      close(run, i, 'failed', event.at);
      return;
    }
    case 'tasks_skipped':
      for (const s of event.tasks) {
        const i = indexOf(run, s.task);
        const t = requireState(run, i, ['pending'], event.type);
        t.skipReason = s.reason;
        t.upstreamFailed = s.upstreamFailed;
        close(run, i, 'skipped', event.at);
      }
      return;
    case 'tasks_cancelled':
      for (const id of event.tasks) {
        const i = indexOf(run, id);
        const t = taskRun(run, i);
        t.error ??= { code: 'TASK_CANCELLED', message: event.reason, source: 'user' };
        close(run, i, 'cancelled', event.at);
      }
      return;
    case 'cancel_requested':
      if (event.task === undefined) run.cancelRequested = true;
      return;
    case 'run_retried':
      applyRerun(
        run,
        event.tasks.map((id) => indexOf(run, id)),
      );
      return;
    case 'run_succeeded':
      run.state = 'succeeded';
      run.endedAt = event.at;
      return;
    case 'run_failed':
      run.state = 'failed';
      run.endedAt = event.at;
      run.error = event.error;
      if (event.error.code === 'RUN_TIMEOUT') run.timedOut = true;
      return;
    case 'run_cancelled':
      run.state = 'cancelled';
      run.endedAt = event.at;
      return;
  }
}

/** Reopens the given tasks and recomputes every tally from the final states left. */
function applyRerun(run: RunState, reset: readonly number[]): void {
  for (const i of reset) {
    const t = taskRun(run, i);
    t.state = 'pending';
    t.failures = 0;
    t.upstreamFailed = false;
    t.startedAt = null;
    t.endedAt = null;
    t.retryAt = null;
    t.skipReason = null;
    t.output = undefined;
    t.error = null;
  }
  let open = 0;
  let failed = 0;
  for (const t of run.tasks) {
    t.upSucceeded = 0;
    t.upFailed = 0;
    t.upSkipped = 0;
  }
  run.tasks.forEach((t, i) => {
    if (!isTerminalTask(t.state)) {
      open++;
      return;
    }
    const isFailed = t.state === 'failed' || t.state === 'cancelled' || (t.state === 'skipped' && t.upstreamFailed);
    if (isFailed) failed++;
    for (const d of run.plan.graph.downstream[i] as readonly number[]) {
      const down = run.tasks[d] as TaskRun;
      if (t.state === 'succeeded') down.upSucceeded++;
      else if (isFailed) down.upFailed++;
      else down.upSkipped++;
    }
  });
  run.open = open;
  run.failedTasks = failed;
  run.state = 'running';
  run.cancelRequested = false;
  run.timedOut = false;
  run.endedAt = null;
  run.error = null;
}

/** Collects events, applying each as it is emitted so later decisions see it. */
class Recorder implements Decision {
  readonly events: RunEvent[] = [];
  readonly commands: RunCommand[] = [];
  readonly touched = new Set<number>();
  constructor(
    readonly run: RunState,
    readonly now: number,
  ) {}

  emit(event: RunEvent, ...tasks: number[]): void {
    evolve(this.run, event);
    this.events.push(event);
    for (const t of tasks) this.touched.add(t);
  }
}

/**
 * Decides what an input means for the run. Returns no events for inputs that no longer
 * apply (a late result from a superseded attempt, a timer for a task that moved on).
 */
export function decide(run: RunState, input: RunInput, now: number, random: () => number): Decision {
  const rec = new Recorder(run, now);
  if (isTerminalRun(run.state) && input.type !== 'rerun') return rec;
  switch (input.type) {
    case 'start':
      if (run.state !== 'queued') return rec;
      rec.emit({ type: 'run_started', at: now });
      settle(
        rec,
        run.tasks.map((_, i) => i),
      );
      break;
    case 'attempt_started': {
      const t = taskRun(run, input.task);
      if (t.state !== 'queued') return rec;
      rec.emit({ type: 'task_started', at: now, task: id(run, input.task), attempt: t.attempt + 1 }, input.task);
      break;
    }
    case 'attempt_succeeded': {
      const t = taskRun(run, input.task);
      if (t.state !== 'running' || t.attempt !== input.attempt) return rec;
      rec.emit(
        { type: 'task_succeeded', at: now, task: id(run, input.task), attempt: input.attempt, output: input.output },
        input.task,
      );
      settle(rec, run.plan.graph.downstream[input.task] as readonly number[]);
      break;
    }
    case 'attempt_failed':
    case 'attempt_lost':
      onAttemptFailed(rec, input, random);
      break;
    case 'retry_due': {
      const t = taskRun(run, input.task);
      if (t.state !== 'retrying') return rec;
      rec.emit({ type: 'tasks_queued', at: now, tasks: [id(run, input.task)] }, input.task);
      rec.commands.push({ type: 'dispatch', task: input.task });
      break;
    }
    case 'cancel':
      onCancel(rec, input.reason, input.task);
      break;
    case 'run_timeout':
      run.timedOut = true;
      cancelOpenTasks(rec, 'run timeout');
      break;
    case 'rerun':
      onRerun(rec, input);
      break;
  }
  finishIfDone(rec);
  return rec;
}

function id(run: RunState, i: number): string {
  return run.plan.graph.ids[i] as string;
}

function onAttemptFailed(
  rec: Recorder,
  input: Extract<RunInput, { type: 'attempt_failed' | 'attempt_lost' }>,
  random: () => number,
): void {
  const { run, now } = rec;
  const t = taskRun(run, input.task);
  if (t.state !== 'running' || t.attempt !== input.attempt) return;
  const policy = spec(run, input.task).retry;
  // A lost attempt is free unless the task's policy counts it (then it is an ordinary failure).
  const lost = input.type === 'attempt_lost' && !policy.countLost;
  const error: TaskError =
    input.type === 'attempt_lost'
      ? {
          code: 'WORKER_LOST',
          message: `attempt ${input.attempt} was lost with the process running it`,
          source: 'baton',
        }
      : input.error;
  const task = id(run, input.task);
  rec.emit({ type: 'attempt_failed', at: now, task, attempt: input.attempt, error, lost }, input.task);
  if (lost) {
    rec.emit({ type: 'tasks_queued', at: now, tasks: [task] }, input.task);
    rec.commands.push({ type: 'dispatch', task: input.task });
    return;
  }
  if (!run.cancelRequested && t.failures < policy.maxAttempts && isRetryableError(policy, error)) {
    const delayMs = retryDelayMs(policy, t.failures, random);
    const dueAt = now + delayMs;
    rec.emit({ type: 'retry_scheduled', at: now, task, dueAt, delayMs }, input.task);
    rec.commands.push({ type: 'arm_timer', task: input.task, dueAt });
    return;
  }
  rec.emit({ type: 'task_failed', at: now, task, error }, input.task);
  settle(rec, run.plan.graph.downstream[input.task] as readonly number[]);
}

function onCancel(rec: Recorder, reason: string, task: number | undefined): void {
  const { run, now } = rec;
  if (task === undefined) {
    rec.emit({ type: 'cancel_requested', at: now, reason });
    cancelOpenTasks(rec, reason);
    return;
  }
  const t = taskRun(run, task);
  if (isTerminalTask(t.state)) return;
  rec.emit({ type: 'cancel_requested', at: now, reason, task: id(run, task) });
  if (t.state === 'running') rec.commands.push({ type: 'abort', task, attempt: t.attempt, reason });
  rec.emit({ type: 'tasks_cancelled', at: now, tasks: [id(run, task)], reason }, task);
  settle(rec, run.plan.graph.downstream[task] as readonly number[]);
}

function cancelOpenTasks(rec: Recorder, reason: string): void {
  const { run } = rec;
  const ids: string[] = [];
  const indexes: number[] = [];
  run.tasks.forEach((t, i) => {
    if (isTerminalTask(t.state)) return;
    if (t.state === 'running') rec.commands.push({ type: 'abort', task: i, attempt: t.attempt, reason });
    ids.push(id(run, i));
    indexes.push(i);
  });
  if (ids.length > 0) rec.emit({ type: 'tasks_cancelled', at: rec.now, tasks: ids, reason }, ...indexes);
}

function onRerun(rec: Recorder, input: Extract<RunInput, { type: 'rerun' }>): void {
  const { run } = rec;
  if (!isTerminalRun(run.state)) {
    throw new BatonError('RUN_NOT_RETRYABLE', `run ${run.runId} is ${run.state}; only a finished run can be retried`);
  }
  let reset: number[];
  if (input.mode === 'failed') {
    reset = [];
    run.tasks.forEach((t, i) => {
      if (t.state !== 'succeeded') reset.push(i);
    });
  } else {
    const set = new Set(input.tasks);
    if (input.downstream) for (const d of downstreamClosure(run.plan.graph, input.tasks)) set.add(d);
    reset = [...set].sort((a, b) => a - b);
  }
  if (reset.length === 0) {
    throw new BatonError('RUN_NOT_RETRYABLE', `run ${run.runId} has no task to retry: every task succeeded`, {
      hint: 'Use --task <id> to run a succeeded task again.',
    });
  }
  rec.emit({ type: 'run_retried', at: rec.now, tasks: reset.map((i) => id(run, i)) }, ...reset);
  settle(rec, reset);
}

/**
 * Evaluates the trigger rules of the given tasks and, transitively, of the downstream
 * of every task this closes by a skip. Only tasks that changed are looked at: the ready
 * set is computed incrementally.
 */
function settle(rec: Recorder, candidates: readonly number[]): void {
  const { run, now } = rec;
  if (run.cancelRequested || run.timedOut || run.state !== 'running') return;
  const queued: number[] = [];
  const skipped: SkippedTask[] = [];
  const skippedIdx: number[] = [];
  // FIFO so that ready tasks are queued in declaration order.
  const work = [...candidates];
  for (let next = 0; next < work.length; next++) {
    const i = work[next] as number;
    const t = run.tasks[i] as TaskRun;
    if (t.state !== 'pending') continue;
    const s = spec(run, i);
    const up = run.plan.graph.upstream[i] as readonly number[];
    const outcome = evaluateTriggerRule(s.triggerRule, {
      total: up.length,
      succeeded: t.upSucceeded,
      failed: t.upFailed,
      skipped: t.upSkipped,
    });
    if (outcome === 'wait') continue;
    if (outcome === 'run') {
      // Mark now so a task reached twice in this wave is queued once.
      t.state = 'queued';
      queued.push(i);
      continue;
    }
    // A success is a reason for a skip only under the rules that wait for failures, and an
    // upstream-failed task counts as failed, never as skipped.
    const successBlocks = s.triggerRule === 'all_failed' || s.triggerRule === 'one_failed';
    const culprits = up
      .filter((u) => {
        const { state: us, upstreamFailed } = run.tasks[u] as TaskRun;
        return outcome === 'upstream_failed'
          ? us === 'failed' || us === 'cancelled' || upstreamFailed
          : (us === 'skipped' && !upstreamFailed) || (us === 'succeeded' && successBlocks);
      })
      .map((u) => id(run, u));
    const skip: SkippedTask = {
      task: id(run, i),
      reason: describeSkip(s.triggerRule, outcome, culprits),
      upstreamFailed: outcome === 'upstream_failed',
    };
    // Apply at once: the downstream of this task is evaluated in the same wave.
    evolve(run, { type: 'tasks_skipped', at: now, tasks: [skip] });
    skipped.push(skip);
    skippedIdx.push(i);
    rec.touched.add(i);
    work.push(...(run.plan.graph.downstream[i] as readonly number[]));
  }
  if (skipped.length > 0) rec.events.push({ type: 'tasks_skipped', at: now, tasks: skipped });
  if (queued.length > 0) {
    for (const i of queued) (run.tasks[i] as TaskRun).state = 'pending';
    rec.emit({ type: 'tasks_queued', at: now, tasks: queued.map((i) => id(run, i)) }, ...queued);
    for (const i of queued) rec.commands.push({ type: 'dispatch', task: i });
  }
}

function finishIfDone(rec: Recorder): void {
  const { run, now } = rec;
  if (run.open > 0 || isTerminalRun(run.state)) return;
  if (run.timedOut) {
    rec.emit({
      type: 'run_failed',
      at: now,
      error: { code: 'RUN_TIMEOUT', message: `run ${run.runId} exceeded its timeout`, source: 'user' },
    });
  } else if (run.cancelRequested) {
    rec.emit({ type: 'run_cancelled', at: now, reason: 'cancelled' });
  } else if (run.failedTasks > 0) {
    const named = (pick: (t: TaskRun) => boolean): string[] =>
      run.tasks.flatMap((t, i) => (pick(t) ? [id(run, i)] : []));
    const failed = named((t) => t.state === 'failed' || t.state === 'cancelled');
    // After a rerun without downstream, tasks skipped for an earlier upstream failure may
    // be the only failures left: name them rather than "0 task(s) failed".
    const blocked = failed.length > 0 ? [] : named((t) => t.state === 'skipped' && t.upstreamFailed);
    const names = failed.length > 0 ? failed : blocked;
    const list = `${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}`;
    rec.emit({
      type: 'run_failed',
      at: now,
      error: {
        code: 'TASK_FAILED',
        message:
          failed.length > 0
            ? `${failed.length} task(s) failed: ${list}`
            : `${blocked.length} task(s) skipped because an upstream task failed: ${list}`,
        source: 'user',
      },
    });
  } else {
    rec.emit({ type: 'run_succeeded', at: now });
  }
  rec.commands.push({ type: 'finished', state: run.state });
}
