/**
 * Conformance of the assets port (src/store/ports/assets.ts): materializations recorded
 * whole and once per attempt, the latest one per asset, lineage edges read both ways,
 * staleness when an input changed, check results kept in order with bounded samples, and
 * listings and version pages in a stable order.
 */
import { expect, it } from 'vitest';
import type { AssetCheckResult, AssetMaterialization } from '../../../src/store/ports/assets.js';
import { ASSET_CHECK_SAMPLE_ROWS } from '../../../src/store/ports/assets.js';
import { describePort } from './shared.js';
import type { StoreFactory } from './shared.js';

const V1 = '1'.repeat(64);
const V2 = '2'.repeat(64);
const V3 = '3'.repeat(64);

let attempts = 0;

/** A materialization of `assetKey`, each call by a new attempt unless `fields` says otherwise. */
function made(assetKey: string, version: string, fields: Partial<AssetMaterialization> = {}): AssetMaterialization {
  attempts += 1;
  return {
    assetKey,
    version,
    runId: `run-${attempts}`,
    flow: 'orders',
    taskId: 'clean',
    attempt: 1,
    at: 1000 + attempts,
    location: `data://curated/${assetKey}.parquet`,
    size: 120,
    rowCount: 3,
    schema: [
      { name: 'order_id', type: 'BIGINT' },
      { name: 'total', type: 'DOUBLE' },
    ],
    inputs: [],
    checks: [],
    ...fields,
  };
}

function check(name: string, fields: Partial<AssetCheckResult> = {}): AssetCheckResult {
  return {
    name,
    kind: 'not_null',
    severity: 'error',
    passed: true,
    failingCount: 0,
    sample: [],
    message: null,
    ...fields,
  };
}

