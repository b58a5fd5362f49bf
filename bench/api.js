// Group `api` of `npm run bench`: the HTTP API as a client sees it. Each benchmark runs a real
// `baton server` or `baton dev` process on a free port over a project in a new temporary
// folder (a SQLite store) and measures from this process over keep-alive HTTP (Node's fetch).
//
// - `runsApiBench`: `GET /api/v1/runs?limit=50` and `GET /api/v1/runs/{id}` (random ids) on a
//   store of 100,000 runs, a few hundred sequential requests each after a warm-up.
// - `sseLagBench`: 200 clients on `GET /api/v1/events` while `baton dev` completes about
//   1,000 tasks/s (100 runs/s of a flow of 10 function tasks, started over
//   `POST /api/v1/flows/{flow}/runs:batch` for 10 s); the lag of each `task` event is its
//   arrival at a client minus the task's `ended_at`.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { defineFlow, openClient } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'baton.js');
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A TCP port free on 127.0.0.1 now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `baton <args…> --port <free>` in `cwd` and resolves once it prints the URL it
 * serves on: `{ url, stop() }`. Refuses after `timeoutMs` or when the process ends first.
 */
export async function startBatonServer(args, cwd, timeoutMs = 120_000) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      // BATON_BENCH_CPU_PROF=<folder>: the server writes a CPU profile there when it stops.
      ...(process.env.BATON_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BATON_BENCH_CPU_PROF}`] : []),
      bin,
      ...args,
      '--port',
      String(port),
    ],
    {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let stderr = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baton ${args[0]} did not start: ${stderr}`)), timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      // Keep only the start of what it says: `baton dev` prints a line per run.
      if (stderr.length < 20_000) stderr += chunk;
      const match = /UI and API on (http:\/\/\S+?)\/?\s/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`baton ${args[0]} exited ${code}: ${stderr}`));
    });
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), pause(10_000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** `fetch` that fails on a status other than 2xx, with the body in the message. */
export async function fetchOk(url, init) {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
  return res;
}

/**
 * The latencies (ms, sorted) of `count` sequential GETs of `pathOf(i)`, after `warmup` untimed
 * ones; each body is read in full.
 */
async function timeGets(base, pathOf, count, warmup) {
  const times = [];
  for (let i = -warmup; i < count; i++) {
    const t0 = performance.now();
    const res = await fetchOk(base + pathOf(i));
    await res.arrayBuffer();
    if (i >= 0) times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
}

const RUNS = 100_000;

/**
 * Fills `database` with RUNS runs of a flow of 5 tasks (created with the public client's
 * `startMany`, 2,000 per call), then gives them a history's mix of states straight in the
 * store: 85% succeeded, 7% failed, 3% cancelled, 2% running, the newest few queued, with
 * start and end times to match. Returns the run ids.
 */
async function fillRuns(database) {
  const flow = defineFlow({ name: 'bench_api_runs' });
  let prev;
  for (let i = 0; i < 5; i++) prev = flow.task(`t${i}`, prev ? { after: [prev] } : {}, async () => null);
  const client = await openClient({ database, flows: [flow] });
  const ids = [];
  try {
    for (let made = 0; made < RUNS;) {
      const n = Math.min(2000, RUNS - made);
      const inputs = Array.from({ length: n }, (_, i) => ({
        flow: 'bench_api_runs',
        labels: { team: `team${(made + i) % 7}` },
      }));
      let handles;
      for (let attempt = 1; ; attempt++) {
        try {
          handles = await client.startMany(inputs);
          break;
        } catch (error) {
          // A run id drawn twice (its random part) refuses the whole batch: draw again.
          if (attempt >= 3) throw error;
        }
      }
      for (const h of handles) ids.push(h.id);
      made += n;
    }
  } finally {
    await client.close();
  }
  const db = new Database(database);
  try {
    db.pragma('journal_mode = WAL');
    const rows = db.prepare('SELECT id, created_at FROM runs').all();
    const setRun = db.prepare('UPDATE runs SET state = ?, started_at = ?, ended_at = ? WHERE id = ?');
    const setTasks = db.prepare(
      'UPDATE task_runs SET state = ?, started_at = ?, ended_at = ?, attempts = 1 WHERE run_id = ?',
    );
    db.transaction(() => {
      rows.forEach((r, i) => {
        if (i >= rows.length - 20) return; // the newest stay queued
        const roll = (i * 7919) % 100;
        const state =
          roll < 85 ? 'succeeded' : roll < 92 ? 'failed' : roll < 95 ? 'cancelled' : roll < 97 ? 'running' : 'queued';
        if (state === 'queued') return;
        const started = r.created_at + 3;
        const ended = state === 'running' ? null : started + 200 + (i % 5000);
        setRun.run(state, started, ended, r.id);
        setTasks.run(
          state === 'running' ? 'running' : state === 'cancelled' ? 'cancelled' : state,
          started,
          ended,
          r.id,
        );
      });
    })();
  } finally {
    db.close();
  }
  return ids;
}

/** `api_runs_list_*` and `api_run_detail_*`: the runs list and a run's detail on a store of 100,000 runs. */
export async function runsApiBench(report) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-api-'));
  let server;
  try {
    mkdirSync(join(dir, 'flows'));
    const database = join(dir, 'runs.db');
    const ids = await fillRuns(database);
    server = await startBatonServer(['--db', database, 'server'], dir);
    const api = `${server.url}/api/v1`;
    const first = await (await fetchOk(`${api}/runs?limit=50`)).json();
    if (first.items.length !== 50 || !first.next_cursor) throw new Error('runs list: not a full page');
    const list = await timeGets(api, () => '/runs?limit=50', 300, 30);
    report('api_runs_list_p50_ms', percentile(list, 50), 'ms', 0, 'lower');
    report('api_runs_list_p99_ms', percentile(list, 99), 'ms', 50, 'lower');
    // A fixed draw of ids, so that runs of the bench ask for the same ones.
    let seed = 42;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return ids[seed % ids.length];
    };
    const detail = await timeGets(api, () => `/runs/${pick()}`, 300, 30);
    report('api_run_detail_p50_ms', percentile(detail, 50), 'ms', 0, 'lower');
    report('api_run_detail_p99_ms', percentile(detail, 99), 'ms', 50, 'lower');
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads a text/event-stream from `res` until `signal` aborts, calling `onEvent(event, data,
 * receivedAt)` for each event (`receivedAt`: Date.now() when its chunk arrived).
 */
async function readEventStream(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const receivedAt = Date.now();
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      let end;
      while ((end = buffer.indexOf('\n\n', start)) >= 0) {
        const block = buffer.slice(start, end);
        start = end + 2;
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data += line.slice(6);
        }
        if (data) onEvent(event, data, receivedAt);
      }
      buffer = buffer.slice(start);
    }
  } catch (error) {
    if (error.name !== 'AbortError') throw error;
  }
}

