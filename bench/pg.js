// PostgreSQL figures for `npm run bench -- --store postgres`: a scheduler in this process
// and `baton worker` processes, all on a fresh database of the server named by
// BATON_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), with the
// server's default durability (fsync on, synchronous_commit on).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createRun, openRuntime } from '../dist/app/runtime.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const adminUrl = process.env.BATON_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function withDatabase(fn) {
  const name = `baton_bench_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

function project() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-pgbench-'));
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'lease: 10s\n');
  writeFileSync(
    join(dir, 'flows', 'noop.mjs'),
    'export function noop() { return null; }\nexport function stamp() { return performance.timeOrigin + performance.now(); }\n',
  );
  return dir;
}

function writeFlow(dir, name, tasks) {
  const path = join(dir, 'flows', `${name}.yaml`);
  writeFileSync(path, `name: ${name}\ntasks:\n${tasks.join('\n')}\n`);
  return path;
}

function task(id, fn, deps) {
  return [
    `  ${id}:`,
    '    kind: function',
    '    module: ./noop.mjs',
    `    export: ${fn}`,
    ...(deps?.length ? [`    depends_on: [${deps.join(', ')}]`] : []),
  ].join('\n');
}

function startWorkers(dir, url, n, concurrency) {
  const procs = [];
  for (let i = 0; i < n; i++) {
    const p = spawn(process.execPath, [join(root, 'bin', 'baton.js'), 'worker', '--concurrency', String(concurrency)], {
      cwd: dir,
      env: { ...process.env, BATON_DATABASE_URL: url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let ready;
    p.ready = new Promise((r) => (ready = r));
    p.stderr.on('data', (d) => {
      if (String(d).includes('executing tasks')) ready();
    });
    procs.push(p);
  }
  return procs;
}

async function stopWorkers(procs) {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise((resolve) => {
          p.once('exit', resolve);
          p.kill('SIGTERM');
        }),
    ),
  );
}

/** A runtime whose scheduler reports each finished run. */
async function schedulerRuntime(dir, url) {
  const rt = await openRuntime({ cwd: dir, env: { BATON_DATABASE_URL: url } });
  const waiters = new Map();
  const scheduler = rt.createScheduler({
    leaseMs: 10_000,
    engine: {
      pollMs: 1000,
      onCommitted: (runId, events) => {
        for (const e of events) {
          if (e.type === 'run_succeeded' || e.type === 'run_failed' || e.type === 'run_cancelled') {
            waiters.get(runId)?.({ state: e.type, at: performance.now() });
          }
        }
      },
    },
  });
  scheduler.start();
  for (let i = 0; i < 200 && !scheduler.leading; i++) await new Promise((r) => setTimeout(r, 25));
  return {
    rt,
    async run(flowPath) {
      const flow = await rt.catalog.find(flowPath);
      const t0 = performance.now();
      const done = new Promise((resolve) => {
        waiters.set('pending', resolve);
      });
      const { run } = await createRun(rt, flow);
      waiters.set(run.id, waiters.get('pending'));
      waiters.delete('pending');
      const end = await done;
      if (end.state !== 'run_succeeded') throw new Error(`run ${run.id}: ${end.state}`);
      return { id: run.id, ms: end.at - t0, t0 };
    },
    async close() {
      await scheduler.stop();
      await rt.close();
    },
  };
}

export async function pgBenches(report, only) {
  const want = (name) => !only || only.has(name);

  if (want('pgChain')) {
    await withDatabase(async (url) => {
      const dir = project();
      const workers = startWorkers(dir, url, 1, 16);
      await Promise.all(workers.map((w) => w.ready));
      const s = await schedulerRuntime(dir, url);
      try {
        const tasks = Array.from({ length: 200 }, (_, i) => task(`t${i}`, 'noop', i > 0 ? [`t${i - 1}`] : []));
        const path = writeFlow(dir, 'chain', tasks);
        await s.run(writeFlow(dir, 'warm', [task('a', 'noop')]));
        const { ms } = await s.run(path);
        report('pg_chain_ms_per_task', ms / 200, 'ms', 2, 'lower');
      } finally {
        await s.close();
        await stopWorkers(workers);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  for (const n of [1, 2, 4]) {
    if (!want(`pgFanout${n}`)) continue;
    await withDatabase(async (url) => {
      const dir = project();
      const workers = startWorkers(dir, url, n, 128);
      await Promise.all(workers.map((w) => w.ready));
      const s = await schedulerRuntime(dir, url);
      try {
        const tasks = Array.from({ length: 10_000 }, (_, i) => task(`t${i}`, 'noop'));
        const path = writeFlow(dir, 'fanout', tasks);
        await s.run(writeFlow(dir, 'warm', [task('a', 'noop')]));
        const { ms } = await s.run(path);
        report(`pg_fanout_tasks_per_s_w${n}`, 10_000 / (ms / 1000), 'tasks/s', n === 2 ? 5000 : 0, 'higher');
      } finally {
        await s.close();
        await stopWorkers(workers);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  if (want('pgStartLatency')) {
    await withDatabase(async (url) => {
      const dir = project();
      const workers = startWorkers(dir, url, 1, 16);
      await Promise.all(workers.map((w) => w.ready));
      const s = await schedulerRuntime(dir, url);
      try {
        const path = writeFlow(dir, 'latency', [task('first', 'stamp')]);
        const latencies = [];
        for (let i = 0; i < 120; i++) {
          const before = performance.timeOrigin + performance.now();
          const { id } = await s.run(path);
          const started = (await s.rt.store.getTaskRuns(id))[0].output;
          if (i >= 20) latencies.push(started - before);
        }
        latencies.sort((a, b) => a - b);
        const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
        report('pg_start_latency_p50_ms', at(50), 'ms', 5, 'lower');
        report('pg_start_latency_p99_ms', at(99), 'ms', 0, 'lower');
      } finally {
        await s.close();
        await stopWorkers(workers);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
