/**
 * The examples of dynamic flows (map-reduce, branching, approvals, subflows, testing) run
 * as their READMEs say, through the real CLI, from their own folders. The database goes
 * to a temp folder (`--db`), so the tests leave no .baton in the repository.
 *
 * The approvals example is driven as a user would: the run executes in a background
 * `baton` process while `baton signal`, `baton approve` and `baton reject` are sent from
 * other processes, and one wait is carried across a `kill -9` and a `baton resume`.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BatonProcess, CliResult, EventJson, ShowJson, TaskJson } from './cli-helpers.js';
import {
  REPO_ROOT,
  baton,
  describeResult,
  isAlive,
  parseJson,
  startBaton,
  taskOf,
  useTempDirs,
  waitFor,
} from './cli-helpers.js';

const temp = useTempDirs();

/** A task run in `show --json`, with the fields of dynamic flows. */
interface DynTaskJson extends TaskJson {
  readonly wait?: Record<string, unknown>;
  readonly group?: string;
}

interface ChildJson {
  readonly id: string;
  readonly flow: string;
  readonly state: string;
  readonly params: Record<string, unknown>;
  readonly parent_task: string;
}

interface DynShowJson extends ShowJson {
  readonly tasks: readonly DynTaskJson[];
  readonly parent: { run: string; task: string } | null;
  readonly children: readonly ChildJson[];
}

/** `baton --db <temp db> …` from an example's folder. */
interface Example {
  readonly cwd: string;
  cli(args: readonly string[], timeoutMs?: number): Promise<CliResult>;
  start(args: readonly string[]): BatonProcess;
  show(runId: string, extra?: readonly string[]): Promise<DynShowJson>;
  /** `baton run <flow> --json`, exit code checked. */
  run(flow: string, args: readonly string[], code: number): Promise<DynShowJson>;
}

function example(name: string): Example {
  const cwd = join(REPO_ROOT, 'examples', name);
  const db = join(temp.mkdir(), 'baton.db');
  const cli = (args: readonly string[], timeoutMs = 30_000) => baton(['--db', db, ...args], { cwd, timeoutMs });
  return {
    cwd,
    cli,
    start: (args) => startBaton(['--db', db, ...args], { cwd, timeoutMs: 60_000 }),
    async show(runId, extra = []) {
      const result = await cli(['show', runId, '--json', ...extra]);
      expect(result.code, describeResult(result)).toBe(0);
      return parseJson<DynShowJson>(result);
    },
    async run(flow, args, code) {
      const result = await cli(['run', flow, ...args, '--json']);
      expect(result.code, describeResult(result)).toBe(code);
      return parseJson<DynShowJson>(result);
    },
  };
}

/** Polls `show --json` until the task waits; returns it. */
async function waitingTask(ex: Example, runId: string, task: string): Promise<DynTaskJson> {
  return waitFor(
    async () => {
      const t = (await ex.show(runId)).tasks.find((x) => x.id === task);
      return t?.state === 'waiting' ? t : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `task ${task} of run ${runId} to wait` },
  );
}

/** The run id a foreground `baton run` prints first on stderr. */
async function runIdOf(proc: BatonProcess): Promise<string> {
  return waitFor(() => /baton: run (r[0-9a-z]+) of /.exec(proc.stderr())?.[1], {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'the run id on stderr',
  });
}

function states(show: DynShowJson, ids: readonly string[]): Record<string, string> {
  return Object.fromEntries(ids.map((id) => [id, taskOf(show, id).state]));
}

function eventsOf(show: DynShowJson, type: string): EventJson[] {
  return (show.events ?? []).filter((e) => e.type === type);
}

