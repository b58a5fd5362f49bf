/**
 * The run state machine: pure, no IO, no clock. `decide(run, input, now, random)` turns
 * something that happened (an attempt ended, a timer fired, a user cancelled, an event
 * arrived) into the events that record it and the commands the engine must carry out;
 * `evolve(run, event)` applies one event. A run's state is the fold of its events, so a
 * process that takes a run over after a crash replays the events and lands in exactly
 * the state that was committed.
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
 * - waiting: parked, holding no slot: a sleep, an event, an approval, a child run, the
 *   items of a map, or the handler of its failure. `wait` says which.
 * - retrying: an attempt failed; a durable timer re-queues it at `retryAt`.
 * - succeeded / failed / skipped / cancelled: terminal. A task skipped because an
 *   upstream failed keeps `upstreamFailed` so that it counts as failed downstream; a task
 *   cancelled because it lost a race or was not needed for a quorum is `benign` and
 *   counts as skipped.
 *
 * Dynamic tasks: a map task, once the engine tells it its items, adds one instance of its
 * template per item (see run-topology.ts) and waits for them; items start in order, at
 * most `maxParallel` at a time, and the map ends when every item ended. Instances never
 * fail the run themselves: their map decides.
 *
 * The state is mutated in place (a run may hold 100,000 tasks); decide is still a pure
 * function of (state, input, now, random). Results of attempts that are not the task's
 * current attempt are ignored: that is the fencing at the model level.
 */
import { BatonError } from './errors.js';
import type { MapSpec, TaskError, TaskSpec } from './model.js';
import { errorMatches } from './model.js';
import { isRetryableError, retryDelayMs } from './retry-policy.js';
import {
  descendantsOf,
  downstreamOf,
  instanceOf,
  siblingIndex,
  taskCount,
  taskIdOf,
  taskSpecOf,
  templateGraph,
  upstreamOf,
} from './run-topology.js';
import { countsAsFailed, evolve, isRaceBranch, taskRun, waitDue } from './run-fold.js';
import type {
  Decision,
  MapProgress,
  RunCommand,
  RunEvent,
  RunInput,
  RunSignal,
  RunState,
  SkippedTask,
  TaskRun,
  Wait,
} from './run-types.js';
import type { TriggerRule } from './states.js';
import { isTerminalRun, isTerminalTask } from './states.js';
import { describeSkip, evaluateTriggerRule } from './trigger-rules.js';

export type { FlowPlan } from './run-topology.js';
export type * from './run-types.js';
export { compilePlan, createRunState, evolve, foldRun } from './run-fold.js';

/** Collects events, applying each as it is emitted so later decisions see it. */
class Recorder implements Decision {
  readonly events: RunEvent[] = [];
  readonly commands: RunCommand[] = [];
  readonly touched = new Set<number>();
  constructor(
    readonly run: RunState,
    readonly now: number,
    readonly random: () => number,
  ) {}

  emit(event: RunEvent, ...tasks: number[]): void {
    evolve(this.run, event);
    this.events.push(event);
    for (const t of tasks) this.touched.add(t);
  }
}

/**
 * Decides what an input means for the run. Returns no events for inputs that no longer
 * apply (a late result from a superseded attempt, a timer for a task that moved on). An
 * input that would record an illegal transition (items for a task that is no map, say)
 * throws RUN_INVALID_TRANSITION from `evolve`; `run` may then be half-applied, and the
 * caller must drop it rather than go on from it.
 */
export function decide(run: RunState, input: RunInput, now: number, random: () => number): Decision {
  const rec = new Recorder(run, now, random);
  run.followUps.clear();
  if (isTerminalRun(run.state) && input.type !== 'rerun') return rec;
  switch (input.type) {
    case 'start':
      if (run.state !== 'queued') return rec;
      rec.emit({ type: 'run_started', at: now });
      settle(
        rec,
        run.plan.spec.tasks.map((_, i) => i),
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
      succeed(rec, input.task, input.output, input.cachedFrom);
      break;
    }
    case 'attempt_failed':
    case 'attempt_lost':
      onAttemptFailed(rec, input);
      break;
    case 'attempt_parked':
      onParked(rec, input);
      break;
    case 'map_items': {
      const t = taskRun(run, input.task);
      if (t.state !== 'running' || t.attempt !== input.attempt) return rec;
      rec.emit({ type: 'task_expanded', at: now, task: id(run, input.task), items: input.items }, input.task);
      const first = run.mapFirst.get(input.task) as number;
      for (let k = first; k < run.tasks.length; k++) rec.touched.add(k);
      break;
    }
    case 'retry_due':
      onTimer(rec, input.task);
      break;
    case 'signal':
      onSignal(rec, input);
      break;
    case 'decision':
      onDecision(rec, input);
      break;
    case 'child_finished':
      onChildFinished(rec, input);
      break;
    case 'cancel':
      onCancel(rec, input.reason, input.task);
      break;
    case 'run_timeout':
      rec.emit({ type: 'cancel_requested', at: now, reason: 'run timeout', timeout: true });
      cancelOpenTasks(rec, 'run timeout');
      break;
    case 'rerun':
      onRerun(rec, input);
      break;
  }
  drain(rec);
  finishIfDone(rec);
  return rec;
}

