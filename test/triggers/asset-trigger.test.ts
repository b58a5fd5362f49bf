/**
 * Asset triggers on both stores: a flow runs when its upstream assets have new versions
 * (all of them, or any), at most once per min_interval with the versions in between
 * coalesced, once per version set even with two trigger services racing or a restart, and
 * never for a version whose error check failed. Materializations are recorded through the
 * store as the post-body step records them; time is the harness's virtual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AssetCheckResult } from '../../src/store/ports/assets.js';
import type { RunRecord } from '../../src/store/store.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import type { TriggerProject } from './trigger-harness.js';
import { BACKENDS, MINUTE, flowYaml, openTriggerProject } from './trigger-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function downstream(settings: readonly string[]): string {
  return flowYaml('report', ['triggers:', '  on_assets:', '    kind: asset', '    poll: 20ms', ...settings]);
}

const FAILED_CHECK: AssetCheckResult = {
  name: 'id_not_null',
  kind: 'not_null',
  severity: 'error',
  passed: false,
  failingCount: 3,
  sample: [],
  message: null,
};
const WARNING: AssetCheckResult = { ...FAILED_CHECK, name: 'few_rows', kind: 'row_count', severity: 'warn' };

let runCounter = 0;

/** Records a materialization of `key` as a task of another flow would, at the virtual now. */
async function materialize(
  p: TriggerProject,
  key: string,
  version: string,
  checks: readonly AssetCheckResult[] = [],
): Promise<string> {
  const runId = `upstream-run-${++runCounter}`;
  await p.rt.store.recordMaterialization({
    assetKey: key,
    version,
    runId,
    flow: 'upstream',
    taskId: 'build',
    attempt: 1,
    at: p.clock.now,
    location: `data://lake/${key}.parquet`,
    size: 10,
    rowCount: 1,
    schema: null,
    inputs: [],
    checks,
  });
  return runId;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Waits (bounded) until the flow has `count` runs, then a few more polls to catch extras. */
async function runsAfterPolls(p: TriggerProject, count: number): Promise<RunRecord[]> {
  for (let i = 0; i < 200; i++) {
    if ((await p.runs('report')).length >= count) break;
    await sleep(10);
  }
  await sleep(150);
  return (await p.rt.store.listRuns({ flow: 'report', limit: 100 })).sort((a, b) => a.createdAt - b.createdAt);
}

async function started(p: TriggerProject): Promise<TriggerService> {
  const service = p.service();
  await service.start();
  cleanups.push(() => service.stop());
  return service;
}

for (const backend of BACKENDS) {
  describe(`asset triggers on ${backend.name}`, () => {
    async function open(settings: readonly string[]): Promise<TriggerProject> {
      const p = await openTriggerProject(backend, { report: downstream(settings) });
      cleanups.push(() => p.close());
      return p;
    }

    it('wait_for all: runs once every listed asset has a new version, with the versions as params', async () => {
      const p = await open(['    assets: [orders_clean, customers]']);
      await started(p);
      const ordersRun = await materialize(p, 'orders_clean', 'v-orders-1');
      expect(await runsAfterPolls(p, 1)).toHaveLength(0);
      p.clock.now += 1000;
      await materialize(p, 'customers', 'v-customers-1');
      const runs = await runsAfterPolls(p, 1);
      expect(runs).toHaveLength(1);
      expect(runs[0]?.params.upstream_assets).toEqual({
        orders_clean: {
          version: 'v-orders-1',
          materialized_at: new Date(p.clock.now - 1000).toISOString(),
          run_id: ordersRun,
          changed: true,
        },
        customers: expect.objectContaining({ version: 'v-customers-1', changed: true }),
      });
      // A new version of one asset alone does not start another run.
      await materialize(p, 'orders_clean', 'v-orders-2');
      expect(await runsAfterPolls(p, 2)).toHaveLength(1);
      await materialize(p, 'customers', 'v-customers-2');
      expect(await runsAfterPolls(p, 2)).toHaveLength(2);
    });

    it('wait_for any: runs on a new version of either asset, the other passed as unchanged', async () => {
      const p = await open(['    assets: [orders_clean, customers]', '    wait_for: any']);
      await started(p);
      await materialize(p, 'orders_clean', 'v-orders-1');
      expect(await runsAfterPolls(p, 1)).toHaveLength(1);
      p.clock.now += 1000;
      await materialize(p, 'customers', 'v-customers-1');
      const runs = await runsAfterPolls(p, 2);
      expect(runs).toHaveLength(2);
      expect(runs[1]?.params.upstream_assets).toMatchObject({
        orders_clean: { version: 'v-orders-1', changed: false },
        customers: { version: 'v-customers-1', changed: true },
      });
    });

    it('min_interval: at most one run per interval, versions arriving meanwhile coalesced into the next', async () => {
      const p = await open(['    assets: [orders_clean]', '    min_interval: 10m']);
      await started(p);
      await materialize(p, 'orders_clean', 'v1');
      expect(await runsAfterPolls(p, 1)).toHaveLength(1);
      p.clock.now += MINUTE;
      await materialize(p, 'orders_clean', 'v2');
      p.clock.now += MINUTE;
      await materialize(p, 'orders_clean', 'v3');
      expect(await runsAfterPolls(p, 2)).toHaveLength(1);
      p.clock.now += 8 * MINUTE;
      const runs = await runsAfterPolls(p, 2);
      expect(
        runs.map((r) => (r.params.upstream_assets as Record<string, { version: string }>).orders_clean?.version),
      ).toEqual(['v1', 'v3']);
    });

    it('a version whose error check failed starts nothing; a warning does not hold a version back', async () => {
      const p = await open(['    assets: [orders_clean]']);
      await started(p);
      await materialize(p, 'orders_clean', 'v-bad', [FAILED_CHECK]);
      expect(await runsAfterPolls(p, 1)).toHaveLength(0);
      await materialize(p, 'orders_clean', 'v-warned', [WARNING]);
      const runs = await runsAfterPolls(p, 1);
      expect(runs).toHaveLength(1);
      expect(runs[0]?.params.upstream_assets).toMatchObject({ orders_clean: { version: 'v-warned' } });
      // A bad version after a good one: still nothing new.
      await materialize(p, 'orders_clean', 'v-bad-2', [FAILED_CHECK]);
      expect(await runsAfterPolls(p, 2)).toHaveLength(1);
    });

    it('two trigger services racing create one run per version set', async () => {
      const p = await open(['    assets: [orders_clean, customers]']);
      await started(p);
      await started(p);
      for (let i = 1; i <= 3; i++) {
        await materialize(p, 'orders_clean', `o${i}`);
        await materialize(p, 'customers', `c${i}`);
        const runs = await runsAfterPolls(p, i);
        expect(runs).toHaveLength(i);
      }
      const runs = await p.rt.store.listRuns({ flow: 'report', limit: 100 });
      expect(new Set(runs.map((r) => r.dedupeKey)).size).toBe(3);
    });

    it('a restarted service resumes from the committed cursor: nothing consumed runs again', async () => {
      const p = await open(['    assets: [orders_clean]']);
      const first = await started(p);
      await materialize(p, 'orders_clean', 'v1');
      expect(await runsAfterPolls(p, 1)).toHaveLength(1);
      await first.stop();
      // Arrives while no service runs.
      p.clock.now += 1000;
      await materialize(p, 'orders_clean', 'v2');
      await started(p);
      const runs = await runsAfterPolls(p, 2);
      expect(
        runs.map((r) => (r.params.upstream_assets as Record<string, { version: string }>).orders_clean?.version),
      ).toEqual(['v1', 'v2']);
      const cursor = (await p.rt.store.getTrigger('report/on_assets'))?.cursor as { consumed: Record<string, unknown> };
      expect(cursor.consumed.orders_clean).toMatchObject({ version: 'v2' });
    });

    it('versions recorded before the trigger existed are taken as consumed', async () => {
      const p = await open(['    assets: [orders_clean]']);
      p.clock.now -= MINUTE;
      await materialize(p, 'orders_clean', 'v-old');
      p.clock.now += MINUTE;
      await started(p);
      expect(await runsAfterPolls(p, 1)).toHaveLength(0);
      await materialize(p, 'orders_clean', 'v-new');
      expect(await runsAfterPolls(p, 1)).toHaveLength(1);
    });
  });
}
