/**
 * What a user reads while and after a run, through the real binary: task log lines as
 * they happen (and not with --quiet or --json), the stack of a thrown error (the user's
 * frames only) in `baton logs` and `show --json`, the last stderr lines of a failed
 * command in its failure, "command not found" and "not executable" in words, and the
 * progress line on a terminal (through a pseudo terminal made by `script`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { BatonProcess, CliResult, Sandbox, ShowJson, TaskJson } from './cli-helpers.js';
import {
  BATON_BIN,
  REPO_ROOT,
  baton,
  createSandbox,
  describeResult,
  parseJson,
  showRun,
  startBaton,
  useTempDirs,
} from './cli-helpers.js';

const temp = useTempDirs();

/** The error of a task in `show --json`, with the fields these tests read. */
interface ErrorJson {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
  readonly stack?: string;
  readonly details?: Record<string, unknown>;
}

/** ", exited with code N" once the process has exited, else nothing. */
function workerExit(p: BatonProcess): string {
  const { exitCode, signalCode } = p.child;
  if (exitCode !== null) return `, exited with code ${exitCode}`;
  return signalCode !== null ? `, killed by ${signalCode}` : '';
}

function errorOf(show: ShowJson, id: string): ErrorJson {
  const task = show.tasks.find((t: TaskJson) => t.id === id);
  if (!task?.error) throw new Error(`task ${id} has no error in run ${show.id}`);
  return task.error as ErrorJson;
}

/** The id in `baton: run <id> of <flow> ... created`. */
function createdRun(result: CliResult): string {
  const match = /baton: run (\S+) of /.exec(result.stderr);
  if (!match) throw new Error(`no run created\n${describeResult(result)}`);
  return match[1] as string;
}

/** The 1-based line of `needle` in `text`. */
function lineOf(text: string, needle: string): number {
  const index = text.split('\n').findIndex((l) => l.includes(needle));
  if (index < 0) throw new Error(`"${needle}" is not in the module`);
  return index + 1;
}

const TASKS_MODULE = `export async function extract(ctx) {
  ctx.log.info('reading orders');
  return 3;
}

function deep(n) {
  if (n === 0) throw new Error('boom in user code');
  return deep(n - 1);
}

export async function load(ctx) {
  ctx.log.warn('about to load');
  if (ctx.attempt === 1) deep(2);
  return 'loaded';
}

export function huge() {
  Error.stackTraceLimit = Infinity;
  const down = (n) => (n === 0 ? (() => { throw new Error('deep down'); })() : down(n - 1));
  down(3000);
}
`;

/** extract (function) → shout (shell, stdout and stderr) → load (function, throws on attempt 1). */
function pipeline(sandbox: Sandbox): { flow: string; module: string } {
  const module = sandbox.write('tasks.mjs', TASKS_MODULE);
  const flow = sandbox.write(
    'pipeline.yaml',
    [
      'name: pipeline',
      'tasks:',
      '  extract:',
      '    kind: function',
      '    module: tasks.mjs',
      '    export: extract',
      '  shout:',
      '    kind: shell',
      '    command: ["sh", "-c", "echo hello from shell; echo careful >&2"]',
      '    depends_on: [extract]',
      '  load:',
      '    kind: function',
      '    module: tasks.mjs',
      '    export: load',
      '    depends_on: [shout]',
      '',
    ].join('\n'),
  );
  return { flow, module };
}

