/**
 * Shared setup of the end-to-end tests: they spawn the real `baton` binary
 * (`node bin/baton.js`, so `npm run build` must have run) in fresh temp folders and look
 * at exit codes, `--json` output and the resulting state. Nothing is mocked.
 *
 * Invariants kept here rather than in every test
 * - Every spawned process has a deadline; a process that outlives it is killed and the
 *   call fails with what it printed so far.
 * - Every temp folder made through `useTempDirs` is removed after its test.
 * - A background process still alive after its test is killed, and the test fails: a
 *   test must stop what it starts.
 * - Every wait loop is bounded in time and in number of checks (`waitFor`).
 * - Children get the parent's environment minus `BATON_*`, so a developer's own
 *   settings (BATON_DATABASE, BATON_CRASH_AT, …) cannot leak into a test.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BATON_BIN = join(REPO_ROOT, 'bin', 'baton.js');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'e2e');
/** The function task of these tests: see test/fixtures/e2e/journal-task.mjs. */
export const JOURNAL_TASK = join(FIXTURES, 'journal-task.mjs');

/** Default deadline of one CLI call, in ms. */
export const DEFAULT_TIMEOUT_MS = 20_000;

export interface CliResult {
  /** Exit code, or null when the process ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the process (SIGKILL) and fail after this many ms. Default DEFAULT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

/** A `baton` process running in the background. */
export interface BatonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Settles when the process exits; rejects if it outlives its deadline. */
  readonly done: Promise<CliResult>;
  kill(signal: NodeJS.Signals): void;
}

const live = new Set<BatonProcess>();

function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
  return { ...env, ...extra };
}

