/**
 * The public client over HTTP: the methods of `BatonClient` that make sense away from the
 * store, each one request to a Baton server's `/api/v1`, answering with the same types and
 * throwing the same error codes. Waiting for a run reads the server's live event stream,
 * and polls only when the stream cannot be had. Registering flows and executing runs stay
 * with the server's project and workers.
 */
import { BatonError } from '../core/errors.js';
import { isTerminalRun } from '../core/states.js';
import type { RunStateName } from '../core/states.js';
import type * as Api from '../server/schemas.js';
import { HttpApi } from './http.js';
import type { StreamEvent } from './http.js';
import { RunHandle, runFailedError } from './run-handle.js';
import type { HandleHost } from './run-handle.js';
import {
  assetDetailFromApi,
  assetFromApi,
  eventFromApi,
  runAssetFromApi,
  runFromApi,
  taskFromApi,
} from './remote-shapes.js';
import type {
  AssetDetail,
  AssetInfo,
  BatonApi,
  CancelOptions,
  DecisionOptions,
  DecisionOutcome,
  FlowInput,
  ListOptions,
  RetryOptions,
  RunAssetInfo,
  RunEventRecord,
  RunInfo,
  RunOutputs,
  SignalOptions,
  SignalOutcome,
  StartManyInput,
  StartOptions,
  TaskRunInfo,
  WaitOptions,
} from './types.js';

/** The largest page the API gives of runs and assets. */
const PAGE = 500;
/** Default counts, as the local client's. */
const RUNS_DEFAULT_LIMIT = 1000;
const ASSETS_DEFAULT_LIMIT = 1000;
const RUN_ASSETS_DEFAULT_LIMIT = 100;
/** Polling intervals when the event stream cannot be had: quick at first, then once a second. */
const FIRST_POLL_MS = 10;
const LAST_POLL_MS = 1000;

const isEnded = (state: string): boolean => isTerminalRun(state as RunStateName);
const path = (...parts: string[]): string => parts.map((p) => `/${encodeURIComponent(p)}`).join('');

