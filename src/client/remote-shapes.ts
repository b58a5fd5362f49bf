/**
 * The HTTP API's JSON (snake_case, ISO times) as the client's types (camelCase, ms since
 * the epoch), so that a remote client returns exactly what a local one does.
 */
import type { AssetDetail } from '../app/assets.js';
import type { RunEvent } from '../core/run-machine.js';
import type { TaskError } from '../core/model.js';
import type {
  AssetCheckResult,
  AssetLink,
  AssetMaterializationRecord,
  AssetSummary,
  RunMaterialization,
} from '../store/ports/assets.js';
import type * as Api from '../server/schemas.js';
import type { RunEventRecord, RunInfo, TaskRunInfo } from './types.js';

const ms = (iso: string): number => Date.parse(iso);
const msOrNull = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));
/** The API's TaskError is the stored one, typed loosely (its `code` a string). */
const taskError = (e: Api.TaskError | null): TaskError | null => e as TaskError | null;

export function runFromApi(r: Api.Run): RunInfo {
  return {
    id: r.id,
    flow: r.flow,
    version: r.version,
    state: r.state as RunInfo['state'],
    params: r.params,
    dedupeKey: r.dedupe_key,
    createdAt: ms(r.created_at),
    startedAt: msOrNull(r.started_at),
    endedAt: msOrNull(r.ended_at),
    error: taskError(r.error),
    triggerId: r.trigger,
    parentRunId: r.parent?.run ?? null,
    labels: r.labels,
  };
}

export function taskFromApi(t: Api.TaskRun): TaskRunInfo {
  return {
    id: t.id,
    state: t.state as TaskRunInfo['state'],
    attempts: t.attempts,
    // JSON has no undefined: the API tells "no output yet" from a null output apart.
    output: t.has_output ? t.output : undefined,
    error: taskError(t.error),
  };
}

export function eventFromApi(runId: string, e: Api.HistoryEvent): RunEventRecord {
  const { seq, at, ...rest } = e;
  return { runId, seq, event: { ...rest, ...(at !== null ? { at: ms(at) } : {}) } as unknown as RunEvent };
}

export function assetFromApi(a: Api.Asset): AssetSummary {
  return {
    key: a.key,
    latestId: a.latest_id,
    latestVersion: a.latest_version,
    latestAt: ms(a.latest_at),
    flow: a.flow,
    taskId: a.task,
    runId: a.run_id,
    stale: a.stale,
  };
}

function checkFromApi(c: Api.Check): AssetCheckResult {
  return {
    name: c.name,
    kind: c.kind,
    severity: c.severity,
    passed: c.passed,
    failingCount: c.failing_count,
    sample: c.sample,
    message: c.message,
  };
}

const inputsFromApi = (inputs: Api.AssetVersion['inputs']) =>
  inputs.map((i) => ({ assetKey: i.asset, version: i.version }));

function versionFromApi(key: string, v: Api.AssetVersion): AssetMaterializationRecord {
  return {
    id: v.id,
    assetKey: key,
    version: v.version,
    runId: v.run_id,
    flow: v.flow,
    taskId: v.task,
    attempt: v.attempt,
    at: ms(v.at),
    location: v.location,
    size: v.size,
    rowCount: v.row_count,
    schema: v.schema,
    inputs: inputsFromApi(v.inputs),
  };
}

const linkFromApi = (l: Api.AssetLink): AssetLink => ({
  key: l.key,
  versionRead: l.version_read,
  latestVersion: l.latest_version,
  stale: l.stale,
});

export function assetDetailFromApi(d: Api.AssetDetail): AssetDetail {
  return {
    asset: assetFromApi(d.asset),
    versions: d.versions.map((v) => versionFromApi(d.asset.key, v)),
    upstream: d.upstream.map(linkFromApi),
    downstream: d.downstream.map(linkFromApi),
    checks: d.checks.map(checkFromApi),
  };
}

export function runAssetFromApi(run: Api.Run, a: Api.RunAsset): RunMaterialization {
  return {
    id: a.id,
    assetKey: a.asset,
    version: a.version,
    runId: run.id,
    flow: run.flow,
    taskId: a.task,
    attempt: a.attempt,
    at: ms(a.at),
    location: a.location,
    size: a.size,
    rowCount: a.row_count,
    schema: a.schema,
    inputs: inputsFromApi(a.inputs),
    checks: a.checks.map(checkFromApi),
  };
}
