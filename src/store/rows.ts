/**
 * Rows to records, shared by both stores. The dialects differ in three ways only, and the
 * readers here absorb them: integers (SQLite numbers, PostgreSQL int8 already parsed to
 * numbers), booleans (0/1 or true/false), and JSON columns (text on SQLite, jsonb values
 * on PostgreSQL — decoded by the `json` function each store passes in).
 */
import type { TaskError } from '../core/model.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import type { BackfillState, TriggerSpec } from '../core/trigger-spec.js';
import type {
  BackfillRecord,
  DataAccessRecord,
  DataObjectRecord,
  FiringRecord,
  RunRecord,
  StoredLogLine,
  TaskRunRecord,
  TriggerRecord,
} from './store.js';

export type Row = Record<string, unknown>;

/** An integer column that may be NULL. */
export function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function bool(value: unknown): boolean {
  return value === true || value === 1;
}

function text(value: unknown): string | null {
  return (value as string | null | undefined) ?? null;
}

/** A JSON document kept in a text column on both dialects (trigger specs, cursors, data schemas). */
function jsonText<T>(value: unknown): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : null;
}

export interface RowMappers {
  toRun(row: Row): RunRecord;
  toTaskRun(row: Row): TaskRunRecord;
  toTrigger(row: Row): TriggerRecord;
  toBackfill(row: Row): BackfillRecord;
  toFiring(row: Row): FiringRecord;
  toLogLine(row: Row): StoredLogLine;
  toDataObject(row: Row): DataObjectRecord;
  toDataAccess(row: Row): DataAccessRecord;
}

/** Mappers for a dialect whose JSON columns decode with `json` (NULL gives null). */
export function createRowMappers(json: (value: unknown) => unknown): RowMappers {
  return {
    toRun: (row) => ({
      id: row.id as string,
      flow: row.flow as string,
      version: row.version as string,
      state: row.state as RunStateName,
      params: (json(row.params) as Record<string, unknown> | null) ?? {},
      dedupeKey: text(row.dedupe_key),
      createdAt: Number(row.created_at),
      startedAt: num(row.started_at),
      endedAt: num(row.ended_at),
      error: json(row.error) as TaskError | null,
      owner: text(row.owner),
      epoch: Number(row.epoch),
      leaseUntil: num(row.lease_until),
      taskCount: Number(row.task_count),
      maxActiveRuns: num(row.max_active_runs),
      priority: Number(row.priority ?? 0),
      triggerId: text(row.trigger_id),
      parentRunId: text(row.parent_run_id),
      parentTask: text(row.parent_task),
      depth: Number(row.depth ?? 0),
      labels: (json(row.labels) as Record<string, string> | null) ?? {},
    }),
    toTaskRun: (row) => ({
      runId: row.run_id as string,
      index: Number(row.idx),
      taskId: row.task_id as string,
      state: row.state as TaskStateName,
      attempts: Number(row.attempts),
      startedAt: num(row.started_at),
      endedAt: num(row.ended_at),
      skipReason: text(row.skip_reason),
      // NULL means no output yet; a JSON null output is stored as the JSON value null.
      // PostgreSQL decodes both to null, so its reader adds `has_output` to tell them apart.
      output: (row.has_output === undefined ? row.output !== null && row.output !== undefined : bool(row.has_output))
        ? json(row.output)
        : undefined,
      error: json(row.error) as TaskError | null,
    }),
    toTrigger: (row) => ({
      id: row.id as string,
      flow: row.flow as string,
      name: row.name as string,
      kind: row.kind as string,
      spec: jsonText<TriggerSpec>(row.spec) as TriggerSpec,
      sourcePath: row.source_path as string,
      paused: bool(row.paused),
      cursor: jsonText<unknown>(row.cursor),
      nextFireAt: num(row.next_fire_at),
      registeredAt: Number(row.registered_at),
      updatedAt: Number(row.updated_at),
    }),
    toBackfill: (row) => ({
      id: row.id as string,
      flow: row.flow as string,
      triggerId: row.trigger_id as string,
      spec: jsonText<TriggerSpec>(row.spec) as TriggerSpec,
      sourcePath: row.source_path as string,
      fromAt: Number(row.from_at),
      toAt: Number(row.to_at),
      maxParallel: Number(row.max_parallel),
      rerun: bool(row.rerun),
      state: row.state as BackfillState,
      total: Number(row.total),
      nextIndex: Number(row.next_index),
      doneIndex: Number(row.done_index),
      version: Number(row.version),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      endedAt: num(row.ended_at),
      reason: text(row.reason),
    }),
    toFiring: (row) => ({
      seq: Number(row.seq),
      triggerId: row.trigger_id as string,
      at: Number(row.at),
      outcome: row.outcome as FiringRecord['outcome'],
      reason: row.reason as string,
      runId: text(row.run_id),
      dedupeKey: text(row.dedupe_key),
    }),
    toLogLine: (row) => ({
      seq: Number(row.seq),
      runId: row.run_id as string,
      taskId: row.task_id as string,
      attempt: Number(row.attempt),
      stream: row.stream as StoredLogLine['stream'],
      at: Number(row.at),
      text: row.text as string,
    }),
    toDataObject: (row) => ({
      path: row.path as string,
      mount: row.mount as string,
      key: row.key as string,
      size: Number(row.size),
      etag: text(row.etag),
      sha256: text(row.sha256),
      schema: jsonText<unknown>(row.schema),
      contentType: text(row.content_type),
      producerRunId: text(row.producer_run_id),
      producerTaskId: text(row.producer_task_id),
      writtenAt: num(row.written_at),
      lastReadAt: num(row.last_read_at),
    }),
    toDataAccess: (row) => ({
      seq: Number(row.id),
      runId: text(row.run_id),
      taskId: text(row.task_id),
      attempt: num(row.attempt),
      path: row.path as string,
      op: row.op as DataAccessRecord['op'],
      size: Number(row.size),
      etag: text(row.etag),
      at: Number(row.at),
    }),
  };
}

/**
 * The least string above every string that starts with `prefix`, in code point order (the
 * order of SQLite's BINARY collation and of PostgreSQL's "C"), so that `[prefix, bound)`
 * is exactly the strings starting with `prefix`; null when no such bound exists (a prefix
 * of U+10FFFF only), and `id >= prefix` is then enough.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    let next = (points.pop() as number) + 1;
    // Surrogates are not characters: the next character after U+D7FF is U+E000.
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next <= 0x10ffff) return String.fromCodePoint(...points, next);
  }
  return null;
}