function id(run: RunState, i: number): string {
  return taskIdOf(run, i);
}

function spec(run: RunState, i: number): TaskSpec {
  return taskSpecOf(run, i);
}

/** Records a success (adding what choice and race tasks imply) and moves on downstream. */
function succeed(rec: Recorder, i: number, rawOutput: unknown, cachedFrom?: string): void {
  const { run, now } = rec;
  const s = spec(run, i);
  const t = taskRun(run, i);
  const output = s.race
    ? { ...(rawOutput as Record<string, unknown>), losers: raceLosers(rec, i, rawOutput) }
    : rawOutput;
  rec.emit(
    cachedFrom === undefined
      ? { type: 'task_succeeded', at: now, task: id(run, i), attempt: t.attempt, output }
      : { type: 'task_succeeded', at: now, task: id(run, i), attempt: t.attempt, output, cachedFrom },
    i,
  );
  if (s.choice) skipBranchesNotTaken(rec, i, output);
  settle(rec, downstreamOf(run, i));
}

/** Fails a task for good, unless its handler takes the error. */
function failTask(rec: Recorder, i: number, error: TaskError): void {
  const { run, now } = rec;
  const s = spec(run, i);
  const handler = s.onFailure ? siblingIndex(run, i, s.onFailure.handler) : undefined;
  if (
    s.onFailure &&
    handler !== undefined &&
    !run.cancelRequested &&
    !run.timedOut &&
    taskRun(run, handler).state === 'pending' &&
    errorMatches(s.onFailure.on, error)
  ) {
    rec.emit({ type: 'task_catching', at: now, task: id(run, i), error, handler: id(run, handler) }, i);
    rec.emit({ type: 'tasks_queued', at: now, tasks: [id(run, handler)] }, handler);
    rec.commands.push({ type: 'dispatch', task: handler });
    return;
  }
  rec.emit({ type: 'task_failed', at: now, task: id(run, i), error }, i);
  settle(rec, downstreamOf(run, i));
}

function onAttemptFailed(rec: Recorder, input: Extract<RunInput, { type: 'attempt_failed' | 'attempt_lost' }>): void {
  const { run } = rec;
  const t = taskRun(run, input.task);
  if ((t.state !== 'running' && t.state !== 'waiting') || t.attempt !== input.attempt) return;
  if (t.wait?.kind === 'items' || t.wait?.kind === 'handler') return;
  const error: TaskError =
    input.type === 'attempt_lost'
      ? {
          code: 'WORKER_LOST',
          message: `attempt ${input.attempt} was lost with the process running it`,
          source: 'baton',
        }
      : input.error;
  attemptFailed(rec, input.task, error, input.type === 'attempt_lost');
}

/** One attempt ended in failure: retry it (unless `final`), or fail the task. */
function attemptFailed(rec: Recorder, i: number, error: TaskError, wasLost: boolean, final = false): void {
  const { run, now } = rec;
  const t = taskRun(run, i);
  const policy = spec(run, i).retry;
  // A lost attempt is free unless the task's policy counts it (then it is an ordinary failure).
  const lost = wasLost && !policy.countLost;
  const task = id(run, i);
  rec.emit({ type: 'attempt_failed', at: now, task, attempt: t.attempt, error, lost }, i);
  if (lost) {
    rec.emit({ type: 'tasks_queued', at: now, tasks: [task] }, i);
    rec.commands.push({ type: 'dispatch', task: i });
    return;
  }
  const ending = run.cancelRequested || run.timedOut;
  if (!final && !ending && t.failures < policy.maxAttempts && isRetryableError(policy, error)) {
    const delayMs = retryDelayMs(policy, t.failures, rec.random);
    const dueAt = now + delayMs;
    rec.emit({ type: 'retry_scheduled', at: now, task, dueAt, delayMs }, i);
    rec.commands.push({ type: 'arm_timer', task: i, dueAt });
    return;
  }
  failTask(rec, i, error);
}