describe('map-reduce', () => {
  it('word_counts: a map over batches of four, two at a time, reduced into one table', async () => {
    const ex = example('map-reduce');
    const run = await ex.run('word_counts', [], 0);
    expect(run).toMatchObject({ flow: 'word_counts', state: 'succeeded' });
    expect(run.tasks.map((t) => [t.id, t.state])).toEqual([
      ['documents', 'succeeded'],
      ['count_words', 'succeeded'],
      ['reduce', 'succeeded'],
      ['count_words[0]', 'succeeded'],
      ['count_words[1]', 'succeeded'],
      ['count_words[2]', 'succeeded'],
    ]);
    // Ten documents in batches of four: 4, 4 and 2 per instance, in order.
    const batches = taskOf(run, 'count_words').output as { batch: number; documents: string[] }[];
    expect(batches.map((b) => [b.batch, b.documents.length])).toEqual([
      [0, 4],
      [1, 4],
      [2, 2],
    ]);
    expect(taskOf(run, 'count_words[2]').output).toMatchObject({ documents: ['doc-9', 'doc-10'] });
    expect(taskOf(run, 'reduce').output).toEqual({
      batches: 3,
      documents: 10,
      distinct_words: 19,
      top: { the: 8, quick: 4, dog: 3 },
    });
    // max_parallel 2: the first two items start together, the third once one of them ended.
    const shown = await ex.show(run.id, ['--events']);
    expect(eventsOf(shown, 'map_items_started').map((e) => e.items)).toEqual([[0, 1], [2]]);
  });

  it('regional_sales: a map over a group with a nested map per store, then one report', async () => {
    const ex = example('map-reduce');
    const run = await ex.run('regional_sales', [], 0);
    expect(run.state).toBe('succeeded');
    expect(taskOf(run, 'per_region').output).toEqual([
      { region: 'eu', stores: 3, total: 17000 },
      { region: 'us', stores: 2, total: 9000 },
      { region: 'apac', stores: 1, total: 5000 },
    ]);
    expect(taskOf(run, 'report').output).toEqual({ regions: 3, total: 31000 });
    // Three task runs per region, plus one per store of the nested map.
    const items = run.tasks.filter((t) => t.id.startsWith('per_region['));
    expect(items).toHaveLength(3 * 3 + 6);
    expect(items.every((t) => t.state === 'succeeded')).toBe(true);
    expect(taskOf(run, 'per_region[0].store_sales[1]').output).toEqual({ store: 'paris', amount: 5000 });
    expect(taskOf(run, 'per_region[1].store_sales').output).toEqual([
      { store: 'nyc', amount: 3000 },
      { store: 'austin', amount: 6000 },
    ]);
    const logs = await ex.cli(['logs', run.id, 'report']);
    expect(logs.stdout).toContain('eu 17000, us 9000, apac 5000');
  });
});

describe('branching', () => {
  it('a choice and its join, a quorum that cancels the slow copy, two races, two groups', async () => {
    const ex = example('branching');
    const run = await ex.run('feature_refresh', [], 0);
    expect(run.state).toBe('succeeded');

    expect(taskOf(run, 'route').output).toEqual({ selected: ['incremental_refresh'] });
    for (const id of ['full_refresh', 'nothing_to_refresh']) {
      expect(taskOf(run, id)).toMatchObject({
        state: 'skipped',
        skip_reason: 'branch not taken: route chose incremental_refresh',
      });
    }
    expect(taskOf(run, 'incremental_refresh').output).toBe('appending 250 rows');
    expect(taskOf(run, 'features_ready').state).toBe('succeeded');

    expect(states(run, ['replicate_eu', 'replicate_us', 'replicate_apac', 'replicated'])).toEqual({
      replicate_eu: 'succeeded',
      replicate_us: 'succeeded',
      replicate_apac: 'cancelled',
      replicated: 'succeeded',
    });
    expect(taskOf(run, 'replicate_apac')).toMatchObject({
      skip_reason: 'not needed: replicated reached its quorum',
      group: 'replicas',
    });

    expect(taskOf(run, 'backup_mirror')).toMatchObject({
      state: 'cancelled',
      skip_reason: 'lost the race for reference_data',
    });
    expect(taskOf(run, 'reference_data').output).toMatchObject({
      winner: 'primary_mirror',
      output: { mirror: 'primary' },
      losers: [{ task: 'backup_mirror', state: 'cancelled', reason: 'lost the race for reference_data' }],
    });

    expect(taskOf(run, 'select_model').output).toMatchObject({
      winner: 'challenger',
      output: { model: 'challenger', auc: 0.93 },
      losers: [{ task: 'champion', state: 'succeeded' }],
    });
    expect((taskOf(run, 'champion') as DynTaskJson).group).toBe('models');
    expect(taskOf(run, 'deploy').output).toBe('deploying challenger (auc 0.93)');
  });

  it('the otherwise branch, and a challenger that fails: the champion wins and the run succeeds', async () => {
    const ex = example('branching');
    const run = await ex.run('feature_refresh', ['-p', 'rows=0', '-p', 'challenger_ready=false'], 0);
    expect(run.state).toBe('succeeded');
    expect(taskOf(run, 'route').output).toEqual({ selected: ['nothing_to_refresh'] });
    expect(states(run, ['full_refresh', 'incremental_refresh', 'nothing_to_refresh', 'features_ready'])).toEqual({
      full_refresh: 'skipped',
      incremental_refresh: 'skipped',
      nothing_to_refresh: 'succeeded',
      features_ready: 'succeeded',
    });
    expect(taskOf(run, 'challenger').state).toBe('failed');
    expect(taskOf(run, 'select_model').output).toMatchObject({
      winner: 'champion',
      losers: [{ task: 'challenger', state: 'failed' }],
    });
    expect(taskOf(run, 'deploy').output).toBe('deploying champion (auc 0.91)');
  });
});

