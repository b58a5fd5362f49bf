/**
 * The public client: a program's way into a Baton store. It opens the runtime (the app
 * layer's one composition root) and calls the app's use cases; it holds no rules of its
 * own. See docs/api.md.
 */
import { resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import type { FlowDefinition } from '../define/builder.js';
import type { ParamDef } from '../define/builder-types.js';
import { materializeAsset } from '../app/assets.js';
import { resolveConfig } from '../app/config.js';
import { decideApproval, defaultActor, sendSignal } from '../app/run-requests.js';
import type { FlowRef } from '../app/runs.js';
import {
  cancelRun,
  getRun,
  listRuns,
  retryRun,
  runOutputs,
  startRun,
  startRunEagerly,
  startRuns,
  waitForRun,
  watchRun,
} from '../app/runs.js';
import type { Runtime } from '../app/runtime.js';
import { createRuntime, openRuntime } from '../app/runtime.js';
import { setTriggerPaused } from '../app/triggers.js';
import type { RunningWorker } from '../app/workers.js';
import { startWorker } from '../app/workers.js';
import type { HandleHost } from './run-handle.js';
import { RunHandle, runFailedError } from './run-handle.js';
import type { RunRecord } from '../store/store.js';
import type {
  AssetDetail,
  BatonApi,
  AssetInfo,
  RunAssetInfo,
  CancelOptions,
  ClientOptions,
  DecisionOptions,
  DecisionOutcome,
  FlowInput,
  ListOptions,
  ParamInput,
  RetryOptions,
  RunEventRecord,
  RunInfo,
  RunOutputs,
  SignalOptions,
  SignalOutcome,
  StartManyInput,
  StartOptions,
  TaskRunInfo,
  WaitOptions,
  Worker,
  WorkerOptions,
} from './types.js';

/** A run record as the client reports it. */
function runInfo(r: RunRecord): RunInfo {
  return {
    id: r.id,
    flow: r.flow,
    version: r.version,
    state: r.state,
    params: r.params,
    dedupeKey: r.dedupeKey,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    error: r.error,
    triggerId: r.triggerId,
    parentRunId: r.parentRunId,
    labels: r.labels,
  };
}

/** Opens the runtime the options name: a project's, or a bare store's with default settings. */
async function runtimeFor(options: ClientOptions): Promise<Runtime> {
  const env = options.env ?? {};
  const flags = {
    ...(options.database !== undefined ? { database: options.database, databaseBase: process.cwd() } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  };
  if (options.project !== undefined) {
    return openRuntime({ cwd: resolve(options.project), env, flags, allowNoProject: options.database !== undefined });
  }
  if (options.database === undefined && !env.BATON_DATABASE_URL && !env.BATON_DATABASE) {
    throw new BatonError('USAGE', 'openClient needs a database or a project', {
      hint: "Pass { database: 'baton.db' } (a SQLite file), { database: 'postgres://…' }, or { project: '/path/to/project' }.",
    });
  }
  const config = resolveConfig({ dir: process.cwd(), configFile: null, marker: 'none' }, {}, env, flags);
  return createRuntime(config, { env });
}

/** Opens a client; prefer `openClient` from the package, which loads this module on demand. */
export async function createClient(options: ClientOptions): Promise<BatonClient> {
  const rt = await runtimeFor(options);
  const client = new BatonClient(rt);
  try {
    for (const flow of options.flows ?? []) client.register(flow);
  } catch (error) {
    await rt.close();
    throw error;
  }
  return client;
}

/**
 * A connection to one Baton store: starts runs and waits for them, sends them signals and
 * decisions, and may execute them in this process (`startWorker`). Close it when done.
 */
export class BatonClient implements BatonApi {
  private readonly workers = new Set<RunningWorker>();
  private closed = false;
  private readonly host: HandleHost;

  constructor(private readonly rt: Runtime) {
    this.host = {
      status: (id) => this.status(id),
      outputs: (id, o) => this.outputs(id, o),
      cancel: (id, o) => this.cancel(id, o),
      retry: (id, o) => this.retry(id, o),
      signal: (id, e, o) => this.signal(id, e, o),
      approve: (id, t, o) => this.approve(id, t, o),
      reject: (id, t, o) => this.reject(id, t, o),
      watch: (id, o) => this.watch(id, o),
      tasks: (id) => this.tasks(id),
    };
  }

  /** Which store this client uses: `sqlite` or `postgres`. */
  get dialect(): 'sqlite' | 'postgres' {
    return this.rt.store.dialect;
  }

  /**
   * Makes a flow defined in code known by its name, without a file, so that `start` can
   * name it and this process's workers can execute its runs. Returns the name. Workers in
   * other processes must register the same flow (same code) to execute its runs.
   */
  register(flow: FlowDefinition): string {
    this.open();
    return this.rt.catalog.register(flow).spec.name;
  }

  /**
   * Creates a run of a flow and returns a handle on it; a worker executes it. When this
   * client has started a worker of whole runs (`startWorker`) with room for another run,
   * that worker starts the run in the very commit that creates it (an eager start: no
   * claim, one synced commit before the first task body); otherwise the run is queued for
   * the first worker to claim. The
   * params are checked against the flow's declaration and `limits.params_bytes`, and the
   * labels against their rules, first (RUN_PARAM_INVALID, PAYLOAD_TOO_LARGE,
   * RUN_LABEL_INVALID); nothing is created when they fail.
   */
  async start<P extends Record<string, ParamDef>, O = RunOutputs>(
    flow: FlowDefinition<P>,
    params?: ParamInput<P>,
    options?: StartOptions<O>,
  ): Promise<RunHandle<O>>;
  async start<O = RunOutputs>(
    flow: string,
    params?: Readonly<Record<string, unknown>>,
    options?: StartOptions<O>,
  ): Promise<RunHandle<O>>;
  async start<O>(
    flow: FlowInput,
    params: Readonly<Record<string, unknown>> = {},
    options: StartOptions<O> = {},
  ): Promise<RunHandle<O>> {
    this.open();
    const startOptions = {
      params,
      ...(options.dedupeKey !== undefined ? { dedupeKey: options.dedupeKey } : {}),
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
    };
    const output = typeof options.output === 'string' ? options.output : options.output?.id;
    // A worker of whole runs in this process starts the run itself, in the commit that creates it.
    const engine = [...this.workers].find((w) => w.engine?.hasRoomForRun())?.engine;
    if (engine) {
      const run = await startRunEagerly(this.rt, engine, flow as FlowRef, startOptions);
      return new RunHandle<O>(this.host, run.id, run.flow, run.created, output);
    }
    const { run, created } = await startRun(this.rt, flow as FlowRef, startOptions);
    this.nudge('claim');
    return new RunHandle<O>(this.host, run.id, run.flow, created, output);
  }

  /**
   * Creates many queued runs in one transaction and returns a handle on each, in order. All
   * inputs are checked first: one bad input creates none. A dedupe key that names an
   * existing run (or an earlier input) gives a handle on that run, with `created` false.
   */
  async startMany(inputs: readonly StartManyInput[]): Promise<RunHandle[]> {
    this.open();
    const started = await startRuns(
      this.rt,
      inputs.map((i) => ({
        flow: i.flow as FlowRef,
        params: i.params ?? {},
        ...(i.dedupeKey !== undefined ? { dedupeKey: i.dedupeKey } : {}),
        ...(i.labels !== undefined ? { labels: i.labels } : {}),
      })),
    );
    this.nudge('claim');
    return started.map(({ run, created }) => new RunHandle(this.host, run.id, run.flow, created));
  }

  /** A handle on an existing run (RUN_NOT_FOUND if there is none). */
  async handle(runId: string): Promise<RunHandle> {
    this.open();
    const run = await getRun(this.rt, runId);
    return new RunHandle(this.host, run.id, run.flow, false);
  }

  /** The run as it is now. */
  async status(runId: string): Promise<RunInfo> {
    this.open();
    return runInfo(await getRun(this.rt, runId));
  }

  /** Waits until the run ends and returns its result: see `RunHandle.result`. */
  async result(runId: string, options: WaitOptions = {}): Promise<RunOutputs> {
    return (await this.handle(runId)).result(options);
  }

  /** Waits until the run ends: its task outputs by id, or RUN_FAILED. */
  private async outputs(runId: string, options: WaitOptions): Promise<RunOutputs> {
    this.open();
    const run = await waitForRun(this.rt, runId, options);
    if (run.state !== 'succeeded') throw runFailedError(runInfo(run), await this.tasks(runId));
    return runOutputs(this.rt, runId);
  }

  /** Runs, newest first. */
  async list(options: ListOptions = {}): Promise<RunInfo[]> {
    this.open();
    return (await listRuns(this.rt, options)).map(runInfo);
  }

  /** The task runs of a run. */
  async tasks(runId: string): Promise<TaskRunInfo[]> {
    this.open();
    await getRun(this.rt, runId);
    return (await this.rt.store.getTaskRuns(runId)).map((t) => ({
      id: t.taskId,
      state: t.state,
      attempts: t.attempts,
      output: t.output,
      error: t.error,
    }));
  }

  /**
   * The run's events as they are stored: first those already there, then each new one (the
   * store is read with a growing interval, 10 ms up to 1 s), ending once the run has ended.
   * Break out of the loop, or abort `signal`, to stop early.
   */
  async *watch(
    runId: string,
    options: { afterSeq?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<RunEventRecord, void, undefined> {
    this.open();
    yield* watchRun(this.rt, runId, options);
  }

  /**
   * Cancels a run, or one task run of it. Applied at once when no process executes the run;
   * otherwise the process that does is asked, and its answer waited for (up to 30 s,
   * RUN_OWNED after). A finished run is left as it is. Returns the run after.
   */
  async cancel(runId: string, options: CancelOptions = {}): Promise<RunInfo> {
    this.open();
    return runInfo(await cancelRun(this.rt, runId, options));
  }

  /** Reopens a finished run: its failed tasks, or chosen ones (RUN_OWNED if a process executes it). */
  async retry(runId: string, options: RetryOptions): Promise<RunInfo> {
    this.open();
    const run = await retryRun(this.rt, runId, options);
    this.nudge();
    return runInfo(run);
  }

  /**
   * Sends an event to a run: tasks waiting for it (`waitForEvent`, matching `key`) take it
   * as their output, or it is kept for the first that will wait. SIGNAL_INVALID for a bad
   * event name or a finished run; PAYLOAD_TOO_LARGE for data over `limits.output_bytes`.
   */
  async signal(runId: string, event: string, options: SignalOptions = {}): Promise<SignalOutcome> {
    this.open();
    const r = await sendSignal(this.rt, runId, {
      event,
      key: options.key ?? null,
      data: options.data,
      by: options.by ?? null,
      ...(options.id !== undefined ? { id: options.id } : {}),
    });
    this.nudge();
    return { id: r.id, woke: r.woke, kept: r.kept, duplicate: r.duplicate };
  }

  /**
   * Approves an approval task that waits. APPROVAL_NOT_WAITING if it does not wait for an
   * approval; APPROVER_NOT_ALLOWED if `by` is not among its approvers.
   */
  approve(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.decide(runId, task, true, options);
  }

  /** Rejects an approval task that waits (it fails with APPROVAL_REJECTED); errors as `approve`. */
  reject(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.decide(runId, task, false, options);
  }

  private async decide(
    runId: string,
    task: string,
    approved: boolean,
    options: DecisionOptions,
  ): Promise<DecisionOutcome> {
    this.open();
    const r = await decideApproval(this.rt, runId, task, {
      approved,
      by: options.by || defaultActor(),
      comment: options.comment ?? null,
    });
    this.nudge();
    return { task: r.task, taskState: r.taskState, runState: r.runState };
  }

  /**
   * Assets tasks produced, in key order: each with its latest version (a SHA-256), when and
   * by which flow, task and run it was made, and `stale` when an asset it was made from has
   * a newer version since. At most `limit` (default 1000), after `afterKey`.
   */
  async assets(options: { readonly limit?: number; readonly afterKey?: string } = {}): Promise<AssetInfo[]> {
    this.open();
    return this.rt.assets.list(options);
  }

  /**
   * One asset: its versions (newest first, at most `limit`, default 20), the assets its
   * latest version was made from and those made from it, and the checks of its latest
   * version. Throws ASSET_NOT_FOUND for a key never materialized.
   */
  async asset(key: string, options: { readonly limit?: number } = {}): Promise<AssetDetail> {
    this.open();
    return this.rt.assets.show(key, options);
  }

  /**
   * What a run materialized: one entry per asset and attempt (an attempt that failed a
   * check included), in the order recorded, each with its version, location, rows, the
   * versions it read and its check results. At most `limit` (default 100).
   */
  async runAssets(runId: string, options: { readonly limit?: number } = {}): Promise<RunAssetInfo[]> {
    this.open();
    return this.rt.assets.ofRun(runId, options);
  }

  /**
   * Materializes an asset: starts a run of the flow that produces `key`, running the
   * producing task and the tasks it depends on, the rest of the flow skipped; returns a
   * handle on it. ASSET_NOT_FOUND when no flow of the project produces the asset.
   *
   * Example: `const run = await client.materialize('orders_clean'); await run.result();`
   */
  async materialize(key: string): Promise<RunHandle> {
    this.open();
    const { run, created } = await materializeAsset(this.rt, key);
    this.nudge('claim');
    return new RunHandle(this.host, run.id, run.flow, created);
  }

  /** Pauses a trigger (`<flow>/<trigger>`, or its name when unique): it creates no runs until resumed. */
  async pauseTrigger(trigger: string): Promise<void> {
    this.open();
    await setTriggerPaused(this.rt, trigger, true);
  }

  /** Resumes a paused trigger. */
  async resumeTrigger(trigger: string): Promise<void> {
    this.open();
    await setTriggerPaused(this.rt, trigger, false);
  }

  /**
   * Starts executing runs in this process (see `WorkerOptions.mode`) until `drain()` or
   * `stop()`; `close()` drains it. Several workers may run in one process and in many.
   */
  startWorker(options: WorkerOptions = {}): Worker {
    this.open();
    const labels = options.labels ?? [];
    const worker = startWorker(this.rt, {
      mode: options.mode ?? (labels.length > 0 ? 'tasks' : 'runs'),
      labels,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      ...(options.onDiagnostic ? { onDiagnostic: options.onDiagnostic } : {}),
    });
    const forget = <T>(ending: Promise<T>) => ending.finally(() => this.workers.delete(tracked));
    const tracked: RunningWorker = {
      ...worker,
      drain: () => forget(worker.drain()),
      stop: () => forget(worker.stop()),
    };
    this.workers.add(tracked);
    return tracked;
  }

  /**
   * Tells this client's workers about work just recorded here: a new run is for a claim only;
   * a signal, a decision or a retry needs a poll, which reads requests and child runs too.
   */
  private nudge(what: 'claim' | 'poll' = 'poll'): void {
    for (const w of this.workers) {
      void (what === 'claim' ? w.engine?.claimNow() : w.engine?.pollNow())?.catch(() => undefined);
    }
  }

  private open(): void {
    if (this.closed)
      throw new BatonError('USAGE', 'this Baton client is closed', { hint: 'Open another with openClient().' });
  }

  /** Drains this client's workers (running attempts finish), then closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.workers].map((w) => w.drain()));
    await this.rt.close();
  }
}
