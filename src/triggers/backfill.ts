/**
 * Backfills (`baton backfill`): one run per interval of a flow's cron or interval trigger
 * between two dates, created a few at a time by the trigger service and followed until
 * every interval's run has finished. The planning and the classification of intervals are
 * pure functions; `BackfillProcessor` advances recorded backfills on each trigger tick.
 *
 * Invariants
 * - An interval's run gets the dedupe key the schedule gives it (`<flow>/<trigger>@<ISO
 *   fire time>`): an interval that already ran, or is running, is not created again, by
 *   the backfill or by the schedule. With `rerun`, an interval whose latest run did not
 *   succeed gets one new run, `<key>#backfill-<id>-<n>` where n is how many runs the
 *   interval had; the key is the same however often the step is repeated.
 * - Runs are created and the backfill's progress moves in one transaction guarded by its
 *   version: two processes advancing one backfill (the leading scheduler and `baton
 *   backfill --wait`) never create an interval twice, and a crash loses nothing.
 * - At most `max_parallel` of the backfill's intervals have an active run at a time. Its
 *   runs have priority -1, so that queued scheduled runs are claimed first, and
 *   `triggerId` `<flow>/<trigger>#backfill-<id>`, so that the schedule's overlap policy
 *   and deadlines leave them alone.
 */
import { randomBytes } from 'node:crypto';
import { BatonError } from '../core/errors.js';
import type { Schedule } from '../core/schedule.js';
import { intervalParams, scheduledRunKey } from '../core/schedule.js';
import type { BackfillState, TriggerSpec } from '../core/trigger-spec.js';
import { canMoveBackfill, TIME_TRIGGER_KINDS, triggerId as triggerIdOf } from '../core/trigger-spec.js';
import type { BackfillRecord, NewRun, RunRecord, Store } from '../store/store.js';
import { triggerSchedule } from './time-schedule.js';
import type { TriggerFlow, TriggerFlows } from './trigger-service.js';

/** The most intervals one backfill may cover. */
export const MAX_BACKFILL_INTERVALS = 10_000;
/** Claim priority of backfill runs: below the scheduled runs' 0. */
export const BACKFILL_PRIORITY = -1;
/** Default `--max-parallel`. */
export const DEFAULT_MAX_PARALLEL = 4;

const ISO = (ms: number) => new Date(ms).toISOString();
const ACTIVE: ReadonlySet<string> = new Set(['queued', 'running']);

/** A new backfill id: time-ordered, 16 characters, e.g. `b0m3xk2a9f4c1d2e`. */
export function newBackfillId(now: number): string {
  return `b${now.toString(36).padStart(9, '0')}${randomBytes(3).toString('hex')}`;
}

/** The `triggerId` of the runs a backfill creates. */
export function backfillTriggerId(triggerId: string, backfillId: string): string {
  return `${triggerId}#backfill-${backfillId}`;
}

export function isBackfillRun(run: Pick<RunRecord, 'triggerId'>): boolean {
  return run.triggerId !== null && run.triggerId.includes('#backfill-');
}

/** The dedupe key of a backfill's rerun of an interval that had `runsBefore` runs. */
export function rerunKey(intervalKey: string, backfillId: string, runsBefore: number): string {
  return `${intervalKey}#backfill-${backfillId}-${runsBefore}`;
}

/** 0 for an interval's own key, n for `<key>#backfill-<id>-<n>`. */
export function rerunNumber(key: string | null): number {
  const m = key === null ? null : /#backfill-[^#]+-(\d+)$/.exec(key);
  return m ? Number(m[1]) : 0;
}

/** The interval key a run's dedupe key belongs to (the part before any `#`). */
export function intervalKeyOf(key: string): string {
  const hash = key.indexOf('#');
  return hash < 0 ? key : key.slice(0, hash);
}

/** Fire times of the schedule in (fromAt, toAt], oldest first; refuses more than `limit`. */
export function backfillFireTimes(
  schedule: Schedule,
  fromAt: number,
  toAt: number,
  limit = MAX_BACKFILL_INTERVALS,
): number[] {
  const out: number[] = [];
  for (let t = schedule.next(fromAt); t !== null && t <= toAt; t = schedule.next(t)) {
    if (out.length >= limit) {
      throw new BatonError(
        'USAGE',
        `the backfill from ${ISO(fromAt)} to ${ISO(toAt)} has more than ${limit} intervals; at most ${limit} per backfill`,
        { hint: 'Backfill a shorter range at a time.' },
      );
    }
    out.push(t);
  }
  return out;
}

