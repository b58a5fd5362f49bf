/**
 * Durations longer than Node's timers hold (2^31-1 ms, 24.8 days), through the real
 * binary: a task timeout of 25 days and a run timeout of 30 days wait as written instead
 * of firing at once, with leases and kill grace past that length too, and Node never warns
 * of an overflow. Durations that make no sense (a zero timeout or interval, one over the
 * limit duration_ms) are refused by `baton validate` with their line.
 */
import { describe, expect, it } from 'vitest';
import type { ShowJson } from './cli-helpers.js';
import { createSandbox, describeResult, parseJson, taskOf, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

const OVERFLOW = 'TimeoutOverflowWarning';

// Leases are renewed every third of their length, 33 days here: past Node's limit too.
const CONFIG = `lease: 100d
kill_grace: 30d
`;

const TASK_TIMEOUT = `name: long_task_timeout
tasks:
  nap:
    kind: shell
    command: ["sleep", "2"]
    timeout: 25d
`;

const RUN_TIMEOUT = `name: long_run_timeout
timeout: 30d
tasks:
  nap:
    kind: shell
    command: ["sleep", "1"]
`;

// One problem a line: 5 (interval 0s), 10 (task timeout 0), 14 (over the limit), 16 (a sleep over it).
const REFUSED = `name: refused
triggers:
  tick:
    kind: interval
    every: 0s
tasks:
  nap:
    kind: shell
    command: ["true"]
    timeout: 0
  long:
    kind: shell
    command: ["true"]
    timeout: 367d
  doze:
    sleep: 8784h1ms
`;

describe('long durations', () => {
  it('a task timeout of 25 days lets a 2 s task finish, and a run timeout of 30 days lets the run finish', async () => {
    const sandbox = createSandbox(temp.mkdir());
    sandbox.write('baton.yaml', CONFIG);
    sandbox.write('task.yaml', TASK_TIMEOUT);
    sandbox.write('run.yaml', RUN_TIMEOUT);

    const task = await sandbox.run(['run', 'task.yaml', '--json'], { timeoutMs: 30_000 });
    expect(task.code, describeResult(task)).toBe(0);
    expect(task.stderr).not.toContain(OVERFLOW);
    const taskRun = parseJson<ShowJson>(task);
    expect(taskRun.state).toBe('succeeded');
    expect(taskOf(taskRun, 'nap')).toMatchObject({ state: 'succeeded', attempts: 1, error: null });
    expect(taskOf(taskRun, 'nap').duration_ms).toBeGreaterThanOrEqual(1900);

    const run = await sandbox.run(['run', 'run.yaml', '--json'], { timeoutMs: 30_000 });
    expect(run.code, describeResult(run)).toBe(0);
    expect(run.stderr).not.toContain(OVERFLOW);
    const runRun = parseJson<ShowJson>(run);
    expect(runRun).toMatchObject({ state: 'succeeded', error: null });
    expect(taskOf(runRun, 'nap')).toMatchObject({ state: 'succeeded' });

    const show = await sandbox.run(['show', taskRun.id, '--json']);
    expect(show.stderr).not.toContain(OVERFLOW);
  });

  it('baton validate refuses a zero timeout, a zero interval and durations over the limit, each at its line', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('refused.yaml', REFUSED);
    const result = await sandbox.run(['validate', 'refused.yaml']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(`FAIL  ${file}: 4 problem(s)`);
    expect(result.stdout).toContain(
      `${file}:5:12: DEF_INVALID: triggers.tick.every: must be longer than 0, got "0s"\n    hint: Write at least 1ms`,
    );
    expect(result.stdout).toContain(`${file}:10:14: DEF_INVALID: tasks.nap.timeout: must be longer than 0, got 0`);
    expect(result.stdout).toContain(
      `${file}:14:14: DEF_INVALID: tasks.long.timeout: 367d is over the limit duration_ms (366 d)\n` +
        '    hint: The limit duration_ms is fixed at 366 d; make it smaller.',
    );
    expect(result.stdout).toContain(
      `${file}:16:12: DEF_INVALID: tasks.doze.sleep: 366d1ms is over the limit duration_ms (366 d)`,
    );
    expect(result.stderr).not.toContain(OVERFLOW);
  });

  it('baton.yaml refuses a zero lease and a lease over the limit, at their lines', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('baton.yaml', 'lease: 0\nkill_grace: 400d\n');
    sandbox.write('ok.yaml', RUN_TIMEOUT);
    const result = await sandbox.run(['validate', 'ok.yaml']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain(`${file}:1:8: CONFIG_INVALID: lease: must be longer than 0, got 0`);
    expect(result.stderr).toContain(
      `${file}:2:13: CONFIG_INVALID: kill_grace: 400d is over the limit duration_ms (366 d)`,
    );
  });
});
