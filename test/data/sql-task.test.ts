/**
 * `sql` tasks through their executor, on real files of a local mount and a real PostgreSQL
 * database: each input kind, each output kind, bound params, engine postgres, errors and
 * cancellation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttemptAbort } from '../../src/engine/executor.js';
import { rejection } from './pg-mount-helpers.js';
import { openSqlBench, type SqlBench } from './sql-helpers.js';

let bench: SqlBench;

/** Reads a file with DuckDB, as a downstream consumer would. */
async function duckRows(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

beforeAll(async () => {
  bench = await openSqlBench();
  const raw = join(bench.root, 'lake', 'raw');
  writeFileSync(
    join(raw, 'orders.csv'),
    'id,customer_id,day,total\n1,1,2024-01-01,10.5\n2,2,2024-01-01,4\n3,1,2024-01-02,7\n4,1,2024-01-01,1.5\n',
  );
  writeFileSync(
    join(raw, 'events.jsonl'),
    '{"customer_id":1,"kind":"click"}\n{"customer_id":2,"kind":"view"}\n{"customer_id":1,"kind":"view"}\n',
  );
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  await connection.run(
    `COPY (SELECT i AS id, i % 3 AS customer_id FROM range(30) t(i)) TO '${join(raw, 'lines.parquet')}' (FORMAT parquet)`,
  );
  connection.closeSync();
  instance.closeSync();
  await bench.sql(
    `CREATE TABLE customers (id bigint PRIMARY KEY, name text, active boolean, since timestamptz, credit numeric(10,2));
     INSERT INTO customers VALUES (1, 'Ada', true, '2020-01-02 03:04:05+00', 12.50), (2, 'Grace', true, '2021-06-07 08:09:10+00', 3.25),
       (3, 'Old', false, '2019-01-01 00:00:00+00', 0)`,
  );
});

afterAll(async () => {
  await bench?.close();
});

describe('inputs', () => {
  it('reads a CSV file of a local mount and binds a param', async () => {
    const rows = await bench.run(
      `kind: sql
inputs: { orders: data://raw/orders.csv }
sql: SELECT customer_id, sum(total) AS total FROM orders WHERE day = $day GROUP BY customer_id ORDER BY customer_id
params: { day: "\${{ params.day }}" }`,
    );
    expect(rows).toEqual([
      { customer_id: 1, total: 12 },
      { customer_id: 2, total: 4 },
    ]);
  });

  it('reads JSON Lines and Parquet files, and joins them', async () => {
    const rows = await bench.run(
      `kind: sql
inputs: { events: data://raw/events.jsonl, lines: data://raw/lines.parquet }
sql: |
  SELECT e.kind, count(*) AS n FROM events e JOIN lines l ON l.customer_id = e.customer_id
  GROUP BY e.kind ORDER BY e.kind`,
    );
    // 10 lines per customer: click (customer 1) → 10, view (customers 2 and 1) → 20.
    expect(rows).toEqual([
      { kind: 'click', n: 10 },
      { kind: 'view', n: 20 },
    ]);
  });

  it("reads an upstream task's rows, as an array or as { rows }", async () => {
    const task = `kind: sql
depends_on: [up]
inputs: { raw: { task: up } }
sql: SELECT name, qty * 2 AS double FROM raw ORDER BY name`;
    const upstreamRows = [
      { name: 'b', qty: 2 },
      { name: 'a', qty: 1 },
    ];
    const expected = [
      { name: 'a', double: 2 },
      { name: 'b', double: 4 },
    ];
    expect(await bench.run(task, { upstream: { up: upstreamRows } })).toEqual(expected);
    expect(await bench.run(task, { upstream: { up: { rows: upstreamRows } } })).toEqual(expected);
    const notRows = await rejection(bench.run(task, { upstream: { up: 'text' } }));
    expect(notRows.code).toBe('TASK_INPUT');
    expect(notRows.message).toContain('the output of task up is not rows');
  });

  it('loads a PostgreSQL query with its types, and a table', async () => {
    const rows = await bench.run(
      `kind: sql
inputs:
  customers: { query: "SELECT id, name, since, credit FROM customers WHERE active", mount: warehouse }
  everyone: { table: customers, mount: warehouse }
sql: |
  SELECT c.name, typeof(c.id) AS id_type, typeof(c.since) AS since_type, typeof(c.credit) AS credit_type,
         c.credit, extract(year FROM c.since) AS year, (SELECT count(*) FROM everyone) AS everyone
  FROM customers c ORDER BY c.id`,
    );
    expect(rows).toEqual([
      {
        name: 'Ada',
        id_type: 'BIGINT',
        since_type: 'TIMESTAMP WITH TIME ZONE',
        credit_type: 'DECIMAL(10,2)',
        credit: 12.5,
        year: 2020,
        everyone: 3,
      },
      {
        name: 'Grace',
        id_type: 'BIGINT',
        since_type: 'TIMESTAMP WITH TIME ZONE',
        credit_type: 'DECIMAL(10,2)',
        credit: 3.25,
        year: 2021,
        everyone: 3,
      },
    ]);
  });
});

describe('params', () => {
  it('keeps an injection attempt a value', async () => {
    const task = `kind: sql
inputs: { orders: data://raw/orders.csv }
sql: SELECT count(*) AS n FROM orders WHERE CAST(day AS VARCHAR) = $who
params: { who: "\${{ params.who }}" }`;
    expect(await bench.run(task, { params: { who: "x' OR '1'='1" } })).toEqual([{ n: 0 }]);
    expect(await bench.run(task, { params: { who: '2024-01-02' } })).toEqual([{ n: 1 }]);
  });

  it('refuses a $name the params do not give', async () => {
    const error = await rejection(bench.run(`kind: sql\nsql: SELECT $nope AS x`));
    expect(error.code).toBe('SQL_FAILED');
    expect(error.message).toBe('task t: the SQL uses $nope, which params does not give');
  });
});

describe('outputs', () => {
  it('writes Parquet and CSV files through the namespace', async () => {
    const task = (to: string) => `kind: sql
inputs: { orders: data://raw/orders.csv }
sql: |
  SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id ORDER BY customer_id -- per customer
output: { to: ${to} }`;
    const parquet = (await bench.run(task('data://curated/totals.parquet'))) as Record<string, unknown>;
    const file = join(bench.root, 'lake', 'curated', 'totals.parquet');
    expect(parquet).toEqual({
      path: 'data://curated/totals.parquet',
      rows: 2,
      bytes: readFileSync(file).length,
      format: 'parquet',
    });
    expect(await duckRows(`SELECT * FROM read_parquet('${file}') ORDER BY customer_id`)).toEqual([
      { customer_id: '1', total: 19 },
      { customer_id: '2', total: 4 },
    ]);
    const csv = (await bench.run(task('data://curated/totals.csv'))) as Record<string, unknown>;
    expect(csv).toMatchObject({ path: 'data://curated/totals.csv', rows: 2, format: 'csv' });
    expect(readFileSync(join(bench.root, 'lake', 'curated', 'totals.csv'), 'utf8')).toBe(
      'customer_id,total\n1,19.0\n2,4.0\n',
    );
  });

  it('appends, replaces and merges a PostgreSQL table, each in one transaction', async () => {
    const task = (mode: string, sql: string) => `kind: sql
sql: ${sql}
output: { to: data://warehouse/scores, mode: ${mode}${mode === 'merge' ? ', key: [name]' : ''} }`;
    const first = await bench.run(task('append', "SELECT * FROM (VALUES ('a', 1), ('b', 2)) v(name, score)"));
    expect(first).toEqual({ table: 'scores', rows: 2, mode: 'append' });
    await bench.run(task('append', "SELECT 'c' AS name, 3 AS score"));
    expect(await bench.sql('SELECT name, score FROM scores ORDER BY name')).toEqual([
      { name: 'a', score: 1 },
      { name: 'b', score: 2 },
      { name: 'c', score: 3 },
    ]);
    await bench.run(task('replace', "SELECT 'z' AS name, 26 AS score"));
    expect(await bench.sql('SELECT name, score FROM scores')).toEqual([{ name: 'z', score: 26 }]);

    const merge = (sql: string) => `kind: sql
sql: ${sql}
output: { to: data://warehouse/ranks, mode: merge, key: [name] }`;
    await bench.run(merge("SELECT * FROM (VALUES ('a', 1), ('b', 2)) v(name, score)"));
    await bench.run(merge("SELECT * FROM (VALUES ('b', 20), ('c', 30)) v(name, score)"));
    expect(await bench.sql('SELECT name, score FROM ranks ORDER BY name')).toEqual([
      { name: 'a', score: 1 },
      { name: 'b', score: 20 },
      { name: 'c', score: 30 },
    ]);
    // The second row repeats a key within one INSERT: PostgreSQL refuses the statement, and
    // the first row's update is rolled back with it.
    const failed = await rejection(
      bench.run(merge("SELECT * FROM (VALUES ('a', 100), ('d', 4), ('d', 5)) v(name, score)")),
    );
    expect(failed.code).toBe('SQL_FAILED');
    expect(failed.message).toContain('ON CONFLICT DO UPDATE command cannot affect row a second time');
    expect(await bench.sql('SELECT name, score FROM ranks ORDER BY name')).toEqual([
      { name: 'a', score: 1 },
      { name: 'b', score: 20 },
      { name: 'c', score: 30 },
    ]);
  });

  it('rolls back every batch of a write that fails part way', async () => {
    await bench.sql('CREATE TABLE checked (name text PRIMARY KEY, score int CHECK (score >= 0))');
    await bench.sql("INSERT INTO checked VALUES ('k0', 5), ('old', 1)");
    // 1,500 rows go in two INSERTs; the second breaks the CHECK after the first updated k0.
    // Appended rows take other names, so that only the CHECK stops them.
    const rows = (prefix: string) =>
      `SELECT '${prefix}' || i AS name, CASE WHEN i = 1200 THEN -1 ELSE i END AS score FROM range(1500) t(i) ORDER BY i`;
    for (const mode of ['merge', 'replace', 'append']) {
      const failed = await rejection(
        bench.run(`kind: sql
sql: "${rows(mode === 'append' ? 'n' : 'k')}"
output: { to: data://warehouse/checked, mode: ${mode}${mode === 'merge' ? ', key: [name]' : ''} }`),
      );
      expect(failed.code, mode).toBe('SQL_FAILED');
      expect(failed.message, mode).toContain('violates check constraint');
      expect(await bench.sql('SELECT name, score FROM checked ORDER BY name'), mode).toEqual([
        { name: 'k0', score: 5 },
        { name: 'old', score: 1 },
      ]);
    }
  });

  it('returns a small result as rows, and refuses one over 10,000 rows', async () => {
    expect(await bench.run('kind: sql\nsql: SELECT count(*) AS n FROM range(10000)')).toEqual([{ n: 10000 }]);
    const rows = (await bench.run('kind: sql\nsql: SELECT i FROM range(10000) t(i)')) as unknown[];
    expect(rows).toHaveLength(10000);
    const error = await rejection(bench.run('kind: sql\nsql: SELECT i FROM range(10001) t(i)'));
    expect(error.code).toBe('TASK_OUTPUT_TOO_LARGE');
    expect(error.message).toBe('task t: the SQL returned more than the 10000 rows a task output holds');
    expect(error.hint).toContain('output: { to: data://');
  });
});

describe('engine postgres', () => {
  it('runs the SQL on the mount, with inputs as queries of its database and params bound', async () => {
    const rows = await bench.run(
      `kind: sql
engine: postgres
mount: warehouse
inputs: { live: { query: "SELECT * FROM customers WHERE active", mount: warehouse } }
sql: |
  SELECT name, credit FROM live
  WHERE name <> $who -- a $who in a comment stays a comment
  ORDER BY id
params: { who: "\${{ params.who }}" }`,
      { params: { who: "Grace' OR 'x'='x" } },
    );
    expect(rows).toEqual([
      { name: 'Ada', credit: 12.5 },
      { name: 'Grace', credit: 3.25 },
    ]);
  });

  it('writes its result to a table of the mount', async () => {
    const out = await bench.run(`kind: sql
engine: postgres
mount: warehouse
sql: SELECT id, upper(name) AS name FROM customers WHERE active
output: { to: data://warehouse/loud, mode: replace }`);
    expect(out).toEqual({ table: 'loud', rows: 2, mode: 'replace' });
    expect(await bench.sql('SELECT id, name FROM loud ORDER BY id')).toEqual([
      { id: '1', name: 'ADA' },
      { id: '2', name: 'GRACE' },
    ]);
  });
});

describe('errors', () => {
  it('names the task, DuckDB message and line of an SQL error', async () => {
    const error = await rejection(bench.run('kind: sql\nsql: |\n  SELECT 1,\n    nope FROM range(3)'));
    expect(error.code).toBe('SQL_FAILED');
    expect(error.message).toMatch(/^task t: the SQL failed: Binder Error: Referenced column "nope" not found/);
    expect(error.message).toContain('LINE 2:');
  });

  it('refuses to let the SQL read files outside its inputs', async () => {
    const error = await rejection(
      bench.run(
        `kind: sql\ninputs: { orders: data://raw/orders.csv }\nsql: "SELECT * FROM read_csv_auto('/etc/passwd')"`,
      ),
    );
    expect(error.code).toBe('SQL_FAILED');
    expect(error.message).toContain('Cannot access file "/etc/passwd"');
    const unlock = await rejection(bench.run('kind: sql\nsql: SET enable_external_access = true'));
    expect(unlock.code).toBe('SQL_FAILED');
  });

  it('reports a missing input file and an unknown mount', async () => {
    const missing = await rejection(bench.run('kind: sql\ninputs: { x: data://raw/nope.csv }\nsql: SELECT * FROM x'));
    expect(missing.code).toBe('DATA_NOT_FOUND');
    expect(missing.message).toContain('data://raw/nope.csv');
    const unknown = await rejection(bench.run('kind: sql\ninputs: { x: data://rav/orders.csv }\nsql: SELECT * FROM x'));
    expect(unknown.code).toBe('DATA_MOUNT_UNKNOWN');
    expect(unknown.message).toContain('(did you mean raw?)');
  });

  it('reports a missing DuckDB as DEP_MISSING when it runs', async () => {
    const error = await rejection(
      bench.run('kind: sql\nsql: SELECT 1', {
        load: () => import('./no-such-module.js' as string) as never,
      }),
    );
    expect(error.code).toBe('DEP_MISSING');
  });
});

describe('cancellation', () => {
  it('interrupts the running DuckDB query when the attempt is aborted', async () => {
    const started = Date.now();
    const outcome = await bench
      .run('kind: sql\nsql: SELECT count(*) AS n FROM range(100000000000) a(i) WHERE i % 7 = 3', { abortAfterMs: 300 })
      .then(
        () => 'finished',
        (error: unknown) => error,
      );
    expect(outcome).toBeInstanceOf(AttemptAbort);
    expect((outcome as AttemptAbort).kind).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
