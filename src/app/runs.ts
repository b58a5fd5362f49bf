/**
 * Use cases on runs: create one or many, look them up, wait for one, follow its history,
 * cancel, retry and resume. Every face (the CLI, the public client, the testing kit) goes
 * through these functions, so that a run is checked the same way wherever it comes from:
 * params resolved against the flow's declaration and held to `limits.params_bytes`.
 */
import { randomBytes } from 'node:crypto';
import { BatonError } from '../core/errors.js';
import { pinSpec } from '../core/run-history.js';
import type { RunInput } from '../core/run-machine.js';
import { taskIndexOf } from '../core/run-topology.js';
import type { RunStateName } from '../core/states.js';
import { isTerminalRun } from '../core/states.js';
import type { FlowDefinition } from '../define/builder.js';
import { isFlowDefinitionLike } from '../define/flow-mark.js';
import { resolveParams } from '../define/params.js';
import type { NewRun, RunFilter, RunRecord, StoredEvent, StoredLogLine, Store, TaskRunRecord } from '../store/store.js';
import type { Engine } from '../engine/engine.js';
import type { BatonConfig } from './config.js';
import type { LoadedFlow } from './flow-catalog.js';
import { loadRunState } from './run-state.js';
import type { Runtime } from './runtime.js';
import { prunePayloads } from '../data/payloads.js';
import { isPayloadRef } from '../core/payload-ref.js';

/** A new run id: time-ordered, 16 characters, e.g. `r0m3xk2a9f4c1d2e`. */
export function newRunId(now = Date.now()): string {
  // Six base-36 characters (31 bits) after the time: runs created together in one
  // millisecond (a startMany of thousands) must not draw the same id.
  const random = randomBytes(4).readUInt32BE(0) % RUN_ID_RANDOM_SPACE;
  return `r${now.toString(36).padStart(9, '0')}${random.toString(36).padStart(6, '0')}`;
}

const RUN_ID_RANDOM_SPACE = 36 ** 6;

export interface StartRunOptions {
  readonly params?: Readonly<Record<string, unknown>>;
  /** Params given as text (`--param k=v`): coerced to the declared types. */
  readonly paramsFromText?: boolean;
  /** A run with this key is created once; starting it again returns the existing run. */
  readonly dedupeKey?: string;
  /** Tags kept on the run and filtered on by `listRuns` (`{ team: 'growth' }`); see `checkLabels`. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Run only these tasks and the tasks they depend on (upstream, transitively); every other
   * task ends skipped with the reason `not selected`. TASK_NOT_FOUND for an id the flow lacks.
   */
  readonly tasks?: readonly string[];
}

/** Most labels one run may have. */
export const MAX_LABELS = 64;
/** Longest label key, in characters. */
export const MAX_LABEL_KEY = 63;
/** Longest label value, in characters. */
export const MAX_LABEL_VALUE = 256;
/** A label key: letters, digits and `_ . / -`, starting and ending with a letter or digit. */
const LABEL_KEY = /^[a-z0-9]([a-z0-9_./-]*[a-z0-9])?$/i;

/**
 * Checks run labels (given to `start` or `listRuns`) and returns them as a plain object of
 * strings; RUN_LABEL_INVALID naming every bad label otherwise. Keys match LABEL_KEY and
 * have at most 63 characters; values are non-empty strings of at most 256; at most 64 labels.
 */
