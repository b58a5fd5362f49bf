/**
 * `baton dev` (one process: runs, triggers, the UI, API and webhooks on one port, reloading
 * flows as they change) and
 * `baton triggers` (list, pause, resume, history).
 */
import { relative, sep } from 'node:path';
import { CONFIG_FILE, loadConfig } from '../../app/config.js';
import type { BatonConfig } from '../../app/config.js';
import { openRuntime } from '../../app/runtime.js';
import type { Runtime } from '../../app/runtime.js';
import { findTrigger, listTriggers, setTriggerPaused, triggerHistory } from '../../app/triggers.js';
import { formatDuration } from '../../core/duration.js';
import type { Problem } from '../../core/errors.js';
import type { RunEvent } from '../../core/run-machine.js';
import type { Engine } from '../../engine/engine.js';
import type { RunRecord, Store } from '../../store/store.js';
import type { RunningServer } from '../../server/server.js';
import { stopSignal } from '../stop-signal.js';
import type { CliContext } from '../context.js';
import { renderError, renderProblem, table, time } from '../render.js';
import { LastGoodFlows } from './dev-flows.js';
import type { ReloadResult } from './dev-flows.js';
import { ProjectWatcher } from './dev-watch.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What made a run, in words: its trigger, a backfill, a parent run, or `manual`. */
function origin(run: RunRecord): string {
  if (run.parentRunId) return `subflow of run ${run.parentRunId}${run.parentTask ? ` (task ${run.parentTask})` : ''}`;
  if (run.triggerId === null) return 'manual';
  const backfill = /^(.*)#backfill-(.+)$/.exec(run.triggerId);
  return backfill ? `backfill ${backfill[2]} of ${backfill[1]}` : `trigger ${run.triggerId}`;
}

/**
 * One line when a run this process executes starts (or starts again, retried) and one when
 * it ends, in commit order; a failed run says where to look.
 */
class RunLines {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly say: (line: string) => void,
  ) {}

  committed(runId: string, events: readonly RunEvent[]): void {
    const start = events.find((e) => e.type === 'run_started' || e.type === 'run_retried');
    const end = events.find((e) => e.type === 'run_succeeded' || e.type === 'run_failed' || e.type === 'run_cancelled');
    if (!start && !end) return;
    this.chain = this.chain
      .then(async () => {
        const run = await this.store.getRun(runId);
        if (!run) return;
        const head = `run ${run.id} of ${run.flow}`;
        if (start)
          this.say(`${head} ${start.type === 'run_retried' ? 'started again (retry)' : 'started'} (${origin(run)})`);
        if (!end) return;
        const took = run.startedAt !== null ? ` in ${formatDuration(end.at - run.startedAt)}` : '';
        const state = end.type === 'run_succeeded' ? 'succeeded' : end.type === 'run_failed' ? 'failed' : 'cancelled';
        const why =
          end.type === 'run_failed'
            ? `: ${end.error.code}: ${end.error.message}; see baton show ${run.id} and baton logs ${run.id}`
            : end.type === 'run_cancelled'
              ? `: ${end.reason}`
              : '';
        this.say(`${head} ${state}${took} (${origin(run)})${why}`);
      })
      .catch((error: unknown) => this.say(`cannot read run ${runId}: ${(error as Error).message}`));
  }

  /** Resolves when every line asked for so far is printed. */
  idle(): Promise<void> {
    return this.chain;
  }
}

