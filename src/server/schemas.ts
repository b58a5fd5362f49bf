/**
 * The shapes of the HTTP API v1: every request body, query, path parameter and response.
 * They are the single source of truth: the server validates requests with them, the
 * OpenAPI document (/api/v1/openapi.json) is generated from them, and the web UI imports
 * the inferred types (type-only). Names are snake_case; times are ISO-8601 strings (UTC)
 * or null; durations are in ms.
 */
import { z } from 'zod';
import { RUN_STATES, TASK_STATES } from '../core/states.js';

const runStateNames = Object.values(RUN_STATES) as [string, ...string[]];
const taskStateNames = Object.values(TASK_STATES) as [string, ...string[]];

/** A run's state (core/states.ts). */
export const RunStateSchema = z.enum(runStateNames).meta({ id: 'RunState' });
/** A task run's state (core/states.ts). */
export const TaskStateSchema = z.enum(taskStateNames).meta({ id: 'TaskState' });
export type RunState = z.infer<typeof RunStateSchema>;
export type TaskState = z.infer<typeof TaskStateSchema>;

const isoTime = z.string().describe('ISO-8601 time, UTC');
const nullableTime = isoTime.nullable();

/** An error as stored on a run or task run. */
export const TaskErrorSchema = z
  .looseObject({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    stack: z.string().optional(),
    details: z.unknown().optional(),
    source: z.string().optional(),
    kind: z.string().optional(),
  })
  .meta({ id: 'TaskError' });
export type TaskError = z.infer<typeof TaskErrorSchema>;

/** The body of every error answer. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('a Baton error code (docs/errors.md)'),
      message: z.string(),
      hint: z.string().nullable(),
      details: z.record(z.string(), z.unknown()).nullable(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** A run, as `baton show --json` prints it, with its duration, trigger, parent and task count. */
export const RunSchema = z
  .looseObject({
    id: z.string(),
    flow: z.string(),
    version: z.string(),
    state: RunStateSchema,
    created_at: isoTime,
    started_at: nullableTime,
    ended_at: nullableTime,
    duration_ms: z.number().nullable(),
    params: z.record(z.string(), z.unknown()),
    labels: z.record(z.string(), z.string()),
    dedupe_key: z.string().nullable().describe('the dedupe key it was started with, or null'),
    error: TaskErrorSchema.nullable(),
    trigger: z.string().nullable().describe('the trigger that made the run (`<flow>/<name>`), or null'),
    parent: z.object({ run: z.string(), task: z.string().nullable() }).nullable(),
    task_count: z.number(),
  })
  .meta({ id: 'Run' });
export type Run = z.infer<typeof RunSchema>;

/** A task run, as `baton show --json` prints it. */
export const TaskRunSchema = z
  .looseObject({
    id: z.string(),
    state: TaskStateSchema,
    attempts: z.number(),
    started_at: nullableTime,
    ended_at: nullableTime,
    duration_ms: z.number().nullable(),
    skip_reason: z.string().nullable(),
    output: z.unknown(),
    has_output: z.boolean().describe('false while the task run has no output (`output` is then null)'),
    error: TaskErrorSchema.nullable(),
    wait: z.record(z.string(), z.unknown()).optional(),
    group: z.string().optional(),
    cached_from: z.string().optional(),
    parent_task: z.string().optional().describe('for a map instance: the map task'),
    item: z.number().optional().describe('for a map instance: its item index'),
  })
  .meta({ id: 'TaskRun' });
export type TaskRun = z.infer<typeof TaskRunSchema>;

/** An asset a run materialized, with its check results. */
/** The result of one check of an asset's version. */
export const CheckSchema = z
  .object({
    name: z.string(),
    kind: z.string(),
    severity: z.enum(['error', 'warn']),
    passed: z.boolean(),
    failing_count: z.number(),
    message: z.string().nullable(),
    sample: z.array(z.unknown()),
  })
  .meta({ id: 'Check' });
export type Check = z.infer<typeof CheckSchema>;
/** What a run materialized: one asset, by one attempt, with the results of its checks. */
export const RunAssetSchema = z
  .object({
    id: z.number().int().describe("the id of this version (as in the asset's versions)"),
    asset: z.string(),
    version: z.string(),
    task: z.string(),
    attempt: z.number().int(),
    at: isoTime,
    location: z.string(),
    size: z.number().nullable(),
    row_count: z.number().nullable(),
    schema: z.array(z.object({ name: z.string(), type: z.string() })).nullable(),
    inputs: z.array(z.object({ asset: z.string(), version: z.string().nullable() })),
    checks: z.array(CheckSchema),
  })
  .meta({ id: 'RunAsset' });
