/**
 * `baton asset materialize` end to end: the real CLI runs the task that last produced a
 * stale asset and the tasks it depends on, skips the rest of its flow with a reason, and
 * `baton assets` shows the asset fresh afterwards; an asset never produced is found through
 * the flows that declare it; and `client.materialize` returns a handle on such a run.
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
export async function clean(ctx) {
  await ctx.data.write('data://lake/orders.csv', 'order_id,total\\n1,5\\n' + (ctx.inputs.bump ? '2,' + ctx.inputs.bump + '\\n' : ''));
}
export async function sum(ctx) {
  const rows = (await ctx.data.readText('data://lake/orders.csv')).trim().split('\\n').slice(1);
  const total = rows.reduce((n, r) => n + Number(r.split(',')[1]), 0);
  await ctx.data.write('data://lake/totals.csv', 'total\\n' + total + '\\n');
}
export async function prepare() {
  return { ready: true };
}
export async function publish() {
  throw new Error('publish must not run when only daily_totals is materialized');
}
export async function archive() {
  throw new Error('archive must not run when only daily_totals is materialized');
}
export async function never() {
  await import('node:fs/promises').then((fs) => fs.writeFile(new URL('../lake/never.csv', import.meta.url), 'a\\n1\\n'));
}
`;

const ORDERS = `name: orders
params:
  bump: { type: integer, default: 0 }
tasks:
  clean:
    kind: function
    module: ./tasks.mjs
    export: clean
    with: { bump: "\${{ params.bump }}" }
    produces:
      - { asset: orders_clean, path: data://lake/orders.csv }
`;

// sum depends on prepare (upstream: runs) and is followed by publish (downstream: skipped);
// archive stands apart (skipped).
const REPORTS = `name: reports
tasks:
  prepare: { kind: function, module: ./tasks.mjs, export: prepare }
  sum:
    kind: function
    module: ./tasks.mjs
    export: sum
    depends_on: [prepare]
    produces:
      - { asset: daily_totals, path: data://lake/totals.csv }
  publish: { kind: function, module: ./tasks.mjs, export: publish, depends_on: [sum] }
  archive: { kind: function, module: ./tasks.mjs, export: archive }
  never_made:
    kind: function
    module: ./tasks.mjs
    export: never
    depends_on: [archive]
    produces:
      - { asset: never_made, path: data://lake/never.csv }
`;

function project(): string {
  const dir = temp.mkdir('baton-materialize-');
  writeFileSync(join(dir, 'baton.yaml'), 'data:\n  mounts:\n    lake: { kind: local, path: lake }\n');
  mkdirSync(join(dir, 'flows'));
  mkdirSync(join(dir, 'lake'));
  writeFileSync(join(dir, 'flows', 'tasks.mjs'), TASKS);
  writeFileSync(join(dir, 'flows', 'orders.yaml'), ORDERS);
  writeFileSync(join(dir, 'flows', 'reports.yaml'), REPORTS);
  return dir;
}

async function runFlow(rt: Runtime, name: string, params: Record<string, unknown> = {}): Promise<string> {
  const { run } = await createRun(rt, await rt.catalog.find(name), { params });
  const engine = rt.createEngine();
  try {
    await engine.execute(run.id);
  } finally {
    await engine.stop();
  }
  return run.id;
}

interface ShownRun {
  id: string;
  state: string;
  labels: Record<string, string>;
  tasks: { id: string; state: string }[];
}

describe('baton asset materialize', () => {
  it('runs the producer of a stale asset and its upstream only; baton assets shows it fresh', async () => {
    const dir = project();
    const rt = await openRuntime({ cwd: dir, env: {} });
    try {
      await runFlow(rt, 'orders');
      // The first reports run: daily_totals made, publish fails (as it always does).
      await runFlow(rt, 'reports');
      await runFlow(rt, 'orders', { bump: 7 });
      expect((await rt.assets.list()).find((a) => a.key === 'daily_totals')?.stale).toBe(true);
    } finally {
      await rt.close();
    }

    const result = await baton(['asset', 'materialize', 'daily_totals', '--wait', '--json'], { cwd: dir });
    expect(result.code, describeResult(result)).toBe(0);
    const shown = parseJson<ShownRun>(result);
    expect(shown.state).toBe('succeeded');
    expect(shown.labels).toEqual({ 'baton.materialize': 'daily_totals' });
    const states = Object.fromEntries(shown.tasks.map((t) => [t.id, t.state]));
    expect(states).toEqual({
      prepare: 'succeeded',
      sum: 'succeeded',
      publish: 'skipped',
      archive: 'skipped',
      never_made: 'skipped',
    });
    const publish = shown.tasks.find((t) => t.id === 'publish');
    expect(JSON.stringify(publish)).toContain('not selected: this run runs only prepare, sum');

    const list = parseJson<{ key: string; stale: boolean; runId: string }[]>(
      await baton(['assets', '--json'], { cwd: dir }),
    );
    expect(list.find((a) => a.key === 'daily_totals')).toMatchObject({ stale: false, runId: shown.id });
    const text = await baton(['assets'], { cwd: dir });
    expect(text.stdout).toMatch(/daily_totals\s+\w{12}\s+.*reports\/sum\s*\n/);
  });

  it('finds the producer of an asset never materialized through the flows, and refuses an unknown key', async () => {
    const dir = project();
    const queued = await baton(['asset', 'materialize', 'never_made', '--json'], { cwd: dir });
    expect(queued.code, describeResult(queued)).toBe(0);
    const run = parseJson<{ id: string; flow: string; state: string }>(queued);
    expect(run).toMatchObject({ flow: 'reports', state: 'queued' });

    const missing = await baton(['asset', 'materialize', 'nothing_declares_this'], { cwd: dir });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('ASSET_NOT_FOUND');

    // The client: a handle on a run of never_made's producer and its upstream (archive).
    const client = await openClient({ project: dir });
    try {
      const worker = client.startWorker();
      const handle = await client.materialize('never_made');
      expect(handle.flow).toBe('reports');
      await handle.result().catch(() => undefined);
      const tasks = Object.fromEntries((await client.tasks(handle.id)).map((t) => [t.id, t.state]));
      // archive throws: never_made is then not run (upstream failed), and sum's branch is skipped.
      expect(tasks).toMatchObject({ archive: 'failed', prepare: 'skipped', sum: 'skipped', publish: 'skipped' });
      await worker.stop();
    } finally {
      await client.close();
    }
  });
});
