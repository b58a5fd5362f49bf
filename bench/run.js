// `npm run bench [-- --json] [-- --only name,name]`: Baton's speed and memory figures on the
// embedded SQLite store with durable settings (WAL, synchronous=FULL). Prints a table, or
// one JSON line per figure with --json: {"name","value","unit","goal","ok"}.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineFlow } from '../dist/index.js';
import { compilePlan } from '../dist/core/run-machine.js';
import { openRuntime, createRun } from '../dist/app/runtime.js';
import { openHarness } from './engine-harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set((args[onlyArg + 1] ?? '').split(',')) : null;
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
      const id = await h.createRun(spec);
      const state = await h.engine.execute(id);
      if (state !== 'succeeded') throw new Error(`latency run ${state}`);
      if (i >= 20) latencies.push(started - t0);
    }
    latencies.sort((a, b) => a - b);
    report('start_latency_p50_ms', percentile(latencies, 50), 'ms', 1, 'lower');
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

if (store === 'postgres') {
  const { pgBenches } = await import('./pg.js');
  await pgBenches(report, only);
} else {
  const benches = { chain, chain40, fanout, map10k, bigdag, startLatency, coldStart };
  for (const [name, fn] of Object.entries(benches)) {
    if (only && !only.has(name)) continue;
    await fn();
  }
}

if (!asJson) {
  const w = Math.max(...results.map((r) => r.name.length));
  console.log(`${'figure'.padEnd(w)}  ${'value'.padStart(12)}  unit      goal      ok`);
  for (const r of results) {
    console.log(
      `${r.name.padEnd(w)}  ${String(r.value).padStart(12)}  ${r.unit.padEnd(8)}  ${String(r.goal).padEnd(8)}  ${r.goal === 0 ? '-' : r.ok ? 'yes' : 'NO'}`,
    );
  }
}
