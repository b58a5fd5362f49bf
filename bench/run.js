// `npm run bench [-- --json] [-- --only GROUP|NAME[,…]] [-- --store postgres]`: Baton's speed
// and memory figures. Prints a table, or one JSON line per figure with --json:
// {"name","value","unit","goal","ok"}.
//
// Figures come in groups (docs/operations.md#benchmarks): `core` (the engine on the embedded
// SQLite store with durable settings: WAL, synchronous=FULL), `engine`, `data`, `api`, and
// `yaml` (loading large flow files). `--only` takes group names or benchmark names; a
// group with nothing to run prints nothing. With `--store postgres`, group `core` is the
// PostgreSQL figures of bench/pg.js and group `engine` (bench/engine.js) runs on PostgreSQL;
// the other groups do not depend on the store.
//
// A group may also come from other modules (GROUP_MODULES): each file that exists is imported
// and the functions it names run as benchmarks of the group, called with `report` and `{ store }`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineFlow } from '../dist/index.js';
import { compilePlan } from '../dist/core/run-machine.js';
import { openCatalog, openRuntime, createRun } from '../dist/app/runtime.js';
import { openHarness } from './engine-harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set((args[onlyArg + 1] ?? '').split(',').filter(Boolean)) : null;
const storeArg = args.indexOf('--store');
const store = storeArg >= 0 ? args[storeArg + 1] : 'sqlite';

