/**
 * The asset use cases: the post-body step the runtime hands its engines and workers (each
 * produced asset materialized, checked and recorded; a failed error check fails the
 * attempt), and what `baton assets`, `baton asset show` and the client read: assets with
 * their latest version and staleness, and one asset's versions, lineage and checks; and
 * `materializeAsset`, a run of the task that produces an asset and of its upstream only.
 */
import { BatonError } from '../core/errors.js';
import { checkFailure, materializeAssets } from '../data/assets/materialize.js';
import type { DataNamespace } from '../data/namespace.js';
import type { AfterBodyStep } from '../engine/attempt-runner.js';
import type {
  AssetCheckResult,
  AssetLink,
  AssetMaterializationRecord,
  AssetSummary,
  RunMaterialization,
} from '../store/ports/assets.js';
import type { Store } from '../store/store.js';
import type { LoadedFlow } from './flow-catalog.js';
import type { StartedRun } from './runs.js';
import { startRun } from './runs.js';
import type { Runtime } from './runtime.js';

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
/** Most materializations of one run returned when no limit is given. */
export const RUN_ASSETS_DEFAULT_LIMIT = 100;

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
   * What a run materialized, in the order it was recorded (one entry per asset and
   * attempt, a failed check's attempt included), with inputs and check results.
   */
  ofRun(runId: string, options: { readonly limit?: number } = {}): Promise<RunMaterialization[]> {
    return this.store.runMaterializations(runId, options.limit ?? RUN_ASSETS_DEFAULT_LIMIT);
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

/** A run started to materialize an asset: the run, and the flow and task that produce the asset. */
export interface AssetMaterializeRun extends StartedRun {
  readonly flow: string;
  readonly task: string;
}

/** The id of the task of `flow` that declares it produces `key`, if any. */
function producerIn(flow: LoadedFlow, key: string): string | undefined {
  return flow.spec.tasks.find((t) => (t.produces ?? []).some((a) => a.key === key))?.id;
}

/**
 * Starts a run (queued; a worker or an engine of the caller executes it) of the flow that
 * produces `key`, running the producing task and the tasks it depends on, the others
 * skipped. The producer is the flow and task of the asset's latest materialization when
 * that flow still declares it; else the one flow of the project whose task declares it in
 * `produces`. ASSET_NOT_FOUND when no flow produces it, USAGE when several do and none
 * produced it yet.
 */
export async function materializeAsset(rt: Runtime, key: string): Promise<AssetMaterializeRun> {
  let producer: { flow: LoadedFlow; task: string } | undefined;
  const latest = await rt.store.getAsset(key);
  if (latest) {
    const flow = await rt.catalog.find(latest.flow).catch(() => undefined);
    const task = flow ? producerIn(flow, key) : undefined;
    if (flow && task) producer = { flow, task };
  }
  if (!producer) {
    const found: { flow: LoadedFlow; task: string }[] = [];
    for (const entry of await rt.catalog.list()) {
      const task = entry.flow ? producerIn(entry.flow, key) : undefined;
      if (entry.flow && task) found.push({ flow: entry.flow, task });
    }
    if (found.length > 1) {
      throw new BatonError(
        'USAGE',
        `asset ${JSON.stringify(key)} is declared by several flows and none has produced it yet: ${found
          .map((f) => `${f.flow.spec.name}/${f.task}`)
          .join(', ')}`,
        { hint: 'Run the flow that should produce it first: baton run <flow>.', details: { asset: key } },
      );
    }
    producer = found[0];
  }
  if (!producer) {
    throw new BatonError('ASSET_NOT_FOUND', `no flow of this project produces asset ${JSON.stringify(key)}`, {
      hint: 'Declare it under produces: on the task that writes it (docs/data.md), or list known assets with `baton assets`.',
      details: { asset: key },
    });
  }
  const started = await startRun(rt, producer.flow, {
    tasks: [producer.task],
    // Asset keys fit label values (at most 255 characters), so such runs can be listed.
    labels: { 'baton.materialize': key },
  });
  return { ...started, flow: producer.flow.spec.name, task: producer.task };
}
