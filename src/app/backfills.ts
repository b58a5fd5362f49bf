/**
 * Use cases on backfills, shared by `baton backfill` and the server: plan the runs of a
 * time trigger's past intervals, record a backfill, list, show, pause, resume and cancel.
 * The leading scheduler (or `baton dev`) creates a recorded backfill's runs.
 */
import { BatonError } from '../core/errors.js';
import type { BackfillRecord } from '../store/store.js';
import type { BackfillPlan, BackfillProgress } from '../triggers/backfill.js';
import {
  backfillProgress,
  DEFAULT_MAX_PARALLEL,
  moveBackfill,
  planBackfill,
  recordBackfill,
} from '../triggers/backfill.js';
import type { Runtime } from './runtime.js';
import { triggerFlows } from './runtime.js';

/** A backfill with its progress. */
export interface BackfillView {
  readonly backfill: BackfillRecord;
  readonly progress: BackfillProgress;
}

/** What a backfill covers: fire times of a flow's time trigger in (`fromAt`, `toAt`]. */
export interface BackfillRange {
  /** The trigger's name; needed when the flow has several time triggers. */
  readonly trigger?: string | undefined;
  readonly fromAt: number;
  readonly toAt: number;
  /** Run again the intervals whose run failed or was cancelled. */
  readonly rerun?: boolean | undefined;
}

/**
 * A `from`/`to` value: a date (`2024-01-01`, midnight UTC) or an ISO 8601 instant; an
 * instant without an offset is read as UTC, never in this machine's zone. USAGE otherwise,
 * naming `what` (e.g. `--from`).
 */
export function parseInstant(text: string, what: string): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d{4}-\d{2}-\d{2}$/.test(trimmed)) ms = Date.parse(`${trimmed}T00:00:00Z`);
  else if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(trimmed)) ms = Date.parse(`${trimmed}Z`);
  else ms = Date.parse(trimmed);
  if (Number.isNaN(ms)) {
    throw new BatonError('USAGE', `${what} ${text}: not a date or instant`, {
      hint: 'Use an ISO 8601 date or instant, e.g. 2024-01-01 or 2024-01-01T06:00:00Z (UTC unless an offset is given).',
    });
  }
  return ms;
}

/**
 * The intervals a backfill of `flowRef` over `range` would cover, each with what it would
 * do; nothing is changed. USAGE for a `toAt` in the future (by the store's clock).
 */
export async function planFlowBackfill(rt: Runtime, flowRef: string, range: BackfillRange): Promise<BackfillPlan> {
  const now = await rt.store.now();
  if (range.toAt > now) {
    const iso = (ms: number) => new Date(ms).toISOString();
    throw new BatonError(
      'USAGE',
      `--to ${iso(range.toAt)} is in the future; a backfill covers intervals that have ended`,
      {
        hint: `Give a --to up to now (${iso(now)}); the schedule creates the runs of later fire times.`,
      },
    );
  }
  const loaded = await rt.catalog.find(flowRef);
  const flow = await triggerFlows(rt).get(loaded.spec.name, loaded.sourcePath);
  if (!flow) throw new BatonError('FLOW_NOT_FOUND', `flow ${flowRef} could not be loaded`);
  return planBackfill(rt.store, flow, {
    ...(range.trigger !== undefined ? { trigger: range.trigger } : {}),
    fromAt: range.fromAt,
    toAt: range.toAt,
    rerun: range.rerun === true,
  });
}

/** Records a backfill of a plan; at most `maxParallel` of its runs are active at once. */
export async function startBackfill(
  rt: Runtime,
  plan: BackfillPlan,
  options: { readonly maxParallel?: number | undefined } = {},
): Promise<BackfillView> {
  const backfill = await recordBackfill(rt.store, plan, {
    maxParallel: options.maxParallel ?? DEFAULT_MAX_PARALLEL,
    at: await rt.store.now(),
  });
  return { backfill, progress: (await backfillProgress(rt.store, backfill)).progress };
}

/** Every backfill with its progress. */
export async function listBackfills(rt: Runtime): Promise<BackfillView[]> {
  const out: BackfillView[] = [];
  for (const b of await rt.store.listBackfills()) {
    out.push({ backfill: b, progress: (await backfillProgress(rt.store, b)).progress });
  }
  return out;
}

/** One backfill with its progress; BACKFILL_NOT_FOUND for an unknown id. */
export async function getBackfill(rt: Runtime, id: string): Promise<BackfillView> {
  const b = await rt.store.getBackfill(id);
  if (!b) {
    throw new BatonError('BACKFILL_NOT_FOUND', `no backfill with id ${id}`, {
      hint: 'List backfills with `baton backfill list`.',
    });
  }
  return { backfill: b, progress: (await backfillProgress(rt.store, b)).progress };
}

/** Pauses (`paused`), resumes (`running`) or cancels (`cancelled`) a backfill. */
export async function moveBackfillTo(
  rt: Runtime,
  id: string,
  to: 'paused' | 'running' | 'cancelled',
): Promise<BackfillView> {
  await getBackfill(rt, id);
  const b = await moveBackfill(rt.store, id, to, Date.now());
  return { backfill: b, progress: (await backfillProgress(rt.store, b)).progress };
}