describe('approvals', () => {
  it('a user signals and approves while the run waits; deploy recovers through its handler; cleanup runs last', async () => {
    const ex = example('approvals');
    const proc = ex.start(['run', 'release']);
    const runId = await runIdOf(proc);

    const qa = await waitingTask(ex, runId, 'qa_passed');
    expect(qa.wait).toMatchObject({ kind: 'event', event: 'qa.passed', key: '1.4.2' });
    const text = await ex.cli(['show', runId]);
    expect(text.stdout).toMatch(/^qa_passed\s+waiting\s.*waiting for event qa\.passed \(key 1\.4\.2\)/m);

    const signalled = await ex.cli([
      'signal',
      runId,
      'qa.passed',
      '--key',
      '1.4.2',
      '--data',
      '{"suite":"smoke","passed":42}',
      '--by',
      'ci',
    ]);
    expect(signalled.code, describeResult(signalled)).toBe(0);
    expect(signalled.stdout).toContain('woke qa_passed');

    const gate = await waitingTask(ex, runId, 'go_live');
    expect(gate.wait).toMatchObject({ kind: 'approval', approvers: ['alice', 'bob'] });
    const stranger = await ex.cli(['approve', runId, 'go_live', '--by', 'mallory']);
    expect(stranger.code, describeResult(stranger)).toBe(2);
    expect(stranger.stderr).toContain('APPROVER_NOT_ALLOWED');
    const approved = await ex.cli(['approve', runId, 'go_live', '--by', 'alice', '--comment', 'ship it']);
    expect(approved.code, describeResult(approved)).toBe(0);

    const done = await proc.done;
    expect(done.code, describeResult(done)).toBe(0);
    expect(done.stderr).toContain('go_live: approved by alice: ship it');
    expect(done.stderr).toContain('deploy: succeeded (recovered by deploy.on_failure)');

    const run = await ex.show(runId, ['--events']);
    expect(run.state).toBe('succeeded');
    expect(taskOf(run, 'qa_passed').output).toEqual({ suite: 'smoke', passed: 42 });
    expect(taskOf(run, 'go_live').output).toMatchObject({ approved: true, by: 'alice', comment: 'ship it' });
    expect(taskOf(run, 'cool_off').output).toEqual({ until: expect.any(Number) });
    // Two attempts (one retry), then the handler took over and recovered.
    expect(taskOf(run, 'deploy')).toMatchObject({
      state: 'succeeded',
      attempts: 2,
      output: { region: 'standby', artifact: 'app-1.4.2.tar.gz', after: 'TASK_FAILED' },
    });
    expect(taskOf(run, 'deploy.on_failure').state).toBe('succeeded');
    expect(taskOf(run, 'announce').output).toBe('released 1.4.2 to the standby region');
    expect(eventsOf(run, 'signal_received')).toEqual([
      expect.objectContaining({ event: 'qa.passed', key: '1.4.2', by: 'ci' }),
    ]);
    expect(eventsOf(run, 'approval_decided')).toEqual([
      expect.objectContaining({ task: 'go_live', approved: true, by: 'alice', comment: 'ship it' }),
    ]);
    const started = eventsOf(run, 'task_started').map((e) => e.task);
    expect(started.at(-1)).toBe('cleanup');
  }, 90_000);

  it('a wait survives kill -9: resume takes the run over, the signal and a rejection reach it, cleanup runs', async () => {
    const ex = example('approvals');
    const queued = await ex.cli(['run', 'release', '--enqueue']);
    expect(queued.code, describeResult(queued)).toBe(0);
    const runId = queued.stdout.trim();

    const first = ex.start(['resume', runId]);
    const before = await waitingTask(ex, runId, 'qa_passed');
    first.kill('SIGKILL');
    await first.done;
    expect(isAlive(first.pid)).toBe(false);
    // The wait is a row: it is still there, with its timeout, for whoever takes the run over.
    expect((await waitingTask(ex, runId, 'qa_passed')).wait).toEqual(before.wait);

    const second = ex.start(['resume', runId]);
    // A repeated signal id changes nothing, so the call can be repeated until it is taken.
    await waitFor(
      async () => {
        const r = await ex.cli(['signal', runId, 'qa.passed', '--key', '1.4.2', '--id', 'qa-run-1']);
        return r.code === 0 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the signal to be taken' },
    );
    // go_live waits: only an executing process starts a task, so the second process owns the run.
    await waitingTask(ex, runId, 'go_live');
    const rejected = await ex.cli(['reject', runId, 'go_live', '--by', 'bob', '--comment', 'not on a friday']);
    expect(rejected.code, describeResult(rejected)).toBe(0);
    expect(rejected.stdout).toContain('go_live rejected by bob (applied by the process executing the run)');
    const done = await second.done;
    expect(done.code, describeResult(done)).toBe(1);

    const run = await ex.show(runId, ['--events']);
    expect(run.state).toBe('failed');
    expect(taskOf(run, 'qa_passed')).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(taskOf(run, 'go_live')).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'APPROVAL_REJECTED', message: 'bob rejected go_live: not on a friday' },
    });
    expect(states(run, ['cool_off', 'deploy', 'announce', 'cleanup'])).toEqual({
      cool_off: 'skipped',
      deploy: 'skipped',
      announce: 'skipped',
      cleanup: 'succeeded',
    });
    expect(taskOf(run, 'deploy.on_failure').skip_reason).toBe('not needed: deploy ended skipped');
    expect(eventsOf(run, 'task_waiting').map((e) => e.task)).toEqual(['qa_passed', 'go_live']);
  }, 90_000);

  it('a signal sent before the task waits is kept for it', async () => {
    const ex = example('approvals');
    const queued = await ex.cli(['run', 'release', '--enqueue', '-p', 'primary_up=true']);
    expect(queued.code, describeResult(queued)).toBe(0);
    const runId = queued.stdout.trim();
    const early = await ex.cli(['signal', runId, 'qa.passed', '--key', '1.4.2', '--data', '"early"', '--json']);
    expect(early.code, describeResult(early)).toBe(0);
    expect(parseJson(early)).toMatchObject({ woke: [], kept: true, run_state: 'queued' });

    const proc = ex.start(['resume', runId]);
    await waitingTask(ex, runId, 'go_live');
    const approved = await ex.cli(['approve', runId, 'go_live', '--by', 'bob']);
    expect(approved.code, describeResult(approved)).toBe(0);
    const done = await proc.done;
    expect(done.code, describeResult(done)).toBe(0);

    const run = await ex.show(runId);
    expect(taskOf(run, 'qa_passed').output).toBe('early');
    // The primary is up: deploy succeeds at once and its handler is not needed.
    expect(taskOf(run, 'deploy')).toMatchObject({ attempts: 1, output: { region: 'primary' } });
    expect(taskOf(run, 'deploy.on_failure').state).toBe('skipped');
    expect(taskOf(run, 'announce').output).toBe('released 1.4.2 to the primary region');
  }, 90_000);
});