/** The most recent run of an interval: the one with the highest rerun number. */
export function latestRun(runs: readonly RunRecord[]): RunRecord | null {
  let best: RunRecord | null = null;
  for (const r of runs) {
    if (best === null || rerunNumber(r.dedupeKey) > rerunNumber(best.dedupeKey)) best = r;
  }
  return best;
}

/** What `--plan` says of an interval, and what the backfill will do with it. */
export type PlanStatus = 'create' | 'rerun' | 'succeeded' | 'running' | 'failed';
/** Where an interval stands in a recorded backfill. */
export type ProgressStatus = 'done' | 'failed' | 'running' | 'pending';

/**
 * Classifies an interval by its runs. `handled`: the backfill already took its decision
 * for it (so a failed run stays failed rather than pending a rerun). `backfillId`: the
 * backfill asking, whose own rerun is never rerun again.
 */
export function classifyInterval(
  runs: readonly RunRecord[],
  o: { readonly rerun: boolean; readonly handled: boolean; readonly backfillId?: string },
): { plan: PlanStatus; progress: ProgressStatus; run: RunRecord | null } {
  const run = latestRun(runs);
  if (run === null) return { plan: 'create', progress: o.handled ? 'done' : 'pending', run };
  if (ACTIVE.has(run.state)) return { plan: 'running', progress: 'running', run };
  if (run.state === 'succeeded') return { plan: 'succeeded', progress: 'done', run };
  const ownRerun =
    o.backfillId !== undefined && runs.some((r) => r.dedupeKey?.includes(`#backfill-${o.backfillId}-`) === true);
  if (o.rerun && !ownRerun && !o.handled) return { plan: 'rerun', progress: 'pending', run };
  return { plan: 'failed', progress: 'failed', run };
}

export interface IntervalView {
  readonly index: number;
  readonly fireAt: number;
  readonly intervalStart: string;
  readonly intervalEnd: string;
  readonly key: string;
  readonly plan: PlanStatus;
  readonly progress: ProgressStatus;
  /** The interval's latest run, if any. */
  readonly runId: string | null;
  readonly runState: string | null;
}

export interface BackfillProgress {
  readonly total: number;
  /** Intervals whose latest run succeeded. */
  readonly done: number;
  /** Intervals whose latest run failed or was cancelled (and will not be rerun). */
  readonly failed: number;
  /** Intervals with a queued or running run. */
  readonly running: number;
  /** Intervals without a run yet (or waiting for their rerun). */
  readonly pending: number;
}

export function countProgress(views: readonly Pick<IntervalView, 'progress'>[]): BackfillProgress {
  const count = (s: ProgressStatus) => views.filter((v) => v.progress === s).length;
  return {
    total: views.length,
    done: count('done'),
    failed: count('failed'),
    running: count('running'),
    pending: count('pending'),
  };
}

/** The runs of these intervals, grouped by interval key; looked up in chunks. */
async function runsOfIntervals(store: Store, keys: readonly string[]): Promise<Map<string, RunRecord[]>> {
  const out = new Map<string, RunRecord[]>();
  for (let i = 0; i < keys.length; i += 500) {
    for (const run of await store.runsByDedupeKeys(keys.slice(i, i + 500))) {
      if (run.dedupeKey === null) continue;
      const key = intervalKeyOf(run.dedupeKey);
      out.set(key, [...(out.get(key) ?? []), run]);
    }
  }
  return out;
}

function views(
  fireTimes: readonly number[],
  schedule: Schedule,
  triggerId: string,
  runs: ReadonlyMap<string, readonly RunRecord[]>,
  o: { rerun: boolean; handledBelow: number; backfillId?: string },
): IntervalView[] {
  return fireTimes.map((fireAt, index) => {
    const key = scheduledRunKey(triggerId, fireAt);
    const c = classifyInterval(runs.get(key) ?? [], {
      rerun: o.rerun,
      handled: index < o.handledBelow,
      ...(o.backfillId !== undefined ? { backfillId: o.backfillId } : {}),
    });
    const p = intervalParams(schedule, fireAt);
    return {
      index,
      fireAt,
      intervalStart: p.interval_start,
      intervalEnd: p.interval_end,
      key,
      plan: c.plan,
      progress: c.progress,
      runId: c.run?.id ?? null,
      runState: c.run?.state ?? null,
    };
  });
}

