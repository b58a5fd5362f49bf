/**
 * Typed fetch wrappers for the routes of Baton's HTTP API v1. Every failure becomes an
 * ApiError carrying the server's code, message and hint.
 */
import type {
  ApiErrorBody,
  ApprovalResult,
  Asset,
  AssetDetail,
  AssetLineage,
  Backfill,
  BackfillPlan,
  FlowDetail,
  FlowSummary,
  FlowVersion,
  Firing,
  Health,
  HistoryEvent,
  LogLine,
  Page,
  Run,
  RunDetail,
  StartRunBody,
  StartRunResult,
  TaskDetail,
  TaskRun,
  Trigger,
} from './types';

export const API_BASE = '/api/v1';

/** An error answered by the API (or a network failure, with code NETWORK). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint: string | null,
    readonly details: Record<string, unknown> | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Query = Record<string, string | number | boolean | null | undefined>;

/** Builds a query string, leaving out empty values. */
export function queryString(query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function isErrorBody(body: unknown): body is ApiErrorBody {
  return typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'object';
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${API_BASE}${path}`, {
      method,
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (cause) {
    if (signal?.aborted) throw cause;
    throw new ApiError(
      0,
      'NETWORK',
      'The Baton server cannot be reached.',
      'Is `baton server` or `baton dev` running?',
      null,
    );
  }
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    if (isErrorBody(parsed)) {
      const e = parsed.error;
      throw new ApiError(response.status, e.code, e.message, e.hint ?? null, e.details ?? null);
    }
    throw new ApiError(
      response.status,
      'HTTP_' + response.status,
      `${method} ${path} answered ${response.status}.`,
      null,
      null,
    );
  }
  return parsed as T;
}

const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, undefined, signal);
const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, body);
const enc = encodeURIComponent;

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
}

export interface RunsQuery extends PageQuery {
  flow?: string;
  /** Comma-separated list of states. */
  state?: string;
  trigger?: string;
  since?: string;
  until?: string;
  parent?: string;
}

/** The API of one Baton server. */
export const api = {
  health: (signal?: AbortSignal) => get<Health>('/health', signal),

  flows: (q: { q?: string } & PageQuery = {}, signal?: AbortSignal) =>
    get<Page<FlowSummary>>(`/flows${queryString({ ...q })}`, signal),
  flow: (name: string, signal?: AbortSignal) => get<FlowDetail>(`/flows/${enc(name)}`, signal),
  flowVersions: (name: string, signal?: AbortSignal) => get<Page<FlowVersion>>(`/flows/${enc(name)}/versions`, signal),
  startRun: (flow: string, body: StartRunBody) => post<StartRunResult>(`/flows/${enc(flow)}/runs`, body),

  runs: (q: RunsQuery = {}, signal?: AbortSignal) => get<Page<Run>>(`/runs${queryString({ ...q })}`, signal),
  run: (id: string, signal?: AbortSignal) => get<RunDetail>(`/runs/${enc(id)}`, signal),
  runTasks: (id: string, signal?: AbortSignal) => get<Page<TaskRun>>(`/runs/${enc(id)}/tasks?limit=10000`, signal),
  taskRun: (id: string, task: string, signal?: AbortSignal) =>
    get<TaskDetail>(`/runs/${enc(id)}/tasks/${enc(task)}`, signal),
  runEvents: (id: string, q: { after?: number } & PageQuery = {}, signal?: AbortSignal) =>
    get<Page<HistoryEvent>>(`/runs/${enc(id)}/events${queryString({ ...q })}`, signal),
  runLogs: (
    id: string,
    q: { task?: string; attempt?: number; after?: number } & PageQuery = {},
    signal?: AbortSignal,
  ) => get<Page<LogLine>>(`/runs/${enc(id)}/logs${queryString({ ...q })}`, signal),
  runChildren: (id: string, signal?: AbortSignal) => get<Page<Run>>(`/runs/${enc(id)}/children`, signal),
  /** The URL of the live log stream (`text/event-stream` of `log` events) of a run. */
  runLogStreamUrl: (id: string, q: { task?: string; attempt?: number; after?: number } = {}) =>
    `${API_BASE}/runs/${enc(id)}/logs${queryString({ ...q, follow: true })}`,

  cancel: (id: string, reason?: string) => post<Run>(`/runs/${enc(id)}/cancel`, reason ? { reason } : {}),
  retry: (id: string, body: { from?: string; failed?: boolean }) => post<Run>(`/runs/${enc(id)}/retry`, body),
  resume: (id: string) => post<Run>(`/runs/${enc(id)}/resume`),
  signal: (id: string, body: { event: string; payload?: unknown; task?: string }) =>
    post<{ delivered: unknown }>(`/runs/${enc(id)}/signal`, body),
  approve: (id: string, body: { task: string; by: string; comment?: string }) =>
    post<ApprovalResult>(`/runs/${enc(id)}/approve`, body),
  reject: (id: string, body: { task: string; by: string; comment?: string }) =>
    post<ApprovalResult>(`/runs/${enc(id)}/reject`, body),

  triggers: (q: PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Trigger>>(`/triggers${queryString({ ...q })}`, signal),
  trigger: (id: string, signal?: AbortSignal) => get<Trigger>(`/triggers/${enc(id)}`, signal),
  pauseTrigger: (id: string) => post<Trigger>(`/triggers/${enc(id)}/pause`),
  resumeTrigger: (id: string) => post<Trigger>(`/triggers/${enc(id)}/resume`),
  triggerHistory: (id: string, q: PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Firing>>(`/triggers/${enc(id)}/history${queryString({ ...q })}`, signal),

  backfills: (q: PageQuery = {}, signal?: AbortSignal) =>
    get<Page<Backfill>>(`/backfills${queryString({ ...q })}`, signal),
  backfill: (id: string, signal?: AbortSignal) => get<Backfill>(`/backfills/${enc(id)}`, signal),
  planBackfill: (body: { flow: string; trigger?: string; from: string; to: string }) =>
    post<BackfillPlan>('/backfills/plan', body),
  createBackfill: (body: {
    flow: string;
    trigger?: string;
    from: string;
    to: string;
    max_parallel?: number;
    rerun?: boolean;
  }) => post<Backfill>('/backfills', body),
  backfillAction: (id: string, action: 'pause' | 'resume' | 'cancel') =>
    post<Backfill>(`/backfills/${enc(id)}/${action}`),

  assets: (q: PageQuery = {}, signal?: AbortSignal) => get<Page<Asset>>(`/assets${queryString({ ...q })}`, signal),
  asset: (key: string, signal?: AbortSignal) => get<AssetDetail>(`/assets/${enc(key)}`, signal),
  assetLineage: (key: string, depth?: number, signal?: AbortSignal) =>
    get<AssetLineage>(`/assets/${enc(key)}/lineage${queryString({ depth })}`, signal),
  materialize: (key: string) => post<{ id: string; run: Run }>(`/assets/${enc(key)}/materialize`),
};
