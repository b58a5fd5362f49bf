/**
 * Conformance of the logs port (src/store/ports/logs.ts).
 */
import { expect, it } from 'vitest';
import { describePort } from './shared.js';
import type { StoreFactory } from './shared.js';

export function logsConformance(factory: StoreFactory): void {
  describePort(factory, 'logs', (t) => {
    const { newRun } = t;

    it('appends worker logs outside a run commit', async () => {
      const { store } = t;
      const run = await newRun();
      await store.appendLogs([
        { runId: run.id, taskId: 'a', attempt: 1, stream: 'stdout', at: 1, text: 'one' },
        { runId: run.id, taskId: 'b', attempt: 1, stream: 'stderr', at: 2, text: 'two' },
      ]);
      expect((await store.readLogs(run.id, { task: 'b' })).map((l) => [l.stream, l.text])).toEqual([['stderr', 'two']]);
    });
  });
}