/** The time trigger of a flow that a backfill is for: the one named, or the only one. */
export function backfillTrigger(flow: Pick<TriggerFlow, 'name' | 'triggers'>, name?: string): TriggerSpec {
  const timed = flow.triggers.filter((t) => TIME_TRIGGER_KINDS.has(t.kind));
  if (name !== undefined) {
    const named = flow.triggers.find((t) => t.name === name);
    if (!named || !TIME_TRIGGER_KINDS.has(named.kind)) {
      throw new BatonError(
        'USAGE',
        named
          ? `trigger ${name} of flow ${flow.name} is a ${named.kind} trigger; only cron and interval triggers have intervals to backfill`
          : `flow ${flow.name} has no trigger named ${name}`,
        { hint: `Its cron and interval triggers: ${timed.map((t) => t.name).join(', ') || 'none'}.` },
      );
    }
    return named;
  }
  const only = timed[0];
  if (timed.length === 1 && only) return only;
  throw new BatonError(
    'USAGE',
    timed.length === 0
      ? `flow ${flow.name} has no cron or interval trigger; a backfill creates runs for a schedule's intervals`
      : `flow ${flow.name} has ${timed.length} cron/interval triggers (${timed.map((t) => t.name).join(', ')})`,
    {
      hint:
        timed.length === 0
          ? 'Declare a cron or interval trigger in the flow, or start single runs with baton run.'
          : 'Choose one with --trigger <name>.',
    },
  );
}

export interface BackfillPlan {
  readonly flow: string;
  readonly sourcePath: string;
  readonly trigger: TriggerSpec;
  readonly triggerId: string;
  readonly fromAt: number;
  readonly toAt: number;
  readonly rerun: boolean;
  readonly intervals: readonly IntervalView[];
  /** How many intervals of each plan status. */
  readonly counts: Readonly<Record<PlanStatus, number>>;
}

/** Which intervals fall in (fromAt, toAt] and what a backfill would do with each; writes nothing. */
export async function planBackfill(
  store: Store,
  flow: Pick<TriggerFlow, 'name' | 'sourcePath' | 'triggers'>,
  o: { readonly trigger?: string; readonly fromAt: number; readonly toAt: number; readonly rerun: boolean },
): Promise<BackfillPlan> {
  if (!(o.fromAt < o.toAt)) {
    throw new BatonError('USAGE', `--from ${ISO(o.fromAt)} is not before --to ${ISO(o.toAt)}`, {
      hint: 'Fire times in (from, to] are backfilled; give an earlier --from.',
    });
  }
  const trigger = backfillTrigger(flow, o.trigger);
  const id = triggerIdOf(flow.name, trigger.name);
  const schedule = triggerSchedule(trigger);
  const fireTimes = backfillFireTimes(schedule, o.fromAt, o.toAt);
  const runs = await runsOfIntervals(
    store,
    fireTimes.map((t) => scheduledRunKey(id, t)),
  );
  const intervals = views(fireTimes, schedule, id, runs, { rerun: o.rerun, handledBelow: 0 });
  const counts: Record<PlanStatus, number> = { create: 0, rerun: 0, succeeded: 0, running: 0, failed: 0 };
  for (const v of intervals) counts[v.plan]++;
  return {
    flow: flow.name,
    sourcePath: flow.sourcePath,
    trigger,
    triggerId: id,
    fromAt: o.fromAt,
    toAt: o.toAt,
    rerun: o.rerun,
    intervals,
    counts,
  };
}

/** Records a planned backfill; the trigger service creates its runs from its next tick on. */
export async function recordBackfill(
  store: Store,
  plan: BackfillPlan,
  o: { readonly maxParallel: number; readonly at: number; readonly id?: string },
): Promise<BackfillRecord> {
  if (plan.intervals.length === 0) {
    throw new BatonError(
      'USAGE',
      `no fire time of ${plan.triggerId} falls in (${ISO(plan.fromAt)}, ${ISO(plan.toAt)}]; nothing to backfill`,
      { hint: 'Widen the range with --from and --to.' },
    );
  }
  if (!Number.isInteger(o.maxParallel) || o.maxParallel < 1) {
    throw new BatonError('USAGE', `--max-parallel must be a positive integer, got ${o.maxParallel}`);
  }
  return store.createBackfill({
    id: o.id ?? newBackfillId(o.at),
    flow: plan.flow,
    triggerId: plan.triggerId,
    spec: plan.trigger,
    sourcePath: plan.sourcePath,
    fromAt: plan.fromAt,
    toAt: plan.toAt,
    maxParallel: o.maxParallel,
    rerun: plan.rerun,
    state: 'running',
    total: plan.intervals.length,
    createdAt: o.at,
  });
}