/** The baton.yaml settings that differ between two configurations (applied only by a restart). */
function settingsChanged(a: BatonConfig, b: BatonConfig): string[] {
  const pairs: [string, unknown, unknown][] = [
    ['database', a.databaseUrl ?? a.databasePath, b.databaseUrl ?? b.databasePath],
    ['pool_size', a.poolSize, b.poolSize],
    ['concurrency', a.concurrency, b.concurrency],
    ['pools', JSON.stringify(a.pools), JSON.stringify(b.pools)],
    ['lease', a.leaseMs, b.leaseMs],
    ['kill_grace', a.killGraceMs, b.killGraceMs],
    ['limits.output_bytes', a.outputLimitBytes, b.outputLimitBytes],
    ['limits.params_bytes', a.paramsLimitBytes, b.paramsLimitBytes],
    ['limits.log_bytes', a.logLimitBytes, b.logLimitBytes],
    ['limits.log_line_bytes', a.logLineLimitBytes, b.logLineLimitBytes],
    ['limits.error_bytes', a.errorLimitBytes, b.errorLimitBytes],
  ];
  return pairs.filter(([, x, y]) => x !== y).map(([key]) => key);
}

export async function devCommand(
  ctx: CliContext,
  flags: { port?: number; host?: string; webhooks?: boolean },
): Promise<number> {
  const say = (m: string) => ctx.stderr(`baton dev: ${m}`);
  const rt = await openRuntime(ctx.runtime);
  const projectPath = (path: string): string => {
    const rel = relative(rt.config.projectDir, path);
    return rel === '' || rel.startsWith('..') ? path : rel.split(sep).join('/');
  };
  const showProblem = (p: Problem): string => {
    const file = p.location?.file;
    const shown = file ? { ...p, location: { ...p.location, file: projectPath(file) } } : p;
    return `  ${renderProblem(shown).replace(/\n/g, '\n  ')}`;
  };
  const report = (result: ReloadResult): void => {
    for (const bad of result.invalid) {
      const what = bad.kept ? 'its last good version keeps running' : 'it is not loaded';
      say(
        `${projectPath(bad.path)} has ${plural(bad.problems.length, 'problem')}; ${what}:\n${bad.problems.map(showProblem).join('\n')}`,
      );
    }
    for (const path of result.fixed) say(`${projectPath(path)} is valid again`);
  };

  const flows = new LastGoodFlows(rt);
  let pools = Object.keys(rt.config.pools);
  // The current trigger service; a reload replaces it (its event sources restart with the flows).
  let service = rt.createTriggerService({ flows, onDiagnostic: say });
  const lines = new RunLines(rt.store, say);
  let server: RunningServer | undefined;
  let engine: Engine | undefined;
  let watcher: ProjectWatcher | undefined;
  try {
    // Loaded here so that other commands never load the HTTP stack.
    const { startServer } = await import('../../server/server.js');
    const host = flags.host ?? '127.0.0.1';
    // Bound before anything runs: a port in use ends the command having started nothing.
    server = await startServer({
      rt,
      host,
      port: flags.port ?? 8420,
      portOption: '--port <n>',
      ...(flags.webhooks !== false
        ? {
            webhooks: {
              service: { emit: (id, events, options) => service.emit(id, events, options) },
              env: ctx.runtime.env,
            },
          }
        : {}),
    });
    const stopped = stopSignal();
    say(`UI and API on ${server.url}`);
    if (flags.webhooks !== false) say(`webhooks on ${server.url}hooks/<trigger>`);

    engine = rt.createEngine({ onDiagnostic: say, onCommitted: (id, events) => lines.committed(id, events) });
    engine.startWorker();
    const first = await flows.reload(pools);
    report(first);
    await service.start();

    const reload = async (paths: readonly string[]): Promise<void> => {
      if (paths.includes(CONFIG_FILE)) {
        try {
          const config = await loadConfig(ctx.runtime.cwd, ctx.runtime.env, ctx.runtime.flags);
          pools = Object.keys(config.pools);
          const changed = settingsChanged(rt.config, config);
          if (changed.length > 0) {
            say(
              `${CONFIG_FILE}: ${changed.join(', ')} changed; restart baton dev to apply ${changed.length === 1 ? 'it' : 'them'}`,
            );
          }
        } catch (error) {
          say(
            `${CONFIG_FILE} is invalid; flows are checked against the last valid one:\n  ${renderError(error).replace(/\n/g, '\n  ')}`,
          );
        }
      }
      const result = await flows.reload(pools);
      watcher?.setModules(result.modules);
      const next = rt.createTriggerService({ flows, onDiagnostic: say });
      await service.stop();
      try {
        await next.start();
      } catch (error) {
        await next.stop();
        throw error;
      }
      service = next;
      const shown =
        paths.length > 3 ? `${paths.slice(0, 2).join(', ')} and ${paths.length - 2} more` : paths.join(', ');
      say(`${shown} changed; reloaded ${plural(result.flows, 'flow')}, ${plural(result.triggers, 'trigger')}`);
      report(result);
    };
    watcher = new ProjectWatcher({ projectDir: rt.config.projectDir, onError: say, onChange: reload });
    watcher.start();
    watcher.setModules(first.modules);

    const count = (await listTriggers(rt)).length;
    const store = rt.config.databaseUrl ? 'PostgreSQL' : rt.config.databasePath;
    say(`executing runs and ${count} trigger(s) from ${store}; reloading flows when their files change`);
    say(`${await stopped}, stopping`);
  } finally {
    // Whatever started stops, also when starting failed: nothing is left half-running.
    await watcher?.close();
    await server?.close();
    await service.stop();
    if (engine) {
      await engine.drain();
      await lines.idle();
    }
    await rt.close();
  }
  return 0;
}

