/**
 * The crash test (DESIGN.md, "Durable execution"): after `kill -9` at any instant, the next
 * start continues every run from its last committed event; nothing completed runs again,
 * nothing is lost.
 *
 * A seeded PRNG generates a YAML flow of 200+ function tasks (chains, fan-outs, joins with
 * several trigger rules, 0-40 ms bodies, planned failures retried after 10-50 ms). Runs of
 * it are driven by real `baton resume` processes (a snapshot of bin/ and dist/) that are
 * SIGKILLed after seeded random delays, and by processes that kill themselves at the
 * engine's named crash points (`BATON_CRASH_AT`). Every body appends `<task> <attempt>` to a journal before doing
 * anything else, so the journal records every execution, committed or not. At the end the
 * SQLite file (read-only), the journal and `baton show --json` must agree: every task run
 * final, one success per task, no body after a committed success, started attempts
 * increasing, the same outcome as a run without kills, and an intact database file.
 *
 * Task outcomes do not depend on kills: a task fails while `attempt <= failTimes` with
 * failTimes 0-2 (it ends succeeded: lost attempts do not use up retries) or always (it
 * ends failed after 3 counted failures), so a clean run is the reference.
 *
 * `CRASH_SEED=<n>` reproduces a failure (every failure message names the seed);
 * `CRASH_KEEP=1` keeps the temp folder.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { seededRandom } from '../core/fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TASKS_MODULE = join(ROOT, 'test', 'fixtures', 'crash', 'tasks.mjs');

const MIN_TASKS = 210;
const MIN_RANDOM_KILLS = 100;
const KILL_DELAY_MS = [30, 400] as const;
/**
 * Share of kills drawn from KILL_DELAY_MS after spawn (on a loaded machine most land while
 * the process starts, claims and folds); the others land up to AFTER_STARTUP_MS after the
 * measured time a process takes to begin its first body, so that they cut runs mid-flight.
 */
const EARLY_KILL_SHARE = 0.4;
const AFTER_STARTUP_MS = 300;
/** Kills that must land after the killed process began a body. */
const MIN_MID_FLIGHT_KILLS = 20;
/** After this many random kills of one run, one resume may finish it (so every run ends). */
const RANDOM_KILLS_PER_RUN = 80;
/** Each crash point must kill a process this many times. */
const CRASH_POINT_TARGET = 2;
const MAX_RUNS = 40;
const MAX_RESTARTS = 400;
const BUDGET_MS = 240_000;
const ALWAYS_FAILS = 99;

const CRASH_POINTS = ['after_claim', 'after_body', 'mid_commit', 'retry_timer'] as const;
type CrashPoint = (typeof CRASH_POINTS)[number];

const FINAL_TASK_STATES = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);
const FINAL_RUN_EVENTS: Record<string, string> = {
  succeeded: 'run_succeeded',
  failed: 'run_failed',
  cancelled: 'run_cancelled',
};

type Rng = () => number;
const between = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));
const pickOne = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

// --- the flow -------------------------------------------------------------------------

interface PlannedTask {
  readonly id: string;
  readonly dependsOn: string[];
  readonly rule?: string;
  readonly failTimes: number;
  readonly ms: number;
  readonly retry?: Record<string, unknown>;
}

const JOIN_RULES = ['all_success', 'all_done', 'none_failed_min_one_success', 'one_success', 'none_failed'] as const;

