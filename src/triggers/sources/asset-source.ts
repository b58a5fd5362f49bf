/**
 * Asset triggers: a run of this flow starts when its upstream assets have new versions —
 * every listed asset (`wait_for: all`, the default) or any one of them (`any`) — at most
 * once per `min_interval`. The versions that caused the run become its `upstream_assets`
 * param.
 *
 * Invariants
 * - Only a version whose checks of severity `error` all passed counts: a materialization
 *   recorded with a failed error check (its task ended CHECK_FAILED) never starts a run,
 *   and the trigger keeps waiting for a good version.
 * - The cursor holds, per asset, the materialization the last run consumed; it moves in
 *   the same transaction that creates the run (`emit` with `cursor`), so a crash before
 *   that transaction re-reads the same versions, and one after it never sees them again.
 * - The dedupe key is a hash of the version set (`<trigger>:asset:<hash>`): two trigger
 *   services, or a restart between the run and anything this module remembers, create one
 *   run per version set.
 * - Versions that arrive while `min_interval` has not passed are not lost: the next run
 *   takes the newest good version of each asset (coalescing).
 * - Before the trigger's first run, versions recorded before the trigger was registered
 *   are taken as consumed, as the flow trigger ignores upstream runs that ended before it.
 */
import { createHash } from 'node:crypto';
import type { AssetTriggerConfig } from '../../core/trigger-spec.js';
import type { AssetMaterializationRecord } from '../../store/ports/assets.js';
import type { Store } from '../../store/store.js';
import type { SourceContext, TriggerSource } from '../trigger-service.js';

/** What the source reads of the store. */
export type AssetSourceStore = Pick<Store, 'getAsset' | 'assetVersions' | 'assetChecks'>;

/** A materialization as the cursor and the run's params name it. */
interface ConsumedVersion {
  /** The materialization's id: newer versions have higher ids, whatever their content. */
  readonly id: number;
  readonly version: string;
}

interface AssetCursor {
  readonly v: 1;
  /** Per asset key, the version the last run consumed. */
  readonly consumed: Readonly<Record<string, ConsumedVersion>>;
  /** When the trigger last created a run (ms), for `min_interval`; null before the first. */
  readonly lastRunAt: number | null;
}

/** A version of an upstream asset, as the run's `upstream_assets` param shows it. */
export interface UpstreamAssetVersion {
  readonly version: string;
  /** ISO 8601. */
  readonly materialized_at: string;
  readonly run_id: string;
  /** True when the run is the first to take this version. */
  readonly changed: boolean;
}

/** Versions of one asset read per page while looking for the newest good one. */
const VERSION_PAGE = 20;
/** Pages read per asset per poll: past this many bad versions in a row, the trigger waits for the next poll. */
const VERSION_PAGES = 50;

function isAssetCursor(value: unknown): value is AssetCursor {
  const c = value as Partial<AssetCursor> | null;
  return typeof c === 'object' && c !== null && c.v === 1 && typeof c.consumed === 'object' && c.consumed !== null;
}

/** True when none of the materialization's checks of severity error failed. */
async function passed(store: AssetSourceStore, m: AssetMaterializationRecord): Promise<boolean> {
  return (await store.assetChecks(m.id)).every((c) => c.passed || c.severity !== 'error');
}

/**
 * The newest materialization of `key` whose error checks passed, among those newer than
 * `after` (an id) and recorded at or after `since` (ms); null when there is none.
 */
export async function newestGoodVersion(
  store: AssetSourceStore,
  key: string,
  after: number,
  since: number,
): Promise<AssetMaterializationRecord | null> {
  const summary = await store.getAsset(key);
  if (summary === null || summary.latestId <= after) return null;
  let beforeId: number | undefined;
  for (let page = 0; page < VERSION_PAGES; page++) {
    const versions = await store.assetVersions(key, {
      limit: VERSION_PAGE,
      ...(beforeId === undefined ? {} : { beforeId }),
    });
    for (const m of versions) {
      if (m.id <= after || m.at < since) return null;
      if (await passed(store, m)) return m;
    }
    if (versions.length < VERSION_PAGE) return null;
    beforeId = versions[versions.length - 1]?.id;
  }
  return null;
}

