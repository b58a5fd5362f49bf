/**
 * What the engine gathers for a run between two commits, and how it becomes the records a
 * commit writes: events, task run rows, queue rows, answered requests.
 */
import type { RunCommand, RunInput, RunState } from '../core/run-machine.js';
import { taskIdOf, taskIndexOf } from '../core/run-topology.js';
import type { CommitEntry, LogLine, RunRequest, TaskDispatch, TaskRunPatch } from '../store/store.js';

export interface Pending {
  events: CommitEntry['events'] extends readonly (infer E)[] ? E[] : never;
  touched: Set<number>;
  logs: LogLine[];
  answered: number[];
  starts: { task: number; attempt: number }[];
  commands: RunCommand[];
  dispatches: TaskDispatch[];
  harvested: string[];
  cancels: { task: number; attempt: number }[];
  /** Attempts the engine carries out itself once their start is committed. */
  inline: { task: number; attempt: number }[];
}

export function emptyPending(): Pending {
  return {
    events: [],
    touched: new Set(),
    logs: [],
    answered: [],
    starts: [],
    commands: [],
    dispatches: [],
    harvested: [],
    cancels: [],
    inline: [],
  };
}

/** What a request left for a run's owner asks of the run machine; null if it names nothing the run has. */
export function requestInput(state: RunState, request: RunRequest): RunInput | null {
  const payload = request.payload;
  const text = (key: string): string | null => (typeof payload[key] === 'string' ? (payload[key] as string) : null);
  const reason = text('reason') ?? 'cancelled by user';
  const task = text('task') === null ? undefined : taskIndexOf(state, text('task') as string);
  switch (request.kind) {
    case 'cancel':
      return { type: 'cancel', reason };
    case 'cancel_task':
      return task === undefined ? null : { type: 'cancel', reason, task };
    case 'signal':
      return {
        type: 'signal',
        id: text('id') ?? `request-${request.id}`,
        event: text('event') ?? '',
        key: text('key'),
        data: payload.data ?? null,
        by: text('by'),
      };
    case 'approval':
      return task === undefined
        ? null
        : {
            type: 'decision',
            task,
            approved: payload.approved === true,
            by: text('by') ?? 'unknown',
            comment: text('comment'),
          };
  }
}

export function hasPending(p: Pending): boolean {
  return (
    p.inline.length > 0 ||
    p.events.length > 0 ||
    p.logs.length > 0 ||
    p.starts.length > 0 ||
    p.commands.length > 0 ||
    p.answered.length > 0 ||
    p.harvested.length > 0 ||
    p.cancels.length > 0
  );
}

export function mergePending(older: Pending, newer: Pending): Pending {
  return {
    events: [...older.events, ...newer.events],
    touched: new Set([...older.touched, ...newer.touched]),
    logs: [...older.logs, ...newer.logs],
    answered: [...older.answered, ...newer.answered],
    starts: [...older.starts, ...newer.starts],
    commands: [...older.commands, ...newer.commands],
    dispatches: [...older.dispatches, ...newer.dispatches],
    harvested: [...older.harvested, ...newer.harvested],
    cancels: [...older.cancels, ...newer.cancels],
    inline: [...older.inline, ...newer.inline],
  };
}

export function runPatch(state: RunState) {
  return { state: state.state, startedAt: state.startedAt, endedAt: state.endedAt, error: state.error };
}

export function taskPatch(state: RunState, i: number): TaskRunPatch {
  const t = state.tasks[i];
  if (!t) throw new Error(`no task #${i}`);
  return {
    index: i,
    taskId: taskIdOf(state, i),
    state: t.state,
    attempts: t.attempt,
    startedAt: t.startedAt,
    endedAt: t.endedAt,
    skipReason: t.skipReason,
    output: t.output,
    error: t.error,
  };
}
