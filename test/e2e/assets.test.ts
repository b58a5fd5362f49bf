/**
 * Assets end to end: a project with a local mount, run through the real runtime. A task
 * whose asset fails an error check fails with CHECK_FAILED and its downstream task is
 * blocked; a warn check is recorded and lets the run go on; and the real CLI (`baton
 * asset show`, `baton assets`, after `npm run build`) prints the checks, versions and
 * lineage from the store.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { openClient } from '../../src/client/index.js';
import { baton, describeResult, parseJson, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

const TASKS = `
export async function pull(ctx) {
  await ctx.data.write('data://lake/raw/orders.csv', 'order_id,customer_id,total\\n1,10,5\\n2,11,7\\n2,,9\\n');
}
export async function clean(ctx) {
  const raw = await ctx.data.readText('data://lake/raw/orders.csv');
  const rows = raw.trim().split('\\n');
  // Keeps every row, the one without a customer too: the not_null check catches it.
  const keep = ctx.inputs.dropMissing ? rows.filter((r) => !r.includes(',,')) : rows;
  if (ctx.inputs.bump) keep.push('3,12,' + ctx.inputs.bump);
  await ctx.data.write('data://lake/curated/orders.csv', keep.join('\\n') + '\\n');
}
export async function report(ctx) {
  return { ok: true };
}
export async function sum(ctx) {
  const rows = (await ctx.data.readText('data://lake/curated/orders.csv')).trim().split('\\n').slice(1);
  const total = rows.reduce((n, r) => n + Number(r.split(',')[2]), 0);
  await ctx.data.write('data://lake/reports/daily.csv', 'total\\n' + total + '\\n');
}
`;

const FLOW = `name: orders
params:
  dropMissing: { type: boolean, default: false }
  bump: { type: integer, default: 0 }
tasks:
  pull:
    kind: function
    module: ./tasks.mjs
    export: pull
    produces:
      - asset: orders_raw
        path: data://lake/raw/orders.csv
  clean:
    kind: function
    module: ./tasks.mjs
    export: clean
    depends_on: [pull]
    with: { dropMissing: "\${{ params.dropMissing }}", bump: "\${{ params.bump }}" }
    produces:
      - asset: orders_clean
        path: data://lake/curated/orders.csv
        checks:
          - { not_null: [customer_id] }
          - { unique: [order_id], severity: warn }
          - { sql: "SELECT * FROM asset WHERE total < 0", name: no_negative_totals }
  report:
    kind: function
    module: ./tasks.mjs
    export: report
    depends_on: [clean]
`;

// A flow of its own that reads orders_clean through ctx.data, declaring nothing it consumes.
const REPORTS = `name: reports
tasks:
  sum:
    kind: function
    module: ./tasks.mjs
    export: sum
    produces:
      - asset: daily_totals
        path: data://lake/reports/daily.csv
        checks:
          - { row_count: { min: 1, max: 1 } }
`;

function project(): string {
  const dir = temp.mkdir('baton-assets-');
  writeFileSync(join(dir, 'baton.yaml'), 'data:\n  mounts:\n    lake: { kind: local, path: lake }\n');
  mkdirSync(join(dir, 'flows'));
  mkdirSync(join(dir, 'lake'));
  writeFileSync(join(dir, 'flows', 'tasks.mjs'), TASKS);
  writeFileSync(join(dir, 'flows', 'orders.yaml'), FLOW);
  writeFileSync(join(dir, 'flows', 'reports.yaml'), REPORTS);
  return dir;
}

async function runFlow(
  rt: Runtime,
  dir: string,
  params: Record<string, unknown>,
  file = 'orders.yaml',
): Promise<string> {
  const flow = await rt.catalog.find(join(dir, 'flows', file));
  const { run } = await createRun(rt, flow, { params });
  const engine = rt.createEngine();
  try {
    await engine.execute(run.id);
  } finally {
    await engine.stop();
  }
  return run.id;
}

describe('assets through the runtime and the CLI', () => {
  it('fails a task whose asset fails an error check, blocks its downstream task, and shows the checks', async () => {
    const dir = project();
    const rt = await openRuntime({ cwd: dir, env: {} });
    let failedRun: string;
    try {
      failedRun = await runFlow(rt, dir, {});
      const tasks = await rt.store.getTaskRuns(failedRun);
      const state = Object.fromEntries(tasks.map((t) => [t.taskId, t.state]));
      expect(state).toMatchObject({ pull: 'succeeded', clean: 'failed' });
      expect(['upstream_failed', 'skipped']).toContain(state.report);
      const clean = tasks.find((t) => t.taskId === 'clean');
      expect(clean?.error).toMatchObject({
        code: 'CHECK_FAILED',
        message: 'asset orders_clean: check not_null(customer_id) failed: 1 failing row',
      });

      // Fixed data: the run succeeds; the warn check on the repeated order id is recorded only.
      const fixed = await runFlow(rt, dir, { dropMissing: true });
      expect((await rt.store.getRun(fixed))?.state).toBe('succeeded');
      const shown = await rt.assets.show('orders_clean');
      expect(shown.checks.map((c) => [c.name, c.passed])).toEqual([
        ['not_null(customer_id)', true],
        ['unique(order_id)', true],
        ['no_negative_totals', true],
      ]);
      expect(shown.versions).toHaveLength(2);
      expect(shown.upstream).toMatchObject([{ key: 'orders_raw', stale: false }]);
    } finally {
      await rt.close();
    }

    // The real CLI, on the same project: the failed version's checks are in the history,
    // the latest's are shown, and lineage is listed.
    const show = await baton(['asset', 'show', 'orders_clean'], { cwd: dir });
    expect(show.code, describeResult(show)).toBe(0);
    expect(show.stdout).toContain('asset orders_clean');
    expect(show.stdout).toMatch(/not_null\(customer_id\)\s+error\s+passed\s+0/);
    expect(show.stdout).toMatch(/unique\(order_id\)\s+warn\s+passed\s+0/);
    expect(show.stdout).toMatch(/upstream:\n.*\n\s*orders_raw\b/);

    const json = parseJson<{ versions: { runId: string; id: number }[]; checks: unknown[] }>(
      await baton(['asset', 'show', 'orders_clean', '--json'], { cwd: dir }),
    );
    expect(json.versions.map((v) => v.runId)).toContain(failedRun);

    const list = parseJson<{ key: string; stale: boolean; taskId: string }[]>(
      await baton(['assets', '--json'], { cwd: dir }),
    );
    expect(list.map((a) => [a.key, a.taskId, a.stale])).toEqual([
      ['orders_clean', 'clean', false],
      ['orders_raw', 'pull', false],
    ]);

    const missing = await baton(['asset', 'show', 'nothing'], { cwd: dir });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('ASSET_NOT_FOUND');
  });

  it('prints the failing rows of a failed check', async () => {
    const dir = project();
    const rt = await openRuntime({ cwd: dir, env: {} });
    try {
      await runFlow(rt, dir, {});
    } finally {
      await rt.close();
    }
    // The public client reads the same.
    const client = await openClient({ project: dir });
    try {
      expect((await client.assets()).map((a) => a.key)).toEqual(['orders_clean', 'orders_raw']);
      const detail = await client.asset('orders_clean');
      expect(detail.checks.find((c) => c.name === 'not_null(customer_id)')).toMatchObject({
        passed: false,
        failingCount: 1,
        sample: [{ order_id: '2', customer_id: null, total: '9' }],
      });
      await expect(client.asset('nothing')).rejects.toMatchObject({ code: 'ASSET_NOT_FOUND' });
    } finally {
      await client.close();
    }

    const show = await baton(['asset', 'show', 'orders_clean'], { cwd: dir });
    expect(show.code, describeResult(show)).toBe(0);
    expect(show.stdout).toMatch(/not_null\(customer_id\)\s+error\s+FAILED\s+1/);
    expect(show.stdout).toMatch(/unique\(order_id\)\s+warn\s+FAILED\s+2/);
    // Sample rows as DuckDB gives them in JSON: BIGINT values as strings, so that no digit is lost.
    expect(show.stdout).toContain('{"order_id":"2","customer_id":null,"total":"9"}');
  });

  it('lists what a run materialized and its check results in baton show, its JSON and the client', async () => {
    const dir = project();
    const rt = await openRuntime({ cwd: dir, env: {} });
    let runId: string;
    try {
      runId = await runFlow(rt, dir, {});
    } finally {
      await rt.close();
    }
    const show = await baton(['show', runId], { cwd: dir });
    expect(show.code, describeResult(show)).toBe(0);
    expect(show.stdout).toMatch(/assets\n\s*ASSET\s+VERSION\s+TASK\s+ATTEMPT\s+ROWS\s+CHECKS/);
    expect(show.stdout).toMatch(/orders_raw\s+[0-9a-f]{12}\s+pull\s+1\s+3\s+-/);
    expect(show.stdout).toMatch(/orders_clean\s+[0-9a-f]{12}\s+clean\s+1\s+3\s+1 passed, 2 FAILED \(error, warn\)/);
    expect(show.stdout).toContain('checks of orders_clean (task clean, attempt 1)');
    expect(show.stdout).toMatch(/not_null\(customer_id\)\s+error\s+FAILED\s+1/);
    expect(show.stdout).toMatch(/unique\(order_id\)\s+warn\s+FAILED\s+2/);
    expect(show.stdout).toMatch(/no_negative_totals\s+error\s+passed\s+0/);
    expect(show.stdout).toContain('{"order_id":"2","customer_id":null,"total":"9"}');

    const json = parseJson<{ assets: { asset: string; task: string; checks: Record<string, unknown>[] }[] }>(
      await baton(['show', runId, '--json'], { cwd: dir }),
    );
    expect(json.assets.map((a) => [a.asset, a.task])).toEqual([
      ['orders_raw', 'pull'],
      ['orders_clean', 'clean'],
    ]);
    expect(json.assets[1]?.checks[0]).toEqual({
      name: 'not_null(customer_id)',
      kind: 'not_null',
      severity: 'error',
      passed: false,
      failing_count: 1,
      message: null,
      sample: [{ order_id: '2', customer_id: null, total: '9' }],
    });

    const client = await openClient({ project: dir });
    try {
      const assets = await client.runAssets(runId);
      expect(assets.map((a) => [a.assetKey, a.checks.filter((c) => !c.passed).map((c) => c.name)])).toEqual([
        ['orders_raw', []],
        ['orders_clean', ['not_null(customer_id)', 'unique(order_id)']],
      ]);
      expect(await client.runAssets('rnothing')).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('links assets across two flows and shows the reader stale once the first flow writes new data', async () => {
    const dir = project();
    const rt = await openRuntime({ cwd: dir, env: {} });
    try {
      expect(await rt.store.getRun(await runFlow(rt, dir, { dropMissing: true }))).toMatchObject({
        state: 'succeeded',
      });
      expect(await rt.store.getRun(await runFlow(rt, dir, {}, 'reports.yaml'))).toMatchObject({ state: 'succeeded' });
      const report = await rt.assets.show('daily_totals');
      expect(report.upstream).toMatchObject([{ key: 'orders_clean', stale: false }]);
      expect((await rt.assets.show('orders_clean')).downstream).toMatchObject([{ key: 'daily_totals', stale: false }]);

      // The same data again: the same version, nothing stale.
      await runFlow(rt, dir, { dropMissing: true });
      expect((await rt.assets.list()).map((a) => [a.key, a.stale])).toEqual([
        ['daily_totals', false],
        ['orders_clean', false],
        ['orders_raw', false],
      ]);

      // New orders: a new version of orders_clean, and daily_totals read the old one.
      await runFlow(rt, dir, { dropMissing: true, bump: 4 });
      expect((await rt.assets.list()).map((a) => [a.key, a.stale])).toEqual([
        ['daily_totals', true],
        ['orders_clean', false],
        ['orders_raw', false],
      ]);
    } finally {
      await rt.close();
    }
    const list = await baton(['assets'], { cwd: dir });
    expect(list.code, describeResult(list)).toBe(0);
    expect(list.stdout).toMatch(/daily_totals\s+\w{12}\s+.*reports\/sum\s+stale/);
    const show = await baton(['asset', 'show', 'daily_totals'], { cwd: dir });
    expect(show.stdout).toContain('(stale: an upstream asset changed since it was made)');
    expect(show.stdout).toMatch(/orders_clean\s+\w{12}\s+\w{12}\s+yes/);
  });
});