/** Sleeps `ms`, or less if `signal` aborts (then throws its reason). */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
    };
    const aborted = () => {
      done();
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

function inProcessOnly(what: string, hint: string): BatonError {
  return new BatonError('USAGE', `${what} is not available over HTTP`, { hint });
}

function flowName(flow: FlowInput): string {
  if (typeof flow === 'string') return flow;
  throw new BatonError('USAGE', `flow ${flow.name} is defined in code, and a server cannot run code it has not got`, {
    hint: "Register the flow with the server's project (a flow file under flows/, or `flows` of the process that serves it), then start it by name.",
  });
}

/** Opens a client on a Baton server: checks that it answers (SERVER_UNREACHABLE otherwise). */
export async function createRemoteClient(
  url: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<BatonRemoteClient> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BatonError('USAGE', `url "${url}" is not a URL`, {
      hint: "Give the server's address: http://127.0.0.1:8420.",
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new BatonError('USAGE', `url "${url}" is not an http:// or https:// URL`, {
      hint: "Give the server's address: http://127.0.0.1:8420.",
    });
  }
  const http = new HttpApi(parsed.toString(), headers);
  const health = await http.call<Api.Health>('GET', '/health');
  return new BatonRemoteClient(http, health.store);
}

/**
 * A connection to a Baton server (`baton server`, `baton dev`): starts the flows of its
 * project and waits for their runs, sends signals and decisions, reads assets. The
 * server's workers execute the runs. Close it when done.
 */
export class BatonRemoteClient implements BatonApi {
  private closed = false;
  private readonly host: HandleHost;
  /** Aborted by `close`: ends the waits and streams still open. */
  private readonly closing = new AbortController();

  constructor(
    private readonly http: HttpApi,
    /** Which store the server uses: `sqlite` or `postgres`. */
    readonly dialect: 'sqlite' | 'postgres',
  ) {
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

  /** The server's address. */
  get url(): string {
    return this.http.url;
  }

  /** Flows are the server project's: USAGE, with what to do instead. */
  register(flow: FlowInput): never {
    throw inProcessOnly(
      `register(${typeof flow === 'string' ? flow : flow.name})`,
      "Add the flow to the server's project (a flow file under flows/), or register it in the process that serves the API.",
    );
  }

  /** Runs are executed by the server's workers: USAGE, with what to do instead. */
  startWorker(): never {
    throw inProcessOnly(
      'startWorker()',
      'Run workers beside the server (`baton worker`, `baton dev`), or open a client on the store with openClient({ database }) to execute runs in this process.',
    );
  }

  /**
   * Creates a run of a flow of the server's project, by name, and returns a handle on it.
   * A flow defined in code is refused (USAGE): the server runs only the flows it has.
   */
  async start<O = RunOutputs>(
    flow: FlowInput,
    params: Readonly<Record<string, unknown>> = {},
    options: StartOptions<O> = {},
  ): Promise<RunHandle<O>> {
    this.open();
    const started = await this.http.call<Api.StartRunResult>('POST', `/flows${path(flowName(flow))}/runs`, {
      params,
      ...(options.dedupeKey !== undefined ? { dedupe_key: options.dedupeKey } : {}),
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
    } satisfies Api.StartRunBody);
    const output = typeof options.output === 'string' ? options.output : options.output?.id;
    return new RunHandle<O>(this.host, started.id, started.run.flow, started.created, output);
  }

  /**
   * Creates many queued runs of one flow in one transaction (all or none) and returns a
   * handle on each, in order. Runs of several flows are refused (USAGE): the API creates
   * the runs of one flow at a time.
   */
  async startMany(inputs: readonly StartManyInput[]): Promise<RunHandle[]> {
    this.open();
    const flows = new Set(inputs.map((i) => flowName(i.flow)));
    const [flow] = flows;
    if (flow === undefined) return [];
    if (flows.size > 1) {
      throw new BatonError('USAGE', `startMany over HTTP takes runs of one flow, not of ${flows.size}`, {
        hint: 'Call startMany once per flow.',
      });
    }
    const started = await this.http.call<{ items: { id: string; created: boolean }[] }>(
      'POST',
      `/flows${path(flow)}/runs:batch`,
      {
        runs: inputs.map((i) => ({
          params: i.params ?? {},
          ...(i.dedupeKey !== undefined ? { dedupe_key: i.dedupeKey } : {}),
          ...(i.labels !== undefined ? { labels: i.labels } : {}),
        })),
      },
    );
    return started.items.map((s) => new RunHandle(this.host, s.id, flow, s.created));
  }

  /** A handle on an existing run (RUN_NOT_FOUND if there is none). */
  async handle(runId: string): Promise<RunHandle> {
    const run = await this.status(runId);
    return new RunHandle(this.host, run.id, run.flow, false);
  }

  /** The run as it is now. */
  async status(runId: string): Promise<RunInfo> {
    return runFromApi(await this.runDetail(runId));
  }

  private runDetail(runId: string, signal?: AbortSignal): Promise<Api.RunDetail> {
    this.open();
    return this.http.call<Api.RunDetail>('GET', `/runs${path(runId)}`, undefined, signal);
  }

  /** Waits until the run ends and returns its result: see `RunHandle.result`. */
  async result(runId: string, options: WaitOptions = {}): Promise<RunOutputs> {
    return (await this.handle(runId)).result(options);
  }

  /** Waits until the run ends: its task outputs by id, or RUN_FAILED. */
  private async outputs(runId: string, options: WaitOptions): Promise<RunOutputs> {
    const run = await this.waitForEnd(runId, options);
    const tasks = run.tasks.map(taskFromApi);
    if (run.state !== 'succeeded') throw runFailedError(runFromApi(run), tasks);
    return Object.fromEntries(tasks.filter((t) => t.state === 'succeeded').map((t) => [t.id, t.output]));
  }

  /**
   * The run once it has ended: told by the live event stream, read again after. When the
   * stream cannot be opened (a proxy that refuses it, a server without it) or breaks, the
   * run is polled instead (10 ms, doubling to 1 s).
   */
  private async waitForEnd(runId: string, options: WaitOptions): Promise<Api.RunDetail> {
    this.open();
    const timedOut = new AbortController();
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => timedOut.abort(new Error('timed out')), options.timeoutMs);
    const signal = AbortSignal.any([timedOut.signal, this.closing.signal, ...(options.signal ? [options.signal] : [])]);
    try {
      return (await this.streamUntilEnded(runId, signal)) ?? (await this.pollUntilEnded(runId, signal));
    } catch (error) {
      if (!timedOut.signal.aborted) throw error;
      const run = await this.runDetail(runId);
      if (isEnded(run.state)) return run;
      throw new BatonError('RUN_WAIT_TIMEOUT', `run ${runId} is still ${run.state} after ${options.timeoutMs} ms`, {
        hint: 'Is a worker running (baton worker, or client.startWorker())? Wait longer, or look at it with `baton show`.',
        details: { runId, state: run.state },
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The run once the stream told that it ended; null when the stream failed first. */
  private async streamUntilEnded(runId: string, signal: AbortSignal): Promise<Api.RunDetail | null> {
    const done = new AbortController();
    let events: AsyncGenerator<StreamEvent, void, undefined>;
    try {
      events = await this.http.stream(
        `/events?run=${encodeURIComponent(runId)}`,
        AbortSignal.any([signal, done.signal]),
      );
    } catch (error) {
      if (signal.aborted) throw error;
      return null;
    }
    try {
      // The run is read once the stream is open, so that an end between the two is not missed.
      const run = await this.runDetail(runId, signal);
      if (isEnded(run.state)) return run;
      if (!(await this.endTold(events, signal))) return null;
      return await this.runDetail(runId, signal);
    } finally {
      done.abort();
      await events.return(undefined).catch(() => undefined);
    }
  }

  /** Reads the stream until a `run` event tells an end (true), or the stream ends or breaks (false). */
  private async endTold(events: AsyncGenerator<StreamEvent, void, undefined>, signal: AbortSignal): Promise<boolean> {
    try {
      for (let next = await events.next(); !next.done; next = await events.next()) {
        if (next.value.event === 'run' && isEnded((JSON.parse(next.value.data) as Api.Run).state)) return true;
      }
      return false;
    } catch (error) {
      if (signal.aborted) throw error;
      return false;
    }
  }

  private async pollUntilEnded(runId: string, signal: AbortSignal): Promise<Api.RunDetail> {
    for (let interval = FIRST_POLL_MS; ; interval = Math.min(interval * 2, LAST_POLL_MS)) {
      const run = await this.runDetail(runId, signal);
      if (isEnded(run.state)) return run;
      await pause(interval, signal);
    }
  }

  /** Runs, newest first. */
  async list(options: ListOptions = {}): Promise<RunInfo[]> {
    this.open();
    const wanted = options.limit ?? RUNS_DEFAULT_LIMIT;
    const query = new URLSearchParams({
      ...(options.flow !== undefined ? { flow: options.flow } : {}),
      ...(options.state !== undefined ? { state: options.state } : {}),
      ...(options.labels !== undefined
        ? {
            labels: Object.entries(options.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          }
        : {}),
    });
    const runs: RunInfo[] = [];
    for (let cursor: string | null = null; runs.length < wanted;) {
      query.set('limit', String(Math.min(PAGE, wanted - runs.length)));
      if (cursor !== null) query.set('cursor', cursor);
      const page: Api.Page<Api.Run> = await this.http.call('GET', `/runs?${query}`);
      runs.push(...page.items.map(runFromApi));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    return runs;
  }

  /** The task runs of a run. */
  async tasks(runId: string): Promise<TaskRunInfo[]> {
    this.open();
    const page = await this.http.call<Api.Page<Api.TaskRun>>('GET', `/runs${path(runId)}/tasks`);
    return page.items.map(taskFromApi);
  }

  /**
   * The run's events as they are stored: first those already there, then each new one (read
   * with a growing interval, 10 ms up to 1 s), ending once the run has ended.
   */
  async *watch(
    runId: string,
    options: { afterSeq?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<RunEventRecord, void, undefined> {
    this.open();
    let after = options.afterSeq ?? 0;
    let interval = FIRST_POLL_MS;
    for (;;) {
      // The run first: once it is seen ended, the reads after it hold all of its events.
      const run = await this.runDetail(runId, options.signal);
      let fresh = false;
      for (let more = true; more;) {
        const page: Api.Page<Api.HistoryEvent> = await this.http.call(
          'GET',
          `/runs${path(runId)}/events?after=${after}&limit=${PAGE}`,
          undefined,
          options.signal,
        );
        for (const e of page.items) {
          after = e.seq;
          fresh = true;
          yield eventFromApi(run.id, e);
        }
        more = page.next_cursor !== null;
      }
      if (isEnded(run.state)) return;
      if (fresh) interval = FIRST_POLL_MS;
      await pause(interval, options.signal);
      interval = Math.min(interval * 2, LAST_POLL_MS);
    }
  }

  /** Cancels a run, or one task run of it; returns the run after. */
  async cancel(runId: string, options: CancelOptions = {}): Promise<RunInfo> {
    this.open();
    const run = await this.http.call<Api.Run>('POST', `/runs${path(runId)}/cancel`, {
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
      ...(options.task !== undefined ? { task: options.task } : {}),
    });
    return runFromApi(run);
  }

  /**
   * Reopens a finished run: what did not succeed (`fromFailed`), or one task and the tasks
   * downstream of it (`{ tasks: [task], downstream: true }`); other choices are USAGE.
   */
  async retry(runId: string, options: RetryOptions): Promise<RunInfo> {
    this.open();
    const tasks = options.tasks ?? [];
    let body: { failed: true } | { from: string };
    if (tasks.length === 0 && options.fromFailed) body = { failed: true };
    else if (tasks.length === 1 && options.downstream && !options.fromFailed) body = { from: tasks[0] as string };
    else {
      throw new BatonError(
        'USAGE',
        'over HTTP, a retry reruns what did not succeed, or one task and what depends on it',
        {
          hint: 'Pass { fromFailed: true }, or { tasks: [task], downstream: true }.',
        },
      );
    }
    return runFromApi(await this.http.call<Api.Run>('POST', `/runs${path(runId)}/retry`, body));
  }

  /** Sends an event to a run: see `BatonClient.signal`. */
  async signal(runId: string, event: string, options: SignalOptions = {}): Promise<SignalOutcome> {
    this.open();
    const { delivered } = await this.http.call<{ delivered: SignalOutcome }>('POST', `/runs${path(runId)}/signal`, {
      event,
      ...(options.data !== undefined ? { payload: options.data } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.by !== undefined ? { by: options.by } : {}),
      ...(options.id !== undefined ? { id: options.id } : {}),
    });
    return { id: delivered.id, woke: delivered.woke, kept: delivered.kept, duplicate: delivered.duplicate };
  }

  /** Approves an approval task that waits; `by` is required over HTTP. */
  approve(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.decide(runId, task, 'approve', options);
  }

  /** Rejects an approval task that waits (it fails with APPROVAL_REJECTED). */
  reject(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.decide(runId, task, 'reject', options);
  }

  private async decide(
    runId: string,
    task: string,
    action: 'approve' | 'reject',
    options: DecisionOptions,
  ): Promise<DecisionOutcome> {
    this.open();
    const r = await this.http.call<{ task: string; task_state: string; run_state: string }>(
      'POST',
      `/runs${path(runId)}/${action}`,
      { task, by: options.by, ...(options.comment !== undefined ? { comment: options.comment } : {}) },
    );
    return {
      task: r.task,
      taskState: r.task_state as DecisionOutcome['taskState'],
      runState: r.run_state as DecisionOutcome['runState'],
    };
  }

  /** Assets tasks produced, in key order, with their latest version: see `BatonClient.assets`. */
  async assets(options: { readonly limit?: number; readonly afterKey?: string } = {}): Promise<AssetInfo[]> {
    this.open();
    const wanted = options.limit ?? ASSETS_DEFAULT_LIMIT;
    const out: AssetInfo[] = [];
    for (let cursor: string | null = null; out.length < wanted;) {
      const page: Api.Page<Api.Asset> = await this.http.call(
        'GET',
        `/assets?limit=${PAGE}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      const after = options.afterKey;
      out.push(...page.items.filter((a) => after === undefined || a.key > after).map(assetFromApi));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    return out.slice(0, wanted);
  }

  /** One asset with its versions, lineage and checks (ASSET_NOT_FOUND for a key never materialized). */
  async asset(key: string, options: { readonly limit?: number } = {}): Promise<AssetDetail> {
    this.open();
    const detail = assetDetailFromApi(await this.http.call<Api.AssetDetail>('GET', `/assets${path(key)}`));
    return options.limit === undefined ? detail : { ...detail, versions: detail.versions.slice(0, options.limit) };
  }

  /** What a run materialized, in the order recorded (at most `limit`, default 100). */
  async runAssets(runId: string, options: { readonly limit?: number } = {}): Promise<RunAssetInfo[]> {
    const run = await this.runDetail(runId);
    return run.assets.slice(0, options.limit ?? RUN_ASSETS_DEFAULT_LIMIT).map((a) => runAssetFromApi(run, a));
  }

  /** Starts a run that materializes an asset; returns a handle on it. */
  async materialize(key: string): Promise<RunHandle> {
    this.open();
    const r = await this.http.call<{ id: string; run: Api.Run }>('POST', `/assets${path(key)}/materialize`);
    return new RunHandle(this.host, r.id, r.run.flow, true);
  }

  /** Pauses a trigger (`<flow>/<trigger>`, or its name when unique). */
  async pauseTrigger(trigger: string): Promise<void> {
    this.open();
    await this.http.call('POST', `/triggers${path(trigger)}/pause`);
  }

  /** Resumes a paused trigger. */
  async resumeTrigger(trigger: string): Promise<void> {
    this.open();
    await this.http.call('POST', `/triggers${path(trigger)}/resume`);
  }

  private open(): void {
    if (this.closed)
      throw new BatonError('USAGE', 'this Baton client is closed', { hint: 'Open another with openClient().' });
  }

  /** Ends the waits still open (they reject) and closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(new BatonError('USAGE', 'this Baton client was closed while waiting'));
  }
}
