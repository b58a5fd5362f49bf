/** Triggers: list, one, pause, resume, firing history. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { findTrigger, listTriggers, setTriggerPaused, triggerHistory } from '../../app/triggers.js';
import type { Runtime } from '../../app/runtime.js';
import type { TriggerRecord } from '../../store/store.js';
import { triggerSchedule } from '../../triggers/time-schedule.js';
import { cursorOffset, pageOf } from '../pages.js';
import {
  ErrorBodySchema,
  FiringSchema,
  HistoryQuerySchema,
  PageQuerySchema,
  TriggerParamsSchema,
  TriggerSchema,
  pageOf as pageSchema,
} from '../schemas.js';
import type { Trigger } from '../schemas.js';
import { firingOut, iso } from '../serialize.js';

const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema };

/** Fire times listed ahead for a schedule. */
const NEXT_FIRES = 5;

function nextFireTimes(t: TriggerRecord): string[] {
  if (t.kind !== 'cron' && t.kind !== 'interval') return [];
  try {
    const schedule = triggerSchedule(t.spec);
    const out: string[] = [];
    let at = t.nextFireAt === null ? Date.now() : t.nextFireAt - 1;
    for (let i = 0; i < NEXT_FIRES; i++) {
      const next = schedule.next(at);
      if (next === null) break;
      out.push(new Date(next).toISOString());
      at = next;
    }
    return out;
  } catch {
    return [];
  }
}

async function triggerOut(rt: Runtime, t: TriggerRecord): Promise<Trigger> {
  const [last] = await triggerHistory(rt, t.id, 1);
  return {
    id: t.id,
    flow: t.flow,
    name: t.name,
    kind: t.kind,
    paused: t.paused,
    next_fire_at: iso(t.nextFireAt),
    next_fire_times: nextFireTimes(t),
    spec: JSON.parse(JSON.stringify(t.spec)) as Record<string, unknown>,
    last_firing: last ? firingOut(last) : null,
  };
}

export function triggerRoutes(rt: Runtime): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/triggers',
      {
        schema: {
          summary: 'Triggers of every flow, with their next fire time and last firing',
          tags: ['triggers'],
          querystring: PageQuerySchema,
          response: { 200: pageSchema(TriggerSchema), ...errors },
        },
      },
      async (request) => {
        const page = pageOf(await listTriggers(rt), cursorOffset(request.query.cursor), request.query.limit);
        return { items: await Promise.all(page.items.map((t) => triggerOut(rt, t))), next_cursor: page.next_cursor };
      },
    );
    app.get(
      '/triggers/:id',
      {
        schema: {
          summary: 'One trigger',
          tags: ['triggers'],
          params: TriggerParamsSchema,
          response: { 200: TriggerSchema, ...errors },
        },
      },
      async (request) => triggerOut(rt, await findTrigger(rt, request.params.id)),
    );
    for (const action of ['pause', 'resume'] as const) {
      app.post(
        `/triggers/:id/${action}`,
        {
          schema: {
            summary: action === 'pause' ? 'Pause a trigger' : 'Resume a trigger',
            tags: ['triggers'],
            params: TriggerParamsSchema,
            response: { 200: TriggerSchema, ...errors },
          },
        },
        async (request) => triggerOut(rt, await setTriggerPaused(rt, request.params.id, action === 'pause')),
      );
    }
    app.get(
      '/triggers/:id/history',
      {
        schema: {
          summary: "A trigger's firings, newest first",
          tags: ['triggers'],
          params: TriggerParamsSchema,
          querystring: HistoryQuerySchema,
          response: { 200: pageSchema(FiringSchema), ...errors },
        },
      },
      async (request) => {
        const firings = await triggerHistory(rt, request.params.id, request.query.limit);
        return { items: firings.map(firingOut), next_cursor: null };
      },
    );
  };
}