async function withTriggers<T>(ctx: CliContext, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime(ctx.runtime);
  try {
    // Record the definitions the flows have now, so that the listing is current.
    await rt.createTriggerService().sync();
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

export async function triggersListCommand(ctx: CliContext, flags: { json?: boolean }): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const rows = [];
    for (const t of await listTriggers(rt)) {
      const [last] = await triggerHistory(rt, t.id, 1);
      rows.push({ t, last });
    }
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          rows.map(({ t, last }) => ({
            id: t.id,
            flow: t.flow,
            name: t.name,
            kind: t.kind,
            paused: t.paused,
            next_fire_at: t.nextFireAt === null ? null : new Date(t.nextFireAt).toISOString(),
            last_firing: last
              ? { at: new Date(last.at).toISOString(), outcome: last.outcome, reason: last.reason, run_id: last.runId }
              : null,
          })),
          null,
          2,
        ),
      );
    } else if (rows.length === 0) {
      ctx.stdout('no triggers');
    } else {
      ctx.stdout(
        table(
          ['TRIGGER', 'KIND', 'STATE', 'NEXT', 'LAST'],
          rows.map(({ t, last }) => [
            t.id,
            t.kind,
            t.paused ? 'paused' : 'active',
            time(t.nextFireAt),
            last ? `${time(last.at)} ${last.outcome}${last.runId ? ` ${last.runId}` : ''}` : '-',
          ]),
        ),
      );
    }
    return 0;
  });
}

export async function triggersPauseCommand(ctx: CliContext, id: string, paused: boolean): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const trigger = await setTriggerPaused(rt, id, paused);
    ctx.stdout(`${trigger.id} ${paused ? 'paused' : 'resumed'}`);
    return 0;
  });
}

export async function triggersHistoryCommand(
  ctx: CliContext,
  id: string,
  flags: { limit?: number; json?: boolean },
): Promise<number> {
  return withTriggers(ctx, async (rt) => {
    const trigger = await findTrigger(rt, id);
    const firings = await triggerHistory(rt, trigger.id, flags.limit ?? 50);
    if (flags.json) {
      ctx.stdout(
        JSON.stringify(
          firings.map((f) => ({
            at: new Date(f.at).toISOString(),
            outcome: f.outcome,
            reason: f.reason,
            run_id: f.runId,
            dedupe_key: f.dedupeKey,
          })),
          null,
          2,
        ),
      );
    } else {
      ctx.stdout(
        firings.length === 0
          ? 'no firings yet'
          : table(
              ['AT', 'OUTCOME', 'RUN', 'REASON'],
              firings.map((f) => [time(f.at), f.outcome, f.runId ?? '-', f.reason]),
            ),
      );
    }
    return 0;
  });
}