export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) {
    throw new BatonError('RUN_LABEL_INVALID', 'labels must be an object of key=value strings, e.g. { team: "growth" }');
  }
  const entries = Object.entries(labels as Record<string, unknown>);
  const problems: string[] = [];
  if (entries.length > MAX_LABELS) problems.push(`${entries.length} labels; at most ${MAX_LABELS} are allowed`);
  for (const [key, value] of entries) {
    const name = JSON.stringify(key);
    if (key.length === 0) problems.push('a label key is empty');
    else if (key.length > MAX_LABEL_KEY) {
      problems.push(`label ${name}: the key has ${key.length} characters; at most ${MAX_LABEL_KEY} are allowed`);
    } else if (!LABEL_KEY.test(key)) {
      problems.push(
        `label ${name}: the key must be letters, digits and _ . / -, starting and ending with a letter or digit`,
      );
    }
    if (typeof value !== 'string') problems.push(`label ${name}: the value must be a string, not ${typeof value}`);
    else if (value.length === 0) problems.push(`label ${name}: the value is empty`);
    else if (value.length > MAX_LABEL_VALUE) {
      problems.push(`label ${name}: the value has ${value.length} characters; at most ${MAX_LABEL_VALUE} are allowed`);
    }
  }
  if (problems.length > 0) {
    throw new BatonError('RUN_LABEL_INVALID', `invalid run labels: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * Labels given as `key=value` texts (`--label team=growth`, repeatable), checked as
 * `checkLabels` does; the value is everything after the first `=`. RUN_LABEL_INVALID names
 * a text without `=` or a key given twice.
 */
export function parseLabelAssignments(texts: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const text of texts) {
    const at = text.indexOf('=');
    if (at < 0) {
      throw new BatonError('RUN_LABEL_INVALID', `label ${JSON.stringify(text)}: expected key=value`, {
        hint: 'Give each label as --label key=value, e.g. --label team=growth.',
      });
    }
    const key = text.slice(0, at);
    if (Object.hasOwn(labels, key)) {
      throw new BatonError('RUN_LABEL_INVALID', `label ${JSON.stringify(key)} is given twice`, {
        hint: 'Give each label key once.',
      });
    }
    labels[key] = text.slice(at + 1);
  }
  return checkLabels(labels);
}

/** What `buildRun` needs besides the flow: the limits of the configuration. */
export type RunLimits = Pick<BatonConfig, 'paramsLimitBytes'>;

/** A validated new run of a flow: params checked and filled, payload within the limit. */
export function buildRun(
  config: RunLimits,
  flow: LoadedFlow,
  options: StartRunOptions & {
    triggerId?: string;
    priority?: number;
    now?: number;
    parent?: NewRun['parent'];
  } = {},
): NewRun {
  const labels = checkLabels(options.labels);
  const params = resolveParams(flow.spec.params, options.params ?? {}, { fromText: options.paramsFromText ?? false });
  const bytes = Buffer.byteLength(JSON.stringify(params));
  if (bytes > config.paramsLimitBytes) {
    throw new BatonError(
      'PAYLOAD_TOO_LARGE',
      `the params of this run are ${bytes} bytes; the limit is ${config.paramsLimitBytes} bytes (limits.params_bytes)`,
    );
  }
  const now = options.now ?? Date.now();
  const tasks = options.tasks === undefined ? undefined : withUpstream(flow, options.tasks);
  return {
    id: newRunId(now),
    flow: {
      flow: flow.spec.name,
      version: flow.version,
      spec: pinSpec(flow.spec),
      sourcePath: flow.sourcePath,
      createdAt: now,
    },
    params,
    taskIds: flow.spec.tasks.map((t) => t.id),
    createdAt: now,
    dedupeKey: options.dedupeKey ?? null,
    maxActiveRuns: flow.spec.maxActiveRuns,
    ...(options.triggerId ? { triggerId: options.triggerId } : {}),
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.parent ? { parent: options.parent } : {}),
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(tasks ? { tasks } : {}),
  };
}

/** The given tasks and everything upstream of them, in declaration order; TASK_NOT_FOUND for an unknown id. */
function withUpstream(flow: LoadedFlow, chosen: readonly string[]): string[] {
  const byId = new Map(flow.spec.tasks.map((t) => [t.id, t]));
  const keep = new Set<string>();
  const todo = [...chosen];
  for (let next = 0; next < todo.length; next++) {
    const id = todo[next] as string;
    if (keep.has(id)) continue;
    const task = byId.get(id);
    if (!task) {
      throw new BatonError('TASK_NOT_FOUND', `flow ${flow.spec.name} has no task "${id}"`, {
        hint: `Tasks: ${[...byId.keys()].slice(0, 20).join(', ')}`,
      });
    }
    keep.add(id);
    todo.push(...task.dependsOn);
  }
  return flow.spec.tasks.filter((t) => keep.has(t.id)).map((t) => t.id);
}

/** A run just asked for: its record, and whether this call created it (false: found by its dedupe key). */
export interface StartedRun {
  readonly run: RunRecord;
  readonly created: boolean;
}

/** Validates params and records a queued run of a loaded flow; nothing runs yet. */
export async function createRun(
  rt: { readonly config: RunLimits; readonly store: Store },
  flow: LoadedFlow,
  options: StartRunOptions & { now?: number; parent?: NewRun['parent'] } = {},
): Promise<StartedRun> {
  return rt.store.createRun(buildRun(rt.config, flow, options));
}

/** A flow as a use case is given it: a name or file path, a loaded flow, or a definition in code. */
export type FlowRef = string | LoadedFlow | FlowDefinition;

/**
 * The flow a reference names. A definition from `defineFlow` is registered in the catalog
 * (so that this process can execute its runs); a name is looked up among the registered
 * flows, then the project's files.
 */
export async function findFlow(rt: Runtime, flow: FlowRef): Promise<LoadedFlow> {
  if (typeof flow === 'string') return rt.catalog.find(flow);
  if (isFlowDefinitionLike(flow)) return rt.catalog.register(flow as FlowDefinition);
  return flow as LoadedFlow;
}

/** Finds the flow, validates params and records a queued run; nothing runs yet. */
export async function startRun(rt: Runtime, flow: FlowRef, options: StartRunOptions = {}): Promise<StartedRun> {
  return createRun(rt, await findFlow(rt, flow), options);
}

/** A run started on an engine of this process: its id and flow, and whether this call created it. */
export interface EagerRun {
  readonly id: string;
  readonly flow: string;
  readonly created: boolean;
}

/**
 * Finds the flow, validates params and hands the run to `engine`, a worker of this process:
 * started in the commit that creates it when the worker has room, queued otherwise
 * (Engine.startEagerly). Resolves once the run is created.
 */
export async function startRunEagerly(
  rt: Runtime,
  engine: Pick<Engine, 'startEagerly'>,
  flow: FlowRef,
  options: StartRunOptions = {},
): Promise<EagerRun> {
  const loaded = await findFlow(rt, flow);
  const input = buildRun(rt.config, loaded, options);
  const { runId, created } = await engine.startEagerly(input);
  return { id: runId, flow: input.flow.flow, created };
}

/** One run of `startRuns`. */
export interface StartManyInput extends StartRunOptions {
  readonly flow: FlowRef;
}

/**
 * Records many queued runs in one transaction: every input is validated first, so that one
 * bad input (an unknown param, params over the limit) creates none. A dedupe key that names
 * an existing run, or an earlier input, returns that run with `created: false`.
 */
export async function startRuns(rt: Runtime, inputs: readonly StartManyInput[]): Promise<StartedRun[]> {
  const flows = new Map<FlowRef, LoadedFlow>();
  const runs: NewRun[] = [];
  for (const [i, input] of inputs.entries()) {
    let flow = flows.get(input.flow);
    if (!flow) flows.set(input.flow, (flow = await findFlow(rt, input.flow)));
    try {
      runs.push(buildRun(rt.config, flow, input));
    } catch (error) {
      if (!(error instanceof BatonError)) throw error;
      throw new BatonError(error.code, `run ${i} of ${inputs.length} (flow ${flow.spec.name}): ${error.message}`, {
        hint: error.hint,
        details: { ...error.details, index: i },
        problems: error.problems,
        cause: error,
      });
    }
  }
  return rt.store.createRuns(runs);
}

/** The run with this id (or `last`, or a unique prefix: see run-refs.ts). */
export async function getRun(rt: Runtime, runId: string): Promise<RunRecord> {
  const run = await rt.store.getRun(runId);
  if (!run) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`, { hint: 'List runs with `baton runs`.' });
  return run;
}

