/**
 * The fold of a run's history: `evolve` applies one event to a run's state, and
 * `foldRun` replays a whole history. An event illegal in the state of its run or task
 * throws RUN_INVALID_TRANSITION, and one in a newer history format HISTORY_TOO_NEW:
 * history is never bent to fit. Tallies (open tasks, upstream counts, a map's items) are
 * kept up to date here, so that deciding what happens next never scans the whole run.
 */
import { BatonError } from './errors.js';
import { compileGraph } from './graph.js';
import type { FlowSpec } from './model.js';
import { eventFormat, HISTORY_FORMAT, invalidTransition } from './run-history.js';
import type { FlowPlan } from './run-topology.js';
import {
  addInstances,
  downstreamOf,
  instanceOf,
  localIdOf,
  taskCount,
  taskIdOf,
  taskIndexOf,
  taskSpecOf,
} from './run-topology.js';
import type { MapProgress, RunEvent, RunState, TaskRun, Wait } from './run-types.js';
import type { TaskStateName } from './states.js';
import { isTerminalRun, isTerminalTask } from './states.js';

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
    benign: false,
    startedAt: null,
    endedAt: null,
    retryAt: null,
    skipReason: null,
    output: undefined,
    error: null,
    wait: null,
    map: null,
  };
}

/** A new run in state `queued`, every task pending. */
export function createRunState(runId: string, plan: FlowPlan): RunState {
  const tasks = plan.spec.tasks.map(newTaskRun);
  return {
    runId,
    plan,
    dynamic: null,
    mapFirst: new Map(),
    mapItems: new Map(),
    state: 'queued',
    tasks,
    open: tasks.length,
    finallyOpen: plan.spec.tasks.filter((t) => t.finally).length,
    failedTasks: 0,
    cancelRequested: false,
    timedOut: false,
    startedAt: null,
    endedAt: null,
    error: null,
    signals: [],
    selected: null,
    followUps: new Set(),
  };
}

/**
 * Rebuilds a run's state from its stored history. Throws HISTORY_TOO_NEW for an event
 * written in a format newer than HISTORY_FORMAT, and RUN_INVALID_TRANSITION for one that
 * is illegal where it stands.
 */
export function foldRun(runId: string, plan: FlowPlan, events: Iterable<RunEvent>): RunState {
  const run = createRunState(runId, plan);
  for (const event of events) {
    if (event.v !== HISTORY_FORMAT) eventFormat(runId, event);
    evolve(run, event);
  }
  run.followUps.clear();
  return run;
}

function indexOf(run: RunState, task: string, event: string): number {
  const i = taskIndexOf(run, task);
  if (i === undefined) throw invalidTransition(run.runId, event, run.state, task, 'the run has no such task');
  return i;
}

export function taskRun(run: RunState, i: number): TaskRun {
  const t = run.tasks[i];
  if (!t) throw new BatonError('TASK_NOT_FOUND', `run ${run.runId} has no task #${i}`);
  return t;
}

/** True if a task run in this final state counts as failed for its downstream. */
export function countsAsFailed(t: TaskRun, state: TaskStateName): boolean {
  return state === 'failed' || (state === 'cancelled' && !t.benign) || (state === 'skipped' && t.upstreamFailed);
}

/**
 * True for a branch of a race: its failure is the race's business (a race that finds a
 * winner succeeds, one that does not fails), not the run's.
 */
export function isRaceBranch(run: RunState, i: number): boolean {
  const local = localIdOf(run, i);
  return downstreamOf(run, i).some((d) => taskSpecOf(run, d).race?.branches.includes(local) === true);
}

