/**
 * Failures and output of any size cost a bounded amount, through the real binary: a
 * thrown message of megabytes is recorded cut (limits.error_bytes) with a marker, on
 * SQLite and from a worker on PostgreSQL; a stdout line of 50 MB is read in constant
 * memory, cut in the log (limits.log_line_bytes) and refused as an output; values JSON
 * would drop or mangle fail the attempt; a thrown non-Error keeps its fields.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { BatonProcess, CliResult, ShowJson } from './cli-helpers.js';
import { baton, describeResult, parseJson, startBaton, useTempDirs, waitFor } from './cli-helpers.js';

const temp = useTempDirs();
const MIB = 1024 * 1024;

/** The error of a task in `show --json`, with the fields these tests read. */
interface ErrorJson {
  readonly code: string;
  readonly message: string;
  readonly stack?: string;
  readonly details?: Record<string, unknown>;
}

const TASKS_MODULE = `export function huge() {
  throw new Error('x'.repeat(20 * 1024 * 1024));
}

export function large() {
  throw new Error('y'.repeat(100 * 1024));
}

export function returnsFunction() {
  return () => 1;
}

export function holdsFunction() {
  return { rows: [1, 2], format: () => 'csv' };
}

export function logsLong(ctx) {
  ctx.log.info('z'.repeat(1024 * 1024));
  return 'ok';
}

export function throwsObject() {
  throw { code: 42, why: 'x' };
}
`;

/** A project folder (store in `.baton/`) with the tasks module and one flow per entry. */
function project(flows: Record<string, string>, config = ''): string {
  const dir = temp.mkdir('baton-e2e-bounded-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'tasks.mjs'), TASKS_MODULE);
  if (config !== '') writeFileSync(join(dir, 'baton.yaml'), config);
  for (const [name, text] of Object.entries(flows)) writeFileSync(join(dir, 'flows', `${name}.yaml`), text);
  return dir;
}

/** A flow of one function task `t` running an export of tasks.mjs. */
function functionFlow(name: string, exported: string, extra = ''): string {
  return `name: ${name}\ntasks:\n  t:\n    kind: function\n    module: ../tasks.mjs\n    export: ${exported}\n${extra}`;
}

/** A flow of one shell task `t` running `script` with sh. */
function shellFlow(name: string, script: string): string {
  return `name: ${name}\ntasks:\n  t:\n    kind: shell\n    command: ${JSON.stringify(['sh', '-c', script])}\n`;
}

/** Bytes of every file under `dir` (the store's database, its journal and WAL). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

/** The id in `baton: run <id> of <flow> ... created`. */
function createdRun(result: CliResult): string {
  const match = /baton: run (\S+) of /.exec(result.stderr);
  if (!match) throw new Error(`no run created\n${describeResult(result)}`);
  return match[1] as string;
}

async function show(cwd: string, runId: string, env: Record<string, string> = {}): Promise<ShowJson> {
  const result = await baton(['show', runId, '--json'], { cwd, env });
  expect(result.code, describeResult(result)).toBe(0);
  return parseJson<ShowJson>(result);
}

function errorOf(run: ShowJson): ErrorJson {
  const error = run.tasks.find((t) => t.id === 't')?.error;
  if (!error) throw new Error(`task t of run ${run.id} has no error`);
  return error as ErrorJson;
}

/**
 * The peak resident memory (VmHWM) of a process, read from /proc every 20 ms until
 * `stop()`: the mark only grows, so the last read before the process exits holds its peak.
 */
function watchPeakMemory(pid: number): { stop(): number } {
  let peak = 0;
  const read = () => {
    try {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) peak = Math.max(peak, Number(match[1]) * 1024);
    } catch {
      // The process is gone: the last value read stands.
    }
  };
  read();
  const timer = setInterval(read, 20);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

const MESSAGE_MARKER = /… \[message truncated: (\d+) bytes, at most the first (\d+) kept \(limits\.error_bytes\)\]$/;

describe('a thrown message of megabytes', () => {
  it('is recorded cut to 64 KiB with a marker, each of 2 attempts, and the store grows by less than 4 MB', async () => {
    const cwd = project({
      ok: shellFlow('ok', 'echo ready'),
      huge: functionFlow('huge', 'huge', '    retry: { max_attempts: 2, backoff: 0s }\n'),
    });
    // The store exists, migrated, before the measure starts.
    const first = await baton(['run', 'ok'], { cwd });
    expect(first.code, describeResult(first)).toBe(0);
    const before = folderBytes(join(cwd, '.baton'));

    const run = await baton(['run', 'huge'], { cwd, timeoutMs: 60_000 });
    expect(run.code, describeResult(run)).toBe(1);
    const shown = await show(cwd, createdRun(run));
    expect(shown.tasks[0]?.attempts).toBe(2);
    const error = errorOf(shown);
    expect(error.code).toBe('TASK_FAILED');
    expect(error.message).toMatch(MESSAGE_MARKER);
    expect(MESSAGE_MARKER.exec(error.message)?.slice(1)).toEqual([String(20 * MIB), '65536']);
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(64 * 1024);
    expect(error.message.startsWith('xxxxxxxx')).toBe(true);
    // The stack keeps the head of the message and the user's frame, not 20 MB.
    expect(Buffer.byteLength(error.stack ?? '')).toBeLessThan(4096);
    expect(error.stack).toMatch(/\n {4}at huge \(.*tasks\.mjs:2:\d+\)/);

    const grown = folderBytes(join(cwd, '.baton')) - before;
    expect(grown).toBeLessThan(4 * MIB);
  });

  it('is cut at limits.error_bytes from baton.yaml', async () => {
    const cwd = project({ large: functionFlow('large', 'large') }, 'limits:\n  error_bytes: 4096\n');
    const run = await baton(['run', 'large'], { cwd });
    expect(run.code, describeResult(run)).toBe(1);
    const error = errorOf(await show(cwd, createdRun(run)));
    expect(MESSAGE_MARKER.exec(error.message)?.slice(1)).toEqual([String(100 * 1024), '4096']);
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(error.message)).toBeGreaterThan(3900);
  });

  it('refuses a limits.error_bytes too small for the marker, naming the key', async () => {
    const cwd = project({ large: functionFlow('large', 'large') }, 'limits:\n  error_bytes: 100\n');
    const run = await baton(['run', 'large'], { cwd });
    expect(run.code, describeResult(run)).toBe(2);
    expect(run.stderr).toMatch(/limits\.error_bytes/);
  });
});

