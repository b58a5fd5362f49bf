/**
 * Liveness of a task worker: an attempt it took always comes to an end the scheduler hears
 * of. A claim stays renewed only while its body runs, so that nothing the worker cannot
 * finish holds a task `running` forever; and one outcome or log line the store cannot take
 * (PostgreSQL refuses a NUL character in text and JSON) is reported in a form it takes,
 * instead of failing its batch, and with it every later outcome of the worker, forever.
 * Against the real stores, with a real scheduler in dispatch mode.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import type { FlowPlan } from '../../src/core/run-topology.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { FlowResolver } from '../../src/engine/engine.js';
import { storeSetups } from '../store/pg-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';

const stores = storeSetups('baton-worker-liveness-');
const runtimes: Runtime[] = [];
let setup: StoreSetup | undefined;

afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  await setup?.cleanup();
  setup = undefined;
});

const TASKS = `
export async function fine() {
  return { ok: true };
}
export async function nul(ctx) {
  ctx.log.info('before \\u0000 after');
  return { text: 'a\\u0000b' };
}
`;

async function project(kind: string, flowYaml: string): Promise<{ rt: Runtime; flowFile: string }> {
  setup = await (stores[kind] as () => Promise<StoreSetup>)();
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), 'lease: 1s\n');
  writeFileSync(join(setup.dir, 'flows', 'tasks.mjs'), TASKS);
  const flowFile = join(setup.dir, 'flows', 'flow.yaml');
  writeFileSync(flowFile, flowYaml);
  const rt = await openRuntime({ cwd: setup.dir, env: setup.env });
  runtimes.push(rt);
  return { rt, flowFile };
}

const fn = (id: string, exported: string) =>
  `  ${id}:\n    kind: function\n    module: ./tasks.mjs\n    export: ${exported}\n`;

/** The run's end state, or where it stands after `ms` (a bound for a busy machine, not a speed check). */
async function runEnd(rt: Runtime, id: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const run = await rt.store.getRun(id);
    if (run && isTerminalRun(run.state)) return run.state;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tasks = await rt.store.getTaskRuns(id);
  return `not ended after ${ms} ms: ${tasks.map((t) => `${t.taskId} ${t.state}#${t.attempts}`).join(', ')}`;
}

for (const kind of Object.keys(stores)) {
  describe(`task worker liveness on ${kind}`, () => {
    it('fails the attempt when the code around the body throws, instead of renewing its claim forever', async () => {
      const { rt, flowFile } = await project(kind, ['name: broken', 'tasks:', fn('only', 'fine')].join('\n'));
      const scheduler = rt.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
      scheduler.start();
      // The flow resolves, but reading its plan throws: as any fault between the claim and
      // the body would, such as a resolver of the caller's own.
      const broken: FlowResolver = {
        async resolve(flow, version) {
          const real = await rt.catalog.resolve(flow, version);
          return {
            ...real,
            get plan(): FlowPlan {
              throw new Error('the plan cannot be read');
            },
          };
        },
        plan: (flow, version) => rt.catalog.plan(flow, version),
      };
      const worker = rt.createWorker({ flows: broken, pollMs: 50, leaseMs: 600, owner: 'w' });
      worker.start();
      const { run } = await createRun(rt, await rt.catalog.find(flowFile));
      expect(await runEnd(rt, run.id)).toBe('failed');
      const [task] = await rt.store.getTaskRuns(run.id);
      expect(task).toMatchObject({ state: 'failed', attempts: 1 });
      expect(task?.error?.message).toContain('the plan cannot be read');
      // Reported once, not lost and retried.
      expect(worker.completedCount).toBe(1);
      await scheduler.stop();
      await worker.drain();
    }, 90_000);
  });
}

describe('task worker liveness on postgres, with an outcome the store refuses', () => {
  it('reports what the store refuses as a failure it takes, and the outcomes beside it as they are', async () => {
    const { rt, flowFile } = await project(
      'postgres',
      ['name: nul', 'tasks:', fn('bad', 'nul'), fn('good1', 'fine'), fn('good2', 'fine')].join('\n'),
    );
    const scheduler = rt.createScheduler({ leaseMs: 1000, engine: { pollMs: 50 } });
    scheduler.start();
    const diagnostics: string[] = [];
    const worker = rt.createWorker({ pollMs: 50, owner: 'w', onDiagnostic: (m) => diagnostics.push(m) });
    worker.start();
    const { run } = await createRun(rt, await rt.catalog.find(flowFile));
    expect(await runEnd(rt, run.id), diagnostics.slice(-5).join('\n')).toBe('failed');
    const tasks = new Map((await rt.store.getTaskRuns(run.id)).map((t) => [t.taskId, t]));
    expect(tasks.get('good1')).toMatchObject({ state: 'succeeded', attempts: 1, output: { ok: true } });
    expect(tasks.get('good2')).toMatchObject({ state: 'succeeded', attempts: 1, output: { ok: true } });
    // One attempt, failed with the store's reason: not lost and run again to the same refusal.
    expect(tasks.get('bad')).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'TASK_OUTPUT_INVALID' } });
    expect(tasks.get('bad')?.error?.message).toMatch(/the store refused the attempt's output: .*Unicode/);
    const logs = await rt.store.readLogs(run.id, { task: 'bad' });
    expect(logs.map((l) => l.text)).toEqual([expect.stringMatching(/^\[a log line the store refused: /)]);
    expect(worker.completedCount).toBe(3);
    await scheduler.stop();
    await worker.drain();
  }, 90_000);
});
