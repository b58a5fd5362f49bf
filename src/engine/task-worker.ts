/**
 * A worker process's loop: claim attempts from the task queue (only those whose labels it
 * has), run them with the same attempt runner as the embedded engine, and report outcomes
 * in batches. Its claims are leases on the database clock, renewed while bodies run; a
 * claim it no longer holds (it was paused past its lease and the attempt was handed on)
 * makes it abandon the body, and a late completion is refused by the claim token.
 *
 * Invariants
 * - At most `concurrency` bodies run at once.
 * - An outcome is reported at most once per claim, and only with the claim's token.
 * - Draining stops claiming, lets running bodies finish and report, then returns.
 * - A claim is renewed only while its body runs: whatever the body or the code around it
 *   does, its end takes the claim out of the renewal set.
 * - One outcome or log line the store cannot take (PostgreSQL refuses a NUL character in
 *   text and JSON) never holds back the others: while the store answers, it is reported in
 *   a form the store takes, else dropped; only an unreachable store makes the worker wait.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { TaskSpec } from '../core/model.js';
import type { TaskDataProvider } from '../core/task-context.js';
import type { PayloadStore } from '../core/payload-ref.js';
import { specAtPath } from '../core/run-topology.js';
import type { TaskRunExtras } from './run-scope.js';
import type { ClaimedTask, LogLine, Store, TaskCompletion } from '../store/store.js';
import { BatonError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { runAttempt, toTaskError } from './attempt-runner.js';
import type { AfterBodyStep, AttemptResult, TaskScope } from './attempt-runner.js';
import type { EngineClock, EngineFaults, FlowResolver, ResolvedFlow } from './engine.js';
import type { Prefetcher } from './engine-options.js';
import type { ResultCache } from './result-cache.js';
import type { ExecutorRegistry } from './executor.js';
import { AttemptAbort } from './executor.js';
import { AttemptController } from './attempt-controller.js';
import type { LongTimer } from './long-timer.js';
import { setLongInterval } from './long-timer.js';

export interface TaskWorkerOptions {
  readonly store: Store;
  readonly executors: ExecutorRegistry;
  readonly flows: FlowResolver;
  /** Bodies running at once. Default 16. */
  readonly concurrency?: number;
  /** Labels this worker has; it takes tasks whose labels are all among them. */
  readonly labels?: readonly string[];
  /** Claim lease in ms (database clock), renewed every third of it. Default 15000. */
  readonly leaseMs?: number;
  /** Polling interval when no notification arrives. Default 500 ms. */
  readonly pollMs?: number;
  readonly outputLimitBytes?: number;
  readonly logLimitBytes?: number;
  /** Longest line of a shell task's output the log keeps. Default limits.log_line_bytes. */
  readonly logLineLimitBytes?: number;
  /** Each of a reported failure's message, hint, stack and details. Default limits.error_bytes. */
  readonly errorLimitBytes?: number;
  readonly killGraceMs?: number;
  readonly owner?: string;
  /** This machine's clock; used for log timestamps only: claims are timed by the database. */
  readonly clock?: EngineClock;
  readonly faults?: EngineFaults;
  readonly onDiagnostic?: (message: string) => void;
  /** Makes each attempt's `ctx.data` (the runtime's data namespace). */
  readonly data?: TaskDataProvider;
  /** Where outputs over `outputLimitBytes` are stored by reference, and read back from. */
  readonly payloads?: PayloadStore;
  /** Largest output stored by reference (limits.payload_bytes). */
  readonly payloadLimitBytes?: number;
  /** Materializes and checks the assets a task produces, after its body succeeded. */
  readonly afterBody?: AfterBodyStep;
  /** Fetches a flow's `prefetch` paths into the cache as its runs' attempts start here. */
  readonly prefetch?: Prefetcher;
  /** Reuses earlier outputs of `cache: inputs` tasks whose inputs are unchanged. */
  readonly resultCache?: ResultCache;
}

interface Running {
  readonly claim: ClaimedTask;
  readonly controller: AttemptController;
  logBytes: number;
  logTruncated: boolean;
}

export class TaskWorker {
  readonly owner: string;
  private readonly o: Required<
    Omit<
      TaskWorkerOptions,
      | 'faults'
      | 'onDiagnostic'
      | 'owner'
      | 'clock'
      | 'data'
      | 'payloads'
      | 'payloadLimitBytes'
      | 'afterBody'
      | 'resultCache'
      | 'prefetch'
    >
  >;
  private readonly running = new Map<string, Running>();
  private readonly flowCache = new Map<string, Promise<ResolvedFlow>>();
  private completions: TaskCompletion[] = [];
  private logs: LogLine[] = [];
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private claiming = false;
  private claimAgain = false;
  /** The last claim filled every free slot: more attempts may be waiting. */
  private backlog = false;
  private draining = false;
  private stopped = false;
  private heartbeat: LongTimer | undefined;
  private poller: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private idle: (() => void)[] = [];
  /** Completions refused by fencing, for operators and tests. */
  refusedCount = 0;
  completedCount = 0;

