/**
 * A whole flow of `sql` tasks run through the real runtime, in a project whose baton.yaml
 * declares a local mount: a CSV aggregated with a param into Parquet, which a downstream
 * sql task reads back.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRun, openRuntime } from '../../src/app/runtime.js';

describe('a flow run by the runtime', () => {
  it('reads a CSV of a local mount, aggregates it with params, and writes Parquet that a downstream task reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-sql-flow-'));
    try {
      mkdirSync(join(dir, 'flows'));
      mkdirSync(join(dir, 'lake', 'raw'), { recursive: true });
      writeFileSync(join(dir, 'baton.yaml'), 'data:\n  mounts:\n    lake: { kind: local, path: lake }\n');
      writeFileSync(
        join(dir, 'lake', 'raw', 'orders.csv'),
        'customer,day,total\nada,2024-01-01,3\ngrace,2024-01-01,4\nada,2024-01-01,5\nada,2024-01-02,100\n',
      );
      writeFileSync(
        join(dir, 'flows', 'totals.yaml'),
        `name: totals
params:
  day: { type: string }
tasks:
  totals:
    kind: sql
    inputs: { orders: data://lake/raw/orders.csv }
    sql: SELECT customer, sum(total) AS total FROM orders WHERE day = $day GROUP BY customer ORDER BY customer
    params: { day: "\${{ params.day }}" }
    output: { to: data://lake/curated/totals.parquet }
  top:
    kind: sql
    depends_on: [totals]
    inputs: { totals: data://lake/curated/totals.parquet }
    sql: SELECT customer FROM totals ORDER BY total DESC LIMIT 1
`,
      );
      const rt = await openRuntime({ cwd: dir, env: {} });
      try {
        const flow = await rt.catalog.find(join(dir, 'flows', 'totals.yaml'));
        const { run } = await createRun(rt, flow, { params: { day: '2024-01-01' } });
        const engine = rt.createEngine();
        expect(await engine.execute(run.id)).toBe('succeeded');
        await engine.stop();
        const tasks = await rt.store.getTaskRuns(run.id);
        const bytes = readFileSync(join(dir, 'lake', 'curated', 'totals.parquet')).length;
        expect(tasks.find((t) => t.taskId === 'totals')?.output).toEqual({
          path: 'data://lake/curated/totals.parquet',
          rows: 2,
          bytes,
          format: 'parquet',
        });
        expect(tasks.find((t) => t.taskId === 'top')?.output).toEqual([{ customer: 'ada' }]);
        // The write is recorded with the task that made it.
        const { metadata } = await rt.data.stat('data://lake/curated/totals.parquet');
        expect(metadata).toMatchObject({ size: bytes });
      } finally {
        await rt.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