function onParked(rec: Recorder, input: Extract<RunInput, { type: 'attempt_parked' }>): void {
  const { run, now } = rec;
  const i = input.task;
  const t = taskRun(run, i);
  if (t.state !== 'running' || t.attempt !== input.attempt) return;
  const wait = input.wait;
  if (wait.kind === 'timer' && wait.until <= now) {
    succeed(rec, i, { until: wait.until });
    return;
  }
  if (wait.kind === 'event') {
    const signal = run.signals.find((s) => !s.consumed && signalMatches(wait, s));
    if (signal) {
      rec.emit(
        {
          type: 'task_succeeded',
          at: now,
          task: id(run, i),
          attempt: t.attempt,
          output: signal.data,
          signal: signal.id,
        },
        i,
      );
      settle(rec, downstreamOf(run, i));
      return;
    }
  }
  rec.emit({ type: 'task_waiting', at: now, task: id(run, i), attempt: t.attempt, wait }, i);
  const due = waitDue(wait);
  if (due !== null) rec.commands.push({ type: 'arm_timer', task: i, dueAt: due });
}

function signalMatches(wait: Extract<Wait, { kind: 'event' }>, signal: RunSignal): boolean {
  return signal.event === wait.event && (wait.key === null || signal.key === wait.key);
}

/** A durable timer fired: a retry is due, a sleep ended, or a wait timed out. */
function onTimer(rec: Recorder, i: number): void {
  const { run, now } = rec;
  const t = taskRun(run, i);
  if (t.state === 'retrying') {
    rec.emit({ type: 'tasks_queued', at: now, tasks: [id(run, i)] }, i);
    rec.commands.push({ type: 'dispatch', task: i });
    return;
  }
  const wait = t.wait;
  if (t.state !== 'waiting' || !wait || t.retryAt === null || t.retryAt > now) return;
  switch (wait.kind) {
    case 'timer':
      succeed(rec, i, { until: wait.until });
      return;
    case 'event':
      attemptFailed(
        rec,
        i,
        {
          code: 'WAIT_TIMEOUT',
          message: `no event "${wait.event}"${wait.key === null ? '' : ` with key "${wait.key}"`} arrived in time`,
          source: 'user',
          hint: `Send it with: baton signal ${run.runId} ${wait.event} --data '<json>'`,
        },
        false,
      );
      return;
    case 'approval':
      attemptFailed(
        rec,
        i,
        { code: 'APPROVAL_TIMEOUT', message: `nobody approved or rejected ${id(run, i)} in time`, source: 'user' },
        false,
      );
      return;
    case 'run':
      rec.commands.push({ type: 'cancel_child', task: i, runId: wait.runId, reason: `${id(run, i)} timed out` });
      attemptFailed(
        rec,
        i,
        { code: 'TASK_TIMEOUT', message: `child run ${wait.runId} did not finish in time`, source: 'user' },
        false,
      );
      return;
    default:
      return;
  }
}

function onSignal(rec: Recorder, input: Extract<RunInput, { type: 'signal' }>): void {
  const { run, now } = rec;
  if (run.signals.some((s) => s.id === input.id)) return;
  const { type: _type, ...signal } = input;
  rec.emit({ type: 'signal_received', at: now, ...signal });
  const received = run.signals[run.signals.length - 1] as RunSignal;
  // Every task waiting for the event takes it; if none waits yet, it waits for the first that does.
  for (let i = 0; i < run.tasks.length; i++) {
    const t = run.tasks[i] as TaskRun;
    if (t.state !== 'waiting' || t.wait?.kind !== 'event' || !signalMatches(t.wait, received)) continue;
    rec.emit(
      { type: 'task_succeeded', at: now, task: id(run, i), attempt: t.attempt, output: input.data, signal: input.id },
      i,
    );
    settle(rec, downstreamOf(run, i));
  }
}

function onDecision(rec: Recorder, input: Extract<RunInput, { type: 'decision' }>): void {
  const { run, now } = rec;
  const i = input.task;
  const t = taskRun(run, i);
  if (t.state !== 'waiting' || t.wait?.kind !== 'approval') return;
  if (t.wait.approvers.length > 0 && !t.wait.approvers.includes(input.by)) return;
  const task = id(run, i);
  rec.emit({ type: 'approval_decided', at: now, task, approved: input.approved, by: input.by, comment: input.comment });
  if (input.approved) {
    succeed(rec, i, { approved: true, by: input.by, comment: input.comment, at: now });
    return;
  }
  attemptFailed(
    rec,
    i,
    {
      code: 'APPROVAL_REJECTED',
      kind: 'rejected',
      message: `${input.by} rejected ${task}${input.comment ? `: ${input.comment}` : ''}`,
      source: 'user',
      details: { by: input.by, comment: input.comment },
    },
    false,
    // A decision is not a fault: asking again would overrule the person who rejected it.
    true,
  );
}

