/**
 * Data accesses as the rows both stores write: each path checked and split into its mount
 * and key, the texts a row may hold bounded (an oversized schema, ETag, SHA-256 or content
 * type becomes null), and the object columns a read or a write sets. Both stores upsert
 * object rows with the same rule (see upsertDataObjectSet), so they agree row for row.
 */
import { BatonError } from '../core/errors.js';
import { formatDataPath, parseDataPath } from '../core/data-path.js';
import type { DataPath } from '../core/data-path.js';
import { DATA_SCHEMA_BYTES_MOST, DATA_TAG_CHARS_MOST } from './store.js';
import type { DataAccess } from './store.js';

/** One access, ready for the object upsert and the access insert. */
export interface DataAccessRow {
  readonly path: string;
  readonly mount: string;
  readonly key: string;
  /** As given: the database's CHECK refuses anything but `read` and `write`. */
  readonly op: string;
  readonly runId: string | null;
  readonly taskId: string | null;
  readonly attempt: number | null;
  readonly size: number;
  readonly etag: string | null;
  readonly at: number;
  /** What a write sets on the object row; null for a read. */
  readonly sha256: string | null;
  readonly schema: string | null;
  readonly contentType: string | null;
  readonly producerRunId: string | null;
  readonly producerTaskId: string | null;
  /** `at` for a write, null for a read; the upsert tells the two apart by it. */
  readonly writtenAt: number | null;
  /** `at` for a read, null for a write. */
  readonly readAt: number | null;
}

/**
 * The SET list of the object upsert, the same on both dialects (`same` is `IS` on SQLite,
 * `IS NOT DISTINCT FROM` on PostgreSQL). A write (written_at given) replaces what it
 * describes and keeps the last read time; a read (written_at null) keeps the producer and
 * what the write described, except a SHA-256 that no longer matches the size or ETag seen.
 */
export function upsertDataObjectSet(same: 'IS' | 'IS NOT DISTINCT FROM'): string {
  const fromWrite = (column: string) =>
    `${column} = CASE WHEN excluded.written_at IS NULL THEN data_objects.${column} ELSE excluded.${column} END`;
  return [
    'size = excluded.size',
    'etag = excluded.etag',
    `sha256 = CASE WHEN excluded.written_at IS NOT NULL THEN excluded.sha256
      WHEN data_objects.size = excluded.size AND data_objects.etag ${same} excluded.etag THEN data_objects.sha256 END`,
    fromWrite('schema'),
    fromWrite('content_type'),
    fromWrite('producer_run_id'),
    fromWrite('producer_task_id'),
    'written_at = coalesce(excluded.written_at, data_objects.written_at)',
    'last_read_at = coalesce(excluded.last_read_at, data_objects.last_read_at)',
  ].join(',\n  ');
}

/**
 * The mount and key of an object's canonical path (`data://<mount>/<key>`, key not empty,
 * no trailing `/`), or null for any other text.
 */
export function objectPathOf(path: string): DataPath | null {
  try {
    const parsed = parseDataPath(path);
    return parsed.key !== '' && formatDataPath(parsed) === path ? parsed : null;
  } catch {
    return null;
  }
}

/** Rows for `accesses`, in order; throws DATA_PATH_INVALID (or DATA_PATH_ESCAPE) for a bad path. */
export function dataAccessRows(accesses: readonly DataAccess[]): DataAccessRow[] {
  return accesses.map((access, i) => {
    const { mount, key } = checkedPath(access.path, i);
    const write = access.op === 'write' ? access : null;
    return {
      path: access.path,
      mount,
      key,
      op: access.op,
      runId: access.runId ?? null,
      taskId: access.taskId ?? null,
      attempt: access.attempt ?? null,
      size: access.size,
      etag: bounded(access.etag),
      at: access.at,
      sha256: bounded(write?.sha256),
      schema: write ? schemaText(write.schema) : null,
      contentType: bounded(write?.contentType),
      producerRunId: write ? (access.runId ?? null) : null,
      producerTaskId: write ? (access.taskId ?? null) : null,
      writtenAt: write ? access.at : null,
      readAt: write ? null : access.at,
    };
  });
}

/**
 * Splits rows into groups in which no path repeats, for upserts a group to a statement (a
 * statement may change each row once only): the n-th access to each path goes in group n.
 * Accesses to one path are then applied in order, group after group; accesses to different
 * paths change different rows, so their order does not matter. A batch whose paths are
 * all different is one group.
 */
export function distinctPathGroups<T extends { readonly path: string }>(rows: readonly T[]): T[][] {
  const groups: T[][] = [];
  const seen = new Map<string, number>();
  for (const row of rows) {
    const n = seen.get(row.path) ?? 0;
    seen.set(row.path, n + 1);
    let group = groups[n];
    if (!group) groups.push((group = []));
    group.push(row);
  }
  return groups;
}

function checkedPath(path: string, index: number): DataPath {
  const parsed = parseDataPath(path, `data access ${index + 1}`);
  if (parsed.key === '') {
    throw new BatonError(
      'DATA_PATH_INVALID',
      `${JSON.stringify(path)} (data access ${index + 1}) names the root of mount ${parsed.mount}, not an object`,
      { hint: 'Record accesses to objects: data://<mount>/<key>.' },
    );
  }
  if (formatDataPath(parsed) !== path) {
    throw new BatonError(
      'DATA_PATH_INVALID',
      `${JSON.stringify(path)} (data access ${index + 1}) is not written the canonical way: ${JSON.stringify(formatDataPath(parsed))}`,
      { hint: 'Record the path as formatDataPath gives it (no trailing /), so that one object has one row.' },
    );
  }
  return parsed;
}

function bounded(text: string | null | undefined): string | null {
  return typeof text === 'string' && text.length <= DATA_TAG_CHARS_MOST ? text : null;
}

function schemaText(schema: unknown): string | null {
  if (schema === undefined || schema === null) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(schema) as string | undefined;
  } catch {
    // A value JSON cannot hold (a bigint, a cycle) declares no schema Baton could keep.
    return null;
  }
  return text !== undefined && Buffer.byteLength(text) <= DATA_SCHEMA_BYTES_MOST ? text : null;
}
