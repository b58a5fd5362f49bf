/**
 * One attempt of a `sql` task: an in-memory DuckDB of its own (spilling to the attempt's
 * folder), the inputs loaded as tables and views (sql-inputs.ts), the SQL run once as a
 * prepared statement with its params bound, and the result sent where `output` says
 * (sql-output.ts). With `engine: postgres` the SQL runs on the mount's database instead,
 * its inputs as CTEs of that database, and its result comes back through a cursor.
 *
 * Invariants: a param is always a bound value, never SQL text; the attempt's folder and
 * DuckDB are gone when the attempt ends, however it ends; an abort interrupts the running
 * DuckDB query and cancels the running PostgreSQL statement.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import type { DuckDBConnection, DuckDBType, DuckDBValue } from '@duckdb/node-api';
import { parseDataPath } from '../core/data-path.js';
import { BatonError } from '../core/errors.js';
import type { DatabaseConnection, TaskData } from '../core/task-context.js';
import { sqlFileFormat, type ParsedSqlTask } from '../define/sql-schema.js';
import type { DuckDbModule } from './duckdb.js';
import { quoteIdent } from './postgres-keys.js';
import { loadInputs, loadQueryInto, sqlString } from './sql-inputs.js';
import { rowsOutput, writeFileOutput, writeTableOutput, type Statement } from './sql-output.js';
import { toPositional } from './sql-params.js';

/** The DuckDB table a result computed by PostgreSQL is loaded into. */
const RESULT = 'baton_result';

/** What an attempt of a sql task runs with. */
export interface SqlAttempt {
  readonly taskId: string;
  readonly config: ParsedSqlTask;
  /** The task's params, templates rendered. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly data: TaskData;
  readonly upstream: Readonly<Record<string, unknown>>;
  /** Registers what stops the running statement on abort; returns the unregistration. */
  readonly onAbort: (stop: () => void) => () => void;
}

