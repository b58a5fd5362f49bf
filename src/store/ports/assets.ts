/**
 * Assets: named pieces of data that tasks produce, each materialization a version (a
 * content hash) with the run, task and attempt that made it, the versions of the assets it
 * was made from (lineage edges, across flows) and the results of its checks.
 *
 * Invariants:
 * - A materialization is recorded in one transaction with its inputs and check results:
 *   all of it is written, or none of it.
 * - Recording is idempotent per (run, task, attempt, asset): a body that ran twice, or a
 *   recording retried after a lost reply, keeps the first row and reports it.
 * - An asset's latest materialization is the one recorded last (highest id); recording an
 *   older one (a late retry of an earlier attempt) never replaces a newer one.
 * - An asset is stale when an asset its latest materialization read has, by now, a latest
 *   version other than the one read. An input read before Baton knew it as an asset has
 *   no version and never makes its reader stale.
 * - A result cache key has one entry, the last one recorded: entries are never read as a
 *   history, only as "the output an attempt with these inputs returned".
 * - Keys compare bytewise on both stores, so that listings page alike everywhere.
 */

/** The outcome of one check over one materialization. */
export interface AssetCheckResult {
  /** Unique among the asset's checks: the declared name, or one made from the check. */
  readonly name: string;
  /** The check's type (`not_null`, `unique`, `sql`, …). */
  readonly kind: string;
  readonly severity: 'error' | 'warn';
  readonly passed: boolean;
  /** Rows that broke the check (1 for a check over the whole object, such as row_count or schema). */
  readonly failingCount: number;
  /** At most ASSET_CHECK_SAMPLE_ROWS failing rows, as JSON objects. */
  readonly sample: readonly unknown[];
  /** What was wrong, in words, when a count does not say it (a missing column, a row count). */
  readonly message: string | null;
}

/** An edge of lineage: the version of an asset a materialization read (null when it had none yet). */
export interface AssetInput {
  readonly assetKey: string;
  readonly version: string | null;
}

/** One materialization, as the post-body step records it. */
export interface AssetMaterialization {
  readonly assetKey: string;
  /** The SHA-256 (hex) of the object's bytes. */
  readonly version: string;
  readonly runId: string;
  readonly flow: string;
  readonly taskId: string;
  readonly attempt: number;
  /** When it was recorded (ms). */
  readonly at: number;
  /** Where the asset lives: its `data://` path. */
  readonly location: string;
  readonly size: number | null;
  readonly rowCount: number | null;
  /** Column names and types, as DuckDB describes them; null when unknown. */
  readonly schema: readonly AssetColumn[] | null;
  readonly inputs: readonly AssetInput[];
  readonly checks: readonly AssetCheckResult[];
}

export interface AssetColumn {
  readonly name: string;
  readonly type: string;
}

/** A recorded materialization (without its check results: see `assetChecks`). */
export interface AssetMaterializationRecord extends Omit<AssetMaterialization, 'checks'> {
  readonly id: number;
}

/** A materialization a run recorded, with its check results: what `baton show` lists. */
export interface RunMaterialization extends AssetMaterializationRecord {
  readonly checks: readonly AssetCheckResult[];
}

/** An asset as listings show it: its latest materialization, and whether it is stale. */
export interface AssetSummary {
  readonly key: string;
  readonly latestId: number;
  readonly latestVersion: string;
  readonly latestAt: number;
  readonly flow: string;
  readonly taskId: string;
  readonly runId: string;
  readonly stale: boolean;
}

/** An asset next to another in lineage. */
export interface AssetLink {
  readonly key: string;
  /** The version of the upstream asset that the downstream one's latest materialization read. */
  readonly versionRead: string | null;
  /** The upstream asset's latest version; null if it was never materialized. */
  readonly latestVersion: string | null;
  /** True when the upstream asset changed since it was read. */
  readonly stale: boolean;
}

/** An asset found by where its latest version lives. */
export interface AssetAtLocation {
  readonly key: string;
  readonly location: string;
  readonly version: string;
}

export interface AssetListOptions {
  readonly limit: number;
  /** Only the keys after this one, bytewise: the last key of the previous page. */
  readonly afterKey?: string;
}

export interface AssetVersionOptions {
  readonly limit: number;
  /** Only materializations older than this one: the last id of the previous page. */
  readonly beforeId?: number;
}

/**
 * A result cache entry: the attempt that succeeded with a cache key (a hash of everything
 * the attempt read, engine/result-cache.ts) and the output it returned, which a later
 * attempt with the same key reuses instead of running its body.
 */
export interface ResultCacheEntry {
  readonly key: string;
  readonly flow: string;
  readonly taskId: string;
  readonly runId: string;
  /** The task run's id: a map instance's own, else the task's. */
  readonly taskRunId: string;
  readonly attempt: number;
  /** The output as the history keeps it (an output stored by reference is its marker). */
  readonly output: unknown;
  /** When it was recorded (ms). */
  readonly at: number;
}

/** At most this many failing rows are kept with a check result. */
export const ASSET_CHECK_SAMPLE_ROWS = 20;

export interface Assets {
  /**
   * Records a materialization with its inputs and check results in one transaction;
   * `created` is false (and nothing changes) when this attempt had recorded this asset
   * already, and `id` is then the first recording's.
   */
  recordMaterialization(materialization: AssetMaterialization): Promise<{ id: number; created: boolean }>;
  /** Assets in key order (bytewise), at most `limit`, after `afterKey`. */
  listAssets(options: AssetListOptions): Promise<AssetSummary[]>;
  /** One asset's summary, or null if it was never materialized. */
  getAsset(key: string): Promise<AssetSummary | null>;
  /** One asset's materializations, newest first, with their inputs. */
  assetVersions(key: string, options: AssetVersionOptions): Promise<AssetMaterializationRecord[]>;
  /** What the asset's latest materialization read, in key order. */
  upstreamAssets(key: string): Promise<AssetLink[]>;
  /**
   * The assets whose latest materialization read this one, in key order; each link's
   * versions are of this asset (the one read, and the latest).
   */
  downstreamAssets(key: string): Promise<AssetLink[]>;
  /**
   * The assets whose latest materialization lives at one of `locations` (data paths), with
   * that version: how the reads of an attempt are matched to the assets they read.
   */
  assetsAtLocations(locations: readonly string[]): Promise<AssetAtLocation[]>;
  /** The check results of one materialization, in the order they were recorded. */
  assetChecks(materializationId: number): Promise<AssetCheckResult[]>;
  /**
   * The materializations one run recorded, in the order they were recorded, with their
   * inputs and check results; at most `limit`.
   */
  runMaterializations(runId: string, limit: number): Promise<RunMaterialization[]>;
  /**
   * Retention (`baton db prune`): deletes the materializations recorded before `before`
   * (ms), with their inputs and check results, except each asset's latest one, which stays
   * whatever its age. The lineage of the versions kept still names the versions they read.
   * Returns how many went.
   */
  pruneAssetVersions(before: number): Promise<number>;

  /** Records the attempt that succeeded with a cache key; a later recording of the key replaces it. */
  recordResultCache(entry: ResultCacheEntry): Promise<void>;
  /**
   * Retention (`baton db prune`): deletes the entries recorded before `before` (ms); a
   * later attempt with such a key runs its body again. Returns how many went.
   */
  pruneResultCache(before: number): Promise<number>;
  /** The entry of a cache key, or null when no attempt recorded it. */
  resultCache(key: string): Promise<ResultCacheEntry | null>;
}
