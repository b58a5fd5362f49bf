/**
 * Rendering for the CLI: plain tables for people, JSON for programs. Results go to
 * stdout, diagnostics and progress to stderr.
 */
import { fileURLToPath } from 'node:url';
import { formatDuration } from '../core/duration.js';
import type { Problem } from '../core/errors.js';
import { BatonError, ERROR_CODES, formatLocation } from '../core/errors.js';
import type { TaskError } from '../core/model.js';
import { withoutInternalPaths } from '../core/internal-paths.js';
import type { RunEvent, RunState, Wait } from '../core/run-machine.js';
import { instanceOf, taskIndexOf, taskSpecOf } from '../core/run-topology.js';
import type { TaskStateName } from '../core/states.js';
import type { LogLine, RunRecord, TaskRunRecord } from '../store/store.js';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return tableWithLines(
    headers,
    rows.map((cells) => ({ cells })),
  );
}

export function time(ms: number | null): string {
  return ms === null
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

export function span(start: number | null, end: number | null): string {
  if (start === null) return '-';
  return end === null ? 'running' : formatDuration(end - start);
}

/** The JSON shape of a run in `baton runs --json`. */
export function runJson(r: RunRecord): Record<string, unknown> {
  return {
    id: r.id,
    flow: r.flow,
    version: r.version,
    state: r.state,
    created_at: new Date(r.createdAt).toISOString(),
    started_at: r.startedAt === null ? null : new Date(r.startedAt).toISOString(),
    ended_at: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
    params: r.params,
    labels: r.labels,
    error: r.error,
  };
}

/** The JSON shape of a task run in `baton show --json`. */
export function taskJson(t: TaskRunRecord): Record<string, unknown> {
  return {
    id: t.taskId,
    state: t.state,
    attempts: t.attempts,
    started_at: t.startedAt === null ? null : new Date(t.startedAt).toISOString(),
    ended_at: t.endedAt === null ? null : new Date(t.endedAt).toISOString(),
    duration_ms: t.startedAt !== null && t.endedAt !== null ? t.endedAt - t.startedAt : null,
    skip_reason: t.skipReason,
    output: t.output === undefined ? null : t.output,
    error: t.error,
  };
}

/** Labels as `key=value` pairs in key order, separated by commas. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

export function renderRuns(runs: readonly RunRecord[]): string {
  if (runs.length === 0) return 'no runs';
  // A LABELS column only when some run has labels: listings without them stay as they were.
  const labelled = runs.some((r) => Object.keys(r.labels).length > 0);
  return table(
    ['RUN', 'FLOW', 'STATE', 'CREATED', 'DURATION', ...(labelled ? ['LABELS'] : [])],
    runs.map((r) => [
      r.id,
      r.flow,
      r.state,
      time(r.createdAt),
      span(r.startedAt, r.endedAt),
      ...(labelled ? [formatLabels(r.labels) || '-'] : []),
    ]),
  );
}

/** A line of a task table: cells aligned in columns, or free text between them (a header, a summary). */
type Entry = { readonly cells: readonly string[] } | { readonly line: string };

/** Like `table`, with free lines kept in place: only the cells decide the column widths. */
function tableWithLines(headers: readonly string[], entries: readonly Entry[]): string {
  const rows = entries.flatMap((e) => ('cells' in e ? [e.cells] : []));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...entries.map((e) => ('cells' in e ? line(e.cells) : e.line))].join('\n');
}

/** A map's progress, as far as describing it needs. */
type MapCount = { readonly count: number; readonly ended: number } | null | undefined;

/** What a waiting task waits for, in words; `map` adds how many items are still open. */
export function describeWait(wait: Wait, map?: MapCount): string {
  const timeout = (at: number | null) => (at === null ? '' : `; times out ${time(at)}`);
  switch (wait.kind) {
    case 'timer':
      return `sleeping until ${time(wait.until)}`;
    case 'event':
      return `waiting for event ${wait.event}${wait.key === null ? '' : ` (key ${wait.key})`}${timeout(wait.timeoutAt)}`;
    case 'approval':
      return `waiting for approval (${wait.approvers.length > 0 ? `approvers ${wait.approvers.join(', ')}` : 'anyone may decide'})${timeout(wait.timeoutAt)}`;
    case 'run':
      return `waiting for child run ${wait.runId}${timeout(wait.timeoutAt)}`;
    case 'items':
      return map ? `waiting for ${map.count - map.ended}/${map.count} items` : 'waiting for its items';
    case 'handler':
      return `waiting for handler ${wait.handler}`;
  }
}