/** Marks a task terminal and updates the tallies that depend on it. */
function close(run: RunState, i: number, state: TaskStateName, at: number, event: string): void {
  const t = taskRun(run, i);
  if (isTerminalTask(t.state)) throw invalidTransition(run.runId, event, t.state, taskIdOf(run, i));
  t.state = state;
  t.endedAt = at;
  t.retryAt = null;
  t.wait = null;
  run.open--;
  const s = taskSpecOf(run, i);
  const failed = countsAsFailed(t, state);
  const instance = instanceOf(run, i);
  if (instance) {
    const m = (run.tasks[instance.parent] as TaskRun).map;
    if (m) {
      if (failed) m.itemFailed[instance.item] = 1;
      m.itemOpen[instance.item] = (m.itemOpen[instance.item] as number) - 1;
      if (m.itemOpen[instance.item] === 0) {
        m.ended++;
        if (m.started[instance.item]) m.active--;
      }
    }
    run.followUps.add(instance.parent);
  } else {
    if (failed && !isRaceBranch(run, i)) run.failedTasks++;
    if (s.finally) run.finallyOpen--;
  }
  if (s.handles !== undefined || s.onFailure) run.followUps.add(i);
  for (const d of downstreamOf(run, i)) {
    const down = run.tasks[d] as TaskRun;
    if (state === 'succeeded') down.upSucceeded++;
    else if (failed) down.upFailed++;
    else down.upSkipped++;
  }
}

function requireState(run: RunState, i: number, allowed: readonly TaskStateName[], event: string): TaskRun {
  const t = taskRun(run, i);
  if (!allowed.includes(t.state)) throw invalidTransition(run.runId, event, t.state, taskIdOf(run, i));
  return t;
}

/** An event naming an attempt must name the task's current one (`next`: the one after it). */
function requireAttempt(run: RunState, i: number, t: TaskRun, attempt: number, event: string, next = false): void {
  if (next ? attempt > t.attempt : attempt === t.attempt) return;
  const expected = next ? `an attempt after ${t.attempt}` : `attempt ${t.attempt}`;
  throw invalidTransition(run.runId, event, t.state, taskIdOf(run, i), `it names attempt ${attempt}, not ${expected}`);
}

/** The task an event names, if it names one, for error messages. */
function taskOf(event: RunEvent): string | null {
  return 'task' in event && typeof event.task === 'string' ? event.task : null;
}

/**
 * What the run's own state allows: a finished run takes only a rerun; a rerun, only a
 * finished run; a start, only a queued run.
 */
function requireRunState(run: RunState, event: RunEvent): void {
  const ended = isTerminalRun(run.state);
  const legal =
    event.type === 'run_retried'
      ? ended
      : event.type === 'run_started'
        ? run.state === 'queued'
        : !ended || event.type === 'run_created';
  if (!legal) throw invalidTransition(run.runId, event.type, run.state, taskOf(event));
}

function newMapProgress(count: number, size: number): MapProgress {
  return {
    count,
    size,
    started: new Uint8Array(count),
    cursor: 0,
    active: 0,
    ended: 0,
    itemOpen: new Int32Array(count).fill(size),
    itemFailed: new Uint8Array(count),
  };
}

/**
 * Applies one event. An event illegal in the state of its run or task throws
 * RUN_INVALID_TRANSITION (naming the run, the state and the event); the state may then
 * be half-applied, and must be dropped.
 */
