/**
 * `baton show <run> --task <task>`: one task run in full. Its attempts are read back from
 * the run's history (each `task_started` opens one; a success, a failure, a lost worker or
 * a cancellation closes it), so they are what happened, including attempts of earlier
 * retries of the run. The task's error is printed whole: code, message, hint, details and
 * the stack trace of a thrown error.
 */
import { ERROR_CODES } from '../core/errors.js';
import type { TaskError } from '../core/model.js';
import type { RunEvent, RunState } from '../core/run-machine.js';
import { taskIndexOf } from '../core/run-topology.js';
import type { RunRecord, TaskRunRecord } from '../store/store.js';
import { describeWait, firstLine, logsCommandLine, span, table, taskJsonWith, time } from './render.js';

/** How an attempt ended, or `running`/`waiting` while it has not. */
export type AttemptOutcome = 'running' | 'waiting' | 'succeeded' | 'failed' | 'lost' | 'cancelled';

export interface AttemptRecord {
  readonly attempt: number;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly outcome: AttemptOutcome;
  readonly error: TaskError | null;
  /** When the retry that follows a failed attempt was due. */
  readonly retryAt: number | null;
  /** Why it was cancelled. */
  readonly reason: string | null;
}

/** The attempts of one task run, in the order they started, from the run's history. */
export function taskAttempts(events: readonly RunEvent[], taskId: string): AttemptRecord[] {
  const out: AttemptRecord[] = [];
  const open = (attempt?: number): number => {
    for (let k = out.length - 1; k >= 0; k--) {
      const a = out[k] as AttemptRecord;
      if (a.endedAt === null && (attempt === undefined || a.attempt === attempt)) return k;
    }
    return -1;
  };
  const close = (k: number, patch: Partial<AttemptRecord> & { readonly endedAt: number }): void => {
    if (k >= 0) out[k] = { ...(out[k] as AttemptRecord), ...patch };
  };
  for (const e of events) {
    switch (e.type) {
      case 'task_started':
        if (e.task === taskId) {
          out.push({
            attempt: e.attempt,
            startedAt: e.at,
            endedAt: null,
            outcome: 'running',
            error: null,
            retryAt: null,
            reason: null,
          });
        }
        break;
      case 'task_waiting':
        if (e.task === taskId) {
          const k = open(e.attempt);
          if (k >= 0) out[k] = { ...(out[k] as AttemptRecord), outcome: 'waiting' };
        }
        break;
      case 'task_succeeded':
        if (e.task === taskId) close(open(e.attempt), { endedAt: e.at, outcome: 'succeeded' });
        break;
      case 'attempt_failed':
        if (e.task === taskId) {
          close(open(e.attempt), { endedAt: e.at, outcome: e.lost ? 'lost' : 'failed', error: e.error });
        }
        break;
      case 'task_failed':
        // A map or a race fails with its items or branches, without an attempt of its own failing.
        if (e.task === taskId) close(open(), { endedAt: e.at, outcome: 'failed', error: e.error });
        break;
      case 'retry_scheduled':
        if (e.task === taskId && out.length > 0) {
          out[out.length - 1] = { ...(out[out.length - 1] as AttemptRecord), retryAt: e.dueAt };
        }
        break;
      case 'tasks_cancelled':
        if (e.tasks.includes(taskId)) close(open(), { endedAt: e.at, outcome: 'cancelled', reason: e.reason });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Everything `show --task` prints. */
export interface TaskDetail {
  readonly run: RunRecord;
  readonly task: TaskRunRecord;
  readonly attempts: readonly AttemptRecord[];
  /** The run as the run machine sees it, when its history could be folded. */
  readonly state: RunState | null;
}

/** The error's own hint, else the catalog's for its code (errors thrown by task code carry none). */
function hintOf(error: TaskError): string | null {
  if (error.hint) return error.hint;
  return Object.hasOwn(ERROR_CODES, error.code) ? ERROR_CODES[error.code as keyof typeof ERROR_CODES].hint : null;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The JSON of `show <run> --task <task> --json`: the task as `show --json` lists it, plus its attempts. */
export function taskDetailJson(detail: TaskDetail): Record<string, unknown> {
  const { run, task } = detail;
  return {
    run: { id: run.id, flow: run.flow, version: run.version, state: run.state },
    ...taskJsonWith(task, detail.state),
    hint: task.error ? hintOf(task.error) : null,
    attempt_history: detail.attempts.map((a) => ({
      attempt: a.attempt,
      started_at: iso(a.startedAt),
      ended_at: iso(a.endedAt),
      duration_ms: a.endedAt === null ? null : a.endedAt - a.startedAt,
      outcome: a.outcome,
      error: a.error,
      retry_at: iso(a.retryAt),
      reason: a.reason,
    })),
    logs_command: logsCommandLine(run.id, task.taskId),
  };
}

/** `text` under a label, its later lines indented to the label's width. */
function labelled(label: string, text: string): string {
  return `${label.padEnd(9)}${text.replace(/\n/g, `\n${' '.repeat(9)}`)}`;
}

function attemptNote(a: AttemptRecord): string {
  const parts: string[] = [];
  if (a.error) parts.push(`${a.error.code}: ${firstLine(a.error.message)}`);
  if (a.reason) parts.push(a.reason);
  if (a.retryAt !== null) parts.push(`retry due ${time(a.retryAt)}`);
  return parts.join('; ');
}

export function renderTaskDetail(detail: TaskDetail): string {
  const { run, task, state } = detail;
  const i = state ? taskIndexOf(state, task.taskId) : undefined;
  const live = i === undefined ? undefined : state?.tasks[i];
  const wait = task.state === 'waiting' && live?.state === 'waiting' && live.wait ? live.wait : null;
  const lines = [
    labelled('run', `${run.id} (flow ${run.flow}, ${run.state})`),
    labelled('task', task.taskId),
    labelled('state', task.state),
    ...(wait ? [labelled('waits', describeWait(wait, live?.map))] : []),
    ...(task.skipReason ? [labelled('skipped', task.skipReason)] : []),
    labelled('started', time(task.startedAt)),
    labelled('duration', span(task.startedAt, task.endedAt)),
    labelled('attempts', String(task.attempts)),
  ];
  let text = lines.join('\n');
  if (detail.attempts.length > 0) {
    const rows = detail.attempts.map((a) => [
      `#${a.attempt}`,
      time(a.startedAt),
      time(a.endedAt),
      a.endedAt === null ? '-' : span(a.startedAt, a.endedAt),
      a.outcome,
      attemptNote(a),
    ]);
    text += `\n\n${table(['ATTEMPT', 'STARTED', 'ENDED', 'DURATION', 'OUTCOME', 'NOTE'], rows)}`;
  }
  const error = task.error;
  const hint = error ? hintOf(error) : null;
  if (error) {
    const errorLines = [
      labelled('error', `${error.code}: ${error.message}`),
      ...(error.kind ? [labelled('kind', error.kind)] : []),
      ...(error.source ? [labelled('source', error.source)] : []),
      ...(hint ? [labelled('hint', hint)] : []),
      ...(error.details && Object.keys(error.details).length > 0
        ? [labelled('details', JSON.stringify(error.details, null, 2))]
        : []),
      ...(error.stack ? [`stack\n${error.stack.replace(/^/gm, '  ')}`] : []),
    ];
    text += `\n\n${errorLines.join('\n')}`;
  }
  text += `\n\n${labelled('output', task.output === undefined ? 'null' : JSON.stringify(task.output, null, 2))}`;
  text += `\n${labelled('logs', logsCommandLine(run.id, task.taskId))}`;
  return text;
}