describe('baton run shows task log lines as they happen', () => {
  it('prefixes each line with its task and attempt, between the task start and end; --quiet and --json hide them', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const { flow } = pipeline(sandbox);
    const run = await sandbox.run(['run', flow]);
    expect(run.code, describeResult(run)).toBe(1);
    const lines = run.stderr.split('\n');
    const at = (re: RegExp) => {
      const i = lines.findIndex((l) => re.test(l));
      expect(i, `${re} in\n${run.stderr}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const time = String.raw`\d\d:\d\d:\d\d\.\d{3}`;
    const extractLine = at(new RegExp(`^${time}  extract#1 \\| reading orders$`));
    expect(at(/ extract: started \(attempt 1\)$/)).toBeLessThan(extractLine);
    expect(at(/ extract: succeeded$/)).toBeGreaterThan(extractLine);
    const stdoutLine = at(new RegExp(`^${time}  shout#1 \\| hello from shell$`));
    const stderrLine = at(new RegExp(`^${time}  shout#1 ! careful$`));
    expect(at(/ shout: succeeded$/)).toBeGreaterThan(Math.max(stdoutLine, stderrLine));
    const warnLine = at(new RegExp(`^${time}  load#1 \\| WARN about to load$`));
    expect(at(/ load: attempt 1 failed: TASK_FAILED: boom in user code$/)).toBeGreaterThan(warnLine);
    // Off a terminal, no status line and no terminal control characters.
    expect(run.stderr).not.toMatch(/\r|\x1b\[/);
    expect(run.stderr).not.toContain('tasks 0/');

    for (const flag of ['--quiet', '--json']) {
      const hidden = await sandbox.run(['run', flow, flag]);
      expect(hidden.code, describeResult(hidden)).toBe(1);
      expect(hidden.stderr).not.toContain('reading orders');
      expect(hidden.stderr).not.toContain('shout#1');
      expect(hidden.stderr).not.toContain('started (attempt');
    }

    // retry drives the run the same way: the second attempt's lines carry #2.
    const retry = await sandbox.run(['retry', createdRun(run), '--from-failed']);
    expect(retry.code, describeResult(retry)).toBe(0);
    expect(retry.stderr).toMatch(new RegExp(`^${time}  load#2 \\| WARN about to load$`, 'm'));
    expect(retry.stderr).not.toContain('extract#');
  });
});

describe('a function task that throws keeps its stack', () => {
  it('prints the stack after the attempt in `baton logs` and stores it in `show --json`, with no frame of Baton', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const { flow, module } = pipeline(sandbox);
    const run = await sandbox.run(['run', flow, '--quiet']);
    expect(run.code, describeResult(run)).toBe(1);
    const runId = createdRun(run);
    const throwLine = lineOf(TASKS_MODULE, "throw new Error('boom in user code')");
    const callLine = lineOf(TASKS_MODULE, 'if (ctx.attempt === 1) deep(2);');

    const show = await showRun(sandbox, runId);
    const error = errorOf(show, 'load');
    expect(error).toMatchObject({ code: 'TASK_FAILED', message: 'boom in user code' });
    const stack = error.stack ?? '';
    expect(stack.split('\n')[0]).toBe('Error: boom in user code');
    expect(stack).toMatch(new RegExp(`at deep \\(file://${module}:${throwLine}:\\d+\\)`));
    expect(stack).toMatch(new RegExp(`at load \\(file://${module}:${callLine}:\\d+\\)`));
    for (const internal of [join(REPO_ROOT, 'dist'), join(REPO_ROOT, 'src'), 'node:internal', '?rev=']) {
      expect(stack).not.toContain(internal);
    }

    const logs = await sandbox.run(['logs', runId]);
    expect(logs.code, describeResult(logs)).toBe(0);
    const text = logs.stdout;
    const failed = text.indexOf('load#1 failed: TASK_FAILED: boom in user code');
    expect(failed, text).toBeGreaterThan(text.indexOf('load#1 WARN about to load'));
    expect(text.slice(failed)).toContain(`\n  Error: boom in user code\n      at deep (file://${module}:${throwLine}:`);
    expect(text).toContain(`at load (file://${module}:${callLine}:`);
    expect(text).not.toContain(join(REPO_ROOT, 'dist'));
    const onlyLoad = await sandbox.run(['logs', runId, 'load', '--json']);
    const entries = onlyLoad.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { task: string; attempt: number; text?: string; error?: ErrorJson });
    expect(entries.map((e) => e.text ?? e.error?.message)).toEqual(['WARN about to load', 'boom in user code']);
    expect(entries[1]?.error?.stack).toBe(stack);
  });

  it('keeps at most 64 KiB (limits.error_bytes) of a deep stack, and says it cut it', async () => {
    const sandbox = createSandbox(temp.mkdir());
    sandbox.write('tasks.mjs', TASKS_MODULE);
    const flow = sandbox.write(
      'deep.yaml',
      'name: deep\ntasks:\n  dive:\n    kind: function\n    module: tasks.mjs\n    export: huge\n',
    );
    const run = await sandbox.run(['run', flow, '--quiet']);
    expect(run.code, describeResult(run)).toBe(1);
    const stack = errorOf(await showRun(sandbox, createdRun(run)), 'dive').stack ?? '';
    expect(Buffer.byteLength(stack)).toBeLessThanOrEqual(64 * 1024);
    expect(Buffer.byteLength(stack)).toBeGreaterThan(63 * 1024);
    expect(stack.split('\n')[0]).toBe('Error: deep down');
    expect(stack).toMatch(
      /\n {4}\[stack truncated: \d+ bytes, at most the first 65536 kept \(limits\.error_bytes\)\]$/,
    );
    expect(
      stack
        .split('\n')
        .slice(1, -1)
        .every((l) => /^ {4}at .*tasks\.mjs:\d+:\d+\)?$/.test(l)),
    ).toBe(true);
  });
});

