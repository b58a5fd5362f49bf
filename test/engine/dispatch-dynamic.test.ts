/**
 * Dynamic flows in the scale-out deployment, on both stores: a scheduler in dispatch mode
 * and separate task workers. Workers run map instances (found by their path in the pinned
 * plan, with their item), a choice decided by a function, and a race's branches; the
 * scheduler runs the child run of a subflow and takes a signal and an approval sent while
 * it owns the run (as requests).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { decideApproval, sendSignal } from '../../src/app/run-requests.js';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';

const stores = storeSetups('baton-dispatch-dyn-');
const runtimes: Runtime[] = [];
let setup: StoreSetup | undefined;

afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  await setup?.cleanup();
  setup = undefined;
});

const TASKS = `
export const regions = () => ['eu', 'us', 'apac'];
export const files = (ctx) => [ctx.item + '-a', ctx.item + '-b'];
export const load = (ctx) => ({ file: ctx.item, index: ctx.mapIndex, worker: process.env.WORKER_NAME ?? 'none' });
export const double = (ctx) => ctx.params.n * 2;
export const report = (ctx) => ctx.upstream;
`;

const FLOW = `
name: dyn
tasks:
  regions: { kind: function, module: ./tasks.mjs, export: regions }
  per_region:
    depends_on: [regions]
    map: { over: "\${{ tasks.regions.output }}", max_parallel: 2 }
    tasks:
      files: { kind: function, module: ./tasks.mjs, export: files }
      load:
        depends_on: [files]
        map: { over: "\${{ tasks.files.output }}" }
        kind: function
        module: ./tasks.mjs
        export: load
  route:
    depends_on: [per_region]
    choice:
      rules:
        - when: "\${{ tasks.per_region.output[0][0].file == 'eu-a' }}"
          then: [fast]
      otherwise: [slow]
  fast: { kind: function, module: ./tasks.mjs, export: report }
  slow: { kind: function, module: ./tasks.mjs, export: report }
  paid:
    depends_on: [fast, slow]
    trigger_rule: none_failed_min_one_success
    wait_for_event: { event: paid, timeout: 1h }
  gate:
    depends_on: [paid]
    approval: { approvers: [ann] }
  child:
    depends_on: [gate]
    subflow: { flow: child, params: { n: "\${{ tasks.paid.output.n }}" } }
`;

const CHILD = `
name: child
params:
  n: { type: integer }
tasks:
  double: { kind: function, module: ./tasks.mjs, export: double }
`;

function waitUntil<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  return waitFor(probe, { timeoutMs: 20_000, what });
}

for (const kind of Object.keys(stores)) {
  describe(`dynamic flows in dispatch mode on ${kind}`, () => {
    it('workers run nested map items; the scheduler takes a signal, an approval, and runs the child run', async () => {
      setup = await (stores[kind] as () => Promise<StoreSetup>)();
      const s = setup;
      mkdirSync(join(s.dir, 'flows'));
      writeFileSync(join(s.dir, 'baton.yaml'), 'lease: 1s\n');
      writeFileSync(join(s.dir, 'flows', 'tasks.mjs'), TASKS);
      writeFileSync(join(s.dir, 'flows', 'dyn.yaml'), FLOW);
      writeFileSync(join(s.dir, 'flows', 'child.yaml'), CHILD);
      const rt = await openRuntime({ cwd: s.dir, env: s.env });
      runtimes.push(rt);
      const scheduler = rt.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      const workerRt = await openRuntime({ cwd: s.dir, env: s.env });
      runtimes.push(workerRt);
      const worker = workerRt.createWorker({ pollMs: 50, owner: 'w1' });
      worker.start();

      const flow = await rt.catalog.find('dyn');
      const { run } = await createRun(rt, flow, {});
      const tasksOf = async () => new Map((await rt.store.getTaskRuns(run.id)).map((t) => [t.taskId, t]));

      await waitUntil('the event wait', async () =>
        (await tasksOf()).get('paid')?.state === 'waiting' ? true : undefined,
      );
      const mapped = await tasksOf();
      expect(mapped.get('per_region')?.output).toEqual([
        [
          { file: 'eu-a', index: 0, worker: 'none' },
          { file: 'eu-b', index: 1, worker: 'none' },
        ],
        [
          { file: 'us-a', index: 0, worker: 'none' },
          { file: 'us-b', index: 1, worker: 'none' },
        ],
        [
          { file: 'apac-a', index: 0, worker: 'none' },
          { file: 'apac-b', index: 1, worker: 'none' },
        ],
      ]);
      expect(mapped.get('per_region[2].load[1]')).toMatchObject({ state: 'succeeded' });
      expect(mapped.get('slow')?.state).toBe('skipped');

      // Waiting only for the outside world, the run is parked (no owner, out of the
      // scheduler's memory): both are applied here, and the scheduler takes the run again.
      const parked = async () => ((await rt.store.getRun(run.id))?.owner === null ? true : undefined);
      await waitUntil('the run to be parked', parked);
      const signal = await sendSignal(rt, run.id, { event: 'paid', data: { n: 21 }, by: 'test' });
      expect(signal.delivery).toBe('direct');
      expect(signal.woke).toEqual(['paid']);
      await waitUntil('the approval wait', async () =>
        (await tasksOf()).get('gate')?.state === 'waiting' ? true : undefined,
      );
      await waitUntil('the run to be parked again', parked);
      const decided = await decideApproval(rt, run.id, 'gate', { approved: true, by: 'ann', comment: 'ok' });
      expect(decided.delivery).toBe('direct');

      const state = await waitUntil('the run to end', async () => {
        const r = await rt.store.getRun(run.id);
        return r && isTerminalRun(r.state) ? r.state : undefined;
      });
      expect(state).toBe('succeeded');
      const done = await tasksOf();
      expect(done.get('child')?.output).toEqual({ double: 42 });
      const children = await rt.store.listRuns({ parentRunId: run.id });
      expect(children.map((c) => [c.flow, c.state, c.parentTask])).toEqual([['child', 'succeeded', 'child']]);
      await scheduler.stop();
      await worker.drain();
    });
  });
}
