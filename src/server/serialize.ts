/**
 * Records of the application layer as the JSON of the API (schemas.ts): the shapes of
 * `baton show --json`, with what the API adds (durations, trigger, parent, task count).
 */
import type { RunState } from '../core/run-machine.js';
import type { StoredEvent, StoredLogLine, RunRecord, TaskRunRecord, FiringRecord } from '../store/store.js';
import type { ShowData } from '../app/run-views.js';
import { failureJson, failureSummary, runJson, taskJsonWith } from '../cli/render.js';
import { runAssetJson } from '../cli/render-assets.js';
import type { Firing, HistoryEvent, LogLine, Run, RunDetail, TaskError, TaskRun } from './schemas.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A run record as the API's Run. */
export function runOut(r: RunRecord): Run {
  return {
    ...(runJson(r) as unknown as Run),
    dedupe_key: r.dedupeKey,
    duration_ms: r.startedAt !== null && r.endedAt !== null ? r.endedAt - r.startedAt : null,
    trigger: r.triggerId,
    parent: r.parentRunId ? { run: r.parentRunId, task: r.parentTask } : null,
    task_count: r.taskCount,
  };
}

/** A task run as the API's TaskRun (with its wait and group when the folded state is known). */
export function taskOut(t: TaskRunRecord, state: RunState | null): TaskRun {
  const base = taskJsonWith(t, state) as unknown as TaskRun;
  const instance = /^(.*)\[(\d+)\]$/.exec(t.taskId);
  return {
    ...base,
    has_output: t.output !== undefined,
    ...(instance ? { parent_task: instance[1] as string, item: Number(instance[2]) } : {}),
  };
}

/** A run with everything `baton show --json` tells of it. */
export function runDetailOut(data: ShowData): RunDetail {
  const summary = failureSummary(data.run, data.tasks);
  return {
    ...runOut(data.run),
    tasks: data.tasks.map((t) => taskOut(t, data.state)),
    children: data.children.map(runOut),
    assets: data.assets.map((a) => ({ id: a.id, ...runAssetJson(a), schema: a.schema }) as RunDetail['assets'][number]),
    failure: summary ? (failureJson(summary) as RunDetail['failure']) : null,
  };
}

/** A stored history event. */
export function eventOut(e: StoredEvent): HistoryEvent {
  const { at, ...rest } = e.event as { at?: number; type: string };
  return { ...rest, seq: e.seq, at: typeof at === 'number' ? new Date(at).toISOString() : null };
}

/** A stored log line. */
export function logOut(l: StoredLogLine): LogLine {
  return {
    seq: l.seq,
    task: l.taskId,
    attempt: l.attempt,
    stream: l.stream as LogLine['stream'],
    at: new Date(l.at).toISOString(),
    text: l.text,
  };
}

/** A trigger firing. */
export function firingOut(f: FiringRecord): Firing {
  return { seq: f.seq, at: new Date(f.at).toISOString(), outcome: f.outcome, reason: f.reason, run_id: f.runId };
}

export { iso };

/** A stored error as the API's TaskError. */
export function errorOut(error: object | null): TaskError | null {
  return error as TaskError | null;
}
