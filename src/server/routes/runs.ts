/**
 * Runs: start (one or many), list, detail, task runs, history, logs, child runs, and the
 * actions on a run (cancel, retry, resume, signal, approve, reject).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { BatonError } from '../../core/errors.js';
import type { RunStateName } from '../../core/states.js';
import { RUN_STATES } from '../../core/states.js';
import { decideApproval, sendSignal } from '../../app/run-requests.js';
import { loadRunView } from '../../app/run-views.js';
import {
  cancelRun,
  getRun,
  listRuns,
  readRunEvents,
  readRunLogs,
  resumeRunInBackground,
  retryRun,
  startRun,
  startRuns,
} from '../../app/runs.js';
import type { Runtime } from '../../app/runtime.js';
import { taskAttempts } from '../../cli/task-detail.js';
import type { RunRecord } from '../../store/store.js';
import { cursorOffset, pageOf } from '../pages.js';
import {
  CancelBodySchema,
  DecisionBodySchema,
  DecisionResultSchema,
  ErrorBodySchema,
  EventsQuerySchema,
  FlowParamsSchema,
  HistoryEventSchema,
  LogLineSchema,
  LogsQuerySchema,
  PageQuerySchema,
  RetryBodySchema,
  RunDetailSchema,
  RunParamsSchema,
  RunSchema,
  RunsQuerySchema,
  SignalBodySchema,
  SignalResultSchema,
  StartRunBodySchema,
  StartRunResultSchema,
  StartRunsBodySchema,
  StartRunsResultSchema,
  TaskDetailSchema,
  TaskParamsSchema,
  TaskRunSchema,
  TasksQuerySchema,
  pageOf as pageSchema,
} from '../schemas.js';
import type { RunsQuery } from '../schemas.js';
import { errorOut, eventOut, logOut, runDetailOut, runOut, taskOut } from '../serialize.js';
import type { LiveEvents } from '../events.js';

const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema };

/** Most runs a filtered listing reads to apply the filters the store does not take. */
const FILTER_SCAN = 10_000;

/** The states of a `state=a,b` query; REQUEST_INVALID for a name that is not a run state. */
function parseStates(text: string | undefined): RunStateName[] {
  if (text === undefined || text === '') return [];
  const states = text.split(',').map((s) => s.trim());
  const known = Object.values(RUN_STATES) as string[];
  const bad = states.filter((s) => !known.includes(s));
  if (bad.length > 0) {
    throw new BatonError('REQUEST_INVALID', `state: ${bad.join(', ')} is not a run state`, {
      hint: `Run states: ${known.join(', ')}.`,
    });
  }
  return states as RunStateName[];
}

/** The labels of a `labels=k=v,k2=v2` query; REQUEST_INVALID for a pair without `=`. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) {
      throw new BatonError('REQUEST_INVALID', `labels: "${pair}" is not key=value`, {
        hint: 'Give labels as key=value pairs, comma-separated: labels=team=growth,env=prod.',
      });
    }
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

/** The runs a query selects, newest first, enough of them for the page asked for. */
async function selectRuns(rt: Runtime, q: RunsQuery, wanted: number): Promise<RunRecord[]> {
  const states = parseStates(q.state);
  const since = q.since === undefined ? undefined : Date.parse(q.since);
  const until = q.until === undefined ? undefined : Date.parse(q.until);
  const filtered = q.trigger !== undefined || since !== undefined || until !== undefined;
  const limit = filtered ? FILTER_SCAN : wanted;
  const base = {
    ...(q.flow ? { flow: q.flow } : {}),
    ...(q.labels ? { labels: parseLabels(q.labels) } : {}),
    ...(q.parent ? { parentRunId: q.parent } : {}),
    limit,
  };
  const lists =
    states.length === 0
      ? [await listRuns(rt, base)]
      : await Promise.all(states.map((state) => listRuns(rt, { ...base, state })));
  const runs = lists.flat().sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  return runs.filter(
    (r) =>
      (q.trigger === undefined || r.triggerId === q.trigger) &&
      (since === undefined || r.createdAt >= since) &&
      (until === undefined || r.createdAt < until),
  );
}

