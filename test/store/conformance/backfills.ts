/**
 * Conformance of the backfills port (src/store/ports/backfills.ts).
 */
import { expect, it } from 'vitest';
import { describePort, flow, runId } from './shared.js';
import type { StoreFactory } from './shared.js';

export function backfillsConformance(factory: StoreFactory): void {
  describePort(factory, 'backfills', (t) => {
    const { newRun } = t;

    it('records backfills and moves them with their runs in one transaction, refusing a stale version', async () => {
      const { store } = t;
      const spec = { name: 'nightly', kind: 'cron', config: { cron: '0 2 * * *', timezone: 'UTC' }, params: {} };
      const made = await store.createBackfill({
        id: 'b1',
        flow: 'demo',
        triggerId: 'demo/nightly',
        spec,
        sourcePath: '/flows/demo.yaml',
        fromAt: 1000,
        toAt: 5000,
        maxParallel: 2,
        rerun: true,
        state: 'running',
        total: 4,
        createdAt: 100,
      });
      expect(made).toMatchObject({
        id: 'b1',
        spec,
        rerun: true,
        state: 'running',
        total: 4,
        nextIndex: 0,
        doneIndex: 0,
        endedAt: null,
        reason: null,
      });
      await store.createBackfill({ ...made, id: 'b2', rerun: false, state: 'paused', createdAt: 200 });
      expect((await store.listBackfills()).map((b) => b.id)).toEqual(['b2', 'b1']);
      expect((await store.listBackfills({ states: ['running'] })).map((b) => b.id)).toEqual(['b1']);
      expect(await store.getBackfill('none')).toBeNull();

      const existing = await newRun({ dedupeKey: 'demo/nightly@k1' });
      const run = (key: string) => ({
        id: runId(),
        flow,
        params: {},
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: key,
        priority: -1,
        triggerId: 'demo/nightly#backfill-b1',
      });
      const moved = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version,
        at: 300,
        nextIndex: 2,
        runs: [run('demo/nightly@k1'), run('demo/nightly@k2')],
        cancelRuns: [{ runId: existing.id, reason: 'test' }],
      });
      expect(moved?.runs.map((r) => r.created)).toEqual([false, true]);
      expect(moved?.runs[0]?.runId).toBe(existing.id);
      expect(moved?.backfill).toMatchObject({ nextIndex: 2, doneIndex: 0, state: 'running', updatedAt: 300 });
      expect(moved?.backfill.version).toBe(made.version + 1);
      expect((await store.pendingRequests([existing.id])).map((r) => [r.kind, r.payload.reason])).toEqual([
        ['cancel', 'test'],
      ]);
      // A second process that read the old version writes nothing.
      const stale = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version,
        at: 400,
        nextIndex: 3,
        runs: [run('demo/nightly@k3')],
      });
      expect(stale).toBeNull();
      expect(await store.runsByDedupeKeys(['demo/nightly@k3'])).toEqual([]);
      expect((await store.getBackfill('b1'))?.nextIndex).toBe(2);
      const done = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version + 1,
        at: 500,
        doneIndex: 4,
        nextIndex: 4,
        state: 'completed',
        reason: 'finished',
      });
      expect(done?.backfill).toMatchObject({ state: 'completed', endedAt: 500, reason: 'finished', doneIndex: 4 });
      expect(await store.updateBackfill({ id: 'none', expectedVersion: 0, at: 1 })).toBeNull();
    });
  });
}
