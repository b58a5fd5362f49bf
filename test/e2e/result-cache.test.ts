/**
 * The result cache (`cache: inputs`) end to end on a real SQLite file and a local mount: a
 * second run that reads the same reuses the first's output without running the body (the
 * body counts its runs in a file), and its history and `baton show` say so; a rewritten
 * input file, other params, another task definition or code, and a new version of a
 * consumed asset each run the body again; a task without `cache: inputs` always runs.
 * On PostgreSQL, attempts run by `baton worker` processes reuse outputs the same way.
 */
import { readFileSync, utimesSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { BatonProcess } from './cli-helpers.js';
import { baton, describeResult, parseJson, startBaton, useTempDirs, waitFor } from './cli-helpers.js';

const temp = useTempDirs();
const drops: (() => Promise<void>)[] = [];
const procs: BatonProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.done.catch(() => undefined);
  }
  for (const drop of drops.splice(0)) await drop();
});

// Each body appends its task's name to count.log: the number of lines is how often it ran.
const TASKS = `
import { appendFile } from 'node:fs/promises';
const counted = (name) => appendFile(new URL('../count.log', import.meta.url), name + '\\n');
export async function total(ctx) {
  await counted('total');
  const rows = (await ctx.data.readText('data://lake/in.csv')).trim().split('\\n').slice(1);
  return { rows: rows.length, n: ctx.inputs.n };
}
export async function plain(ctx) {
  await counted('plain');
  return { n: ctx.inputs.n };
}
export async function source(ctx) {
  await ctx.data.write('data://lake/src.csv', 'v\\n' + ctx.inputs.v + '\\n');
}
`;

function flowYaml(options: { timeout?: string } = {}): string {
  return `name: report
params:
  n: { type: integer, default: 1 }
prefetch: [data://lake/in.csv]
tasks:
  total:
    kind: function
    module: ./tasks.mjs
    export: total
    cache: inputs
    consumes: [src_table]
    with: { n: "\${{ params.n }}" }${options.timeout ? `\n    timeout: ${options.timeout}` : ''}
  plain:
    kind: function
    module: ./tasks.mjs
    export: plain
    with: { n: "\${{ params.n }}" }
`;
}

// A SQL task reads its input file itself: its ETag is part of the key.
const SQL = `name: tally
tasks:
  tally:
    kind: sql
    cache: inputs
    inputs:
      rows: data://lake/in.csv
    sql: SELECT count(*) AS n FROM rows
`;

const SOURCE = `name: source
params:
  v: { type: integer, default: 1 }
tasks:
  source:
    kind: function
    module: ./tasks.mjs
    export: source
    cache: inputs
    with: { v: "\${{ params.v }}" }
    produces:
      - { asset: src_table, path: data://lake/src.csv }
`;

function project(): string {
  const dir = temp.mkdir('baton-result-cache-');
  writeFileSync(join(dir, 'baton.yaml'), 'data:\n  mounts:\n    lake: { kind: local, path: lake }\n');
  mkdirSync(join(dir, 'flows'));
  mkdirSync(join(dir, 'lake'));
  writeFileSync(join(dir, 'flows', 'tasks.mjs'), TASKS);
  writeFileSync(join(dir, 'flows', 'report.yaml'), flowYaml());
  writeFileSync(join(dir, 'flows', 'source.yaml'), SOURCE);
  writeFileSync(join(dir, 'flows', 'tally.yaml'), SQL);
  writeFileSync(join(dir, 'lake', 'in.csv'), 'id\n1\n2\n');
  return dir;
}

/** How often each body ran so far. */
function counts(dir: string): Record<string, number> {
  const file = join(dir, 'count.log');
  const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
  return { total: lines.filter((l) => l === 'total').length, plain: lines.filter((l) => l === 'plain').length };
}

async function runFlow(rt: Runtime, name: string, params: Record<string, unknown> = {}): Promise<string> {
  const { run } = await createRun(rt, await rt.catalog.find(name), { params });
  const engine = rt.createEngine();
  try {
    expect(await engine.execute(run.id)).toBe('succeeded');
  } finally {
    await engine.stop();
  }
  return run.id;
}

/** The `task_succeeded` event of a task in a run. */
async function succeeded(rt: Runtime, runId: string, task: string): Promise<Record<string, unknown>> {
  const events = (await rt.store.readEvents(runId)).map((e) => e.event as unknown as Record<string, unknown>);
  const found = events.find((e) => e.type === 'task_succeeded' && e.task === task);
  expect(found, `no task_succeeded of ${task} in ${runId}`).toBeDefined();
  return found as Record<string, unknown>;
}

