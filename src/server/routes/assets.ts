/** Assets: list, one with versions, lineage and checks, lineage graph, materialize. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { materializeAsset } from '../../app/assets.js';
import type { Runtime } from '../../app/runtime.js';
import type {
  AssetCheckResult,
  AssetLink,
  AssetMaterializationRecord,
  AssetSummary,
} from '../../store/ports/assets.js';
import { cursorOffset, pageOf } from '../pages.js';
import {
  AssetDetailSchema,
  AssetParamsSchema,
  AssetSchema,
  ErrorBodySchema,
  MaterializeResultSchema,
  PageQuerySchema,
  pageOf as pageSchema,
} from '../schemas.js';
import type { Asset, AssetVersion } from '../schemas.js';
import { runOut } from '../serialize.js';

const errors = { 400: ErrorBodySchema, 404: ErrorBodySchema, 409: ErrorBodySchema, 422: ErrorBodySchema };

/** Most assets read for a listing. */
const ASSETS_READ = 10_000;

function assetOut(a: AssetSummary): Asset {
  return {
    key: a.key,
    latest_id: a.latestId,
    latest_version: a.latestVersion,
    latest_at: new Date(a.latestAt).toISOString(),
    flow: a.flow,
    task: a.taskId,
    run_id: a.runId,
    stale: a.stale,
  };
}

const versionOut = (v: AssetMaterializationRecord): AssetVersion => ({
  id: v.id,
  version: v.version,
  at: new Date(v.at).toISOString(),
  run_id: v.runId,
  flow: v.flow,
  task: v.taskId,
  attempt: v.attempt,
  location: v.location,
  size: v.size,
  row_count: v.rowCount,
  schema: v.schema ? v.schema.map((c) => ({ name: c.name, type: c.type })) : null,
  inputs: v.inputs.map((i) => ({ asset: i.assetKey, version: i.version })),
});

const linkOut = (l: AssetLink) => ({
  key: l.key,
  version_read: l.versionRead,
  latest_version: l.latestVersion,
  stale: l.stale,
});

const checkOut = (c: AssetCheckResult) => ({
  name: c.name,
  kind: c.kind,
  severity: c.severity,
  passed: c.passed,
  failing_count: c.failingCount,
  message: c.message,
  sample: [...c.sample],
});

const LineageQuerySchema = z.object({ depth: z.coerce.number().int().min(1).max(20).default(3) });
const LineageSchema = z.object({
  nodes: z.array(z.object({ key: z.string(), stale: z.boolean(), latest_version: z.string().nullable() })),
  edges: z.array(z.object({ from: z.string(), to: z.string() })),
});

export function assetRoutes(rt: Runtime): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/assets',
      {
        schema: {
          summary: 'Assets with their latest version, by key',
          tags: ['assets'],
          querystring: PageQuerySchema,
          response: { 200: pageSchema(AssetSchema), ...errors },
        },
      },
      async (request) => {
        const all = await rt.assets.list({ limit: ASSETS_READ });
        const page = pageOf(all, cursorOffset(request.query.cursor), request.query.limit);
        return { items: page.items.map(assetOut), next_cursor: page.next_cursor };
      },
    );
    app.get(
      '/assets/:key',
      {
        schema: {
          summary: 'An asset with its versions, lineage and latest checks',
          tags: ['assets'],
          params: AssetParamsSchema,
          response: { 200: AssetDetailSchema, ...errors },
        },
      },
      async (request) => {
        const d = await rt.assets.show(request.params.key);
        return {
          asset: assetOut(d.asset),
          versions: d.versions.map(versionOut),
          upstream: d.upstream.map(linkOut),
          downstream: d.downstream.map(linkOut),
          checks: d.checks.map(checkOut),
        };
      },
    );
    app.get(
      '/assets/:key/lineage',
      {
        schema: {
          summary: "An asset's lineage, up and down to `depth` steps",
          tags: ['assets'],
          params: AssetParamsSchema,
          querystring: LineageQuerySchema,
          response: { 200: LineageSchema, ...errors },
        },
      },
      async (request) => {
        const nodes = new Map<string, { key: string; stale: boolean; latest_version: string | null }>();
        const edges = new Map<string, { from: string; to: string }>();
        let frontier = [request.params.key];
        for (let step = 0; step <= request.query.depth && frontier.length > 0; step++) {
          const next: string[] = [];
          for (const key of frontier) {
            if (nodes.has(key)) continue;
            const d = await rt.assets.show(key, { limit: 1 }).catch((error: unknown) => {
              if (key === request.params.key) throw error;
              return null;
            });
            nodes.set(key, { key, stale: d?.asset.stale ?? false, latest_version: d?.asset.latestVersion ?? null });
            if (!d || step === request.query.depth) continue;
            for (const u of d.upstream) {
              edges.set(`${u.key}>${key}`, { from: u.key, to: key });
              next.push(u.key);
            }
            for (const w of d.downstream) {
              edges.set(`${key}>${w.key}`, { from: key, to: w.key });
              next.push(w.key);
            }
          }
          frontier = next;
        }
        return { nodes: [...nodes.values()], edges: [...edges.values()] };
      },
    );
    app.post(
      '/assets/:key/materialize',
      {
        schema: {
          summary: 'Start a run of the task that materializes an asset',
          tags: ['assets'],
          params: AssetParamsSchema,
          response: { 201: MaterializeResultSchema, ...errors },
        },
      },
      async (request, reply) => {
        const started = await materializeAsset(rt, request.params.key);
        return reply.status(201).send({ id: started.run.id, run: runOut(started.run) });
      },
    );
  };
}
