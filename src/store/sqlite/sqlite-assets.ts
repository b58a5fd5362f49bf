/**
 * The assets port on SQLite (see ports/assets.ts), on the store's connection: a
 * materialization, its inputs, its check results and its key's latest pointer are written
 * in one write transaction (BEGIN IMMEDIATE). Keys are TEXT in SQLite's BINARY collation,
 * so listings are in code point order.
 */
import type Database from 'better-sqlite3';
import {
  AT_LOCATIONS,
  CHECKS_OF,
  CHECKS_OF_MANY,
  DOWNSTREAM,
  EXISTING_MATERIALIZATION,
  GET_ASSET,
  GET_RESULT_CACHE,
  PRUNE_RESULT_CACHE,
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
import type { Row } from '../rows.js';
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

export class SqliteAssets implements Assets {
  /** `guard` turns a driver error into a store error naming the action. */
  constructor(
    private readonly db: Database.Database,
    private readonly guard: <T>(action: string, fn: () => T) => T,
  ) {}

  async recordMaterialization(m: AssetMaterialization): Promise<{ id: number; created: boolean }> {
    return this.guard('recording an asset materialization', () =>
      this.db
        .transaction(() => {
          const inserted = this.db.prepare(INSERT_MATERIALIZATION).get(...materializationArgs(m)) as Row | undefined;
          if (!inserted) {
            const existing = this.db
              .prepare(EXISTING_MATERIALIZATION)
              .get(m.runId, m.taskId, m.attempt, m.assetKey) as Row;
            return { id: Number(existing.id), created: false };
          }
          const id = Number(inserted.id);
          const input = this.db.prepare(INSERT_INPUT);
          for (const i of m.inputs) input.run(id, i.assetKey, i.version);
          const check = this.db.prepare(INSERT_CHECK);
          for (const args of checkArgs(id, m.checks, (b) => (b ? 1 : 0))) check.run(...args);
          this.db.prepare(UPSERT_LATEST).run(m.assetKey, id);
          return { id, created: true };
        })
        .immediate(),
    );
  }

  async listAssets(options: AssetListOptions): Promise<AssetSummary[]> {
    return this.guard('listing assets', () =>
      (this.db.prepare(LIST_ASSETS).all(options.afterKey ?? '', options.limit) as Row[]).map(toAssetSummary),
    );
  }

  async getAsset(key: string): Promise<AssetSummary | null> {
    const row = this.guard('reading an asset', () => this.db.prepare(GET_ASSET).get(key) as Row | undefined);
    return row ? toAssetSummary(row) : null;
  }

  async assetVersions(key: string, options: AssetVersionOptions): Promise<AssetMaterializationRecord[]> {
    return this.guard('reading asset versions', () => {
      const rows = this.db.prepare(VERSIONS).all(key, options.beforeId ?? NO_ID_BOUND, options.limit) as Row[];
      const ids = rows.map((r) => Number(r.id));
      const inputs = ids.length === 0 ? [] : (this.db.prepare(INPUTS_OF(ids)).all(...ids) as Row[]);
      return toMaterializations(rows, inputs);
    });
  }

  async upstreamAssets(key: string): Promise<AssetLink[]> {
    return this.guard('reading upstream assets', () => (this.db.prepare(UPSTREAM).all(key) as Row[]).map(toAssetLink));
  }

  async downstreamAssets(key: string): Promise<AssetLink[]> {
    return this.guard('reading downstream assets', () =>
      (this.db.prepare(DOWNSTREAM).all(key) as Row[]).map(toAssetLink),
    );
  }

  async assetsAtLocations(locations: readonly string[]): Promise<AssetAtLocation[]> {
    if (locations.length === 0) return [];
    return this.guard('finding assets by location', () =>
      (this.db.prepare(AT_LOCATIONS(locations)).all(...locations) as Row[]).map(toAssetAtLocation),
    );
  }

  async assetChecks(materializationId: number): Promise<AssetCheckResult[]> {
    return this.guard('reading asset checks', () =>
      (this.db.prepare(CHECKS_OF).all(materializationId) as Row[]).map(toCheckResult),
    );
  }

  async runMaterializations(runId: string, limit: number): Promise<RunMaterialization[]> {
    return this.guard('reading the assets of a run', () => {
      const rows = this.db.prepare(RUN_MATERIALIZATIONS).all(runId, limit) as Row[];
      const ids = rows.map((r) => Number(r.id));
      if (ids.length === 0) return [];
      const inputs = this.db.prepare(INPUTS_OF(ids)).all(...ids) as Row[];
      const checks = this.db.prepare(CHECKS_OF_MANY(ids)).all(...ids) as Row[];
      return toRunMaterializations(rows, inputs, checks);
    });
  }

  async pruneAssetVersions(before: number): Promise<number> {
    return this.guard('pruning asset versions', () =>
      this.db
        .transaction(() => {
          const ids = (this.db.prepare(PRUNABLE_VERSIONS).all(before) as Row[]).map((r) => Number(r.id));
          const inputs = this.db.prepare('DELETE FROM asset_inputs WHERE materialization_id = ?');
          const checks = this.db.prepare('DELETE FROM asset_check_results WHERE materialization_id = ?');
          const rows = this.db.prepare('DELETE FROM asset_materializations WHERE id = ?');
          for (const id of ids) {
            inputs.run(id);
            checks.run(id);
            rows.run(id);
          }
          return ids.length;
        })
        .immediate(),
    );
  }

  async recordResultCache(entry: ResultCacheEntry): Promise<void> {
    this.guard('recording a result cache entry', () =>
      this.db.prepare(UPSERT_RESULT_CACHE).run(...resultCacheArgs(entry)),
    );
  }

  async pruneResultCache(before: number): Promise<number> {
    return this.guard('pruning the result cache', () => this.db.prepare(PRUNE_RESULT_CACHE).run(before).changes);
  }

  async resultCache(key: string): Promise<ResultCacheEntry | null> {
    return this.guard('reading a result cache entry', () => {
      const row = this.db.prepare(GET_RESULT_CACHE).get(key) as Row | undefined;
      return row ? toResultCacheEntry(row) : null;
    });
  }
}
