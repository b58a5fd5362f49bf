/**
 * Recovery through the CLI: `kill -9` mid-run then `baton resume`; `baton retry`
 * (failed tasks, or chosen tasks and their downstream); `baton cancel` from a second
 * process killing a running command; task timeouts.
 *
 * The journal fixture (test/fixtures/e2e/journal-task.mjs) records every body that ran,
 * so "ran exactly once" is read from the journal, not from Baton's own bookkeeping.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { JournalTask, Sandbox, ShowJson } from './cli-helpers.js';
import {
  countBy,
  createSandbox,
  describeResult,
  isAlive,
  journalFlowYaml,
  listRuns,
  parseJson,
  readJournal,
  readLines,
  showRun,
  taskOf,
  useTempDirs,
  waitFor,
} from './cli-helpers.js';

const temp = useTempDirs();

/** The run id `baton run` announces on stderr (`baton: run <id> of <flow> … created`). */
function createdRunId(stderr: string): string | undefined {
  return /baton: run (\S+) of /.exec(stderr)?.[1];
}

/** Writes a journal flow into the sandbox; returns the flow file and journal paths. */
function journalFlow(sandbox: Sandbox, name: string, tasks: readonly JournalTask[]) {
  const journal = sandbox.path('journal.txt');
  const file = sandbox.write(`${name}.yaml`, journalFlowYaml(name, journal, tasks));
  return { file, journal };
}

describe('crash and resume', () => {
  it('after kill -9 mid-run, resume finishes the run and no committed task runs again', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const tasks = Array.from({ length: 10 }, (_, i) => ({
      id: `t${i}`,
      ms: 150,
      ...(i > 0 ? { dependsOn: [`t${i - 1}`] } : {}),
    }));
    const { file, journal } = journalFlow(sandbox, 'chain', tasks);

    const first = sandbox.start(['run', file, '-q']);
    const runId = await waitFor(() => createdRunId(first.stderr()), { timeoutMs: 10_000, what: 'the run id' });
    // t3's body starts only after t0..t2's successes are committed.
    await waitFor(() => (readLines(journal).length >= 4 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'four task bodies to start',
    });
    first.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');

    const before = await showRun(sandbox, runId);
    expect(before.state).toBe('running');
    const committed = before.tasks.filter((t) => t.state === 'succeeded').map((t) => t.id);
    expect(committed.length).toBeGreaterThanOrEqual(3);
    expect(committed.length).toBeLessThan(10);

    const resumed = await sandbox.run(['resume', runId, '--json']);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    const after = parseJson<ShowJson>(resumed);
    expect(after.state).toBe('succeeded');
    expect(after.tasks.every((t) => t.state === 'succeeded')).toBe(true);

    const runs = countBy(readJournal(journal), (e) => e.task);
    for (const id of committed) expect(runs.get(id), `${id} was committed before the kill`).toBe(1);
    for (const t of tasks) expect(runs.get(t.id) ?? 0, `${t.id} ran`).toBeGreaterThanOrEqual(1);
    // At most the one body in flight at the kill (a chain runs one at a time) runs twice.
    const twice = [...runs].filter(([, n]) => n > 1);
    expect(twice.length).toBeLessThanOrEqual(1);
    for (const [id] of twice) expect(committed).not.toContain(id);

    // Resuming a finished run changes nothing.
    const again = await sandbox.run(['resume', runId, '--json']);
    expect(again.code, describeResult(again)).toBe(0);
    expect(again.stderr).toContain('already succeeded');
    expect(readJournal(journal)).toHaveLength([...runs.values()].reduce((a, b) => a + b, 0));
  }, 30_000);
});