describe('a stdout line of 50 MB', () => {
  const FIFTY_MB_LINE = `head -c ${50 * MIB} /dev/zero | tr '\\000' y`;

  // Peak memory is read from /proc, which only Linux has.
  it.runIf(process.platform === 'linux')(
    'as the last line, fails TASK_OUTPUT_TOO_LARGE in bounded time and memory, the log keeping 64 KiB of it',
    async () => {
      const cwd = project({ line: shellFlow('line', FIFTY_MB_LINE) });
      const started = Date.now();
      const proc: BatonProcess = startBaton(['run', 'line'], { cwd, timeoutMs: 60_000 });
      const memory = watchPeakMemory(proc.pid);
      const run = await proc.done;
      const peak = memory.stop();
      const elapsed = Date.now() - started;
      expect(run.code, describeResult(run)).toBe(1);
      expect(elapsed).toBeLessThan(20_000);
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThan(300 * MIB);

      const runId = createdRun(run);
      const error = errorOf(await show(cwd, runId));
      expect(error.code).toBe('TASK_OUTPUT_TOO_LARGE');
      expect(error.message).toBe(
        `task t: the last line of stdout, its output (${50 * MIB} bytes) is over the limit output_bytes (256 KiB)`,
      );

      const logs = await baton(['logs', runId, '--json'], { cwd });
      expect(logs.code, describeResult(logs)).toBe(0);
      const lines = logs.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { stream?: string; text?: string });
      const stdout = lines.filter((l) => l.stream === 'stdout');
      expect(stdout).toHaveLength(1);
      const text = stdout[0]?.text ?? '';
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(64 * 1024);
      expect(text).toMatch(
        new RegExp(
          `^y+ … \\[line truncated: ${50 * MIB} bytes, at most the first 65536 kept \\(limits\\.log_line_bytes\\)\\]$`,
        ),
      );
    },
    60_000,
  );

  it('before a short last line, is cut in the log and the short line is the output', async () => {
    const cwd = project({ line: shellFlow('line', `${FIFTY_MB_LINE}; echo; echo done`) });
    const run = await baton(['run', 'line', '--json'], { cwd, timeoutMs: 60_000 });
    expect(run.code, describeResult(run)).toBe(0);
    const shown = parseJson<ShowJson>(run);
    expect(shown.tasks[0]?.output).toBe('done');
  });
});