function onChildFinished(rec: Recorder, input: Extract<RunInput, { type: 'child_finished' }>): void {
  const { run } = rec;
  const t = taskRun(run, input.task);
  if (t.state !== 'waiting' || t.wait?.kind !== 'run' || t.wait.runId !== input.runId) return;
  if (input.state === 'succeeded') {
    succeed(rec, input.task, input.output);
    return;
  }
  attemptFailed(
    rec,
    input.task,
    {
      code: 'SUBFLOW_FAILED',
      message: `child run ${input.runId} ${input.state}${input.error ? `: ${input.error.message}` : ''}`,
      source: 'user',
      details: { runId: input.runId, state: input.state, ...(input.error ? { error: input.error } : {}) },
    },
    false,
  );
}

/** Cancels task runs; their running attempts are aborted and child runs cancelled. */
function cancelTasks(rec: Recorder, indexes: readonly number[], reason: string, benign: boolean): number[] {
  const { run, now } = rec;
  // A map takes its instances along, and a task waiting for its handler takes the handler.
  const all = new Set<number>();
  for (const i of indexes) {
    const t = taskRun(run, i);
    if (isTerminalTask(t.state)) continue;
    all.add(i);
    for (const d of descendantsOf(run, i)) all.add(d);
    if (t.wait?.kind === 'handler') {
      const handler = siblingIndex(run, i, t.wait.handler);
      if (handler !== undefined) all.add(handler);
    }
  }
  const open = [...all].filter((i) => !isTerminalTask(taskRun(run, i).state)).sort((a, b) => a - b);
  if (open.length === 0) return open;
  for (const i of open) {
    const t = taskRun(run, i);
    if (t.state === 'running') rec.commands.push({ type: 'abort', task: i, attempt: t.attempt, reason });
    if (t.wait?.kind === 'run') rec.commands.push({ type: 'cancel_child', task: i, runId: t.wait.runId, reason });
  }
  rec.emit(
    { type: 'tasks_cancelled', at: now, tasks: open.map((i) => id(run, i)), reason, ...(benign ? { benign } : {}) },
    ...open,
  );
  return open;
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
  const cancelled = cancelTasks(rec, [task], reason, false);
  settle(
    rec,
    cancelled.flatMap((i) => downstreamOf(run, i)),
  );
}

/**
 * Cancels every open task but the `finally` ones, which run once the rest ended; a run
 * that never started has nothing to clean up, and cancels those too.
 */
function cancelOpenTasks(rec: Recorder, reason: string): void {
  const { run } = rec;
  const started = run.state !== 'queued';
  const indexes: number[] = [];
  run.tasks.forEach((t, i) => {
    if (!isTerminalTask(t.state) && !(started && spec(run, i).finally && !instanceOf(run, i))) indexes.push(i);
  });
  cancelTasks(rec, indexes, reason, false);
}

function onRerun(rec: Recorder, input: Extract<RunInput, { type: 'rerun' }>): void {
  const { run } = rec;
  if (!isTerminalRun(run.state)) {
    throw new BatonError('RUN_NOT_RETRYABLE', `run ${run.runId} is ${run.state}; only a finished run can be retried`);
  }
  const set = new Set<number>();
  if (input.mode === 'failed') {
    const total = taskCount(run);
    for (let i = 0; i < total; i++) {
      const t = run.tasks[i] as TaskRun;
      if (t.state === 'succeeded' || (t.state === 'cancelled' && t.benign)) continue;
      // An instance reruns only with its map (whose index is lower): a map that succeeded
      // keeps its items as they ended, skipped or failed ones included.
      const instance = instanceOf(run, i);
      if (instance && !set.has(instance.parent)) continue;
      set.add(i);
    }
  } else {
    for (const i of input.tasks) set.add(i);
    // A reopened map runs all its items again.
    for (const i of input.tasks) for (const d of descendantsOf(run, i)) set.add(d);
    if (input.downstream) {
      // What follows a rerun instance: the rest of its item, and what follows its map.
      const work = [...input.tasks, ...input.tasks.flatMap((i) => ancestorsOf(run, i))];
      for (let next = 0; next < work.length; next++) {
        for (const d of downstreamOf(run, work[next] as number)) {
          if (set.has(d)) continue;
          set.add(d);
          work.push(d);
          for (const i of descendantsOf(run, d)) set.add(i);
        }
      }
    }
    // A reopened item reopens its map.
    for (const i of [...set]) for (const p of ancestorsOf(run, i)) set.add(p);
  }
  // A handler goes with the task it handles: it reruns when that task does, never alone.
  for (const i of [...set]) {
    const handler = handlerOf(run, i);
    if (handler === undefined || set.has(handler)) continue;
    set.add(handler);
    for (const d of descendantsOf(run, handler)) set.add(d);
  }
  for (const i of [...set]) {
    const target = targetOf(run, i);
    if (target === null || (target !== undefined && set.has(target))) continue;
    set.delete(i);
    for (const d of descendantsOf(run, i)) set.delete(d);
  }
  // `finally` tasks run again at the end of every attempt of the run.
  run.plan.spec.tasks.forEach((s, i) => {
    if (s.finally && set.size > 0) set.add(i);
  });
  if (set.size === 0) {
    throw new BatonError('RUN_NOT_RETRYABLE', `run ${run.runId} has no task to retry: every task succeeded`, {
      hint: 'Use --task <id> to run a succeeded task again.',
    });
  }
  const reset = [...set].sort((a, b) => a - b);
  rec.emit({ type: 'run_retried', at: rec.now, tasks: reset.map((i) => id(run, i)) }, ...reset);
  settle(
    rec,
    reset.filter((i) => !instanceOf(run, i)),
  );
}

