/**
 * The commands around waiting tasks and dynamic flows, through the real CLI on both
 * stores: `baton signal` wakes a task waiting for an event (or the run keeps the signal
 * until one waits), `baton approve` / `baton reject` decide approval tasks and refuse
 * requests that do not fit, and `baton show` says what tasks wait for, summarizes map
 * items (`--expand` lists them) and links parent and child runs.
 *
 * Runs are queued with `baton run --enqueue` and executed by `baton resume`, so that the
 * same steps work on SQLite and PostgreSQL; a background `resume` is the live owner that
 * requests go to, and a run nobody executes takes them directly.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { storeSetups } from '../store/pg-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import type { BatonProcess, CliResult, EventJson, ShowJson, TaskJson } from './cli-helpers.js';
import { baton, describeResult, parseJson, startBaton, taskOf, useTempDirs, waitFor } from './cli-helpers.js';

// Registers the check that every test stops the processes it starts.
useTempDirs();

const STORES = storeSetups('baton-e2e-dyn-');
const setups: StoreSetup[] = [];

afterEach(async () => {
  for (const s of setups.splice(0)) await s.cleanup();
});

const FLOWS: Readonly<Record<string, string>> = {
  waiter: `name: waiter
params:
  order: { type: string, default: o1 }
tasks:
  pay:
    wait_for_event: { event: paid, match: "\${{ params.order }}", timeout: 1h }
  ship:
    kind: shell
    command: ["echo", "shipped"]
    depends_on: [pay]
`,
  release: `name: release
tasks:
  gate:
    approval: { message: "Ship?", approvers: [alice] }
  ship:
    kind: shell
    command: ["echo", "shipped"]
    depends_on: [gate]
`,
  fanout: `name: fanout
params:
  items: { type: array, default: [1, 2, 3, 4] }
tasks:
  process:
    map: { over: "\${{ params.items }}" }
    kind: shell
    command: ["sh", "-c", "test \\"$ITEM\\" != 3 && echo item-$ITEM"]
    env: { ITEM: "\${{ item }}" }
`,
  grouped: `name: grouped
groups:
  ingest: { description: Raw data in }
tasks:
  a: { run: echo a, group: ingest }
  b: { run: echo b, group: ingest }
  c: { run: exit 3, group: ingest }
  solo: { run: echo solo, group: single }
  fast: { run: echo fast }
  slow: { run: sleep 30 }
  first: { race: { branches: [fast, slow] } }
  nap:
    sleep: 1h
`,
  outer: `name: outer
tasks:
  child:
    subflow: { flow: release }
  after:
    kind: shell
    command: ["echo", "after"]
    depends_on: [child]
`,
};

/** A task run in `show --json`, with what this suite reads beyond the basic shape. */
interface DynTaskJson extends TaskJson {
  readonly wait?: Record<string, unknown>;
  readonly group?: string;
}

interface DynShowJson extends ShowJson {
  readonly tasks: readonly DynTaskJson[];
  readonly parent: { run: string; task: string } | null;
  readonly children: readonly { id: string; flow: string; state: string; parent_task: string }[];
}

interface Project {
  cli(args: readonly string[]): Promise<CliResult>;
  /** A background `baton` process; it must have ended (or be awaited) before the test ends. */
  start(args: readonly string[]): BatonProcess;
  show(runId: string, extra?: readonly string[]): Promise<DynShowJson>;
  /** `baton run <flow> --enqueue`: the id of the queued run. */
  enqueue(flow: string, params?: readonly string[]): Promise<string>;
}