const results = [];
function report(name, value, unit, goal, better) {
  const ok = better === 'lower' ? value <= goal : value >= goal;
  const row = { name, value: Math.round(value * 1000) / 1000, unit, goal, ok };
  results.push(row);
  if (asJson) console.log(JSON.stringify(row));
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function chain() {
  const h = openHarness();
  try {
    const f = defineFlow({ name: 'chain' });
    let prev;
    for (let i = 0; i < 1000; i++) prev = f.task(`t${i}`, prev ? { after: [prev] } : {}, async () => null);
    const spec = h.register(f);
    const id = await h.createRun(spec);
    const t0 = performance.now();
    const state = await h.engine.execute(id);
    if (state !== 'succeeded') throw new Error(`chain run ${state}`);
    report('chain_ms_per_task', (performance.now() - t0) / 1000, 'ms', 0.5, 'lower');
  } finally {
    await h.close();
  }
}

async function fanout() {
  const h = openHarness();
  try {
    const f = defineFlow({ name: 'fanout' });
    for (let i = 0; i < 10_000; i++) f.task(`t${i}`, async () => null);
    const spec = h.register(f);
    const id = await h.createRun(spec);
    const t0 = performance.now();
    const state = await h.engine.execute(id);
    if (state !== 'succeeded') throw new Error(`fanout run ${state}`);
    report('fanout_tasks_per_s', 10_000 / ((performance.now() - t0) / 1000), 'tasks/s', 25_000, 'higher');
  } finally {
    await h.close();
  }
}

/**
 * A 10,000-item map of no-op tasks: each item is a task run of its own (attempts, row,
 * events), so this is the fan-out above with the items made at run time. Goal: within 2x
 * of the plain fan-out's rate.
 */
async function map10k() {
  const h = openHarness();
  try {
    const f = defineFlow({ name: 'map10k' });
    const list = f.task('list', async () => Array.from({ length: 10_000 }, (_, i) => i));
    f.map('each', { over: list }, async () => null);
    const spec = h.register(f);
    const id = await h.createRun(spec);
    const t0 = performance.now();
    const state = await h.engine.execute(id);
    if (state !== 'succeeded') throw new Error(`map10k run ${state}`);
    const rate = 10_000 / ((performance.now() - t0) / 1000);
    report('map10k_items_per_s', rate, 'items/s', 12_500, 'higher');
    const fanoutRate = results.find((r) => r.name === 'fanout_tasks_per_s')?.value;
    if (fanoutRate) report('map10k_slowdown_vs_fanout', fanoutRate / rate, 'x', 2, 'lower');
  } finally {
    await h.close();
  }
}

/** Windmill's lightweight scenario: 40 chained fib(10) tasks, through the CLI's own path. */
async function chain40() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-chain40-'));
  try {
    mkdirSync(join(dir, 'flows'));
    writeFileSync(
      join(dir, 'flows', 'fib.mjs'),
      'function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\nexport function step() { return fib(10); }\n',
    );
    const tasks = Array.from({ length: 40 }, (_, i) =>
      [
        `  t${i}:`,
        '    kind: function',
        '    module: ./fib.mjs',
        '    export: step',
        ...(i > 0 ? [`    depends_on: [t${i - 1}]`] : []),
      ].join('\n'),
    );
    writeFileSync(join(dir, 'flows', 'chain40.yaml'), `name: chain40\ntasks:\n${tasks.join('\n')}\n`);
    const times = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const rt = await openRuntime({ cwd: dir, env: {} });
      const flow = await rt.catalog.find(join(dir, 'flows', 'chain40.yaml'));
      const { run } = await createRun(rt, flow);
      const engine = rt.createEngine();
      const state = await engine.execute(run.id);
      await rt.close();
      if (state !== 'succeeded') throw new Error(`chain40 run ${state}`);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    report('chain40_total_ms', percentile(times, 50), 'ms', 250, 'lower');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A layered DAG: 100,000 tasks in 1,000 layers of 100, each task depending on 3 of the layer above. */
async function bigdag() {
  const h = openHarness({ concurrency: 512 });
  try {
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const f = defineFlow({ name: 'bigdag' });
    const width = 100;
    let above = [];
    for (let layer = 0; layer < 1000; layer++) {
      const here = [];
      for (let j = 0; j < width; j++) {
        const after = above.length ? [above[j], above[(j + 1) % width], above[(j + 7) % width]] : [];
        here.push(f.task(`l${layer}_${j}`, { after }, async () => null));
      }
      above = here;
    }
    const spec = f.toSpec('bigdag');
    const plan = compilePlan(spec);
    const id = await h.createRun(spec);
    const planMs = performance.now() - t0;
    // What the plan and its run keep, not the garbage left by building them: collected first
    // when the benchmark runs with --expose-gc (as `npm run bench` does).
    global.gc?.();
    const heapMb = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
    h.register(f);
    report('bigdag_plan_ms', planMs, 'ms', 1500, 'lower');
    report('bigdag_heap_mb', heapMb, 'MB', 256, 'lower');
    const t1 = performance.now();
    const state = await h.engine.execute(id);
    if (state !== 'succeeded') throw new Error(`bigdag run ${state}`);
    report(
      'bigdag_exec_tasks_per_s',
      plan.graph.ids.length / ((performance.now() - t1) / 1000),
      'tasks/s',
      0,
      'higher',
    );
  } finally {
    await h.close();
  }
}

/**
 * `start_latency_*`: from asking for a run until its first task body starts, in the process
 * that creates it (`Engine.startNew`, as `baton run` does): 200 runs one at a time, after 20
 * warm-up runs.
 */
async function startLatency() {
  const h = openHarness();
  try {
    const latencies = [];
    let started = 0;
    const f = defineFlow({ name: 'latency' });
    f.task('first', async () => {
      started = performance.now();
      return null;
    });
    const spec = h.register(f);
    for (let i = 0; i < 220; i++) {
      const t0 = performance.now();
      const state = await h.startRun(spec);
      if (state !== 'succeeded') throw new Error(`latency run ${state}`);
      if (i >= 20) latencies.push(started - t0);
    }
    latencies.sort((a, b) => a - b);
    report('start_latency_p50_ms', percentile(latencies, 50), 'ms', 0.5, 'lower');
    report('start_latency_p99_ms', percentile(latencies, 99), 'ms', 5, 'lower');
  } finally {
    await h.close();
  }
}

async function coldStart() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-cold-'));
  try {
    const bin = join(root, 'bin', 'baton.js');
    const db = join(dir, 'cold.db');
    spawnSync(process.execPath, [bin, '--db', db, 'runs'], { cwd: dir });
    const measure = (argv) => {
      const times = [];
      for (let i = 0; i < 11; i++) {
        const t0 = performance.now();
        const r = spawnSync(process.execPath, [bin, ...argv], { cwd: dir });
        if (r.status !== 0) throw new Error(`baton ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return percentile(times, 50);
    };
    report('cold_start_ms', measure(['--version']), 'ms', 150, 'lower');
    report('cold_start_open_store_ms', measure(['--db', db, 'runs', '--limit', '1']), 'ms', 150, 'lower');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * One YAML flow of `n` chained shell tasks, each with a `with:` expression reading the task
 * before it (the first reads a param), loaded as `baton validate` loads it: a catalog of
 * the project, which parses, checks and versions the flow. The median of `runs` loads after
 * an untimed one, each with a fresh catalog (a catalog keeps what it loaded).
 */
async function yamlLoad(n, runs) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-yaml-'));
  try {
    mkdirSync(join(dir, 'flows'));
    const lines = ['name: chain', 'params:', '  day: { type: string, default: "2024-01-01" }', 'tasks:'];
    for (let i = 0; i < n; i++) {
      lines.push(`  t${i}:`, '    kind: shell', '    command: ["true"]');
      if (i === 0) lines.push('    with: { day: "${{ params.day }}" }');
      else lines.push(`    depends_on: [t${i - 1}]`, `    with: { previous: "\${{ tasks.t${i - 1}.output }}" }`);
    }
    const path = join(dir, 'flows', 'chain.yaml');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const times = [];
    // One load first, untimed: it imports the loader and lets the JIT compile it.
    for (let i = -1; i < runs; i++) {
      const { catalog } = await openCatalog({ cwd: dir, env: {} });
      const t0 = performance.now();
      const flow = await catalog.load(path);
      if (i >= 0) times.push(performance.now() - t0);
      if (flow.spec.tasks.length !== n) throw new Error(`yaml load: ${flow.spec.tasks.length} tasks, expected ${n}`);
    }
    times.sort((a, b) => a - b);
    return percentile(times, 50);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function yamlLoad10k() {
  report('yaml_load_10k_ms', await yamlLoad(10_000, 5), 'ms', 400, 'lower');
}

async function yamlLoad50k() {
  report('yaml_load_50k_ms', await yamlLoad(50_000, 3), 'ms', 2000, 'lower');
}

/** Benchmarks by group, each a named async function; names are what `--only` takes. */
export const GROUPS = {
  core: { chain, chain40, fanout, map10k, bigdag, startLatency, coldStart },
  engine: {},
  data: {},
  api: {},
  yaml: { yamlLoad10k, yamlLoad50k },
};

/**
 * Benchmarks other modules add to a group: `path` (relative to bench/) is imported when the
 * file exists, and each export named in `benches` runs as the benchmark of that name, called
 * with `report(name, value, unit, goal, better)` (`better`: 'lower' or 'higher') and
 * `{ store }`, the store the bench was given ('sqlite' or 'postgres').
 */
export const GROUP_MODULES = {
  engine: [
    {
      path: './engine.js',
      benches: {
        parkedRuns: 'parkedRunsBench',
        timerFireLag: 'timerFireLagBench',
        signalToStart: 'signalToStartBench',
        clientStartLatency: 'startLatencyBench',
        runsPerS: 'runsPerSecondBench',
        runsPerSMany: 'runsPerSecondManyBench',
      },
    },
  ],
  data: [
    { path: './data.js', benches: { dataCache: 'dataCacheBench' } },
    { path: './sql.js', benches: { sqlTask: 'sqlTaskBench' } },
  ],
  api: [
    { path: './api.js', benches: { runsApi: 'runsApiBench', sseLag: 'sseLagBench' } },
    { path: './ui.js', benches: { uiRunPage: 'uiRunPageBench' } },
  ],
  yaml: [{ path: './fuzz.js', benches: { fuzz: 'fuzzBench' } }],
};

/** Groups whose figures depend on the store: with `--store postgres` they run on PostgreSQL. */
const STORE_GROUPS = new Set(['core', 'engine']);

/** The benchmarks of a group, its modules' included; module benchmarks are given the store. */
async function benchesOf(group, storeName = 'sqlite') {
  const benches = { ...GROUPS[group] };
  for (const { path, benches: named } of GROUP_MODULES[group] ?? []) {
    const file = join(here, path);
    if (!existsSync(file)) continue;
    const mod = await import(pathToFileURL(file).href);
    for (const [name, exported] of Object.entries(named)) {
      const fn = mod[exported];
      if (typeof fn !== 'function') throw new Error(`bench/${path} does not export ${exported}`);
      benches[name] = () => fn(report, { store: storeName });
    }
  }
  return benches;
}

/** Runs what `only` selects (every group when null): whole groups by name, or single benchmarks. */
export async function runGroups(only, storeName = 'sqlite') {
  if (storeName !== 'sqlite' && storeName !== 'postgres') {
    throw new Error(`--store: ${storeName} is none of sqlite, postgres`);
  }
  if (only) {
    const known = new Set(Object.keys(GROUPS));
    for (const group of Object.keys(GROUPS)) for (const name of Object.keys(await benchesOf(group))) known.add(name);
    const unknown = [...only].filter(
      (name) => !known.has(name) && !(storeName === 'postgres' && name.startsWith('pg')),
    );
    if (unknown.length > 0) throw new Error(`--only: no group or benchmark ${unknown.join(', ')}`);
  }
  for (const group of Object.keys(GROUPS)) {
    const whole = !only || only.has(group);
    if (storeName === 'postgres' && group === 'core') {
      const { pgBenches } = await import('./pg.js');
      // Without --only, a PostgreSQL run is the groups that depend on the store; others run when named.
      await pgBenches(report, whole ? null : only);
      continue;
    }
    if (storeName === 'postgres' && !only && !STORE_GROUPS.has(group)) continue;
    for (const [name, fn] of Object.entries(await benchesOf(group, storeName))) {
      if (whole || only.has(name)) await fn();
    }
  }
}

function printTable() {
  if (results.length === 0) return;
  const w = Math.max(...results.map((r) => r.name.length));
  console.log(`${'figure'.padEnd(w)}  ${'value'.padStart(12)}  unit      goal      ok`);
  for (const r of results) {
    console.log(
      `${r.name.padEnd(w)}  ${String(r.value).padStart(12)}  ${r.unit.padEnd(8)}  ${String(r.goal).padEnd(8)}  ${r.goal === 0 ? '-' : r.ok ? 'yes' : 'NO'}`,
    );
  }
}

// Run as a script (not when imported for GROUPS and runGroups).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await runGroups(only, store);
  } catch (error) {
    const message = String(error.message);
    if (!/^--(only|store)/.test(message)) throw error;
    const groups = message.startsWith('--only') ? ` (groups: ${Object.keys(GROUPS).join(', ')})` : '';
    console.error(`bench: ${message}${groups}`);
    process.exit(2);
  }
  if (!asJson) printTable();
}