/** The maps a task run belongs to, innermost first (none for a flow task). */
function ancestorsOf(run: RunState, i: number): number[] {
  const out: number[] = [];
  for (let p = instanceOf(run, i)?.parent; p !== undefined; p = instanceOf(run, p)?.parent) out.push(p);
  return out;
}

/** The handler of a task's failure, if it has one. */
function handlerOf(run: RunState, i: number): number | undefined {
  const onFailure = spec(run, i).onFailure;
  return onFailure ? siblingIndex(run, i, onFailure.handler) : undefined;
}

/** The task a handler handles: null if `i` is no handler, undefined if its target is unknown. */
function targetOf(run: RunState, i: number): number | null | undefined {
  const handles = spec(run, i).handles;
  return handles === undefined ? null : siblingIndex(run, i, handles);
}

interface RuleOf {
  readonly rule: TriggerRule;
  readonly k: number;
  readonly cancelRest: boolean;
}

/** The plain rules, one object each: a wave of 100,000 tasks asks for them as often. */
const PLAIN_RULES = new Map<TriggerRule, RuleOf>();

/** The trigger rule a task is evaluated with, and its quorum. */
function ruleOf(s: TaskSpec): RuleOf {
  if (s.race?.mode === 'first') return { rule: 'k_of_n', k: 1, cancelRest: true };
  if (s.triggerRule === 'k_of_n' && s.quorum) return { rule: 'k_of_n', k: s.quorum.k, cancelRest: s.quorum.cancelRest };
  let plain = PLAIN_RULES.get(s.triggerRule);
  if (!plain) PLAIN_RULES.set(s.triggerRule, (plain = Object.freeze({ rule: s.triggerRule, k: 1, cancelRest: false })));
  return plain;
}

/**
 * Evaluates the trigger rules of the given tasks and, transitively, of the downstream
 * of every task this closes by a skip. Only tasks that changed are looked at: the ready
 * set is computed incrementally. Handlers and `finally` tasks are never started here.
 */