async function project(store: string): Promise<Project> {
  const setup = await (STORES[store] as () => Promise<StoreSetup>)();
  setups.push(setup);
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), 'concurrency: 4\n');
  for (const [name, text] of Object.entries(FLOWS)) writeFileSync(join(setup.dir, 'flows', `${name}.yaml`), text);
  const o = { cwd: setup.dir, env: setup.env };
  const cli = (args: readonly string[]) => baton(args, o);
  return {
    cli,
    start: (args) => startBaton(args, { ...o, timeoutMs: 60_000 }),
    async show(runId, extra = []) {
      const result = await cli(['show', runId, '--json', ...extra]);
      expect(result.code, describeResult(result)).toBe(0);
      return parseJson<DynShowJson>(result);
    },
    async enqueue(flow, params = []) {
      const result = await cli(['run', flow, '--enqueue', ...params]);
      expect(result.code, describeResult(result)).toBe(0);
      const runId = result.stdout.trim();
      expect(runId).toMatch(/^r[0-9a-z]+$/);
      return runId;
    },
  };
}

/** Polls `show --json` until the task is waiting; returns that task. */
async function waitUntilWaiting(p: Project, runId: string, task: string): Promise<DynTaskJson> {
  return waitFor(
    async () => {
      const t = (await p.show(runId)).tasks.find((x) => x.id === task);
      return t?.state === 'waiting' ? t : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `task ${task} of run ${runId} to wait` },
  );
}

async function ended(proc: BatonProcess): Promise<CliResult> {
  return proc.done;
}