export function evolve(run: RunState, event: RunEvent): void {
  requireRunState(run, event);
  switch (event.type) {
    case 'run_created':
      if (event.tasks) run.selected = new Set(event.tasks);
      return;
    case 'run_started':
      run.state = 'running';
      run.startedAt ??= event.at;
      return;
    case 'tasks_queued':
      for (const id of event.tasks) {
        const t = requireState(
          run,
          indexOf(run, id, event.type),
          ['pending', 'retrying', 'running', 'waiting'],
          event.type,
        );
        t.state = 'queued';
        t.retryAt = null;
        t.wait = null;
      }
      return;
    case 'task_started': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['queued'], event.type);
      requireAttempt(run, i, t, event.attempt, event.type, true);
      t.state = 'running';
      t.attempt = event.attempt;
      t.startedAt ??= event.at;
      return;
    }
    case 'task_succeeded': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['running', 'waiting'], event.type);
      requireAttempt(run, i, t, event.attempt, event.type);
      t.output = event.output;
      if (event.recoveredBy === undefined) t.error = null;
      // Set only when there is one: most task runs never have it, and keep their shape.
      if (event.cachedFrom !== undefined) t.cachedFrom = event.cachedFrom;
      else if (t.cachedFrom !== undefined) delete t.cachedFrom;
      if (event.signal !== undefined) {
        const signal = run.signals.find((s) => s.id === event.signal);
        if (signal) signal.consumed = true;
      }
      close(run, i, 'succeeded', event.at, event.type);
      return;
    }
    case 'attempt_failed': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['running', 'waiting'], event.type);
      requireAttempt(run, i, t, event.attempt, event.type);
      if (!event.lost) t.failures++;
      t.error = event.error;
      t.wait = null;
      t.state = 'running';
      return;
    }
    case 'retry_scheduled': {
      const t = requireState(run, indexOf(run, event.task, event.type), ['running'], event.type);
      t.state = 'retrying';
      t.retryAt = event.dueAt;
      return;
    }
    case 'task_failed': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['running', 'waiting'], event.type);
      t.error = event.error;
      close(run, i, 'failed', event.at, event.type);
      return;
    }
    case 'tasks_skipped':
      for (const s of event.tasks) {
        const i = indexOf(run, s.task, event.type);
        const t = requireState(run, i, ['pending'], event.type);
        t.skipReason = s.reason;
        t.upstreamFailed = s.upstreamFailed;
        close(run, i, 'skipped', event.at, event.type);
      }
      return;
    case 'tasks_cancelled':
      for (const id of event.tasks) {
        const i = indexOf(run, id, event.type);
        const t = taskRun(run, i);
        t.benign = event.benign === true;
        if (t.benign) t.skipReason = event.reason;
        else t.error ??= { code: 'TASK_CANCELLED', message: event.reason, source: 'user' };
        close(run, i, 'cancelled', event.at, event.type);
      }
      return;
    case 'cancel_requested':
      if (event.timeout) run.timedOut = true;
      else if (event.task === undefined) run.cancelRequested = true;
      return;
    case 'run_retried':
      applyRerun(
        run,
        event.tasks.map((id) => indexOf(run, id, event.type)),
      );
      return;
    case 'task_waiting': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['running'], event.type);
      requireAttempt(run, i, t, event.attempt, event.type);
      t.state = 'waiting';
      t.wait = event.wait;
      t.retryAt = waitDue(event.wait);
      return;
    }
    case 'task_expanded': {
      const i = indexOf(run, event.task, event.type);
      const t = requireState(run, i, ['running'], event.type);
      const mapSpec = taskSpecOf(run, i).map;
      if (!mapSpec || t.map !== null) {
        const why = mapSpec ? 'its items are known already' : 'it is no map';
        throw invalidTransition(run.runId, event.type, t.state, event.task, why);
      }
      const first = addInstances(run, i, event.items);
      const size = mapSpec.template.length;
      for (let k = 0; k < event.items.length * size; k++) run.tasks[first + k] = newTaskRun();
      run.open += event.items.length * size;
      t.state = 'waiting';
      t.wait = { kind: 'items' };
      t.map = newMapProgress(event.items.length, size);
      run.followUps.add(i);
      return;
    }
    case 'map_items_started': {
      const t = taskRun(run, indexOf(run, event.task, event.type));
      const m = t.map;
      if (!m) throw invalidTransition(run.runId, event.type, t.state, event.task, 'it has no items');
      for (const item of event.items) {
        if (!(item >= 0 && item < m.count)) {
          throw invalidTransition(run.runId, event.type, t.state, event.task, `it has no item #${item}`);
        }
        m.started[item] = 1;
        if ((m.itemOpen[item] as number) > 0) m.active++;
      }
      while (m.cursor < m.count && m.started[m.cursor]) m.cursor++;
      return;
    }
    case 'task_catching': {
      // Running for an attempt's failure; waiting for a map whose items failed.
      const t = requireState(run, indexOf(run, event.task, event.type), ['running', 'waiting'], event.type);
      t.state = 'waiting';
      t.error = event.error;
      t.wait = { kind: 'handler', handler: event.handler };
      return;
    }
    case 'signal_received':
      run.signals.push({
        id: event.id,
        event: event.event,
        key: event.key,
        data: event.data,
        by: event.by,
        consumed: false,
      });
      return;
    case 'approval_decided':
      requireState(run, indexOf(run, event.task, event.type), ['waiting'], event.type);
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
    default: {
      // A type this Baton does not know, in a format it reads: the history is damaged.
      const type = String((event as { type?: unknown }).type);
      throw invalidTransition(run.runId, type, run.state, null, 'no such event');
    }
  }
}