function settle(rec: Recorder, candidates: readonly number[]): void {
  const { run, now } = rec;
  // Most tasks of a wide flow have nothing downstream: no wave to build.
  if (candidates.length === 0 || run.cancelRequested || run.timedOut || run.state !== 'running') return;
  const queued: number[] = [];
  const skipped: SkippedTask[] = [];
  const quorumReached: number[] = [];
  // FIFO so that ready tasks are queued in declaration order.
  const work = [...candidates];
  for (let next = 0; next < work.length; next++) {
    const i = work[next] as number;
    const t = run.tasks[i] as TaskRun;
    if (t.state !== 'pending') continue;
    const s = spec(run, i);
    if (s.handles !== undefined || (s.finally && !instanceOf(run, i))) continue;
    if (run.selected !== null && !run.selected.has(s.id)) {
      const skip: SkippedTask = { task: id(run, i), reason: notSelectedReason(run.selected), upstreamFailed: false };
      evolve(run, { type: 'tasks_skipped', at: now, tasks: [skip] });
      skipped.push(skip);
      rec.touched.add(i);
      work.push(...downstreamOf(run, i));
      continue;
    }
    const up = upstreamOf(run, i);
    // A target its choice did not select stays skipped whatever its rule says (after a rerun).
    const notTaken = branchNotTaken(run, i, up);
    if (notTaken !== null) {
      const skip: SkippedTask = { task: id(run, i), reason: notTaken, upstreamFailed: false };
      evolve(run, { type: 'tasks_skipped', at: now, tasks: [skip] });
      skipped.push(skip);
      rec.touched.add(i);
      work.push(...downstreamOf(run, i));
      continue;
    }
    const counts = { total: up.length, succeeded: t.upSucceeded, failed: t.upFailed, skipped: t.upSkipped };
    const { rule: ownRule, k, cancelRest } = ruleOf(s);
    let rule = ownRule;
    let outcome = evaluateTriggerRule(rule, counts, k);
    if (s.race && rule !== s.triggerRule && (outcome === 'skip' || outcome === 'upstream_failed')) {
      // A 'first' race nobody won is still decided by its own rule (it fails RACE_NO_WINNER).
      rule = s.triggerRule;
      outcome = evaluateTriggerRule(rule, counts);
    }
    if (outcome === 'wait') continue;
    if (outcome === 'run') {
      // Mark now so a task reached twice in this wave is queued once.
      t.state = 'queued';
      queued.push(i);
      if (cancelRest && t.upSucceeded >= k) quorumReached.push(i);
      continue;
    }
    // A success is a reason for a skip only under the rules that wait for failures, and an
    // upstream-failed task counts as failed, never as skipped.
    const successBlocks = s.triggerRule === 'all_failed' || s.triggerRule === 'one_failed';
    const culprits = up
      .filter((u) => {
        const ut = run.tasks[u] as TaskRun;
        return outcome === 'upstream_failed'
          ? countsAsFailed(ut, ut.state)
          : (isTerminalTask(ut.state) && ut.state !== 'succeeded' && !countsAsFailed(ut, ut.state)) ||
              (ut.state === 'succeeded' && successBlocks);
      })
      .map((u) => id(run, u));
    const skip: SkippedTask = {
      task: id(run, i),
      reason: describeSkip(rule, outcome, culprits),
      upstreamFailed: outcome === 'upstream_failed',
    };
    // Apply at once: the downstream of this task is evaluated in the same wave.
    evolve(run, { type: 'tasks_skipped', at: now, tasks: [skip] });
    skipped.push(skip);
    rec.touched.add(i);
    work.push(...downstreamOf(run, i));
  }
  if (skipped.length > 0) rec.events.push({ type: 'tasks_skipped', at: now, tasks: skipped });
  if (queued.length === 0) return;
  for (const i of queued) (run.tasks[i] as TaskRun).state = 'pending';
  // Not as emit's rest arguments: a wave may queue 100,000 tasks.
  rec.emit({ type: 'tasks_queued', at: now, tasks: queued.map((i) => id(run, i)) });
  for (const i of queued) rec.touched.add(i);
  for (const i of quorumReached) {
    const s = spec(run, i);
    const reason = s.race ? `lost the race for ${id(run, i)}` : `not needed: ${id(run, i)} reached its quorum`;
    const rest = upstreamOf(run, i).filter((u) => !isTerminalTask(taskRun(run, u).state));
    const cancelled = cancelTasks(rec, rest, reason, true);
    settle(
      rec,
      cancelled.flatMap((u) => downstreamOf(run, u)),
    );
  }
  for (const i of queued) {
    // A race without a scoring function is decided here, from its branches' results.
    if (spec(run, i).race && !spec(run, i).race?.score) resolveRace(rec, i);
    else rec.commands.push({ type: 'dispatch', task: i });
  }
}

/** Branches of a race: task runs by the ids it names. */
function raceBranches(run: RunState, i: number): number[] {
  const race = spec(run, i).race;
  if (!race) return [];
  return race.branches.flatMap((b) => {
    const k = siblingIndex(run, i, b);
    return k === undefined ? [] : [k];
  });
}

function raceLosers(rec: Recorder, i: number, output: unknown): unknown[] {
  const { run, now } = rec;
  const winner = (output as { winner?: unknown } | null)?.winner;
  return raceBranches(run, i)
    .filter((b) => id(run, b) !== winner && spec(run, b).id !== winner)
    .map((b) => {
      const t = taskRun(run, b);
      return {
        task: id(run, b),
        state: t.state,
        runtimeMs: t.startedAt === null ? null : (t.endedAt ?? now) - t.startedAt,
        ...(t.skipReason ? { reason: t.skipReason } : {}),
      };
    });
}