describe('subflows', () => {
  it('one child run per region, two at a time, linked to the parent; the map lists their results', async () => {
    const ex = example('subflows');
    const run = await ex.run('nightly_load', [], 0);
    expect(run.state).toBe('succeeded');
    expect(run.children.map((c) => [c.flow, c.parent_task, c.state, c.params])).toEqual([
      ['load_region', 'per_region[0]', 'succeeded', { region: 'eu' }],
      ['load_region', 'per_region[1]', 'succeeded', { region: 'us' }],
      ['load_region', 'per_region[2]', 'succeeded', { region: 'apac' }],
    ]);
    const childIds = run.children.map((c) => c.id);
    expect(taskOf(run, 'per_region').output).toEqual([
      { load: { region: 'eu', loaded: 1200, run: childIds[0] } },
      { load: { region: 'us', loaded: 3400, run: childIds[1] } },
      { load: { region: 'apac', loaded: 900, run: childIds[2] } },
    ]);
    expect(taskOf(run, 'summary').output).toEqual({ regions: ['eu', 'us', 'apac'], rows: 5500, child_runs: childIds });

    // max_parallel 2: the third child starts once one of the first two has ended.
    const parent = await ex.show(run.id, ['--events']);
    expect(eventsOf(parent, 'map_items_started').map((e) => e.items)).toEqual([[0, 1], [2]]);

    const listed = await ex.cli(['runs', '--parent', run.id, '--json']);
    expect(listed.code, describeResult(listed)).toBe(0);
    expect(
      parseJson<{ id: string }[]>(listed)
        .map((r) => r.id)
        .sort(),
    ).toEqual([...childIds].sort());
    const child = await ex.show(childIds[1] as string);
    expect(child).toMatchObject({
      flow: 'load_region',
      state: 'succeeded',
      parent: { run: run.id, task: 'per_region[1]' },
    });
    expect(child.tasks.map((t) => [t.id, t.state])).toEqual([
      ['extract', 'succeeded'],
      ['check', 'succeeded'],
      ['load', 'succeeded'],
    ]);
  });

  it('a child that fails fails its item with SUBFLOW_FAILED, and the map with it', async () => {
    const ex = example('subflows');
    const run = await ex.run('nightly_load', ['-p', 'regions=["eu","us","apac","mars"]'], 1);
    expect(run.state).toBe('failed');
    expect(taskOf(run, 'per_region').error?.code).toBe('MAP_ITEM_FAILED');
    expect(taskOf(run, 'per_region[3]').error?.code).toBe('SUBFLOW_FAILED');
    expect(taskOf(run, 'summary').state).toBe('skipped');
    expect(run.children.map((c) => [c.parent_task, c.state])).toEqual([
      ['per_region[0]', 'succeeded'],
      ['per_region[1]', 'succeeded'],
      ['per_region[2]', 'succeeded'],
      ['per_region[3]', 'failed'],
    ]);
  });
});

describe('testing', () => {
  it('its flows are valid, and run through the CLI too', async () => {
    const ex = example('testing');
    const validated = await ex.cli(['validate']);
    expect(validated.code, describeResult(validated)).toBe(0);
    for (const flow of ['orders', 'checkout', 'restock', 'month_end', 'invoice']) {
      expect(validated.stdout).toContain(`(flow ${flow},`);
    }
    const orders = await ex.run('orders', [], 0);
    expect(taskOf(orders, 'shipping').output).toEqual({ carrier: 'post', days: 3 });
    const restock = await ex.run('restock', [], 0);
    expect(taskOf(restock, 'best_quote').output).toMatchObject({ winner: 'quote_ups' });
    expect(taskOf(restock, 'confirm_west').state).toBe('cancelled');
  });
});
