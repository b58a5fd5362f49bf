/**
 * `baton backfill <flow> --from --to` (plan, record, and optionally wait for a backfill)
 * and `baton backfill list|pause|resume|cancel`.
 */
import type { Runtime } from '../../app/runtime.js';
import { openRuntime, triggerFlows } from '../../app/runtime.js';
import { BatonError } from '../../core/errors.js';
import { TERMINAL_BACKFILL_STATES } from '../../core/trigger-spec.js';
import type { BackfillRecord } from '../../store/store.js';
import type { BackfillPlan, BackfillProgress, IntervalView } from '../../triggers/backfill.js';
import {
  BackfillProcessor,
  backfillProgress,
  DEFAULT_MAX_PARALLEL,
  moveBackfill,
  planBackfill,
  recordBackfill,
  recordedFireTimes,
} from '../../triggers/backfill.js';
import type { CliContext } from '../context.js';
import { table, time } from '../render.js';

export interface BackfillFlags {
  readonly from?: string;
  readonly to?: string;
  readonly trigger?: string;
  readonly maxParallel?: number;
  readonly rerun?: boolean;
  readonly plan?: boolean;
  readonly wait?: boolean;
  readonly json?: boolean;
}

const ISO = (ms: number) => new Date(ms).toISOString();

/**
 * A `--from`/`--to` value: a date (`2024-01-01`, midnight UTC) or an ISO 8601 instant; an
 * instant without an offset is read as UTC, never in this machine's zone.
 */
export function parseInstant(text: string, flag: string): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d{4}-\d{2}-\d{2}$/.test(trimmed)) ms = Date.parse(`${trimmed}T00:00:00Z`);
  else if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(trimmed)) ms = Date.parse(`${trimmed}Z`);
  else ms = Date.parse(trimmed);
  if (Number.isNaN(ms)) {
    throw new BatonError('USAGE', `${flag} ${text}: not a date or instant`, {
      hint: 'Use an ISO 8601 date or instant, e.g. 2024-01-01 or 2024-01-01T06:00:00Z (UTC unless an offset is given).',
    });
  }
  return ms;
}

