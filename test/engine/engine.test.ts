/**
 * The engine against a real SQLite file: parallelism and its bounds, retries as durable
 * timers, timeouts and cancellation killing process groups, output limits, fencing
 * between two engines, a locked database, and reruns that reuse successful outputs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { isTerminalRun } from '../../src/core/states.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Project } from './harness.js';
import { flowYaml, maxOverlap, openProject, workTask } from './harness.js';

let project: Project | undefined;
afterEach(async () => {
  await project?.close();
  project = undefined;
});

async function open(config = ''): Promise<Project> {
  project = await openProject(config);
  return project;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('engine', () => {
  it('runs independent tasks in parallel and a join after them', async () => {
    const p = await open();
    p.write(
      'flows/par.yaml',
      flowYaml('par', [
        workTask('a', { ms: 150 }),
        workTask('b', { ms: 150 }),
        workTask('c', { ms: 150 }),
        workTask('join', { deps: ['a', 'b', 'c'] }),
      ]),
    );
    const id = await p.run('flows/par.yaml', { dir: p.dir });
    expect((await p.rt.store.getRun(id))?.state).toBe('succeeded');
    expect(maxOverlap(p.dir)).toBe(3);
    const join_ = (await p.rt.store.getTaskRuns(id)).find((t) => t.taskId === 'join');
    expect(join_?.output).toMatchObject({ upstream: { a: { task: 'a' }, b: { task: 'b' }, c: { task: 'c' } } });
  });

  it('bounds parallelism by the global concurrency and by pool slots', async () => {
    const p = await open('pools:\n  narrow: 1\n');
    p.write(
      'flows/bounded.yaml',
      flowYaml('bounded', [
        ...['a', 'b', 'c', 'd'].map((id) => workTask(id, { ms: 60 })),
        ...['p1', 'p2', 'p3'].map((id) => workTask(id, { ms: 60, extra: 'pool: narrow' })),
      ]),
    );
    const id = await p.run('flows/bounded.yaml', { dir: p.dir }, { concurrency: 2 });
    expect((await p.rt.store.getRun(id))?.state).toBe('succeeded');
    expect(maxOverlap(p.dir)).toBeLessThanOrEqual(2);
    expect(maxOverlap(p.dir, (t) => t.startsWith('p'))).toBe(1);
  });

  it('retries a failing task with exponential backoff recorded as durable timers', async () => {
    const p = await open();
    p.write(
      'flows/retry.yaml',
      flowYaml('retry', [
        workTask('flaky', {
          failTimes: 2,
          extra: 'retry: { max_attempts: 3, backoff: 40ms, max_backoff: 1s, jitter: none }',
        }),
      ]),
    );
    const id = await p.run('flows/retry.yaml', { dir: p.dir });
    const events = await p.events(id);
    const retries = events.filter((e) => e.type === 'retry_scheduled');
    expect(retries.map((e) => (e.type === 'retry_scheduled' ? e.delayMs : 0))).toEqual([40, 80]);
    const starts = events.filter((e) => e.type === 'task_started');
    for (let i = 1; i < starts.length; i++) {
      const retry = retries[i - 1];
      expect(starts[i]?.at).toBeGreaterThanOrEqual(retry?.type === 'retry_scheduled' ? retry.dueAt : 0);
    }
    expect((await p.rt.store.getTaskRuns(id))[0]).toMatchObject({ state: 'succeeded', attempts: 3 });
    expect(p.journal()).toEqual(['flaky 1', 'flaky 2', 'flaky 3']);
  });

  it('does not retry errors outside retry_on, and fails the run with downstream skipped', async () => {
    const p = await open();
    p.write(
      'flows/kinds.yaml',
      flowYaml('kinds', [
        workTask('picky', {
          failTimes: 5,
          code: 'BAD_INPUT',
          extra: 'retry: { max_attempts: 4, backoff: 10ms, retry_on: [TIMEOUT] }',
        }),
        workTask('after', { deps: ['picky'] }),
        workTask('cleanup', { deps: ['picky'], extra: 'trigger_rule: all_done' }),
      ]),
    );
    const id = await p.run('flows/kinds.yaml', { dir: p.dir });
    const run = await p.rt.store.getRun(id);
    expect(run?.state).toBe('failed');
    const tasks = await p.rt.store.getTaskRuns(id);
    expect(tasks.map((t) => [t.taskId, t.state, t.attempts])).toEqual([
      ['picky', 'failed', 1],
      ['after', 'skipped', 0],
      ['cleanup', 'succeeded', 1],
    ]);
    expect(tasks[0]?.error?.code).toBe('BAD_INPUT');
    expect(tasks[1]?.skipReason).toMatch(/upstream failed: picky/);
  });

  it('times out an attempt by killing its whole process group', async () => {
    const p = await open();
    p.write(
      'flows/slow.yaml',
      `name: slow\ntasks:\n  sleepy:\n    kind: shell\n    command: ["sh", "-c", "sleep 30 & echo $! > child.pid; wait"]\n    timeout: 300ms\n`,
    );
    const id = await p.run('flows/slow.yaml', {}, { killGraceMs: 200 });
    const task = (await p.rt.store.getTaskRuns(id))[0];
    expect(task?.state).toBe('failed');
    expect(task?.error?.code).toBe('TASK_TIMEOUT');
    const child = Number(readFileSync(join(p.dir, 'flows', 'child.pid'), 'utf8'));
    await until(() => !pidAlive(child), 'the grandchild sleep to die');
  });

  it('cancels a run: running shell children are killed and the run ends cancelled', async () => {
    const p = await open();
    p.write(
      'flows/cancel.yaml',
      `name: cancel\ntasks:\n  long:\n    kind: shell\n    command: ["sh", "-c", "echo $$ > long.pid; exec sleep 30"]\n  next:\n    kind: shell\n    command: ["true"]\n    depends_on: [long]\n`,
    );
    const id = await p.create('flows/cancel.yaml');
    const engine = p.rt.createEngine({ killGraceMs: 200 });
    const done = engine.execute(id);
    const pidFile = join(p.dir, 'flows', 'long.pid');
    await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 'the task to start');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await p.rt.store.addRequest(id, 'cancel', { reason: 'test cancel' });
    expect(await done).toBe('cancelled');
    await engine.stop();
    const tasks = await p.rt.store.getTaskRuns(id);
    expect(tasks.map((t) => t.state)).toEqual(['cancelled', 'cancelled']);
    await until(() => !pidAlive(pid), 'the shell task to die');
  });

  it('refuses an output over limits.payload_bytes without retrying it', async () => {
    const p = await open('limits:\n  output_bytes: 1000\n  payload_bytes: 2000\n');
    p.write(
      'flows/big.yaml',
      `name: big\ntasks:\n  big:\n    kind: function\n    module: ./tasks.mjs\n    export: big\n    with: { bytes: 5000, dir: "${p.dir}" }\n    retry: { max_attempts: 3, backoff: 10ms }\n`,
    );
    const id = await p.run('flows/big.yaml');
    const task = (await p.rt.store.getTaskRuns(id))[0];
    expect(task).toMatchObject({ state: 'failed', attempts: 1 });
    expect(task?.error?.code).toBe('TASK_OUTPUT_TOO_LARGE');
    expect(task?.error?.message).toMatch(/is over the limit payload_bytes \(2000 bytes\)$/);
  });

  it('fences a process that lost its run: its late completion is refused', async () => {
    const p = await open();
    p.write(
      'flows/fence.yaml',
      flowYaml('fence', [workTask('slow', { ms: 400 }), workTask('next', { deps: ['slow'] })]),
    );
    const id = await p.create('flows/fence.yaml', { dir: p.dir });
    const a = p.rt.createEngine({ leaseMs: 60_000 });
    const aDone = a.execute(id);
    await until(() => p.journal().length === 1, 'the first attempt to start');
    const b = p.rt.createEngine({ leaseMs: 60_000 });
    await expect(b.execute(id)).rejects.toMatchObject({ code: 'RUN_OWNED' });
    // Simulate A's lease lapsing and another process taking the run.
    const record = await p.rt.store.getRun(id);
    const stolen = await p.rt.store.claimRun(id, {
      owner: 'thief',
      leaseMs: 60_000,
      takeOverEpoch: record?.epoch ?? -1,
    });
    expect(stolen).not.toBeNull();
    await expect(aDone).rejects.toMatchObject({ code: 'STORE_FENCED' });
    const events = await p.events(id);
    expect(events.filter((e) => e.type === 'task_succeeded')).toHaveLength(0);
    await a.stop();
    await b.stop();
  });

  it('waits out a locked database and carries on without losing a transition', async () => {
    const p = await open();
    p.write('flows/locked.yaml', flowYaml('locked', [workTask('a', { ms: 50 }), workTask('b', { deps: ['a'] })]));
    const id = await p.create('flows/locked.yaml', { dir: p.dir });
    const diagnostics: string[] = [];
    const engine = p.rt.createEngine({ onDiagnostic: (m) => diagnostics.push(m) });
    const done = engine.execute(id);
    await until(() => p.journal().length === 1, 'task a to start');
    const other = new Database(p.rt.config.databasePath, { timeout: 100 });
    other.exec('BEGIN IMMEDIATE');
    await until(
      () => diagnostics.some((d) => d.includes('STORE_BUSY') || d.includes('locked')),
      'a busy commit',
      20_000,
    );
    other.exec('ROLLBACK');
    other.close();
    expect(await done).toBe('succeeded');
    await engine.stop();
    expect(p.journal()).toEqual(['a 1', 'b 1']);
  }, 30_000);

  it('survives a full disk: the commit fails with STORE_FULL, nothing is half-written, and the run continues', async () => {
    const p = await open();
    // Task a returns 60 KB, which needs new pages; b depends on a.
    p.write(
      'flows/full.yaml',
      flowYaml('full', [
        workTask('gate', { ms: 300 }),
        `  a:\n    kind: function\n    module: ./tasks.mjs\n    export: big\n    with: { bytes: 60000, dir: "\${{ params.dir }}" }\n    depends_on: [gate]`,
        workTask('b', { deps: ['a'] }),
      ]),
    );
    const id = await p.create('flows/full.yaml', { dir: p.dir });
    // SQLite's max_page_count makes this connection's database "full" without filling a disk.
    const db = (p.rt.store as unknown as { db: Database.Database }).db;
    const diagnostics: string[] = [];
    const engine = p.rt.createEngine({ onDiagnostic: (m) => diagnostics.push(m) });
    const done = engine.execute(id);
    await until(() => p.journal().length === 1, 'task gate to start');
    const pages = Number(db.pragma('page_count', { simple: true }));
    db.pragma(`max_page_count = ${pages}`);
    await until(() => diagnostics.some((d) => d.includes('disk holding the database is full')), 'a full-disk commit');
    const succeeded = (await p.events(id))
      .filter((e) => e.type === 'task_succeeded')
      .map((e) => e.type === 'task_succeeded' && e.task);
    expect(succeeded).toEqual(['gate']);
    db.pragma('max_page_count = 1073741823');
    expect(await done).toBe('succeeded');
    await engine.stop();
    expect(p.journal()).toEqual(['gate 1', 'a 1', 'b 1']);
    expect((p.rt.store as SqliteStore).integrityCheck()).toBe('ok');
  });

  it('reruns failed tasks and reuses the outputs of tasks that succeeded', async () => {
    const p = await open();
    p.write(
      'flows/rerun.yaml',
      flowYaml('rerun', [
        workTask('ok'),
        workTask('bad', { deps: ['ok'], failTimes: 1 }),
        workTask('last', { deps: ['bad'] }),
      ]),
    );
    const id = await p.run('flows/rerun.yaml', { dir: p.dir });
    expect((await p.rt.store.getRun(id))?.state).toBe('failed');
    const engine = p.rt.createEngine();
    expect(await engine.applyDirect(id, { type: 'rerun', mode: 'failed' }, { includeFinished: true })).toBe(true);
    expect(await engine.execute(id)).toBe('succeeded');
    await engine.stop();
    expect(p.journal()).toEqual(['ok 1', 'bad 1', 'bad 2', 'last 1']);
    const tasks = await p.rt.store.getTaskRuns(id);
    expect(tasks.map((t) => [t.taskId, t.state, t.attempts])).toEqual([
      ['ok', 'succeeded', 1],
      ['bad', 'succeeded', 2],
      ['last', 'succeeded', 1],
    ]);
  });

  it('fails a run that exceeds its run timeout', async () => {
    const p = await open();
    p.write('flows/rt.yaml', flowYaml('rt', [workTask('slow', { ms: 5000 })], 'timeout: 200ms\n'));
    const id = await p.run('flows/rt.yaml', { dir: p.dir });
    const run = await p.rt.store.getRun(id);
    expect(run?.state).toBe('failed');
    expect(run?.error?.code).toBe('RUN_TIMEOUT');
    expect((await p.rt.store.getTaskRuns(id))[0]?.state).toBe('cancelled');
  });

  it('worker mode keeps at most max_active_runs runs of a flow active', async () => {
    const p = await open();
    p.write('flows/one.yaml', flowYaml('one', [workTask('a', { ms: 80 })], 'max_active_runs: 1\n'));
    const ids = [
      await p.create('flows/one.yaml', { dir: p.dir }),
      await p.create('flows/one.yaml', { dir: p.dir }),
      await p.create('flows/one.yaml', { dir: p.dir }),
    ];
    const engine = p.rt.createEngine({ pollMs: 20 });
    engine.startWorker();
    let maxRunning = 0;
    await until(
      async () => {
        const runs = await Promise.all(ids.map((id) => p.rt.store.getRun(id)));
        maxRunning = Math.max(maxRunning, runs.filter((r) => r?.state === 'running').length);
        return runs.every((r) => r && isTerminalRun(r.state));
      },
      'all runs to finish',
      20_000,
    );
    await engine.drain();
    expect(maxRunning).toBe(1);
    expect(maxOverlap(p.dir)).toBe(1);
  });
});
