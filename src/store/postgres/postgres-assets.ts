/**
 * The assets port on PostgreSQL (see ports/assets.ts), on the store's pool: a
 * materialization, its inputs, its check results and its key's latest pointer are written
 * in one transaction. Keys collate "C" (migration 13), so listings are bytewise, as on
 * SQLite.
 */
import {
  AT_LOCATIONS,
  CHECKS_OF,
  CHECKS_OF_MANY,
  DOWNSTREAM,
  EXISTING_MATERIALIZATION,
  GET_ASSET,
  GET_RESULT_CACHE,
  INPUTS_OF,
  INSERT_CHECK,
  INSERT_INPUT,
  INSERT_MATERIALIZATION,
  LIST_ASSETS,
  NO_ID_BOUND,
  UPSERT_LATEST,
  UPSERT_RESULT_CACHE,
  UPSTREAM,
  VERSIONS,
  checkArgs,
  materializationArgs,
  resultCacheArgs,
  numberedPlaceholders as $,
  toAssetAtLocation,
  toAssetLink,
  toAssetSummary,
  toCheckResult,
  toMaterializations,
  PRUNABLE_VERSIONS,
  RUN_MATERIALIZATIONS,
  toResultCacheEntry,
  toRunMaterializations,
} from '../asset-rows.js';
import type { PgRunners } from './postgres-data-objects.js';
import type {
  AssetAtLocation,
  AssetCheckResult,
  RunMaterialization,
  AssetLink,
  AssetListOptions,
  AssetMaterialization,
  AssetMaterializationRecord,
  Assets,
  AssetSummary,
  AssetVersionOptions,
  ResultCacheEntry,
} from '../ports/assets.js';

export class PostgresAssets implements Assets {
  constructor(private readonly pg: PgRunners) {}

  async recordMaterialization(m: AssetMaterialization): Promise<{ id: number; created: boolean }> {
    return this.pg.tx('recording an asset materialization', async (c) => {
      const inserted = await c.query($(INSERT_MATERIALIZATION), materializationArgs(m));
      if (inserted.rows.length === 0) {
        const existing = await c.query($(EXISTING_MATERIALIZATION), [m.runId, m.taskId, m.attempt, m.assetKey]);
        return { id: Number(existing.rows[0].id), created: false };
      }
      const id = Number(inserted.rows[0].id);
      for (const i of m.inputs) await c.query($(INSERT_INPUT), [id, i.assetKey, i.version]);
      for (const args of checkArgs(id, m.checks, (b) => b)) await c.query($(INSERT_CHECK), args);
      await c.query($(UPSERT_LATEST), [m.assetKey, id]);
      return { id, created: true };
    });
  }

  async listAssets(options: AssetListOptions): Promise<AssetSummary[]> {
    const rows = await this.pg.q('listing assets', $(LIST_ASSETS), [options.afterKey ?? '', options.limit]);
    return rows.map(toAssetSummary);
  }

  async getAsset(key: string): Promise<AssetSummary | null> {
    const rows = await this.pg.q('reading an asset', $(GET_ASSET), [key]);
    return rows[0] ? toAssetSummary(rows[0]) : null;
  }

  async assetVersions(key: string, options: AssetVersionOptions): Promise<AssetMaterializationRecord[]> {
    const rows = await this.pg.q('reading asset versions', $(VERSIONS), [
      key,
      options.beforeId ?? NO_ID_BOUND,
      options.limit,
    ]);
    const ids = rows.map((r) => Number(r.id));
    const inputs = ids.length === 0 ? [] : await this.pg.q('reading asset inputs', $(INPUTS_OF(ids)), ids);
    return toMaterializations(rows, inputs);
  }

  async upstreamAssets(key: string): Promise<AssetLink[]> {
    return (await this.pg.q('reading upstream assets', $(UPSTREAM), [key])).map(toAssetLink);
  }

  async downstreamAssets(key: string): Promise<AssetLink[]> {
    return (await this.pg.q('reading downstream assets', $(DOWNSTREAM), [key])).map(toAssetLink);
  }

  async assetsAtLocations(locations: readonly string[]): Promise<AssetAtLocation[]> {
    if (locations.length === 0) return [];
    const rows = await this.pg.q('finding assets by location', $(AT_LOCATIONS(locations)), [...locations]);
    return rows.map(toAssetAtLocation);
  }

  async assetChecks(materializationId: number): Promise<AssetCheckResult[]> {
    return (await this.pg.q('reading asset checks', $(CHECKS_OF), [materializationId])).map(toCheckResult);
  }

  async runMaterializations(runId: string, limit: number): Promise<RunMaterialization[]> {
    const rows = await this.pg.q('reading the assets of a run', $(RUN_MATERIALIZATIONS), [runId, limit]);
    const ids = rows.map((r) => Number(r.id));
    if (ids.length === 0) return [];
    const [inputs, checks] = await Promise.all([
      this.pg.q('reading asset inputs', $(INPUTS_OF(ids)), ids),
      this.pg.q('reading asset checks', $(CHECKS_OF_MANY(ids)), ids),
    ]);
    return toRunMaterializations(rows, inputs, checks);
  }

  async pruneAssetVersions(before: number): Promise<number> {
    return this.pg.tx('pruning asset versions', async (c) => {
      const ids = (await c.query<{ id: string }>($(PRUNABLE_VERSIONS), [before])).rows.map((r) => Number(r.id));
      if (ids.length === 0) return 0;
      await c.query('DELETE FROM asset_inputs WHERE materialization_id = ANY($1::bigint[])', [ids]);
      await c.query('DELETE FROM asset_check_results WHERE materialization_id = ANY($1::bigint[])', [ids]);
      await c.query('DELETE FROM asset_materializations WHERE id = ANY($1::bigint[])', [ids]);
      return ids.length;
    });
  }

  async recordResultCache(entry: ResultCacheEntry): Promise<void> {
    await this.pg.q('recording a result cache entry', $(UPSERT_RESULT_CACHE), resultCacheArgs(entry));
  }

  async pruneResultCache(before: number): Promise<number> {
    const rows = await this.pg.q(
      'pruning the result cache',
      'WITH gone AS (DELETE FROM result_cache WHERE at < $1 RETURNING 1) SELECT count(*)::int AS n FROM gone',
      [before],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async resultCache(key: string): Promise<ResultCacheEntry | null> {
    const rows = await this.pg.q('reading a result cache entry', $(GET_RESULT_CACHE), [key]);
    return rows[0] ? toResultCacheEntry(rows[0]) : null;
  }
}
