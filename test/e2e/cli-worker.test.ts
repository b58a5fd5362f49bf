/**
 * `baton run --enqueue` and `baton worker`: queued runs executed by several worker
 * processes on one database, each task succeeding exactly once; SIGTERM drains.
 */
import { describe, expect, it } from 'vitest';
import type { BatonProcess, JournalTask, RunJson, Sandbox, ShowJson } from './cli-helpers.js';
import {
  countBy,
  createSandbox,
  describeResult,
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

/** `baton run <file> --enqueue`; returns the id it prints. */
async function enqueue(sandbox: Sandbox, file: string): Promise<string> {
  const result = await sandbox.run(['run', file, '--enqueue']);
  expect(result.code, describeResult(result)).toBe(0);
  const id = result.stdout.trim();
  expect(id).toMatch(/^r[0-9a-z]{15}$/);
  return id;
}

/** Starts a worker and waits until it says it is executing runs. */
async function startWorker(sandbox: Sandbox): Promise<BatonProcess> {
  const worker = sandbox.start(['worker'], { timeoutMs: 40_000 });
  await waitFor(() => (worker.stderr().includes('executing runs from') ? true : undefined), {
    timeoutMs: 10_000,
    what: `worker ${worker.pid} to start`,
  });
  return worker;
}

/** SIGTERM, then the exit; fails unless the worker exits 0 within `withinMs`. */
async function stopWorker(worker: BatonProcess, withinMs: number): Promise<void> {
  const asked = Date.now();
  worker.kill('SIGTERM');
  const result = await worker.done;
  expect(result.code, describeResult(result)).toBe(0);
  expect(Date.now() - asked).toBeLessThan(withinMs);
  expect(result.stderr).toContain('SIGTERM, draining');
  expect(result.stderr).toContain('baton worker: stopped');
}

describe('worker', () => {
  it('--enqueue prints the run id and leaves the run queued, to be cancelled at once', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const journal = sandbox.path('journal.txt');
    const file = sandbox.write('one.yaml', journalFlowYaml('one', journal, [{ id: 'only' }]));
    const id = await enqueue(sandbox, file);
    const runs = await listRuns(sandbox);
    expect(runs).toEqual([expect.objectContaining({ id, flow: 'one', state: 'queued', started_at: null })]);
    const show = await showRun(sandbox, id);
    expect(taskOf(show, 'only')).toMatchObject({ state: 'pending', attempts: 0 });
    expect(readLines(journal)).toEqual([]);

    // No process owns a queued run, so cancel applies at once.
    const cancel = await sandbox.run(['cancel', id, '--json']);
    expect(cancel.code, describeResult(cancel)).toBe(0);
    expect(parseJson<RunJson>(cancel)).toMatchObject({ id, state: 'cancelled' });
    expect(taskOf(await showRun(sandbox, id), 'only')).toMatchObject({ state: 'cancelled', attempts: 0 });
  });

  it('two workers execute three queued fan-out runs, every task exactly once', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const journal = sandbox.path('journal.txt');
    const tasks: JournalTask[] = [
      { id: 'root', ms: 20 },
      ...Array.from({ length: 19 }, (_, i) => ({ id: `leaf${i}`, ms: 50, dependsOn: ['root'] })),
    ];
    const file = sandbox.write('fan.yaml', journalFlowYaml('fan', journal, tasks));
    // Should an assertion fail, the helpers' afterEach kills the workers.
    const workers = [await startWorker(sandbox), await startWorker(sandbox)];
    const ids = await Promise.all([enqueue(sandbox, file), enqueue(sandbox, file), enqueue(sandbox, file)]);
    const finished = await waitFor(
      async () => {
        const runs = await listRuns(sandbox);
        return runs.length === 3 && runs.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.state))
          ? runs
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'three runs to finish' },
    );
    expect(finished.map((r) => [r.id, r.state]).sort()).toEqual(ids.map((id) => [id, 'succeeded']).sort());

    for (const id of ids) {
      const show = await showRun(sandbox, id, { events: true });
      expect(show.tasks).toHaveLength(20);
      expect(show.tasks.every((t) => t.state === 'succeeded' && t.attempts === 1)).toBe(true);
      const successes = countBy(
        (show.events ?? []).filter((e) => e.type === 'task_succeeded'),
        (e) => String(e.task),
      );
      expect([...successes.keys()].sort()).toEqual(tasks.map((t) => t.id).sort());
      expect([...successes.values()].every((n) => n === 1)).toBe(true);
    }
    // The bodies, too, ran once per run and task.
    const bodies = countBy(readJournal(journal), (e) => `${e.run}/${e.task}`);
    expect(bodies.size).toBe(60);
    expect([...bodies.values()].every((n) => n === 1)).toBe(true);
    await Promise.all(workers.map((w) => stopWorker(w, 5_000)));
  }, 45_000);

  it('SIGTERM drains: the running task finishes and commits before the worker exits', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const journal = sandbox.path('journal.txt');
    const file = sandbox.write('slow.yaml', journalFlowYaml('slow', journal, [{ id: 'second', ms: 1_000 }]));
    const worker = await startWorker(sandbox);
    const id = await enqueue(sandbox, file);
    await waitFor(() => (readLines(journal).length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      what: 'the task body to start',
    });
    await stopWorker(worker, 5_000);
    const show = await showRun(sandbox, id);
    expect(show.state).toBe('succeeded');
    const task = taskOf(show, 'second');
    expect(task).toMatchObject({ state: 'succeeded', attempts: 1, output: { task: 'second', attempt: 1 } });
    // Timers may fire a few ms early against the wall clock; the body sleeps 1 s.
    expect(task.duration_ms).toBeGreaterThanOrEqual(950);
    expect(readJournal(journal)).toHaveLength(1);
  }, 30_000);
});

describe('run --enqueue --wait', () => {
  it('waits for a worker to finish the run and prints it', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const journal = sandbox.path('journal.txt');
    const file = sandbox.write('one.yaml', journalFlowYaml('one', journal, [{ id: 'only' }]));
    const waiting = sandbox.start(['run', file, '--enqueue', '--wait', '--json']);
    const [queued] = await waitFor(
      async () => {
        const runs = await listRuns(sandbox);
        return runs.length > 0 ? runs : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the run to be created' },
    );
    expect(queued?.state).toBe('queued');
    const worker = await startWorker(sandbox);
    const result = await waiting.done;
    expect(result.code, describeResult(result)).toBe(0);
    const run = parseJson<ShowJson>(result);
    expect(run).toMatchObject({ id: queued?.id, state: 'succeeded' });
    expect(taskOf(run, 'only').state).toBe('succeeded');
    await stopWorker(worker, 5_000);
  }, 30_000);
});