export type RunAsset = z.infer<typeof RunAssetSchema>;

/** A run with its task runs, child runs, materializations and first failure. */
export const RunDetailSchema = RunSchema.extend({
  tasks: z.array(TaskRunSchema),
  children: z.array(RunSchema),
  assets: z.array(RunAssetSchema),
  failure: z
    .looseObject({ task: z.string().nullable(), code: z.string(), message: z.string(), attempts: z.number() })
    .nullable(),
}).meta({ id: 'RunDetail' });
export type RunDetail = z.infer<typeof RunDetailSchema>;

/** One attempt of a task run. */
export const AttemptInfoSchema = z
  .looseObject({
    attempt: z.number(),
    started_at: nullableTime,
    ended_at: nullableTime,
    state: z.string(),
    error: TaskErrorSchema.nullable(),
  })
  .meta({ id: 'AttemptInfo' });
export type AttemptInfo = z.infer<typeof AttemptInfoSchema>;

/** One task run in full: the `baton show --task` detail. */
export const TaskDetailSchema = z.object({ task: TaskRunSchema, attempts: z.array(AttemptInfoSchema) });
export type TaskDetail = z.infer<typeof TaskDetailSchema>;

/** An event of a run's history. */
export const HistoryEventSchema = z
  .looseObject({ seq: z.number(), type: z.string(), at: nullableTime })
  .meta({ id: 'HistoryEvent' });
export type HistoryEvent = z.infer<typeof HistoryEventSchema>;

/** A log line of a task attempt. */
export const LogLineSchema = z
  .object({
    seq: z.number(),
    task: z.string(),
    attempt: z.number(),
    stream: z.enum(['stdout', 'stderr', 'log']),
    at: isoTime,
    text: z.string(),
  })
  .meta({ id: 'LogLine' });
export type LogLine = z.infer<typeof LogLineSchema>;

/** A flow file's problem (an invalid flow is listed with them). */
export const ProblemSchema = z.looseObject({ message: z.string(), location: z.looseObject({}).optional() });

/** A flow of the project with its triggers and recent runs. */
export const FlowSummarySchema = z
  .object({
    name: z.string(),
    description: z.string().nullable(),
    file: z.string(),
    version: z.string().nullable(),
    task_count: z.number(),
    triggers: z.array(
      z.object({ name: z.string(), kind: z.string(), paused: z.boolean(), next_fire_at: nullableTime }),
    ),
    recent_runs: z.array(
      z.object({ id: z.string(), state: RunStateSchema, created_at: isoTime, duration_ms: z.number().nullable() }),
    ),
    last_state: RunStateSchema.nullable(),
    problems: z.array(ProblemSchema),
  })
  .meta({ id: 'FlowSummary' });
export type FlowSummary = z.infer<typeof FlowSummarySchema>;

/** A node of a flow's task graph. */
export const GraphNodeSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    group: z.string().nullable(),
    trigger_rule: z.string(),
    map: z.boolean(),
    depends_on: z.array(z.string()),
    label: z.string().optional(),
  })
  .meta({ id: 'GraphNode' });
export type GraphNode = z.infer<typeof GraphNodeSchema>;

/** A flow with its params' JSON Schema, its graph and its normalized definition. */
export const FlowDetailSchema = FlowSummarySchema.extend({
  params_schema: z.record(z.string(), z.unknown()),
  graph: z.object({
    nodes: z.array(GraphNodeSchema),
    edges: z.array(z.object({ from: z.string(), to: z.string() })),
  }),
  definition: z.record(z.string(), z.unknown()),
}).meta({ id: 'FlowDetail' });
export type FlowDetail = z.infer<typeof FlowDetailSchema>;

/** A version of a flow, with the time of its first run. */
export const FlowVersionSchema = z.object({ version: z.string(), created_at: isoTime }).meta({ id: 'FlowVersion' });

/** A backfill with its progress. */
export const BackfillSchema = z
  .object({
    id: z.string(),
    flow: z.string(),
    trigger: z.string(),
    state: z.string(),
    from: isoTime,
    to: isoTime,
    max_parallel: z.number(),
    rerun: z.boolean(),
    created_at: isoTime,
    ended_at: nullableTime,
    reason: z.string().nullable(),
    progress: z.object({
      total: z.number(),
      done: z.number(),
      failed: z.number(),
      running: z.number(),
      pending: z.number(),
    }),
  })
  .meta({ id: 'Backfill' });