/** Starts `baton <args>` without waiting for it. */
export function startBaton(args: readonly string[], options: SpawnOptions): BatonProcess {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = spawn(process.execPath, [BATON_BIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<CliResult>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `baton ${args.join(' ')} did not exit within ${timeoutMs} ms\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
  if (child.pid === undefined) {
    // The spawn failed; `done` rejects with the reason, which the error below replaces.
    done.catch(() => undefined);
    throw new Error(`cannot spawn ${process.execPath} ${BATON_BIN}`);
  }
  const proc: BatonProcess = {
    child,
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    kill: (signal) => void child.kill(signal),
  };
  live.add(proc);
  // Settled either way; the caller sees the rejection through `done`.
  done.then(
    () => live.delete(proc),
    () => live.delete(proc),
  );
  return proc;
}

/** Runs `baton <args>` to its end. */
export function baton(args: readonly string[], options: SpawnOptions): Promise<CliResult> {
  return startBaton(args, options).done;
}

/** Parses a command's stdout as JSON; on failure the error shows both streams. */
export function parseJson<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch (error) {
    throw new Error(
      `stdout is not JSON (${(error as Error).message}); exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
}

/** A short description of a result for assertion messages. */
export function describeResult(result: CliResult): string {
  return `exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

export { waitFor, type WaitOptions } from '../helpers/wait.js';

/** True while a process with this pid exists (signal 0 probes without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** The lines of a text file, or [] while it does not exist. */
export function readLines(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** How many times each key occurs. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/**
 * Per-test temp folders: `mkdir()` makes one; all are removed after each test, and any
 * background `baton` process still alive is killed and fails the test.
 */
export function useTempDirs(): { mkdir(prefix?: string): string } {
  const dirs: string[] = [];
  afterEach(async () => {
    const leftovers = [...live];
    for (const p of leftovers) p.kill('SIGKILL');
    await Promise.allSettled(leftovers.map((p) => p.done));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    if (leftovers.length > 0) {
      throw new Error(
        `the test left ${leftovers.length} baton process(es) running (pids ${leftovers.map((p) => p.pid).join(', ')})`,
      );
    }
  });
  return {
    mkdir(prefix = 'baton-e2e-') {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
  };
}

/** A temp folder with its own database: `baton --db <dir>/baton.db <args>` run in it. */
export interface Sandbox {
  readonly dir: string;
  readonly db: string;
  /** `baton --db <db> <args>` in `dir`. */
  run(args: readonly string[], options?: Omit<SpawnOptions, 'cwd'>): Promise<CliResult>;
  start(args: readonly string[], options?: Omit<SpawnOptions, 'cwd'>): BatonProcess;
  /** Writes a file relative to `dir`; returns its absolute path. */
  write(name: string, text: string): string;
  path(name: string): string;
}

export function createSandbox(dir: string): Sandbox {
  const db = join(dir, 'baton.db');
  const path = (name: string) => resolve(dir, name);
  return {
    dir,
    db,
    path,
    run: (args, options = {}) => baton(['--db', db, ...args], { ...options, cwd: dir }),
    start: (args, options = {}) => startBaton(['--db', db, ...args], { ...options, cwd: dir }),
    write(name, text) {
      const file = path(name);
      writeFileSync(file, text);
      return file;
    },
  };
}

// --- the --json shapes the tests read -------------------------------------------------

export interface TaskError {
  readonly code: string;
  readonly message: string;
}

/** A run in `baton runs --json`. */
/** What `baton validate --json` prints: each file's problems, and with `--types` the type check. */
export interface ValidateJson {
  readonly ok: boolean;
  readonly files: readonly {
    readonly file: string;
    /** The flow's name, or null when the file has problems. */
    readonly name: string | null;
    readonly problems: readonly {
      readonly code: string;
      readonly message: string;
      readonly hint?: string;
      readonly location?: { file?: string; line?: number; column?: number; path?: string };
    }[];
  }[];
  readonly types?: {
    readonly tsconfig: string | null;
    readonly files: readonly string[];
    readonly diagnostics: readonly {
      file: string | null;
      line?: number;
      column?: number;
      code: string;
      category: string;
      message: string;
    }[];
  };
}

export interface RunJson {
  readonly id: string;
  readonly flow: string;
  readonly version: string;
  readonly state: string;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly ended_at: string | null;
  readonly params: Record<string, unknown>;
  readonly error: TaskError | null;
}

/** A task run in `baton show --json`. */
export interface TaskJson {
  readonly id: string;
  readonly state: string;
  readonly attempts: number;
  readonly started_at: string | null;
  readonly ended_at: string | null;
  readonly duration_ms?: number | null;
  readonly skip_reason: string | null;
  readonly output: unknown;
  readonly error: TaskError | null;
}

export interface EventJson {
  readonly seq: number;
  readonly type: string;
  readonly task?: string;
  readonly [key: string]: unknown;
}

/** `baton show <run> --json [--events]`. */
export interface ShowJson extends RunJson {
  readonly tasks: readonly TaskJson[];
  readonly events?: readonly EventJson[];
}

/** `baton show <run> --json` (with `--events` when asked), checked for exit 0. */
export async function showRun(sandbox: Sandbox, runId: string, options: { events?: boolean } = {}): Promise<ShowJson> {
  const result = await sandbox.run(['show', runId, '--json', ...(options.events ? ['--events'] : [])]);
  if (result.code !== 0) throw new Error(`baton show ${runId} failed: ${describeResult(result)}`);
  return parseJson<ShowJson>(result);
}

/** `baton runs --json`, checked for exit 0. */
export async function listRuns(sandbox: Sandbox, extra: readonly string[] = []): Promise<RunJson[]> {
  const result = await sandbox.run(['runs', '--json', ...extra]);
  if (result.code !== 0) throw new Error(`baton runs failed: ${describeResult(result)}`);
  return parseJson<RunJson[]>(result);
}

/** The task of a `show` result by id; fails if missing. */
export function taskOf(show: ShowJson, id: string): TaskJson {
  const task = show.tasks.find((t) => t.id === id);
  if (!task) throw new Error(`run ${show.id} has no task ${id}; tasks: ${show.tasks.map((t) => t.id).join(', ')}`);
  return task;
}

// --- flow files -----------------------------------------------------------------------

export interface JournalTask {
  readonly id: string;
  readonly dependsOn?: readonly string[];
  /** Body sleep, ms. */
  readonly ms?: number;
  /** The body fails while this file does not exist. */
  readonly requires?: string;
  readonly extra?: Readonly<Record<string, string>>;
}

/**
 * A YAML flow of function tasks running the journal fixture: every body appends
 * `<task> <attempt> <run>` to `journal` first. `extra` adds raw YAML keys to a task.
 */
export function journalFlowYaml(name: string, journal: string, tasks: readonly JournalTask[]): string {
  const lines = [`name: ${name}`, 'tasks:'];
  for (const t of tasks) {
    const inputs: Record<string, unknown> = { journal, ms: t.ms ?? 0, ...(t.requires ? { requires: t.requires } : {}) };
    lines.push(
      `  ${t.id}:`,
      '    kind: function',
      `    module: ${JSON.stringify(JOURNAL_TASK)}`,
      '    export: step',
      `    with: ${JSON.stringify(inputs)}`,
    );
    if (t.dependsOn && t.dependsOn.length > 0) lines.push(`    depends_on: ${JSON.stringify(t.dependsOn)}`);
    for (const [k, v] of Object.entries(t.extra ?? {})) lines.push(`    ${k}: ${v}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The `<task> <attempt> <run>` lines of a journal, parsed. */
export function readJournal(path: string): { task: string; attempt: number; run: string }[] {
  return readLines(path).map((line) => {
    const [task, attempt, run] = line.split(' ');
    return { task: task ?? '', attempt: Number(attempt), run: run ?? '' };
  });
}
