/**
 * The executor port: how a task kind runs one attempt. The registry is open so that later
 * kinds (http, sql, subflow, map, wait, …) plug in without touching the engine.
 */
import type { TaskSpec } from '../core/model.js';
import type { AttemptContext, TaskFunction } from '../core/task-context.js';
import type { AttemptController } from './attempt-controller.js';

export type { AttemptContext, TaskFunction, TaskLogger } from '../core/task-context.js';

/** What an executor needs beyond the context: the task, where its flow lives, a raw log sink. */
export interface AttemptRequest {
  readonly task: TaskSpec;
  readonly context: AttemptContext;
  /** Folder of the flow file; relative paths in the task resolve from here. */
  readonly flowDir: string;
  /** For kinds that run code from the flow module itself (TypeScript flows). */
  readonly resolveFunction: (taskId: string) => TaskFunction | undefined;
  readonly writeLog: (stream: 'stdout' | 'stderr' | 'log', text: string) => void;
  /** Milliseconds between SIGTERM and SIGKILL when a process is stopped. */
  readonly killGraceMs: number;
  /** What `${{ }}` templates in kind-specific settings (e.g. a shell command) may read. */
  readonly templateScope: Readonly<Record<string, unknown>>;
  /** Largest output the attempt may return, in bytes of JSON (limits.output_bytes): a kind that reads its output from a stream keeps no more than this of it. */
  readonly outputLimitBytes?: number;
  /** Longest line of a process's output the log keeps, in bytes (limits.log_line_bytes). */
  readonly logLineLimitBytes?: number;
  /**
   * The attempt's abort switch, behind `context.signal`: a kind that only needs to know of
   * an abort listens here, and the signal is never made for a body that does not read it.
   */
  readonly controller?: AttemptController;
}

export interface TaskExecutor {
  readonly kind: string;
  /** Resolves with the task output, or rejects with the failure. Must settle soon after `signal` aborts. */
  execute(request: AttemptRequest): Promise<unknown>;
}

/** Reason objects put on the AbortSignal so executors can tell timeouts from cancellation. */
export class AttemptAbort extends Error {
  constructor(
    readonly kind: 'timeout' | 'cancelled' | 'lease_lost',
    message: string,
  ) {
    super(message);
    this.name = 'AttemptAbort';
  }
}

export class ExecutorRegistry {
  private readonly byKind = new Map<string, TaskExecutor>();

  constructor(executors: Iterable<TaskExecutor> = []) {
    for (const e of executors) this.register(e);
  }

  register(executor: TaskExecutor): void {
    this.byKind.set(executor.kind, executor);
  }

  get(kind: string): TaskExecutor | undefined {
    return this.byKind.get(kind);
  }

  kinds(): string[] {
    return [...this.byKind.keys()];
  }
}
