/**
 * Parked runs, on both stores: a run whose open work only waits (a sleep, an event, a child
 * run) leaves the memory of the engine that owned it, holds no lease, and is claimed again
 * — by any engine — when its timer is due, a request for it arrives, or its child ends.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { sendSignal } from '../../src/app/run-requests.js';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import type { Engine } from '../../src/engine/engine.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';

const stores = storeSetups('baton-parking-');
const runtimes: Runtime[] = [];
const engines: Engine[] = [];
let setup: StoreSetup | undefined;

afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
  for (const rt of runtimes.splice(0)) await rt.close();
  await setup?.cleanup();
  setup = undefined;
});

const FLOWS: Record<string, string> = {
  'nap.yaml': `
name: nap
tasks:
  nap: { sleep: 3s }
  after: { depends_on: [nap], kind: shell, command: ["true"] }
`,
  'paid.yaml': `
name: paid
tasks:
  paid: { wait_for_event: { event: paid } }
  after: { depends_on: [paid], kind: shell, command: ["true"] }
`,
  'busy.yaml': `
name: busy
tasks:
  work: { kind: shell, command: ["sleep", "30"] }
`,
  // Long enough that both runs are seen parked together on a busy machine: a run is taken
  // back a second before its timer is due.
  'long_nap.yaml': `
name: long_nap
tasks:
  nap: { sleep: 8s }
`,
  'parent.yaml': `
name: parent
tasks:
  child: { subflow: { flow: long_nap } }
`,
};

async function projectRuntime(kind: string): Promise<Runtime> {
  setup = await (stores[kind] as () => Promise<StoreSetup>)();
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), 'lease: 2s\n');
  for (const [file, text] of Object.entries(FLOWS)) writeFileSync(join(setup.dir, 'flows', file), text);
  const rt = await openRuntime({ cwd: setup.dir, env: setup.env });
  runtimes.push(rt);
  return rt;
}

/** A worker that parks what waits 2 s or more, and claims a parked run 1 s before it is due. */
function worker(rt: Runtime): Engine {
  const engine = rt.createEngine({ pollMs: 50, wakeAheadMs: 1000 });
  engines.push(engine);
  engine.startWorker();
  return engine;
}

function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  return waitFor(async () => probe(), { timeoutMs: 20_000, what });
}

async function ended(rt: Runtime, runId: string): Promise<string> {
  return until(`run ${runId} to end`, async () => {
    const run = await rt.store.getRun(runId);
    return run && isTerminalRun(run.state) ? run.state : undefined;
  });
}

