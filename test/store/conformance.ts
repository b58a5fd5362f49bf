/**
 * The store conformance suite: every implementation of the Store port must pass it. It is
 * written against the interface only; `sqlite.test.ts` runs it on a real SQLite file, and
 * the PostgreSQL implementation runs the same suite against a real server.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import type { FlowVersionRecord, Lease, Store } from '../../src/store/store.js';

export interface StoreFactory {
  readonly name: string;
  open(): Promise<Store>;
  /** Removes whatever `open` created. */
  destroy(store: Store): Promise<void>;
}

const flow: FlowVersionRecord = {
  flow: 'demo',
  version: 'v1',
  spec: '{"name":"demo"}',
  sourcePath: '/flows/demo.yaml',
  createdAt: 1_700_000_000_000,
};

let counter = 0;
function runId(): string {
  counter++;
  return `run-${process.pid}-${counter}`;
}

export function storeConformance(factory: StoreFactory): void {
  describe(`store conformance: ${factory.name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await factory.destroy(store);
    });

    async function newRun(options: { dedupeKey?: string; maxActiveRuns?: number; flowName?: string } = {}) {
      const id = runId();
      const { run } = await store.createRun({
        id,
        flow: { ...flow, flow: options.flowName ?? flow.flow },
        params: { day: '2024-01-01' },
        taskIds: ['a', 'b', 'c'],
        createdAt: Date.now(),
        dedupeKey: options.dedupeKey ?? null,
        maxActiveRuns: options.maxActiveRuns ?? null,
      });
      return run;
    }

    it('creates a queued run with pending task runs and a run_created event', async () => {
      const run = await newRun();
      expect(run.state).toBe('queued');
      expect(run.params).toEqual({ day: '2024-01-01' });
      const tasks = await store.getTaskRuns(run.id);
      expect(tasks.map((t) => [t.taskId, t.state, t.attempts])).toEqual([
        ['a', 'pending', 0],
        ['b', 'pending', 0],
        ['c', 'pending', 0],
      ]);
      const events = await store.readEvents(run.id);
      expect(events.map((e) => e.event.type)).toEqual(['run_created']);
      expect(await store.getFlowVersion('demo', 'v1')).toMatchObject({ sourcePath: '/flows/demo.yaml' });
    });

    it('returns the existing run for a repeated dedupe key', async () => {
      const first = await newRun({ dedupeKey: 'k1' });
      const again = await store.createRun({
        id: runId(),
        flow,
        params: {},
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: 'k1',
      });
      expect(again.created).toBe(false);
      expect(again.run.id).toBe(first.id);
      expect((await store.listRuns({})).filter((r) => r.dedupeKey === 'k1')).toHaveLength(1);
    });

    it('hands a run to one owner at a time and bumps the epoch on each claim', async () => {
      const run = await newRun();
      const a = await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 });
      expect(a).not.toBeNull();
      expect(await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 })).toBeNull();
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000, takeOverEpoch: (a as Lease).epoch });
      expect(b?.epoch).toBe((a as Lease).epoch + 1);
    });

    it('lets another owner claim a run whose lease lapsed', async () => {
      const run = await newRun();
      const a = (await store.claimRun(run.id, { owner: 'A', leaseMs: 30 })) as Lease;
      await new Promise((r) => setTimeout(r, 80));
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 });
      expect(b?.epoch).toBe(a.epoch + 1);
      expect(await store.renewLeases([a], 10_000)).toEqual([run.id]);
    });

    it('commits events and derived rows together, and refuses a stale epoch', async () => {
      const run = await newRun();
      const a = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      const started: RunEvent[] = [
        { type: 'run_started', at: 1 },
        { type: 'tasks_queued', at: 1, tasks: ['a'] },
        { type: 'task_started', at: 2, task: 'a', attempt: 1 },
      ];
      const result = await store.commit([
        {
          lease: a,
          events: started,
          run: { state: 'running', startedAt: 1, endedAt: null, error: null },
          tasks: [
            {
              index: 0,
              state: 'running',
              attempts: 1,
              startedAt: 2,
              endedAt: null,
              skipReason: null,
              output: undefined,
              error: null,
            },
          ],
          timers: [{ task: 1, dueAt: 5000 }],
          logs: [{ runId: run.id, taskId: 'a', attempt: 1, stream: 'stdout', at: 3, text: 'hello' }],
        },
      ]);
      expect(result.fenced).toEqual([]);
      expect((await store.readEvents(run.id)).map((e) => [e.seq, e.event.type])).toEqual([
        [1, 'run_created'],
        [2, 'run_started'],
        [3, 'tasks_queued'],
        [4, 'task_started'],
      ]);
      expect((await store.getRun(run.id))?.state).toBe('running');
      expect((await store.getTaskRuns(run.id))[0]).toMatchObject({ state: 'running', attempts: 1 });
      expect((await store.readLogs(run.id, {})).map((l) => l.text)).toEqual(['hello']);
      expect((await store.readEvents(run.id, 3)).map((e) => e.seq)).toEqual([4]);

      const b = (await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000, takeOverEpoch: a.epoch })) as Lease;
      const stale = await store.commit([
        {
          lease: a,
          events: [{ type: 'task_succeeded', at: 9, task: 'a', attempt: 1, output: 1 }],
          tasks: [],
          timers: [],
          logs: [],
        },
      ]);
      expect(stale.fenced).toEqual([run.id]);
      expect((await store.readEvents(run.id)).map((e) => e.event.type)).not.toContain('task_succeeded');
      const fresh = await store.commit([
        {
          lease: b,
          events: [{ type: 'task_succeeded', at: 9, task: 'a', attempt: 1, output: { rows: 3 } }],
          tasks: [
            {
              index: 0,
              state: 'succeeded',
              attempts: 1,
              startedAt: 2,
              endedAt: 9,
              skipReason: null,
              output: { rows: 3 },
              error: null,
            },
          ],
          timers: [{ task: 1, dueAt: null }],
          logs: [],
        },
      ]);
      expect(fresh.fenced).toEqual([]);
      expect((await store.getTaskRuns(run.id))[0]).toMatchObject({ state: 'succeeded', output: { rows: 3 } });
    });

    it('claims queued runs oldest first and respects max active runs per flow', async () => {
      const r1 = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const r2 = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const r3 = await newRun();
      const leases = await store.claimRuns({ owner: 'W', leaseMs: 10_000, limit: 10 });
      const ids = leases.map((l) => l.runId);
      expect(ids).toContain(r1.id);
      expect(ids).toContain(r3.id);
      expect(ids).not.toContain(r2.id);
      expect(await store.claimRuns({ owner: 'W2', leaseMs: 10_000, limit: 10 })).toEqual([]);
    });

    it('keeps requests until a commit answers them', async () => {
      const run = await newRun();
      await store.addRequest(run.id, 'cancel', { reason: 'stop' });
      const pending = await store.pendingRequests([run.id]);
      expect(pending).toMatchObject([{ runId: run.id, kind: 'cancel', payload: { reason: 'stop' } }]);
      const lease = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], answered: pending.map((p) => p.id) }]);
      expect(await store.pendingRequests([run.id])).toEqual([]);
    });

    it('filters runs by flow and state, newest first', async () => {
      const a = await newRun({ flowName: 'f1' });
      await new Promise((r) => setTimeout(r, 5));
      const b = await newRun({ flowName: 'f1' });
      await newRun({ flowName: 'f2' });
      expect((await store.listRuns({ flow: 'f1' })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await store.listRuns({ state: 'succeeded' })).length).toBe(0);
      expect((await store.listRuns({ limit: 1 })).length).toBe(1);
    });

    it('reads the database clock', async () => {
      const before = Date.now();
      const now = await store.now();
      expect(Math.abs(now - before)).toBeLessThan(5000);
    });
  });
}
