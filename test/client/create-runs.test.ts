/**
 * `Store.createRuns`, under `client.startMany`, on both stores: one transaction, answers in
 * input order, dedupe keys against existing runs and within the batch, all or nothing when
 * an input is refused, and batches that share keys running at once without a deadlock.
 * The testing kit creates its runs through the same use case, so the params limit holds there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePlan } from '../../src/core/run-machine.js';
import { defineFlow } from '../../src/index.js';
import { flowVersion } from '../../src/app/flow-catalog.js';
import { buildRun } from '../../src/app/runs.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { NewRun, Store } from '../../src/store/store.js';
import { testFlow } from '../../src/testing/index.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const flow = defineFlow({ name: 'batch', params: { n: { type: 'integer' } } });
flow.task('t', async () => 1);
const spec = flow.toSpec();
const loaded = { spec, version: flowVersion(spec, []), sourcePath: '/nowhere/batch.ts' };
compilePlan(spec);

const run = (n: number, dedupeKey?: string): NewRun =>
  buildRun({ paramsLimitBytes: 65536 }, loaded, { params: { n }, ...(dedupeKey ? { dedupeKey } : {}) });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores: Record<string, () => Promise<Store>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-create-runs-'));
    const store = new SqliteStore({ path: join(dir, 'baton.db') });
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => store.close());
    return store;
  },
  postgres: async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const store = await PostgresStore.open({ url: db.url, poolSize: 8 });
    cleanups.push(() => store.close());
    return store;
  },
};

for (const [name, open] of Object.entries(stores)) {
  describe(`createRuns on ${name}`, () => {
    it('creates every run with its tasks and first event, answering in input order', async () => {
      const store = await open();
      const inputs = [run(1), run(2, 'k-b'), run(3, 'k-a')];
      const made = await store.createRuns(inputs);
      expect(made.map((m) => m.run.id)).toEqual(inputs.map((i) => i.id));
      expect(made.every((m) => m.created)).toBe(true);
      expect(made.map((m) => m.run.params)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      for (const m of made) {
        expect(await store.getTaskRuns(m.run.id)).toHaveLength(1);
        expect((await store.readEvents(m.run.id)).map((e) => e.event.type)).toEqual(['run_created']);
      }
      expect(await store.createRuns([])).toEqual([]);
    });

    it('finds runs by dedupe key, existing ones and earlier ones of the same batch', async () => {
      const store = await open();
      const existing = await store.createRun(run(0, 'k-1'));
      const made = await store.createRuns([run(1, 'k-1'), run(2, 'k-2'), run(3, 'k-2'), run(4)]);
      expect(made.map((m) => m.created)).toEqual([false, true, false, true]);
      expect(made[0]?.run.id).toBe(existing.run.id);
      expect(made[2]?.run.id).toBe(made[1]?.run.id);
      expect(made[2]?.run.params).toEqual({ n: 2 });
      expect(await store.listRuns({})).toHaveLength(3);
    });

    it('creates nothing when one input is refused', async () => {
      const store = await open();
      const parent = await store.createRun(run(0));
      const child = (n: number): NewRun => ({
        ...run(n),
        parent: { runId: parent.run.id, task: 't', limits: { depth: 5, childRuns: 1 } },
      });
      await expect(store.createRuns([run(1, 'k-x'), child(2), child(3)])).rejects.toMatchObject({
        code: 'SUBFLOW_CHILD_RUNS',
      });
      expect((await store.listRuns({})).map((r) => r.id)).toEqual([parent.run.id]);
    });

    it('runs batches that share dedupe keys at once, each key creating one run', async () => {
      const store = await open();
      const keys = Array.from({ length: 40 }, (_, i) => `shared-${i}`);
      // Each batch names the keys in another order: the store must not deadlock on them.
      const batches = Array.from({ length: 6 }, (_, b) =>
        (b % 2 === 0 ? keys : [...keys].reverse()).map((k, i) => run(b * 100 + i, k)),
      );
      const results = await Promise.all(batches.map((batch) => store.createRuns(batch)));
      const runs = await store.listRuns({ limit: 10_000 });
      expect(runs).toHaveLength(keys.length);
      for (const [i, key] of keys.entries()) {
        const ids = new Set(results.map((r, b) => r[b % 2 === 0 ? i : keys.length - 1 - i]?.run.id));
        expect(ids.size, key).toBe(1);
      }
      expect(results.flat().filter((m) => m.created)).toHaveLength(keys.length);
    });
  });
}

describe('testing kit', () => {
  it('holds params to limits.params_bytes, as every other way of starting a run does', async () => {
    const blob = defineFlow({ name: 'kit_blob', params: { text: { type: 'string' } } });
    blob.task('len', async ({ params }) => params.text.length);
    await expect(testFlow(blob, { params: { text: 'x'.repeat(70 * 1024) } })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    const ok = await testFlow(blob, { params: { text: 'small' } });
    try {
      expect(await ok.settle()).toBe('succeeded');
      expect(ok.task('len').output).toBe(5);
    } finally {
      await ok.close();
    }
  });
});