describe('retry', () => {
  async function failedRun() {
    const sandbox = createSandbox(temp.mkdir());
    const marker = sandbox.path('marker');
    const { file, journal } = journalFlow(sandbox, 'abc', [
      { id: 'A' },
      { id: 'B', dependsOn: ['A'], requires: marker },
      { id: 'C', dependsOn: ['B'] },
    ]);
    const result = await sandbox.run(['run', file, '--json']);
    expect(result.code, describeResult(result)).toBe(1);
    const run = parseJson<ShowJson>(result);
    return { sandbox, marker, journal, run };
  }

  it('--from-failed reruns what did not succeed and reuses what did', async () => {
    const { sandbox, marker, journal, run } = await failedRun();
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('TASK_FAILED');
    expect(taskOf(run, 'A')).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(taskOf(run, 'B')).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'MARKER_MISSING' } });
    const c = taskOf(run, 'C');
    expect(c.state).toBe('skipped');
    expect(c.skip_reason).toMatch(/upstream failed: B/);
    expect(readJournal(journal).map((e) => e.task)).toEqual(['A', 'B']);

    writeFileSync(marker, 'ok');
    const retried = await sandbox.run(['retry', run.id, '--from-failed', '--json']);
    expect(retried.code, describeResult(retried)).toBe(0);
    const after = parseJson<ShowJson>(retried);
    expect(after.id).toBe(run.id);
    expect(after.state).toBe('succeeded');
    expect(taskOf(after, 'A')).toMatchObject({ state: 'succeeded', attempts: 1, output: { task: 'A', attempt: 1 } });
    expect(taskOf(after, 'B')).toMatchObject({ state: 'succeeded', attempts: 2, error: null });
    expect(taskOf(after, 'C')).toMatchObject({ state: 'succeeded', skip_reason: null });
    expect(readJournal(journal).map((e) => `${e.task}${e.attempt}`)).toEqual(['A1', 'B1', 'B2', 'C1']);
    expect((await listRuns(sandbox)).map((r) => r.id)).toEqual([run.id]);
  });

  it('--task A --downstream reruns A and everything after it', async () => {
    const { sandbox, marker, journal, run } = await failedRun();
    writeFileSync(marker, 'ok');
    const retried = await sandbox.run(['retry', run.id, '--task', 'A', '--downstream', '--json']);
    expect(retried.code, describeResult(retried)).toBe(0);
    const after = parseJson<ShowJson>(retried);
    expect(after.state).toBe('succeeded');
    expect(after.tasks.map((t) => [t.id, t.state, t.attempts])).toEqual([
      ['A', 'succeeded', 2],
      ['B', 'succeeded', 2],
      ['C', 'succeeded', 1],
    ]);
    expect(readJournal(journal).map((e) => `${e.task}${e.attempt}`)).toEqual(['A1', 'B1', 'A2', 'B2', 'C1']);

    // A succeeded run can be retried too: only the chosen task, without --downstream.
    const onlyC = await sandbox.run(['retry', run.id, '--task', 'C', '--json']);
    expect(onlyC.code, describeResult(onlyC)).toBe(0);
    expect(taskOf(parseJson<ShowJson>(onlyC), 'C').attempts).toBe(2);
    expect(readJournal(journal).map((e) => `${e.task}${e.attempt}`)).toEqual(['A1', 'B1', 'A2', 'B2', 'C1', 'C2']);
  });

  it('refuses retry without a choice, an unknown task, and a run with nothing to retry', async () => {
    const { sandbox, marker, run } = await failedRun();
    const bare = await sandbox.run(['retry', run.id]);
    expect(bare.code, describeResult(bare)).toBe(2);
    expect(bare.stderr).toContain('needs --from-failed or --task');

    const unknown = await sandbox.run(['retry', run.id, '--task', 'Z']);
    expect(unknown.code, describeResult(unknown)).toBe(4);
    expect(unknown.stderr).toContain('TASK_NOT_FOUND');

    writeFileSync(marker, 'ok');
    const ok = await sandbox.run(['retry', run.id, '--from-failed', '-q']);
    expect(ok.code, describeResult(ok)).toBe(0);
    const nothing = await sandbox.run(['retry', run.id, '--from-failed']);
    expect(nothing.code, describeResult(nothing)).toBe(5);
    expect(nothing.stderr).toContain('RUN_NOT_RETRYABLE');
    expect((await showRun(sandbox, run.id)).state).toBe('succeeded');
  });
});

describe('cancel and timeouts', () => {
  it('cancel from a second process stops the run and kills its command', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const pidFile = sandbox.path('pid.txt');
    const file = sandbox.write(
      'long.yaml',
      `name: long
tasks:
  sleeper:
    kind: shell
    command: ["sh", "-c", "echo $$ > pid.txt; exec sleep 30"]
  after:
    kind: shell
    command: ["echo", "never"]
    depends_on: [sleeper]
`,
    );
    const running = sandbox.start(['run', file, '-q']);
    let pid: number | undefined;
    try {
      const runId = await waitFor(() => createdRunId(running.stderr()), { timeoutMs: 10_000, what: 'the run id' });
      pid = await waitFor(
        () => {
          const n = Number(readLines(pidFile)[0]);
          return Number.isInteger(n) && n > 0 ? n : undefined;
        },
        { timeoutMs: 10_000, what: 'the sleeper to write its pid' },
      );
      expect(isAlive(pid)).toBe(true);

      const cancel = await sandbox.run(['cancel', runId, '--json']);
      expect(cancel.code, describeResult(cancel)).toBe(0);
      expect(parseJson<{ state: string }>(cancel).state).toBe('cancelled');

      const ended = await running.done;
      expect(ended.code, describeResult(ended)).toBe(1);

      const show = await showRun(sandbox, runId);
      expect(show.state).toBe('cancelled');
      expect(taskOf(show, 'sleeper')).toMatchObject({ state: 'cancelled', error: { code: 'TASK_CANCELLED' } });
      expect(taskOf(show, 'after').state).toBe('cancelled');

      const sleeper = pid;
      await waitFor(() => (isAlive(sleeper) ? undefined : true), { timeoutMs: 5_000, what: `pid ${sleeper} to exit` });
      expect(() => process.kill(sleeper, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));

      const noop = await sandbox.run(['cancel', runId]);
      expect(noop.code, describeResult(noop)).toBe(0);
      expect(noop.stderr).toContain('already cancelled');
    } finally {
      // Never leave a 30 s sleep behind, whatever failed above.
      if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 30_000);

  it('a task over its timeout is stopped and fails with TASK_TIMEOUT', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write(
      'slow.yaml',
      `name: slow
tasks:
  slow:
    kind: shell
    command: ["sleep", "5"]
    timeout: 300ms
`,
    );
    const started = Date.now();
    const result = await sandbox.run(['run', file, '--json']);
    expect(result.code, describeResult(result)).toBe(1);
    // Far below the 5 s the command would take; the kill grace is 2 s.
    expect(Date.now() - started).toBeLessThan(4_500);
    const show = parseJson<ShowJson>(result);
    expect(show.state).toBe('failed');
    const slow = taskOf(show, 'slow');
    expect(slow).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'TASK_TIMEOUT' } });
    expect(slow.error?.message).toContain('timed out after 300 ms');
  });
});