export type Backfill = z.infer<typeof BackfillSchema>;

const instantText = z.string().min(1).describe('a date (2024-01-01, midnight UTC) or an ISO 8601 instant');

/** What a backfill covers. */
export const BackfillPlanBodySchema = z.object({
  flow: z.string().min(1),
  trigger: z.string().min(1).optional().describe("the time trigger's name, when the flow has several"),
  from: instantText,
  to: instantText,
  rerun: z.boolean().optional().describe('run again the intervals whose run failed or was cancelled'),
});
export const BackfillPlanSchema = z.object({
  flow: z.string(),
  trigger: z.string(),
  intervals: z.array(
    z.object({
      key: z.string(),
      fire_at: isoTime,
      interval_start: z.string(),
      interval_end: z.string(),
      status: z.string(),
      run_id: z.string().nullable(),
      run_state: z.string().nullable(),
    }),
  ),
});
export const StartBackfillBodySchema = BackfillPlanBodySchema.extend({
  max_parallel: z.number().int().min(1).max(1000).optional(),
});
export const BackfillParamsSchema = z.object({ id: z.string().min(1) });

/** A firing of a trigger. */
export const FiringSchema = z
  .object({
    seq: z.number(),
    at: isoTime,
    outcome: z.enum(['run', 'deduplicated', 'skipped', 'error', 'deadline_missed']),
    reason: z.string(),
    run_id: z.string().nullable(),
  })
  .meta({ id: 'Firing' });
export type Firing = z.infer<typeof FiringSchema>;

/** A trigger of a flow. */
export const TriggerSchema = z
  .object({
    id: z.string(),
    flow: z.string(),
    name: z.string(),
    kind: z.string(),
    paused: z.boolean(),
    next_fire_at: nullableTime,
    next_fire_times: z.array(isoTime),
    spec: z.record(z.string(), z.unknown()),
    last_firing: FiringSchema.nullable(),
  })
  .meta({ id: 'Trigger' });
export type Trigger = z.infer<typeof TriggerSchema>;

/** A page of a list: its items and the cursor of the next page (null on the last). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** `limit` and `cursor` of a list. */
export const PageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional().describe('the `next_cursor` of the previous page'),
});

export const HealthSchema = z.object({
  status: z.literal('ok'),
  version: z.string(),
  store: z.enum(['sqlite', 'postgres']),
});
export type Health = z.infer<typeof HealthSchema>;

export const VersionSchema = z.object({ version: z.string(), api: z.literal('v1') });

export const FlowsQuerySchema = PageQuerySchema.extend({
  q: z.string().optional().describe('keep flows whose name contains this'),
});
export const FlowParamsSchema = z.object({ flow: z.string().min(1) });

const labelsSchema = z.record(z.string(), z.string());

/** What starts one run. */
export const StartRunBodySchema = z
  .object({
    params: z.record(z.string(), z.unknown()).optional(),
    dedupe_key: z.string().min(1).optional(),
    labels: labelsSchema.optional(),
  })
  .meta({ id: 'StartRun' });
export type StartRunBody = z.infer<typeof StartRunBodySchema>;

export const StartRunResultSchema = z.object({ id: z.string(), created: z.boolean(), run: RunSchema });
export type StartRunResult = z.infer<typeof StartRunResultSchema>;

export const StartRunsBodySchema = z.object({ runs: z.array(StartRunBodySchema).min(1).max(1000) });
export const StartRunsResultSchema = z.object({ items: z.array(z.object({ id: z.string(), created: z.boolean() })) });

export const RunsQuerySchema = PageQuerySchema.extend({
  flow: z.string().optional(),
  state: z.string().optional().describe('run states, comma-separated'),
  trigger: z.string().optional(),
  since: z.iso.datetime({ offset: true }).optional().describe('created at or after'),
  until: z.iso.datetime({ offset: true }).optional().describe('created before'),
  parent: z.string().optional().describe('only the child runs of this run'),
  labels: z
    .string()
    .optional()
    .describe('only runs with every one of these labels: `key=value` pairs, comma-separated'),
});
export type RunsQuery = z.infer<typeof RunsQuerySchema>;