export function assetsConformance(factory: StoreFactory): void {
  describePort(factory, 'assets', (t) => {
    it('records a materialization with its inputs, reads it back, and lists the asset', async () => {
      const { store } = t;
      const m = made('orders_clean', V1, { inputs: [{ assetKey: 'orders_raw', version: null }] });
      const { id, created } = await store.recordMaterialization(m);
      expect(created).toBe(true);
      const { checks: _checks, ...rest } = m;
      expect(await store.assetVersions('orders_clean', { limit: 10 })).toEqual([{ ...rest, id }]);
      expect(await store.listAssets({ limit: 10 })).toEqual([
        {
          key: 'orders_clean',
          latestId: id,
          latestVersion: V1,
          latestAt: m.at,
          flow: 'orders',
          taskId: 'clean',
          runId: m.runId,
          stale: false,
        },
      ]);
      expect(await store.getAsset('orders_clean')).toMatchObject({ key: 'orders_clean', latestId: id });
      expect(await store.getAsset('nothing')).toBeNull();
      expect(await store.assetVersions('nothing', { limit: 10 })).toEqual([]);
    });

    it('keeps the first recording of an attempt and reports it', async () => {
      const { store } = t;
      const m = made('orders_clean', V1, { checks: [check('a')] });
      const first = await store.recordMaterialization(m);
      const again = await store.recordMaterialization({ ...m, version: V2, checks: [check('b'), check('c')] });
      expect(again).toEqual({ id: first.id, created: false });
      const versions = await store.assetVersions('orders_clean', { limit: 10 });
      expect(versions.map((v) => v.version)).toEqual([V1]);
      expect((await store.assetChecks(first.id)).map((c) => c.name)).toEqual(['a']);
    });

    it('pages versions newest first', async () => {
      const { store } = t;
      const ids: number[] = [];
      for (const v of [V1, V2, V3, V1]) ids.push((await store.recordMaterialization(made('daily', v))).id);
      const first = await store.assetVersions('daily', { limit: 3 });
      expect(first.map((v) => v.id)).toEqual([ids[3], ids[2], ids[1]]);
      const rest = await store.assetVersions('daily', { limit: 3, beforeId: first.at(-1)?.id as number });
      expect(rest.map((v) => v.id)).toEqual([ids[0]]);
      expect((await store.getAsset('daily'))?.latestVersion).toBe(V1);
    });

    it('prunes versions older than a time with their inputs and checks, keeping the latest of each asset', async () => {
      const { store } = t;
      const old = await store.recordMaterialization(
        made('prunable', V1, { at: 10, inputs: [{ assetKey: 'raw', version: V3 }], checks: [check('a')] }),
      );
      const middle = await store.recordMaterialization(made('prunable', V2, { at: 20 }));
      const latest = await store.recordMaterialization(made('prunable', V3, { at: 30 }));
      const lone = await store.recordMaterialization(made('lonely', V1, { at: 5 }));
      expect(await store.pruneAssetVersions(25)).toBe(2);
      expect((await store.assetVersions('prunable', { limit: 10 })).map((v) => v.id)).toEqual([latest.id]);
      expect(await store.assetChecks(old.id)).toEqual([]);
      // The latest version stays whatever its age.
      expect((await store.assetVersions('lonely', { limit: 10 })).map((v) => v.id)).toEqual([lone.id]);
      expect((await store.getAsset('prunable'))?.latestVersion).toBe(V3);
      expect(middle.id).toBeLessThan(latest.id);
      expect(await store.pruneAssetVersions(25)).toBe(0);
    });

    it('lists assets in bytewise key order, a page at a time', async () => {
      const { store } = t;
      const keys = ['b', 'a/x', 'A', 'a', 'a.b', 'Z-1'];
      for (const k of keys) await store.recordMaterialization(made(k, V1));
      const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect((await store.listAssets({ limit: 100 })).map((a) => a.key)).toEqual(sorted);
      const page = await store.listAssets({ limit: 4 });
      const next = await store.listAssets({ limit: 4, afterKey: page.at(-1)?.key as string });
      expect([...page, ...next].map((a) => a.key)).toEqual(sorted);
    });

    it('follows lineage both ways and marks a reader stale once its input has a new version', async () => {
      const { store } = t;
      const raw = await store.recordMaterialization(made('orders_raw', V1, { flow: 'ingest', taskId: 'pull' }));
      await store.recordMaterialization(
        made('orders_clean', V2, { inputs: [{ assetKey: 'orders_raw', version: V1 }] }),
      );
      await store.recordMaterialization(
        made('daily_totals', V3, {
          flow: 'reports',
          taskId: 'sum',
          inputs: [
            { assetKey: 'orders_clean', version: V2 },
            { assetKey: 'fx_rates', version: null },
          ],
        }),
      );
      const stale = async () =>
        Object.fromEntries((await store.listAssets({ limit: 10 })).map((a) => [a.key, a.stale]));
      expect(await stale()).toEqual({ daily_totals: false, orders_clean: false, orders_raw: false });
      expect(await store.upstreamAssets('daily_totals')).toEqual([
        { key: 'fx_rates', versionRead: null, latestVersion: null, stale: false },
        { key: 'orders_clean', versionRead: V2, latestVersion: V2, stale: false },
      ]);
      expect(await store.downstreamAssets('orders_clean')).toEqual([
        { key: 'daily_totals', versionRead: V2, latestVersion: V2, stale: false },
      ]);
      expect(await store.downstreamAssets('orders_raw')).toEqual([
        { key: 'orders_clean', versionRead: V1, latestVersion: V1, stale: false },
      ]);

      // The same bytes again are the same version: nothing downstream is stale.
      await store.recordMaterialization(made('orders_raw', V1, { flow: 'ingest', taskId: 'pull' }));
      expect(await stale()).toEqual({ daily_totals: false, orders_clean: false, orders_raw: false });

      // New bytes: the direct reader is stale; its own reader is not, until it changes.
      await store.recordMaterialization(made('orders_raw', V3, { flow: 'ingest', taskId: 'pull' }));
      expect(await stale()).toEqual({ daily_totals: false, orders_clean: true, orders_raw: false });
      expect(await store.upstreamAssets('orders_clean')).toEqual([
        { key: 'orders_raw', versionRead: V1, latestVersion: V3, stale: true },
      ]);
      expect((await store.getAsset('orders_clean'))?.stale).toBe(true);

      // Made again from the new version: fresh, and now its reader is stale.
      await store.recordMaterialization(
        made('orders_clean', V1, { inputs: [{ assetKey: 'orders_raw', version: V3 }] }),
      );
      expect(await stale()).toEqual({ daily_totals: true, orders_clean: false, orders_raw: false });
      expect(raw.created).toBe(true);
    });

    it('finds assets by where their latest version lives', async () => {
      const { store } = t;
      await store.recordMaterialization(made('moved', V1, { location: 'data://a/old.csv' }));
      await store.recordMaterialization(made('moved', V2, { location: 'data://a/new.csv' }));
      await store.recordMaterialization(made('kept', V3, { location: 'data://a/kept.csv' }));
      expect(
        await store.assetsAtLocations(['data://a/old.csv', 'data://a/new.csv', 'data://a/kept.csv', 'data://a/x']),
      ).toEqual([
        { key: 'kept', location: 'data://a/kept.csv', version: V3 },
        { key: 'moved', location: 'data://a/new.csv', version: V2 },
      ]);
      expect(await store.assetsAtLocations([])).toEqual([]);
    });

    it('keeps an older materialization recorded late from replacing the latest one', async () => {
      const { store } = t;
      await store.recordMaterialization(made('late', V1, { runId: 'r-late', attempt: 1 }));
      await store.recordMaterialization(made('late', V2, { runId: 'r-late', attempt: 2 }));
      // The first attempt's recording retried: already there, the latest stays the second.
      await store.recordMaterialization(made('late', V1, { runId: 'r-late', attempt: 1 }));
      expect((await store.getAsset('late'))?.latestVersion).toBe(V2);
    });

    it('keeps check results in order, with at most the sample rows allowed', async () => {
      const { store } = t;
      const rows = Array.from({ length: 30 }, (_, i) => ({ order_id: i, note: i % 2 ? null : 'ü "quoted"' }));
      const checks = [
        check('not_null(order_id)'),
        check('no_negative_totals', { kind: 'sql', passed: false, failingCount: 30, sample: rows }),
        check('row_count', {
          kind: 'row_count',
          severity: 'warn',
          passed: false,
          failingCount: 1,
          message: '3 rows, fewer than 10',
        }),
      ];
      const { id } = await store.recordMaterialization(made('checked', V1, { checks }));
      const back = await store.assetChecks(id);
      expect(back.map((c) => c.name)).toEqual(['not_null(order_id)', 'no_negative_totals', 'row_count']);
      expect(back[1]).toEqual({ ...checks[1], sample: rows.slice(0, ASSET_CHECK_SAMPLE_ROWS) });
      expect(back[2]).toEqual(checks[2]);
      expect(back[0]?.passed).toBe(true);
      expect(await store.assetChecks(id + 1000)).toEqual([]);
    });

    it("lists a run's materializations in recording order, with their inputs and checks", async () => {
      const { store } = t;
      const a = await store.recordMaterialization(
        made('orders_clean', V1, {
          runId: 'r-show',
          inputs: [{ assetKey: 'orders_raw', version: V2 }],
          checks: [check('not_null(id)'), check('unique(id)', { kind: 'unique', passed: false, failingCount: 2 })],
        }),
      );
      const b = await store.recordMaterialization(made('orders_daily', V2, { runId: 'r-show', taskId: 'daily' }));
      await store.recordMaterialization(made('other', V3, { runId: 'r-other' }));
      const listed = await store.runMaterializations('r-show', 10);
      expect(listed.map((m) => [m.id, m.assetKey, m.taskId])).toEqual([
        [a.id, 'orders_clean', 'clean'],
        [b.id, 'orders_daily', 'daily'],
      ]);
      expect(listed[0]?.inputs).toEqual([{ assetKey: 'orders_raw', version: V2 }]);
      expect(listed[0]?.checks.map((c) => [c.name, c.passed, c.failingCount])).toEqual([
        ['not_null(id)', true, 0],
        ['unique(id)', false, 2],
      ]);
      expect(listed[1]?.checks).toEqual([]);
      expect((await store.runMaterializations('r-show', 1)).map((m) => m.assetKey)).toEqual(['orders_clean']);
      expect(await store.runMaterializations('r-none', 10)).toEqual([]);
    });

    it('writes nothing of a materialization the database refuses', async () => {
      const { store } = t;
      const bad = made('refused', V1, {
        inputs: [{ assetKey: 'x', version: V1 }],
        checks: [check('c', { severity: 'fatal' as 'error' })],
      });
      // The check result goes in after the row and its inputs: they go with it.
      await expect(store.recordMaterialization(bad)).rejects.toMatchObject({ code: expect.stringMatching(/^STORE_/) });
      expect(await store.getAsset('refused')).toBeNull();
      expect(await store.assetVersions('refused', { limit: 10 })).toEqual([]);
      expect(await store.downstreamAssets('x')).toEqual([]);
    });

    it('keeps one result cache entry per key, the last recorded, with its output as JSON', async () => {
      const { store } = t;
      const key = 'a'.repeat(64);
      expect(await store.resultCache(key)).toBeNull();
      const first = {
        key,
        flow: 'orders',
        taskId: 'clean',
        runId: 'run-cache-1',
        taskRunId: 'clean[2]',
        attempt: 2,
        output: { rows: 3, names: ['é', '\u0000'], nested: { ok: true } },
        at: 5000,
      };
      await store.recordResultCache(first);
      expect(await store.resultCache(key)).toEqual(first);
      // A null output is an output too: it must not read as "no entry".
      await store.recordResultCache({ ...first, key: 'b'.repeat(64), output: null });
      expect(await store.resultCache('b'.repeat(64))).toMatchObject({ output: null });
      const later = { ...first, runId: 'run-cache-2', taskRunId: 'clean', attempt: 1, output: 7, at: 6000 };
      await store.recordResultCache(later);
      expect(await store.resultCache(key)).toEqual(later);
      expect(await store.resultCache('c'.repeat(64))).toBeNull();
    });

    it('prunes the result cache entries recorded before a time', async () => {
      const { store } = t;
      const entry = (key: string, at: number) => ({
        key: key.repeat(64),
        flow: 'orders',
        taskId: 'clean',
        runId: `run-${key}`,
        taskRunId: 'clean',
        attempt: 1,
        output: key,
        at,
      });
      for (const [key, at] of [
        ['d', 1000],
        ['e', 2000],
        ['f', 3000],
      ] as const)
        await store.recordResultCache(entry(key, at));
      expect(await store.pruneResultCache(2500)).toBe(2);
      expect(await store.resultCache('d'.repeat(64))).toBeNull();
      expect(await store.resultCache('e'.repeat(64))).toBeNull();
      expect(await store.resultCache('f'.repeat(64))).toMatchObject({ output: 'f' });
      expect(await store.pruneResultCache(2500)).toBe(0);
    });
  });
}