/** Runs, newest first, filtered by flow, state, parent run or labels (a run must have every label given). */
export async function listRuns(rt: Runtime, filter: RunFilter = {}): Promise<RunRecord[]> {
  if (filter.labels === undefined) return rt.store.listRuns(filter);
  return rt.store.listRuns({ ...filter, labels: checkLabels(filter.labels) });
}

/** A run with its task runs, as `baton show` prints it. */
export async function showRun(rt: Runtime, runId: string): Promise<{ run: RunRecord; tasks: TaskRunRecord[] }> {
  const run = await getRun(rt, runId);
  return { run, tasks: await rt.store.getTaskRuns(runId) };
}

/** The outputs of a run's task runs that succeeded, by task run id (`load`, `process[2]`). */
export async function runOutputs(rt: Runtime, runId: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const t of await rt.store.getTaskRuns(runId)) {
    // An output stored by reference is read back: callers get the value the task returned.
    if (t.state === 'succeeded') out[t.taskId] = isPayloadRef(t.output) ? await rt.payloads.load(t.output) : t.output;
  }
  return out;
}

export interface WaitOptions {
  /** Give up after this long (WAIT_TIMEOUT). Default: wait as long as the run takes. */
  readonly timeoutMs?: number;
  /** Stops waiting when aborted (the abort reason is thrown). */
  readonly signal?: AbortSignal;
}

