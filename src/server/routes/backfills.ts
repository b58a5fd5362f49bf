/** Backfills: plan, start, list, show, pause, resume, cancel. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { BackfillView } from '../../app/backfills.js';
import {
  getBackfill,
  listBackfills,
  moveBackfillTo,
  parseInstant,
  planFlowBackfill,
  startBackfill,
} from '../../app/backfills.js';
import type { Runtime } from '../../app/runtime.js';
import { cursorOffset, pageOf } from '../pages.js';
import {
  BackfillParamsSchema,
  BackfillPlanBodySchema,
  BackfillPlanSchema,
  BackfillSchema,
  ErrorBodySchema,
  PageQuerySchema,
  StartBackfillBodySchema,
  pageOf as pageSchema,
} from '../schemas.js';
import type { Backfill } from '../schemas.js';
import { iso } from '../serialize.js';

const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema };

function backfillOut({ backfill: b, progress: p }: BackfillView): Backfill {
  return {
    id: b.id,
    flow: b.flow,
    trigger: b.triggerId,
    state: b.state,
    from: new Date(b.fromAt).toISOString(),
    to: new Date(b.toAt).toISOString(),
    max_parallel: b.maxParallel,
    rerun: b.rerun,
    created_at: new Date(b.createdAt).toISOString(),
    ended_at: iso(b.endedAt),
    reason: b.reason,
    progress: { total: p.total, done: p.done, failed: p.failed, running: p.running, pending: p.pending },
  };
}

export function backfillRoutes(rt: Runtime): FastifyPluginAsyncZod {
  return async (app) => {
    const planOf = (body: {
      flow: string;
      trigger?: string | undefined;
      from: string;
      to: string;
      rerun?: boolean | undefined;
    }) =>
      planFlowBackfill(rt, body.flow, {
        trigger: body.trigger,
        fromAt: parseInstant(body.from, 'from'),
        toAt: parseInstant(body.to, 'to'),
        rerun: body.rerun,
      });

    app.get(
      '/backfills',
      {
        schema: {
          summary: 'Backfills with their progress',
          tags: ['backfills'],
          querystring: PageQuerySchema,
          response: { 200: pageSchema(BackfillSchema), ...errors },
        },
      },
      async (request) => {
        const page = pageOf(await listBackfills(rt), cursorOffset(request.query.cursor), request.query.limit);
        return { items: page.items.map(backfillOut), next_cursor: page.next_cursor };
      },
    );
    app.post(
      '/backfills/plan',
      {
        schema: {
          summary: 'The intervals a backfill would cover, and what it would do with each; nothing is changed',
          tags: ['backfills'],
          body: BackfillPlanBodySchema,
          response: { 200: BackfillPlanSchema, ...errors },
        },
      },
      async (request) => {
        const plan = await planOf(request.body);
        return {
          flow: plan.flow,
          trigger: plan.triggerId,
          intervals: plan.intervals.map((v) => ({
            key: v.key,
            fire_at: new Date(v.fireAt).toISOString(),
            interval_start: v.intervalStart,
            interval_end: v.intervalEnd,
            status: v.plan,
            run_id: v.runId,
            run_state: v.runState,
          })),
        };
      },
    );
    app.post(
      '/backfills',
      {
        schema: {
          summary: 'Record a backfill; the leading scheduler (or baton dev) creates its runs',
          tags: ['backfills'],
          body: StartBackfillBodySchema,
          response: { 201: BackfillSchema, ...errors },
        },
      },
      async (request, reply) => {
        const plan = await planOf(request.body);
        const started = await startBackfill(rt, plan, { maxParallel: request.body.max_parallel });
        return reply.status(201).send(backfillOut(started));
      },
    );
    app.get(
      '/backfills/:id',
      {
        schema: {
          summary: 'One backfill',
          tags: ['backfills'],
          params: BackfillParamsSchema,
          response: { 200: BackfillSchema, ...errors },
        },
      },
      async (request) => backfillOut(await getBackfill(rt, request.params.id)),
    );
    const moves = { pause: 'paused', resume: 'running', cancel: 'cancelled' } as const;
    for (const [action, to] of Object.entries(moves)) {
      app.post(
        `/backfills/:id/${action}`,
        {
          schema: {
            summary: `${action[0]?.toUpperCase()}${action.slice(1)} a backfill`,
            tags: ['backfills'],
            params: BackfillParamsSchema,
            response: { 200: BackfillSchema, ...errors },
          },
        },
        async (request) => backfillOut(await moveBackfillTo(rt, request.params.id, to)),
      );
    }
  };
}