export function waitDue(wait: Wait): number | null {
  switch (wait.kind) {
    case 'timer':
      return wait.until;
    case 'event':
    case 'approval':
    case 'run':
      return wait.timeoutAt;
    default:
      return null;
  }
}

/**
 * Reopens the given tasks and recomputes every tally from the final states left. A map
 * that already has its items keeps them: it waits again, and only its reopened items run.
 */
function applyRerun(run: RunState, reset: readonly number[]): void {
  for (const i of reset) {
    const t = taskRun(run, i);
    const expanded = t.map !== null;
    t.state = expanded ? 'waiting' : 'pending';
    t.wait = expanded ? { kind: 'items' } : null;
    t.failures = 0;
    t.upstreamFailed = false;
    t.benign = false;
    t.startedAt = expanded ? t.startedAt : null;
    t.endedAt = null;
    t.retryAt = null;
    t.skipReason = null;
    t.output = undefined;
    t.error = null;
    if (expanded) run.followUps.add(i);
  }
  let open = 0;
  let failed = 0;
  let finallyOpen = 0;
  for (const t of run.tasks) {
    t.upSucceeded = 0;
    t.upFailed = 0;
    t.upSkipped = 0;
  }
  for (const t of run.tasks) {
    if (!t.map) continue;
    t.map.active = 0;
    t.map.ended = 0;
    t.map.cursor = 0;
    t.map.itemOpen.fill(0);
    t.map.itemFailed.fill(0);
  }
  const total = taskCount(run);
  for (let i = 0; i < total; i++) {
    const t = run.tasks[i] as TaskRun;
    const instance = instanceOf(run, i);
    const m = instance ? (run.tasks[instance.parent] as TaskRun).map : null;
    if (!isTerminalTask(t.state)) {
      open++;
      if (!instance && taskSpecOf(run, i).finally) finallyOpen++;
      if (m && instance) m.itemOpen[instance.item] = (m.itemOpen[instance.item] as number) + 1;
      continue;
    }
    const isFailed = countsAsFailed(t, t.state);
    if (isFailed && !instance && !isRaceBranch(run, i)) failed++;
    if (isFailed && m && instance) m.itemFailed[instance.item] = 1;
    for (const d of downstreamOf(run, i)) {
      const down = run.tasks[d] as TaskRun;
      if (t.state === 'succeeded') down.upSucceeded++;
      else if (isFailed) down.upFailed++;
      else down.upSkipped++;
    }
  }
  for (const t of run.tasks) {
    const m = t.map;
    if (!m) continue;
    for (let item = 0; item < m.count; item++) {
      // An item with reopened task runs starts again; the others stay as they ended.
      if (m.itemOpen[item] === 0) {
        m.ended++;
        m.started[item] = 1;
      } else m.started[item] = 0;
    }
    while (m.cursor < m.count && m.started[m.cursor]) m.cursor++;
  }
  run.open = open;
  run.failedTasks = failed;
  run.finallyOpen = finallyOpen;
  run.state = 'running';
  run.cancelRequested = false;
  run.timedOut = false;
  run.endedAt = null;
  run.error = null;
}