/** Runs the attempt; resolves with the task output. */
export async function runSqlAttempt(duckdb: DuckDbModule, attempt: SqlAttempt): Promise<unknown> {
  const tmpDir = await mkdtemp(join(tmpdir(), 'baton-sql-'));
  const instance = await duckdb.DuckDBInstance.create(':memory:', {
    temp_directory: join(tmpDir, 'spill'),
    // Nothing is fetched from the network: the readers used are built in.
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  const duck = await instance.connect();
  let pg: DatabaseConnection | null = null;
  const stop = attempt.onAbort(() => {
    duck.interrupt();
    void pg?.cancel();
  });
  const context = {
    taskId: attempt.taskId,
    data: attempt.data,
    upstream: attempt.upstream,
    tmpDir,
    files: [] as string[],
    track: (connection: DatabaseConnection | null) => (pg = connection),
  };
  try {
    let statement: Statement;
    if (attempt.config.engine === 'postgres') {
      await runOnPostgres(duck, attempt, context.track);
      statement = async (wrap) => duck.prepare(wrap(`SELECT * FROM ${RESULT}`));
    } else {
      await loadInputs(duck, attempt.config.inputs ?? {}, context);
      await confine(duck, context.files, tmpDir);
      statement = duckStatement(duckdb, duck, attempt);
    }
    return await sendOutput(statement, attempt, tmpDir, context.track);
  } catch (error) {
    throw sqlError(error, attempt.taskId);
  } finally {
    stop();
    duck.closeSync();
    instance.closeSync();
    await rm(tmpDir, { recursive: true, force: true });
  }
}

/**
 * Lets the task's SQL open only its inputs' files and the attempt's folder: every other
 * file of the machine is outside the namespace (no lineage, no mount), so `read_csv('/etc/…')`
 * is refused. The configuration is then locked, so that the SQL cannot undo this.
 */
async function confine(duck: DuckDBConnection, files: readonly string[], tmpDir: string): Promise<void> {
  const list = (items: readonly string[]) => `[${items.map(sqlString).join(', ')}]`;
  if (files.length > 0) await duck.run(`SET allowed_paths = ${list(files)}`);
  await duck.run(`SET allowed_directories = ${list([`${tmpDir}${sep}`])}`);
  await duck.run('SET enable_external_access = false');
  await duck.run('SET lock_configuration = true');
}

/** The SQL without the semicolons that may end it (it is run inside a statement of Baton's). */
function statementOf(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/** The task's query on `duck`, its `$name` parameters bound from the task's params. */
function duckStatement(duckdb: DuckDbModule, duck: DuckDBConnection, attempt: SqlAttempt): Statement {
  const sql = statementOf(attempt.config.sql);
  return async (wrap) => {
    const prepared = await duck.prepare(wrap(sql));
    const values: Record<string, DuckDBValue> = {};
    const types: Record<string, DuckDBType> = {};
    for (let i = 1; i <= prepared.parameterCount; i++) {
      const name = prepared.parameterName(i);
      if (!Object.hasOwn(attempt.params, name)) {
        throw new BatonError(
          'SQL_FAILED',
          `task ${attempt.taskId}: the SQL uses $${name}, which params does not give`,
          {
            hint: /^\d+$/.test(name)
              ? 'Name parameters ($day), and give each under params.'
              : `Add \`${name}\` under params, or remove $${name} from the SQL.`,
          },
        );
      }
      const value = attempt.params[name];
      values[name] = paramValue(value);
      // The narrowest type, so that `day >= $from` compares as the column's type and a
      // filter on an INTEGER column still prunes Parquet row groups.
      if (typeof value === 'number') {
        types[name] = !Number.isSafeInteger(value)
          ? duckdb.DOUBLE
          : Math.abs(value) <= 2 ** 31 - 1
            ? duckdb.INTEGER
            : duckdb.BIGINT;
      }
    }
    if (prepared.parameterCount > 0) prepared.bind(values, types);
    return prepared;
  };
}

/** A param as DuckDB binds it: scalars as they are, lists and maps as JSON text. */
function paramValue(value: unknown): DuckDBValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return value;
  return JSON.stringify(value);
}

async function runOnPostgres(
  duck: DuckDBConnection,
  attempt: SqlAttempt,
  track: (connection: DatabaseConnection | null) => void,
): Promise<void> {
  const mount = attempt.config.mount as string;
  const pg = await attempt.data.connect(mount);
  track(pg);
  let broken = true;
  try {
    const ctes = Object.entries(attempt.config.inputs ?? {}).map(([name, input]) => {
      const source =
        typeof input === 'object' && 'query' in input
          ? statementOf(input.query)
          : `SELECT * FROM ${quoteIdent(pg.schema)}.${quoteIdent((input as { table: string }).table)}`;
      return `${quoteIdent(name)} AS (${source})`;
    });
    const sql = statementOf(attempt.config.sql);
    let text = sql;
    if (ctes.length > 0) {
      // The inputs join the SQL's own WITH list, if it has one, on its first line.
      const own = /^(\s*(?:--[^\n]*\n\s*)*)with\s+(recursive\s+)?/i.exec(sql);
      text = own
        ? `${own[1] ?? ''}WITH ${own[2] ?? ''}${ctes.join(', ')}, ${sql.slice(own[0].length)}`
        : `WITH ${ctes.join(', ')} ${sql}`;
    }
    const positional = toPositional(attempt.taskId, text, attempt.params);
    await loadQueryInto(duck, RESULT, pg, positional.text, positional.values);
    broken = false;
  } finally {
    track(null);
    pg.release(broken);
  }
}

async function sendOutput(
  statement: Statement,
  attempt: SqlAttempt,
  tmpDir: string,
  track: (connection: DatabaseConnection | null) => void,
): Promise<unknown> {
  const output = attempt.config.output;
  if (!output) return rowsOutput(statement, attempt.taskId);
  const format = output.mode === undefined && output.key === undefined ? sqlFileFormat(output.to) : undefined;
  if (format) return writeFileOutput(statement, output.to, format, { data: attempt.data, tmpDir });
  const { mount, key } = parseDataPath(output.to, 'output.to');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw new BatonError('DATA_PATH_INVALID', `task ${attempt.taskId}: output.to ${output.to} names no table`, {
      hint: 'Name a table of a postgres mount, data://<mount>/<table>, with letters, digits and _.',
    });
  }
  const pg = await attempt.data.connect(mount);
  track(pg);
  let broken = true;
  try {
    const result = await writeTableOutput(statement, pg, {
      table: key,
      mode: output.mode ?? 'replace',
      ...(output.key ? { key: output.key } : {}),
    });
    broken = false;
    return result;
  } finally {
    track(null);
    // A failed write leaves its transaction open: the connection is closed, which rolls it back.
    pg.release(broken);
  }
}

/** An error of the SQL (DuckDB's, or a statement PostgreSQL refused) as SQL_FAILED naming the task. */
function sqlError(error: unknown, taskId: string): unknown {
  if (error instanceof BatonError) {
    const sqlstate = error.details.sqlstate;
    // A statement the server refused (not a connection lost: class 08) is the SQL's fault.
    if (error.code === 'DATA_IO' && typeof sqlstate === 'string' && !sqlstate.startsWith('08')) {
      return new BatonError('SQL_FAILED', `task ${taskId}: ${error.message}`, { cause: error, details: error.details });
    }
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BatonError('SQL_FAILED', `task ${taskId}: the SQL failed: ${message}`, { cause: error });
}