describe('a failed shell task says why', () => {
  it('puts the last 20 lines of stderr (at most 2 KiB) in its failure, and names a missing or unexecutable command', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const script = sandbox.write('noexec.sh', '#!/bin/sh\necho hi\n');
    chmodSync(script, 0o644);
    const long = 'x'.repeat(300);
    const flow = sandbox.write(
      'shells.yaml',
      [
        'name: shells',
        'tasks:',
        '  fails:',
        '    kind: shell',
        `    command: ["sh", "-c", "for i in $(seq 1 30); do echo line $i >&2; done; echo 'fatal: bad row 7' >&2; exit 3"]`,
        '  wide:',
        '    kind: shell',
        `    command: ["sh", "-c", "for i in $(seq 1 10); do echo $i-${long} >&2; done; exit 1"]`,
        '  missing:',
        '    kind: shell',
        '    command: ["nosuchcmd-xyz", "--flag"]',
        '  missing_in_shell:',
        '    kind: shell',
        '    command: "nosuchcmd-abc --flag"',
        '    shell: true',
        '  noexec:',
        '    kind: shell',
        '    command: ["./noexec.sh"]',
        '  noexec_in_shell:',
        '    kind: shell',
        '    command: "./noexec.sh now"',
        '    shell: true',
        '',
      ].join('\n'),
    );
    const run = await sandbox.run(['run', flow]);
    expect(run.code, describeResult(run)).toBe(1);
    const show = await showRun(sandbox, createdRun(run));

    const tail = [...Array.from({ length: 19 }, (_, i) => `  line ${i + 12}`), '  fatal: bad row 7'];
    expect(errorOf(show, 'fails').message).toBe(
      `task fails: command ["sh","-c","for i in $(seq 1 30); do echo line $i >&2; done; echo 'fatal: bad row 7' >&2; exit 3"] exited with 3\n` +
        `last lines of stderr:\n  …\n${tail.join('\n')}`,
    );
    // The live output shows the failure with its stderr tail kept under it.
    expect(run.stderr).toMatch(
      /fails: attempt 1 failed: TASK_FAILED: .* exited with 3\n {14}last lines of stderr:\n {16}…\n {16}line 12\n/,
    );

    const wide = errorOf(show, 'wide').message;
    const wideTail = wide.slice(wide.indexOf('last lines of stderr:\n') + 'last lines of stderr:\n'.length);
    expect(Buffer.byteLength(wideTail)).toBeLessThanOrEqual(2048 + 2 * 10);
    expect(wideTail.split('\n')[0]).toBe('  …');
    expect(wideTail.endsWith(`  10-${long}`)).toBe(true);
    expect(wideTail).not.toContain(`  4-${long}`);

    expect(errorOf(show, 'missing')).toMatchObject({
      message: 'task missing: command not found: nosuchcmd-xyz',
      hint: expect.stringContaining('Install nosuchcmd-xyz where the task runs, or give its full path'),
    });
    expect(errorOf(show, 'missing_in_shell')).toMatchObject({
      message: expect.stringMatching(
        /^task missing_in_shell: command not found: nosuchcmd-abc \(exit code 127\)\nlast lines of stderr:\n {2}.*nosuchcmd-abc.*not found$/,
      ),
      hint: expect.stringContaining('Install nosuchcmd-abc'),
      details: { exitCode: 127, command: 'nosuchcmd-abc' },
    });
    expect(errorOf(show, 'noexec')).toMatchObject({
      message: 'task noexec: command not executable: ./noexec.sh',
      hint: expect.stringContaining('Make ./noexec.sh executable (chmod +x)'),
    });
    expect(errorOf(show, 'noexec_in_shell').message).toMatch(
      /^task noexec_in_shell: command not executable: \.\/noexec\.sh \(exit code 126\)\n/,
    );

    // `baton logs` prints the failure, its own hint included, after the attempt's lines.
    const logs = await sandbox.run(['logs', show.id, 'missing_in_shell']);
    expect(logs.stdout).toMatch(
      /missing_in_shell#1 ! .*nosuchcmd-abc.*not found\n.* missing_in_shell#1 failed: TASK_FAILED: task missing_in_shell: command not found: nosuchcmd-abc \(exit code 127\)\n {2}last lines of stderr:\n/,
    );
    expect(logs.stdout).toContain('\n  hint: Install nosuchcmd-abc where the task runs');
  });
});

