// Builds an engine on a fresh SQLite file for benchmarks: flows are defined in code and
// resolved directly, so a figure measures orchestration, not flow loading. A run's flow is
// pinned as the runtime pins it (pinSpec), so that creating a run writes what Baton writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePlan } from '../dist/core/run-machine.js';
import { pinSpec } from '../dist/core/run-history.js';
import { Engine } from '../dist/engine/engine.js';
import { createExecutors, newRunId } from '../dist/app/runtime.js';
import { SqliteStore } from '../dist/store/sqlite/sqlite-store.js';

export function openHarness(options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const store = new SqliteStore({ path: join(dir, 'bench.db') });
  const flows = new Map();
  const resolver = {
    async plan(name) {
      return flows.get(name).plan;
    },
    async resolve(name) {
      const f = flows.get(name);
      return { plan: f.plan, flowDir: dir, resolveFunction: (id) => f.definition.functionOf(id) };
    },
  };
  const engine = new Engine({
    store,
    executors: createExecutors(),
    flows: resolver,
    concurrency: options.concurrency ?? 256,
    leaseMs: 30_000,
  });
  const newRun = (spec) => {
    const now = Date.now();
    return {
      id: newRunId(now),
      flow: {
        flow: spec.name,
        version: 'bench',
        spec: pinSpec(spec),
        sourcePath: join(dir, 'bench.ts'),
        createdAt: now,
      },
      params: {},
      taskIds: spec.tasks.map((t) => t.id),
      createdAt: now,
    };
  };
  return {
    dir,
    store,
    engine,
    /** Registers a FlowDefinition; returns its spec. */
    register(definition) {
      const spec = definition.toSpec('bench');
      flows.set(spec.name, { definition, plan: compilePlan(spec) });
      return spec;
    },
    async createRun(spec) {
      const { run } = await store.createRun(newRun(spec));
      return run.id;
    },
    /** Creates and starts a run in one commit, as `baton run` does; resolves with its end. */
    async startRun(spec) {
      const { done } = await engine.startNew(newRun(spec));
      return done;
    },
    async close() {
      await engine.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
