/**
 * Rendering for the CLI: plain tables for people, JSON for programs. Results go to
 * stdout, diagnostics and progress to stderr.
 */
import { formatDuration } from '../core/duration.js';
import type { Problem } from '../core/errors.js';
import { BatonError, formatLocation } from '../core/errors.js';
import type { RunEvent, RunState, Wait } from '../core/run-machine.js';
import { instanceOf, taskIndexOf, taskSpecOf } from '../core/run-topology.js';
import type { TaskStateName } from '../core/states.js';
import type { RunRecord, TaskRunRecord } from '../store/store.js';

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

export function renderRuns(runs: readonly RunRecord[]): string {
  if (runs.length === 0) return 'no runs';
  return table(
    ['RUN', 'FLOW', 'STATE', 'CREATED', 'DURATION'],
    runs.map((r) => [r.id, r.flow, r.state, time(r.createdAt), span(r.startedAt, r.endedAt)]),
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
 * cancelled) unless `expand`.
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
    ...(run.error ? [`error    ${run.error.code}: ${run.error.message}`] : []),
  ];

  const byIndex = new Map<number, TaskRunRecord>();
  for (const t of tasks) byIndex.set(index(t), t);
  const benign = (i: number): boolean => state?.tasks[i]?.benign === true;
  const note = (i: number, t: TaskRunRecord): string => {
    const live = state?.tasks[i];
    if (t.state === 'waiting' && live?.state === 'waiting' && live.wait) return describeWait(live.wait, live.map);
    if (t.skipReason) return t.skipReason;
    if (!t.error) return '';
    const error = `${t.error.code}: ${t.error.message}`;
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

  let text = `${head.join('\n')}\n\n${tableWithLines(['TASK', 'STATE', 'ATTEMPTS', 'STARTED', 'DURATION', 'NOTE'], entries)}`;
  if (summarized) text += '\n(map items and groups are summarized; --expand lists every task run)';
  const children = options.children ?? [];
  if (children.length > 0) {
    text += `\n\nchildren\n${table(
      ['RUN', 'FLOW', 'STATE', 'PARENT TASK', 'DURATION'],
      children.map((c) => [c.id, c.flow, c.state, c.parentTask ?? '-', span(c.startedAt, c.endedAt)]),
    )}`;
  }
  return text;
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
          : event.signal !== undefined
            ? ` (woken by signal ${event.signal})`
            : '';
      return `${at}  ${event.task}: succeeded${how}`;
    }
    case 'attempt_failed':
      return `${at}  ${event.task}: attempt ${event.attempt} failed: ${event.error.code}: ${event.error.message}`;
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
      return `${at}  ${event.task}: ${event.error.code}: ${event.error.message}; handler ${event.handler} takes over`;
    case 'signal_received':
      return `${at}  signal ${event.event}${event.key === null ? '' : ` (key ${event.key})`} received${event.by ? ` from ${event.by}` : ''}`;
    case 'approval_decided':
      return `${at}  ${event.task}: ${event.approved ? 'approved' : 'rejected'} by ${event.by}${event.comment ? `: ${event.comment}` : ''}`;
    case 'run_succeeded':
      return `${at}  run succeeded`;
    case 'run_failed':
      return `${at}  run failed: ${event.error.message}`;
    case 'run_cancelled':
      return `${at}  run cancelled`;
    default:
      return null;
  }
}

export function renderProblem(p: Problem): string {
  const where = formatLocation(p.location);
  return `${where ? `${where}: ` : ''}${p.code}: ${p.message}${p.hint ? `\n  hint: ${p.hint}` : ''}`;
}

/** The text printed on stderr for an error. */
export function renderError(error: unknown): string {
  if (error instanceof BatonError) {
    if (error.problems.length > 0) {
      const problems = error.problems.map((p) => `  ${renderProblem(p).replace(/\n/g, '\n  ')}`).join('\n');
      // The error's own hint (e.g. the params a flow declares) unless a problem already shows it.
      const hint = error.problems.some((p) => p.hint === error.hint) ? '' : `\n  hint: ${error.hint}`;
      return `error: ${error.message}\n${problems}${hint}`;
    }
    return `error: ${error.code}: ${error.message}\n  hint: ${error.hint}`;
  }
  const e = error as Error;
  return `error: internal: ${e?.stack ?? String(error)}`;
}