describe('baton backfill --wait', () => {
  it("prints the log lines of the backfill's runs, each naming its run; --quiet hides them", async () => {
    const sandbox = createSandbox(temp.mkdir());
    const flow = sandbox.write(
      'daily.yaml',
      [
        'name: daily',
        'triggers:',
        '  nightly:',
        '    kind: cron',
        '    cron: "0 2 * * *"',
        'tasks:',
        '  load:',
        '    kind: shell',
        '    command: ["sh", "-c", "echo loading until $END"]',
        "    env: { END: '${{ params.interval_end }}' }",
        '',
      ].join('\n'),
    );
    // Within the test's own time limit below, so that a stuck backfill shows the worker's output.
    const worker = sandbox.start(['worker'], { timeoutMs: 110_000 });
    try {
      const range = ['--from', '2024-01-01T03:00:00Z', '--to', '2024-01-03T03:00:00Z'];
      const result = await sandbox.run(['backfill', flow, ...range, '--wait'], { timeoutMs: 40_000 });
      expect(result.code, describeResult(result)).toBe(0);
      for (const end of ['2024-01-02T02:00:00.000Z', '2024-01-03T02:00:00.000Z']) {
        expect(result.stderr).toMatch(
          new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} {2}\\(run r[0-9a-z]+\\) load#1 \\| loading until ${end}$`, 'm'),
        );
      }
      expect(result.stderr).toMatch(/^backfill \S+ running: /m);
      expect(result.stdout).toMatch(/completed: 2\/2 done, 0 running, 0 pending, 0 failed/);

      const next = ['--from', '2024-01-03T03:00:00Z', '--to', '2024-01-04T03:00:00Z'];
      const quiet = await sandbox.run(['backfill', flow, ...next, '--wait', '--quiet'], { timeoutMs: 40_000 });
      expect(quiet.code, describeResult(quiet)).toBe(0);
      expect(quiet.stdout).toMatch(/completed: 1\/1 done/);
      expect(quiet.stderr).not.toContain('loading until');
      expect(quiet.stderr).not.toMatch(/^backfill \S+ running: /m);
    } catch (error) {
      // The worker executes the runs: when they do not end, its output says why.
      throw new Error(
        `${(error as Error).message}\n--- worker (pid ${worker.pid}${workerExit(worker)}) stdout\n${worker.stdout()}\n--- worker stderr\n${worker.stderr()}`,
        { cause: error },
      );
    } finally {
      worker.kill('SIGTERM');
      await worker.done;
    }
  }, 120_000);
});

