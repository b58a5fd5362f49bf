/**
 * A handle on one run: its status, its result once it ends, and what can be asked of it.
 * Handles hold nothing but the run's id and ask the client they came from, in process or
 * over HTTP; any number may exist for one run, in any process.
 */
import { BatonError } from '../core/errors.js';
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

/** What a handle asks of the client it came from (the store's, or a server's). */
export interface HandleHost {
  status(runId: string): Promise<RunInfo>;
  /** Waits until the run ends; its task outputs by id when it succeeded, RUN_FAILED otherwise. */
  outputs(runId: string, options: WaitOptions): Promise<RunOutputs>;
  cancel(runId: string, options?: CancelOptions): Promise<RunInfo>;
  retry(runId: string, options: RetryOptions): Promise<RunInfo>;
  signal(runId: string, event: string, options?: SignalOptions): Promise<SignalOutcome>;
  approve(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  reject(runId: string, task: string, options: DecisionOptions): Promise<DecisionOutcome>;
  watch(runId: string, options?: { afterSeq?: number; signal?: AbortSignal }): AsyncIterable<RunEventRecord>;
  tasks(runId: string): Promise<TaskRunInfo[]>;
}

/**
 * RUN_FAILED for a run that ended without succeeding: the run's own error says that a task
 * failed, the first failed task's says why.
 */
export function runFailedError(run: RunInfo, tasks: readonly TaskRunInfo[]): BatonError {
  const failed = tasks.find((t) => t.state === 'failed' && t.error);
  const reasons = [run.error?.message, failed ? `task ${failed.id}: ${failed.error?.message}` : undefined];
  const why = reasons.filter((r): r is string => r !== undefined && r !== '').join('; ');
  return new BatonError('RUN_FAILED', `run ${run.id} of flow ${run.flow} ${run.state}${why ? `: ${why}` : ''}`, {
    hint: `See which task failed and why with \`baton show ${run.id}\`.`,
    details: {
      runId: run.id,
      state: run.state,
      error: run.error,
      ...(failed ? { task: failed.id, taskError: failed.error } : {}),
    },
  });
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
  status(): Promise<RunInfo> {
    return this.host.status(this.id);
  }

  /**
   * Waits until the run ends. Resolves with its result when it succeeded: the output of the
   * `output` task given to `start` (undefined if that task was skipped), else every
   * succeeded task run's output by id. Rejects with RUN_FAILED (details: state, error) when
   * it failed, was cancelled or timed out; with RUN_WAIT_TIMEOUT after `timeoutMs`.
   */
  async result(options: WaitOptions = {}): Promise<O> {
    const outputs = await this.host.outputs(this.id, options);
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