  constructor(private readonly options: TaskWorkerOptions) {
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    this.o = {
      store: options.store,
      executors: options.executors,
      flows: options.flows,
      concurrency: options.concurrency ?? 16,
      labels: options.labels ?? [],
      leaseMs: options.leaseMs ?? 15_000,
      pollMs: options.pollMs ?? 500,
      outputLimitBytes: options.outputLimitBytes ?? 256 * 1024,
      logLimitBytes: options.logLimitBytes ?? 1024 * 1024,
      logLineLimitBytes: options.logLineLimitBytes ?? LIMITS.log_line_bytes.default,
      errorLimitBytes: options.errorLimitBytes ?? LIMITS.error_bytes.default,
      killGraceMs: options.killGraceMs ?? 2000,
    };
  }

  private diagnostic(message: string): void {
    this.options.onDiagnostic?.(message);
  }

  start(): void {
    // The lease is a setting of up to 366 days: a third of it may exceed what setInterval holds.
    this.heartbeat = setLongInterval(() => void this.renew(), Math.max(50, Math.floor(this.o.leaseMs / 3)));
    this.poller = setInterval(() => void this.claim(), this.o.pollMs);
    this.unsubscribe = this.o.store.subscribe?.('tasks', () => void this.claim());
    void this.claim();
  }

  /** Stops claiming, waits for running bodies to finish and their outcomes to be stored. */
  async drain(): Promise<void> {
    this.draining = true;
    while (this.running.size > 0 || this.completions.length > 0 || this.flushing) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    await this.stop();
  }

