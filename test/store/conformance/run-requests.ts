/**
 * Conformance of the run requests port (src/store/ports/run-requests.ts): requests kept
 * until the owner's commit answers them.
 */
import { expect, it } from 'vitest';
import type { Lease } from '../../../src/store/store.js';
import { describePort, tasksEntry } from './shared.js';
import type { StoreFactory } from './shared.js';

export function runRequestsConformance(factory: StoreFactory): void {
  describePort(factory, 'run requests', (t) => {
    const { newRun } = t;

    it('keeps requests until a commit answers them', async () => {
      const { store } = t;
      const run = await newRun();
      await store.addRequest(run.id, 'cancel', { reason: 'stop' });
      const pending = await store.pendingRequests([run.id]);
      expect(pending).toMatchObject([{ runId: run.id, kind: 'cancel', payload: { reason: 'stop' } }]);
      const lease = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], answered: pending.map((p) => p.id) }]);
      expect(await store.pendingRequests([run.id])).toEqual([]);
    });

    it('keeps signal and approval requests, with their JSON payloads, until a commit answers them', async () => {
      const { store } = t;
      const run = await newRun();
      const signal = { name: 'file_landed', data: { path: '/in/a.csv', sizes: [1, 2] } };
      const approval = { task: 'publish', approved: true, by: 'ana', comment: null };
      await store.addRequest(run.id, 'signal', signal);
      await store.addRequest(run.id, 'approval', approval);
      await store.addRequest(run.id, 'cancel_task', { task: 'b' });
      const pending = await store.pendingRequests([run.id]);
      expect(pending.map((r) => [r.runId, r.kind, r.payload])).toEqual([
        [run.id, 'signal', signal],
        [run.id, 'approval', approval],
        [run.id, 'cancel_task', { task: 'b' }],
      ]);
      const lease = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      const [answered, ...rest] = pending;
      await store.commit([{ ...tasksEntry(lease, []), answered: [(answered as (typeof pending)[number]).id] }]);
      expect((await store.pendingRequests([run.id])).map((r) => r.kind)).toEqual(['approval', 'cancel_task']);
      await store.commit([{ ...tasksEntry(lease, []), answered: rest.map((r) => r.id) }]);
      expect(await store.pendingRequests([run.id])).toEqual([]);
    });
  });
}