/** The routes of runs; `live` streams a run's log lines (`logs?follow=true`). */
export function runRoutes(rt: Runtime, live: LiveEvents): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/flows/:flow/runs',
      {
        schema: {
          summary: 'Start a run of a flow',
          tags: ['runs'],
          params: FlowParamsSchema,
          body: StartRunBodySchema,
          response: { 200: StartRunResultSchema, 201: StartRunResultSchema, ...errors },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const started = await startRun(rt, request.params.flow, {
          ...(body.params ? { params: body.params } : {}),
          ...(body.dedupe_key ? { dedupeKey: body.dedupe_key } : {}),
          ...(body.labels ? { labels: body.labels } : {}),
        });
        return reply
          .status(started.created ? 201 : 200)
          .send({ id: started.run.id, created: started.created, run: runOut(started.run) });
      },
    );

    app.post(
      '/flows/:flow/runs:batch',
      {
        schema: {
          summary: 'Start many runs of a flow at once (all or none)',
          tags: ['runs'],
          params: FlowParamsSchema,
          body: StartRunsBodySchema,
          response: { 201: StartRunsResultSchema, ...errors },
        },
      },
      async (request, reply) => {
        const flow = request.params.flow;
        const started = await startRuns(
          rt,
          request.body.runs.map((r) => ({
            flow,
            ...(r.params ? { params: r.params } : {}),
            ...(r.dedupe_key ? { dedupeKey: r.dedupe_key } : {}),
            ...(r.labels ? { labels: r.labels } : {}),
          })),
        );
        return reply.status(201).send({ items: started.map((s) => ({ id: s.run.id, created: s.created })) });
      },
    );

    app.get(
      '/runs',
      {
        schema: {
          summary: 'List runs, newest first',
          tags: ['runs'],
          querystring: RunsQuerySchema,
          response: { 200: pageSchema(RunSchema), ...errors },
        },
      },
      async (request) => {
        const offset = cursorOffset(request.query.cursor);
        const runs = await selectRuns(rt, request.query, offset + request.query.limit + 1);
        const page = pageOf(runs, offset, request.query.limit);
        return { items: page.items.map(runOut), next_cursor: page.next_cursor };
      },
    );

    app.get(
      '/runs/:id',
      {
        schema: {
          summary: 'A run with its task runs, child runs, assets and failure',
          tags: ['runs'],
          params: RunParamsSchema,
          response: { 200: RunDetailSchema, ...errors },
        },
      },
      async (request) => runDetailOut(await loadRunView(rt, request.params.id)),
    );

    app.get(
      '/runs/:id/tasks',
      {
        schema: {
          summary: "A run's task runs (map instances included)",
          tags: ['runs'],
          params: RunParamsSchema,
          querystring: TasksQuerySchema,
          response: { 200: pageSchema(TaskRunSchema), ...errors },
        },
      },
      async (request) => {
        const view = await loadRunView(rt, request.params.id);
        const tasks = view.tasks.map((t) => taskOut(t, view.state));
        return pageOf(tasks, cursorOffset(request.query.cursor), request.query.limit);
      },
    );

    app.get(
      '/runs/:id/tasks/:task',
      {
        schema: {
          summary: 'One task run with its attempts',
          tags: ['runs'],
          params: TaskParamsSchema,
          response: { 200: TaskDetailSchema, ...errors },
        },
      },
      async (request) => {
        const { id, task } = request.params;
        const view = await loadRunView(rt, id);
        const record = view.tasks.find((t) => t.taskId === task);
        if (!record) {
          throw new BatonError('TASK_NOT_FOUND', `run ${id} has no task "${task}"`, {
            hint: `Tasks: ${view.tasks
              .slice(0, 20)
              .map((t) => t.taskId)
              .join(', ')}`,
          });
        }
        const events = await readRunEvents(rt, id);
        const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
        return {
          task: taskOut(record, view.state),
          attempts: taskAttempts(
            events.map((e) => e.event),
            task,
          ).map((a) => ({
            attempt: a.attempt,
            started_at: iso(a.startedAt),
            ended_at: iso(a.endedAt),
            state: a.outcome,
            error: errorOut(a.error),
            ...(a.retryAt !== null ? { retry_at: iso(a.retryAt) } : {}),
            ...(a.reason !== null ? { reason: a.reason } : {}),
          })),
        };
      },
    );

    app.get(
      '/runs/:id/events',
      {
        schema: {
          summary: "A run's history, in order",
          tags: ['runs'],
          params: RunParamsSchema,
          querystring: EventsQuerySchema,
          response: { 200: pageSchema(HistoryEventSchema), ...errors },
        },
      },
      async (request) => {
        const { after, limit } = request.query;
        await getRun(rt, request.params.id);
        const events = await readRunEvents(rt, request.params.id, after);
        const items = events.slice(0, limit).map(eventOut);
        const last = items.at(-1);
        return {
          items,
          next_cursor: events.length > limit && last ? String(last.seq) : null,
        };
      },
    );

    app.get(
      '/runs/:id/logs',
      {
        schema: {
          summary: "A run's log lines (with follow=true: a text/event-stream of `log` events until the run ends)",
          tags: ['runs'],
          params: RunParamsSchema,
          querystring: LogsQuerySchema,
          response: { 200: pageSchema(LogLineSchema), ...errors },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const q = request.query;
        await getRun(rt, id);
        if (q.follow) {
          await live.followLogs(request, reply, id, { task: q.task, attempt: q.attempt, after: q.after });
          return reply;
        }
        const lines = await readRunLogs(rt, id, {
          task: q.task,
          attempt: q.attempt,
          afterSeq: q.after,
          limit: q.limit + 1,
        });
        const items = lines.slice(0, q.limit).map(logOut);
        const last = items.at(-1);
        return { items, next_cursor: lines.length > q.limit && last ? String(last.seq) : null };
      },
    );

    app.get(
      '/runs/:id/children',
      {
        schema: {
          summary: "A run's child runs (subflows, maps of flows)",
          tags: ['runs'],
          params: RunParamsSchema,
          querystring: PageQuerySchema,
          response: { 200: pageSchema(RunSchema), ...errors },
        },
      },
      async (request) => {
        await getRun(rt, request.params.id);
        const offset = cursorOffset(request.query.cursor);
        const runs = await listRuns(rt, { parentRunId: request.params.id, limit: offset + request.query.limit + 1 });
        const page = pageOf(runs, offset, request.query.limit);
        return { items: page.items.map(runOut), next_cursor: page.next_cursor };
      },
    );

    app.post(
      '/runs/:id/cancel',
      {
        schema: {
          summary: 'Cancel a run',
          tags: ['runs'],
          params: RunParamsSchema,
          body: CancelBodySchema,
          response: { 200: RunSchema, ...errors },
        },
      },
      async (request) =>
        runOut(
          await cancelRun(rt, request.params.id, {
            ...(request.body?.reason ? { reason: request.body.reason } : {}),
            ...(request.body?.task ? { task: request.body.task } : {}),
          }),
        ),
    );

    app.post(
      '/runs/:id/retry',
      {
        schema: {
          summary: 'Retry a run: what did not succeed, or from a task on',
          tags: ['runs'],
          params: RunParamsSchema,
          body: RetryBodySchema,
          response: { 200: RunSchema, ...errors },
        },
      },
      async (request) => {
        const from = request.body?.from;
        const failed = request.body?.failed ?? from === undefined;
        if (from !== undefined && failed) {
          throw new BatonError('USAGE', '`from` and `failed` cannot be combined', {
            hint: 'Retry what did not succeed ({"failed": true}) or from a task on ({"from": "<task>"}).',
          });
        }
        const run = await retryRun(
          rt,
          request.params.id,
          from !== undefined ? { tasks: [from], downstream: true } : { fromFailed: true },
        );
        return runOut(run);
      },
    );

    app.post(
      '/runs/:id/resume',
      {
        schema: {
          summary: 'Continue a run in this process (a run whose owner died is taken over)',
          tags: ['runs'],
          params: RunParamsSchema,
          response: { 200: RunSchema, ...errors },
        },
      },
      async (request) => runOut(await resumeRunInBackground(rt, request.params.id)),
    );

    app.post(
      '/runs/:id/signal',
      {
        schema: {
          summary: 'Send an event to the tasks of a run that wait for it',
          tags: ['runs'],
          params: RunParamsSchema,
          body: SignalBodySchema,
          response: { 200: SignalResultSchema, ...errors },
        },
      },
      async (request) => {
        const { event, payload, task, key, by, id } = request.body;
        if (task !== undefined) {
          throw new BatonError('USAGE', 'a signal goes to every task waiting for its event; `task` is not supported', {
            hint: 'Send the signal without `task`.',
          });
        }
        const result = await sendSignal(rt, request.params.id, {
          event,
          ...(payload !== undefined ? { data: payload } : {}),
          ...(key !== undefined ? { key } : {}),
          ...(by !== undefined ? { by } : {}),
          ...(id !== undefined ? { id } : {}),
        });
        return {
          delivered: {
            id: result.id,
            event: result.event,
            woke: result.woke,
            kept: result.kept,
            duplicate: result.duplicate,
            delivery: result.delivery,
            stalled: result.stalled,
          },
        };
      },
    );

    for (const action of ['approve', 'reject'] as const) {
      app.post(
        `/runs/:id/${action}`,
        {
          schema: {
            summary:
              action === 'approve' ? 'Approve a task waiting for an approval' : 'Reject a task waiting for an approval',
            tags: ['runs'],
            params: RunParamsSchema,
            body: DecisionBodySchema,
            response: { 200: DecisionResultSchema, ...errors, 403: ErrorBodySchema },
          },
        },
        async (request) => {
          const { task, by, comment } = request.body;
          const result = await decideApproval(rt, request.params.id, task, {
            approved: action === 'approve',
            by,
            ...(comment !== undefined ? { comment } : {}),
          });
          return { task: result.task, task_state: result.taskState, run_state: result.runState };
        },
      );
    }
  };
}
