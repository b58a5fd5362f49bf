/**
 * Event times of a run on both stores when the engine's clock goes back (a wall clock set
 * back, an estimate of the database clock corrected): within a run they never decrease and
 * no task ends before it started. A jump back beyond the hold (MAX_HOLD_MS) is followed
 * instead, so that a retry armed after it still waits its backoff, not the jump.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import type { RunEvent } from '../../src/core/run-machine.js';
import { MAX_HOLD_MS } from '../../src/engine/database-clock.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';
import { flowYaml, TASKS_MJS, workTask } from './harness.js';

const stores = storeSetups('baton-times-');
let setup: StoreSetup | undefined;
let rt: Runtime | undefined;

afterEach(async () => {
  await rt?.close();
  rt = undefined;
  await setup?.cleanup();
  setup = undefined;
});

/** Runs `flow` with an engine whose clock goes back by `backMs` once `a`'s start is committed. */
async function runWithJump(kind: string, flow: string, backMs: number) {
  setup = await (stores[kind] as () => Promise<StoreSetup>)();
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'flows', 'tasks.mjs'), TASKS_MJS);
  const file = join(setup.dir, 'flows', 'times.yaml');
  writeFileSync(file, flow);
  rt = await openRuntime({ cwd: setup.dir, env: setup.env });
  let shift = 0;
  const engine = rt.createEngine({
    clock: { now: () => Date.now() + shift },
    onCommitted: (_runId, events) => {
      if (events.some((e) => e.type === 'task_started' && e.task === 'a')) shift = -backMs;
    },
  });
  const { run } = await createRun(rt, await rt.catalog.find(file), { params: { dir: setup.dir } });
  const began = Date.now();
  const state = await engine.execute(run.id);
  const elapsedMs = Date.now() - began;
  await engine.stop();
  const events = (await rt.store.readEvents(run.id)).map((e) => e.event);
  return { state, elapsedMs, events, tasks: await rt.store.getTaskRuns(run.id) };
}

/** Places where a run's history goes back in time, as `seq type at < previous at`. */
function backwards(events: readonly RunEvent[]): string[] {
  const out: string[] = [];
  events.forEach((e, i) => {
    const previous = events[i - 1];
    if (previous && e.at < previous.at) out.push(`${i + 1} ${e.type} ${e.at} < ${previous.at}`);
  });
  return out;
}

for (const kind of Object.keys(stores)) {
  describe(`event times on ${kind}`, () => {
    it('never go back within a run when the clock does, and no task ends before it started', async () => {
      const backMs = Math.round(MAX_HOLD_MS / 2);
      const flow = flowYaml('times', [
        workTask('a', { ms: 20 }),
        workTask('b', { deps: ['a'], ms: 20 }),
        workTask('c', { deps: ['b'] }),
      ]);
      const { state, events, tasks } = await runWithJump(kind, flow, backMs);
      expect(state).toBe('succeeded');
      expect(backwards(events)).toEqual([]);
      for (const t of tasks) expect(t.endedAt as number, t.taskId).toBeGreaterThanOrEqual(t.startedAt as number);
      const at = (type: string, task: string) =>
        events.find((e) => e.type === type && (e as { task?: string }).task === task)?.at as number;
      expect(at('task_succeeded', 'a')).toBeGreaterThanOrEqual(at('task_started', 'a'));
    });

    it('follow a jump back beyond the hold: a retry armed after it waits its backoff, not the jump', async () => {
      const flow = flowYaml('times', [
        workTask('a', { failTimes: 1, extra: 'retry: { max_attempts: 2, backoff: 50ms }' }),
      ]);
      const { state, elapsedMs, events } = await runWithJump(kind, flow, 3_600_000);
      expect(state).toBe('succeeded');
      expect(events.filter((e) => e.type === 'task_started')).toHaveLength(2);
      expect(elapsedMs).toBeLessThan(20_000);
    }, 30_000);
  });
}
