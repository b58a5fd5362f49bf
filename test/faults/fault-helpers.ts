/**
 * Shared setup of the fault tests (test/faults): a snapshot of the built CLI, `baton`
 * scheduler and worker processes as real OS processes on one PostgreSQL database, the
 * server's controls, a flow generator, and the invariant checks that every fault test runs
 * on the database and the task journal at its end.
 *
 * Invariants kept here rather than in every test
 * - Every spawned process is tracked; `Cluster.shutdown` (SIGTERM, then SIGKILL after a
 *   bound) and `killStray` end them, so a failing test leaves nothing running.
 * - Every wait is bounded in time and in number of checks (`waitUntil`).
 * - Children get the parent's environment minus `BATON_*`, plus what the test sets.
 * - The CLI is spawned from a copy of bin/, dist/ and package.json: other engineers
 *   rebuild dist/ in the shared checkout while these tests run.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The function task of these tests: see test/fixtures/faults/tasks.mjs. */
export const FAULT_TASKS = join(REPO_ROOT, 'test', 'fixtures', 'faults', 'tasks.mjs');

// --- a snapshot of the CLI ------------------------------------------------------------

export interface Workspace {
  /** The temp folder: CLI copy, projects, flows, journals. */
  readonly dir: string;
  /** Absolute path of the copied bin/baton.js. */
  readonly bin: string;
  /** Removes the folder (the node_modules link first). Keeps it when FAULTS_KEEP=1. */
  remove(): void;
}