function resolveRace(rec: Recorder, i: number): void {
  const { run, now } = rec;
  const race = spec(run, i).race;
  if (!race) return;
  const branches = raceBranches(run, i);
  const succeeded = branches.filter((b) => taskRun(run, b).state === 'succeeded');
  let winner: number | undefined;
  if (race.mode === 'first') {
    winner = succeeded.reduce<number | undefined>(
      (best, b) =>
        best === undefined || (taskRun(run, b).endedAt ?? 0) < (taskRun(run, best).endedAt ?? 0) ? b : best,
      undefined,
    );
  } else {
    const order = race.priority ?? race.branches;
    winner = order.map((b) => siblingIndex(run, i, b)).find((b) => b !== undefined && succeeded.includes(b));
  }
  rec.emit({ type: 'task_started', at: now, task: id(run, i), attempt: taskRun(run, i).attempt + 1 }, i);
  if (winner === undefined) {
    failTask(rec, i, {
      code: 'RACE_NO_WINNER',
      message: `no branch of race ${id(run, i)} succeeded`,
      source: 'user',
    });
    return;
  }
  succeed(rec, i, { winner: spec(run, winner).id, output: taskRun(run, winner).output });
}

/** The branches a choice's output selected. */
function selectedBranches(output: unknown): Set<string> {
  const raw = (output as { selected?: unknown } | null)?.selected;
  return new Set(Array.isArray(raw) ? raw.map(String) : []);
}

function notTakenReason(run: RunState, choice: number, selected: ReadonlySet<string>): string {
  return `branch not taken: ${id(run, choice)} chose ${[...selected].join(', ') || 'no branch'}`;
}

/** Why task `i` is a branch a succeeded upstream choice did not take, or null if it is not. */
function branchNotTaken(run: RunState, i: number, up: readonly number[]): string | null {
  for (const u of up) {
    const choice = spec(run, u).choice;
    const ut = run.tasks[u] as TaskRun;
    if (!choice || ut.state !== 'succeeded') continue;
    const target = choice.targets.find((name) => siblingIndex(run, u, name) === i);
    if (target === undefined) continue;
    const selected = selectedBranches(ut.output);
    if (!selected.has(target)) return notTakenReason(run, u, selected);
  }
  return null;
}

/** Why a task outside a run's chosen tasks is skipped. */
function notSelectedReason(selected: ReadonlySet<string>): string {
  const names = [...selected];
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
  return `not selected: this run runs only ${shown}`;
}

/** After a choice: its targets that were not selected are skipped. */
function skipBranchesNotTaken(rec: Recorder, i: number, output: unknown): void {
  const { run, now } = rec;
  const choice = spec(run, i).choice;
  if (!choice) return;
  const selected = selectedBranches(output);
  const skips: SkippedTask[] = [];
  const indexes: number[] = [];
  for (const target of choice.targets) {
    if (selected.has(target)) continue;
    const k = siblingIndex(run, i, target);
    if (k === undefined || taskRun(run, k).state !== 'pending') continue;
    skips.push({ task: id(run, k), reason: notTakenReason(run, i, selected), upstreamFailed: false });
    indexes.push(k);
  }
  if (skips.length === 0) return;
  rec.emit({ type: 'tasks_skipped', at: now, tasks: skips }, ...indexes);
  settle(
    rec,
    indexes.flatMap((k) => downstreamOf(run, k)),
  );
}

/**
 * Reacts to ends that other task runs wait for, until nothing is left: a map's items, a
 * handler's target, a handler no longer needed, and the `finally` tasks once the rest of
 * the run ended.
 */
function drain(rec: Recorder): void {
  const { run } = rec;
  for (;;) {
    const next = run.followUps.values().next();
    if (next.done) {
      if (startFinally(rec)) continue;
      return;
    }
    run.followUps.delete(next.value);
    followUp(rec, next.value);
  }
}

function followUp(rec: Recorder, i: number): void {
  const { run, now } = rec;
  const t = taskRun(run, i);
  const s = spec(run, i);
  if (t.map && t.state === 'waiting' && t.wait?.kind === 'items') pumpMap(rec, i);
  if (s.handles !== undefined && isTerminalTask(t.state)) {
    const target = siblingIndex(run, i, s.handles);
    const tt = target === undefined ? undefined : taskRun(run, target);
    if (target !== undefined && tt?.state === 'waiting' && tt.wait?.kind === 'handler') {
      const recover = spec(run, target).onFailure?.recover === true;
      if (t.state === 'succeeded' && recover) {
        rec.emit(
          {
            type: 'task_succeeded',
            at: now,
            task: id(run, target),
            attempt: tt.attempt,
            output: t.output,
            recoveredBy: id(run, i),
          },
          target,
        );
      } else {
        rec.emit(
          {
            type: 'task_failed',
            at: now,
            task: id(run, target),
            error: tt.error ?? { code: 'TASK_FAILED', message: 'failed', source: 'user' },
            handledBy: id(run, i),
          },
          target,
        );
      }
      settle(rec, downstreamOf(run, target));
    }
  }
  if (s.onFailure && isTerminalTask(t.state)) {
    const handler = siblingIndex(run, i, s.onFailure.handler);
    if (handler !== undefined && taskRun(run, handler).state === 'pending') {
      rec.emit(
        {
          type: 'tasks_skipped',
          at: now,
          tasks: [
            { task: id(run, handler), reason: `not needed: ${id(run, i)} ended ${t.state}`, upstreamFailed: false },
          ],
        },
        handler,
      );
      settle(rec, downstreamOf(run, handler));
    }
  }
}

