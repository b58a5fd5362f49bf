/** Flows: the project's flow files with their triggers and recent runs, and one flow in full. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FlowSpec, ParamSpec } from '../../core/model.js';
import { getFlowView, listFlowVersions, listFlowViews } from '../../app/flow-views.js';
import type { FlowView } from '../../app/flow-views.js';
import type { Runtime } from '../../app/runtime.js';
import { cursorOffset, pageOf } from '../pages.js';
import {
  ErrorBodySchema,
  FlowDetailSchema,
  FlowParamsSchema,
  FlowSummarySchema,
  FlowsQuerySchema,
  FlowVersionSchema,
  PageQuerySchema,
  pageOf as pageSchema,
} from '../schemas.js';
import type { FlowDetail, FlowSummary } from '../schemas.js';
import { iso } from '../serialize.js';
import { relative, sep } from 'node:path';

const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema };

function summaryOf(rt: Runtime, v: FlowView): FlowSummary {
  const rel = relative(rt.config.projectDir, v.path);
  return {
    name: v.name,
    description: v.flow?.spec.description ?? null,
    file: rel.startsWith('..') ? v.path : rel.split(sep).join('/'),
    version: v.flow?.version ?? null,
    task_count: v.flow?.spec.tasks.length ?? 0,
    triggers: v.triggers.map((t) => ({
      name: t.name,
      kind: t.kind,
      paused: t.paused,
      next_fire_at: iso(t.nextFireAt),
    })),
    recent_runs: v.recentRuns.map((r) => ({
      id: r.id,
      state: r.state,
      created_at: new Date(r.createdAt).toISOString(),
      duration_ms: r.startedAt !== null && r.endedAt !== null ? r.endedAt - r.startedAt : null,
    })),
    last_state: v.recentRuns[0]?.state ?? null,
    problems: v.problems.map((p) => ({ ...p })) as FlowSummary['problems'],
  };
}

/** The JSON Schema of a flow's params. */
function paramsSchema(params: Readonly<Record<string, ParamSpec>>): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const [name, p] of Object.entries(params)) {
    properties[name] = {
      type: p.type,
      ...(p.description !== undefined ? { description: p.description } : {}),
      ...(p.default !== undefined ? { default: p.default } : {}),
      ...(p.enum !== undefined ? { enum: p.enum } : {}),
    };
    if (!('default' in p)) required.push(name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

function graphOf(spec: FlowSpec): FlowDetail['graph'] {
  return {
    nodes: spec.tasks.map((t) => ({
      id: t.id,
      kind: t.kind,
      group: t.group ?? null,
      trigger_rule: t.triggerRule,
      map: t.map !== undefined,
      depends_on: [...t.dependsOn],
      ...(t.description !== undefined ? { label: t.description } : {}),
    })),
    edges: spec.tasks.flatMap((t) => t.dependsOn.map((from) => ({ from, to: t.id }))),
  };
}

export function flowRoutes(rt: Runtime): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/flows',
      {
        schema: {
          summary: "The project's flows: those with problems first, then by name",
          tags: ['flows'],
          querystring: FlowsQuerySchema,
          response: { 200: pageSchema(FlowSummarySchema), ...errors },
        },
      },
      async (request) => {
        const { q, limit, cursor } = request.query;
        const views = (await listFlowViews(rt)).filter((v) => q === undefined || v.name.includes(q));
        return pageOf(
          views.map((v) => summaryOf(rt, v)),
          cursorOffset(cursor),
          limit,
        );
      },
    );
    app.get(
      '/flows/:flow',
      {
        schema: {
          summary: 'A flow with its params schema, graph and definition',
          tags: ['flows'],
          params: FlowParamsSchema,
          response: { 200: FlowDetailSchema, ...errors },
        },
      },
      async (request) => {
        const v = await getFlowView(rt, request.params.flow);
        const spec = v.flow?.spec;
        return {
          ...summaryOf(rt, v),
          params_schema: spec ? paramsSchema(spec.params) : {},
          graph: spec ? graphOf(spec) : { nodes: [], edges: [] },
          definition: spec ? (JSON.parse(JSON.stringify(spec)) as Record<string, unknown>) : {},
        };
      },
    );
    app.get(
      '/flows/:flow/versions',
      {
        schema: {
          summary: 'The versions of a flow that its runs were made of, newest first',
          tags: ['flows'],
          params: FlowParamsSchema,
          querystring: PageQuerySchema,
          response: { 200: pageSchema(FlowVersionSchema), ...errors },
        },
      },
      async (request) => {
        const versions = (await listFlowVersions(rt, request.params.flow)).map((v) => ({
          version: v.version,
          created_at: new Date(v.createdAt).toISOString(),
        }));
        return pageOf(versions, cursorOffset(request.query.cursor), request.query.limit);
      },
    );
  };
}