describe.each(Object.keys(STORES))('waiting tasks and dynamic runs through the CLI on %s', (store) => {
  it('a signal wakes a task waiting for the event; its data becomes the output', async () => {
    const p = await project(store);
    const runId = await p.enqueue('waiter', ['-p', 'order=o7']);
    const owner = p.start(['resume', runId]);

    const pay = await waitUntilWaiting(p, runId, 'pay');
    expect(pay.wait).toMatchObject({ kind: 'event', event: 'paid', key: 'o7' });
    const text = await p.cli(['show', runId]);
    expect(text.stdout).toMatch(/^pay\s+waiting\s.*waiting for event paid \(key o7\)/m);

    // Another order's payment is not this task's: it is kept, and the task still waits.
    const other = await p.cli(['signal', runId, 'paid', '--key', 'o8', '--data', '{"amount": 99}', '--json']);
    expect(other.code, describeResult(other)).toBe(0);
    expect(parseJson(other)).toMatchObject({ run: runId, event: 'paid', woke: [], kept: true });

    const sent = await p.cli(['signal', runId, 'paid', '--key', 'o7', '--data', '{"amount": 12}', '--by', 'billing']);
    expect(sent.code, describeResult(sent)).toBe(0);
    expect(sent.stdout).toContain('woke pay');

    const done = await ended(owner);
    expect(done.code, describeResult(done)).toBe(0);
    expect(done.stderr).toMatch(/signal paid \(key o7\) received from billing/);
    const shown = await p.show(runId, ['--events']);
    expect(shown.state).toBe('succeeded');
    expect(taskOf(shown, 'pay').output).toEqual({ amount: 12 });
    expect(taskOf(shown, 'ship').state).toBe('succeeded');
    const received = (shown.events ?? []).filter((e: EventJson) => e.type === 'signal_received');
    expect(received.map((e) => [e.key, e.by])).toEqual([
      // Without --by, the OS user sends it.
      ['o8', userInfo().username],
      ['o7', 'billing'],
    ]);
  });

  it('a signal sent before the task waits is kept for it; a repeated id changes nothing', async () => {
    const p = await project(store);
    const runId = await p.enqueue('waiter', ['-p', 'order=o1']);

    const first = await p.cli(['signal', runId, 'paid', '--key', 'o1', '--data', '"early"', '--id', 'pay-1', '--json']);
    expect(first.code, describeResult(first)).toBe(0);
    expect(parseJson(first)).toEqual({
      run: runId,
      event: 'paid',
      key: 'o1',
      id: 'pay-1',
      woke: [],
      kept: true,
      duplicate: false,
      run_state: 'queued',
    });
    // Nothing executes the run yet: the command says what would.
    expect(first.stderr).toContain(`baton resume ${runId}`);
    const again = await p.cli(['signal', runId, 'paid', '--key', 'o1', '--data', '"late"', '--id', 'pay-1', '--json']);
    expect(again.code, describeResult(again)).toBe(0);
    expect(parseJson(again)).toMatchObject({ id: 'pay-1', duplicate: true, kept: true });

    const resumed = await p.cli(['resume', runId, '-q']);
    expect(resumed.code, describeResult(resumed)).toBe(0);
    const shown = await p.show(runId, ['--events']);
    expect(shown.state).toBe('succeeded');
    expect(taskOf(shown, 'pay').output).toBe('early');
    expect((shown.events ?? []).filter((e) => e.type === 'signal_received')).toHaveLength(1);
    expect((shown.events ?? []).find((e) => e.type === 'task_succeeded' && e.task === 'pay')?.signal).toBe('pay-1');

    // A finished run takes no signal; bad names and bad JSON are refused before anything changes.
    const late = await p.cli(['signal', runId, 'paid']);
    expect(late.code, describeResult(late)).toBe(2);
    expect(late.stderr).toMatch(/SIGNAL_INVALID: run \S+ is already succeeded/);
    const fresh = await p.enqueue('waiter');
    const badName = await p.cli(['signal', fresh, 'paid now']);
    expect(badName.code, describeResult(badName)).toBe(2);
    expect(badName.stderr).toContain('SIGNAL_INVALID');
    const badData = await p.cli(['signal', fresh, 'paid', '--data', '{amount: 1}']);
    expect(badData.code, describeResult(badData)).toBe(2);
    expect(badData.stderr).toMatch(/SIGNAL_INVALID: --data is not valid JSON: .*position/);
    const missing = await p.cli(['signal', 'r000000000nothere', 'paid']);
    expect(missing.code, describeResult(missing)).toBe(4);
    expect((await p.show(fresh, ['--events'])).events?.some((e) => e.type === 'signal_received')).toBe(false);
  });

  it('approve by an allowed approver lets the run go on and records who decided; others are refused', async () => {
    const p = await project(store);
    const runId = await p.enqueue('release');
    const owner = p.start(['resume', runId]);
    const gate = await waitUntilWaiting(p, runId, 'gate');
    expect(gate.wait).toMatchObject({ kind: 'approval', approvers: ['alice'] });
    expect((await p.cli(['show', runId])).stdout).toMatch(
      /^gate\s+waiting\s.*waiting for approval \(approvers alice\)/m,
    );

    const stranger = await p.cli(['approve', runId, 'gate', '--by', 'mallory']);
    expect(stranger.code, describeResult(stranger)).toBe(2);
    expect(stranger.stderr).toContain('APPROVER_NOT_ALLOWED');
    expect(stranger.stderr).toContain('mallory may not decide gate: its approvers are alice');

    const notWaiting = await p.cli(['approve', runId, 'ship', '--by', 'alice']);
    expect(notWaiting.code, describeResult(notWaiting)).toBe(2);
    expect(notWaiting.stderr).toMatch(/APPROVAL_NOT_WAITING: task ship of run \S+ is pending/);
    expect(notWaiting.stderr).toContain('waiting for an approval: gate');

    const unknown = await p.cli(['approve', runId, 'nope', '--by', 'alice']);
    expect(unknown.code, describeResult(unknown)).toBe(4);
    expect(unknown.stderr).toContain('TASK_NOT_FOUND');

    const approved = await p.cli(['approve', runId, 'gate', '--by', 'alice', '--comment', 'lgtm', '--json']);
    expect(approved.code, describeResult(approved)).toBe(0);
    expect(parseJson(approved)).toMatchObject({
      run: runId,
      task: 'gate',
      approved: true,
      by: 'alice',
      comment: 'lgtm',
      task_state: 'succeeded',
    });

    const done = await ended(owner);
    expect(done.code, describeResult(done)).toBe(0);
    expect(done.stderr).toContain('gate: approved by alice: lgtm');
    const shown = await p.show(runId, ['--events']);
    expect(shown.state).toBe('succeeded');
    expect(taskOf(shown, 'gate').output).toMatchObject({ approved: true, by: 'alice', comment: 'lgtm' });
    const decided = (shown.events ?? []).filter((e) => e.type === 'approval_decided');
    expect(decided).toEqual([expect.objectContaining({ task: 'gate', approved: true, by: 'alice', comment: 'lgtm' })]);

    const twice = await p.cli(['approve', runId, 'gate', '--by', 'alice']);
    expect(twice.code, describeResult(twice)).toBe(2);
    expect(twice.stderr).toMatch(/APPROVAL_NOT_WAITING: task gate of run \S+ is succeeded/);
  });

  it('reject fails the approval task with APPROVAL_REJECTED, applied directly when no process owns the run', async () => {
    const p = await project(store);
    const runId = await p.enqueue('release');
    const owner = p.start(['resume', runId]);
    await waitUntilWaiting(p, runId, 'gate');
    // Stop the owner: the run is left waiting, owned by nobody.
    owner.kill('SIGTERM');
    expect((await ended(owner)).code).toBe(130);

    const rejected = await p.cli(['reject', runId, 'gate', '--by', 'alice', '--comment', 'not today', '--json']);
    expect(rejected.code, describeResult(rejected)).toBe(0);
    expect(parseJson(rejected)).toMatchObject({
      run: runId,
      task: 'gate',
      approved: false,
      by: 'alice',
      task_state: 'failed',
      task_error: { code: 'APPROVAL_REJECTED' },
      run_state: 'failed',
    });
    const shown = await p.show(runId, ['--events']);
    expect(shown.state).toBe('failed');
    expect(taskOf(shown, 'gate').error).toMatchObject({
      code: 'APPROVAL_REJECTED',
      message: 'alice rejected gate: not today',
    });
    expect(taskOf(shown, 'ship').state).toBe('skipped');
    expect((shown.events ?? []).find((e) => e.type === 'approval_decided')).toMatchObject({
      approved: false,
      by: 'alice',
      comment: 'not today',
    });
  });

  it('show summarizes the items of a map in one line; --expand and --json list every item', async () => {
    const p = await project(store);
    const runId = await p.enqueue('fanout');
    const resumed = await p.cli(['resume', runId, '-q']);
    expect(resumed.code, describeResult(resumed)).toBe(1);

    const text = await p.cli(['show', runId]);
    expect(text.code, describeResult(text)).toBe(0);
    expect(text.stdout).toMatch(/^process\s+failed\s/m);
    expect(text.stdout).toMatch(/^ {2}process\[\*\] {2}4 items: 3 succeeded, 1 failed$/m);
    expect(text.stdout).not.toMatch(/process\[0\]/);
    expect(text.stdout).toContain('--expand lists every task run');

    const expanded = await p.cli(['show', runId, '--expand']);
    expect(expanded.code, describeResult(expanded)).toBe(0);
    for (const i of [0, 1, 3])
      expect(expanded.stdout).toMatch(new RegExp(`^ {2}process\\[${i}\\]\\s+succeeded\\s`, 'm'));
    expect(expanded.stdout).toMatch(/^ {2}process\[2\]\s+failed\s/m);
    expect(expanded.stdout).not.toContain('process[*]');

    const shown = await p.show(runId);
    expect(shown.tasks.map((t) => t.id)).toEqual(['process', 'process[0]', 'process[1]', 'process[2]', 'process[3]']);
    expect(taskOf(shown, 'process').error?.code).toBe('MAP_ITEM_FAILED');
    expect(taskOf(shown, 'process[1]').output).toBe('item-2');

    // One item runs again by its id; the others keep their results.
    const retried = await p.cli(['retry', runId, '--task', 'process[1]', '--enqueue']);
    expect(retried.code, describeResult(retried)).toBe(0);
    const rerun = await p.cli(['resume', runId, '-q']);
    expect(rerun.code, describeResult(rerun)).toBe(1);
    const again = await p.show(runId);
    expect(taskOf(again, 'process[1]')).toMatchObject({ state: 'succeeded', attempts: 2, output: 'item-2' });
    expect(taskOf(again, 'process[0]').attempts).toBe(1);
    expect(taskOf(again, 'process').error?.code).toBe('MAP_ITEM_FAILED');
  });

  it('show lists a group under its header, sleeps and lost races in NOTE; --expand lists every member', async () => {
    const p = await project(store);
    const runId = await p.enqueue('grouped');
    const owner = p.start(['resume', runId]);
    await waitUntilWaiting(p, runId, 'nap');
    await waitFor(
      async () => ((await p.show(runId)).tasks.find((t) => t.id === 'first')?.state === 'succeeded' ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 200, what: 'the race to be decided' },
    );

    const text = await p.cli(['show', runId]);
    expect(text.code, describeResult(text)).toBe(0);
    const out = text.stdout;
    expect(out).toMatch(/^group ingest {2}3 tasks: 2 succeeded, 1 failed {2}\(Raw data in\)$/m);
    // A summarized group keeps only the members that need a look.
    expect(out).toMatch(/^ {2}c\s+failed\s/m);
    expect(out).not.toMatch(/^ {2}[ab]\s/m);
    expect(out).toMatch(/^group single {2}1 task: 1 succeeded$/m);
    expect(out).toMatch(/^ {2}solo\s+succeeded\s/m);
    expect(out).toMatch(/^slow\s+cancelled\s.*lost the race for first$/m);
    expect(out).toMatch(/^nap\s+waiting\s.*sleeping until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m);

    const expanded = await p.cli(['show', runId, '--expand']);
    for (const id of ['a', 'b', 'c'])
      expect(expanded.stdout).toMatch(new RegExp(`^ {2}${id}\\s+(succeeded|failed)\\s`, 'm'));

    const shown = await p.show(runId);
    expect(taskOf(shown, 'a')).toMatchObject({ group: 'ingest' });
    expect(taskOf(shown, 'fast')).not.toHaveProperty('group');
    expect((taskOf(shown, 'nap') as DynTaskJson).wait).toMatchObject({ kind: 'timer' });
    expect(taskOf(shown, 'slow').skip_reason).toBe('lost the race for first');

    const cancelled = await p.cli(['cancel', runId]);
    expect(cancelled.code, describeResult(cancelled)).toBe(0);
    const done = await ended(owner);
    expect(done.code, describeResult(done)).toBe(1);
    expect(done.stderr).toMatch(/slow: lost the race for first/);
    expect(done.stderr).toMatch(/nap: sleeping until /);
  });

  it('a child run names its parent; the parent lists its children; runs --parent lists them', async () => {
    const p = await project(store);
    const runId = await p.enqueue('outer');
    const owner = p.start(['resume', runId]);
    const child = await waitUntilWaiting(p, runId, 'child');
    const childRun = String(child.wait?.run_id);
    expect(child.wait).toMatchObject({ kind: 'run' });

    const parent = await p.show(runId);
    expect(parent.children).toEqual([expect.objectContaining({ id: childRun, flow: 'release', parent_task: 'child' })]);
    const listed = await p.cli(['runs', '--parent', runId, '--json']);
    expect(listed.code, describeResult(listed)).toBe(0);
    expect(parseJson<{ id: string }[]>(listed).map((r) => r.id)).toEqual([childRun]);
    const parentText = await p.cli(['show', runId]);
    expect(parentText.stdout).toMatch(new RegExp(`waiting for child run ${childRun}`));
    expect(parentText.stdout).toMatch(new RegExp(`^children\\n.*\\n${childRun}\\s+release\\s`, 'm'));

    await waitUntilWaiting(p, childRun, 'gate');
    const childText = await p.cli(['show', childRun]);
    expect(childText.stdout).toContain(`parent   ${runId} (task child)`);
    expect((await p.show(childRun)).parent).toEqual({ run: runId, task: 'child' });

    const approved = await p.cli(['approve', childRun, 'gate', '--by', 'alice']);
    expect(approved.code, describeResult(approved)).toBe(0);
    const done = await ended(owner);
    expect(done.code, describeResult(done)).toBe(0);
    expect((await p.show(runId)).state).toBe('succeeded');
  });
});