for (const kind of Object.keys(stores)) {
  describe(`parked runs on ${kind}`, () => {
    it('a sleeping run leaves memory, holds no lease, and wakes when its timer is due', async () => {
      const rt = await projectRuntime(kind);
      const engine = worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('nap'), {});
      await until('the run to be parked', async () => {
        const record = await rt.store.getRun(run.id);
        return record?.state === 'running' && record.owner === null && record.leaseUntil === null ? true : undefined;
      });
      expect(engine.activeRunIds()).not.toContain(run.id);
      expect(await ended(rt, run.id)).toBe('succeeded');
      const tasks = await rt.store.getTaskRuns(run.id);
      expect(tasks.map((t) => [t.taskId, t.state])).toEqual([
        ['nap', 'succeeded'],
        ['after', 'succeeded'],
      ]);
      const nap = tasks[0];
      expect((nap?.endedAt ?? 0) - (nap?.startedAt ?? 0)).toBeGreaterThanOrEqual(2900);
    });

    it('a parked run is claimed back shortly before its timer is due, and waits for it in memory', async () => {
      const rt = await projectRuntime(kind);
      const store = rt.store;
      const claims: { at: number; ids: string[] }[] = [];
      const claimRuns = store.claimRuns.bind(store);
      store.claimRuns = async (options) => {
        const leases = await claimRuns(options);
        claims.push({ at: Date.now(), ids: leases.map((l) => l.runId) });
        return leases;
      };
      worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('nap'), {});
      await until('the run to be parked', async () => {
        const record = await store.getRun(run.id);
        return record?.state === 'running' && record.owner === null ? true : undefined;
      });
      const parkedAt = Date.now();
      expect(await ended(rt, run.id)).toBe('succeeded');
      const nap = (await store.getTaskRuns(run.id))[0];
      const due = (nap?.startedAt ?? 0) + 3000;
      const taken = claims.filter((c) => c.at >= parkedAt && c.ids.includes(run.id));
      expect(taken).toHaveLength(1);
      // Claimed about a second ahead (the worker's wakeAheadMs): before the timer is due, and the
      // sleep still lasted its whole 3 s.
      expect(taken[0]?.at).toBeLessThan(due);
      expect(nap?.endedAt ?? 0).toBeGreaterThanOrEqual(due);
    });

    it("a parked run's timer fires in another engine after its owner stopped", async () => {
      const rt = await projectRuntime(kind);
      const first = worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('nap'), {});
      await until('the run to be parked', async () =>
        (await rt.store.getRun(run.id))?.owner === null ? true : undefined,
      );
      await first.stop();
      const other = await openRuntime({ cwd: (setup as StoreSetup).dir, env: (setup as StoreSetup).env });
      runtimes.push(other);
      worker(other);
      expect(await ended(rt, run.id)).toBe('succeeded');
    });

    it('a signal wakes a run parked on an event, and the engine runs what follows', async () => {
      const rt = await projectRuntime(kind);
      const engine = worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('paid'), {});
      await until('the run to be parked', async () => {
        const record = await rt.store.getRun(run.id);
        return record?.owner === null && record.state === 'running' ? true : undefined;
      });
      expect(engine.activeRunIds()).toEqual([]);
      const signal = await sendSignal(rt, run.id, { event: 'paid', data: { n: 1 }, by: 'test' });
      expect(signal.woke).toEqual(['paid']);
      expect(await ended(rt, run.id)).toBe('succeeded');
    });

    it('a request recorded for a parked run makes it due at once, and its engine answers it', async () => {
      const rt = await projectRuntime(kind);
      worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('paid'), {});
      await until('the run to be parked', async () =>
        (await rt.store.getRun(run.id))?.owner === null ? true : undefined,
      );
      // As a process that cannot take the run itself would: the request alone must wake it.
      await rt.store.addRequest(run.id, 'signal', { event: 'paid', key: null, data: null, by: 'test', id: 's1' });
      expect(await ended(rt, run.id)).toBe('succeeded');
      expect(await rt.store.pendingRequests([run.id])).toEqual([]);
    });

    it("a parent parked on its child run is made due by the child's end", async () => {
      const rt = await projectRuntime(kind);
      worker(rt);
      const { run } = await createRun(rt, await rt.catalog.find('parent'), {});
      const child = await until('the child run', async () => (await rt.store.listRuns({ parentRunId: run.id }))[0]);
      await until('both runs to be parked', async () => {
        const [p, c] = await Promise.all([rt.store.getRun(run.id), rt.store.getRun(child.id)]);
        return p?.owner === null && c?.owner === null && p.state === 'running' ? true : undefined;
      });
      expect(await ended(rt, child.id)).toBe('succeeded');
      expect(await ended(rt, run.id)).toBe('succeeded');
    });
  });
}

describe('an input the run machine refuses', () => {
  it('fences the engine off the run: nothing of the half-applied decision is committed', async () => {
    const rt = await projectRuntime('sqlite');
    const diagnostics: string[] = [];
    const engine = rt.createEngine({ pollMs: 50, onDiagnostic: (m) => diagnostics.push(m) });
    engines.push(engine);
    const { run } = await createRun(rt, await rt.catalog.find('busy'), {});
    const done = engine.execute(run.id);
    await until('the task to run', async () =>
      (await rt.store.getTaskRuns(run.id))[0]?.state === 'running' ? true : undefined,
    );
    const before = (await rt.store.readEvents(run.id)).length;
    // Items for a task that is no map: illegal in any state.
    expect(engine.send(run.id, { type: 'map_items', task: 0, attempt: 1, items: [1, 2] })).toBe(true);
    await expect(done).rejects.toMatchObject({ code: 'STORE_FENCED' });
    expect(diagnostics.join('\n')).toMatch(/RUN_INVALID_TRANSITION/);
    expect(engine.activeRunIds()).toEqual([]);
    expect((await rt.store.readEvents(run.id)).length).toBe(before);
  });
});
