/**
 * The inputs of a `sql` task as DuckDB tables and views, each under the name the task gives
 * it: files of the namespace as views over DuckDB's readers (the file is read where it lies,
 * or from the cache for remote mounts: nothing is copied), an upstream task's rows as a
 * table, and a PostgreSQL query's result as a typed table filled with DuckDB's appender
 * from a server-side cursor, a batch at a time.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { BatonError } from '../core/errors.js';
import type { DatabaseConnection, TaskData } from '../core/task-context.js';
import type { SqlInput } from '../define/sql-schema.js';
import { quoteIdent } from './postgres-keys.js';
import { duckdbTypeOfPg, pgValueText } from './sql-types.js';

/** Rows per FETCH of a PostgreSQL input. */
const FETCH_ROWS = 10_000;

/** The DuckDB reader of a file, by extension. */
const READERS: Readonly<Record<string, string>> = {
  csv: 'read_csv_auto',
  tsv: 'read_csv_auto',
  json: 'read_json_auto',
  jsonl: 'read_json_auto',
  ndjson: 'read_json_auto',
  parquet: 'read_parquet',
};

/** What loading the inputs needs of the attempt. */
export interface InputContext {
  readonly taskId: string;
  readonly data: TaskData;
  readonly upstream: Readonly<Record<string, unknown>>;
  /** A folder of the attempt's own, removed when it ends. */
  readonly tmpDir: string;
  /** The local files the inputs read, collected here: the only files the SQL may then open. */
  readonly files: string[];
  /** Holds the PostgreSQL connection in use, so that an abort can cancel its statement. */
  readonly track: (connection: DatabaseConnection | null) => void;
}

/** A SQL string literal. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** A DuckDB identifier, quoted. */
export function duckIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Makes each input a table or view of `duck` named as the task names it. */
export async function loadInputs(
  duck: DuckDBConnection,
  inputs: Readonly<Record<string, SqlInput>>,
  ctx: InputContext,
): Promise<void> {
  for (const [name, input] of Object.entries(inputs)) {
    if (typeof input === 'string') await loadFile(duck, name, input, ctx);
    else if ('task' in input) await loadUpstream(duck, name, input.task, ctx);
    else {
      const query = 'query' in input ? input.query : undefined;
      await loadPostgres(duck, name, input.mount, query, 'table' in input ? input.table : undefined, ctx);
    }
  }
}

async function loadFile(duck: DuckDBConnection, name: string, path: string, ctx: InputContext): Promise<void> {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase() ?? '';
  const reader = READERS[ext];
  if (!reader) {
    throw new BatonError('DATA_FORMAT', `task ${ctx.taskId}: input ${name} (${path}) is not a file DuckDB reads`, {
      hint: 'Name a .csv, .tsv, .json, .jsonl, .ndjson or .parquet file.',
    });
  }
  const file = await ctx.data.localFile(path);
  ctx.files.push(file);
  await duck.run(`CREATE VIEW ${duckIdent(name)} AS SELECT * FROM ${reader}(${sqlString(file)})`);
}

async function loadUpstream(duck: DuckDBConnection, name: string, task: string, ctx: InputContext): Promise<void> {
  if (!Object.hasOwn(ctx.upstream, task)) {
    throw new BatonError(
      'TASK_INPUT',
      `task ${ctx.taskId}: input ${name} reads the output of task ${task}, which is not a direct upstream task that succeeded`,
      { hint: `Add ${task} to depends_on of ${ctx.taskId}.` },
    );
  }
  const output = ctx.upstream[task];
  const rows = Array.isArray(output)
    ? output
    : output !== null && typeof output === 'object' && Array.isArray((output as { rows?: unknown }).rows)
      ? (output as { rows: unknown[] }).rows
      : undefined;
  if (!rows || !rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) {
    throw new BatonError(
      'TASK_INPUT',
      `task ${ctx.taskId}: input ${name}: the output of task ${task} is not rows (an array of objects, or an object with rows)`,
      { hint: `Make ${task} return [{ column: value, … }, …] or { rows: [ … ] }.` },
    );
  }
  if (rows.length === 0) {
    // No row says which columns there are: the table has none the SQL could name.
    await duck.run(`CREATE TABLE ${duckIdent(name)} AS SELECT NULL AS empty WHERE false`);
    return;
  }
  // DuckDB's JSON reader infers the column types over the rows, as it does for a JSONL file.
  const file = join(ctx.tmpDir, `input-${name}.jsonl`);
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n'));
  await duck.run(`CREATE TABLE ${duckIdent(name)} AS SELECT * FROM read_json_auto(${sqlString(file)})`);
}

async function loadPostgres(
  duck: DuckDBConnection,
  name: string,
  mount: string,
  query: string | undefined,
  table: string | undefined,
  ctx: InputContext,
): Promise<void> {
  const pg = await ctx.data.connect(mount);
  ctx.track(pg);
  let broken = true;
  try {
    await loadQueryInto(
      duck,
      name,
      pg,
      query ?? `SELECT * FROM ${quoteIdent(pg.schema)}.${quoteIdent(table as string)}`,
      [],
    );
    broken = false;
  } finally {
    ctx.track(null);
    pg.release(broken);
  }
}

/**
 * Fills a new DuckDB table `name` with the rows of `query` run on `pg`, through a cursor in
 * a read-only transaction, typed after the query's columns. Returns the rows loaded.
 */
export async function loadQueryInto(
  duck: DuckDBConnection,
  name: string,
  pg: DatabaseConnection,
  query: string,
  values: readonly unknown[],
): Promise<number> {
  await pg.query('BEGIN READ ONLY');
  await pg.query(`SET LOCAL DateStyle = 'ISO'`);
  await pg.query(`SET LOCAL TimeZone = 'UTC'`);
  await pg.query(`DECLARE baton_sql_input NO SCROLL CURSOR FOR ${query.trim().replace(/;+\s*$/, '')}`, values);
  let rows = 0;
  let appender: Awaited<ReturnType<DuckDBConnection['createAppender']>> | undefined;
  try {
    for (;;) {
      const batch = await pg.query(`FETCH ${FETCH_ROWS} FROM baton_sql_input`);
      if (!appender) {
        const columns = batch.fields.map((f) => `${duckIdent(f.name)} ${duckdbTypeOfPg(f.typeId, f.typeModifier)}`);
        await duck.run(`CREATE TABLE ${duckIdent(name)} (${columns.join(', ')})`);
        appender = await duck.createAppender(name);
      }
      for (const row of batch.rows) {
        for (const value of row) {
          const text = pgValueText(value);
          if (text === null) appender.appendNull();
          // The appender casts the text to the column's type, as a literal would be.
          else appender.appendVarchar(text);
        }
        appender.endRow();
      }
      rows += batch.rows.length;
      if (batch.rows.length < FETCH_ROWS) break;
    }
    appender?.flushSync();
  } finally {
    appender?.closeSync();
  }
  await pg.query('COMMIT');
  return rows;
}