async function withRuntime<T>(ctx: CliContext, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime(ctx.runtime);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

function progressJson(p: BackfillProgress): Record<string, number> {
  return { total: p.total, done: p.done, running: p.running, pending: p.pending, failed: p.failed };
}

/** The JSON shape of a backfill in `baton backfill list --json` and the other commands. */
export function backfillJson(b: BackfillRecord, progress: BackfillProgress): Record<string, unknown> {
  return {
    id: b.id,
    flow: b.flow,
    trigger: b.triggerId,
    state: b.state,
    from: ISO(b.fromAt),
    to: ISO(b.toAt),
    max_parallel: b.maxParallel,
    rerun: b.rerun,
    created_at: ISO(b.createdAt),
    ended_at: b.endedAt === null ? null : ISO(b.endedAt),
    reason: b.reason,
    progress: progressJson(progress),
  };
}

function intervalJson(v: IntervalView): Record<string, unknown> {
  return {
    fire_time: ISO(v.fireAt),
    interval_start: v.intervalStart,
    interval_end: v.intervalEnd,
    dedupe_key: v.key,
    status: v.plan,
    run_id: v.runId,
    run_state: v.runState,
  };
}

function describePlanStatus(v: IntervalView): string {
  switch (v.plan) {
    case 'create':
      return 'will be created';
    case 'rerun':
      return `will be rerun (run ${v.runId} ${v.runState})`;
    case 'succeeded':
      return `already succeeded (run ${v.runId})`;
    case 'running':
      return `running (run ${v.runId} ${v.runState})`;
    case 'failed':
      return `${v.runState} (run ${v.runId}); not rerun without --rerun`;
  }
}

function planSummary(plan: BackfillPlan): string {
  const c = plan.counts;
  const parts = [
    `${c.create} to create`,
    ...(c.rerun ? [`${c.rerun} to rerun`] : []),
    `${c.succeeded} already succeeded`,
    `${c.running} running`,
    ...(c.failed ? [`${c.failed} failed (use --rerun to run them again)`] : []),
  ];
  return `${plan.intervals.length} interval(s): ${parts.join(', ')}`;
}

function progressLine(b: BackfillRecord, p: BackfillProgress): string {
  return `backfill ${b.id} ${b.state}: ${p.done}/${p.total} done, ${p.running} running, ${p.pending} pending, ${p.failed} failed`;
}

export async function backfillCommand(ctx: CliContext, flowRef: string, flags: BackfillFlags): Promise<number> {
  if (flags.from === undefined || flags.to === undefined) {
    throw new BatonError('USAGE', 'baton backfill <flow> needs --from and --to', {
      hint: 'e.g. baton backfill daily_sales --from 2024-01-01 --to 2024-02-01 --plan',
    });
  }
  const fromAt = parseInstant(flags.from, '--from');
  const toAt = parseInstant(flags.to, '--to');
  return withRuntime(ctx, async (rt) => {
    const now = await rt.store.now();
    if (toAt > now) {
      throw new BatonError('USAGE', `--to ${ISO(toAt)} is in the future; a backfill covers intervals that have ended`, {
        hint: `Give a --to up to now (${ISO(now)}); the schedule creates the runs of later fire times.`,
      });
    }
    const loaded = await rt.catalog.find(flowRef);
    const flows = triggerFlows(rt);
    const flow = await flows.get(loaded.spec.name, loaded.sourcePath);
    if (!flow) throw new BatonError('FLOW_NOT_FOUND', `flow ${flowRef} could not be loaded`);
    const plan = await planBackfill(rt.store, flow, {
      ...(flags.trigger !== undefined ? { trigger: flags.trigger } : {}),
      fromAt,
      toAt,
      rerun: flags.rerun === true,
    });
    if (flags.plan) {
      if (flags.json) {
        ctx.stdout(
          JSON.stringify(
            {
              flow: plan.flow,
              trigger: plan.triggerId,
              from: ISO(plan.fromAt),
              to: ISO(plan.toAt),
              rerun: plan.rerun,
              counts: plan.counts,
              intervals: plan.intervals.map(intervalJson),
            },
            null,
            2,
          ),
        );
      } else {
        const head = `backfill plan of ${plan.triggerId}: fire times in (${time(plan.fromAt)}, ${time(plan.toAt)}]; nothing was changed`;
        const rows = plan.intervals.map((v) => [
          time(Date.parse(v.intervalStart)),
          time(v.fireAt),
          describePlanStatus(v),
        ]);
        ctx.stdout(
          plan.intervals.length === 0
            ? `${head}\nno fire time in this range`
            : `${head}\n${table(['INTERVAL START', 'INTERVAL END', 'STATUS'], rows)}\n${planSummary(plan)}`,
        );
      }
      return 0;
    }
    const backfill = await recordBackfill(rt.store, plan, {
      maxParallel: flags.maxParallel ?? DEFAULT_MAX_PARALLEL,
      at: now,
    });
    if (!flags.wait) {
      const { progress } = await backfillProgress(rt.store, backfill);
      if (flags.json) ctx.stdout(JSON.stringify(backfillJson(backfill, progress), null, 2));
      else {
        ctx.stdout(
          [
            `backfill ${backfill.id} recorded for ${plan.triggerId}: ${planSummary(plan)}; at most ${backfill.maxParallel} run(s) at a time`,
            progressLine(backfill, progress),
          ].join('\n'),
        );
        ctx.stderr(
          `baton: the leading \`baton scheduler\` (or \`baton dev\`) creates its runs; follow it with \`baton backfill list\``,
        );
      }
      return 0;
    }
    return waitForBackfill(ctx, rt, backfill, flags);
  });
}

/** Drives the backfill from this process (alongside any scheduler) and prints progress until it ends. */
async function waitForBackfill(
  ctx: CliContext,
  rt: Runtime,
  start: BackfillRecord,
  flags: BackfillFlags,
): Promise<number> {
  const processor = new BackfillProcessor({
    store: rt.store,
    flows: triggerFlows(rt),
    now: () => Date.now(),
    onDiagnostic: (m) => ctx.stderr(`baton: ${m}`),
  });
  const plan = recordedFireTimes(start);
  let b = start;
  let last = '';
  for (;;) {
    b = await processor.advance((await rt.store.getBackfill(b.id)) ?? b);
    const { progress } = await backfillProgress(rt.store, b, plan);
    const line = progressLine(b, progress);
    if (line !== last && !flags.json) ctx.stderr(line);
    last = line;
    if (TERMINAL_BACKFILL_STATES.has(b.state)) {
      if (flags.json) ctx.stdout(JSON.stringify(backfillJson(b, progress), null, 2));
      else ctx.stdout(line);
      return b.state === 'completed' && progress.failed === 0 ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function backfillListCommand(ctx: CliContext, flags: { json?: boolean }): Promise<number> {
  return withRuntime(ctx, async (rt) => {
    const rows: { b: BackfillRecord; progress: BackfillProgress }[] = [];
    for (const b of await rt.store.listBackfills()) {
      rows.push({ b, progress: (await backfillProgress(rt.store, b)).progress });
    }
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          rows.map((r) => backfillJson(r.b, r.progress)),
          null,
          2,
        ),
      );
    } else if (rows.length === 0) {
      ctx.stdout('no backfills');
    } else {
      ctx.stdout(
        table(
          ['BACKFILL', 'TRIGGER', 'STATE', 'FROM', 'TO', 'DONE', 'RUNNING', 'PENDING', 'FAILED'],
          rows.map(({ b, progress: p }) => [
            b.id,
            b.triggerId,
            b.state,
            time(b.fromAt),
            time(b.toAt),
            `${p.done}/${p.total}`,
            String(p.running),
            String(p.pending),
            String(p.failed),
          ]),
        ),
      );
    }
    return 0;
  });
}

export async function backfillMoveCommand(
  ctx: CliContext,
  id: string,
  to: 'paused' | 'running' | 'cancelled',
  flags: { json?: boolean },
): Promise<number> {
  return withRuntime(ctx, async (rt) => {
    const b = await moveBackfill(rt.store, id, to, Date.now());
    const { progress } = await backfillProgress(rt.store, b);
    if (flags.json) ctx.stdout(JSON.stringify(backfillJson(b, progress), null, 2));
    else ctx.stdout(`${b.id} ${b.state}\n${progressLine(b, progress)}`);
    return 0;
  });
}