export const RunParamsSchema = z.object({ id: z.string().min(1) });
export const TaskParamsSchema = z.object({ id: z.string().min(1), task: z.string().min(1) });

export const TasksQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(10000).default(10000),
  cursor: z.string().optional(),
});

export const EventsQuerySchema = z.object({
  after: z.coerce.number().int().min(0).default(0).describe('events after this seq'),
  limit: z.coerce.number().int().min(1).max(500).default(500),
});

const booleanText = z.enum(['true', 'false']).transform((v) => v === 'true');

export const LogsQuerySchema = z.object({
  task: z.string().optional(),
  attempt: z.coerce.number().int().min(1).optional(),
  after: z.coerce.number().int().min(0).default(0).describe('lines after this seq'),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
  follow: booleanText.optional().describe('answer a text/event-stream of `log` events until the run ends'),
});

export const CancelBodySchema = z
  .object({
    reason: z.string().min(1).max(1000).optional(),
    task: z.string().min(1).optional().describe('cancel only this task run of the run'),
  })
  .optional();
export const RetryBodySchema = z
  .object({
    from: z.string().min(1).optional().describe('rerun this task and what depends on it'),
    failed: z.boolean().optional().describe('rerun what did not succeed (the default without `from`)'),
  })
  .optional();
export const SignalBodySchema = z.object({
  event: z.string().min(1),
  payload: z.unknown().optional(),
  task: z.string().min(1).optional(),
  key: z.string().min(1).optional().describe('only tasks waiting with this match key take it'),
  by: z.string().min(1).optional().describe('who sent it, for the history'),
  id: z.string().min(1).optional().describe('makes the signal idempotent: a second with this id changes nothing'),
});
export const SignalResultSchema = z.object({ delivered: z.unknown() });
export const DecisionBodySchema = z.object({
  task: z.string().min(1),
  by: z.string().min(1),
  comment: z.string().optional(),
});
export const DecisionResultSchema = z.object({ task: z.string(), task_state: z.string(), run_state: z.string() });

export const TriggerParamsSchema = z.object({ id: z.string().min(1).describe('`<flow>/<name>`, URL-encoded') });
export const HistoryQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) });

/** An asset with its latest version. */
export const AssetSchema = z
  .looseObject({
    key: z.string(),
    latest_id: z.number().int().describe('the id of its latest version'),
    latest_version: z.string(),
    latest_at: isoTime,
    flow: z.string(),
    task: z.string(),
    run_id: z.string(),
    stale: z.boolean(),
  })
  .meta({ id: 'Asset' });
export type Asset = z.infer<typeof AssetSchema>;
export const AssetParamsSchema = z.object({ key: z.string().min(1) });
/** One materialization of an asset: its version (a SHA-256 of its bytes), where and by what it was made. */
export const AssetVersionSchema = z
  .object({
    id: z.number().int(),
    version: z.string(),
    at: isoTime,
    run_id: z.string(),
    flow: z.string(),
    task: z.string(),
    attempt: z.number().int(),
    location: z.string(),
    size: z.number().nullable(),
    row_count: z.number().nullable(),
    schema: z.array(z.object({ name: z.string(), type: z.string() })).nullable(),
    inputs: z.array(z.object({ asset: z.string(), version: z.string().nullable() })),
  })
  .meta({ id: 'AssetVersion' });
export type AssetVersion = z.infer<typeof AssetVersionSchema>;
/** An asset next to another in lineage: the version read, the latest, and whether they differ. */
export const AssetLinkSchema = z
  .object({
    key: z.string(),
    version_read: z.string().nullable(),
    latest_version: z.string().nullable(),
    stale: z.boolean(),
  })
  .meta({ id: 'AssetLink' });
export type AssetLink = z.infer<typeof AssetLinkSchema>;
export const AssetDetailSchema = z
  .object({
    asset: AssetSchema,
    versions: z.array(AssetVersionSchema),
    upstream: z.array(AssetLinkSchema),
    downstream: z.array(AssetLinkSchema),
    checks: z.array(CheckSchema),
  })
  .meta({ id: 'AssetDetail' });
export type AssetDetail = z.infer<typeof AssetDetailSchema>;
export const MaterializeResultSchema = z.object({ id: z.string(), run: RunSchema });

/** One event of the live stream (`GET /api/v1/events`). */
export const LiveEventsQuerySchema = z.object({
  run: z.string().optional().describe('only this run'),
  flow: z.string().optional().describe('only runs of this flow'),
});