/** `<trigger>:asset:<sha256 of the sorted key=version@id pairs>`: one run per version set. */
export function assetDedupeKey(triggerId: string, versions: Readonly<Record<string, ConsumedVersion>>): string {
  const pairs = Object.keys(versions)
    .sort()
    .map((k) => `${k}=${versions[k]?.version}@${versions[k]?.id}`)
    .join('\n');
  return `${triggerId}:asset:${createHash('sha256').update(pairs).digest('hex').slice(0, 32)}`;
}

/** One poll: emits a run when the versions are there and the interval has passed. */
async function pollAssets(store: AssetSourceStore, context: SourceContext): Promise<void> {
  if (await context.paused()) return;
  const config = context.trigger.spec.config as unknown as AssetTriggerConfig;
  const stored = await context.cursor();
  const cursor: AssetCursor = isAssetCursor(stored) ? stored : { v: 1, consumed: {}, lastRunAt: null };
  const now = context.now();
  if (cursor.lastRunAt !== null && now - cursor.lastRunAt < config.minIntervalMs) return;
  const fresh = new Map<string, AssetMaterializationRecord>();
  for (const key of config.assets) {
    const consumed = cursor.consumed[key];
    const found = await newestGoodVersion(
      store,
      key,
      consumed?.id ?? 0,
      consumed ? Number.NEGATIVE_INFINITY : context.trigger.registeredAt,
    );
    if (found) fresh.set(key, found);
  }
  const ready = config.waitFor === 'any' ? fresh.size > 0 : fresh.size === config.assets.length;
  if (!ready) return;
  const consumed: Record<string, ConsumedVersion> = { ...cursor.consumed };
  const params: Record<string, UpstreamAssetVersion> = {};
  for (const key of config.assets) {
    const m = fresh.get(key);
    if (m) {
      consumed[key] = { id: m.id, version: m.version };
      params[key] = {
        version: m.version,
        materialized_at: new Date(m.at).toISOString(),
        run_id: m.runId,
        changed: true,
      };
    } else {
      // `any`: an asset without a new version is passed as the one consumed before, when known.
      const before = cursor.consumed[key];
      if (before) {
        const [m] = await store.assetVersions(key, { limit: 1, beforeId: before.id + 1 });
        if (m?.id === before.id)
          params[key] = {
            version: m.version,
            materialized_at: new Date(m.at).toISOString(),
            run_id: m.runId,
            changed: false,
          };
      }
    }
  }
  const taken = Object.fromEntries(config.assets.flatMap((k) => (consumed[k] ? [[k, consumed[k]]] : [])));
  const changed = [...fresh.keys()];
  await context.emit(
    [
      {
        dedupeKey: assetDedupeKey(context.trigger.id, taken),
        params: { upstream_assets: params },
        reason: `new version of ${changed.join(', ')}`,
      },
    ],
    { cursor: { v: 1, consumed, lastRunAt: now } satisfies AssetCursor },
  );
}

export function createAssetSource(store: AssetSourceStore) {
  return async (context: SourceContext): Promise<TriggerSource> => {
    const config = context.trigger.spec.config as unknown as AssetTriggerConfig;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> | null = null;
    let reported: string | null = null;
    const loop = async () => {
      if (stopped) return;
      try {
        await pollAssets(store, context);
        reported = null;
      } catch (error) {
        const message = `reading versions of ${config.assets.join(', ')} failed: ${(error as Error).message}`;
        if (message !== reported) context.diagnostic(message);
        reported = message;
      }
      if (!stopped)
        timer = setTimeout(() => {
          running = loop();
        }, config.pollMs);
    };
    running = loop();
    return {
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        await running;
      },
    };
  };
}
