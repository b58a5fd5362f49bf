/**
 * Conformance of the triggers port (src/store/ports/triggers.ts): declared triggers,
 * atomic firings, and the cursor compare and set.
 */
import { expect, it } from 'vitest';
import { describePort, flow, runId } from './shared.js';
import type { StoreFactory } from './shared.js';

export function triggersConformance(factory: StoreFactory): void {
  describePort(factory, 'triggers', (t) => {
    it('records triggers, fires them atomically with their runs, and refuses a stale cursor', async () => {
      const { store } = t;
      const cron = { name: 'nightly', kind: 'cron', config: { cron: '0 2 * * *' }, params: {} };
      const hook = { name: 'hook', kind: 'webhook', config: {}, params: {} };
      await store.syncTriggers('demo', '/flows/demo.yaml', [cron, hook], 1000);
      expect((await store.listTriggers()).map((t) => [t.id, t.kind, t.paused])).toEqual([
        ['demo/hook', 'webhook', false],
        ['demo/nightly', 'cron', false],
      ]);
      expect(await store.setTriggerPaused('demo/hook', true)).toBe(true);
      expect(await store.setTriggerPaused('demo/none', true)).toBe(false);
      const newRun = (key: string) => ({
        id: runId(),
        flow,
        params: { interval_end: key },
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: key,
        triggerId: 'demo/nightly',
      });
      const first = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: null,
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [
          { at: 100, outcome: 'run', reason: 'cron 0 2 * * * at 100', run: newRun('demo/nightly@100') },
          { at: 100, outcome: 'skipped', reason: 'catch-up policy latest' },
        ],
      });
      expect(first?.map((r) => r.outcome)).toEqual(['run', 'skipped']);
      const runIdMade = first?.[0]?.runId as string;
      expect((await store.getRun(runIdMade))?.params).toEqual({ interval_end: 'demo/nightly@100' });
      // A second scheduler with the old cursor gets nothing done.
      const stale = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: null,
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [{ at: 100, outcome: 'run', reason: 'again', run: newRun('demo/nightly@100') }],
      });
      expect(stale).toBeNull();
      const again = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: { last: 100 },
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [
          { at: 150, outcome: 'run', reason: 'redelivered', run: newRun('demo/nightly@100'), cancelRuns: [runIdMade] },
        ],
      });
      expect(again).toEqual([{ outcome: 'deduplicated', runId: runIdMade }]);
      expect((await store.pendingRequests([runIdMade])).map((r) => r.kind)).toEqual(['cancel']);
      const trigger = await store.getTrigger('demo/nightly');
      expect(trigger).toMatchObject({ cursor: { last: 100 }, nextFireAt: 200 });
      expect((await store.listFirings('demo/nightly', 10)).map((f) => f.outcome)).toEqual([
        'deduplicated',
        'skipped',
        'run',
      ]);
      expect((await store.activeRuns('demo')).map((r) => r.id)).toEqual([runIdMade]);
      // Redeclaring the flow keeps cursors and pauses, and drops triggers no longer declared.
      await store.syncTriggers('demo', '/flows/demo.yaml', [cron], 2000);
      expect((await store.listTriggers()).map((t) => t.id)).toEqual(['demo/nightly']);
      expect((await store.getTrigger('demo/nightly'))?.cursor).toEqual({ last: 100 });
    });
  });
}