/** The fire times of a recorded backfill, from the trigger definition it was recorded with. */
export function recordedFireTimes(b: BackfillRecord): { schedule: Schedule; fireTimes: number[] } {
  const schedule = triggerSchedule(b.spec);
  // Recorded backfills were checked against the limit when they were made.
  return { schedule, fireTimes: backfillFireTimes(schedule, b.fromAt, b.toAt, Number.MAX_SAFE_INTEGER) };
}

/** Where each interval of a recorded backfill stands, with counts. */
export async function backfillProgress(
  store: Store,
  b: BackfillRecord,
  fireTimes?: { schedule: Schedule; fireTimes: readonly number[] },
): Promise<{ progress: BackfillProgress; intervals: IntervalView[] }> {
  const { schedule, fireTimes: times } = fireTimes ?? recordedFireTimes(b);
  const runs = await runsOfIntervals(
    store,
    times.map((t) => scheduledRunKey(b.triggerId, t)),
  );
  const intervals = views(times, schedule, b.triggerId, runs, {
    rerun: b.rerun,
    handledBelow: b.nextIndex,
    backfillId: b.id,
  });
  return { progress: countProgress(intervals), intervals };
}

/**
 * Pauses, resumes or cancels a backfill. Cancelling also asks the runs the backfill
 * created that are still active to cancel, in the same transaction. Moving a backfill to
 * the state it is in changes nothing; a final backfill cannot move.
 */
export async function moveBackfill(
  store: Store,
  id: string,
  to: Extract<BackfillState, 'paused' | 'running' | 'cancelled'>,
  at: number,
): Promise<BackfillRecord> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const b = await store.getBackfill(id);
    if (!b) {
      throw new BatonError('USAGE', `no backfill with id ${id}`, { hint: 'List backfills with baton backfill list.' });
    }
    if (b.state === to) return b;
    if (!canMoveBackfill(b.state, to)) {
      throw new BatonError('USAGE', `backfill ${id} is ${b.state}; it cannot be ${to === 'running' ? 'resumed' : to}`, {
        hint: 'Only a running backfill can be paused, and only a paused one resumed; a finished one stays as it is.',
      });
    }
    let cancelRuns: { runId: string; reason: string }[] = [];
    if (to === 'cancelled') {
      const { fireTimes } = recordedFireTimes(b);
      const handled = fireTimes.slice(b.doneIndex, b.nextIndex);
      const runs = await runsOfIntervals(
        store,
        handled.map((t) => scheduledRunKey(b.triggerId, t)),
      );
      const mine = backfillTriggerId(b.triggerId, b.id);
      cancelRuns = [...runs.values()]
        .flat()
        .filter((r) => r.triggerId === mine && ACTIVE.has(r.state))
        .map((r) => ({ runId: r.id, reason: `backfill ${b.id} cancelled` }));
    }
    const moved = await store.updateBackfill({
      id,
      expectedVersion: b.version,
      at,
      state: to,
      reason: to === 'running' ? null : `${to} by user`,
      cancelRuns,
    });
    if (moved) return moved.backfill;
  }
  throw new BatonError('STORE_CONFLICT', `backfill ${id} kept changing; it was not ${to}`, {
    hint: 'Try again.',
  });
}

export interface BackfillProcessorOptions {
  readonly store: Store;
  readonly flows: TriggerFlows;
  readonly now: () => number;
  readonly onDiagnostic?: (message: string) => void;
  /** Most intervals one step looks at beyond the active ones. Default 500. */
  readonly scanLimit?: number;
}

/**
 * Advances recorded backfills: on each step, intervals whose runs finished are passed,
 * and runs are created for the next intervals while fewer than `max_parallel` are active.
 */
export class BackfillProcessor {
  private readonly plans = new Map<string, { schedule: Schedule; fireTimes: number[] }>();

  constructor(private readonly o: BackfillProcessorOptions) {}

  /** Advances every running backfill once. */
  async tick(): Promise<void> {
    const running = await this.o.store.listBackfills({ states: ['running'] });
    for (const b of running) {
      try {
        await this.advance(b);
      } catch (error) {
        this.o.onDiagnostic?.(`backfill ${b.id}: ${(error as Error).message}`);
      }
    }
    // Forget plans of backfills that are no longer running.
    const live = new Set(running.map((b) => b.id));
    for (const id of this.plans.keys()) if (!live.has(id)) this.plans.delete(id);
  }

