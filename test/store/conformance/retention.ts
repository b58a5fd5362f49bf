/**
 * Conformance of the retention port (src/store/ports/retention.ts): pruning finished runs.
 */
import { expect, it } from 'vitest';
import { describePort } from './shared.js';
import type { StoreFactory } from './shared.js';

export function retentionConformance(factory: StoreFactory): void {
  describePort(factory, 'retention', (t) => {
    const { newRun, startedRun } = t;

    it('prunes finished runs that ended before the cutoff, with their history', async () => {
      const { store } = t;
      const old = await startedRun();
      await store.commit([
        {
          lease: old.lease,
          events: [{ type: 'run_succeeded', at: 1000 }],
          run: { state: 'succeeded', startedAt: 900, endedAt: 1000, error: null },
          tasks: [],
          timers: [],
          logs: [{ runId: old.id, taskId: 'a', attempt: 1, stream: 'log', at: 950, text: 'x' }],
        },
      ]);
      const live = await newRun();
      expect(await store.prune(Date.now())).toEqual({ runs: 1 });
      expect(await store.getRun(old.id)).toBeNull();
      expect(await store.readEvents(old.id)).toEqual([]);
      expect(await store.readLogs(old.id, {})).toEqual([]);
      expect(await store.getRun(live.id)).not.toBeNull();
    });
  });
}
