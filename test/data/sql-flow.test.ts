/**
 * `sql` tasks in flow files: problems found when a flow is loaded (with the file, line and
 * key), and DuckDB missing refused at validation.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlowCatalog } from '../../src/app/flow-catalog.js';
import { BatonError } from '../../src/core/errors.js';
import { defineFlow } from '../../src/define/builder.js';
import { openSqlBench } from './sql-helpers.js';

describe('validation', () => {
  it('reports each problem with its key and line', async () => {
    const bench = await openSqlBench();
    try {
      const cases: [string, string, string][] = [
        [
          'kind: sql\nsql: SELECT 1\noutput: { to: data://curated/x.xlsx }',
          'tasks.t.output.to',
          'names a file of an unknown format: data://curated/x.xlsx',
        ],
        [
          'kind: sql\nsql: SELECT 1\noutput: { to: data://warehouse/x, mode: merge }',
          'tasks.t.output.mode',
          'is merge, which needs key: the columns that identify a row',
        ],
        ['kind: sql\nsql: SELECT 1\nparams: [1, 2]', 'tasks.t.params', 'must be a map, got a list'],
        [
          'kind: sql\nengine: postgres\nsql: SELECT 1',
          'tasks.t.engine',
          'is postgres, which needs the mount whose database runs the SQL',
        ],
        [
          'kind: sql\nengine: postgres\nmount: warehouse\ninputs: { f: data://raw/orders.csv }\nsql: SELECT 1',
          'tasks.t.inputs.f',
          'is not a query or a table of the database, which is all SQL run by PostgreSQL can see',
        ],
        [
          'kind: sql\nsql: "SELECT \'${{ params.who }}\'"',
          'tasks.t.sql',
          'holds a ${{ }} template, which would put values into the SQL text',
        ],
        [
          'kind: sql\nsql: SELECT 1\ninputs: { "bad name": data://raw/a.csv }',
          'tasks.t.inputs.bad name',
          'must be a SQL name',
        ],
      ];
      for (const [task, path, message] of cases) {
        const { spec, problems } = bench.load(task);
        expect(spec, task).toBeUndefined();
        expect(problems, task).toHaveLength(1);
        const problem = problems[0];
        expect(problem?.code).toBe('DEF_INVALID');
        expect(problem?.location?.path, task).toBe(path);
        expect(problem?.message, task).toContain(message);
        // The task starts on line 7 of the flow bench.load writes.
        expect(problem?.location?.line, task).toBeGreaterThanOrEqual(7);
      }
      expect(bench.load('kind: sql\nsql: SELECT 1\noutput: { to: data://curated/x.parquet }').problems).toEqual([]);
    } finally {
      await bench.close();
    }
  });

  it('refuses a flow with a sql task when DuckDB is not installed, with the npm install line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-sql-dep-'));
    try {
      mkdirSync(join(dir, 'flows'));
      const file = join(dir, 'flows', 'f.yaml');
      writeFileSync(file, 'name: f\ntasks:\n  q:\n    kind: sql\n    sql: SELECT 1\n');
      const probe = (name: string) => name !== '@duckdb/node-api';
      const catalog = new FlowCatalog(dir, { kinds: ['function', 'shell', 'sql'], probe });
      const error = await catalog.load(file).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BatonError);
      const problem = (error as BatonError).problems[0];
      expect(problem?.code).toBe('DEP_MISSING');
      expect(problem?.message).toBe('task q (kind sql) needs the npm package @duckdb/node-api, which is not installed');
      expect(problem?.hint).toBe(
        "Run `npm install '@duckdb/node-api@^1.5.6-r.1'` in the project, then validate again.",
      );
      // Installed: the same flow loads.
      const installed = new FlowCatalog(dir, { kinds: ['function', 'shell', 'sql'], probe: () => true });
      expect((await installed.load(file)).spec.tasks[0]?.kind).toBe('sql');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the TypeScript builder', () => {
  it('declares the same task as YAML, with an upstream input as a dependency', async () => {
    const f = defineFlow({ name: 'sqlflow' });
    const up = f.task('up', async () => [{ a: 1 }]);
    f.sql('t', {
      inputs: { raw: { task: up }, orders: 'data://raw/orders.csv' },
      sql: 'SELECT * FROM raw JOIN orders ON true WHERE a = $a',
      params: { a: 1 },
      output: { to: 'data://curated/x.parquet' },
    });
    const task = f.toSpec().tasks.find((t) => t.id === 't');
    expect(task?.kind).toBe('sql');
    expect(task?.dependsOn).toEqual(['up']);
    const bench = await openSqlBench();
    try {
      const yaml = bench.load(`kind: sql
depends_on: [up]
inputs: { raw: { task: up }, orders: data://raw/orders.csv }
sql: SELECT * FROM raw JOIN orders ON true WHERE a = $a
params: { a: 1 }
output: { to: data://curated/x.parquet }`);
      expect(task?.config).toEqual(yaml.spec?.tasks.find((t) => t.id === 't')?.config);
    } finally {
      await bench.close();
    }
  });

  it('refuses a merge without key when the task is added', () => {
    const f = defineFlow({ name: 'sqlflow' });
    let error: unknown;
    try {
      f.sql('t', { sql: 'SELECT 1', output: { to: 'data://warehouse/x', mode: 'merge' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).code).toBe('DEF_INVALID');
    expect((error as BatonError).message).toBe(
      'sql task t: tasks.t.output.mode: is merge, which needs key: the columns that identify a row',
    );
  });
});
