/**
 * Outputs over limits.output_bytes are stored by reference: the run's history keeps a small
 * marker, downstream bodies and templates get the value, the client's result too, and
 * `baton db prune` takes the payloads with their runs.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isPayloadRef, PAYLOAD_KEY } from '../../src/core/payload-ref.js';
import { pruneRuns, runOutputs } from '../../src/app/runs.js';
import type { Project } from '../engine/harness.js';
import { openProject } from '../engine/harness.js';

const MODULE = `
export function produce(ctx) { return { rows: Array.from({ length: ctx.inputs.n }, (_, i) => ({ i, pad: 'x'.repeat(90) })) }; }
export function consume(ctx) { return { count: ctx.upstream.produce.rows.length, last: ctx.upstream.produce.rows.at(-1).i, first: ctx.inputs.first }; }
export function huge() { return 'y'.repeat(50 * 1024 * 1024); }
export function circular() { const a = { name: 'a' }; a.self = a; return a; }
export function bigint() { return { total: 10n }; }
export function fn() { return { callback: () => 1 }; }
export function items() { return Array.from({ length: 5000 }, (_, i) => 'item-' + i + '-' + 'z'.repeat(80)); }
`;

let project: Project | undefined;
afterEach(async () => {
  await project?.close();
  project = undefined;
});

function flow(p: Project, name: string, tasks: string): string {
  return p.write(`flows/${name}.yaml`, `name: ${name}\ntasks:\n${tasks}`);
}

describe('outputs stored by reference', () => {
  it('keeps a marker in the history and hands downstream bodies, templates and the client the value', async () => {
    const p = (project = await openProject());
    p.write('flows/m.mjs', MODULE);
    flow(
      p,
      'pipe',
      [
        '  produce:',
        '    kind: function',
        '    module: ./m.mjs',
        '    export: produce',
        '    with: { n: 5000 }',
        '  consume:',
        '    kind: function',
        '    module: ./m.mjs',
        '    export: consume',
        '    depends_on: [produce]',
        '    with: { first: "${{ tasks.produce.output.rows[0].i }}" }',
        '',
      ].join('\n'),
    );
    const id = await p.run('flows/pipe.yaml');
    expect((await p.rt.store.getRun(id))?.state).toBe('succeeded');
    const tasks = await p.rt.store.getTaskRuns(id);
    const produced = tasks.find((t) => t.taskId === 'produce')?.output;
    expect(isPayloadRef(produced)).toBe(true);
    const ref = (produced as { [PAYLOAD_KEY]: { path: string; bytes: number } })[PAYLOAD_KEY];
    expect(ref.path).toBe(`data://baton/payloads/${id}/produce.1.json`);
    expect(ref.bytes).toBeGreaterThan(256 * 1024);
    expect(existsSync(join(p.dir, '.baton', 'data', 'payloads', id, 'produce.1.json'))).toBe(true);
    expect(tasks.find((t) => t.taskId === 'consume')?.output).toEqual({ count: 5000, last: 4999, first: 0 });
    const outputs = await runOutputs(p.rt, id);
    expect((outputs.produce as { rows: unknown[] }).rows).toHaveLength(5000);
    // The payload has a metadata row naming its producer.
    expect(await p.rt.store.getDataObject(ref.path)).toMatchObject({ producerRunId: id, producerTaskId: 'produce' });
  });

  it('stores a 50 MB output outside the database', async () => {
    const p = (project = await openProject());
    p.write('flows/m.mjs', MODULE);
    flow(p, 'huge', '  huge:\n    kind: function\n    module: ./m.mjs\n    export: huge\n');
    const id = await p.run('flows/huge.yaml');
    expect((await p.rt.store.getRun(id))?.state).toBe('succeeded');
    const folder = join(p.dir, '.baton');
    const database = readdirSync(folder)
      .filter((n) => n.startsWith('baton.db'))
      .reduce((sum, n) => sum + statSync(join(folder, n)).size, 0);
    expect(database).toBeLessThan(5 * 1024 * 1024);
    expect(statSync(join(folder, 'data', 'payloads', id, 'huge.1.json')).size).toBe(50 * 1024 * 1024 + 2);
  }, 60_000);

  it('refuses outputs that are not JSON, naming where', async () => {
    const p = (project = await openProject());
    p.write('flows/m.mjs', MODULE);
    flow(
      p,
      'bad',
      ['circular', 'bigint', 'fn']
        .map((t) => `  ${t}:\n    kind: function\n    module: ./m.mjs\n    export: ${t}\n`)
        .join(''),
    );
    const id = await p.run('flows/bad.yaml');
    const errors = Object.fromEntries(
      (await p.rt.store.getTaskRuns(id)).map((t) => [t.taskId, `${t.error?.code}: ${t.error?.message}`]),
    );
    expect(errors.circular).toMatch(/^TASK_OUTPUT_INVALID: .*circular structure[^]*property 'self' closes the circle/);
    expect(errors.bigint).toMatch(/^TASK_OUTPUT_INVALID: .*output\.total.*BigInt/i);
    expect(errors.fn).toMatch(/^TASK_OUTPUT_INVALID: .*output\.callback.*function/);
  });

  it('says why a map cannot run over an output stored by reference', async () => {
    const p = (project = await openProject());
    p.write('flows/m.mjs', MODULE);
    flow(
      p,
      'mapped',
      [
        '  items:',
        '    kind: function',
        '    module: ./m.mjs',
        '    export: items',
        '  each:',
        '    kind: function',
        '    module: ./m.mjs',
        '    export: consume',
        '    depends_on: [items]',
        '    map: { over: "${{ tasks.items.output }}" }',
        '',
      ].join('\n'),
    );
    const id = await p.run('flows/mapped.yaml');
    const each = (await p.rt.store.getTaskRuns(id)).find((t) => t.taskId === 'each');
    expect(each?.error?.code).toBe('MAP_OVER_INVALID');
    expect(each?.error?.message).toContain('stored by reference');
    expect(each?.error?.hint).toContain('limits.output_bytes');
  });

  it('goes with its run when the run is pruned', async () => {
    const p = (project = await openProject());
    p.write('flows/m.mjs', MODULE);
    flow(
      p,
      'pipe',
      '  produce:\n    kind: function\n    module: ./m.mjs\n    export: produce\n    with: { n: 5000 }\n',
    );
    const old = await p.run('flows/pipe.yaml');
    const folder = join(p.dir, '.baton', 'data', 'payloads');
    expect(readdirSync(folder)).toEqual([old]);
    // A cut-off in the future prunes every finished run.
    const result = await pruneRuns(p.rt, -60_000);
    expect(result).toMatchObject({ runs: 1, payloads: 1 });
    expect(existsSync(join(folder, old))).toBe(false);
  });
});
