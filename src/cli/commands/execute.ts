/**
 * Commands that create or drive runs: run, resume, retry, cancel, worker.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LIMITS } from '../../core/limits.js';
import { parseYaml as parseBoundedYaml, toPlain, yamlLimitMessage } from '../../define/yaml-document.js';
import { BatonError } from '../../core/errors.js';
import type { RunEvent, RunState } from '../../core/run-machine.js';
import { compilePlan, createRunState, evolve } from '../../core/run-machine.js';
import type { FlowPlan } from '../../core/run-machine.js';
import { loadRunState } from '../../app/run-state.js';
import { resolveRunRef } from '../../app/run-refs.js';
import type { RunStateName } from '../../core/states.js';
import { isTerminalRun } from '../../core/states.js';
import { readInputFile } from '../../define/input-file.js';
import { parseParamAssignments } from '../../define/params.js';
import type { Engine } from '../../engine/engine.js';
import type { Runtime } from '../../app/runtime.js';
import type { LogLine } from '../../store/store.js';
import { createRun, openRuntime } from '../../app/runtime.js';
import { buildRun, cancelRun, parseLabelAssignments, pruneRuns, retryRun, waitForRun } from '../../app/runs.js';
import { startWorker } from '../../app/workers.js';
import type { CliContext } from '../context.js';
import { liveLines, progressCounts, renderProgress, renderShow, runJson } from '../render.js';
import type { LiveOutput } from '../live-output.js';
import { createLiveOutput, stderrTerminal } from '../live-output.js';
import { stopSignal } from '../stop-signal.js';

export interface RunFlags {
  readonly param?: string[];
  readonly paramsFile?: string;
  readonly wait?: boolean;
  readonly enqueue?: boolean;
  readonly dedupeKey?: string;
  /** `--label key=value`, repeatable. */
  readonly label?: string[];
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** `--params-file`: a regular file within `input_file_bytes` (a FIFO or /dev/zero is refused unread). */
function readParamsFile(path: string, cwd: string): Record<string, unknown> {
  const text = readInputFile(resolve(cwd, path), { limit: 'input_file_bytes', what: 'params file', code: 'USAGE' });
  // The flow loader's parser: nesting and alias expansion are bounded while it parses.
  const parsed = parseBoundedYaml(text, { depth: LIMITS.params_depth.default });
  if (parsed.over) {
    const { message, hint } = yamlLimitMessage(parsed.over, 'params_depth');
    throw new BatonError('USAGE', `--params-file ${path}: ${message}`, { hint });
  }
  const syntax = parsed.errors[0];
  if (syntax) throw new BatonError('USAGE', `--params-file ${path}: ${syntax.message}`);
  const raw = toPlain(parsed);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BatonError('USAGE', `--params-file ${path}: expected a JSON or YAML object of param values`);
  }
  return raw as Record<string, unknown>;
}

/** Exit code for a finished run: 0 succeeded, 1 otherwise. */
function exitFor(state: RunStateName): number {
  return state === 'succeeded' ? 0 : 1;
}

/**
 * Prints a run as it goes: its task log lines and progress lines, in the order they
 * happened, and on a terminal the status line, counted from `state` kept current with the
 * run's events. Lines of child runs (subflows executed by the same engine) name their run.
 */
interface RunWatch {
  readonly out: LiveOutput;
  take(runId: string, events: readonly RunEvent[], logs: readonly LogLine[]): void;
  close(): void;
}

function createRunWatch(out: LiveOutput, runId: string, initial: RunState | null): RunWatch {
  const started = Date.now();
  let state = initial;
  const redraw = () => out.status(renderProgress(state ? progressCounts(state) : null, Date.now() - started));
  // The elapsed time moves even while nothing is committed.
  const timer = out.interactive ? setInterval(redraw, 1000) : undefined;
  timer?.unref();
  redraw();
  const label = (id: string, text: string) => (id === runId ? text : text.replace(/^(\S+ {2})/gm, `$1(run ${id}) `));
  return {
    out,
    take(id, events, logs) {
      for (const line of liveLines(events, logs)) out.line(label(id, line));
      if (state && id === runId) {
        try {
          for (const e of events) evolve(state, e);
          // Follow-ups are for the engine's decisions; kept here they would only grow.
          state.followUps.clear();
        } catch {
          // The counts are a convenience: the status line keeps the elapsed time alone.
          state = null;
        }
      }
      redraw();
    },
    close() {
      if (timer) clearInterval(timer);
      out.close();
    },
  };
}