/** Blocks of chains, fan-outs and joins, each hanging off recent tasks so that the graph stays ~15-20 deep. */
function planFlow(rng: Rng): PlannedTask[] {
  const tasks: PlannedTask[] = [];
  const add = (dependsOn: string[], rule?: string): string => {
    const id = `t${String(tasks.length).padStart(3, '0')}`;
    const r = rng();
    const failTimes = r < 0.64 ? 0 : r < 0.8 ? 1 : r < 0.92 ? 2 : r < 0.95 ? ALWAYS_FAILS : 0;
    const retry =
      rng() < 0.5
        ? {
            max_attempts: 3,
            backoff: `${between(rng, 10, 50)}ms`,
            max_backoff: '50ms',
            jitter: pickOne(rng, ['full', 'none']),
          }
        : undefined;
    // Some single-upstream tasks run whatever happened upstream, so a failure does not skip everything below it.
    const ownRule = rule ?? (dependsOn.length > 0 && rng() < 0.15 ? 'all_done' : undefined);
    tasks.push({
      id,
      dependsOn,
      ...(ownRule ? { rule: ownRule } : {}),
      failTimes,
      ms: between(rng, 0, 40),
      ...(retry ? { retry } : {}),
    });
    return id;
  };
  const recent = (): string => {
    const window = Math.min(100, tasks.length);
    return (tasks[tasks.length - 1 - Math.floor(rng() * window)] as PlannedTask).id;
  };
  for (let i = 0; i < 6; i++) add([]);
  let joins = 0;
  while (tasks.length < MIN_TASKS) {
    const shape = rng();
    if (shape < 0.35) {
      let prev = add([recent()]);
      for (let n = between(rng, 1, 4); n > 0; n--) prev = add([prev]);
    } else if (shape < 0.65) {
      const hub = recent();
      for (let n = between(rng, 3, 8); n > 0; n--) add([hub]);
    } else {
      const ups = new Set<string>();
      for (let n = between(rng, 2, 6); n > 0; n--) ups.add(recent());
      // Cycle through the rules first so that every one of them occurs.
      const rule = joins < JOIN_RULES.length ? (JOIN_RULES[joins] as string) : pickOne(rng, JOIN_RULES);
      joins++;
      add([...ups], rule);
    }
  }
  return tasks;
}

function flowYaml(tasks: readonly PlannedTask[]): string {
  const doc = {
    name: 'crash_flow',
    description: 'generated by test/crash/crash.test.ts',
    defaults: { retry: { max_attempts: 3, backoff: '10ms', max_backoff: '50ms' } },
    tasks: Object.fromEntries(
      tasks.map((t) => [
        t.id,
        {
          kind: 'function',
          module: './tasks.mjs',
          export: 'work',
          ...(t.dependsOn.length > 0 ? { depends_on: t.dependsOn } : {}),
          ...(t.rule ? { trigger_rule: t.rule } : {}),
          ...(t.retry ? { retry: t.retry } : {}),
          with: { id: t.id, failTimes: t.failTimes, ms: t.ms },
        },
      ]),
    ),
  };
  return stringify(doc);
}

function depthOf(tasks: readonly PlannedTask[]): number {
  const depth = new Map<string, number>();
  for (const t of tasks) depth.set(t.id, 1 + Math.max(0, ...t.dependsOn.map((d) => depth.get(d) ?? 0)));
  return Math.max(...depth.values());
}

// --- processes ------------------------------------------------------------------------

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** We sent SIGKILL because of a timeout (not a planned random kill). */
  readonly timedOut: boolean;
  /** Milliseconds from spawn until the watched journal first grew (a body began), if it did. */
  readonly firstBodyMs: number | undefined;
}

function describeExit(e: Exit): string {
  const tail = (s: string) => (s.length > 2000 ? `…${s.slice(-2000)}` : s);
  return `exit code ${e.code}, signal ${e.signal}${e.timedOut ? ' (killed on timeout)' : ''}\nstdout: ${tail(e.stdout)}\nstderr: ${tail(e.stderr)}`;
}

function describeDelays(ms: readonly number[]): string {
  const sorted = [...ms].sort((x, y) => x - y);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return sorted.length === 0 ? 'none' : `min ${at(0)} / median ${at(0.5)} / max ${at(1)} ms`;
}

interface Harness {
  /** Absolute path of the bin/baton.js that the test spawns. */
  readonly bin: string;
  readonly dir: string;
  readonly db: string;
  readonly env: NodeJS.ProcessEnv;
  readonly live: Set<ChildProcess>;
}

