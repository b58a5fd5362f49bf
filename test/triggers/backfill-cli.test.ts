/**
 * `baton backfill` end to end, through the real binary on a SQLite project: --plan
 * changes nothing, a recorded backfill survives until `baton dev` (the trigger service)
 * creates and executes its runs a few at a time, pause/resume/cancel, running it again
 * creates nothing, and --rerun --wait (with a `baton worker`) gives the failed interval a
 * new run.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { BatonProcess, RunJson } from '../e2e/cli-helpers.js';
import {
  createSandbox,
  describeResult,
  listRuns,
  parseJson,
  readLines,
  useTempDirs,
  waitFor,
} from '../e2e/cli-helpers.js';

const temp = useTempDirs();

interface ProgressJson {
  readonly total: number;
  readonly done: number;
  readonly running: number;
  readonly pending: number;
  readonly failed: number;
}

interface BackfillJson {
  readonly id: string;
  readonly flow: string;
  readonly trigger: string;
  readonly state: string;
  readonly from: string;
  readonly to: string;
  readonly max_parallel: number;
  readonly rerun: boolean;
  readonly progress: ProgressJson;
}

interface PlanJson {
  readonly trigger: string;
  readonly counts: Record<string, number>;
  readonly intervals: {
    fire_time: string;
    interval_start: string;
    interval_end: string;
    status: string;
    dedupe_key: string;
  }[];
}

const END = (d: number) => new Date(Date.UTC(2024, 0, d, 2)).toISOString();

function project() {
  const dir = temp.mkdir('baton-backfill-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'concurrency: 4\n');
  const journal = join(dir, 'journal.txt');
  const marker = join(dir, 'fixed');
  // The run for 3 January fails until the marker file exists.
  writeFileSync(
    join(dir, 'flows', 'daily.yaml'),
    [
      'name: daily',
      'triggers:',
      '  nightly:',
      '    kind: cron',
      '    cron: "0 2 * * *"',
      'tasks:',
      '  load:',
      '    kind: shell',
      `    command: ["sh", "-c", "echo \\"$START $END\\" >> ${journal}; test \\"$END\\" != ${END(3)} || test -f ${marker}"]`,
      "    env: { START: '${{ params.interval_start }}', END: '${{ params.interval_end }}' }",
      '',
    ].join('\n'),
  );
  return { sandbox: createSandbox(dir), journal, marker };
}

describe('baton backfill', () => {
  it('plans, records, runs a few at a time under baton dev, pauses, reruns, and never runs an interval twice', async () => {
    const { sandbox, journal, marker } = project();
    const range = ['--from', '2024-01-01', '--to', '2024-01-05'];
    const stop = async (p: BatonProcess) => {
      p.kill('SIGTERM');
      const r = await p.done;
      expect(r.code, describeResult(r)).toBe(0);
    };

    // --plan: the intervals, and nothing changes.
    const planned = await sandbox.run(['backfill', 'daily', ...range, '--plan', '--json']);
    expect(planned.code, describeResult(planned)).toBe(0);
    const plan = parseJson<PlanJson>(planned);
    expect(plan.trigger).toBe('daily/nightly');
    expect(plan.intervals.map((i) => [i.interval_start, i.interval_end, i.status, i.dedupe_key])).toEqual(
      [1, 2, 3, 4].map((d) => [END(d - 1), END(d), 'create', `daily/nightly@${END(d)}`]),
    );
    const text = await sandbox.run(['backfill', 'daily', ...range, '--plan']);
    expect(text.stdout).toContain('4 interval(s): 4 to create, 0 already succeeded, 0 running');
    expect(await listRuns(sandbox)).toEqual([]);
    expect(parseJson<unknown[]>(await sandbox.run(['backfill', 'list', '--json']))).toEqual([]);

    // Recorded: the command returns at once; nothing runs until a trigger service does.
    const made = await sandbox.run(['backfill', 'daily', ...range, '--max-parallel', '2', '--json']);
    expect(made.code, describeResult(made)).toBe(0);
    const backfill = parseJson<BackfillJson>(made);
    expect(backfill).toMatchObject({
      flow: 'daily',
      trigger: 'daily/nightly',
      state: 'running',
      max_parallel: 2,
      rerun: false,
      progress: { total: 4, done: 0, running: 0, pending: 4, failed: 0 },
    });
    expect(backfill.id).toMatch(/^b[0-9a-z]{15}$/);
    const paused = await sandbox.run(['backfill', 'pause', backfill.id]);
    expect(paused.code, describeResult(paused)).toBe(0);
    expect(paused.stdout).toContain(`${backfill.id} paused`);
    const listed = parseJson<BackfillJson[]>(await sandbox.run(['backfill', 'list', '--json']));
    expect(listed.map((b) => [b.id, b.state])).toEqual([[backfill.id, 'paused']]);

    // baton dev evaluates triggers and executes runs; paused, the backfill makes none.
    const dev = sandbox.start(['dev', '--no-webhooks'], { timeoutMs: 60_000 });
    await waitFor(() => (dev.stderr().includes('executing runs') ? true : undefined), {
      timeoutMs: 15_000,
      what: 'baton dev to start',
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await listRuns(sandbox)).toEqual([]);
    const resumed = await sandbox.run(['backfill', 'resume', backfill.id, '--json']);
    expect(parseJson<BackfillJson>(resumed).state).toBe('running');
    const finished = await waitFor(
      async () => {
        const [b] = parseJson<BackfillJson[]>(await sandbox.run(['backfill', 'list', '--json']));
        return b?.state === 'completed' ? b : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the backfill to complete' },
    );
    expect(finished.progress).toEqual({ total: 4, done: 3, running: 0, pending: 0, failed: 1 });
    await stop(dev);
    const runs = await listRuns(sandbox);
    const byEnd = (rs: readonly RunJson[]) =>
      rs.map((r) => [r.params.interval_end, r.state]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(byEnd(runs)).toEqual([
      [END(1), 'succeeded'],
      [END(2), 'succeeded'],
      [END(3), 'failed'],
      [END(4), 'succeeded'],
    ]);
    expect(readLines(journal).sort()).toEqual([1, 2, 3, 4].map((d) => `${END(d - 1)} ${END(d)}`));
    // Low priority, and marked as the backfill's.
    const db = new Database(sandbox.db, { readonly: true });
    try {
      const rows = db.prepare('SELECT priority, trigger_id FROM runs').all() as {
        priority: number;
        trigger_id: string;
      }[];
      expect(rows.every((r) => r.priority === -1 && r.trigger_id === `daily/nightly#backfill-${backfill.id}`)).toBe(
        true,
      );
    } finally {
      db.close();
    }

    // Again, without --rerun: nothing new; --wait reports the failed interval (exit 1).
    const again = await sandbox.run(['backfill', 'daily', ...range, '--wait', '--json']);
    expect(again.code, describeResult(again)).toBe(1);
    expect(parseJson<BackfillJson>(again)).toMatchObject({
      state: 'completed',
      progress: { total: 4, done: 3, failed: 1, running: 0, pending: 0 },
    });
    expect((await listRuns(sandbox)).length).toBe(4);

    // --rerun --wait with a worker executing: only 3 January runs again, and succeeds.
    writeFileSync(marker, '');
    const replan = parseJson<PlanJson>(
      await sandbox.run(['backfill', 'daily', ...range, '--rerun', '--plan', '--json']),
    );
    expect(replan.intervals.map((i) => i.status)).toEqual(['succeeded', 'succeeded', 'rerun', 'succeeded']);
    const worker = sandbox.start(['worker'], { timeoutMs: 60_000 });
    const rerun = await sandbox.run(['backfill', 'daily', ...range, '--rerun', '--wait'], { timeoutMs: 40_000 });
    expect(rerun.code, describeResult(rerun)).toBe(0);
    expect(rerun.stdout).toMatch(/completed: 4\/4 done, 0 running, 0 pending, 0 failed/);
    expect(rerun.stderr).toMatch(/running: 3\/4 done/);
    await stop(worker);
    const after = await listRuns(sandbox);
    expect(after.length).toBe(5);
    const rerunRun = after.find((r) => r.state === 'succeeded' && r.params.interval_end === END(3));
    expect(rerunRun).toBeDefined();
    const show = parseJson<{ params: Record<string, unknown> }>(
      await sandbox.run(['show', rerunRun?.id as string, '--json']),
    );
    expect(show.params).toMatchObject({ interval_start: END(2), interval_end: END(3) });
    expect(readLines(journal).filter((l) => l.endsWith(END(3)))).toHaveLength(2);
    expect(existsSync(marker)).toBe(true);

    // Mistakes are usage errors that change nothing.
    const cancelDone = await sandbox.run(['backfill', 'cancel', backfill.id]);
    expect(cancelDone.code).toBe(2);
    expect(cancelDone.stderr).toContain(`backfill ${backfill.id} is completed; it cannot be cancelled`);
    const backwards = await sandbox.run(['backfill', 'daily', '--from', '2024-01-05', '--to', '2024-01-01']);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain('--from 2024-01-05T00:00:00.000Z is not before --to 2024-01-01T00:00:00.000Z');
    const future = await sandbox.run(['backfill', 'daily', '--from', '2024-01-01', '--to', '2999-01-01', '--json']);
    expect(future.code).toBe(2);
    expect(parseJson<{ error: { code: string } }>({ ...future, stdout: future.stderr }).error.code).toBe('USAGE');
    const missing = await sandbox.run(['backfill', 'daily', '--from', '2024-01-01']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('baton backfill <flow> needs --from and --to');
    expect((await listRuns(sandbox)).length).toBe(5);
    expect(parseJson<BackfillJson[]>(await sandbox.run(['backfill', 'list', '--json'])).length).toBe(3);
  });
});