/** A temp folder with a copy of the built CLI (`npm run build` runs if dist/ is missing). */
export function createWorkspace(prefix: string): Workspace {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const app = join(dir, 'app');
  cpSync(join(REPO_ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  copyFileSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
  const modulesLink = join(app, 'node_modules');
  symlinkSync(join(REPO_ROOT, 'node_modules'), modulesLink, 'dir');
  return {
    dir,
    bin: join(app, 'bin', 'baton.js'),
    remove() {
      // Unlink first: the link points at the project's own node_modules.
      rmSync(modulesLink, { force: true });
      if (process.env.FAULTS_KEEP === '1') console.log(`fault test: kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A project folder holding `baton.yaml` with the given text; returns its path. */
export function writeProject(parent: string, name: string, yaml: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'baton.yaml'), yaml);
  return dir;
}

function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
  return { ...env, ...extra };
}

// --- processes ------------------------------------------------------------------------

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One OS process running `baton <args>`. */
export interface Proc {
  readonly pid: number;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Settles when the process has exited and its pipes are drained. */
  readonly exited: Promise<Exit>;
  readonly startedAt: number;
  exit: Exit | null;
}

const stray = new Set<Proc>();

export function spawnBaton(
  bin: string,
  args: readonly string[],
  o: { cwd: string; env: Readonly<Record<string, string>> },
): Proc {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: o.cwd,
    env: childEnv(o.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`cannot spawn baton ${args.join(' ')}`);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const proc: Proc = {
    pid: child.pid,
    child,
    stdout: () => out,
    stderr: () => err,
    startedAt: Date.now(),
    exit: null,
    exited: new Promise<Exit>((resolveExit) => {
      child.on('close', (code, signal) => {
        proc.exit = { code, signal };
        stray.delete(proc);
        resolveExit({ code, signal });
      });
    }),
  };
  stray.add(proc);
  return proc;
}

export interface CliResult extends Exit {
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** We killed it (SIGKILL) at its deadline. */
  readonly timedOut: boolean;
}

/** Runs `baton <args>` to its end, SIGKILLing it after `timeoutMs`. */
export async function runBaton(
  bin: string,
  args: readonly string[],
  o: { cwd: string; env: Readonly<Record<string, string>>; timeoutMs: number },
): Promise<CliResult> {
  const p = spawnBaton(bin, args, o);
  let timedOut = false;
  const guard = setTimeout(() => {
    timedOut = true;
    p.child.kill('SIGKILL');
  }, o.timeoutMs);
  const exit = await p.exited;
  clearTimeout(guard);
  return { ...exit, stdout: p.stdout(), stderr: p.stderr(), ms: Date.now() - p.startedAt, timedOut };
}

export function describeCli(r: CliResult): string {
  const tail = (s: string) => (s.length > 3000 ? `…${s.slice(-3000)}` : s);
  return `exit ${r.code ?? r.signal} after ${r.ms} ms${r.timedOut ? ' (killed at its deadline)' : ''}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`;
}

/** SIGKILLs every process spawned here that is still alive; waits for them (bounded). */
export async function killStray(): Promise<number> {
  const left = [...stray];
  for (const p of left) p.child.kill('SIGKILL');
  await Promise.race([Promise.allSettled(left.map((p) => p.exited)), sleep(5000)]);
  return left.length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Checks `probe` until it returns something other than undefined; fails after
 * `timeoutMs` or after `timeoutMs / intervalMs + 1` checks, whichever comes first.
 */
export async function waitUntil<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  o: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<T> {
  const interval = o.intervalMs ?? 100;
  const maxChecks = Math.ceil(o.timeoutMs / interval) + 1;
  const deadline = Date.now() + o.timeoutMs;
  for (let i = 0; i < maxChecks && Date.now() <= deadline; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(interval);
  }
  throw new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what}`);
}

export type Role = 'scheduler' | 'worker';

/** How a member ended at `Cluster.shutdown`. */
export interface Stopped {
  readonly member: string;
  readonly exit: Exit;
  /** From SIGTERM to its exit (0 if it had already exited). */
  readonly ms: number;
  /** Empty for an exit 0; else who it was, how it ended and its last stderr. */
  readonly detail: string;
}

/** A named scheduler or worker: one process at a time, restartable; stderr kept across restarts. */
export interface Member {
  readonly name: string;
  readonly role: Role;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  proc: Proc;
  /** stderr of earlier incarnations, then of the current one via `stderrAll`. */
  readonly pastStderr: string[];
  /** Exits we did not cause (a crash): described, for the report. */
  readonly unexpectedExits: string[];
  /** We are about to signal it: its exit is expected. */
  expectingExit: boolean;
  starts: number;
}

export function stderrAll(m: Member): string {
  return [...m.pastStderr, m.proc.stderr()].join('');
}

/** A set of scheduler and worker processes on one database. */
export class Cluster {
  readonly members: Member[] = [];

  constructor(
    private readonly bin: string,
    private readonly databaseUrl: string,
  ) {}

  /** Starts `baton <role>` in `cwd` (its own project folder) and returns the member. */
  add(name: string, role: Role, cwd: string, o: { env?: Record<string, string>; args?: string[] } = {}): Member {
    const env = { BATON_DATABASE_URL: this.databaseUrl, ...o.env };
    const args = o.args ?? [];
    const m: Member = {
      name,
      role,
      cwd,
      env,
      args,
      proc: this.spawn(role, cwd, env, args),
      pastStderr: [],
      unexpectedExits: [],
      expectingExit: false,
      starts: 1,
    };
    this.watch(m);
    this.members.push(m);
    return m;
  }

  private spawn(role: Role, cwd: string, env: Readonly<Record<string, string>>, args: readonly string[]): Proc {
    return spawnBaton(this.bin, [role, ...args], { cwd, env });
  }

  private watch(m: Member): void {
    const proc = m.proc;
    void proc.exited.then((e) => {
      if (m.proc === proc && !m.expectingExit) {
        m.unexpectedExits.push(
          `${m.name} (pid ${proc.pid}) exited by itself: code ${e.code}, signal ${e.signal}\n${proc.stderr().slice(-3000)}`,
        );
      }
    });
  }

  /**
   * Waits until the member's current process says it is up. Generous: on a machine busy
   * with other work, five Node processes starting at once take many seconds.
   */
  async ready(m: Member, timeoutMs = 60_000): Promise<void> {
    const marker = m.role === 'worker' ? 'executing tasks' : 'baton scheduler: started';
    await waitUntil(() => (m.proc.stderr().includes(marker) ? true : m.proc.exit ? false : undefined), {
      timeoutMs,
      intervalMs: 50,
      what: `${m.name} to start`,
    }).then((ok) => {
      if (!ok) throw new Error(`${m.name} exited while starting:\n${m.proc.stderr()}`);
    });
  }

  /** Signals the member's process and waits for it to exit (SIGKILL after `timeoutMs`). */
  async signal(m: Member, signal: NodeJS.Signals, timeoutMs = 20_000): Promise<Exit> {
    m.expectingExit = true;
    m.proc.child.kill(signal);
    const timer = setTimeout(() => m.proc.child.kill('SIGKILL'), timeoutMs);
    const exit = await m.proc.exited;
    clearTimeout(timer);
    return exit;
  }

  /** SIGKILLs the member's process and starts a new one in its place. */
  async killAndRestart(m: Member): Promise<void> {
    await this.signal(m, 'SIGKILL');
    m.pastStderr.push(m.proc.stderr());
    m.expectingExit = false;
    m.proc = this.spawn(m.role, m.cwd, m.env, m.args);
    m.starts++;
    this.watch(m);
  }

  /**
   * SIGTERM to every member (workers drain, schedulers hand over), SIGKILL after a bound.
   * A member restarted moments ago is first let start: before it installs its handlers,
   * SIGTERM would just end it. Each result says how long the member took to stop and, when
   * it did not exit 0 by itself, `detail`: what it last wrote, for the failure message.
   */
  async shutdown(timeoutMs = 20_000): Promise<Stopped[]> {
    return Promise.all(
      this.members.map(async (m): Promise<Stopped> => {
        if (!m.proc.exit) await this.ready(m).catch(() => undefined);
        const began = Date.now();
        const exit = m.proc.exit ?? (await this.signal(m, 'SIGTERM', timeoutMs));
        const ms = Date.now() - began;
        const clean = exit.code === 0 && exit.signal === null;
        // Said it stopped, yet had to be killed: a timer or socket left behind held it.
        const held =
          exit.signal === 'SIGKILL' && /: stopped\n?$/.test(m.proc.stderr()) ? ' (it had said it stopped)' : '';
        const detail = clean
          ? ''
          : `\n${m.name} (pid ${m.proc.pid}, started ${Date.now() - m.proc.startedAt} ms ago) ended ${exit.code ?? exit.signal} ${ms} ms after SIGTERM${held}; its stderr:\n${m.proc.stderr().slice(-3000)}`;
        return { member: m.name, exit, ms, detail };
      }),
    );
  }

  unexpectedExits(): string[] {
    return this.members.flatMap((m) => m.unexpectedExits);
  }
}

// --- PostgreSQL -----------------------------------------------------------------------

export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Rows of one query on a fresh connection. */
export async function pgQuery<R>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  return withPg(url, async (c) => (await c.query(text, values)).rows as R[]);
}

function cluster(): { version: string; name: string } {
  const versions = execFileSync('ls', ['/etc/postgresql'], { encoding: 'utf8' }).trim().split('\n');
  const version = versions[0];
  if (!version) throw new Error('no PostgreSQL cluster under /etc/postgresql');
  return { version, name: 'main' };
}

/** `pg_ctlcluster <version> main <action>`; returns how long it took. */
export function pgCtl(action: 'start' | 'stop' | 'restart'): number {
  const { version, name } = cluster();
  const began = Date.now();
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, action], {
    stdio: 'pipe',
    timeout: 60_000,
  });
  return Date.now() - began;
}

export function pgIsReady(): boolean {
  return spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432'], { timeout: 10_000 }).status === 0;
}

/** Starts the server if it does not answer, and waits (bounded) until it does. */
export async function ensurePgRunning(): Promise<void> {
  if (pgIsReady()) return;
  try {
    pgCtl('start');
  } catch (error) {
    console.log(`fault test: pg_ctlcluster start: ${(error as Error).message}`);
  }
  await waitUntil(() => (pgIsReady() ? true : undefined), { timeoutMs: 30_000, intervalMs: 250, what: 'PostgreSQL' });
}

// --- randomness -----------------------------------------------------------------------

/** mulberry32: small, seedable, good enough to shape a test. */
export const between = (rng: () => number, min: number, max: number): number =>
  min + Math.floor(rng() * (max - min + 1));

/** A seed from `envName`, else a random one. */
export function seedFrom(envName: string): number {
  const text = process.env[envName];
  const seed = text ? Number(text) : 1 + Math.floor(Math.random() * 2 ** 31);
  if (!Number.isSafeInteger(seed)) throw new Error(`${envName} must be an integer, got "${text}"`);
  return seed;
}

// --- flows ----------------------------------------------------------------------------

export interface FlowTask {
  readonly id: string;
  readonly dependsOn?: readonly string[];
  /** Body sleep, ms. */
  readonly ms: number;
  /** The body fails while its attempt is at most this. */
  readonly failTimes?: number;
  readonly labels?: readonly string[];
  /** e.g. { max_attempts: 3, backoff: '50ms', max_backoff: '200ms', jitter: 'none' } */
  readonly retry?: Readonly<Record<string, string | number>>;
}

/** A YAML flow of function tasks running the fault fixture, writing to `journal`. */
export function flowYaml(name: string, journal: string, tasks: readonly FlowTask[]): string {
  const lines = [`name: ${name}`, 'tasks:'];
  for (const t of tasks) {
    lines.push(
      `  ${t.id}:`,
      '    kind: function',
      `    module: ${JSON.stringify(FAULT_TASKS)}`,
      '    export: work',
      `    with: ${JSON.stringify({ journal, ms: t.ms, failTimes: t.failTimes ?? 0 })}`,
    );
    if (t.dependsOn && t.dependsOn.length > 0) lines.push(`    depends_on: ${JSON.stringify(t.dependsOn)}`);
    if (t.labels && t.labels.length > 0) lines.push(`    labels: ${JSON.stringify(t.labels)}`);
    if (t.retry) lines.push(`    retry: ${JSON.stringify(t.retry)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Fan-out/fan-in of `width + 2` tasks: `root`, `m00`…, `join`. About a quarter of the
 * middle tasks fail on their first attempt and are retried after 50-200 ms (durable
 * timers); the flow succeeds in the end.
 */
export function fanFlow(rng: () => number, width: number, msRange: readonly [number, number]): FlowTask[] {
  const retry = (): Record<string, string | number> => {
    const backoff = between(rng, 50, 200);
    return { max_attempts: 3, backoff: `${backoff}ms`, max_backoff: '200ms', jitter: 'none' };
  };
  const middle: FlowTask[] = Array.from({ length: width }, (_, i) => ({
    id: `m${String(i).padStart(2, '0')}`,
    dependsOn: ['root'],
    ms: between(rng, msRange[0], msRange[1]),
    failTimes: rng() < 0.25 ? 1 : 0,
    retry: retry(),
  }));
  return [
    { id: 'root', ms: msRange[0], failTimes: 1, retry: retry() },
    ...middle,
    { id: 'join', dependsOn: middle.map((t) => t.id), ms: msRange[0], failTimes: rng() < 0.5 ? 1 : 0, retry: retry() },
  ];
}

/** A project for a fan-out flow on one database: its client folder, the flow file, the journal its bodies write. */
export function fanProject(
  base: string,
  rng: () => number,
  options: {
    readonly width: number;
    readonly bodyMs: readonly [number, number];
    readonly leaseMs: number;
    readonly dbUrl: string;
  },
): {
  journal: string;
  config: string;
  client: string;
  tasks: FlowTask[];
  flowFile: string;
  env: Record<string, string>;
} {
  mkdirSync(base, { recursive: true });
  const journal = join(base, 'journal');
  const config = `lease: ${options.leaseMs / 1000}s\nconcurrency: 4\n`;
  const client = writeProject(base, 'client', config);
  const tasks = fanFlow(rng, options.width, options.bodyMs);
  const flowFile = join(base, 'fan.yaml');
  writeFileSync(flowFile, flowYaml('fan', journal, tasks));
  return { journal, config, client, tasks, flowFile, env: { BATON_DATABASE_URL: options.dbUrl } };
}

// --- the journal ----------------------------------------------------------------------

export interface JournalLine {
  readonly run: string;
  readonly task: string;
  readonly attempt: number;
  readonly pid: number;
}

export interface EndLine extends JournalLine {
  readonly outcome: 'done' | 'aborted';
  readonly at: number;
}

function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** Every body that began: `<run> <task> <attempt> <pid> <ms>`. */
export function readJournal(path: string): (JournalLine & { at: number })[] {
  return lines(path).map((l) => {
    const [run = '', task = '', attempt = '', pid = '', at = ''] = l.split(' ');
    return { run, task, attempt: Number(attempt), pid: Number(pid), at: Number(at) };
  });
}

/** How every body ended: `<run> <task> <attempt> <pid> <ms> done|aborted`. */
export function readEnds(journal: string): EndLine[] {
  return lines(`${journal}.ends`).map((l) => {
    const [run = '', task = '', attempt = '', pid = '', at = '', outcome = ''] = l.split(' ');
    return {
      run,
      task,
      attempt: Number(attempt),
      pid: Number(pid),
      at: Number(at),
      outcome: outcome as EndLine['outcome'],
    };
  });
}

// --- the invariants -------------------------------------------------------------------

interface EventRow {
  readonly run_id: string;
  readonly seq: number;
  readonly type: string;
  readonly at: number;
  readonly data: {
    readonly task?: string;
    readonly tasks?: readonly string[];
    readonly attempt?: number;
    readonly lost?: boolean;
    readonly dueAt?: number;
    readonly delayMs?: number;
  };
}

export interface EventFacts {
  readonly runId: string;
  readonly seq: number;
  readonly type: string;
  readonly at: number;
  readonly task: string;
  readonly attempt?: number;
  readonly dueAt?: number;
  readonly delayMs?: number;
  readonly lost?: boolean;
}

export interface Report {
  readonly problems: string[];
  readonly counts: {
    runs: number;
    tasks: number;
    successes: number;
    bodies: number;
    startedAttempts: number;
    lostAttempts: number;
    failedAttempts: number;
    retriesScheduled: number;
    retriesFired: number;
    /** Bodies that ran but whose attempt did not win (lost with a process, or failed). */
    wastedBodies: number;
    /** Smallest (tasks_queued.at - retry_scheduled.dueAt), ms: how early a retry fired (negative) or late. */
    minRetryMarginMs: number | null;
    maxRetryMarginMs: number | null;
  };
  /** Per-task event trail, for tests that look further (retry times). */
  readonly trails: ReadonlyMap<string, readonly EventFacts[]>;
}

const key = (run: string, task: string) => `${run} ${task}`;

/**
 * Checks the promises of DESIGN.md ("Durable execution") on the database and the journal
 * once every process has stopped. Every run in `runIds` must have ended `succeeded`:
 * - one task_succeeded per (run, task), every task_runs row succeeded, attempts match the
 *   history (task_started attempts are 1..n, task_runs.attempts = n);
 * - per task the history follows queued → started → (succeeded | failed → retry_scheduled
 *   → queued → … | lost → queued → …): each retry timer fired exactly once, never early;
 * - no task_queue or timers rows left, no run lease held;
 * - the journal: each attempt's body ran at most once and only after its task_started was
 *   committed; none ran with an attempt above the one that succeeded.
 */
export async function checkInvariants(
  url: string,
  o: { runIds: readonly string[]; tasksPerRun: number; journal: string; retryToleranceMs?: number },
): Promise<Report> {
  const problems: string[] = [];
  const tolerance = o.retryToleranceMs ?? 100;
  const ids = [...o.runIds];
  const { runs, taskRuns, events, queue, timers, leased } = await withPg(url, async (c) => ({
    runs: (
      await c.query<{ id: string; state: string; last_seq: string; task_count: number }>(
        'SELECT id, state, last_seq::text, task_count FROM runs WHERE id = ANY($1::text[])',
        [ids],
      )
    ).rows,
    taskRuns: (
      await c.query<{ run_id: string; task_id: string; state: string; attempts: number }>(
        'SELECT run_id, task_id, state, attempts FROM task_runs WHERE run_id = ANY($1::text[])',
        [ids],
      )
    ).rows,
    events: (
      await c.query<EventRow>(
        'SELECT run_id, seq::int AS seq, type, at::float8 AS at, data FROM events WHERE run_id = ANY($1::text[]) ORDER BY run_id, seq',
        [ids],
      )
    ).rows,
    queue: (
      await c.query<{ run_id: string; status: string; n: number }>(
        'SELECT run_id, status, count(*)::int AS n FROM task_queue GROUP BY run_id, status',
      )
    ).rows,
    timers: (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM timers')).rows[0]?.n ?? 0,
    leased: (
      await c.query<{ id: string; owner: string; left_ms: string }>(
        'SELECT id, owner, (lease_until - baton_now())::text AS left_ms FROM runs WHERE owner IS NOT NULL AND lease_until >= baton_now()',
      )
    ).rows,
  }));

  if (runs.length !== ids.length) problems.push(`${ids.length} runs expected, ${runs.length} in the runs table`);
  for (const r of runs) {
    if (r.state !== 'succeeded') problems.push(`run ${r.id} is ${r.state}, not succeeded`);
    if (r.task_count !== o.tasksPerRun) problems.push(`run ${r.id} has task_count ${r.task_count}`);
  }
  for (const q of queue) problems.push(`task_queue holds ${q.n} ${q.status} row(s) of run ${q.run_id} after the end`);
  if (timers !== 0) problems.push(`${timers} timer row(s) left after every run ended`);
  for (const l of leased)
    problems.push(`run ${l.id} is still leased by ${l.owner} for ${l.left_ms} ms after every process stopped`);

  // Events per run: gapless, one final event, last.
  const byRun = new Map<string, EventRow[]>();
  for (const e of events) byRun.set(e.run_id, [...(byRun.get(e.run_id) ?? []), e]);
  for (const r of runs) {
    const es = byRun.get(r.id) ?? [];
    es.forEach((e, i) => {
      if (e.seq !== i + 1) problems.push(`run ${r.id}: event seq ${e.seq} at position ${i + 1}`);
    });
    if (Number(r.last_seq) !== es.length) problems.push(`run ${r.id}: last_seq ${r.last_seq}, ${es.length} events`);
    const finals = es.filter((e) => ['run_succeeded', 'run_failed', 'run_cancelled'].includes(e.type));
    if (finals.length !== 1 || es.at(-1)?.type !== 'run_succeeded') {
      problems.push(`run ${r.id}: final events ${finals.map((e) => e.type).join(', ')}; last ${es.at(-1)?.type}`);
    }
  }

  // Per task: the trail of its events.
  const trails = new Map<string, EventFacts[]>();
  const push = (f: EventFacts) => trails.set(key(f.runId, f.task), [...(trails.get(key(f.runId, f.task)) ?? []), f]);
  for (const e of events) {
    const base = { runId: e.run_id, seq: e.seq, type: e.type, at: Number(e.at) };
    if (e.type === 'tasks_queued') for (const t of e.data.tasks ?? []) push({ ...base, task: t });
    else if (e.data.task !== undefined) {
      push({
        ...base,
        task: e.data.task,
        ...(e.data.attempt === undefined ? {} : { attempt: e.data.attempt }),
        ...(e.data.dueAt === undefined ? {} : { dueAt: e.data.dueAt }),
        ...(e.data.delayMs === undefined ? {} : { delayMs: e.data.delayMs }),
        ...(e.data.lost === undefined ? {} : { lost: e.data.lost }),
      });
    }
  }

  const counts = {
    runs: runs.length,
    tasks: taskRuns.length,
    successes: 0,
    bodies: 0,
    startedAttempts: 0,
    lostAttempts: 0,
    failedAttempts: 0,
    retriesScheduled: 0,
    retriesFired: 0,
    wastedBodies: 0,
    minRetryMarginMs: null as number | null,
    maxRetryMarginMs: null as number | null,
  };
  const started = new Map<string, number[]>();
  const succeededAttempt = new Map<string, number>();
  for (const [k, trail] of trails) {
    const p = (m: string) =>
      problems.push(`${k}: ${m} (trail: ${trail.map((f) => f.type + (f.attempt ? `#${f.attempt}` : '')).join(' ')})`);
    let state: 'pending' | 'queued' | 'running' | 'failed' | 'retry' | 'lost' | 'done' = 'pending';
    let due: number | null = null;
    const attempts: number[] = [];
    for (const f of trail) {
      if (state === 'done' && f.type !== 'cancel_requested') {
        p(`${f.type} after its success`);
        break;
      }
      switch (f.type) {
        case 'tasks_queued':
          if (!['pending', 'retry', 'lost'].includes(state)) p(`queued while ${state}`);
          if (state === 'retry' && due !== null) {
            counts.retriesFired++;
            const margin = f.at - due;
            counts.minRetryMarginMs = Math.min(counts.minRetryMarginMs ?? margin, margin);
            counts.maxRetryMarginMs = Math.max(counts.maxRetryMarginMs ?? margin, margin);
            if (margin < -tolerance) p(`retry fired ${-margin} ms before its due time`);
          }
          state = 'queued';
          break;
        case 'task_started':
          if (state !== 'queued') p(`started while ${state}`);
          attempts.push(f.attempt ?? -1);
          counts.startedAttempts++;
          state = 'running';
          break;
        case 'attempt_failed':
          if (state !== 'running') p(`attempt failed while ${state}`);
          if (f.lost) counts.lostAttempts++;
          else counts.failedAttempts++;
          state = f.lost ? 'lost' : 'failed';
          break;
        case 'retry_scheduled':
          if (state !== 'failed') p(`retry scheduled while ${state}`);
          counts.retriesScheduled++;
          due = f.dueAt ?? null;
          if (f.dueAt === undefined || f.delayMs === undefined || f.dueAt !== f.at + f.delayMs) {
            p(`retry_scheduled dueAt ${f.dueAt} is not at ${f.at} + delayMs ${f.delayMs}`);
          }
          state = 'retry';
          break;
        case 'task_succeeded':
          if (state !== 'running') p(`succeeded while ${state}`);
          counts.successes++;
          if (succeededAttempt.has(k)) p('a second task_succeeded');
          succeededAttempt.set(k, f.attempt ?? -1);
          if (f.attempt !== attempts.at(-1))
            p(`succeeded with attempt ${f.attempt}, the last started is ${attempts.at(-1)}`);
          state = 'done';
          break;
        default:
          p(`unexpected event ${f.type}`);
      }
    }
    if (state !== 'done') p(`ends ${state}, not succeeded`);
    if (attempts.some((a, i) => a !== i + 1)) p(`task_started attempts ${attempts.join(',')} are not 1..n`);
    started.set(k, attempts);
  }
  if (counts.retriesFired !== counts.retriesScheduled) {
    problems.push(`${counts.retriesScheduled} retries scheduled but ${counts.retriesFired} fired`);
  }

  for (const t of taskRuns) {
    const k = key(t.run_id, t.task_id);
    if (t.state !== 'succeeded') problems.push(`${k}: task run is ${t.state}`);
    const s = started.get(k) ?? [];
    if (t.attempts !== s.length)
      problems.push(`${k}: task_runs.attempts ${t.attempts}, ${s.length} task_started events`);
    if (!succeededAttempt.has(k)) problems.push(`${k}: no task_succeeded event`);
  }
  if (taskRuns.length !== ids.length * o.tasksPerRun) {
    problems.push(`${taskRuns.length} task runs, expected ${ids.length * o.tasksPerRun}`);
  }

  // The journal.
  const journal = readJournal(o.journal);
  const ran = new Set<string>();
  const idSet = new Set(ids);
  for (const j of journal) {
    if (!idSet.has(j.run)) continue;
    counts.bodies++;
    const k = key(j.run, j.task);
    const line = `${k} attempt ${j.attempt}`;
    if (ran.has(line)) problems.push(`${line}: the body ran twice (journal)`);
    ran.add(line);
    if (!(started.get(k) ?? []).includes(j.attempt))
      problems.push(`${line}: ran, but its task_started was never committed`);
    const won = succeededAttempt.get(k);
    if (won !== undefined && j.attempt > won) problems.push(`${line}: ran after attempt ${won} had succeeded`);
    if (won !== j.attempt) counts.wastedBodies++;
  }
  for (const [k, won] of succeededAttempt) {
    if (!ran.has(`${k} attempt ${won}`))
      problems.push(`${k}: attempt ${won} succeeded but the journal never saw it run`);
  }
  return { problems, counts, trails };
}

/** Sums the `<n> completion(s) refused` lines of a worker's stderr. */
export function refusedCompletions(stderr: string): number {
  let n = 0;
  for (const m of stderr.matchAll(/(\d+) completion\(s\) refused/g)) n += Number(m[1]);
  return n;
}

/** Creates `count` runs of `flow` with `baton run --enqueue`, `parallel` at a time; returns their ids. */
export async function enqueueRuns(
  bin: string,
  flow: string,
  count: number,
  o: { cwd: string; env: Readonly<Record<string, string>>; parallel?: number; gapMs?: number },
): Promise<string[]> {
  const ids: string[] = [];
  const parallel = o.parallel ?? 1;
  for (let i = 0; i < count; i += parallel) {
    const batch = Math.min(parallel, count - i);
    const results = await Promise.all(
      // A deadline for a stuck process, not a speed check: a busy machine starts a CLI slowly.
      Array.from({ length: batch }, () => runBaton(bin, ['run', flow, '--enqueue'], { ...o, timeoutMs: 90_000 })),
    );
    for (const r of results) {
      const id = r.stdout.trim();
      if (r.code !== 0 || !/^r[0-9a-z]{15}$/.test(id)) throw new Error(`baton run --enqueue failed: ${describeCli(r)}`);
      ids.push(id);
    }
    if (o.gapMs) await sleep(o.gapMs);
  }
  return ids;
}

/** Run states of the given runs. */
export async function runStates(url: string, ids: readonly string[]): Promise<Map<string, string>> {
  const rows = await pgQuery<{ id: string; state: string }>(
    url,
    'SELECT id, state FROM runs WHERE id = ANY($1::text[])',
    [[...ids]],
  );
  return new Map(rows.map((r) => [r.id, r.state]));
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