function baton(
  h: Harness,
  args: readonly string[],
  options: { killAfterMs?: number; timeoutMs: number; env?: NodeJS.ProcessEnv; watch?: string },
): Promise<Exit> {
  return new Promise((resolveExit, reject) => {
    const spawnedAt = Date.now();
    const sizeOf = (path: string): number => {
      try {
        return statSync(path).size;
      } catch {
        return 0;
      }
    };
    const watched = options.watch;
    const initialSize = watched === undefined ? 0 : sizeOf(watched);
    let firstBodyMs: number | undefined;
    const watcher =
      watched === undefined
        ? undefined
        : setInterval(() => {
            if (firstBodyMs === undefined && sizeOf(watched) > initialSize) firstBodyMs = Date.now() - spawnedAt;
          }, 5);
    const child = spawn(process.execPath, [h.bin, '--db', h.db, ...args], {
      cwd: h.dir,
      env: { ...h.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    h.live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer =
      options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    const guard = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearInterval(watcher);
      clearTimeout(killer);
      clearTimeout(guard);
      h.live.delete(child);
      reject(error);
    });
    // `close` comes after the process was reaped and its pipes drained: its pid is gone.
    child.on('close', (code, signal) => {
      clearInterval(watcher);
      clearTimeout(killer);
      clearTimeout(guard);
      h.live.delete(child);
      resolveExit({ code, signal, stdout, stderr, timedOut, firstBodyMs });
    });
  });
}

interface ShownTask {
  readonly id: string;
  readonly state: string;
  readonly attempts: number;
}
interface ShownRun {
  readonly id: string;
  readonly state: string;
  readonly tasks: readonly ShownTask[];
}

function parseShown(text: string): ShownRun {
  return JSON.parse(text) as ShownRun;
}

// --- checks ---------------------------------------------------------------------------

interface EventRow {
  readonly seq: number;
  readonly type: string;
  readonly data: string;
}
interface TaskEvent {
  readonly type: string;
  readonly task?: string;
  readonly attempt?: number;
  readonly lost?: boolean;
}

interface RunFacts {
  readonly state: string;
  readonly tasks: ReadonlyMap<string, string>;
  readonly bodies: number;
  readonly lostAttempts: number;
}

/**
 * Checks one run against the database (read-only) and its journal; pushes every violation
 * to `problems` and returns what the comparison with the reference needs.
 */
function checkRun(
  db: Database.Database,
  journalPath: string,
  runId: string,
  taskCount: number,
  problems: string[],
): RunFacts {
  const p = (m: string) => problems.push(`run ${runId}: ${m}`);
  const run = db.prepare('SELECT state, last_seq, task_count FROM runs WHERE id = ?').get(runId) as
    { state: string; last_seq: number; task_count: number } | undefined;
  if (!run) {
    p('not in the runs table');
    return { state: 'missing', tasks: new Map(), bodies: 0, lostAttempts: 0 };
  }
  if (!FINAL_RUN_EVENTS[run.state]) p(`is ${run.state}, not terminal`);
  if (run.task_count !== taskCount) p(`has task_count ${run.task_count}, expected ${taskCount}`);

  const rows = db
    .prepare('SELECT task_id, state, attempts FROM task_runs WHERE run_id = ? ORDER BY idx')
    .all(runId) as {
    task_id: string;
    state: string;
    attempts: number;
  }[];
  if (rows.length !== taskCount) p(`has ${rows.length} task runs, expected ${taskCount}`);
  const states = new Map<string, string>();
  for (const r of rows) {
    if (states.has(r.task_id)) p(`task ${r.task_id} has two task run rows`);
    states.set(r.task_id, r.state);
    if (!FINAL_TASK_STATES.has(r.state)) p(`task ${r.task_id} is ${r.state}, not in a final state`);
  }

  const events = db
    .prepare('SELECT seq, type, data FROM events WHERE run_id = ? ORDER BY seq')
    .all(runId) as EventRow[];
  events.forEach((e, i) => {
    if (e.seq !== i + 1) p(`event seq ${e.seq} at position ${i + 1}: the history has a gap`);
  });
  if (run.last_seq !== events.length) p(`runs.last_seq is ${run.last_seq} but the history has ${events.length} events`);
  const finals = events.filter((e) => Object.values(FINAL_RUN_EVENTS).includes(e.type));
  if (finals.length !== 1) p(`has ${finals.length} final run events (${finals.map((e) => e.type).join(', ')})`);
  if (events[events.length - 1]?.type !== FINAL_RUN_EVENTS[run.state]) {
    p(
      `last event is ${events[events.length - 1]?.type}, expected ${FINAL_RUN_EVENTS[run.state]} for a ${run.state} run`,
    );
  }

  const started = new Map<string, number[]>();
  const succeeded = new Map<string, number[]>();
  let lostAttempts = 0;
  for (const e of events) {
    const data = JSON.parse(e.data) as TaskEvent;
    if (data.type !== e.type) p(`event ${e.seq} has type column ${e.type} but data.type ${data.type}`);
    if (e.type === 'task_started' && data.task !== undefined && data.attempt !== undefined) {
      started.set(data.task, [...(started.get(data.task) ?? []), data.attempt]);
    } else if (e.type === 'task_succeeded' && data.task !== undefined && data.attempt !== undefined) {
      succeeded.set(data.task, [...(succeeded.get(data.task) ?? []), data.attempt]);
    } else if (e.type === 'attempt_failed' && data.lost === true) {
      lostAttempts++;
    }
  }
  const perTaskSuccess = db
    .prepare(
      `SELECT json_extract(data, '$.task') AS task, count(*) AS n FROM events
       WHERE run_id = ? AND type = 'task_succeeded' GROUP BY task HAVING n > 1`,
    )
    .all(runId) as { task: string; n: number }[];
  for (const r of perTaskSuccess) p(`task ${r.task} has ${r.n} task_succeeded events`);

  for (const [task, attempts] of started) {
    for (let i = 1; i < attempts.length; i++) {
      if ((attempts[i] as number) <= (attempts[i - 1] as number)) {
        p(`task ${task}: task_started attempts are not strictly increasing: ${attempts.join(', ')}`);
        break;
      }
    }
  }
  for (const r of rows) {
    const last = started.get(r.task_id)?.at(-1) ?? 0;
    if (r.attempts !== last)
      p(`task ${r.task_id}: task_runs.attempts is ${r.attempts}, last task_started is attempt ${last}`);
    const wins = succeeded.get(r.task_id) ?? [];
    if (r.state === 'succeeded' && wins.length !== 1)
      p(`task ${r.task_id} is succeeded with ${wins.length} task_succeeded events`);
    if (r.state !== 'succeeded' && wins.length > 0) p(`task ${r.task_id} is ${r.state} but has a task_succeeded event`);
    if (wins.length === 1 && wins[0] !== last)
      p(`task ${r.task_id} succeeded with attempt ${wins[0]}, but attempt ${last} started`);
  }

  const timers = db.prepare('SELECT count(*) AS n FROM timers WHERE run_id = ?').get(runId) as { n: number };
  if (timers.n !== 0) p(`${timers.n} timer row(s) left after the run ended`);

  // The journal: every body that ran, in the order the bodies began.
  const lines = existsSync(journalPath)
    ? readFileSync(journalPath, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
  const seen = new Set<string>();
  const ranAttempts = new Map<string, number[]>();
  for (const line of lines) {
    const [task, attemptText] = line.split(' ');
    const attempt = Number(attemptText);
    if (task === undefined || !Number.isInteger(attempt)) {
      p(`journal line "${line}" is malformed`);
      continue;
    }
    if (seen.has(line)) p(`task ${task} attempt ${attempt} ran twice (journal)`);
    seen.add(line);
    ranAttempts.set(task, [...(ranAttempts.get(task) ?? []), attempt]);
    if (!(started.get(task) ?? []).includes(attempt)) {
      p(`task ${task} attempt ${attempt} ran but its task_started was never committed`);
    }
  }
  for (const [task, wins] of succeeded) {
    const win = wins[0] as number;
    const ran = ranAttempts.get(task) ?? [];
    const after = ran.filter((a) => a > win);
    if (after.length > 0) p(`task ${task} ran again (attempts ${after.join(', ')}) after its attempt ${win} succeeded`);
    if (!ran.includes(win)) p(`task ${task} succeeded with attempt ${win}, which the journal never saw run`);
  }
  return { state: run.state, tasks: states, bodies: lines.length, lostAttempts };
}

// --- the test -------------------------------------------------------------------------

describe('crash test', () => {
  it('survives 100+ SIGKILLs at random instants and at every crash point', async () => {
    const seed = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : randomInt(1, 2 ** 31);
    if (!Number.isSafeInteger(seed)) throw new Error(`CRASH_SEED must be an integer, got "${process.env.CRASH_SEED}"`);
    const tag = `[crash seed ${seed}; rerun with CRASH_SEED=${seed}, add CRASH_KEEP=1 to keep the files]`;
    const fail = (m: string): never => {
      throw new Error(`${tag} ${m}`);
    };
    console.log(`crash test: seed ${seed}`);
    const rng = seededRandom(seed);
    const began = Date.now();

    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
      execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    }

    const dir = mkdtempSync(join(tmpdir(), 'baton-crash-'));
    const live = new Set<ChildProcess>();
    const modulesLink = join(dir, 'app', 'node_modules');
    try {
      await crashTest({ seed, rng, dir, live, modulesLink, began, tag, fail });
    } finally {
      for (const child of live) child.kill('SIGKILL');
      // Unlink first: the link points at the project's own node_modules.
      rmSync(modulesLink, { force: true });
      if (process.env.CRASH_KEEP === '1') console.log(`crash test: kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

interface CrashTestSetup {
  readonly seed: number;
  readonly rng: Rng;
  /** The temp folder: flow, journals, database, CLI snapshot. */
  readonly dir: string;
  /** Child processes not yet exited (killed if the test fails). */
  readonly live: Set<ChildProcess>;
  /** Where the CLI snapshot links the project's node_modules. */
  readonly modulesLink: string;
  readonly began: number;
  /** Names the seed; starts every failure message. */
  readonly tag: string;
  readonly fail: (message: string) => never;
}

/** The body of the test: generate, run with kills, check. Throws (with the seed) on failure. */
async function crashTest({ seed, rng, dir, live, modulesLink, began, tag, fail }: CrashTestSetup): Promise<void> {
  const journals = join(dir, 'journal');
  mkdirSync(journals);
  const env: NodeJS.ProcessEnv = { ...process.env, CRASH_JOURNAL_DIR: journals };
  for (const key of ['BATON_CRASH_AT', 'BATON_DATABASE', 'BATON_CONCURRENCY', 'BATON_JSON_ERRORS']) delete env[key];
  // A snapshot of the built CLI: in a shared checkout another `npm run build` may rewrite
  // dist/ while this test runs, and a process that imports a half-written module fails.
  const app = join(dir, 'app');
  cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), modulesLink, 'dir');
  const h: Harness = { bin: join(app, 'bin', 'baton.js'), dir, db: join(dir, 'baton.db'), env, live };

  const planned = planFlow(rng);
  const flowPath = join(dir, 'flow.yaml');
  writeFileSync(flowPath, flowYaml(planned));
  copyFileSync(TASKS_MODULE, join(dir, 'tasks.mjs'));

  const stats = {
    restarts: 0,
    randomKills: 0,
    finishingResumes: 0,
    /** Per run: random kills it took, and which process ended it. */
    perRun: [] as string[],
    crashKills: Object.fromEntries(CRASH_POINTS.map((c) => [c, 0])) as Record<CrashPoint, number>,
    crashTries: Object.fromEntries(CRASH_POINTS.map((c) => [c, 0])) as Record<CrashPoint, number>,
  };
  const overBudget = (): string | undefined => {
    if (stats.restarts >= MAX_RESTARTS) return `${stats.restarts} restarts (limit ${MAX_RESTARTS})`;
    if (Date.now() - began > BUDGET_MS)
      return `${Math.round((Date.now() - began) / 1000)} s (limit ${BUDGET_MS / 1000} s)`;
    return undefined;
  };
  const pendingPoints = (): CrashPoint[] => CRASH_POINTS.filter((c) => stats.crashKills[c] < CRASH_POINT_TARGET);
  const crashCount = (point: CrashPoint): number => {
    switch (point) {
      case 'after_claim':
        return 1; // one claim per `resume` process
      case 'after_body':
        return between(rng, 1, 6);
      case 'mid_commit':
        return between(rng, 1, 5);
      case 'retry_timer':
        return between(rng, 1, 3);
    }
  };
  /** A process that was not killed must have ended the run: exit 0 or 1 and the final run on stdout. */
  const expectFinished = (e: Exit, what: string): void => {
    let shown: ShownRun | undefined;
    try {
      shown = parseShown(e.stdout);
    } catch {
      shown = undefined;
    }
    const state = shown?.state ?? 'unknown';
    if (e.signal !== null || !FINAL_RUN_EVENTS[state] || e.code !== (state === 'succeeded' ? 0 : 1)) {
      fail(`${what} exited without ending the run: ${describeExit(e)}`);
    }
  };

  /**
   * How long a `baton resume` takes here from spawn to its first body (node start, flow
   * load, claim, fold, first commit): the median of recent processes. On a loaded machine
   * this exceeds 400 ms, and kills drawn only from 30-400 ms would all land before the
   * process does anything; so most kill delays are drawn after it.
   */
  const startupSamples: number[] = [];
  const startupEstimate = (): number => {
    const recent = startupSamples.slice(-9).sort((x, y) => x - y);
    return recent[Math.floor(recent.length / 2)] ?? 200;
  };
  const killDelays: number[] = [];
  let midFlightKills = 0;
  const journalOf = (runId: string) => join(journals, `${runId}.journal`);
  const resume = async (runId: string, options: { killAfterMs?: number; crashAt?: string }): Promise<Exit> => {
    stats.restarts++;
    const e = await baton(h, ['resume', runId, '--quiet', '--json'], {
      timeoutMs: 30_000,
      watch: journalOf(runId),
      ...(options.killAfterMs === undefined ? {} : { killAfterMs: options.killAfterMs }),
      ...(options.crashAt === undefined ? {} : { env: { BATON_CRASH_AT: options.crashAt } }),
    });
    if (e.firstBodyMs !== undefined) startupSamples.push(e.firstBodyMs);
    return e;
  };
  const enqueue = async (): Promise<string> => {
    const created = await baton(h, ['run', flowPath, '--enqueue'], { timeoutMs: 30_000 });
    if (created.code !== 0) fail(`baton run --enqueue failed: ${describeExit(created)}`);
    return created.stdout.trim();
  };

  /** Drives one queued run to its end through killed and crashing processes. */
  const driveWithKills = async (runId: string): Promise<void> => {
    let randomKillsOfRun = 0;
    const ended = (how: string) => stats.perRun.push(`${randomKillsOfRun} (${how})`);
    for (let j = 0; ; j++) {
      const over = overBudget();
      if (over) fail(`run ${runId} is still unfinished after ${over}; ${JSON.stringify(stats)}`);
      const pending = pendingPoints();
      if (pending.length > 0 && (j === 0 || rng() < 0.15)) {
        const point = pickOne(rng, pending);
        const crashAt = `${point}:${crashCount(point)}`;
        stats.crashTries[point]++;
        const e = await resume(runId, { crashAt });
        if (e.signal === 'SIGKILL' && !e.timedOut) {
          stats.crashKills[point]++;
          continue;
        }
        // The run may end before the point is passed n times; then it is tried again later.
        expectFinished(e, `resume with BATON_CRASH_AT=${crashAt}`);
        ended(crashAt);
        return;
      }
      if (randomKillsOfRun < RANDOM_KILLS_PER_RUN) {
        const [lo, hi] = KILL_DELAY_MS;
        const delay =
          rng() < EARLY_KILL_SHARE ? between(rng, lo, hi) : startupEstimate() + between(rng, 0, AFTER_STARTUP_MS);
        const e = await resume(runId, { killAfterMs: delay });
        if (e.signal === 'SIGKILL' && !e.timedOut) {
          stats.randomKills++;
          randomKillsOfRun++;
          killDelays.push(delay);
          if (e.firstBodyMs !== undefined) midFlightKills++;
          continue;
        }
        expectFinished(e, `resume (to be killed after ${delay} ms)`);
        ended(`before its kill at ${delay} ms`);
        return;
      }
      stats.finishingResumes++;
      expectFinished(await resume(runId, {}), 'finishing resume');
      ended('without kill');
      return;
    }
  };

  // The reference: the same flow, run once without kills.
  const refStart = Date.now();
  const refId = await enqueue();
  const refExit = await resume(refId, {});
  expectFinished(refExit, 'the reference run');
  const reference = parseShown(refExit.stdout);
  const refMs = Date.now() - refStart;

  const runs: string[] = [];
  // On a loaded machine more kills land before a body began: runs go on until enough did not.
  while (stats.randomKills < MIN_RANDOM_KILLS || midFlightKills < MIN_MID_FLIGHT_KILLS || pendingPoints().length > 0) {
    if (runs.length >= MAX_RUNS) {
      fail(
        `${MAX_RUNS} runs were not enough for ${MIN_RANDOM_KILLS} kills (${MIN_MID_FLIGHT_KILLS} after a body began) and every crash point: ${JSON.stringify(stats)}`,
      );
    }
    const runId = await enqueue();
    runs.push(runId);
    await driveWithKills(runId);
  }

  // Every check reads the file as it is on disk, read-only, with no baton process alive.
  const problems: string[] = [];
  const db = new Database(h.db, { readonly: true, fileMustExist: true });
  let bodies = 0;
  let lostAttempts = 0;
  try {
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') problems.push(`PRAGMA integrity_check returned ${String(integrity)}`);
    const ref = checkRun(db, journalOf(reference.id), reference.id, planned.length, problems);
    if (ref.state !== reference.state)
      problems.push(`reference run: baton printed ${reference.state}, the database says ${ref.state}`);
    for (const runId of runs) {
      const facts = checkRun(db, journalOf(runId), runId, planned.length, problems);
      bodies += facts.bodies;
      lostAttempts += facts.lostAttempts;
      if (facts.state !== ref.state)
        problems.push(`run ${runId} ended ${facts.state}; the reference run ended ${ref.state}`);
      const differ = planned
        .filter((t) => facts.tasks.get(t.id) !== ref.tasks.get(t.id))
        .map((t) => `${t.id}: ${facts.tasks.get(t.id)} (reference ${ref.tasks.get(t.id)})`);
      if (differ.length > 0)
        problems.push(`run ${runId}: task outcomes differ from the reference: ${differ.join('; ')}`);

      const shownExit = await baton(h, ['show', runId, '--json'], { timeoutMs: 30_000 });
      if (shownExit.code !== 0) {
        problems.push(`baton show ${runId} --json failed: ${describeExit(shownExit)}`);
        continue;
      }
      const shown = parseShown(shownExit.stdout);
      if (shown.state !== facts.state)
        problems.push(`run ${runId}: baton show says ${shown.state}, the database ${facts.state}`);
      for (const t of shown.tasks) {
        if (!FINAL_TASK_STATES.has(t.state)) problems.push(`run ${runId}: baton show lists ${t.id} as ${t.state}`);
        if (t.state !== facts.tasks.get(t.id)) {
          problems.push(`run ${runId}: baton show says ${t.id} is ${t.state}, the database ${facts.tasks.get(t.id)}`);
        }
      }
      if (shown.tasks.length !== planned.length)
        problems.push(`run ${runId}: baton show lists ${shown.tasks.length} tasks`);
    }
    const outcome = [...ref.tasks.values()].reduce<Record<string, number>>(
      (acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }),
      {},
    );
    console.log(
      [
        `crash test summary (seed ${seed})`,
        `  flow: ${planned.length} tasks, depth ${depthOf(planned)}; reference run ${reference.state} in ${refMs} ms: ${JSON.stringify(outcome)}`,
        `  runs with kills: ${runs.length}; resume processes: ${stats.restarts} (with the reference run)`,
        `  random kills per run (and what ended it): ${stats.perRun.join(', ')}`,
        `  random SIGKILLs: ${stats.randomKills} (${midFlightKills} after the process began a body); finishing resumes: ${stats.finishingResumes}`,
        `  kill delays: ${describeDelays(killDelays)}; startup to first body: ${describeDelays(startupSamples)}`,
        `  crash points (kills/tries): ${CRASH_POINTS.map((c) => `${c} ${stats.crashKills[c]}/${stats.crashTries[c]}`).join(', ')}`,
        `  bodies run: ${bodies} (reference ${ref.bodies}); attempts lost with a process: ${lostAttempts}`,
        `  elapsed: ${((Date.now() - began) / 1000).toFixed(1)} s`,
      ].join('\n'),
    );
  } finally {
    db.close();
  }

  expect(problems.slice(0, 40), `${tag} ${problems.length} problem(s), the first 40 shown`).toEqual([]);
  expect(stats.randomKills, tag).toBeGreaterThanOrEqual(MIN_RANDOM_KILLS);
  expect(midFlightKills, `${tag} kills after a body began`).toBeGreaterThanOrEqual(MIN_MID_FLIGHT_KILLS);
  for (const c of CRASH_POINTS) expect(stats.crashKills[c], `${tag} kills at ${c}`).toBeGreaterThanOrEqual(1);
}
