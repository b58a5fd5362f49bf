/**
 * `baton backfill <flow> --from --to` (plan, record, and optionally wait for a backfill)
 * and `baton backfill list|pause|resume|cancel`.
 */
import type { Runtime } from '../../app/runtime.js';
import { openRuntime, triggerFlows } from '../../app/runtime.js';
import { listBackfills, moveBackfillTo, parseInstant, planFlowBackfill, startBackfill } from '../../app/backfills.js';
import { BatonError } from '../../core/errors.js';
import type { RunStateName } from '../../core/states.js';
import { TERMINAL_RUN_STATES } from '../../core/states.js';
import { TERMINAL_BACKFILL_STATES } from '../../core/trigger-spec.js';
import type { BackfillRecord, StoredLogLine } from '../../store/store.js';
import type { BackfillPlan, BackfillProgress, IntervalView } from '../../triggers/backfill.js';
import { BackfillProcessor, backfillProgress, recordedFireTimes } from '../../triggers/backfill.js';
import type { CliContext } from '../context.js';
import { createLiveOutput, stderrTerminal } from '../live-output.js';
import { elapsedText, liveLogLine, table, time } from '../render.js';

export interface BackfillFlags {
  readonly from?: string;
  readonly to?: string;
  readonly trigger?: string;
  readonly maxParallel?: number;
  readonly rerun?: boolean;
  readonly plan?: boolean;
  readonly wait?: boolean;
  readonly json?: boolean;
  /** With --wait: no log lines and no progress, only the result. */
  readonly quiet?: boolean;
}

const ISO = (ms: number) => new Date(ms).toISOString();

export { parseInstant } from '../../app/backfills.js';

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
    const plan = await planFlowBackfill(rt, flowRef, {
      trigger: flags.trigger,
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
    const { backfill, progress } = await startBackfill(rt, plan, { maxParallel: flags.maxParallel });
    if (!flags.wait) {
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

/**
 * Drives the backfill from this process (alongside any scheduler) until it ends. Unless
 * quiet or JSON, it prints the log lines of the backfill's runs, each naming its run; and
 * its progress: a line whenever the counts change, or on a terminal one status line kept
 * at the bottom. Whoever executes the runs stores their lines, so they are read from the
 * store at each step.
 */
async function waitForBackfill(
  ctx: CliContext,
  rt: Runtime,
  start: BackfillRecord,
  flags: BackfillFlags,
): Promise<number> {
  const out = flags.json || flags.quiet ? null : createLiveOutput(ctx, stderrTerminal(ctx.runtime.env));
  const processor = new BackfillProcessor({
    store: rt.store,
    flows: triggerFlows(rt),
    now: () => Date.now(),
    onDiagnostic: (m) => (out ? out.line(`baton: ${m}`) : ctx.stderr(`baton: ${m}`)),
  });
  const started = Date.now();
  const plan = recordedFireTimes(start);
  const logs = runLogReader(rt);
  let b = start;
  let last = '';
  let first = true;
  const redraw = () => out?.status(`${last}  ${elapsedText(Date.now() - started)}`);
  const timer = out?.interactive ? setInterval(redraw, 1000) : undefined;
  timer?.unref();
  try {
    for (;;) {
      b = await processor.advance((await rt.store.getBackfill(b.id)) ?? b);
      const { progress, intervals } = await backfillProgress(rt.store, b, plan);
      if (out) {
        // Runs that had ended before this command began (earlier backfills) print nothing.
        for (const v of intervals) {
          if (v.runId === null) continue;
          const ended = v.runState !== null && TERMINAL_RUN_STATES.has(v.runState as RunStateName);
          if (first && ended) logs.skip(v.runId);
          else for (const text of await logs.read(v.runId, ended)) out.line(text);
        }
      }
      first = false;
      const line = progressLine(b, progress);
      if (line !== last && out && !out.interactive) out.line(line);
      last = line;
      redraw();
      if (TERMINAL_BACKFILL_STATES.has(b.state)) {
        out?.close();
        if (flags.json) ctx.stdout(JSON.stringify(backfillJson(b, progress), null, 2));
        else ctx.stdout(line);
        return b.state === 'completed' && progress.failed === 0 ? 0 : 1;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    if (timer) clearInterval(timer);
    out?.close();
  }
}

/** Log lines read from the store at a time. */
const LOG_PAGE = 5000;

/**
 * Reads the new log lines of runs, as `run` prints them with the run named; a run whose
 * lines were read after it ended is done with.
 */
function runLogReader(rt: Runtime): {
  read(runId: string, ended: boolean): Promise<string[]>;
  skip(runId: string): void;
} {
  const after = new Map<string, number>();
  const done = new Set<string>();
  return {
    async read(runId, ended) {
      if (done.has(runId)) return [];
      const texts: string[] = [];
      for (;;) {
        const page = await rt.store.readLogs(runId, { afterSeq: after.get(runId) ?? 0, limit: LOG_PAGE });
        for (const l of page) texts.push(liveLogLine(l).replace(/^(\S+ {2})/, `$1(run ${runId}) `));
        if (page.length > 0) after.set(runId, (page.at(-1) as StoredLogLine).seq);
        if (page.length < LOG_PAGE) break;
      }
      // The state was read before the lines: every line of an ended run is in by now.
      if (ended) done.add(runId);
      return texts;
    },
    skip(runId) {
      done.add(runId);
    },
  };
}

export async function backfillListCommand(ctx: CliContext, flags: { json?: boolean }): Promise<number> {
  return withRuntime(ctx, async (rt) => {
    const rows = (await listBackfills(rt)).map((v) => ({ b: v.backfill, progress: v.progress }));
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
    const { backfill: b, progress } = await moveBackfillTo(rt, id, to);
    if (flags.json) ctx.stdout(JSON.stringify(backfillJson(b, progress), null, 2));
    else ctx.stdout(`${b.id} ${b.state}\n${progressLine(b, progress)}`);
    return 0;
  });
}