/** Opens the project's runtime afresh (a changed flow file is read again), runs `fn`, closes it. */
async function withRuntime<T>(dir: string, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime({ cwd: dir, env: {} });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

describe('result cache (cache: inputs)', () => {
  it('reuses the output of a run that read the same, without running the body; history and show say so', async () => {
    const dir = project();
    const [first, second] = await withRuntime(dir, async (rt) => {
      await runFlow(rt, 'source');
      const a = await runFlow(rt, 'report', { n: 3 });
      const b = await runFlow(rt, 'report', { n: 3 });
      return [a, b];
    });
    // total ran once; plain, without the cache, twice.
    expect(counts(dir)).toEqual({ total: 1, plain: 2 });
    await withRuntime(dir, async (rt) => {
      const original = await succeeded(rt, first, 'total');
      expect(original.cachedFrom).toBeUndefined();
      const reused = await succeeded(rt, second, 'total');
      expect(reused).toMatchObject({ output: { rows: 2, n: 3 }, cachedFrom: `${first}/total/1` });
      expect((await succeeded(rt, second, 'plain')).cachedFrom).toBeUndefined();
    });
    const shown = await baton(['show', second], { cwd: dir });
    expect(shown.code, describeResult(shown)).toBe(0);
    expect(shown.stdout).toMatch(
      new RegExp(`total\\s+succeeded.*reused from run ${first}, task total, attempt 1 \\(cache: inputs\\)`),
    );
    expect(shown.stdout).not.toMatch(/plain\s+succeeded.*reused/);
  });

  it('runs the body again when an input file is rewritten, when params differ, and when a consumed asset has a new version', async () => {
    const dir = project();
    await withRuntime(dir, async (rt) => {
      await runFlow(rt, 'source');
      await runFlow(rt, 'report');
      expect(counts(dir).total).toBe(1);

      // The file read (declared in prefetch) rewritten: a new ETag.
      writeFileSync(join(dir, 'lake', 'in.csv'), 'id\n1\n2\n3\n');
      const later = new Date(Date.now() + 5000);
      utimesSync(join(dir, 'lake', 'in.csv'), later, later);
      const rewritten = await runFlow(rt, 'report');
      expect(counts(dir).total).toBe(2);
      expect(await succeeded(rt, rewritten, 'total')).toMatchObject({ output: { rows: 3, n: 1 } });
      expect((await succeeded(rt, rewritten, 'total')).cachedFrom).toBeUndefined();

      // The same again: a hit, on the rewritten file's run.
      const again = await runFlow(rt, 'report');
      expect(counts(dir).total).toBe(2);
      expect((await succeeded(rt, again, 'total')).cachedFrom).toBe(`${rewritten}/total/1`);

      // Other params.
      await runFlow(rt, 'report', { n: 2 });
      expect(counts(dir).total).toBe(3);

      // A new version of the asset total consumes.
      await runFlow(rt, 'source', { v: 2 });
      const afterAsset = await runFlow(rt, 'report', { n: 2 });
      expect(counts(dir).total).toBe(4);
      expect((await succeeded(rt, afterAsset, 'total')).cachedFrom).toBeUndefined();
    });
  });

  it('records the materialization of what a reused task produces, with its checks and lineage', async () => {
    const dir = project();
    await withRuntime(dir, async (rt) => {
      const made = await runFlow(rt, 'source');
      const reused = await runFlow(rt, 'source');
      expect((await succeeded(rt, reused, 'source')).cachedFrom).toBe(`${made}/source/1`);
      const versions = await rt.store.assetVersions('src_table', { limit: 10 });
      expect(versions.map((v) => v.runId)).toEqual([reused, made]);
      expect(versions[0]?.version).toBe(versions[1]?.version);
    });
  });

  it('forgets its entries on baton db prune: the next run computes afresh', async () => {
    const dir = project();
    await withRuntime(dir, async (rt) => {
      await runFlow(rt, 'report');
      await runFlow(rt, 'report');
    });
    expect(counts(dir).total).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    const pruned = await baton(['db', 'prune', '--older-than', '1ms', '--json'], { cwd: dir });
    expect(pruned.code, describeResult(pruned)).toBe(0);
    expect(parseJson<{ pruned_result_cache_entries: number }>(pruned).pruned_result_cache_entries).toBe(1);
    await withRuntime(dir, async (rt) => {
      const after = await runFlow(rt, 'report');
      expect((await succeeded(rt, after, 'total')).cachedFrom).toBeUndefined();
    });
    expect(counts(dir).total).toBe(2);
  });

  it('keys a SQL task on the files of its inputs', async () => {
    const dir = project();
    await withRuntime(dir, async (rt) => {
      const first = await runFlow(rt, 'tally');
      const hit = await runFlow(rt, 'tally');
      expect(await succeeded(rt, hit, 'tally')).toMatchObject({ cachedFrom: `${first}/tally/1` });
      writeFileSync(join(dir, 'lake', 'in.csv'), 'id\n1\n2\n3\n4\n');
      const later = new Date(Date.now() + 5000);
      utimesSync(join(dir, 'lake', 'in.csv'), later, later);
      const miss = await runFlow(rt, 'tally');
      const event = await succeeded(rt, miss, 'tally');
      expect(event.cachedFrom).toBeUndefined();
      expect(JSON.stringify(event.output)).not.toBe(JSON.stringify((await succeeded(rt, first, 'tally')).output));
    });
  });

  it('runs the body again when the task definition or its code changed', async () => {
    const dir = project();
    await withRuntime(dir, async (rt) => {
      await runFlow(rt, 'report');
      await runFlow(rt, 'report');
    });
    expect(counts(dir).total).toBe(1);

    // Another spec (a timeout) for the same code.
    writeFileSync(join(dir, 'flows', 'report.yaml'), flowYaml({ timeout: '1m' }));
    await withRuntime(dir, async (rt) => {
      await runFlow(rt, 'report');
    });
    expect(counts(dir).total).toBe(2);

    // The same definition, other code.
    writeFileSync(join(dir, 'flows', 'tasks.mjs'), `${TASKS}\n// a change to the code\n`);
    await withRuntime(dir, async (rt) => {
      const changed = await runFlow(rt, 'report');
      expect((await succeeded(rt, changed, 'total')).cachedFrom).toBeUndefined();
    });
    expect(counts(dir).total).toBe(3);
  });
});

describe('result cache on PostgreSQL, with baton scheduler and baton worker processes', () => {
  it('a worker reuses the output and the history records where it came from', async () => {
    const db = await createTestDatabase();
    drops.push(db.drop);
    const dir = project();
    writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\ndata:\n  mounts:\n    lake: { kind: local, path: lake }\n');
    const o = { cwd: dir, env: { BATON_DATABASE_URL: db.url } };
    const migrated = await baton(['db', 'migrate'], o);
    expect(migrated.code, describeResult(migrated)).toBe(0);
    const scheduler = startBaton(['scheduler'], { ...o, timeoutMs: 60_000 });
    const worker = startBaton(['worker'], { ...o, timeoutMs: 60_000 });
    procs.push(scheduler, worker);
    await waitFor(() => (scheduler.stderr().includes('leading') ? true : undefined), {
      timeoutMs: 15_000,
      what: 'the scheduler to lead',
    });

    const runWaited = async (args: string[]): Promise<string> => {
      const result = await baton(['run', ...args, '--wait', '--json'], { ...o, timeoutMs: 30_000 });
      expect(result.code, describeResult(result)).toBe(0);
      const run = parseJson<{ id: string; state: string }>(result);
      expect(run.state).toBe('succeeded');
      return run.id;
    };
    const successOf = async (runId: string, task: string): Promise<Record<string, unknown> | undefined> => {
      const show = parseJson<{ events: Record<string, unknown>[] }>(
        await baton(['show', runId, '--json', '--events'], o),
      );
      return show.events.find((e) => e.type === 'task_succeeded' && e.task === task);
    };

    await runWaited(['source']);
    const first = await runWaited(['report', '--param', 'n=3']);
    const second = await runWaited(['report', '--param', 'n=3']);
    expect(counts(dir)).toEqual({ total: 1, plain: 2 });
    expect((await successOf(first, 'total'))?.cachedFrom).toBeUndefined();
    expect(await successOf(second, 'total')).toMatchObject({
      output: { rows: 2, n: 3 },
      cachedFrom: `${first}/total/1`,
    });
    // Other params: a miss, the body runs in the worker.
    const third = await runWaited(['report', '--param', 'n=4']);
    expect(counts(dir).total).toBe(2);
    expect((await successOf(third, 'total'))?.cachedFrom).toBeUndefined();

    for (const p of [scheduler, worker]) p.kill('SIGTERM');
    for (const p of [scheduler, worker]) expect((await p.done).code).toBe(0);
  }, 90_000);
});
