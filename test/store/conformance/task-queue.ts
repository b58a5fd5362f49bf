/**
 * Conformance of the task queue port (src/store/ports/task-queue.ts): attempts handed to
 * workers by label, claims fenced by token, lost claims and cancellation.
 */
import { expect, it } from 'vitest';
import type { ClaimedTask } from '../../../src/store/store.js';
import { describePort, dispatchEntry } from './shared.js';
import type { StoreFactory } from './shared.js';

export function taskQueueConformance(factory: StoreFactory): void {
  describePort(factory, 'task queue', (t) => {
    const { startedRun } = t;

    it('hands queued attempts to workers whose labels match, and fences completions by token', async () => {
      const { store } = t;
      const { id, lease } = await startedRun();
      await store.commit([
        dispatchEntry(lease, [
          { task: 0, taskId: 'a', labels: [] },
          { task: 1, taskId: 'b', labels: ['gpu'] },
        ]),
      ]);
      const plain = await store.claimTasks({ worker: 'w1', labels: [], limit: 10, leaseMs: 10_000 });
      expect(plain.map((t) => t.taskId)).toEqual(['a']);
      expect(plain[0]).toMatchObject({
        runId: id,
        flow: 'demo',
        version: 'v1',
        attempt: 1,
        payload: { inputs: { n: 0 } },
      });
      const gpu = await store.claimTasks({ worker: 'w2', labels: ['gpu', 'eu'], limit: 10, leaseMs: 10_000 });
      expect(gpu.map((t) => t.taskId)).toEqual(['b']);
      expect(await store.claimTasks({ worker: 'w3', labels: ['gpu'], limit: 10, leaseMs: 10_000 })).toEqual([]);

      const a = plain[0] as (typeof plain)[number];
      expect(await store.renewTasks('w1', [{ id: a.id, token: a.token }], 10_000)).toEqual({ lost: [], cancelled: [] });
      const wrong = await store.completeTasks([{ id: a.id, token: a.token + 1, status: 'succeeded', output: 1 }]);
      expect(wrong.refused).toEqual([a.id]);
      expect(
        (await store.completeTasks([{ id: a.id, token: a.token, status: 'succeeded', output: { rows: 2 } }])).refused,
      ).toEqual([]);
      const outcomes = await store.harvestTasks([id], 100);
      expect(outcomes).toEqual([
        { id: a.id, runId: id, task: 0, attempt: 1, status: 'succeeded', output: { rows: 2 } },
      ]);
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], harvested: [a.id] }]);
      expect(await store.harvestTasks([id], 100)).toEqual([]);
    });

    it('reports an expired claim as lost once, refuses its late completion, and passes cancellation to the worker', async () => {
      const { store } = t;
      const { id, lease } = await startedRun();
      await store.commit([
        dispatchEntry(lease, [
          { task: 0, taskId: 'a', labels: [] },
          { task: 1, taskId: 'b', labels: [] },
        ]),
      ]);
      const claimed = await store.claimTasks({ worker: 'w1', labels: [], limit: 10, leaseMs: 40 });
      expect(claimed).toHaveLength(2);
      const [a, b] = claimed as [(typeof claimed)[number], (typeof claimed)[number]];
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], cancels: [{ task: 1, attempt: 1 }] }]);
      expect(await store.renewTasks('w1', [{ id: b.id, token: b.token }], 40)).toEqual({ lost: [], cancelled: [b.id] });
      await new Promise((r) => setTimeout(r, 120));
      const lost = await store.harvestTasks([id], 100);
      expect(lost.map((o) => [o.task, o.status])).toEqual([
        [0, 'lost'],
        [1, 'lost'],
      ]);
      expect(await store.harvestTasks([id], 100)).toEqual([]);
      expect(
        (await store.completeTasks([{ id: a.id, token: a.token, status: 'succeeded', output: 1 }])).refused,
      ).toEqual([a.id]);
      expect((await store.renewTasks('w1', [{ id: a.id, token: a.token }], 1000)).lost).toEqual([a.id]);
    });

    // Workers race from separate store objects, as separate processes would: each has its
    // own connections, so on PostgreSQL their statements meet on the server at once.
    it('hands one ready attempt to exactly one of eight workers racing for it', async () => {
      const { store } = t;
      const { id, lease } = await startedRun();
      await store.commit([dispatchEntry(lease, [{ task: 0, taskId: 'a', labels: [] }])]);
      const workers = await t.connectMany(8);
      const claims = await Promise.all(
        workers.map((other, i) => other.claimTasks({ worker: `w${i}`, labels: [], limit: 1, leaseMs: 10_000 })),
      );
      const won = claims.flat();
      expect(won).toHaveLength(1);
      const claim = won[0] as ClaimedTask;
      expect(claim.token).toBe(1);
      expect(
        (await store.completeTasks([{ id: claim.id, token: claim.token, status: 'succeeded', output: 1 }])).refused,
      ).toEqual([]);
      expect(await store.harvestTasks([id], 10)).toMatchObject([{ id: claim.id, status: 'succeeded', output: 1 }]);
    });

    it('never hands one attempt to two workers claiming batches at once', async () => {
      const { store } = t;
      const { lease } = await startedRun();
      const dispatches = Array.from({ length: 24 }, (_, i) => ({
        task: i % 3,
        taskId: ['a', 'b', 'c'][i % 3] as string,
        attempt: 1 + Math.floor(i / 3),
        labels: [],
        payload: {},
      }));
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], dispatches }]);
      const workers = await t.connectMany(8);
      const batches = await Promise.all(
        workers.map((other, i) => other.claimTasks({ worker: `w${i}`, labels: [], limit: 5, leaseMs: 10_000 })),
      );
      const ids = batches.flat().map((c) => c.id);
      expect(new Set(ids).size).toBe(ids.length);
      // Every worker still holds each claim it was handed, under its own token.
      const renewals = await Promise.all(
        workers.map((other, i) => other.renewTasks(`w${i}`, batches[i] as ClaimedTask[], 10_000)),
      );
      expect(renewals.flatMap((r) => r.lost)).toEqual([]);
      // The attempts no worker took are still ready, and nothing else is.
      const rest = await store.claimTasks({ worker: 'late', labels: [], limit: 100, leaseMs: 10_000 });
      expect(ids.length + rest.length).toBe(24);
    });
  });
}
