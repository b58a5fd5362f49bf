/**
 * The data objects port on PostgreSQL (see ports/data-objects.ts), on the store's pool. A
 * batch is one transaction of few round trips: the object rows are upserted a group at a
 * time (one statement per group of accesses whose paths do not repeat, see
 * distinctPathGroups; it locks its rows in path order, so that two batches cannot deadlock
 * within a group), then every access row is appended by one statement, in the order given. Paths collate "C" (migration 12): the
 * order, the ranges and the pages are bytewise, as on SQLite.
 */
import type pg from 'pg';
import { dataAccessRows, distinctPathGroups, objectPathOf, upsertDataObjectSet } from '../data-access-rows.js';
import type { DataAccessRow } from '../data-access-rows.js';
import { createRowMappers, prefixUpperBound } from '../rows.js';
import type { Row } from '../rows.js';
import type { DataObjects } from '../ports/data-objects.js';
import type {
  DataAccess,
  DataAccessFilter,
  DataAccessRecord,
  DataObjectListOptions,
  DataObjectRecord,
} from '../store.js';

const { toDataObject, toDataAccess } = createRowMappers(() => null);

const UPSERT_OBJECTS = `
INSERT INTO data_objects (path, mount, key, size, etag, sha256, schema, content_type, producer_run_id, producer_task_id,
    written_at, last_read_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[])
    AS x(path, mount, key, size, etag, sha256, schema, content_type, producer_run_id, producer_task_id, written_at,
      last_read_at)
  ORDER BY x.path COLLATE "C"
ON CONFLICT (path) DO UPDATE SET
  ${upsertDataObjectSet('IS NOT DISTINCT FROM')}`;

const INSERT_ACCESSES = `
INSERT INTO data_accesses (run_id, task_id, attempt, path, op, size, etag, at)
  SELECT x.run_id, x.task_id, x.attempt, x.path, x.op, x.size, x.etag, x.at
  FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])
    WITH ORDINALITY AS x(run_id, task_id, attempt, path, op, size, etag, at, ord)
  ORDER BY x.ord`;

/** The store's statement runners: each turns a driver error into a store error naming the action. */
export interface PgRunners {
  q(action: string, text: string, values?: unknown[]): Promise<Row[]>;
  tx<T>(action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export class PostgresDataObjects implements DataObjects {
  constructor(private readonly pg: PgRunners) {}

  async recordDataAccesses(accesses: readonly DataAccess[]): Promise<void> {
    const rows = dataAccessRows(accesses);
    if (rows.length === 0) return;
    await this.pg.tx('recording data accesses', async (c) => {
      for (const group of distinctPathGroups(rows)) await c.query(UPSERT_OBJECTS, objectColumns(group));
      await c.query(INSERT_ACCESSES, [
        rows.map((r) => r.runId),
        rows.map((r) => r.taskId),
        rows.map((r) => r.attempt),
        rows.map((r) => r.path),
        rows.map((r) => r.op),
        rows.map((r) => r.size),
        rows.map((r) => r.etag),
        rows.map((r) => r.at),
      ]);
    });
  }

  async getDataObject(path: string): Promise<DataObjectRecord | null> {
    // Only a canonical path has a row; any other text (a NUL, which PostgreSQL refuses
    // in text, among them) is answered without asking the server.
    if (!objectPathOf(path)) return null;
    const rows = await this.pg.q('reading a data object', 'SELECT * FROM data_objects WHERE path = $1', [path]);
    return rows[0] ? toDataObject(rows[0]) : null;
  }

  async listDataObjects(options: DataObjectListOptions): Promise<DataObjectRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    // A mount's objects are the paths that start with `data://<mount>/`: the same range.
    for (const prefix of [options.mount === undefined ? undefined : `data://${options.mount}/`, options.prefix]) {
      if (prefix === undefined) continue;
      args.push(prefix);
      where.push(`path >= $${args.length}`);
      const upper = prefixUpperBound(prefix);
      if (upper !== null) {
        args.push(upper);
        where.push(`path < $${args.length}`);
      }
    }
    if (options.afterPath !== undefined) {
      args.push(options.afterPath);
      where.push(`path > $${args.length}`);
    }
    args.push(options.limit);
    const rows = await this.pg.q(
      'listing data objects',
      `SELECT * FROM data_objects ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY path COLLATE "C" LIMIT $${args.length}`,
      args,
    );
    return rows.map(toDataObject);
  }

  async forgetDataObject(path: string): Promise<boolean> {
    if (!objectPathOf(path)) return false;
    const rows = await this.pg.q('forgetting a data object', 'DELETE FROM data_objects WHERE path = $1 RETURNING 1', [
      path,
    ]);
    return rows.length > 0;
  }

  async dataAccesses(filter: DataAccessFilter): Promise<DataAccessRecord[]> {
    const args: unknown[] = [filter.afterSeq ?? 0];
    const where = ['id > $1'];
    if (filter.runId !== undefined) {
      args.push(filter.runId);
      where.push(`run_id = $${args.length}`);
    }
    if (filter.path !== undefined) {
      args.push(filter.path);
      where.push(`path = $${args.length}`);
    }
    args.push(filter.limit);
    const rows = await this.pg.q(
      'reading data accesses',
      `SELECT * FROM data_accesses WHERE ${where.join(' AND ')} ORDER BY id LIMIT $${args.length}`,
      args,
    );
    return rows.map(toDataAccess);
  }
}

/** The upsert's parameters: one array per column, in the order of UPSERT_OBJECTS. */
function objectColumns(rows: readonly DataAccessRow[]): unknown[] {
  return [
    rows.map((r) => r.path),
    rows.map((r) => r.mount),
    rows.map((r) => r.key),
    rows.map((r) => r.size),
    rows.map((r) => r.etag),
    rows.map((r) => r.sha256),
    rows.map((r) => r.schema),
    rows.map((r) => r.contentType),
    rows.map((r) => r.producerRunId),
    rows.map((r) => r.producerTaskId),
    rows.map((r) => r.writtenAt),
    rows.map((r) => r.readAt),
  ];
}
