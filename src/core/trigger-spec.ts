/**
 * Triggers as a flow declares them: what creates runs of it. A trigger has a kind (cron,
 * interval, webhook, file, s3, nats, redis, rabbitmq, flow, asset), kind-specific settings in
 * `config` (camelCase, durations in ms), and static `params` merged into every run it
 * creates. Sources read their own config; the registry of kinds is open.
 */

export const OVERLAP_POLICIES = ['allow', 'skip', 'queue', 'cancel_previous'] as const;
/** What happens when a trigger fires while a run of the flow is still active. */
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export const CATCHUP_POLICIES = ['all', 'latest', 'none'] as const;
/** Which missed fire times a time trigger makes up for after downtime. */
export type CatchupPolicy = (typeof CATCHUP_POLICIES)[number];

export const ASSET_WAIT_POLICIES = ['all', 'any'] as const;
/** Whether an asset trigger waits for a new version of every listed asset, or of any one. */
export type AssetWaitPolicy = (typeof ASSET_WAIT_POLICIES)[number];

/** An `asset` trigger's config, as normalized. */
export interface AssetTriggerConfig {
  /** Upstream asset keys, as listed. */
  readonly assets: readonly string[];
  readonly waitFor: AssetWaitPolicy;
  /** At most one run per this many ms; versions arriving meanwhile go into the next run. */
  readonly minIntervalMs: number;
  /** How often the store is read for new versions, in ms. */
  readonly pollMs: number;
}

export const TIME_TRIGGER_KINDS: ReadonlySet<string> = new Set(['cron', 'interval']);

export interface TriggerSpec {
  /** Unique within the flow; the trigger's id is `<flow>/<name>`. */
  readonly name: string;
  readonly kind: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** Merged into the params of every run the trigger creates (the event's own params win). */
  readonly params: Readonly<Record<string, unknown>>;
}

/** Settings shared by cron and interval triggers, as normalized. */
export interface TimeTriggerConfig {
  readonly catchup: CatchupPolicy;
  /** With `catchup: all`, at most this many missed fire times run; older ones are skipped. */
  readonly maxCatchup: number;
  /** No fire time before this instant (ms), or null. */
  readonly startAt: number | null;
  /** No fire time after this instant (ms), or null. */
  readonly endAt: number | null;
  /**
   * Each run is created up to this many ms after its fire time: a delay in [0, jitter)
   * drawn once per trigger from a hash of its id, so that it is the same on every
   * scheduler and after every restart, and triggers sharing a schedule spread out. The
   * run is still for its fire time (dedupe key, interval params).
   */
  readonly jitterMs: number;
  /** A run must finish within this many ms of its fire time; a miss is recorded. */
  readonly deadlineMs: number | null;
}

export interface CronTriggerConfig extends TimeTriggerConfig {
  readonly cron: string;
  /** IANA time zone the expression is read in. Default UTC. */
  readonly timezone: string;
}

export interface IntervalTriggerConfig extends TimeTriggerConfig {
  readonly everyMs: number;
}

export function triggerId(flow: string, name: string): string {
  return `${flow}/${name}`;
}

/**
 * The lifecycle of a backfill (`baton backfill`): the runs of a time trigger's intervals
 * between two dates, created a few at a time by the trigger service.
 *
 * - `running`: the trigger service creates runs for the next intervals whenever fewer
 *   than `max_parallel` of the backfill's runs are active. Exits: `completed` once every
 *   interval has a finished run; `paused`; `cancelled`.
 * - `paused`: no new runs are created; runs already active continue. Exits: `running`
 *   (resume), `cancelled`.
 * - `cancelled`: final. No new runs; the runs the backfill created that were still
 *   active were asked to cancel in the same transaction.
 * - `completed`: final. Every interval was handled and its run has finished (some may
 *   have failed: the progress counts say how many).
 */
export const BACKFILL_STATES = {
  running: 'running',
  paused: 'paused',
  cancelled: 'cancelled',
  completed: 'completed',
} as const;
export type BackfillState = (typeof BACKFILL_STATES)[keyof typeof BACKFILL_STATES];
export const TERMINAL_BACKFILL_STATES: ReadonlySet<BackfillState> = new Set(['cancelled', 'completed']);

/** Which state each backfill state may move to. */
export const BACKFILL_TRANSITIONS: Readonly<Record<BackfillState, readonly BackfillState[]>> = {
  running: ['paused', 'cancelled', 'completed'],
  paused: ['running', 'cancelled'],
  cancelled: [],
  completed: [],
};

export function canMoveBackfill(from: BackfillState, to: BackfillState): boolean {
  return BACKFILL_TRANSITIONS[from].includes(to);
}
