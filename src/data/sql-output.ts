/**
 * Where the result of a `sql` task goes, once it is a DuckDB table: a file of the namespace
 * (written by DuckDB to the attempt's folder, then handed to the namespace's atomic write),
 * a table of a postgres mount (all rows in one transaction: readers and a failure see the
 * old rows or all the new ones), or the task's output itself when it is small.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBPreparedStatement } from '@duckdb/node-api';
import { BatonError } from '../core/errors.js';
import type { DatabaseConnection, TaskData } from '../core/task-context.js';
import type { SqlFileFormat, SqlTableMode } from '../define/sql-schema.js';
import { quoteIdent } from './postgres-keys.js';
import { sqlString } from './sql-inputs.js';
import { duckdbValueParam, duckdbValueToJson, pgTypeOfDuckdb, type DuckdbColumnType } from './sql-types.js';

/** Most rows a `sql` task returns as its output; more must go to a file or a table (`output.to`). */
export const SQL_OUTPUT_ROWS = 10_000;
/** Rows per INSERT into a PostgreSQL table, fewer when the columns would pass its 65535 parameters. */
const INSERT_ROWS = 1000;

const COPY_OPTIONS: Readonly<Record<SqlFileFormat, string>> = {
  parquet: 'FORMAT parquet',
  csv: 'FORMAT csv, HEADER true',
  json: 'FORMAT json, ARRAY true',
  jsonl: 'FORMAT json',
};
const CONTENT_TYPES: Readonly<Record<SqlFileFormat, string>> = {
  parquet: 'application/vnd.apache.parquet',
  csv: 'text/csv',
  json: 'application/json',
  jsonl: 'application/x-ndjson',
};

/** The output of a task that wrote a file. */
export interface SqlFileResult {
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
  readonly format: SqlFileFormat;
}

/** The output of a task that wrote a table. */
export interface SqlTableResult {
  readonly table: string;
  readonly rows: number;
  readonly mode: SqlTableMode;
}

/** The types `columnTypesJson` describes: a list of `{ typeId, width?, scale?, alias? }`. */
function columnTypesOf(json: unknown): DuckdbColumnType[] {
  return json as DuckdbColumnType[];
}

/**
 * The task's query, prepared with its params bound, inside a statement of Baton's:
 * `wrap` puts the query (a SELECT) where that statement needs it, on the same first line,
 * so that the line numbers of DuckDB's errors are those of the SQL as written.
 */
export type Statement = (wrap: (select: string) => string) => Promise<DuckDBPreparedStatement>;

/** The result's rows as the task output; TASK_OUTPUT_TOO_LARGE past SQL_OUTPUT_ROWS. */
export async function rowsOutput(statement: Statement, taskId: string): Promise<unknown[]> {
  // Streamed, so that a huge result is refused after SQL_OUTPUT_ROWS + 1 rows, not held whole.
  const reader = await (await statement((select) => select)).streamAndReadUntil(SQL_OUTPUT_ROWS + 1);
  if (reader.currentRowCount > SQL_OUTPUT_ROWS) {
    throw new BatonError(
      'TASK_OUTPUT_TOO_LARGE',
      `task ${taskId}: the SQL returned more than the ${SQL_OUTPUT_ROWS} rows a task output holds`,
      {
        hint: 'Write the result to a file or a table with `output: { to: data://<mount>/<file>.parquet }` (or a postgres table), and read it from there downstream.',
        details: { limit: SQL_OUTPUT_ROWS },
      },
    );
  }
  const names = reader.columnNames();
  const types = columnTypesOf(reader.columnTypesJson());
  return reader.getRowsJson().map((row) => {
    const out: Record<string, unknown> = {};
    row.forEach((value, i) => {
      const name = names[i] as string;
      const v = duckdbValueToJson(value, types[i] as DuckdbColumnType);
      if (name === '__proto__')
        Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
      else out[name] = v;
    });
    return out;
  });
}