/** Polling intervals while waiting on the store: quick at first, then at most once a second. */
const FIRST_POLL_MS = 10;
const LAST_POLL_MS = 1000;

/** Sleeps `ms`, or less if `signal` aborts (then throws its reason). */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Waits until a run ends, whoever executes it, and returns its final record. Where the store
 * announces the ends of runs (PostgreSQL: LISTEN/NOTIFY, for every process; SQLite: for
 * this process's own commits) the announcement wakes it; otherwise it reads the store with a
 * growing interval (10 ms up to 1 s). It reads the store once a second in any case, should
 * an announcement be missed (a dropped connection).
 */
export async function waitForRun(rt: Runtime, runId: string, options: WaitOptions = {}): Promise<RunRecord> {
  let woken: (() => void) | undefined;
  const stopListening = rt.store.onRunEnd?.((id) => {
    if (id === runId) woken?.();
  });
  try {
    return await pollUntilEnded(
      rt,
      runId,
      options,
      (ms, signal) =>
        new Promise<void>((resolve, reject) => {
          woken = resolve;
          pause(ms, signal).then(resolve, reject);
        }),
    );
  } finally {
    stopListening?.();
  }
}

async function pollUntilEnded(
  rt: Runtime,
  runId: string,
  options: WaitOptions,
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>,
): Promise<RunRecord> {
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  let interval = FIRST_POLL_MS;
  for (;;) {
    const run = await getRun(rt, runId);
    if (isTerminalRun(run.state)) return run;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new BatonError('RUN_WAIT_TIMEOUT', `run ${runId} is still ${run.state} after ${options.timeoutMs} ms`, {
        hint: 'Is a worker running (baton worker, or client.startWorker())? Wait longer, or look at it with `baton show`.',
        details: { runId, state: run.state },
      });
    }
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(interval * 2, LAST_POLL_MS);
  }
}

/**
 * The run's history as it is written: every event already stored, then each new one, until
 * the run has ended and its last event was yielded. Reads with a growing interval (10 ms up
 * to 1 s), restarting quick after each new event.
 */
export async function* watchRun(
  rt: Runtime,
  runId: string,
  options: { readonly afterSeq?: number; readonly signal?: AbortSignal } = {},
): AsyncGenerator<StoredEvent, void, undefined> {
  let after = options.afterSeq ?? 0;
  let interval = FIRST_POLL_MS;
  for (;;) {
    // The run first: once it is seen ended, the read after it holds all of its events.
    const run = await getRun(rt, runId);
    const events = await rt.store.readEvents(runId, after);
    for (const e of events) {
      after = e.seq;
      yield e;
    }
    if (isTerminalRun(run.state)) return;
    if (events.length > 0) interval = FIRST_POLL_MS;
    await pause(interval, options.signal);
    interval = Math.min(interval * 2, LAST_POLL_MS);
  }
}