  /** Stops at once: running bodies are aborted; their claims lapse and are retried elsewhere. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.heartbeat?.cancel();
    if (this.poller) clearInterval(this.poller);
    this.unsubscribe?.();
    for (const r of this.running.values()) r.controller.abort(new AttemptAbort('lease_lost', 'worker stopped'));
    await this.flushing;
  }

  private wakeIdle(): void {
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }

  private async claim(): Promise<void> {
    if (this.stopped || this.draining) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        const free = this.o.concurrency - this.running.size;
        if (free <= 0) break;
        const claimed = await this.o.store.claimTasks({
          worker: this.owner,
          labels: this.o.labels,
          limit: free,
          leaseMs: this.o.leaseMs,
        });
        for (const c of claimed) this.begin(c);
        // A full batch suggests more is waiting; otherwise the next notification wakes us.
        this.backlog = claimed.length === free;
      } while (this.claimAgain && !this.stopped && !this.draining);
    } catch (error) {
      this.diagnostic(`claim failed: ${(error as Error).message}`);
    } finally {
      this.claiming = false;
    }
  }

  private flowOf(claim: ClaimedTask): Promise<ResolvedFlow> {
    const key = `${claim.flow}\u0000${claim.version}`;
    let loading = this.flowCache.get(key);
    if (!loading) {
      loading = this.o.flows.resolve(claim.flow, claim.version);
      this.flowCache.set(key, loading);
      loading.catch(() => this.flowCache.delete(key));
    }
    return loading;
  }

  private begin(claim: ClaimedTask): void {
    const running: Running = { claim, controller: new AttemptController(), logBytes: 0, logTruncated: false };
    // The same row claimed again carries a newer token: the older claim is no longer ours.
    this.running
      .get(claim.id)
      ?.controller.abort(new AttemptAbort('lease_lost', 'the attempt was claimed again under a newer token'));
    this.running.set(claim.id, running);
    // `execute` settles in every case: should anything around the body throw, the attempt
    // fails, rather than its claim staying renewed with no body behind it.
    void this.execute(running)
      .catch((error: unknown): AttemptResult => ({
        status: 'failed',
        error: toTaskError(error, this.o.errorLimitBytes),
      }))
      .then((result) => this.finish(running, result));
  }

  private async execute(r: Running): Promise<AttemptResult> {
    const { claim, controller } = r;
    let flow: ResolvedFlow;
    try {
      flow = await this.flowOf(claim);
    } catch (error) {
      // Loading runs the flow's own code, which may throw anything, of any size; an error
      // without a code of its own is a failure to load the flow.
      const failure = toTaskError(error, this.o.errorLimitBytes);
      const coded = typeof (error as { code?: unknown } | null)?.code === 'string';
      return { status: 'failed', error: coded ? failure : { ...failure, code: 'DEF_LOAD' } };
    }
    const payload = claim.payload as {
      params?: Record<string, unknown>;
      inputs?: Record<string, unknown>;
      upstream?: Record<string, unknown>;
      tasks?: Record<string, TaskScope>;
      extras?: TaskRunExtras;
      specPath?: number[];
    };
    const prefetch = flow.plan.spec.prefetch;
    if (prefetch && this.options.prefetch) this.options.prefetch(claim.runId, prefetch, payload.params ?? {});
    // Map instances are found by their path in the plan; flow tasks by id.
    const index = flow.plan.graph.indexOf.get(claim.taskId);
    const task: TaskSpec | undefined = payload.specPath
      ? specAtPath(flow.plan, payload.specPath)
      : index === undefined
        ? undefined
        : flow.plan.spec.tasks[index];
    if (!task) {
      return {
        status: 'failed',
        error: { code: 'TASK_NOT_FOUND', message: `flow ${claim.flow} has no task ${claim.taskId}`, source: 'baton' },
      };
    }
    return runAttempt(
      this.o.executors,
      {
        runId: claim.runId,
        flow: claim.flow,
        task,
        attempt: claim.attempt,
        params: payload.params ?? {},
        upstream: payload.upstream ?? {},
        // Absent when an upstream output is stored by reference: rendered here, once it is read back.
        ...(payload.inputs ? { inputs: payload.inputs } : {}),
        ...(payload.tasks ? { scopeTasks: payload.tasks } : {}),
        ...(payload.extras ? { extras: payload.extras } : {}),
        flowDir: flow.flowDir,
        resolveFunction: flow.resolveFunction,
        controller,
        writeLog: (stream, text) => this.writeLog(r, stream, text),
        ...(this.options.data ? { data: this.options.data } : {}),
        ...(this.options.payloads ? { payloads: this.options.payloads } : {}),
        ...(this.options.afterBody ? { afterBody: this.options.afterBody } : {}),
        // The claim carries the run's pinned version: the one its key is made with.
        ...(this.options.resultCache
          ? { resultCache: this.options.resultCache, version: flow.version ?? claim.version, prefetch: prefetch ?? [] }
          : {}),
      },
      {
        outputLimitBytes: this.o.outputLimitBytes,
        killGraceMs: this.o.killGraceMs,
        errorLimitBytes: this.o.errorLimitBytes,
        logLineLimitBytes: this.o.logLineLimitBytes,
        ...(this.options.payloadLimitBytes !== undefined ? { payloadLimitBytes: this.options.payloadLimitBytes } : {}),
      },
      () => this.options.faults?.crashPoint('after_body'),
    );
  }

  private finish(r: Running, result: AttemptResult): void {
    if (this.running.get(r.claim.id) === r) this.running.delete(r.claim.id);
    const reason = r.controller.reason;
    if (reason instanceof AttemptAbort && reason.kind === 'lease_lost') {
      // The claim is gone: whatever the body did, its outcome is not ours to report.
      this.wakeIdle();
      if (this.backlog) void this.claim();
      return;
    }
    this.completions.push(
      result.status === 'succeeded'
        ? {
            id: r.claim.id,
            token: r.claim.token,
            status: 'succeeded',
            output: result.output,
            ...(result.cachedFrom !== undefined ? { cachedFrom: result.cachedFrom } : {}),
          }
        : { id: r.claim.id, token: r.claim.token, status: 'failed', error: result.error },
    );
    this.scheduleFlush();
    if (this.backlog) void this.claim();
  }

  private writeLog(r: Running, stream: LogLine['stream'], text: string): void {
    if (r.logTruncated) return;
    r.logBytes += Buffer.byteLength(text) + 1;
    if (r.logBytes > this.o.logLimitBytes) {
      r.logTruncated = true;
      text = `[log truncated at ${this.o.logLimitBytes} bytes]`;
    }
    this.logs.push({
      runId: r.claim.runId,
      taskId: r.claim.taskId,
      attempt: r.claim.attempt,
      stream,
      at: Date.now(),
      text,
    });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.flushing) {
        void this.flushing.then(() => this.scheduleFlush());
        return;
      }
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        if (this.completions.length > 0 || this.logs.length > 0) this.scheduleFlush();
        this.wakeIdle();
      });
    });
  }

  /**
   * Stores logs, then outcomes, in batches; retries on a store outage without losing either.
   * A batch the store refuses while it answers holds something it cannot take: it is then
   * stored item by item, each refused item replaced by one the store takes (see `refusedLog`
   * and `refusedOutcome`), so that one attempt's output never blocks every other outcome.
   */
  private async flush(): Promise<void> {
    const logs = this.logs;
    const completions = this.completions;
    this.logs = [];
    this.completions = [];
    try {
      if (logs.length > 0) await this.storeEach(logs, (batch) => this.o.store.appendLogs(batch), refusedLog);
    } catch (error) {
      this.logs = [...logs, ...this.logs];
      this.completions = [...completions, ...this.completions];
      this.diagnostic(`storing logs failed, will retry: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
      return;
    }
    if (completions.length === 0) return;
    let refused = 0;
    try {
      await this.storeEach(
        completions,
        async (batch) => {
          const result = await this.o.store.completeTasks(batch);
          refused += result.refused.length;
          this.completedCount += batch.length - result.refused.length;
        },
        (c, error) => refusedOutcome(c, error, this.o.errorLimitBytes),
      );
    } catch (error) {
      this.completions = [...completions, ...this.completions];
      this.diagnostic(`reporting outcomes failed, will retry: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      if (refused > 0) {
        this.refusedCount += refused;
        this.diagnostic(`${refused} completion(s) refused: their claims had lapsed and the attempts were handed on`);
      }
    }
  }

  /**
   * Writes `items` with `write`. If the store refuses the batch but still answers, writes
   * them one at a time, each refused one replaced by `substitute(item)` (dropped if that is
   * refused too). Throws only when the store does not answer: then nothing is lost, and
   * items already written are written again at most (completions are fenced by token, a
   * log line may repeat).
   */
  private async storeEach<T>(
    items: readonly T[],
    write: (batch: readonly T[]) => Promise<void>,
    substitute: (item: T, error: Error) => T,
  ): Promise<void> {
    try {
      await write(items);
      return;
    } catch (error) {
      if (!(await this.storeAnswers())) throw error;
    }
    for (const item of items) {
      // Twice before giving up on an item: a single write may also fail for a passing reason
      // (a deadlock, a statement timeout) while the store answers.
      let refusal: Error | undefined;
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await write([item]);
          refusal = undefined;
          break;
        } catch (error) {
          if (!(await this.storeAnswers())) throw error;
          refusal = error as Error;
        }
      }
      if (!refusal) continue;
      this.diagnostic(`the store refused one item, storing a substitute: ${refusal.message}`);
      try {
        await write([substitute(item, refusal)]);
      } catch (again) {
        if (!(await this.storeAnswers())) throw again;
        this.diagnostic(`the store refused the substitute too, dropping it: ${(again as Error).message}`);
      }
    }
  }

  /** True if the store answers a trivial query: a failure beside it was the data's, not the store's. */
  private async storeAnswers(): Promise<boolean> {
    try {
      await this.o.store.now();
      return true;
    } catch {
      return false;
    }
  }

  private async renew(): Promise<void> {
    if (this.running.size === 0 || this.stopped) return;
    const claims = [...this.running.values()].map((r) => ({ id: r.claim.id, token: r.claim.token }));
    try {
      const { lost, cancelled } = await this.o.store.renewTasks(this.owner, claims, this.o.leaseMs);
      for (const id of lost) {
        this.running.get(id)?.controller.abort(new AttemptAbort('lease_lost', 'the claim lapsed and was handed on'));
      }
      for (const id of cancelled) this.running.get(id)?.controller.abort(new AttemptAbort('cancelled', 'cancelled'));
    } catch (error) {
      this.diagnostic(`renewing claims failed: ${(error as Error).message}`);
    }
  }
}

/** A log line the store refused (PostgreSQL takes no NUL character), as a line it takes. */
function refusedLog(line: LogLine, error: Error): LogLine {
  return { ...line, text: `[a log line the store refused: ${oneLine(error.message)}]` };
}

/**
 * An outcome the store refused (an output or error it cannot hold, such as a NUL character
 * on PostgreSQL), as a failure it takes: the attempt fails and says why, instead of its
 * claim lapsing and the attempt running again, forever, to the same refusal.
 */
function refusedOutcome(c: TaskCompletion, error: Error, limitBytes: number): TaskCompletion {
  const what = c.status === 'succeeded' ? 'output' : `failure (${c.error?.code ?? 'TASK_FAILED'})`;
  return {
    id: c.id,
    token: c.token,
    status: 'failed',
    error: toTaskError(
      new BatonError('TASK_OUTPUT_INVALID', `the store refused the attempt's ${what}: ${oneLine(error.message)}`, {
        hint: 'Outputs, errors and log lines must not contain NUL characters (\\u0000) on PostgreSQL.',
      }),
      limitBytes,
    ),
  };
}

function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/\u0000/g, '')
    .slice(0, 500);
}