/** The JSON shape of a wait in `baton show --json`: times as ISO 8601. */
export function waitJson(wait: Wait, map?: MapCount): Record<string, unknown> {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  switch (wait.kind) {
    case 'timer':
      return { kind: 'timer', until: iso(wait.until) };
    case 'event':
      return { kind: 'event', event: wait.event, key: wait.key, timeout_at: iso(wait.timeoutAt) };
    case 'approval':
      return { kind: 'approval', approvers: wait.approvers, timeout_at: iso(wait.timeoutAt) };
    case 'run':
      return { kind: 'run', run_id: wait.runId, timeout_at: iso(wait.timeoutAt) };
    case 'items':
      return { kind: 'items', items: map?.count ?? null, open: map ? map.count - map.ended : null };
    case 'handler':
      return { kind: 'handler', handler: wait.handler };
  }
}

/** Order in which state counts are listed. */
const STATE_ORDER: readonly TaskStateName[] = [
  'succeeded',
  'failed',
  'running',
  'retrying',
  'queued',
  'waiting',
  'pending',
  'skipped',
  'cancelled',
];

function countStates(states: readonly TaskStateName[]): string {
  const counts = new Map<TaskStateName, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
  return STATE_ORDER.filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${s}`)
    .join(', ');
}

/** Open states, most telling first: an item with a running task run is running. */
const OPEN_ORDER: readonly TaskStateName[] = ['running', 'retrying', 'queued', 'waiting', 'pending'];

/** The state of one map item from the states of its task runs (one for a plain map). */
function itemState(states: readonly { readonly state: TaskStateName; readonly benign: boolean }[]): TaskStateName {
  for (const open of OPEN_ORDER) if (states.some((s) => s.state === open)) return open;
  if (states.some((s) => s.state === 'failed')) return 'failed';
  if (states.some((s) => s.state === 'cancelled' && !s.benign)) return 'cancelled';
  if (states.some((s) => s.state === 'succeeded')) return 'succeeded';
  return 'skipped';
}

/** Members of a summarized group that are still listed: those that need a look. */
function needsAttention(state: TaskStateName, benign: boolean): boolean {
  return (
    state === 'running' ||
    state === 'retrying' ||
    state === 'waiting' ||
    state === 'failed' ||
    (state === 'cancelled' && !benign)
  );
}

export interface ShowOptions {
  /** The run as the run machine sees it (waits, map items, groups); without it, rows are listed flat. */
  readonly state?: RunState | null;
  /** List every map instance and every group member. */
  readonly expand?: boolean;
  /** Child runs (subflows) of the run. */
  readonly children?: readonly RunRecord[];
  /** Print each task's output whole rather than cut to OUTPUT_WIDTH characters. */
  readonly full?: boolean;
}

/** Characters of a task's output shown in the OUTPUT column of `show`, unless `--full`. */
export const OUTPUT_WIDTH = 40;

/** A task output as one line of compact JSON, cut to `OUTPUT_WIDTH` characters with `…` unless `full`; `-` for none. */
export function outputCell(output: unknown, full = false): string {
  if (output === undefined || output === null) return '-';
  let text: string;
  try {
    text = JSON.stringify(output) ?? String(output);
  } catch {
    // Outputs are JSON when stored; a value that is not (a cycle) still gets a cell.
    text = String(output);
  }
  const chars = [...text];
  return full || chars.length <= OUTPUT_WIDTH ? text : `${chars.slice(0, OUTPUT_WIDTH - 1).join('')}…`;
}

/** The first line of a message, for places that have one line for it. */
export function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}

/** A word as a POSIX shell reads it back: as is when it is plain, in single quotes otherwise. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command that prints a task's logs, ready to paste. */
export function logsCommandLine(runId: string, taskId: string | null): string {
  return `baton logs ${shellWord(runId)}${taskId === null ? '' : ` ${shellWord(taskId)}`}`;
}

/** Why a failed run failed, in brief: its first failed task (or the run's own error) and where to look next. */
export interface FailureSummary {
  /** The task run that failed first; null when the run failed without a failed task (a run timeout). */
  readonly task: string | null;
  readonly attempts: number;
  readonly code: string;
  /** The first line of the error message. */
  readonly message: string;
  readonly logs: string;
  /** `baton show <run> --task <task>`, or null without a task. */
  readonly detail: string | null;
}

/** Errors of a task that failed because other task runs did (its items, its branches): never the cause. */
const FAILED_BECAUSE_OF_OTHERS: ReadonlySet<string> = new Set(['MAP_ITEM_FAILED', 'RACE_NO_WINNER']);

/**
 * The failure summary of a failed run, null for any other state. The first failed task is
 * the failed task run that ended first, passing over a map or a race that failed because
 * its items or branches did (they end in the same instant), ties broken by task order.
 */
export function failureSummary(run: RunRecord, tasks: readonly TaskRunRecord[]): FailureSummary | null {
  if (run.state !== 'failed') return null;
  const rank = (t: TaskRunRecord): readonly number[] => [
    FAILED_BECAUSE_OF_OTHERS.has(t.error?.code ?? '') ? 1 : 0,
    t.endedAt ?? Number.POSITIVE_INFINITY,
    t.index,
  ];
  const before = (a: readonly number[], b: readonly number[]): boolean => {
    for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return (a[k] as number) < (b[k] as number);
    return false;
  };
  let first: TaskRunRecord | undefined;
  for (const t of tasks) {
    if (t.state !== 'failed' || !t.error) continue;
    if (!first || before(rank(t), rank(first))) first = t;
  }
  const error = first?.error ?? run.error;
  if (!error) return null;
  const task = first?.taskId ?? null;
  return {
    task,
    attempts: first?.attempts ?? 0,
    code: error.code,
    message: firstLine(error.message),
    logs: logsCommandLine(run.id, task),
    detail: task === null ? null : `baton show ${shellWord(run.id)} --task ${shellWord(task)}`,
  };
}

/** The failure summary in `show --json`. */
export function failureJson(summary: FailureSummary | null): Record<string, unknown> | null {
  return summary
    ? {
        task: summary.task,
        attempts: summary.attempts,
        code: summary.code,
        message: summary.message,
        logs_command: summary.logs,
        detail_command: summary.detail,
      }
    : null;
}

/** The lines under a failed run in `show`. */
function renderFailure(summary: FailureSummary): string {
  const what =
    summary.task === null
      ? 'the run failed'
      : `${summary.task} failed${summary.attempts > 1 ? ` after ${summary.attempts} attempts` : ''}`;
  return [
    `failure  ${what}: ${summary.code}: ${summary.message}`,
    `logs     ${summary.logs}`,
    ...(summary.detail ? [`detail   ${summary.detail}`] : []),
  ].join('\n');
}

/** The JSON shape of a task run in `baton show --json`, plus its wait and group when it has them. */
export function taskJsonWith(t: TaskRunRecord, state: RunState | null | undefined): Record<string, unknown> {
  const base = taskJson(t);
  if (!state) return base;
  const i = taskIndexOf(state, t.taskId);
  if (i === undefined) return base;
  const live = state.tasks[i];
  const group = i < state.plan.spec.tasks.length ? taskSpecOf(state, i).group : undefined;
  return {
    ...base,
    ...(t.state === 'waiting' && live?.state === 'waiting' && live.wait ? { wait: waitJson(live.wait, live.map) } : {}),
    ...(group ? { group } : {}),
  };
}

/**
 * A run and its task runs. With the run's state: waiting tasks say what they wait for; the
 * instances of a map are summarized in one line under it (`--expand` lists them); the
 * tasks of a group are listed under a header line with a summary, and a group of more than
 * one task shows only its members that need a look (running, retrying, waiting, failed or
 * cancelled) unless `expand`. Each task's output is a column of compact JSON, cut short
 * unless `full`; a failed run ends with a summary of its first failure.
 */
export function renderShow(run: RunRecord, tasks: readonly TaskRunRecord[], options: ShowOptions = {}): string {
  const state = options.state ?? null;
  const expand = options.expand ?? false;
  const staticCount = state?.plan.spec.tasks.length ?? Number.POSITIVE_INFINITY;
  const index = (t: TaskRunRecord): number => (state ? (taskIndexOf(state, t.taskId) ?? t.index) : t.index);
  const own = tasks.filter((t) => index(t) < staticCount);
  const instances = tasks.filter((t) => index(t) >= staticCount);
  const head = [
    `run      ${run.id}`,
    `flow     ${run.flow} (version ${run.version})`,
    `state    ${run.state}`,
    ...(run.parentRunId ? [`parent   ${run.parentRunId} (task ${run.parentTask ?? '-'})`] : []),
    `created  ${time(run.createdAt)}`,
    `duration ${span(run.startedAt, run.endedAt)}`,
    `tasks    ${own.length}: ${countStates(own.map((t) => t.state))}`,
    ...(instances.length > 0
      ? [`mapped   ${instances.length} task runs of map items: ${countStates(instances.map((t) => t.state))}`]
      : []),
    ...(Object.keys(run.params).length ? [`params   ${JSON.stringify(run.params)}`] : []),
    ...(Object.keys(run.labels).length ? [`labels   ${formatLabels(run.labels)}`] : []),
    ...(run.error ? [`error    ${run.error.code}: ${firstLine(run.error.message)}`] : []),
  ];

  const byIndex = new Map<number, TaskRunRecord>();
  for (const t of tasks) byIndex.set(index(t), t);
  const benign = (i: number): boolean => state?.tasks[i]?.benign === true;
  const note = (i: number, t: TaskRunRecord): string => {
    const live = state?.tasks[i];
    if (t.state === 'waiting' && live?.state === 'waiting' && live.wait) return describeWait(live.wait, live.map);
    if (t.skipReason) return t.skipReason;
    if (t.state === 'succeeded' && live?.cachedFrom !== undefined) return reusedFrom(live.cachedFrom);
    if (!t.error) return '';
    // One line per task: the whole message is in `show --task`.
    const error = `${t.error.code}: ${firstLine(t.error.message)}`;
    return t.state === 'succeeded' ? `recovered from ${error}` : error;
  };
  const entries: Entry[] = [];
  let summarized = false;
  const row = (i: number, t: TaskRunRecord, depth: number): Entry => ({
    cells: [
      `${'  '.repeat(depth)}${t.taskId}`,
      t.state,
      String(t.attempts),
      time(t.startedAt),
      span(t.startedAt, t.endedAt),
      outputCell(t.output, options.full ?? false),
      note(i, t),
    ],
  });

  // Instances by the map task run that made them, in index (item) order.
  const madeBy = new Map<number, number[]>();
  if (state) {
    for (const t of instances) {
      const i = index(t);
      const parent = instanceOf(state, i)?.parent;
      if (parent === undefined) continue;
      const list = madeBy.get(parent) ?? [];
      list.push(i);
      madeBy.set(parent, list);
    }
    for (const list of madeBy.values()) list.sort((a, b) => a - b);
  }

  const emitTask = (i: number, depth: number): void => {
    const t = byIndex.get(i);
    if (!t) return;
    entries.push(row(i, t, depth));
    const made = madeBy.get(i);
    if (!state || !made || made.length === 0) return;
    if (expand) {
      for (const k of made) emitTask(k, depth + 1);
      return;
    }
    summarized = true;
    const items = new Map<number, { state: TaskStateName; benign: boolean }[]>();
    for (const k of made) {
      const item = instanceOf(state, k)?.item ?? 0;
      const list = items.get(item) ?? [];
      list.push({ state: (byIndex.get(k) as TaskRunRecord).state, benign: benign(k) });
      items.set(item, list);
    }
    const count = state.tasks[i]?.map?.count ?? items.size;
    entries.push({
      line: `${'  '.repeat(depth + 1)}${t.taskId}[*]  ${count} item${count === 1 ? '' : 's'}: ${countStates([...items.values()].map(itemState))}`,
    });
  };

  if (!state) {
    for (const t of tasks) entries.push(row(t.index, t, 0));
  } else {
    const flowTasks = state.plan.spec.tasks;
    const groupsDone = new Set<string>();
    for (const t of own) {
      const i = index(t);
      const group = flowTasks[i]?.group;
      if (!group) {
        emitTask(i, 0);
        continue;
      }
      if (groupsDone.has(group)) continue;
      groupsDone.add(group);
      const members = own.map(index).filter((k) => flowTasks[k]?.group === group);
      const description = state.plan.spec.groups?.[group]?.description;
      entries.push({
        line: `group ${group}  ${members.length} task${members.length === 1 ? '' : 's'}: ${countStates(
          members.map((k) => (byIndex.get(k) as TaskRunRecord).state),
        )}${description ? `  (${description})` : ''}`,
      });
      const shortened = !expand && members.length > 1;
      if (shortened) summarized = true;
      for (const k of members) {
        if (shortened && !needsAttention((byIndex.get(k) as TaskRunRecord).state, benign(k))) continue;
        emitTask(k, 1);
      }
    }
  }

  let text = `${head.join('\n')}\n\n${tableWithLines(['TASK', 'STATE', 'ATTEMPTS', 'STARTED', 'DURATION', 'OUTPUT', 'NOTE'], entries)}`;
  if (summarized) text += '\n(map items and groups are summarized; --expand lists every task run)';
  const children = options.children ?? [];
  if (children.length > 0) {
    text += `\n\nchildren\n${table(
      ['RUN', 'FLOW', 'STATE', 'PARENT TASK', 'DURATION'],
      children.map((c) => [c.id, c.flow, c.state, c.parentTask ?? '-', span(c.startedAt, c.endedAt)]),
    )}`;
  }
  const failure = failureSummary(run, tasks);
  if (failure) text += `\n\n${renderFailure(failure)}`;
  return text;
}

/** How a success that reused an earlier attempt's output reads: `<run>/<task run>/<attempt>` in words. */
function reusedFrom(cachedFrom: string): string {
  const match = /^([^/]+)\/(.+)\/(\d+)$/.exec(cachedFrom);
  if (!match) return `reused ${cachedFrom} (cache: inputs)`;
  return `reused from run ${match[1]}, task ${match[2]}, attempt ${match[3]} (cache: inputs)`;
}

/** One line of progress for a committed event, or null for events not worth a line. */
export function progressLine(event: RunEvent): string | null {
  const at = new Date(event.at).toISOString().slice(11, 23);
  switch (event.type) {
    case 'task_started':
      return `${at}  ${event.task}: started (attempt ${event.attempt})`;
    case 'task_succeeded': {
      const how =
        event.recoveredBy !== undefined
          ? ` (recovered by ${event.recoveredBy})`
          : event.cachedFrom !== undefined
            ? ` (${reusedFrom(event.cachedFrom)})`
            : event.signal !== undefined
              ? ` (woken by signal ${event.signal})`
              : '';
      return `${at}  ${event.task}: succeeded${how}`;
    }
    case 'attempt_failed':
      // A message of several lines (a command's last stderr lines) stays together under its line.
      return `${at}  ${event.task}: attempt ${event.attempt} failed: ${event.error.code}: ${event.error.message.replace(/\n/g, `\n${' '.repeat(at.length + 2)}`)}`;
    case 'retry_scheduled':
      return `${at}  ${event.task}: retry in ${formatDuration(event.delayMs)}`;
    case 'task_failed':
      return `${at}  ${event.task}: failed${event.handledBy !== undefined ? ` (handled by ${event.handledBy})` : ''}`;
    case 'tasks_skipped':
      return event.tasks.map((t) => `${at}  ${t.task}: skipped (${t.reason})`).join('\n');
    case 'tasks_cancelled':
      // A benign cancel (a race lost, a quorum reached without it) is no failure: its reason says why.
      return event.benign
        ? `${at}  ${event.tasks.join(', ')}: ${event.reason}`
        : `${at}  cancelled: ${event.tasks.join(', ')} (${event.reason})`;
    case 'task_waiting':
      return `${at}  ${event.task}: ${describeWait(event.wait)}`;
    case 'task_expanded':
      return `${at}  ${event.task}: ${event.items.length} item${event.items.length === 1 ? '' : 's'}`;
    case 'task_catching':
      return `${at}  ${event.task}: ${event.error.code}: ${firstLine(event.error.message)}; handler ${event.handler} takes over`;
    case 'signal_received':
      return `${at}  signal ${event.event}${event.key === null ? '' : ` (key ${event.key})`} received${event.by ? ` from ${event.by}` : ''}`;
    case 'approval_decided':
      return `${at}  ${event.task}: ${event.approved ? 'approved' : 'rejected'} by ${event.by}${event.comment ? `: ${event.comment}` : ''}`;
    case 'run_succeeded':
      return `${at}  run succeeded`;
    case 'run_failed':
      return `${at}  run failed: ${firstLine(event.error.message)}`;
    case 'run_cancelled':
      return `${at}  run cancelled`;
    default:
      return null;
  }
}

/** An instant as live output shows it: `12:00:01.123` (UTC, like the times of `show`). */
function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}

/**
 * A task log line as `run` prints it while the run goes:
 * `12:00:01.123  extract#1 | reading orders`, with `!` instead of `|` for stderr.
 */
export function liveLogLine(line: Pick<LogLine, 'taskId' | 'attempt' | 'stream' | 'at' | 'text'>): string {
  return `${clock(line.at)}  ${line.taskId}#${line.attempt} ${line.stream === 'stderr' ? '!' : '|'} ${line.text}`;
}

/** The attempt an event ends (`*` for every attempt of the task), or null. */
function attemptsEnded(event: RunEvent): readonly string[] | null {
  switch (event.type) {
    case 'task_succeeded':
    case 'attempt_failed':
    case 'task_waiting':
      return [`${event.task}#${event.attempt}`];
    case 'tasks_cancelled':
      return event.tasks.map((t) => `${t}#*`);
    default:
      return null;
  }
}

/**
 * The live lines of a batch of a run's events and log lines, in the order things happened:
 * a log line comes after the start of its attempt and before its end when those are in
 * the batch, and by time otherwise. Times alone would mislead when the lines come from a
 * worker whose clock is not the database's.
 */
export function liveLines(events: readonly RunEvent[], logs: readonly LogLine[]): string[] {
  const out: string[] = [];
  const attemptOf = (l: LogLine) => `${l.taskId}#${l.attempt}`;
  const notStarted = new Set<string>();
  for (const e of events) if (e.type === 'task_started') notStarted.add(`${e.task}#${e.attempt}`);
  let pending = logs;
  const flush = (due: (l: LogLine) => boolean) => {
    const kept: LogLine[] = [];
    for (const l of pending) {
      if (!notStarted.has(attemptOf(l)) && due(l)) out.push(liveLogLine(l));
      else kept.push(l);
    }
    pending = kept;
  };
  for (const e of events) {
    const ended = attemptsEnded(e);
    flush((l) => l.at <= e.at || (ended?.some((a) => a === attemptOf(l) || a === `${l.taskId}#*`) ?? false));
    const line = progressLine(e);
    if (line !== null) out.push(line);
    if (e.type === 'task_started') notStarted.delete(`${e.task}#${e.attempt}`);
  }
  flush(() => true);
  return out;
}

/** Where a run's task runs stand, for the live progress line; map items count as task runs. */
export interface ProgressCounts {
  readonly total: number;
  /** Succeeded, skipped, or cancelled without being a failure (a race lost). */
  readonly done: number;
  readonly running: number;
  /** Parked (a sleep, an event, an approval, a child run, map items) or waiting for a retry. */
  readonly waiting: number;
  /** Failed, or cancelled as a failure. */
  readonly failed: number;
}

export function progressCounts(state: RunState): ProgressCounts {
  let done = 0;
  let running = 0;
  let waiting = 0;
  let failed = 0;
  for (const t of state.tasks) {
    if (t.state === 'succeeded' || t.state === 'skipped' || (t.state === 'cancelled' && t.benign)) done++;
    else if (t.state === 'failed' || t.state === 'cancelled') failed++;
    else if (t.state === 'running') running++;
    else if (t.state === 'waiting' || t.state === 'retrying') waiting++;
  }
  return { total: state.tasks.length, done, running, waiting, failed };
}

/** Elapsed time in whole seconds: `7s`, `3m05s`, `1h02m`. */
export function elapsedText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/**
 * The live progress line kept at the bottom of a terminal:
 * `tasks 3/10 done, 2 running, 1 waiting, 1 failed  12s`; without counts, the time alone.
 */
export function renderProgress(counts: ProgressCounts | null, elapsedMs: number): string {
  const elapsed = elapsedText(elapsedMs);
  if (!counts) return `running  ${elapsed}`;
  const { done, total, running, waiting, failed } = counts;
  return `tasks ${done}/${total} done, ${running} running, ${waiting} waiting, ${failed} failed  ${elapsed}`;
}

/**
 * An attempt's failure as `baton logs` prints it after the attempt's lines: code and
 * message, its own hint (not the catalog's), and the stack of a thrown error, indented.
 */
export function renderAttemptFailure(taskId: string, attempt: number, at: number, error: TaskError): string {
  const [first = '', ...rest] = error.message.split('\n');
  const lines = [`${clock(at)} ${taskId}#${attempt} failed: ${error.code}: ${first}`, ...rest.map((l) => `  ${l}`)];
  const catalogHint = Object.hasOwn(ERROR_CODES, error.code)
    ? ERROR_CODES[error.code as keyof typeof ERROR_CODES].hint
    : undefined;
  if (error.hint && error.hint !== catalogHint) lines.push(`  hint: ${error.hint}`);
  if (error.stack) lines.push(...error.stack.split('\n').map((l) => `  ${l}`));
  return lines.join('\n');
}

export function renderProblem(p: Problem): string {
  const where = formatLocation(p.location);
  return `${where ? `${where}: ` : ''}${p.code}: ${p.message}${p.hint ? `\n  hint: ${p.hint}` : ''}`;
}

/** Baton's package root (this file is `<root>/dist/cli/render.js`, or `src/` under tests). */
const BATON_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function clean(text: string): string {
  return withoutInternalPaths(text, BATON_ROOT);
}

export interface ErrorOutputOptions {
  /** Add the stack of the error and its causes (`BATON_DEBUG=1`), paths and all. */
  readonly debug?: boolean;
}

/** The error as Baton reports it: a BatonError as is; anything else is a bug in Baton (INTERNAL). */
export function asBatonError(error: unknown): BatonError {
  if (error instanceof BatonError) return error;
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new BatonError('INTERNAL', `a bug in Baton: ${what}`, { cause: error });
}

/** The stack of an error and of its causes, for `BATON_DEBUG=1`. */
function stackOf(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  // Bounded: a cause chain can loop.
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    const text = current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current);
    parts.push(depth === 0 ? text : `caused by: ${text}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n');
}

/**
 * The text printed on stderr for an error: code, message and hint, or every problem. Paths
 * into Baton's own code are left out; `debug` adds the stacks.
 */
export function renderError(error: unknown, options: ErrorOutputOptions = {}): string {
  const e = asBatonError(error);
  let text: string;
  if (e.problems.length > 0) {
    const problems = e.problems.map((p) => `  ${clean(renderProblem(p)).replace(/\n/g, '\n  ')}`).join('\n');
    // The error's own hint (e.g. the params a flow declares) unless a problem already shows it.
    const hint = e.problems.some((p) => p.hint === e.hint) ? '' : `\n  hint: ${e.hint}`;
    text = `error: ${clean(e.message)}\n${problems}${hint}`;
  } else {
    text = `error: ${e.code}: ${clean(e.message)}\n  hint: ${e.hint}`;
  }
  if (options.debug) text += `\n  stack (BATON_DEBUG):\n    ${stackOf(error).replace(/\n/g, '\n    ')}`;
  return text;
}

/**
 * The structured form of an error, printed as `{"error": …}` by `--json` commands and with
 * `BATON_JSON_ERRORS=1`: code, message, hint, source, and location, problems, details when
 * present (`stack` too with `debug`).
 */
export function errorJson(error: unknown, options: ErrorOutputOptions = {}): Record<string, unknown> {
  const e = asBatonError(error);
  return {
    ...e.toJSON(),
    message: clean(e.message),
    ...(e.problems.length ? { problems: e.problems.map((p) => ({ ...p, message: clean(p.message) })) } : {}),
    ...(options.debug ? { stack: stackOf(error) } : {}),
  };
}