describe('on PostgreSQL, with a scheduler and a worker executing', () => {
  it('`run --wait` prints the log lines and failures the worker stores, and the stack survives the task queue', async () => {
    const db = await createTestDatabase();
    const dir = temp.mkdir('baton-output-pg-');
    const o = { cwd: dir, env: { BATON_DATABASE_URL: db.url }, timeoutMs: 60_000 };
    const procs: BatonProcess[] = [];
    try {
      mkdirSync(join(dir, 'flows'));
      writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\n');
      const { module } = pipeline(createSandbox(join(dir, 'flows')));
      procs.push(startBaton(['scheduler'], o), startBaton(['worker'], o));
      const run = await baton(['run', 'pipeline', '--wait'], o);
      expect(run.code, describeResult(run)).toBe(1);
      expect(run.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}extract#1 \| reading orders$/m);
      expect(run.stderr).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}shout#1 ! careful$/m);
      expect(run.stderr).toMatch(
        / load#1 \| WARN about to load\n.* load: attempt 1 failed: TASK_FAILED: boom in user code\n/,
      );
      const runId = createdRun(run);

      const show = parseJson<ShowJson>(await baton(['show', runId, '--json'], o));
      const stack = errorOf(show, 'load').stack ?? '';
      expect(stack).toContain(`at deep (file://${module}:${lineOf(TASKS_MODULE, "throw new Error('boom")}:`);
      expect(stack).not.toContain(join(REPO_ROOT, 'dist'));
      const logs = await baton(['logs', runId, 'load'], o);
      expect(logs.stdout).toContain(
        `load#1 failed: TASK_FAILED: boom in user code\n  Error: boom in user code\n      at deep (file://${module}:`,
      );
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      for (const p of procs) await p.done.catch(() => undefined);
      await db.drop();
    }
  }, 90_000);
});

/** True when `script` (util-linux) can give a command a pseudo terminal here. */
function hasScript(): boolean {
  const probe = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore', timeout: 5000 });
  return probe.status === 0;
}

/** Runs `baton <args>` with its stdout and stderr on a pseudo terminal; resolves with what the terminal got. */
function onTerminal(sandbox: Sandbox, args: readonly string[], timeoutMs = 20_000): Promise<CliResult> {
  const quote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BATON_BIN, '--db', sandbox.db, ...args].map(quote).join(' ');
  const env: NodeJS.ProcessEnv = { TERM: 'xterm', COLUMNS: '200' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_') && k !== 'TERM') env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: sandbox.dir,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`baton ${args.join(' ')} on a terminal did not exit within ${timeoutMs} ms\n${stdout}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe.skipIf(!hasScript())('on a terminal', () => {
  it('keeps a progress line at the bottom, redrawn in place, and erases it before the result', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const flow = sandbox.write(
      'slow.yaml',
      [
        'name: slow',
        'tasks:',
        '  first:',
        '    kind: shell',
        '    command: ["sh", "-c", "echo begin; sleep 1.6; echo end"]',
        '  second:',
        '    kind: shell',
        '    command: ["sh", "-c", "exit 4"]',
        '    depends_on: [first]',
        '',
      ].join('\n'),
    );
    const result = await onTerminal(sandbox, ['run', flow]);
    expect(result.code, describeResult(result)).toBe(1);
    const screen = result.stdout;
    const ERASE = '\r\x1b[K';
    // A log line erases the status line, prints itself, and draws the status line again below.
    expect(screen).toMatch(
      /\r\x1b\[K\d\d:\d\d:\d\d\.\d{3} {2}first#1 \| begin\r\ntasks 0\/2 done, 1 running, 0 waiting, 0 failed {2}0s/,
    );
    // The elapsed time moves while nothing else happens.
    expect(screen).toContain(`${ERASE}tasks 0/2 done, 1 running, 0 waiting, 0 failed  1s`);
    // The last status is erased before the result is printed on stdout.
    expect(screen).toMatch(/\r\x1b\[Ktasks 1\/2 done, 0 running, 0 waiting, 1 failed {2}\d+s\r\x1b\[Krun {6}r/);

    const quiet = await onTerminal(sandbox, ['run', flow, '--quiet']);
    expect(quiet.code, describeResult(quiet)).toBe(1);
    expect(quiet.stdout).not.toContain('tasks 0/2');
    expect(quiet.stdout).not.toContain('\x1b[K');
  });
});