/** Instants already parsed: every client gets the same ones. */
const parsedInstants = new Map();

/**
 * The `ended_at` of a task event's data, in ms, or null: read without parsing the whole JSON,
 * so that 200 clients in this process cost it less than the server it measures.
 */
function endedAt(data) {
  const at = data.indexOf('"ended_at":"');
  if (at < 0) return null;
  const text = data.slice(at + 12, data.indexOf('"', at + 12));
  let ms = parsedInstants.get(text);
  if (ms === undefined) {
    if (parsedInstants.size > 100_000) parsedInstants.clear();
    ms = Date.parse(text);
    parsedInstants.set(text, ms);
  }
  return ms;
}

const SSE_CLIENTS = 200;
const SSE_TASKS = 10;
const SSE_SECONDS = 10;
const SSE_RUNS_PER_TICK = 10; // every 100 ms: 100 runs/s, 1,000 tasks/s

/** `api_sse_*` and `api_tasks_per_s`: live events to 200 clients while about 1,000 tasks/s complete. */
export async function sseLagBench(report) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-sse-'));
  let server;
  const abort = new AbortController();
  try {
    mkdirSync(join(dir, 'flows'));
    writeFileSync(join(dir, 'flows', 'steps.mjs'), 'export function step() {\n  return 1;\n}\n');
    const tasks = Array.from({ length: SSE_TASKS }, (_, i) =>
      [`  t${i}:`, '    kind: function', '    module: ./steps.mjs', '    export: step'].join('\n'),
    );
    writeFileSync(join(dir, 'flows', 'sse.yaml'), `name: sse\ntasks:\n${tasks.join('\n')}\n`);
    server = await startBatonServer(['dev'], dir);
    const api = `${server.url}/api/v1`;

    // Each client counts its task events with an end and keeps their lags.
    const clients = await Promise.all(
      Array.from({ length: SSE_CLIENTS }, async () => {
        const res = await fetchOk(`${api}/events`, { signal: abort.signal, headers: { accept: 'text/event-stream' } });
        const client = { ended: 0, lastEnd: 0, lags: [], done: null };
        client.done = readEventStream(res, (event, data, receivedAt) => {
          if (event !== 'task') return;
          const ended = endedAt(data);
          if (ended === null) return;
          client.ended++;
          client.lastEnd = Math.max(client.lastEnd, ended);
          client.lags.push(receivedAt - ended);
        });
        return client;
      }),
    );

    const t0 = Date.now();
    let started = 0;
    for (let tick = 0; tick < SSE_SECONDS * 10; tick++) {
      const due = t0 + tick * 100;
      if (due > Date.now()) await pause(due - Date.now());
      const runs = Array.from({ length: SSE_RUNS_PER_TICK }, () => ({}));
      await fetchOk(`${api}/flows/sse/runs:batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ runs }),
      });
      started += SSE_RUNS_PER_TICK;
    }
    // Until every task's end reached the first client (or a minute more at most).
    const expected = started * SSE_TASKS;
    const deadline = Date.now() + 60_000;
    while (clients[0].ended < expected && Date.now() < deadline) await pause(100);
    await pause(1000); // the other clients' last events
    abort.abort();
    await Promise.all(clients.map((c) => c.done));

    const lags = clients.flatMap((c) => c.lags).sort((a, b) => a - b);
    const fewest = Math.min(...clients.map((c) => c.ended));
    if (lags.length === 0) throw new Error('sse: no task event reached any client');
    report('api_sse_lag_p99_ms', percentile(lags, 99), 'ms', 1000, 'lower');
    report('api_sse_lag_max_ms', lags[lags.length - 1], 'ms', 1000, 'lower');
    report('api_sse_events_per_client', fewest, 'events', expected, 'higher');
    // Tasks ended from the first request until the last task's end (as the server tells it):
    // about 1,000/s when the server keeps up with what it is asked.
    report('api_tasks_per_s', clients[0].ended / ((clients[0].lastEnd - t0) / 1000), 'tasks/s', 900, 'higher');
  } finally {
    abort.abort();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
