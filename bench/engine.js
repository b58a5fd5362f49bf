// Group `engine` of `npm run bench`: runs that only wait and leave the engine's memory,
// timers that fire for many runs at once, a signal waking a parked run, and the public
// client's start path. Each benchmark runs on a fresh store of the kind the bench was given
// (`{ store: 'sqlite' | 'postgres' }`): a SQLite file in the system's temporary folder, or a
// fresh database of the server named by BATON_BENCH_PG_URL (default
// postgres://postgres@127.0.0.1:5432/postgres), dropped after. On PostgreSQL every figure's
// name starts with `pg_`.
//
// Run as a script with `park-worker <database>`, this file is the engine process of
// `parkedRuns`: a worker alone in its process, so that its resident memory is the engine's.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { defineFlow, openClient } from '../dist/index.js';
import { withBenchDatabase } from './pg-database.js';

const self = fileURLToPath(import.meta.url);
const MB = 1024 * 1024;

// The flows of `parkedRuns`, defined here so that the engine process registers the very code
// the runs were started with (a flow defined in code is versioned by its code).
const sleepFlow = defineFlow({ name: 'bench_park_sleep' });
sleepFlow.sleep('nap', { duration: '1h' });
const eventFlow = defineFlow({ name: 'bench_park_event' });
eventFlow.waitForEvent('wait', { event: 'go' });

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The figure's name on this store: PostgreSQL figures start with `pg_`. */
function nameOn(store, name) {
  return store === 'postgres' ? `pg_${name}` : name;
}

/**
 * Calls `fn({ store, database })` with a fresh store: a SQLite file in a new temporary folder,
 * or a new PostgreSQL database (its URL); removes it after.
 */
async function withStore(store, fn) {
  if (store !== 'postgres') {
    const dir = mkdtempSync(join(tmpdir(), 'baton-bench-engine-'));
    try {
      return await fn({ store, database: join(dir, 'bench.db') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return withBenchDatabase('baton_bench_engine', (database) => fn({ store, database }));
}

/**
 * A second connection to the bench's store, to count what the engine did (parked runs,
 * finished runs) without going through it. Queries are written with `?` placeholders.
 */
async function openProbe(place) {
  if (place.store !== 'postgres') {
    const db = new Database(place.database, { readonly: true });
    db.pragma('busy_timeout = 10000');
    return {
      async rows(sql, params = []) {
        return db.prepare(sql).all(...params);
      },
      async close() {
        db.close();
      },
    };
  }
  const c = new pg.Client({ connectionString: place.database });
  await c.connect();
  return {
    async rows(sql, params = []) {
      let n = 0;
      return (
        await c.query(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows;
    },
    async close() {
      await c.end();
    },
  };
}

/** Waits until `fn()` is true, reading every `everyMs`; throws after `timeoutMs`. */
async function until(what, fn, timeoutMs, everyMs = 50) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (performance.now() > deadline) throw new Error(`bench engine: timed out waiting for ${what}`);
    await pause(everyMs);
  }
}

/**
 * `client.startMany`, tried again (up to 3 times) when the store refuses a run id as taken:
 * ids made in the same millisecond differ in 24 random bits only, so a batch of thousands
 * can draw one twice. The retry makes new ids; stderr tells that it happened.
 */
async function startMany(client, inputs) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.startMany(inputs);
    } catch (error) {
      const taken = /runs_pkey|UNIQUE constraint failed: runs\.id/.test(String(error.cause?.message ?? error.message));
      if (!taken || attempt >= 3) throw error;
      process.stderr.write(`bench engine: startMany drew a run id twice (${error.message}); trying again\n`);
    }
  }
}

/**
 * Creates `n` runs with `startMany`, `chunk` per call, keeping at most `backlog` of them not
 * yet parked: the engine parks while they are created, as a steady stream of new runs would
 * have it. `parked()` counts the parked runs of the store; `base` were parked before.
 */
async function createPaced(client, inputOf, n, parked, { base = 0, chunk = 1000, backlog = 2000, timeoutMs }) {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < n; i += chunk) {
    while (i - ((await parked()) - base) > backlog) {
      if (performance.now() > deadline) throw new Error(`bench engine: runs not parked within ${timeoutMs} ms`);
      await pause(20);
    }
    const size = Math.min(chunk, n - i);
    await startMany(
      client,
      Array.from({ length: size }, (_, k) => inputOf(i + k)),
    );
  }
}

/** The value of `runs.parked` for a parked run: SQLite stores booleans as 0 and 1. */
function parkedFlag(place) {
  return place.store === 'postgres' ? true : 1;
}