  private plan(b: BackfillRecord): { schedule: Schedule; fireTimes: number[] } {
    let plan = this.plans.get(b.id);
    if (!plan) {
      plan = recordedFireTimes(b);
      this.plans.set(b.id, plan);
    }
    return plan;
  }

  /** One step of one backfill; returns it as it is afterwards. */
  async advance(b: BackfillRecord): Promise<BackfillRecord> {
    if (b.state !== 'running') return b;
    const { schedule, fireTimes } = this.plan(b);
    const now = this.o.now();
    const keyAt = (i: number) => scheduledRunKey(b.triggerId, fireTimes[i] as number);
    const total = fireTimes.length;

    // Handled intervals whose run may still be active: [doneIndex, nextIndex).
    const handled = await runsOfIntervals(this.o.store, range(b.doneIndex, b.nextIndex).map(keyAt));
    const activeAt = new Map<number, boolean>();
    for (let i = b.doneIndex; i < b.nextIndex; i++) {
      const run = latestRun(handled.get(keyAt(i)) ?? []);
      activeAt.set(i, run !== null && ACTIVE.has(run.state));
    }
    let active = [...activeAt.values()].filter(Boolean).length;

    // The next intervals, while there is room.
    let nextIndex = b.nextIndex;
    const runs: NewRun[] = [];
    let flow: TriggerFlow | null | undefined;
    const scanEnd = Math.min(total, nextIndex + (this.o.scanLimit ?? 500));
    while (active < b.maxParallel && nextIndex < scanEnd) {
      const chunk = range(nextIndex, Math.min(scanEnd, nextIndex + Math.max(b.maxParallel - active, 1) * 4));
      const found = await runsOfIntervals(this.o.store, chunk.map(keyAt));
      for (const i of chunk) {
        if (active >= b.maxParallel) break;
        const key = keyAt(i);
        const mine = found.get(key) ?? [];
        const c = classifyInterval(mine, { rerun: b.rerun, handled: false, backfillId: b.id });
        if (c.plan === 'create' || c.plan === 'rerun') {
          if (flow === undefined) flow = await this.o.flows.get(b.flow, b.sourcePath);
          if (flow === null) {
            this.o.onDiagnostic?.(`backfill ${b.id}: flow ${b.flow} cannot be loaded now; trying again later`);
            break;
          }
          const fireAt = fireTimes[i] as number;
          try {
            runs.push(
              flow.newRun(
                { ...b.spec.params, ...intervalParams(schedule, fireAt) },
                {
                  dedupeKey: c.plan === 'create' ? key : rerunKey(key, b.id, mine.length),
                  triggerId: backfillTriggerId(b.triggerId, b.id),
                  at: now,
                  priority: BACKFILL_PRIORITY,
                },
              ),
            );
          } catch (error) {
            // Bad params do not mend by themselves: pause, and say why.
            return this.pause(b, `interval ${ISO(fireAt)}: ${(error as Error).message}`, now);
          }
        }
        const nowActive = c.plan === 'create' || c.plan === 'rerun' || c.plan === 'running';
        activeAt.set(i, nowActive);
        if (nowActive) active++;
        nextIndex = i + 1;
      }
      if (flow === null) break;
    }

    let doneIndex = b.doneIndex;
    while (doneIndex < nextIndex && activeAt.get(doneIndex) === false) doneIndex++;
    const completed = doneIndex >= total;
    if (runs.length === 0 && nextIndex === b.nextIndex && doneIndex === b.doneIndex && !completed) return b;
    const moved = await this.o.store.updateBackfill({
      id: b.id,
      expectedVersion: b.version,
      at: now,
      nextIndex,
      doneIndex,
      runs,
      ...(completed ? { state: 'completed' as const, reason: 'every interval has a finished run' } : {}),
    });
    if (!moved) return (await this.o.store.getBackfill(b.id)) ?? b;
    return moved.backfill;
  }

  private async pause(b: BackfillRecord, reason: string, at: number): Promise<BackfillRecord> {
    this.o.onDiagnostic?.(`backfill ${b.id} paused: ${reason}`);
    const moved = await this.o.store.updateBackfill({
      id: b.id,
      expectedVersion: b.version,
      at,
      state: 'paused',
      reason,
    });
    return moved?.backfill ?? (await this.o.store.getBackfill(b.id)) ?? b;
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}
