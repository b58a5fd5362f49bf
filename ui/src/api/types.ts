/**
 * The shapes of Baton's HTTP API v1, as the UI sees them (snake_case, as on the wire).
 * Kept in this one file so that it can become type-only imports of the server's schemas.
 */

export const RUN_STATE_NAMES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
/** A run's state; the string fallback keeps the UI working if the server adds one. */
export type RunState = (typeof RUN_STATE_NAMES)[number] | (string & {});

export const TASK_STATE_NAMES = [
  'pending',
  'queued',
  'running',
  'retrying',
  'waiting',
  'succeeded',
  'failed',
  'skipped',
  'upstream_failed',
  'cancelled',
] as const;
/** A task run's state; the string fallback keeps the UI working if the server adds one. */
export type TaskState = (typeof TASK_STATE_NAMES)[number] | (string & {});

export interface TaskError {
  code: string;
  message: string;
  hint?: string;
  stack?: string;
  details?: unknown;
  source?: string;
  kind?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ApiErrorBody {
  error: { code: string; message: string; hint: string | null; details: Record<string, unknown> | null };
}

export interface Run {
  id: string;
  flow: string;
  version: string;
  state: RunState;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  duration_ms: number | null;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  error: TaskError | null;
  trigger: string | null;
  parent: { run: string; task: string | null } | null;
  task_count: number;
}

export interface TaskRun {
  id: string;
  state: TaskState;
  attempts: number;
  started_at: string | null;
  ended_at: string | null;
  duration_ms: number | null;
  skip_reason: string | null;
  output: unknown;
  error: TaskError | null;
  wait?: Record<string, unknown>;
  group?: string;
  cached_from?: string;
  parent_task?: string;
  item?: number;
}

export interface Check {
  name: string;
  kind: string;
  severity: 'error' | 'warn';
  passed: boolean;
  failing_count: number;
  message: string | null;
  sample: unknown[];
}

export interface RunAsset {
  asset: string;
  version: string;
  task: string;
  attempt: number;
  at: string;
  location: string;
  size: number | null;
  row_count: number | null;
  inputs: { asset: string; version: string | null }[];
  checks: Check[];
}

export interface RunDetail extends Run {
  tasks: TaskRun[];
  children: Run[];
  assets: RunAsset[];
  failure: { task: string | null; code: string; message: string; attempts: number } | null;
}

export interface FlowTriggerSummary {
  name: string;
  kind: string;
  paused: boolean;
  next_fire_at: string | null;
}

export interface RecentRun {
  id: string;
  state: RunState;
  created_at: string;
  duration_ms: number | null;
}

export interface FlowSummary {
  name: string;
  description: string | null;
  file: string;
  version: string | null;
  task_count: number;
  triggers: FlowTriggerSummary[];
  recent_runs: RecentRun[];
  last_state: RunState | null;
  problems: { message: string; location?: Record<string, unknown> }[];
}

export interface GraphNode {
  id: string;
  kind: string;
  group: string | null;
  trigger_rule: string;
  map: boolean;
  depends_on: string[];
  label?: string;
}

export interface GraphEdge {
  from: string;
  to: string;
}

/** A JSON Schema object; only the parts the params form reads are typed. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  format?: string;
  minimum?: number;
  maximum?: number;
}

export interface FlowDetail extends FlowSummary {
  params_schema: JsonSchema;
  graph: { nodes: GraphNode[]; edges: GraphEdge[] };
  definition: Record<string, unknown>;
}

export interface FlowVersion {
  version: string;
  created_at: string;
}

export interface AttemptInfo {
  attempt: number;
  started_at: string | null;
  ended_at: string | null;
  state: string;
  error: TaskError | null;
  output?: unknown;
  wait?: Record<string, unknown>;
}

export interface TaskDetail {
  task: TaskRun;
  attempts: AttemptInfo[];
}

export interface HistoryEvent {
  seq: number;
  type: string;
  at: string | null;
  [k: string]: unknown;
}

export interface LogLine {
  seq: number;
  task: string;
  attempt: number;
  stream: 'stdout' | 'stderr' | 'log';
  at: string;
  text: string;
}

export interface Firing {
  seq: number;
  at: string;
  outcome: 'run' | 'deduplicated' | 'skipped' | 'error' | 'deadline_missed';
  reason: string;
  run_id: string | null;
}

export interface Trigger {
  id: string;
  flow: string;
  name: string;
  kind: string;
  paused: boolean;
  next_fire_at: string | null;
  next_fire_times: string[];
  spec: Record<string, unknown>;
  last_firing: Firing | null;
}

export interface Backfill {
  id: string;
  flow: string;
  trigger: string;
  state: string;
  from: string;
  to: string;
  max_parallel: number;
  progress: { done: number; failed: number; running: number; pending: number };
  created_at: string;
}

export interface BackfillPlan {
  intervals: { key: string; fire_at: string; status: string }[];
}

export interface Asset {
  key: string;
  latest_version: string;
  latest_at: string;
  flow: string;
  task: string;
  run_id: string;
  stale: boolean;
}

/** One materialization of an asset. */
export interface AssetVersion {
  id: number;
  version: string;
  at: string;
  run_id: string;
  flow: string;
  task: string;
  attempt: number;
  location: string;
  size: number | null;
  row_count: number | null;
  schema: { name: string; type: string }[] | null;
  inputs: { asset: string; version: string | null }[];
}

export interface AssetLink {
  key: string;
  version_read: string | null;
  latest_version: string | null;
  stale: boolean;
}

export interface AssetDetail {
  asset: Asset;
  versions: AssetVersion[];
  upstream: AssetLink[];
  downstream: AssetLink[];
  checks: Check[];
}

export interface AssetLineage {
  nodes: { key: string; stale: boolean; latest_version: string | null }[];
  edges: GraphEdge[];
}

export interface Health {
  status: 'ok';
  version: string;
  store: 'sqlite' | 'postgres';
}

export interface StartRunBody {
  params?: Record<string, unknown>;
  dedupe_key?: string;
  labels?: Record<string, string>;
}

export interface StartRunResult {
  id: string;
  created: boolean;
  run: Run;
}

export interface ApprovalResult {
  task: string;
  task_state: TaskState;
  run_state: RunState;
}

/** Data of the `task` event of `/api/v1/events`. */
export interface TaskEvent {
  run_id: string;
  task: TaskRun;
}

/** Data of the `log` event of `/api/v1/events`. */
export type LogEvent = LogLine & { run_id: string };