/** The index of a task run in a run's state, or TASK_NOT_FOUND naming the tasks there are. */
async function taskIndexes(rt: Runtime, runId: string, tasks: readonly string[]): Promise<number[]> {
  const { state } = await loadRunState(rt, runId);
  return tasks.map((id) => {
    const i = taskIndexOf(state, id);
    if (i === undefined) {
      throw new BatonError('TASK_NOT_FOUND', `run ${runId} has no task "${id}"`, {
        hint: `Tasks: ${state.plan.graph.ids.slice(0, 20).join(', ')}`,
      });
    }
    return i;
  });
}

export interface CancelOptions {
  /** Cancel only this task run (its downstream tasks are then skipped or run per their trigger rules). */
  readonly task?: string;
  readonly reason?: string;
  /** How long to wait for a live owner to act on the request. Default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * Cancels a run, or one task run of it: applied at once when no live process owns the run,
 * else left as a request for the owner and waited for (bounded). A finished run is left as it
 * is. Returns the run's record afterwards.
 */
export async function cancelRun(rt: Runtime, runId: string, options: CancelOptions = {}): Promise<RunRecord> {
  const run = await getRun(rt, runId);
  if (isTerminalRun(run.state)) return run;
  const task = options.task === undefined ? undefined : (await taskIndexes(rt, runId, [options.task]))[0];
  const reason = options.reason ?? 'cancelled by user';
  const engine = rt.createEngine();
  const input: RunInput = task === undefined ? { type: 'cancel', reason } : { type: 'cancel', reason, task };
  let applied: boolean;
  try {
    applied = await engine.applyDirect(runId, input);
  } finally {
    await engine.stop();
  }
  if (!applied) {
    // A live process owns the run: leave it a request and wait for it to act.
    await rt.store.addRequest(runId, task === undefined ? 'cancel' : 'cancel_task', {
      reason,
      ...(options.task !== undefined ? { task: options.task } : {}),
    });
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (let interval = FIRST_POLL_MS; ; interval = Math.min(interval * 2, 200)) {
      if (task === undefined) {
        const current = await getRun(rt, runId);
        if (isTerminalRun(current.state)) break;
        if (Date.now() > deadline) {
          throw new BatonError(
            'RUN_OWNED',
            `run ${runId} is still ${current.state}: its owner ${current.owner ?? ''} has not acted on the request yet`,
            { hint: 'The request stays recorded; the owner applies it when it next polls. Check that process.' },
          );
        }
      } else {
        if (Date.now() > deadline) break;
        const t = (await rt.store.getTaskRuns(runId))[task];
        if (!t || t.state === 'cancelled' || t.state === 'succeeded' || t.state === 'failed') break;
      }
      await pause(interval);
    }
  }
  return getRun(rt, runId);
}

export interface RetryOptions {
  /** Rerun what did not succeed. */
  readonly fromFailed?: boolean;
  /** Rerun these task runs (and, with `downstream`, what depends on them). */
  readonly tasks?: readonly string[];
  readonly downstream?: boolean;
}

/**
 * Reopens a run: its failed tasks, or the tasks named. The run is queued again; a worker (or
 * `resumeRun`) continues it. RUN_OWNED if a live process owns it.
 */
export async function retryRun(rt: Runtime, runId: string, options: RetryOptions): Promise<RunRecord> {
  const tasks = options.tasks ?? [];
  if (!options.fromFailed && tasks.length === 0) {
    throw new BatonError('USAGE', 'a retry needs fromFailed or the ids of tasks to rerun', {
      hint: 'Rerun what did not succeed (--from-failed), or chosen tasks (--task <id> [--downstream]).',
    });
  }
  if (options.fromFailed && tasks.length > 0) {
    throw new BatonError('USAGE', 'fromFailed (--from-failed) and tasks (--task) cannot be combined');
  }
  const indexes = await taskIndexes(rt, runId, tasks);
  const input: RunInput = options.fromFailed
    ? { type: 'rerun', mode: 'failed' }
    : { type: 'rerun', mode: 'tasks', tasks: indexes, downstream: options.downstream ?? false };
  const engine = rt.createEngine();
  try {
    const applied = await engine.applyDirect(runId, input, { includeFinished: true });
    if (!applied) throw new BatonError('RUN_OWNED', `run ${runId} is owned by a live process`);
  } finally {
    await engine.stop();
  }
  return getRun(rt, runId);
}

/**
 * Drives a run in this process until it ends (a run whose owner died is taken over) and
 * returns its final state; RUN_OWNED if a live process executes it.
 */
export async function resumeRun(
  rt: Runtime,
  runId: string,
  engine: Parameters<Runtime['createEngine']>[0] = {},
): Promise<RunStateName> {
  const run = await getRun(rt, runId);
  if (isTerminalRun(run.state)) return run.state;
  const e = rt.createEngine(engine);
  try {
    return await e.execute(runId);
  } finally {
    await e.stop();
  }
}

/**
 * Deletes finished runs that ended more than `olderThanMs` ago by the database clock, with
 * their history and logs; returns the cut-off and how many runs went.
 */
export async function pruneRuns(
  rt: Runtime,
  olderThanMs: number,
): Promise<{
  before: number;
  runs: number;
  payloads: number;
  cached: number;
  assetVersions: number;
  resultCache: number;
}> {
  const before = (await rt.store.now()) - olderThanMs;
  const result = await rt.store.prune(before);
  // Outputs stored by reference go with their runs: every run folder whose run is gone.
  const payloads = await prunePayloads(
    rt.data.namespace,
    rt.config.data.payloads,
    async (runId) => (await rt.store.getRun(runId)) !== null,
  );
  // Cached copies of remote objects that no read used since the cut-off (pinned ones stay).
  const cached = await (await rt.data.cache()).evictUnusedSince(Date.now() - olderThanMs);
  // Asset versions recorded before the cut-off, but never an asset's latest.
  const assetVersions = await rt.store.pruneAssetVersions(before);
  // Result cache entries recorded before the cut-off: their tasks compute afresh next time.
  const resultCache = await rt.store.pruneResultCache(before);
  return { before, runs: result.runs, payloads, cached, assetVersions, resultCache };
}

/** A run's history after `afterSeq` (all of it by default), in order. */
export async function readRunEvents(rt: Runtime, runId: string, afterSeq = 0): Promise<StoredEvent[]> {
  return rt.store.readEvents(runId, afterSeq);
}

/**
 * A run's log lines after `afterSeq`, in order: of one task and one attempt when given
 * (the attempt is filtered after reading, so that a page may hold fewer than `limit`).
 */
export async function readRunLogs(
  rt: Runtime,
  runId: string,
  options: { task?: string | undefined; attempt?: number | undefined; afterSeq?: number; limit?: number },
): Promise<StoredLogLine[]> {
  const lines = await rt.store.readLogs(runId, {
    ...(options.task !== undefined ? { task: options.task } : {}),
    ...(options.afterSeq !== undefined ? { afterSeq: options.afterSeq } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
  });
  return options.attempt === undefined ? lines : lines.filter((l) => l.attempt === options.attempt);
}

/** How long `resumeRunInBackground` waits for a refusal (RUN_OWNED) before answering. */
const RESUME_SETTLE_MS = 100;

/**
 * Starts driving a run in this process, as `resumeRun` does, without waiting for it to end:
 * for a long-lived process (the server) that answers at once. Refusals that come at once
 * (RUN_OWNED: a live process executes it) are thrown; the run's record is returned.
 */
export async function resumeRunInBackground(rt: Runtime, runId: string): Promise<RunRecord> {
  const run = await getRun(rt, runId);
  if (isTerminalRun(run.state)) return run;
  const engine = rt.createEngine();
  const driving = engine.execute(runId).finally(() => engine.stop());
  const settled = await Promise.race([
    driving.then(
      () => null,
      (error: unknown) => error,
    ),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), RESUME_SETTLE_MS)),
  ]);
  if (settled !== 'pending' && settled !== null) throw settled;
  // A failure after the answer ends in the run's own state; nothing is left to report it to.
  driving.catch(() => {});
  return getRun(rt, runId);
}

/** A run's task runs as stored (map instances included). */
export async function readTaskRuns(rt: Runtime, runId: string): Promise<TaskRunRecord[]> {
  return rt.store.getTaskRuns(runId);
}
