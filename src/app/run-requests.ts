/**
 * What users ask of a run that waits: a signal (an event that wakes the tasks waiting for
 * it, or is kept until one does) and a decision on an approval task. Each request is
 * checked against the run's folded state first, so that a bad one changes nothing; then
 * it is applied directly when no live process owns the run, or left for the owner, whose
 * answer is awaited (bounded). Faces (the CLI, later the server) call these.
 */
import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { BatonError } from '../core/errors.js';
import type { TaskError } from '../core/model.js';
import type { RunEvent, RunInput, RunState, Wait } from '../core/run-machine.js';
import { foldRun } from '../core/run-machine.js';
import { taskCount, taskIdOf, taskIndexOf } from '../core/run-topology.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import { isTerminalRun } from '../core/states.js';
import type { RunRecord, RunRequestKind } from '../store/store.js';
import type { Runtime } from './runtime.js';

/** Event names a signal may carry. */
export const EVENT_NAME = /^[A-Za-z0-9_.-]+$/;

/** How long a request left for a run's owner is waited for by default. */
export const OWNER_WAIT_MS = 30_000;

/** A run's record, its state as the run machine sees it, and the history it was folded from. */
export interface RunView {
  readonly record: RunRecord;
  readonly state: RunState;
  readonly events: readonly RunEvent[];
}