describe("a line of a function task's log of 1 MiB", () => {
  it('is kept cut at 64 KiB with a marker', async () => {
    const cwd = project({ logs: functionFlow('logs', 'logsLong') });
    const run = await baton(['run', 'logs'], { cwd });
    expect(run.code, describeResult(run)).toBe(0);
    const logs = await baton(['logs', createdRun(run), '--json'], { cwd });
    expect(logs.code, describeResult(logs)).toBe(0);
    const [line] = logs.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { text?: string });
    expect(Buffer.byteLength(line?.text ?? '')).toBeLessThanOrEqual(64 * 1024);
    expect(line?.text).toMatch(
      /^z+ … \[line truncated: 1048576 bytes, at most the first 65536 kept \(limits\.log_line_bytes\)\]$/,
    );
  });
});

describe('what JSON cannot hold', () => {
  it('a function returned, or anywhere in the output, fails TASK_OUTPUT_INVALID naming where', async () => {
    const cwd = project({
      whole: functionFlow('whole', 'returnsFunction'),
      inside: functionFlow('inside', 'holdsFunction'),
    });
    const whole = await baton(['run', 'whole', '--json'], { cwd });
    expect(whole.code, describeResult(whole)).toBe(1);
    expect(errorOf(parseJson<ShowJson>(whole))).toMatchObject({
      code: 'TASK_OUTPUT_INVALID',
      message: 'task t returned a function, not JSON',
    });
    const inside = await baton(['run', 'inside', '--json'], { cwd });
    expect(inside.code, describeResult(inside)).toBe(1);
    const shown = parseJson<ShowJson>(inside);
    expect(shown.tasks[0]?.output ?? null).toBeNull();
    expect(errorOf(shown)).toMatchObject({
      code: 'TASK_OUTPUT_INVALID',
      message: 'task t returned a value that is not JSON: output.format is a function',
    });
  });

  it('a thrown non-Error object keeps its code as a string and its other fields as details', async () => {
    const cwd = project({ thrown: functionFlow('thrown', 'throwsObject') });
    const run = await baton(['run', 'thrown', '--json'], { cwd });
    expect(run.code, describeResult(run)).toBe(1);
    expect(errorOf(parseJson<ShowJson>(run))).toEqual({
      code: '42',
      message: 'the task threw a non-Error value: {"code":42,"why":"x"}',
      source: 'user',
      details: { why: 'x' },
    });
  });
});

describe('on PostgreSQL, from a worker', () => {
  const drops: (() => Promise<void>)[] = [];
  const procs: BatonProcess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.kill('SIGKILL');
      await p.done.catch(() => undefined);
    }
    for (const drop of drops.splice(0)) await drop();
  });

  it('a thrown message of megabytes reaches the scheduler and the store cut, each of 2 attempts', async () => {
    const db = await createTestDatabase();
    drops.push(db.drop);
    const cwd = project(
      { huge: functionFlow('huge', 'huge', '    retry: { max_attempts: 2, backoff: 0s }\n') },
      'lease: 2s\n',
    );
    const env = { BATON_DATABASE_URL: db.url };
    const migrated = await baton(['db', 'migrate'], { cwd, env });
    expect(migrated.code, describeResult(migrated)).toBe(0);
    const queued = await baton(['run', 'huge'], { cwd, env });
    expect(queued.code, describeResult(queued)).toBe(0);
    const runId = queued.stdout.trim();

    const scheduler = startBaton(['scheduler'], { cwd, env, timeoutMs: 90_000 });
    const worker = startBaton(['worker'], { cwd, env, timeoutMs: 90_000 });
    procs.push(scheduler, worker);
    const workerMemory = watchPeakMemory(worker.pid);
    const shown = await waitFor(
      async () => {
        const run = await show(cwd, runId, env);
        return run.state === 'failed' ? run : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `run ${runId} to fail` },
    );
    const workerPeak = workerMemory.stop();
    expect(shown.tasks[0]?.attempts).toBe(2);
    const error = errorOf(shown);
    expect(MESSAGE_MARKER.exec(error.message)?.slice(1)).toEqual([String(20 * MIB), '65536']);
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(64 * 1024);
    if (process.platform === 'linux') expect(workerPeak).toBeLessThan(300 * MIB);

    for (const p of [scheduler, worker]) p.kill('SIGTERM');
    for (const p of [scheduler, worker]) expect((await p.done).code).toBe(0);
  }, 120_000);
});