/** Writes the result to `path` of the namespace in `format`, through a file of the attempt's folder. */
export async function writeFileOutput(
  statement: Statement,
  path: string,
  format: SqlFileFormat,
  context: { readonly data: TaskData; readonly tmpDir: string },
): Promise<SqlFileResult> {
  const file = join(context.tmpDir, `output.${format}`);
  const prepared = await statement(
    // The newline ends a `--` comment the SQL may end with.
    (select) => `COPY (${select}\n) TO ${sqlString(file)} (${COPY_OPTIONS[format]})`,
  );
  const copied = await prepared.runAndReadAll();
  const rows = Number(copied.getRowsJson()[0]?.[0] ?? 0);
  const written = await context.data.write(path, createReadStream(file, { highWaterMark: 1024 * 1024 }), {
    contentType: CONTENT_TYPES[format],
  });
  return { path, rows, bytes: written.size, format };
}

/**
 * Writes the result to `table` of the postgres mount behind `pg`, in one transaction:
 * `append` adds the rows, `replace` replaces all the rows, `merge` inserts or updates by
 * `key` (INSERT … ON CONFLICT). A missing table is created with the result's column types
 * (and, for merge, a unique key on `key`).
 */
export async function writeTableOutput(
  statement: Statement,
  pg: DatabaseConnection,
  target: { readonly table: string; readonly mode: SqlTableMode; readonly key?: readonly string[] },
): Promise<SqlTableResult> {
  const stream = await (await statement((select) => select)).stream();
  const names = stream.columnNames();
  const types = columnTypesOf(stream.columnTypesJson());
  const qualified = `${quoteIdent(pg.schema)}.${quoteIdent(target.table)}`;
  const key = target.key ?? [];
  for (const k of key) {
    if (!names.includes(k)) {
      throw new BatonError('SQL_FAILED', `output.key names column ${k}, which the SQL's result does not have`, {
        hint: `The result's columns: ${names.join(', ')}.`,
      });
    }
  }
  await pg.query('BEGIN');
  // Two tasks creating one table at once would both find it missing.
  await pg.query('SELECT pg_advisory_xact_lock(hashtext($1))', [qualified]);
  const found = await pg.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [pg.schema, target.table],
  );
  if (found.rowCount === 0) {
    const columns = names.map((n, i) => `${quoteIdent(n)} ${pgTypeOfDuckdb(types[i] as DuckdbColumnType)}`);
    if (key.length > 0) columns.push(`UNIQUE (${key.map(quoteIdent).join(', ')})`);
    await pg.query(`CREATE TABLE ${qualified} (${columns.join(', ')})`);
  } else if (target.mode === 'replace') {
    await pg.query(`DELETE FROM ${qualified}`);
  }
  const columnList = names.map(quoteIdent).join(', ');
  const updates = names.filter((n) => !key.includes(n)).map((n) => `${quoteIdent(n)} = EXCLUDED.${quoteIdent(n)}`);
  const conflict =
    target.mode !== 'merge'
      ? ''
      : ` ON CONFLICT (${key.map(quoteIdent).join(', ')}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
  const perInsert = Math.max(1, Math.min(INSERT_ROWS, Math.floor(65_535 / Math.max(1, names.length))));
  let rows = 0;
  let pending: unknown[][] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const values: unknown[] = [];
    const tuples = pending.map((row) => {
      const slots = row.map((v) => {
        values.push(duckdbValueParam(v));
        return `$${values.length}`;
      });
      return `(${slots.join(', ')})`;
    });
    await pg.query(`INSERT INTO ${qualified} (${columnList}) VALUES ${tuples.join(', ')}${conflict}`, values);
    rows += pending.length;
    pending = [];
  };
  for await (const batch of stream.yieldRowsJson()) {
    for (const row of batch) {
      pending.push(row);
      if (pending.length >= perInsert) await flush();
    }
  }
  await flush();
  await pg.query('COMMIT');
  return { table: target.table, rows, mode: target.mode };
}
