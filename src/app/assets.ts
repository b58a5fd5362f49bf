/**
 * The asset use cases: the post-body step the runtime hands its engines and workers (each
 * produced asset materialized, checked and recorded; a failed error check fails the
 * attempt), and what `baton assets`, `baton asset show` and the client read: assets with
 * their latest version and staleness, and one asset's versions, lineage and checks.
 */
import { BatonError } from '../core/errors.js';
import { checkFailure, materializeAssets } from '../data/assets/materialize.js';
import type { DataNamespace } from '../data/namespace.js';
import type { AfterBodyStep } from '../engine/attempt-runner.js';
import type { AssetCheckResult, AssetLink, AssetMaterializationRecord, AssetSummary } from '../store/ports/assets.js';
import type { Store } from '../store/store.js';

/** One asset in full, as `baton asset show` prints it. */
export interface AssetDetail {
  readonly asset: AssetSummary;
  /** Newest first, at most the limit asked for. */
  readonly versions: readonly AssetMaterializationRecord[];
  /** The assets its latest version was made from. */
  readonly upstream: readonly AssetLink[];
  /** The assets whose latest version was made from it (the link's versions are this asset's). */
  readonly downstream: readonly AssetLink[];
  /** The check results of the latest version. */
  readonly checks: readonly AssetCheckResult[];
}

/** Most assets a listing returns when no limit is given. */
export const ASSETS_DEFAULT_LIMIT = 1000;
/** Most versions `show` returns when no limit is given. */
export const VERSIONS_DEFAULT_LIMIT = 20;

/** The assets of a project, read from its store. */
export class ProjectAssets {
  constructor(
    private readonly store: Store,
    private readonly namespace: DataNamespace,
  ) {}

  /** Assets in key order, with their latest version, producer and stale flag. */
  list(options: { readonly limit?: number; readonly afterKey?: string } = {}): Promise<AssetSummary[]> {
    return this.store.listAssets({
      limit: options.limit ?? ASSETS_DEFAULT_LIMIT,
      ...(options.afterKey === undefined ? {} : { afterKey: options.afterKey }),
    });
  }

  /** One asset's versions, lineage and latest checks; ASSET_NOT_FOUND for a key never materialized. */
  async show(key: string, options: { readonly limit?: number; readonly beforeId?: number } = {}): Promise<AssetDetail> {
    const asset = await this.store.getAsset(key);
    if (!asset) {
      throw new BatonError('ASSET_NOT_FOUND', `no asset ${JSON.stringify(key)} has been materialized`, {
        details: { asset: key },
      });
    }
    const [versions, upstream, downstream, checks] = await Promise.all([
      this.store.assetVersions(key, {
        limit: options.limit ?? VERSIONS_DEFAULT_LIMIT,
        ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
      }),
      this.store.upstreamAssets(key),
      this.store.downstreamAssets(key),
      this.store.assetChecks(asset.latestId),
    ]);
    return { asset, versions, upstream, downstream, checks };
  }

  /**
   * The step engines and workers run after a body that succeeded, for a task that
   * produces assets: materializes and checks them, then fails the attempt with
   * CHECK_FAILED if a check of severity error failed.
   */
  afterBody(now: () => number = Date.now): AfterBodyStep {
    return async ({ runId, flow, task, taskRunId, attempt }) => {
      const result = await materializeAssets({
        namespace: this.namespace,
        store: this.store,
        runId,
        flow,
        taskId: taskRunId,
        attempt,
        produces: task.produces ?? [],
        consumes: task.consumes ?? [],
        now,
      });
      const failure = checkFailure(result);
      if (failure) throw failure;
    };
  }
}
