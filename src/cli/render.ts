/**
 * Rendering for the CLI: plain tables for people, JSON for programs. Results go to
 * stdout, diagnostics and progress to stderr.
 */
import { formatDuration } from '../core/duration.js';
import type { Problem } from '../core/errors.js';
import { BatonError, formatLocation } from '../core/errors.js';
import type { RunEvent } from '../core/run-machine.js';
import type { RunRecord, TaskRunRecord } from '../store/store.js';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
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

export function renderShow(run: RunRecord, tasks: readonly TaskRunRecord[]): string {
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  const head = [
    `run      ${run.id}`,
    `flow     ${run.flow} (version ${run.version})`,
    `state    ${run.state}`,
    `created  ${time(run.createdAt)}`,
    `duration ${span(run.startedAt, run.endedAt)}`,
    `tasks    ${tasks.length}: ${summary}`,
    ...(Object.keys(run.params).length ? [`params   ${JSON.stringify(run.params)}`] : []),
    ...(run.error ? [`error    ${run.error.code}: ${run.error.message}`] : []),
  ];
  const rows = tasks.map((t) => [
    t.taskId,
    t.state,
    String(t.attempts),
    time(t.startedAt),
    span(t.startedAt, t.endedAt),
    t.skipReason ?? (t.error ? `${t.error.code}: ${t.error.message}` : ''),
  ]);
  return `${head.join('\n')}\n\n${table(['TASK', 'STATE', 'ATTEMPTS', 'STARTED', 'DURATION', 'NOTE'], rows)}`;
}

/** One line of progress for a committed event, or null for events not worth a line. */
export function progressLine(event: RunEvent): string | null {
  const at = new Date(event.at).toISOString().slice(11, 23);
  switch (event.type) {
    case 'task_started':
      return `${at}  ${event.task}: started (attempt ${event.attempt})`;
    case 'task_succeeded':
      return `${at}  ${event.task}: succeeded`;
    case 'attempt_failed':
      return `${at}  ${event.task}: attempt ${event.attempt} failed: ${event.error.code}: ${event.error.message}`;
    case 'retry_scheduled':
      return `${at}  ${event.task}: retry in ${formatDuration(event.delayMs)}`;
    case 'task_failed':
      return `${at}  ${event.task}: failed`;
    case 'tasks_skipped':
      return event.tasks.map((t) => `${at}  ${t.task}: skipped (${t.reason})`).join('\n');
    case 'tasks_cancelled':
      return `${at}  cancelled: ${event.tasks.join(', ')} (${event.reason})`;
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