export async function loadRunView(rt: Runtime, runId: string): Promise<RunView> {
  const record = await rt.store.getRun(runId);
  if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`);
  const plan = await rt.catalog.plan(record.flow, record.version);
  const events = (await rt.store.readEvents(runId)).map((e) => e.event);
  return { record, state: foldRun(runId, plan, events), events };
}

/** Who acts when nobody says: the operating system user, else `unknown`. */
export function defaultActor(env: NodeJS.ProcessEnv = process.env): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry for this uid (some containers): fall back to the environment.
  }
  return env.USER || env.LOGNAME || env.USERNAME || 'unknown';
}

/** How a request reached the run: applied here (no live owner) or by the process that owns the run. */
export type Delivery = 'direct' | 'owner';

/**
 * Applies `input` to the run when no live process owns it; otherwise leaves the request for
 * the owner and waits until the owner has answered it (it is gone from the pending ones).
 */
async function deliver(
  rt: Runtime,
  runId: string,
  input: RunInput,
  request: {
    readonly kind: RunRequestKind;
    readonly payload: Readonly<Record<string, unknown>>;
    readonly same: (payload: Readonly<Record<string, unknown>>) => boolean;
  },
  timeoutMs: number,
): Promise<Delivery> {
  const engine = rt.createEngine();
  let applied: boolean;
  try {
    applied = await engine.applyDirect(runId, input);
  } finally {
    await engine.stop();
  }
  if (applied) return 'direct';
  await rt.store.addRequest(runId, request.kind, request.payload);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = await rt.store.pendingRequests([runId]);
    if (!pending.some((r) => r.kind === request.kind && request.same(r.payload))) return 'owner';
    if (Date.now() > deadline) {
      const run = await rt.store.getRun(runId);
      throw new BatonError(
        'RUN_OWNED',
        `run ${runId} is owned by ${run?.owner ?? 'another process'}, which has not acted on the ${request.kind} within ${Math.round(timeoutMs / 1000)} s`,
        { hint: 'The request stays recorded; the owner applies it when it next polls. Check that process.' },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True if the run has tasks ready to start and nothing executing it would start them. */
function stalled(view: RunView, delivery: Delivery): boolean {
  if (delivery !== 'direct' || isTerminalRun(view.record.state)) return false;
  if (view.record.state === 'queued') return true;
  return view.state.tasks.some((t) => t.state === 'queued');
}

// --- signals ----------------------------------------------------------------------------

export interface SignalOptions {
  readonly event: string;
  /** Only tasks waiting with this match key take it (tasks whose wait has no key take any). */
  readonly key?: string | null;
  readonly data?: unknown;
  readonly by?: string | null;
  /** Makes the signal idempotent: a second signal with the same id does nothing. Default: a new uuid. */
  readonly id?: string;
  readonly timeoutMs?: number;
}

export interface SignalResult {
  readonly id: string;
  readonly event: string;
  readonly key: string | null;
  /** Task runs the signal woke (it became their output). */
  readonly woke: readonly string[];
  /** Received, and no task has taken it yet: the first task to wait for it will. */
  readonly kept: boolean;
  /** A signal with this id had been received before: nothing changed. */
  readonly duplicate: boolean;
  readonly delivery: Delivery;
  /** Unowned, with tasks ready to start: `baton resume` or a worker continues it. */
  readonly stalled: boolean;
  readonly after: RunView;
}

export async function sendSignal(rt: Runtime, runId: string, options: SignalOptions): Promise<SignalResult> {
  if (!EVENT_NAME.test(options.event)) {
    throw new BatonError('SIGNAL_INVALID', `event name "${options.event}" is not valid`, {
      hint: 'Use letters, digits, `_`, `.` and `-` only, e.g. payment_received or order.paid.',
    });
  }
  const id = options.id ?? randomUUID();
  if (id.trim() === '') throw new BatonError('SIGNAL_INVALID', 'the signal id is empty');
  const data = options.data === undefined ? null : options.data;
  const size = Buffer.byteLength(JSON.stringify(data), 'utf8');
  if (size > rt.config.outputLimitBytes) {
    throw new BatonError(
      'PAYLOAD_TOO_LARGE',
      `the signal data is ${size} bytes; a task output may be at most ${rt.config.outputLimitBytes} bytes`,
      { hint: 'Send a reference (a path or a key) instead of the data, or raise limits.output_bytes.' },
    );
  }
  const before = await loadRunView(rt, runId);
  if (isTerminalRun(before.record.state)) {
    throw new BatonError('SIGNAL_INVALID', `run ${runId} is already ${before.record.state}; it takes no more signals`, {
      hint: 'Signals wake tasks of unfinished runs; start a new run, or `baton retry` this one first.',
    });
  }
  const duplicate = before.state.signals.some((s) => s.id === id);
  const key = options.key ?? null;
  const by = options.by ?? null;
  const delivery = duplicate
    ? 'direct'
    : await deliver(
        rt,
        runId,
        { type: 'signal', id, event: options.event, key, data, by },
        {
          kind: 'signal',
          payload: { id, event: options.event, key, data, by },
          same: (p) => p.id === id,
        },
        options.timeoutMs ?? OWNER_WAIT_MS,
      );
  const after = await loadRunView(rt, runId);
  const woke = after.events.flatMap((e) => (e.type === 'task_succeeded' && e.signal === id ? [e.task] : []));
  const received = after.state.signals.find((s) => s.id === id);
  return {
    id,
    event: options.event,
    key,
    woke,
    kept: received !== undefined && !received.consumed,
    duplicate,
    delivery,
    stalled: !duplicate && stalled(after, delivery),
    after,
  };
}

// --- approvals --------------------------------------------------------------------------

export interface DecisionOptions {
  readonly approved: boolean;
  readonly by: string;
  readonly comment?: string | null;
  readonly timeoutMs?: number;
}

export interface DecisionResult {
  readonly task: string;
  /** The task's state once the decision was applied, and its error if it failed. */
  readonly taskState: TaskStateName;
  readonly taskError: TaskError | null;
  readonly runState: RunStateName;
  readonly delivery: Delivery;
  readonly stalled: boolean;
  readonly after: RunView;
}

/** Task runs waiting for an approval, as `id (approvers …)` for hints. */
function approvalWaiters(state: RunState): string[] {
  const out: string[] = [];
  const n = taskCount(state);
  for (let i = 0; i < n; i++) {
    const w = state.tasks[i]?.wait;
    if (state.tasks[i]?.state === 'waiting' && w?.kind === 'approval') out.push(taskIdOf(state, i));
  }
  return out;
}

function waitingHint(state: RunState, runId: string): string {
  const waiting = approvalWaiters(state);
  return waiting.length > 0
    ? `Tasks of run ${runId} waiting for an approval: ${waiting.slice(0, 20).join(', ')}${waiting.length > 20 ? ', …' : ''}.`
    : `No task of run ${runId} waits for an approval now; see \`baton show ${runId}\`.`;
}