/** Starts a map's next items while its parallelism allows; ends the map after its last. */
function pumpMap(rec: Recorder, i: number): void {
  const { run, now } = rec;
  const t = taskRun(run, i);
  const m = t.map as MapProgress;
  const mapSpec = spec(run, i).map as MapSpec;
  const first = run.mapFirst.get(i) as number;
  if (!run.cancelRequested && !run.timedOut) {
    const limit = mapSpec.maxParallel ?? Number.POSITIVE_INFINITY;
    const items: number[] = [];
    // An item that ended before it started (cancelled by hand) is passed over, not counted.
    let starting = 0;
    for (let item = m.cursor; item < m.count && m.active + starting < limit; item++) {
      if (m.started[item]) continue;
      items.push(item);
      if ((m.itemOpen[item] as number) > 0) starting++;
    }
    if (items.length > 0) {
      rec.emit({ type: 'map_items_started', at: now, task: id(run, i), items }, i);
      const tasks: number[] = [];
      for (const item of items) for (let k = 0; k < m.size; k++) tasks.push(first + item * m.size + k);
      settle(rec, tasks);
    }
  }
  if (m.ended < m.count || t.state !== 'waiting' || t.wait?.kind !== 'items') return;
  const outputs: unknown[] = [];
  const failures: { index: number; item: unknown; error: TaskError | null }[] = [];
  const values = run.mapItems.get(i) ?? [];
  const sinks = templateGraph(mapSpec).downstream.flatMap((d, local) => (d.length === 0 ? [local] : []));
  for (let item = 0; item < m.count; item++) {
    const base = first + item * m.size;
    if (m.itemFailed[item]) {
      let error: TaskError | null = null;
      for (let k = 0; k < m.size && !error; k++) {
        const it = taskRun(run, base + k);
        if (countsAsFailed(it, it.state)) error = it.error;
      }
      failures.push({ index: item, item: values[item], error });
      continue;
    }
    if (!mapSpec.group) outputs.push(taskRun(run, base).output ?? null);
    else if (sinks.length === 1) outputs.push(taskRun(run, base + (sinks[0] as number)).output ?? null);
    else {
      outputs.push(
        Object.fromEntries(
          sinks.map((local) => [mapSpec.template[local]?.id, taskRun(run, base + local).output ?? null]),
        ),
      );
    }
  }
  if (mapSpec.onItemFailure === 'continue') {
    succeed(rec, i, { results: outputs, failures });
    return;
  }
  if (failures.length === 0) {
    succeed(rec, i, outputs);
    return;
  }
  const listed = failures
    .slice(0, 5)
    .map((f) => `#${f.index}${f.error ? ` (${f.error.code}: ${f.error.message})` : ''}`)
    .join('; ');
  failTask(rec, i, {
    code: 'MAP_ITEM_FAILED',
    message: `${failures.length} of ${m.count} item(s) of ${id(run, i)} failed: ${listed}${failures.length > 5 ? '; …' : ''}`,
    source: 'user',
    hint: 'Set on_item_failure: continue to hand the successes and the failures downstream instead.',
    details: { failures: failures.slice(0, 100).map((f) => ({ index: f.index, error: f.error })) },
  });
}

/** Queues the `finally` tasks once every other task ended. Returns true if it queued any. */
function startFinally(rec: Recorder): boolean {
  const { run, now } = rec;
  if (run.finallyOpen === 0 || run.open !== run.finallyOpen || run.state !== 'running') return false;
  const ready: number[] = [];
  run.plan.spec.tasks.forEach((s, i) => {
    if (s.finally && run.tasks[i]?.state === 'pending') ready.push(i);
  });
  if (ready.length === 0) return false;
  rec.emit({ type: 'tasks_queued', at: now, tasks: ready.map((i) => id(run, i)) }, ...ready);
  for (const i of ready) rec.commands.push({ type: 'dispatch', task: i });
  return true;
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
      run.plan.spec.tasks.flatMap((_, i) =>
        pick(run.tasks[i] as TaskRun) && !isRaceBranch(run, i) ? [id(run, i)] : [],
      );
    const failed = named((t) => t.state === 'failed' || (t.state === 'cancelled' && !t.benign));
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
