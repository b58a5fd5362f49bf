/**
 * A handle on one run: its status, its result once it ends, and what can be asked of it.
 * Handles hold nothing but the run's id; any number may exist for one run, in any process.
 */
import { BatonError } from '../core/errors.js';
import type { RunRecord } from '../store/store.js';
import { getRun, runOutputs, waitForRun } from '../app/runs.js';
import type { Runtime } from '../app/runtime.js';
import type {
  CancelOptions,
  DecisionOptions,
  DecisionOutcome,
  RetryOptions,
  RunEventRecord,
  RunInfo,
  RunOutputs,
  SignalOptions,
  SignalOutcome,
  TaskRunInfo,
  WaitOptions,
} from './types.js';

/** What a handle asks of the client it came from. */
export interface HandleHost {
  readonly runtime: Runtime;
  cancel(runId: string, options?: CancelOptions): Promise<RunInfo>;
  retry(runId: string, options: RetryOptions): Promise<RunInfo>;
  signal(runId: string, event: string, options?: SignalOptions): Promise<SignalOutcome>;
  approve(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  reject(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  watch(runId: string, options?: { afterSeq?: number; signal?: AbortSignal }): AsyncIterable<RunEventRecord>;
  tasks(runId: string): Promise<TaskRunInfo[]>;
}

export function runInfo(r: RunRecord): RunInfo {
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

/** A run that was started or looked up; `O` is what `result()` resolves with. */
export class RunHandle<O = RunOutputs> {
  constructor(
    private readonly host: HandleHost,
    /** The run's id. */
    readonly id: string,
    /** The flow's name. */
    readonly flow: string,
    /** False when a run with the same dedupe key existed already and this handle is on it. */
    readonly created: boolean,
    /** The task whose output is the result, or undefined for every task's output. */
    private readonly outputTask?: string,
  ) {}

  /** The run as it is now. */
  async status(): Promise<RunInfo> {
    return runInfo(await getRun(this.host.runtime, this.id));
  }

  /**
   * Waits until the run ends. Resolves with its result when it succeeded: the output of the
   * `output` task given to `start` (undefined if that task was skipped), else every
   * succeeded task run's output by id. Rejects with RUN_FAILED (details: state, error) when
   * it failed, was cancelled or timed out; with RUN_WAIT_TIMEOUT after `timeoutMs`.
   */
  async result(options: WaitOptions = {}): Promise<O> {
    const rt = this.host.runtime;
    const run = await waitForRun(rt, this.id, options);
    if (run.state !== 'succeeded') {
      // The run's own error says that a task failed; the task's says why.
      const failed = (await rt.store.getTaskRuns(this.id)).find((t) => t.state === 'failed' && t.error);
      const reasons = [run.error?.message, failed ? `task ${failed.taskId}: ${failed.error?.message}` : undefined];
      const why = reasons.filter((r): r is string => r !== undefined && r !== '').join('; ');
      throw new BatonError('RUN_FAILED', `run ${this.id} of flow ${run.flow} ${run.state}${why ? `: ${why}` : ''}`, {
        hint: `See which task failed and why with \`baton show ${this.id}\`.`,
        details: {
          runId: this.id,
          state: run.state,
          error: run.error,
          ...(failed ? { task: failed.taskId, taskError: failed.error } : {}),
        },
      });
    }
    const outputs = await runOutputs(rt, this.id);
    return (this.outputTask === undefined ? outputs : outputs[this.outputTask]) as O;
  }

  /** The run's task runs, in the order of the flow (map items after the tasks that made them). */
  tasks(): Promise<TaskRunInfo[]> {
    return this.host.tasks(this.id);
  }

  /** Cancels the run (its `finally` tasks still run), or one task run of it; returns the run after. */
  cancel(options: CancelOptions = {}): Promise<RunInfo> {
    return this.host.cancel(this.id, options);
  }

  /** Reopens the run: its failed tasks (`fromFailed`), or chosen ones; a worker continues it. */
  retry(options: RetryOptions): Promise<RunInfo> {
    return this.host.retry(this.id, options);
  }

  /** Sends an event to the run: it wakes the tasks waiting for it (`waitForEvent`), or is kept for them. */
  signal(event: string, options: SignalOptions = {}): Promise<SignalOutcome> {
    return this.host.signal(this.id, event, options);
  }

  /** Approves an approval task that waits. */
  approve(task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.host.approve(this.id, task, options);
  }

  /** Rejects an approval task that waits (the task fails with APPROVAL_REJECTED). */
  reject(task: string, options: DecisionOptions): Promise<DecisionOutcome> {
    return this.host.reject(this.id, task, options);
  }

  /** The run's events: those stored already, then each new one, ending after the run ends. */
  watch(options: { afterSeq?: number; signal?: AbortSignal } = {}): AsyncIterable<RunEventRecord> {
    return this.host.watch(this.id, options);
  }
}