/** Approves or rejects an approval task that waits. */
export async function decideApproval(
  rt: Runtime,
  runId: string,
  taskId: string,
  options: DecisionOptions,
): Promise<DecisionResult> {
  const by = options.by.trim();
  if (by === '') throw new BatonError('USAGE', '--by needs a name');
  const comment = options.comment === undefined || options.comment === '' ? null : options.comment;
  const before = await loadRunView(rt, runId);
  const { state } = before;
  const i = taskIndexOf(state, taskId);
  if (i === undefined) {
    throw new BatonError('TASK_NOT_FOUND', `run ${runId} has no task "${taskId}"`, {
      hint: waitingHint(state, runId),
    });
  }
  const t = state.tasks[i];
  const wait: Wait | null | undefined = t?.wait;
  if (!t || t.state !== 'waiting' || wait?.kind !== 'approval') {
    const what =
      t?.state === 'waiting' && wait
        ? `is waiting, but not for an approval (${describeWaitBriefly(wait)})`
        : `is ${t?.state ?? 'unknown'}${isTerminalRun(before.record.state) ? ` (run ${runId} ${before.record.state})` : ''}`;
    throw new BatonError(
      'APPROVAL_NOT_WAITING',
      `task ${taskId} of run ${runId} ${what}, not waiting for an approval`,
      {
        hint: waitingHint(state, runId),
      },
    );
  }
  if (wait.approvers.length > 0 && !wait.approvers.includes(by)) {
    throw new BatonError(
      'APPROVER_NOT_ALLOWED',
      `${by} may not decide ${taskId}: its approvers are ${wait.approvers.join(', ')}`,
      {
        hint: `Pass --by with one of: ${wait.approvers.join(', ')}.`,
        details: { approvers: wait.approvers, by },
      },
    );
  }
  const seen = before.events.length;
  const delivery = await deliver(
    rt,
    runId,
    { type: 'decision', task: i, approved: options.approved, by, comment },
    {
      kind: 'approval',
      payload: { task: taskId, approved: options.approved, by, comment },
      same: (p) => p.task === taskId && p.by === by && p.approved === options.approved,
    },
    options.timeoutMs ?? OWNER_WAIT_MS,
  );
  const after = await loadRunView(rt, runId);
  const decided = after.events
    .slice(seen)
    .some((e) => e.type === 'approval_decided' && e.task === taskId && e.by === by && e.approved === options.approved);
  const j = taskIndexOf(after.state, taskId) ?? i;
  const taskState = after.state.tasks[j]?.state ?? 'pending';
  const taskError = after.state.tasks[j]?.error ?? null;
  if (!decided) {
    throw new BatonError(
      'APPROVAL_NOT_WAITING',
      `task ${taskId} of run ${runId} stopped waiting before the decision arrived; it is ${taskState}`,
      { hint: `See what happened with \`baton show ${runId} --events\`.` },
    );
  }
  return {
    task: taskId,
    taskState,
    taskError: taskState === 'succeeded' ? null : taskError,
    runState: after.record.state,
    delivery,
    stalled: stalled(after, delivery),
    after,
  };
}

function describeWaitBriefly(wait: Wait): string {
  switch (wait.kind) {
    case 'timer':
      return 'a sleep';
    case 'event':
      return `event ${wait.event}`;
    case 'approval':
      return 'an approval';
    case 'run':
      return `child run ${wait.runId}`;
    case 'items':
      return 'its items';
    case 'handler':
      return `handler ${wait.handler}`;
  }
}
