/**
 * The data objects port on SQLite (see ports/data-objects.ts), on the store's connection:
 * a batch is one write transaction (BEGIN IMMEDIATE), each access upserting its object row
 * and appending its access row in order. Paths are TEXT in SQLite's BINARY collation, so
 * the primary key is already in code point order and a prefix is one range of it.
 */
import type Database from 'better-sqlite3';
import { dataAccessRows, objectPathOf, upsertDataObjectSet } from '../data-access-rows.js';
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

export class SqliteDataObjects implements DataObjects {
  private readonly upsert: Database.Statement;
  private readonly insertAccess: Database.Statement;
  private readonly get: Database.Statement;
  private readonly forget: Database.Statement;

  /** `guard` turns a driver error into a store error naming the action. */
  constructor(
    private readonly db: Database.Database,
    private readonly guard: <T>(action: string, fn: () => T) => T,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO data_objects (path, mount, key, size, etag, sha256, schema, content_type, producer_run_id,
         producer_task_id, written_at, last_read_at)
       VALUES (@path, @mount, @key, @size, @etag, @sha256, @schema, @contentType, @producerRunId, @producerTaskId,
         @writtenAt, @readAt)
       ON CONFLICT (path) DO UPDATE SET
         ${upsertDataObjectSet('IS')}`,
    );
    this.insertAccess = db.prepare(
      `INSERT INTO data_accesses (run_id, task_id, attempt, path, op, size, etag, at)
       VALUES (@runId, @taskId, @attempt, @path, @op, @size, @etag, @at)`,
    );
    this.get = db.prepare('SELECT * FROM data_objects WHERE path = ?');
    this.forget = db.prepare('DELETE FROM data_objects WHERE path = ?');
  }

  async recordDataAccesses(accesses: readonly DataAccess[]): Promise<void> {
    const rows = dataAccessRows(accesses);
    if (rows.length === 0) return;
    this.guard('recording data accesses', () =>
      this.db
        .transaction(() => {
          for (const row of rows) {
            this.upsert.run(row);
            this.insertAccess.run(row);
          }
        })
        .immediate(),
    );
  }

  async getDataObject(path: string): Promise<DataObjectRecord | null> {
    if (!objectPathOf(path)) return null;
    const row = this.guard('reading a data object', () => this.get.get(path) as Row | undefined);
    return row ? toDataObject(row) : null;
  }

  async listDataObjects(options: DataObjectListOptions): Promise<DataObjectRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    // A mount's objects are the paths that start with `data://<mount>/`: the same range.
    for (const prefix of [options.mount === undefined ? undefined : `data://${options.mount}/`, options.prefix]) {
      if (prefix === undefined) continue;
      const upper = prefixUpperBound(prefix);
      where.push(upper === null ? 'path >= ?' : 'path >= ? AND path < ?');
      args.push(prefix, ...(upper === null ? [] : [upper]));
    }
    if (options.afterPath !== undefined) {
      where.push('path > ?');
      args.push(options.afterPath);
    }
    args.push(options.limit);
    const sql = `SELECT * FROM data_objects ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY path LIMIT ?`;
    return this.guard('listing data objects', () => (this.db.prepare(sql).all(...args) as Row[]).map(toDataObject));
  }

  async forgetDataObject(path: string): Promise<boolean> {
    if (!objectPathOf(path)) return false;
    return this.guard('forgetting a data object', () => this.forget.run(path).changes > 0);
  }

  async dataAccesses(filter: DataAccessFilter): Promise<DataAccessRecord[]> {
    const where = ['id > ?'];
    const args: unknown[] = [filter.afterSeq ?? 0];
    if (filter.runId !== undefined) {
      where.push('run_id = ?');
      args.push(filter.runId);
    }
    if (filter.path !== undefined) {
      where.push('path = ?');
      args.push(filter.path);
    }
    args.push(filter.limit);
    const sql = `SELECT * FROM data_accesses WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`;
    return this.guard('reading data accesses', () => (this.db.prepare(sql).all(...args) as Row[]).map(toDataAccess));
  }
}
