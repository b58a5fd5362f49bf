// PostgreSQL figures for `npm run bench -- --store postgres`: a scheduler in this process
// and `baton worker` processes, all on a fresh database of the server named by
// BATON_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), with the
// server's default durability (fsync on, synchronous_commit on). `pg_deadlocks` counts the
// deadlocks the server detected in the bench databases over the whole run (goal 0).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildRun, createRun, openRuntime } from '../dist/app/runtime.js';
import { withBenchDatabase } from './pg-database.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Deadlocks detected in the bench databases so far, and whether any database was used. */
const deadlocks = { count: 0, databases: 0 };

/**
 * The deadlocks the server counted in database `name`, read once every session of it has
 * ended (a session hands its counts to the shared statistics as it exits).
 */
async function deadlocksOf(admin, name) {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  await new Promise((r) => setTimeout(r, 300));
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await admin.query('SELECT deadlocks FROM pg_stat_database WHERE datname = $1', [name]);
  return Number(rows[0]?.deadlocks ?? 0);
}

async function withDatabase(fn) {
  return withBenchDatabase('baton_bench', fn, async (admin, name) => {
    deadlocks.count += await deadlocksOf(admin, name);
    deadlocks.databases++;
  });
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

/** A `baton scheduler` process; `ready` resolves once it has started and joined the election. */
function startScheduler(dir, url) {
  const p = spawn(process.execPath, [join(root, 'bin', 'baton.js'), 'scheduler'], {
    cwd: dir,
    env: { ...process.env, BATON_DATABASE_URL: url },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let ready;
  p.ready = new Promise((r) => (ready = r));
  p.stderr.on('data', (d) => {
    if (String(d).includes('baton scheduler: started')) ready();
  });
  return p;
}

/** The pid of the process that leads, from the leadership row (holders are `<host>/<pid>/<id>`). */
async function leaderPid(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(
      "SELECT holder FROM leadership WHERE name = 'scheduler' AND lease_until >= baton_now()",
    );
    return rows[0] ? Number(String(rows[0].holder).split('/')[1]) : null;
  } finally {
    await c.end();
  }
}

async function runState(c, id) {
  const { rows } = await c.query('SELECT state FROM runs WHERE id = $1', [id]);
  return rows[0]?.state;
}

/** A runtime whose scheduler reports each finished run. */
async function schedulerRuntime(dir, url) {
  const rt = await openRuntime({ cwd: dir, env: { BATON_DATABASE_URL: url } });
  const waiters = new Map();
  // Every run that ends, for benches that queue many: how many ended, how many not succeeded.
  const ended = { count: 0, failed: 0, wake: null };
  const scheduler = rt.createScheduler({
    leaseMs: 10_000,
    engine: {
      pollMs: 1000,
      onCommitted: (runId, events) => {
        for (const e of events) {
          if (e.type === 'run_succeeded' || e.type === 'run_failed' || e.type === 'run_cancelled') {
            waiters.get(runId)?.({ state: e.type, at: performance.now() });
            ended.count++;
            if (e.type !== 'run_succeeded') ended.failed++;
            ended.wake?.();
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
    /** From now: `until(n, ms)` waits for n more runs to end, and tells how long that took. */
    countFinished() {
      const t0 = performance.now();
      const base = { count: ended.count, failed: ended.failed };
      return {
        async until(n, timeoutMs) {
          while (ended.count - base.count < n) {
            if (performance.now() - t0 > timeoutMs) {
              throw new Error(`only ${ended.count - base.count} of ${n} runs ended within ${timeoutMs} ms`);
            }
            await new Promise((r) => {
              ended.wake = r;
              setTimeout(r, 1000);
            });
          }
          return { ms: performance.now() - t0, failed: ended.failed - base.failed };
        },
      };
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
        // From the call that submits a run (as `baton run --enqueue` makes it) to the start of
        // its body in the worker, both on this machine's clock: 20 warm-up runs, then 200.
        for (let i = 0; i < 220; i++) {
          const before = performance.timeOrigin + performance.now();
          const { id } = await s.run(path);
          const started = (await s.rt.store.getTaskRuns(id))[0].output;
          if (i >= 20) latencies.push(started - before);
        }
        latencies.sort((a, b) => a - b);
        const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
        report('pg_start_latency_p50_ms', at(50), 'ms', 2, 'lower');
        report('pg_start_latency_p99_ms', at(99), 'ms', 0, 'lower');
      } finally {
        await s.close();
        await stopWorkers(workers);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  // Many small runs at once: 10,000 one-task runs queued together, one scheduler and one
  // worker. The scheduler holds thousands of run leases, so its lease renewals and group
  // commits each lock thousands of runs rows: the path where a lock order matters.
  if (want('pgManyRuns')) {
    await withDatabase(async (url) => {
      const dir = project();
      const workers = startWorkers(dir, url, 1, 64);
      await Promise.all(workers.map((w) => w.ready));
      const s = await schedulerRuntime(dir, url);
      try {
        await s.run(writeFlow(dir, 'warm', [task('a', 'noop')]));
        const flow = await s.rt.catalog.find(writeFlow(dir, 'small', [task('only', 'noop')]));
        const n = 10_000;
        const finished = s.countFinished();
        const chunk = 500;
        for (let i = 0; i < n; i += chunk) {
          const size = Math.min(chunk, n - i);
          if (typeof s.rt.store.createRuns === 'function') {
            await s.rt.store.createRuns(Array.from({ length: size }, () => buildRun(s.rt.config, flow)));
          } else {
            await Promise.all(Array.from({ length: size }, () => createRun(s.rt, flow)));
          }
        }
        const { ms, failed } = await finished.until(n, 600_000);
        if (failed > 0) throw new Error(`pgManyRuns: ${failed} runs did not succeed`);
        report('pg_many_runs_per_s', n / (ms / 1000), 'runs/s', 0, 'higher');
      } finally {
        await s.close();
        await stopWorkers(workers);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  // From the SIGKILL of the leading `baton scheduler` to a standby leading and driving a run
  // queued right after the kill (the run is `running`, its first commit made by the new
  // leader): median of 5 trials, each killing the current leader at a different moment of
  // the standby's leadership tick (a fixed sequence, so that runs of the bench compare).
  if (want('pgLeaderTakeover')) {
    await withDatabase(async (url) => {
      const dir = project();
      const workers = startWorkers(dir, url, 1, 16);
      const schedulers = [startScheduler(dir, url), startScheduler(dir, url)];
      const rt = await openRuntime({ cwd: dir, env: { BATON_DATABASE_URL: url } });
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const waitFor = async (what, fn, ms = 30_000) => {
        const deadline = performance.now() + ms;
        for (;;) {
          const value = await fn();
          if (value) return value;
          if (performance.now() > deadline) throw new Error(`pgLeaderTakeover: timed out waiting for ${what}`);
          await sleep(5);
        }
      };
      try {
        await Promise.all([...workers, ...schedulers].map((p) => p.ready));
        const flow = await rt.catalog.find(writeFlow(dir, 'takeover', [task('a', 'noop')]));
        const phases = [0.1, 0.7, 0.4, 0.9, 0.25];
        const takeovers = [];
        for (const phase of phases) {
          const pid = await waitFor('a leader', () => leaderPid(url));
          const leader = schedulers.find((p) => p.pid === pid);
          if (!leader) throw new Error(`pgLeaderTakeover: leader pid ${pid} is not one of the schedulers`);
          // A run the leader finishes: it leads, and the standby has ticked meanwhile.
          const { run: warm } = await createRun(rt, flow);
          await waitFor('the warm-up run', async () => (await runState(c, warm.id)) === 'succeeded');
          await sleep(Math.round(phase * 2000));
          const exited = new Promise((r) => leader.once('exit', r));
          const t0 = performance.now();
          leader.kill('SIGKILL');
          const { run } = await createRun(rt, flow);
          await waitFor('a standby to drive the run', async () => (await runState(c, run.id)) !== 'queued');
          takeovers.push(performance.now() - t0);
          await exited;
          // Two schedulers again for the next trial.
          const replacement = startScheduler(dir, url);
          schedulers.splice(schedulers.indexOf(leader), 1, replacement);
          await replacement.ready;
          await waitFor('the run to end', async () => (await runState(c, run.id)) === 'succeeded');
        }
        takeovers.sort((a, b) => a - b);
        report('pg_leader_takeover_ms', takeovers[Math.floor(takeovers.length / 2)], 'ms', 2000, 'lower');
        report('pg_leader_takeover_max_ms', takeovers[takeovers.length - 1], 'ms', 0, 'lower');
      } finally {
        await c.end();
        await rt.close();
        await stopWorkers([...schedulers, ...workers].filter((p) => p.exitCode === null && p.signalCode === null));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  if (deadlocks.databases > 0) report('pg_deadlocks', deadlocks.count, 'count', 0, 'lower');
}