/** What `promise` gives, or null if it fails: for what only the status line's counts need. */
async function orNull<T>(promise: Promise<T>): Promise<T | null> {
  try {
    return await promise;
  } catch {
    // Without it the status line shows the elapsed time alone; the run itself is unaffected.
    return null;
  }
}

/** The output of a command that follows a run, or null when it prints only the result (quiet, JSON). */
function liveOutputFor(ctx: CliContext, flags: { json?: boolean; quiet?: boolean }): LiveOutput | null {
  return flags.json || flags.quiet ? null : createLiveOutput(ctx, stderrTerminal(ctx.runtime.env));
}

/**
 * Drives one run in this process, printing its log lines and progress unless quiet or JSON.
 * By default the run is in the store and is executed as it stands; `fresh` instead hands
 * the engine a run still to be created (`begin`), of the flow whose plan it gives.
 */
async function drive(
  ctx: CliContext,
  rt: Runtime,
  runId: string,
  flags: { json?: boolean; quiet?: boolean },
  fresh?: { readonly plan: () => FlowPlan; readonly begin: (engine: Engine) => Promise<RunStateName> },
): Promise<number> {
  const out = liveOutputFor(ctx, flags);
  // The counts of the status line need the run's state; off a terminal nothing shows them.
  let initial: RunState | null = null;
  if (out?.interactive && fresh) initial = createRunState(runId, fresh.plan());
  else if (out?.interactive) initial = (await orNull(loadRunState(rt, runId)))?.state ?? null;
  const watch = out ? createRunWatch(out, runId, initial) : null;
  const say = (m: string) => (watch ? watch.out.line(m) : ctx.stderr(m));
  const engine: Engine = rt.createEngine({
    ...(watch ? { onCommitted: (id, events, logs) => watch.take(id, events, logs) } : {}),
    onDiagnostic: (m) => say(`baton: ${m}`),
  });
  let interrupted = false;
  const stopOnSignal = () => {
    interrupted = true;
    say('baton: interrupted; the run stays unfinished — continue it with `baton resume ' + runId + '`');
    watch?.close();
    void engine.stop().then(() => ctx.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    let state: RunStateName;
    try {
      state = await (fresh ? fresh.begin(engine) : engine.execute(runId));
    } catch (error) {
      // Stopping on a signal ends the wait; the exit happens once the engine has stopped.
      if (interrupted) return await new Promise<number>(() => undefined);
      throw error;
    }
    await engine.stop();
    watch?.close();
    await printRun(ctx, rt, runId, flags);
    return exitFor(state);
  } finally {
    watch?.close();
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
  }
}

/** Log lines read from the store at a time. */
const LOG_PAGE = 5000;

/**
 * Waits for a run that other processes execute, printing what they store of it as `drive`
 * does: here the store is the only way to hear of it, so it is read every 200 ms.
 */
async function follow(
  ctx: CliContext,
  rt: Runtime,
  runId: string,
  flags: { json?: boolean; quiet?: boolean },
): Promise<RunStateName> {
  const out = liveOutputFor(ctx, flags);
  if (!out) return (await waitForRun(rt, runId)).state;
  let initial: RunState | null = null;
  if (out.interactive) {
    const record = await rt.store.getRun(runId);
    const plan = record ? await orNull(rt.catalog.plan(record.flow, record.version)) : null;
    if (plan) initial = createRunState(runId, plan);
  }
  const watch = createRunWatch(out, runId, initial);
  let afterEvent = 0;
  let afterLog = 0;
  try {
    for (;;) {
      // The run first: once it is seen ended, the reads after it hold all of its events and lines.
      const run = await rt.store.getRun(runId);
      if (!run) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`);
      const events = await rt.store.readEvents(runId, afterEvent);
      const logs = await rt.store.readLogs(runId, { afterSeq: afterLog, limit: LOG_PAGE });
      afterEvent = events.at(-1)?.seq ?? afterEvent;
      afterLog = logs.at(-1)?.seq ?? afterLog;
      watch.take(
        runId,
        events.map((e) => e.event),
        logs,
      );
      if (logs.length === LOG_PAGE) continue;
      if (isTerminalRun(run.state)) return run.state;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    watch.close();
  }
}

async function printRun(
  ctx: CliContext,
  rt: Runtime,
  runId: string,
  flags: { json?: boolean; quiet?: boolean },
): Promise<void> {
  const { assetsSection, loadShowData, showJson } = await import('./inspect.js');
  const data = await loadShowData(ctx, rt, runId);
  if (flags.json) ctx.stdout(JSON.stringify(showJson(data), null, 2));
  else
    ctx.stdout(renderShow(data.run, data.tasks, { state: data.state, children: data.children }) + assetsSection(data));
}

export async function runCommand(ctx: CliContext, flowRef: string, flags: RunFlags): Promise<number> {
  // A bad params file is refused before the store is opened (or created).
  const fromFile = flags.paramsFile ? readParamsFile(flags.paramsFile, ctx.runtime.cwd) : {};
  // So are bad labels.
  const labels = parseLabelAssignments(flags.label ?? []);
  // A flow file named by path runs even outside a project; a bare name needs one.
  const rt = await openRuntime({ ...ctx.runtime, allowNoProject: existsSync(resolve(ctx.runtime.cwd, flowRef)) });
  try {
    const flow = await rt.catalog.find(flowRef);
    const params = { ...fromFile, ...parseParamAssignments(flags.param ?? []) };
    const options = {
      params,
      paramsFromText: true,
      ...(flags.dedupeKey ? { dedupeKey: flags.dedupeKey } : {}),
      labels,
    };
    const announce = (runId: string, created: boolean) => {
      if (!created) ctx.stderr(`baton: a run with dedupe key ${flags.dedupeKey} exists already: ${runId}`);
      else if (!flags.json) ctx.stderr(`baton: run ${runId} of ${flow.spec.name} (version ${flow.version}) created`);
    };
    // With PostgreSQL, schedulers and workers execute runs; this process only queues it.
    const enqueue = flags.enqueue ?? rt.store.dialect === 'postgres';
    if (!enqueue && !flags.dedupeKey) {
      // Created and started in one commit by the engine that executes it.
      const next = buildRun(rt.config, flow, options);
      return await drive(ctx, rt, next.id, flags, {
        plan: () => compilePlan(flow.spec),
        begin: async (engine) => {
          const { runId, created, done } = await engine.startNew(next);
          announce(runId, created);
          return done;
        },
      });
    }
    const { run, created } = await createRun(rt, flow, options);
    announce(run.id, created);
    if (enqueue) {
      if (!flags.wait) {
        if (flags.json) ctx.stdout(JSON.stringify(runJson(run), null, 2));
        else ctx.stdout(run.id);
        return 0;
      }
      const state = await follow(ctx, rt, run.id, flags);
      await printRun(ctx, rt, run.id, flags);
      return exitFor(state);
    }
    return await drive(ctx, rt, run.id, flags);
  } finally {
    await rt.close();
  }
}

/**
 * Waits for a queued run and prints it as `baton run` does: on PostgreSQL workers execute
 * it and this process follows the store; on SQLite this process executes it.
 */
export async function awaitQueuedRun(
  ctx: CliContext,
  rt: Runtime,
  runId: string,
  flags: { json?: boolean; quiet?: boolean },
): Promise<number> {
  if (rt.store.dialect !== 'postgres') return drive(ctx, rt, runId, flags);
  const state = await follow(ctx, rt, runId, flags);
  await printRun(ctx, rt, runId, flags);
  return exitFor(state);
}

export async function resumeCommand(
  ctx: CliContext,
  ref: string,
  flags: { json?: boolean; quiet?: boolean; flow?: string },
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const run = await resolveRunRef(rt, ref, { flow: flags.flow });
    const runId = run.id;
    if (isTerminalRun(run.state)) {
      ctx.stderr(`baton: run ${runId} is already ${run.state}`);
      await printRun(ctx, rt, runId, flags);
      return exitFor(run.state);
    }
    return await drive(ctx, rt, runId, flags);
  } finally {
    await rt.close();
  }
}

export interface RetryFlags {
  readonly fromFailed?: boolean;
  readonly task?: string[];
  readonly downstream?: boolean;
  readonly enqueue?: boolean;
  readonly json?: boolean;
  readonly quiet?: boolean;
  /** With the run reference `last`: the newest run of this flow. */
  readonly flow?: string;
}

export async function retryCommand(ctx: CliContext, ref: string, flags: RetryFlags): Promise<number> {
  const tasks = flags.task ?? [];
  if (!flags.fromFailed && tasks.length === 0) {
    throw new BatonError('USAGE', 'baton retry needs --from-failed or --task <id>', {
      hint: 'Use --from-failed to rerun what did not succeed, or --task <id> [--downstream] for chosen tasks.',
    });
  }
  if (flags.fromFailed && tasks.length > 0)
    throw new BatonError('USAGE', '--from-failed and --task cannot be combined');
  const rt = await openRuntime(ctx.runtime);
  try {
    const runId = (await resolveRunRef(rt, ref, { flow: flags.flow })).id;
    await retryRun(rt, runId, { fromFailed: flags.fromFailed ?? false, tasks, downstream: flags.downstream ?? false });
    if (!flags.json) ctx.stderr(`baton: run ${runId} reopened`);
    // With PostgreSQL the leading scheduler takes the reopened run; this process does not race it.
    if (flags.enqueue ?? rt.store.dialect === 'postgres') {
      ctx.stdout(runId);
      return 0;
    }
    return await drive(ctx, rt, runId, flags);
  } finally {
    await rt.close();
  }
}

export async function cancelCommand(
  ctx: CliContext,
  ref: string,
  flags: { task?: string; json?: boolean; flow?: string },
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const run = await resolveRunRef(rt, ref, { flow: flags.flow });
    const runId = run.id;
    if (isTerminalRun(run.state)) {
      ctx.stderr(`baton: run ${runId} is already ${run.state}; nothing to cancel`);
      return 0;
    }
    const after = await cancelRun(rt, runId, {
      reason: 'cancelled by user',
      ...(flags.task !== undefined ? { task: flags.task } : {}),
    });
    if (flags.json) ctx.stdout(JSON.stringify(runJson(after), null, 2));
    else ctx.stdout(`${runId} ${after.state}`);
    return 0;
  } finally {
    await rt.close();
  }
}

export async function workerCommand(
  ctx: CliContext,
  flags: { concurrency?: number; labels?: string },
): Promise<number> {
  const rt = await openRuntime({
    ...ctx.runtime,
    flags: { ...ctx.runtime.flags, ...(flags.concurrency ? { concurrency: flags.concurrency } : {}) },
  });
  const labels = (flags.labels ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  const postgres = rt.store.dialect === 'postgres';
  if (!postgres && labels.length > 0) {
    await rt.close();
    throw new BatonError('USAGE', '--labels needs a PostgreSQL store', {
      hint: 'On the embedded store one process runs every task; set BATON_DATABASE_URL to scale out.',
    });
  }
  // PostgreSQL (scale-out): this process executes attempts that `baton scheduler` puts on the
  // queue. Embedded: it drives whole runs, and resumes those whose owner died.
  const worker = startWorker(rt, {
    mode: postgres ? 'tasks' : 'runs',
    labels,
    onDiagnostic: (m) => ctx.stderr(`baton worker: ${m}`),
    ...(flags.concurrency ? { concurrency: flags.concurrency } : {}),
  });
  // The handlers go in before the line that says the worker is up: a supervisor that stops
  // it on reading that line must find SIGTERM handled, not the default that kills at once.
  const drain = () => worker.drain();
  const stopped = stopSignal().then((signal) => {
    ctx.stderr(`baton worker: ${signal}, draining: finishing running attempts, then stopping`);
    return drain();
  });
  ctx.stderr(
    postgres
      ? `baton worker ${worker.id}: executing tasks${labels.length ? ` labelled ${labels.join(', ')}` : ''}`
      : `baton worker ${worker.id}: executing runs from ${rt.config.databasePath}`,
  );
  await stopped;
  await rt.close();
  ctx.stderr('baton worker: stopped');
  return 0;
}

export async function schedulerCommand(
  ctx: CliContext,
  flags: { webhookPort?: number; webhookHost?: string } = {},
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  if (rt.store.dialect !== 'postgres') {
    await rt.close();
    throw new BatonError('USAGE', 'baton scheduler needs a PostgreSQL store', {
      hint: 'Set BATON_DATABASE_URL=postgres://...; on the embedded store, `baton worker` schedules and executes.',
    });
  }
  // Every scheduler may take webhooks: a delivery creates its run through the store, with its
  // dedupe key, whichever process receives it. The port is bound first, so that a port in
  // use stops the process before it joins the leader election (no half-start).
  let webhooks: { stop(): Promise<void> } | undefined;
  if (flags.webhookPort !== undefined) {
    const { WebhookServer } = await import('../../triggers/webhook-server.js');
    const server = new WebhookServer({
      store: rt.store,
      service: rt.createTriggerService(),
      env: ctx.runtime.env,
      port: flags.webhookPort,
      host: flags.webhookHost ?? '127.0.0.1',
      limits: rt.config.http,
    });
    let port: number;
    try {
      port = await server.start();
    } catch (error) {
      await rt.close();
      throw error;
    }
    webhooks = server;
    ctx.stderr(`baton scheduler: webhooks on http://${flags.webhookHost ?? '127.0.0.1'}:${port}/hooks/<trigger>`);
  }
  const scheduler = rt.createScheduler({
    onDiagnostic: (m) => ctx.stderr(`baton scheduler: ${m}`),
    onLeadership: (leading) => ctx.stderr(`baton scheduler: ${leading ? 'leading' : 'standing by'}`),
  });
  // The handlers go in before the line that says the scheduler is up (see the worker above).
  const stopped = stopSignal().then(async (signal) => {
    ctx.stderr(`baton scheduler: ${signal}, handing over`);
    await webhooks?.stop();
    await scheduler.stop();
  });
  ctx.stderr('baton scheduler: started; standing by until it holds the leadership');
  scheduler.start();
  await stopped;
  await rt.close();
  ctx.stderr('baton scheduler: stopped');
  return 0;
}

/** `db prune`; `olderThan` is in ms, parsed and bounded by the option table (src/cli/options.ts). */
export async function pruneCommand(ctx: CliContext, flags: { olderThan: number; json?: boolean }): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const { before, runs, payloads, cached, assetVersions, resultCache } = await pruneRuns(rt, flags.olderThan);
    if (flags.json) {
      ctx.stdout(
        JSON.stringify({
          pruned_runs: runs,
          pruned_payloads: payloads,
          evicted_cache_entries: cached,
          pruned_asset_versions: assetVersions,
          pruned_result_cache_entries: resultCache,
          before: new Date(before).toISOString(),
        }),
      );
    } else {
      ctx.stdout(
        `pruned ${runs} finished run(s) that ended before ${new Date(before).toISOString()}` +
          (payloads > 0 ? `, and ${payloads} output(s) they stored by reference` : '') +
          (cached > 0 ? `; evicted ${cached} cached object(s) unused since then` : '') +
          (assetVersions > 0 ? `; removed ${assetVersions} older asset version(s)` : '') +
          (resultCache > 0 ? `; forgot ${resultCache} result cache entr${resultCache === 1 ? 'y' : 'ies'}` : ''),
      );
    }
    return 0;
  } finally {
    await rt.close();
  }
}