/**
 * `parked_runs_rss_mb`: 100,000 runs, half sleeping an hour and half waiting for an event,
 * driven to their wait by a worker in a process of its own, which parks them (releases
 * them; the store marks them parked). The figure is that process's resident memory after
 * every run is parked and a garbage collection, over the same before any run. Runs are
 * created in this process, 1,000 per transaction, at most 2,000 ahead of the worker.
 */
export async function parkedRunsBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    const child = fork(self, ['park-worker', place.database], {
      // BATON_BENCH_CPU_PROF=<folder>: the engine process writes a CPU profile there.
      execArgv: [
        '--expose-gc',
        ...(process.env.BATON_BENCH_CPU_PROF
          ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BATON_BENCH_CPU_PROF}`]
          : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const replies = [];
    let wake = null;
    child.on('message', (m) => {
      replies.push(m);
      wake?.();
    });
    const reply = async (type, timeoutMs) => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const i = replies.findIndex((m) => m.type === type || m.type === 'error');
        if (i >= 0) {
          const [m] = replies.splice(i, 1);
          if (m.type === 'error') throw new Error(`park worker: ${m.message}`);
          return m;
        }
        if (child.exitCode !== null || child.signalCode !== null || performance.now() > deadline) {
          throw new Error(`park worker: no ${type} reply`);
        }
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 200);
        });
      }
    };
    let client;
    let probe;
    try {
      const idle = await reply('ready', 60_000);
      client = await openClient({ database: place.database, flows: [sleepFlow, eventFlow] });
      probe = await openProbe(place);
      const n = Number(process.env.BATON_BENCH_PARKED_RUNS ?? 100_000);
      const flag = parkedFlag(place);
      const parked = async () =>
        Number((await probe.rows('SELECT count(*) AS n FROM runs WHERE parked = ?', [flag]))[0].n);
      const t0 = performance.now();
      const inputOf = (i) => ({ flow: i % 2 ? eventFlow : sleepFlow });
      await createPaced(client, inputOf, n, parked, { timeoutMs: 1_800_000 });
      await until(`${n} parked runs`, async () => (await parked()) >= n, 60_000, 50).catch(async (error) => {
        const [held] = await probe.rows("SELECT count(*) AS n FROM runs WHERE state = 'running' AND owner IS NOT NULL");
        throw new Error(`${error.message} (${await parked()} parked, ${held.n} running and held by the worker)`);
      });
      const parkSeconds = (performance.now() - t0) / 1000;
      child.send({ type: 'measure' });
      const parkedMemory = await reply('measured', 60_000);
      report(nameOn(store, 'parked_runs_rss_mb'), (parkedMemory.rss - idle.rss) / MB, 'MB', 50, 'lower');
      // How much of that is the JavaScript heap (the rest: the store driver's caches, code, buffers).
      report(nameOn(store, 'parked_runs_heap_mb'), (parkedMemory.heap - idle.heap) / MB, 'MB', 0, 'lower');
      report(nameOn(store, 'park_runs_per_s'), n / parkSeconds, 'runs/s', 0, 'higher');
      child.send({ type: 'stop' });
      await reply('stopped', 60_000);
    } finally {
      await probe?.close();
      await client?.close();
      if (child.connected) child.disconnect();
      const gone = await Promise.race([exited.then(() => true), pause(10_000).then(() => false)]);
      if (!gone) child.kill('SIGKILL');
      await exited;
    }
  });
}

/** The engine process of `parkedRuns`: a worker, its idle memory, then its memory on request. */
async function parkWorker(database) {
  const memory = async () => {
    // Twice, with a turn between, so that what the first collection freed is returned.
    globalThis.gc?.();
    await pause(100);
    globalThis.gc?.();
    const { rss, heapUsed } = process.memoryUsage();
    return { rss, heap: heapUsed };
  };
  // Ends with the bench that started it, whatever becomes of that.
  process.on('disconnect', () => process.exit(0));
  try {
    const client = await openClient({ database, flows: [sleepFlow, eventFlow] });
    client.startWorker({ onDiagnostic: (m) => process.stderr.write(`park worker: ${m}\n`) });
    // The worker polls with nothing to claim for a moment: its idle memory includes its loops.
    await pause(1000);
    process.send({ type: 'ready', ...(await memory()) });
    process.on('message', (m) => {
      if (m.type === 'measure') {
        void memory().then((value) => process.send({ type: 'measured', ...value }));
      } else if (m.type === 'stop') {
        void client.close().then(() => {
          process.send({ type: 'stopped' });
        });
      }
    });
  } catch (error) {
    process.send({ type: 'error', message: error.message });
  }
}

/**
 * `timer_fire_lag_p99_ms`: 10,000 runs parked on a `waitUntil` due at the same second, taken
 * back by one worker when due; lag = when each wait task ended (task_runs.ended_at) minus
 * the due time. The due time is set from how fast this engine parked 1,000 runs first, so
 * that all 10,000 are parked before it.
 */
export async function timerFireLagBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    const client = await openClient({ database: place.database });
    const probe = await openProbe(place);
    try {
      client.startWorker({ onDiagnostic: (m) => process.stderr.write(`timer bench: ${m}\n`) });
      const flag = parkedFlag(place);
      const parked = async () =>
        Number((await probe.rows('SELECT count(*) AS n FROM runs WHERE parked = ?', [flag]))[0].n);
      const warm = defineFlow({ name: 'bench_timer_warm' });
      warm.waitUntil('wait', { until: Date.now() + 3_600_000 });
      const t0 = performance.now();
      await startMany(
        client,
        Array.from({ length: 1000 }, () => ({ flow: warm })),
      );
      await until('1,000 parked warm-up runs', async () => (await parked()) >= 1000, 120_000, 20);
      const perRunMs = (performance.now() - t0) / 1000;
      const n = 10_000;
      const margin = Math.max(5000, n * perRunMs * 1.3 + 3000);
      const due = Math.ceil((Date.now() + margin) / 1000) * 1000;
      const flow = defineFlow({ name: 'bench_timer' });
      flow.waitUntil('wait', { until: due });
      await createPaced(client, () => ({ flow }), n, parked, { base: 1000, timeoutMs: due - Date.now() });
      await until(
        '10,000 parked timer runs',
        async () => (await parked()) >= 1000 + n,
        Math.max(1000, due - Date.now()),
        100,
      );
      const ended = async () =>
        probe.rows(
          "SELECT t.ended_at AS at FROM task_runs t JOIN runs r ON r.id = t.run_id WHERE r.flow = ? AND t.task_id = 'wait' AND t.ended_at IS NOT NULL",
          ['bench_timer'],
        );
      await until('10,000 timers to fire', async () => (await ended()).length >= n, due - Date.now() + 120_000, 100);
      const lags = (await ended()).map((r) => Number(r.at) - due).sort((a, b) => a - b);
      report(
        nameOn(store, 'timer_fire_lag_p99_ms'),
        percentile(lags, 99),
        'ms',
        store === 'postgres' ? 2000 : 1000,
        'lower',
      );
      report(nameOn(store, 'timer_fire_lag_p50_ms'), percentile(lags, 50), 'ms', 0, 'lower');
    } finally {
      await probe.close();
      await client.close();
    }
  });
}

/**
 * `signal_to_start_p50_ms`: a run parked on `waitForEvent`; from sending it the event
 * (`client.signal`, with the worker in the same process) until the body of the task after
 * the wait starts. Median over 100 runs one at a time, after 10 warm-up runs.
 */
export async function signalToStartBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    let onStart = null;
    const flow = defineFlow({ name: 'bench_signal' });
    const wait = flow.waitForEvent('wait', { event: 'go' });
    flow.task('next', { after: [wait] }, async () => {
      onStart?.(performance.now());
      return null;
    });
    const client = await openClient({ database: place.database, flows: [flow] });
    const probe = await openProbe(place);
    try {
      client.startWorker({ onDiagnostic: (m) => process.stderr.write(`signal bench: ${m}\n`) });
      const latencies = [];
      for (let i = 0; i < 110; i++) {
        const run = await client.start(flow);
        await until(
          `run ${run.id} to park`,
          async () => Boolean((await probe.rows('SELECT parked FROM runs WHERE id = ?', [run.id]))[0]?.parked),
          30_000,
          2,
        );
        const started = new Promise((resolve) => (onStart = resolve));
        const t0 = performance.now();
        await client.signal(run.id, 'go');
        const at = await started;
        if (i >= 10) latencies.push(at - t0);
        await run.result({ timeoutMs: 30_000 });
      }
      latencies.sort((a, b) => a - b);
      report(
        nameOn(store, 'signal_to_start_p50_ms'),
        percentile(latencies, 50),
        'ms',
        store === 'postgres' ? 20 : 5,
        'lower',
      );
      report(nameOn(store, 'signal_to_start_p99_ms'), percentile(latencies, 99), 'ms', 0, 'lower');
    } finally {
      await probe.close();
      await client.close();
    }
  });
}

/**
 * `client_start_latency_p50_ms`: through the public client, from calling `start(flow)` until
 * the run's task body starts, with a worker in the same process (a queued run claimed by the
 * worker): median of 200 runs one at a time, after 20 warm-up runs. On PostgreSQL it is
 * `pg_client_start_latency_*`. Group `core` has `start_latency_*` (a run executed by the
 * process that created it) and, on PostgreSQL, `pg_start_latency_*` (scheduler and worker
 * processes).
 */
export async function startLatencyBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    let onStart = null;
    const flow = defineFlow({ name: 'bench_latency' });
    flow.task('first', async () => {
      onStart?.(performance.now());
      return null;
    });
    const client = await openClient({ database: place.database, flows: [flow] });
    try {
      client.startWorker({ onDiagnostic: (m) => process.stderr.write(`start bench: ${m}\n`) });
      const latencies = [];
      for (let i = 0; i < 220; i++) {
        const started = new Promise((resolve) => (onStart = resolve));
        const t0 = performance.now();
        const run = await client.start(flow);
        const at = await started;
        if (i >= 20) latencies.push(at - t0);
        await run.result({ timeoutMs: 30_000 });
      }
      latencies.sort((a, b) => a - b);
      const prefix = store === 'postgres' ? 'pg_client_' : 'client_';
      report(`${prefix}start_latency_p50_ms`, percentile(latencies, 50), 'ms', store === 'postgres' ? 2 : 0.5, 'lower');
      report(`${prefix}start_latency_p99_ms`, percentile(latencies, 99), 'ms', store === 'postgres' ? 0 : 5, 'lower');
    } finally {
      await client.close();
    }
  });
}

/**
 * 10,000 one-task runs with empty bodies, started through the public client and executed
 * by in-process workers of concurrency 10 (two on PostgreSQL, one on SQLite, whose file
 * takes one writer): runs per second from the first start until the last run ended (its
 * ended_at). `create(client, flow)` starts them all.
 */
async function runsPerSecond(place, create) {
  const flow = defineFlow({ name: 'bench_noop' });
  flow.task('only', async () => null);
  const client = await openClient({ database: place.database, flows: [flow], concurrency: 10 });
  const probe = await openProbe(place);
  try {
    const workers = place.store === 'postgres' ? 2 : 1;
    for (let i = 0; i < workers; i++) {
      client.startWorker({ concurrency: 10, onDiagnostic: (m) => process.stderr.write(`runs bench: ${m}\n`) });
    }
    const succeeded = async () =>
      Number((await probe.rows("SELECT count(*) AS n FROM runs WHERE state = 'succeeded'"))[0].n);
    // Warm-up: 200 runs through the same path, so that the figure is not the JIT's.
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let j = 0; j < 20; j++) await client.start(flow);
      }),
    );
    await until('200 warm-up runs', async () => (await succeeded()) >= 200, 120_000, 20);
    const n = 10_000;
    const t0 = Date.now();
    await create(client, flow, n);
    await until(`${n} runs to end`, async () => (await succeeded()) >= 200 + n, 300_000, 50);
    const [{ last }] = await probe.rows('SELECT max(ended_at) AS last FROM runs');
    const [{ failed }] = await probe.rows("SELECT count(*) AS failed FROM runs WHERE state <> 'succeeded'");
    if (Number(failed) > 0) throw new Error(`runs bench: ${failed} runs did not succeed`);
    return n / ((Number(last) - t0) / 1000);
  } finally {
    await probe.close();
    await client.close();
  }
}

/** `runs_per_s`: each run started with its own `start` call, from 10 concurrent callers. */
export async function runsPerSecondBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    const rate = await runsPerSecond(place, async (client, flow, n) => {
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          for (let j = 0; j < n / 10; j++) await client.start(flow);
        }),
      );
    });
    report(nameOn(store, 'runs_per_s'), rate, 'runs/s', 10_000, 'higher');
  });
}

/** `runs_per_s_many`: the same runs created with `startMany`, 10 concurrent callers of 1,000 each. */
export async function runsPerSecondManyBench(report, { store = 'sqlite' } = {}) {
  await withStore(store, async (place) => {
    const rate = await runsPerSecond(place, async (client, flow, n) => {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          startMany(
            client,
            Array.from({ length: n / 10 }, () => ({ flow })),
          ),
        ),
      );
    });
    report(nameOn(store, 'runs_per_s_many'), rate, 'runs/s', 10_000, 'higher');
  });
}

if (process.argv[1] === self && process.argv[2] === 'park-worker') await parkWorker(process.argv[3]);
