/**
 * The `local` attempt mode: attempt bodies run in this process (attempt-runner.ts), each
 * started once the batch recording its `task_started` is committed, and aborted through
 * its controller. A body holds its slot until it has exited, even when its run ended or
 * was dropped: a cancelled shell command holds its slot until it is dead.
 */
import type { ResultCache } from './result-cache.js';
import type { LogLine } from '../store/store.js';
import type { TaskDataProvider } from '../core/task-context.js';
import type { PayloadStore } from '../core/payload-ref.js';
import { taskSpecOf } from '../core/run-topology.js';
import type { ActiveRun, RunningAttempt } from './active-run.js';
import type { AttemptHost, AttemptMode } from './attempt-mode.js';
import type { AfterBodyStep, AttemptResult } from './attempt-runner.js';
import { runAttempt } from './attempt-runner.js';
import type { EngineFaults, Prefetcher } from './engine-options.js';
import type { ExecutorRegistry } from './executor.js';
import { AttemptAbort } from './executor.js';
import { extrasOf, scopeTasksOf, upstreamOutputsOf } from './run-scope.js';

export interface InProcessSettings {
  readonly executors: ExecutorRegistry;
  readonly concurrency: number;
  /** Runs claimed per claim round trip (the engine's). */
  readonly claimBatch: number;
  readonly outputLimitBytes: number;
  readonly logLimitBytes: number;
  readonly logLineLimitBytes: number;
  readonly errorLimitBytes: number;
  readonly killGraceMs: number;
  readonly faults: EngineFaults | undefined;
  /** Makes each attempt's `ctx.data`. */
  readonly data: TaskDataProvider | undefined;
  /** Where outputs too large for the history go (see AttemptInput.payloads). */
  readonly payloads: PayloadStore | undefined;
  readonly payloadLimitBytes: number | undefined;
  /** Materializes and checks the assets of a task whose body succeeded. */
  readonly afterBody?: AfterBodyStep | undefined;
  /** Where tasks that declare `cache: inputs` find earlier outputs. */
  readonly resultCache?: ResultCache | undefined;
  /** Fetches a flow's `prefetch` paths into the cache. */
  readonly prefetch?: Prefetcher | undefined;
}

/**
 * Runs an engine holds at most, counting those claimed ahead of their wake-up (which take
 * no room of the 4 × concurrency runs it otherwise holds): the memory for timers that come
 * due together is bounded, and the rest are claimed as they come due.
 */
const HELD_MOST = 10_000;

export class InProcessAttempts implements AttemptMode {
  readonly followsDatabaseClock = false;

  constructor(
    private readonly host: AttemptHost,
    private readonly settings: InProcessSettings,
  ) {}

  /** Waiting for the next turn lets bodies that finish together share a commit. */
  deferFlush(flush: () => void): void {
    setImmediate(flush);
  }

  subscribe(): (() => void)[] {
    return [];
  }

  /**
   * Claimed runs wait in memory for slots, so an engine holds at most four times its
   * concurrency (and never fewer than a claim batch) and leaves the rest to other workers.
   */
  claimRoom(held: number, waitingAhead: number): number {
    const busy = held - waitingAhead;
    return Math.min(Math.max(this.settings.claimBatch, 4 * this.settings.concurrency) - busy, HELD_MOST - held);
  }

  prepare(): void {}

  start(run: ActiveRun, task: number, attempt: number): void {
    const running = run.running.get(task);
    if (!running || running.attempt !== attempt) return;
    running.bodyStarted = true;
    const prefetch = run.state.plan.spec.prefetch;
    if (prefetch && this.settings.prefetch) this.settings.prefetch(run.lease.runId, prefetch, run.params);
    const spec = taskSpecOf(run.state, task);
    const extras = extrasOf(run.state, task);
    const controller = running.controller;
    const settle = (result: AttemptResult) => {
      if (!run.running.has(task) || run.running.get(task) !== running) return;
      this.host.releaseSlot(run, task);
      if (controller.reason instanceof AttemptAbort && controller.reason.kind === 'lease_lost') {
        this.host.scheduleFlush();
        return;
      }
      this.host.submit(
        run,
        result.status === 'succeeded'
          ? result.cachedFrom === undefined
            ? { type: 'attempt_succeeded', task, attempt, output: result.output }
            : { type: 'attempt_succeeded', task, attempt, output: result.output, cachedFrom: result.cachedFrom }
          : { type: 'attempt_failed', task, attempt, error: result.error },
      );
      if (run.finished) this.host.scheduleFlush();
    };
    const settings = this.settings;
    void runAttempt(
      settings.executors,
      {
        runId: run.lease.runId,
        flow: run.state.plan.spec.name,
        task: spec,
        attempt,
        params: run.params,
        upstream: upstreamOutputsOf(run.state, task),
        scopeTasks: scopeTasksOf(run.state, task),
        extras,
        flowDir: run.flow.flowDir,
        resolveFunction: run.flow.resolveFunction,
        controller,
        writeLog: (stream, text) => this.writeLog(run, running, extras.taskRunId, stream, text),
        ...(settings.data ? { data: settings.data } : {}),
        ...(settings.payloads ? { payloads: settings.payloads } : {}),
        ...(settings.afterBody ? { afterBody: settings.afterBody } : {}),
        ...(settings.resultCache && run.flow.version !== undefined
          ? { resultCache: settings.resultCache, version: run.flow.version, prefetch: prefetch ?? [] }
          : {}),
      },
      // Attempt timeouts stay on the real clock, even under a virtual one: they measure how
      // long a body really runs.
      {
        outputLimitBytes: settings.outputLimitBytes,
        killGraceMs: settings.killGraceMs,
        errorLimitBytes: settings.errorLimitBytes,
        logLineLimitBytes: settings.logLineLimitBytes,
        ...(settings.payloadLimitBytes !== undefined ? { payloadLimitBytes: settings.payloadLimitBytes } : {}),
      },
      () => settings.faults?.crashPoint('after_body'),
    ).then(settle);
  }

  abort(_run: ActiveRun, running: RunningAttempt, reason: string): void {
    running.controller.abort(new AttemptAbort('cancelled', reason));
  }

  /** Bodies still running (being killed) keep their slots until they exit. */
  finished(): void {}

  /** Started bodies are aborted and keep their slots until they exit; the others free theirs now. */
  dropped(run: ActiveRun, reason: string): void {
    for (const a of [...run.running.values()]) {
      if (a.bodyStarted) a.controller.abort(new AttemptAbort('lease_lost', reason));
      else this.host.releaseSlot(run, a.task);
    }
  }

  /** The body died with the process that ran it. */
  resumeRunning(run: ActiveRun, task: number, attempt: number): void {
    this.host.submit(run, { type: 'attempt_lost', task, attempt });
  }

  activated(): void {}

  /** Outcomes arrive from the bodies themselves: nothing to collect. */
  async harvest(): Promise<void> {}

  forgetOutcome(): void {}

  private writeLog(
    run: ActiveRun,
    attempt: RunningAttempt,
    taskId: string,
    stream: LogLine['stream'],
    text: string,
  ): void {
    if (attempt.logTruncated || run.finished) return;
    attempt.logBytes += Buffer.byteLength(text) + 1;
    const at = this.host.now();
    const limit = this.settings.logLimitBytes;
    if (attempt.logBytes > limit) {
      attempt.logTruncated = true;
      text = `[log truncated at ${limit} bytes]`;
    }
    run.pending.logs.push({ runId: run.lease.runId, taskId, attempt: attempt.attempt, stream, at, text });
    this.host.scheduleFlush();
  }
}
