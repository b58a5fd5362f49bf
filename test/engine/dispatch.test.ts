/**
 * Scale-out execution on both stores: a scheduler engine in dispatch mode puts attempts on
 * the task queue and task workers run them. Labels route tasks, a dead worker's attempts
 * are retried elsewhere without using a retry, and cancellation reaches the worker.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { isTerminalRun } from '../../src/core/states.js';
import { storeSetups } from '../store/pg-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { TASKS_MJS } from './harness.js';

type Setup = StoreSetup;
const stores = storeSetups('baton-dispatch-');

const runtimes: Runtime[] = [];
let setup: Setup | undefined;

afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  await setup?.cleanup();
  setup = undefined;
});

async function project(kind: string, config = 'lease: 1s\n'): Promise<Setup> {
  setup = await (stores[kind] as () => Promise<Setup>)();
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), config);
  writeFileSync(join(setup.dir, 'flows', 'tasks.mjs'), TASKS_MJS);
  return setup;
}

async function runtime(s: Setup): Promise<Runtime> {
  const rt = await openRuntime({ cwd: s.dir, env: s.env });
  runtimes.push(rt);
  return rt;
}

async function waitForRun(rt: Runtime, id: string, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const run = await rt.store.getRun(id);
    if (run && isTerminalRun(run.state)) return run.state;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`run ${id} did not finish in ${ms} ms`);
}

function journal(dir: string): string[] {
  const path = join(dir, 'journal.txt');
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n') : [];
}

const task = (id: string, extra = '', withExtra = '') =>
  `  ${id}:\n    kind: function\n    module: ./tasks.mjs\n    export: work\n    with: { dir: "\${{ params.dir }}"${withExtra} }\n${extra}`;

for (const kind of Object.keys(stores)) {
  describe(`dispatch mode on ${kind}`, () => {
    it('runs a flow through the task queue, retrying failures, routing labelled tasks to labelled workers', async () => {
      const s = await project(kind);
      writeFileSync(
        join(s.dir, 'flows', 'etl.yaml'),
        [
          'name: etl',
          'params:',
          '  dir: { type: string }',
          'tasks:',
          task('a'),
          task('flaky', '    depends_on: [a]\n    retry: { max_attempts: 3, backoff: 20ms }', ', failTimes: 1'),
          task('gpu', '    depends_on: [a]\n    labels: [gpu]'),
          task('join', '    depends_on: [flaky, gpu]'),
        ].join('\n'),
      );
      const scheduling = await runtime(s);
      const scheduler = scheduling.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      const plainRt = await runtime(s);
      const plain = plainRt.createWorker({ pollMs: 50, owner: 'plain' });
      plain.start();
      const flow = await scheduling.catalog.find(join(s.dir, 'flows', 'etl.yaml'));
      const { run } = await createRun(scheduling, flow, { params: { dir: s.dir } });
      // Without a gpu worker the labelled task waits on the queue.
      await new Promise((r) => setTimeout(r, 600));
      const waiting = await scheduling.store.getTaskRuns(run.id);
      expect(waiting.find((t) => t.taskId === 'gpu')?.state).toBe('running');
      expect(journal(s.dir)).not.toContain('gpu 1');
      const gpuRt = await runtime(s);
      const gpu = gpuRt.createWorker({ pollMs: 50, labels: ['gpu', 'eu'], owner: 'gpu' });
      gpu.start();
      expect(await waitForRun(scheduling, run.id)).toBe('succeeded');
      const tasks = await scheduling.store.getTaskRuns(run.id);
      expect(tasks.map((t) => [t.taskId, t.state, t.attempts])).toEqual([
        ['a', 'succeeded', 1],
        ['flaky', 'succeeded', 2],
        ['gpu', 'succeeded', 1],
        ['join', 'succeeded', 1],
      ]);
      expect(journal(s.dir).sort()).toEqual(['a 1', 'flaky 1', 'flaky 2', 'gpu 1', 'join 1']);
      await scheduler.stop();
      await plain.drain();
      await gpu.drain();
    });

    it('hands a worker an upstream output stored by reference as its value, inputs rendered from it', async () => {
      const s = await project(kind, 'lease: 1s\nlimits:\n  output_bytes: 2000\n');
      writeFileSync(
        join(s.dir, 'flows', 'refs.mjs'),
        [
          "export function rows() { return Array.from({ length: 500 }, (_, i) => ({ i, name: 'row-' + i })); }",
          'export function count(ctx) { return { count: ctx.upstream.rows.length, first: ctx.inputs.first }; }',
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(s.dir, 'flows', 'refs.yaml'),
        [
          'name: refs',
          'tasks:',
          '  rows: { kind: function, module: ./refs.mjs, export: rows }',
          '  count:',
          '    kind: function',
          '    module: ./refs.mjs',
          '    export: count',
          '    depends_on: [rows]',
          '    with: { first: "${{ tasks.rows.output[0].name }}" }',
        ].join('\n'),
      );
      const scheduling = await runtime(s);
      const scheduler = scheduling.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      const workerRt = await runtime(s);
      const worker = workerRt.createWorker({ pollMs: 50, owner: 'refs' });
      worker.start();
      const flow = await scheduling.catalog.find(join(s.dir, 'flows', 'refs.yaml'));
      const { run } = await createRun(scheduling, flow);
      expect(await waitForRun(scheduling, run.id)).toBe('succeeded');
      const tasks = await scheduling.store.getTaskRuns(run.id);
      expect(tasks.find((t) => t.taskId === 'rows')?.output).toMatchObject({
        $baton_payload: { path: `data://baton/payloads/${run.id}/rows.1.json` },
      });
      expect(tasks.find((t) => t.taskId === 'count')?.output).toEqual({ count: 500, first: 'row-0' });
      await scheduler.stop();
      await worker.drain();
    });

    it('retries the attempts of a worker that died, without using up a retry', async () => {
      const s = await project(kind);
      writeFileSync(
        join(s.dir, 'flows', 'slow.yaml'),
        ['name: slow', 'params:', '  dir: { type: string }', 'tasks:', task('long', '', ', ms: 800')].join('\n'),
      );
      const scheduling = await runtime(s);
      const scheduler = scheduling.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      const doomedRt = await runtime(s);
      const doomed = doomedRt.createWorker({ pollMs: 50, leaseMs: 600, owner: 'doomed' });
      doomed.start();
      const flow = await scheduling.catalog.find(join(s.dir, 'flows', 'slow.yaml'));
      const { run } = await createRun(scheduling, flow, { params: { dir: s.dir } });
      const end = Date.now() + 10_000;
      while (!journal(s.dir).includes('long 1') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      // Stopping aborts the body and reports nothing: as far as the queue knows, the worker died.
      await doomed.stop();
      const heirRt = await runtime(s);
      const heir = heirRt.createWorker({ pollMs: 50, owner: 'heir' });
      heir.start();
      expect(await waitForRun(scheduling, run.id)).toBe('succeeded');
      const events = (await scheduling.store.readEvents(run.id)).map((e) => e.event);
      const failed = events.filter((e) => e.type === 'attempt_failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ lost: true, error: { code: 'WORKER_LOST' } });
      expect((await scheduling.store.getTaskRuns(run.id))[0]).toMatchObject({ state: 'succeeded', attempts: 2 });
      await scheduler.stop();
      await heir.drain();
    });

    it('cancels a run: the worker kills the running command', async () => {
      const s = await project(kind);
      writeFileSync(
        join(s.dir, 'flows', 'sleepy.yaml'),
        'name: sleepy\ntasks:\n  nap:\n    kind: shell\n    command: ["sh", "-c", "echo $$ > nap.pid; exec sleep 30"]\n',
      );
      const scheduling = await runtime(s);
      const scheduler = scheduling.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      const workerRt = await runtime(s);
      const worker = workerRt.createWorker({ pollMs: 50, leaseMs: 600, killGraceMs: 200 });
      worker.start();
      const flow = await scheduling.catalog.find(join(s.dir, 'flows', 'sleepy.yaml'));
      const { run } = await createRun(scheduling, flow);
      const pidFile = join(s.dir, 'flows', 'nap.pid');
      const end = Date.now() + 10_000;
      while (!(existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const pid = Number(readFileSync(pidFile, 'utf8'));
      await scheduling.store.addRequest(run.id, 'cancel', { reason: 'test' });
      expect(await waitForRun(scheduling, run.id)).toBe('cancelled');
      const deadline = Date.now() + 5000;
      let alive = true;
      while (alive && Date.now() < deadline) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 25));
        } catch {
          alive = false;
        }
      }
      expect(alive).toBe(false);
      await scheduler.stop();
      await worker.drain();
    });
  });
}
