/**
 * The engine's ports and settings: where it finds a flow's code, how it tells time, how it
 * starts child runs, and the options of an engine.
 */
import type { ResultCache } from './result-cache.js';
import type { TaskDataProvider } from '../core/task-context.js';
import type { PayloadStore } from '../core/payload-ref.js';
import type { AfterBodyStep } from './attempt-runner.js';
import type { FlowPlan, RunEvent } from '../core/run-machine.js';
import type { LogLine, Store } from '../store/store.js';
import type { ExecutorRegistry, TaskFunction } from './executor.js';

/** Where the engine gets a flow's code for a pinned version. */
export interface ResolvedFlow {
  readonly plan: FlowPlan;
  /** Folder of the flow file (relative paths resolve from here). */
  readonly flowDir: string;
  readonly resolveFunction: (taskId: string) => TaskFunction | undefined;
  /** The pinned version (set by the engine that resolved it): part of a result cache key. */
  readonly version?: string;
}

/**
 * Starts fetching a flow's `prefetch` paths into the cache, in the background, when an
 * attempt of one of its runs starts here (the runtime's; once per run and process).
 */
export type Prefetcher = (runId: string, paths: readonly string[], params: Readonly<Record<string, unknown>>) => void;

export interface FlowResolver {
  /** The pinned definition and its code; refuses code that changed since the version was pinned. */
  resolve(flow: string, version: string): Promise<ResolvedFlow>;
  /** The pinned definition alone (enough to cancel or reopen a run). */
  plan(flow: string, version: string): Promise<FlowPlan>;
}

/**
 * Named instants where a crash test may kill the process; `after_emit` is in the stream
 * trigger sources, between a run's commit and the broker acknowledgement.
 */
export type CrashPointName = 'after_claim' | 'after_body' | 'mid_commit' | 'retry_timer' | 'after_emit';

export interface EngineFaults {
  crashPoint(name: CrashPointName): void;
}

export interface EngineClock {
  now(): number;
  /**
   * Calls `fn` once `ms` have passed on this clock. The durable timers of runs (retries,
   * sleeps, waits, run timeouts) go through it, so that a virtual clock can jump over
   * them; default `setTimeout`. Attempt timeouts do not: they measure real running time.
   * `ms` is never above 2^31-1 (Node's limit): a longer delay is waited for in steps, the
   * clock read again after each (long-timer.ts).
   */
  setTimer?(fn: () => void, ms: number): TimerHandle;
  clearTimer?(handle: TimerHandle): void;
}

/** Whatever `EngineClock.setTimer` returns, handed back to `clearTimer`. */
export type TimerHandle = unknown;

/** A subflow task's request for its child run. */
export interface ChildRunRequest {
  readonly parentRunId: string;
  /** The parent's task run id (`load`, or `load[3]` in a map). */
  readonly parentTask: string;
  readonly attempt: number;
  readonly flow: string;
  /** A pinned version of the child flow, or null for its current one. */
  readonly version: string | null;
  readonly params: Readonly<Record<string, unknown>>;
}

/** Creates child runs for subflow tasks; the application layer knows the flow catalog. */
export interface ChildRunLauncher {
  /**
   * Creates the child run, or finds the one this attempt already created (one child per
   * parent attempt, by dedupe key), and returns its id.
   */
  launch(request: ChildRunRequest): Promise<string>;
}

export interface EngineOptions {
  readonly store: Store;
  readonly executors: ExecutorRegistry;
  readonly flows: FlowResolver;
  /** At most this many attempt bodies run at once in this process. Default 32. */
  readonly concurrency?: number;
  /** Pool name → slots. A task naming an unknown pool gets one slot. */
  readonly pools?: Readonly<Record<string, number>>;
  /** Lease length in ms (database clock). Default 15000; renewed every third of it. */
  readonly leaseMs?: number;
  /** How often to look for requests (cancel) and, in worker mode, claimable runs. Default 200 ms. */
  readonly pollMs?: number;
  /**
   * Worker mode: how long before its wake-up a parked run is claimed again, to wait for it
   * in memory; a run whose next wake-up is less than twice this away is not parked at all.
   * Default 3000 ms: time for one worker to claim ten thousand runs due at the same second
   * on PostgreSQL.
   */
  readonly wakeAheadMs?: number;
  /**
   * Worker mode: take runs handed to `startEagerly` at once, creating and starting each in
   * one commit, when there is room; otherwise such runs are created queued. Default false.
   */
  readonly eagerStarts?: boolean;
  /** Largest task output accepted, in bytes of JSON. Default 256 KiB. */
  readonly outputLimitBytes?: number;
  /** Largest log kept per attempt, in bytes. Default 1 MiB. */
  readonly logLimitBytes?: number;
  /** Longest line of a shell task's stdout or stderr kept in the log, in bytes. Default 64 KiB. */
  readonly logLineLimitBytes?: number;
  /** Largest message, hint, stack and details (JSON) of a recorded failure, each in bytes. Default 64 KiB. */
  readonly errorLimitBytes?: number;
  /** Time between SIGTERM and SIGKILL when stopping a shell task. Default 2000 ms. */
  readonly killGraceMs?: number;
  readonly clock?: EngineClock;
  /**
   * Follow the database clock instead of this machine's: event times and timer due times
   * are then comparable across processes whose clocks disagree. Sampled at each lease
   * renewal. Default true for the dispatch mode, false otherwise.
   */
  readonly useDatabaseClock?: boolean;
  /**
   * In worker mode, release runs whose open work only waits, as parked runs the store wakes
   * when they are due (see docs/concepts.md#parked-runs). Default true, unless `clock` is
   * given: a parked run's wake-up is compared with the database clock, which a virtual clock
   * does not move.
   */
  readonly parkWaitingRuns?: boolean;
  readonly random?: () => number;
  readonly faults?: EngineFaults;
  /** Identifies this process in leases; default `<host>/<pid>/<uuid>`. */
  readonly owner?: string;
  /** Diagnostics for operators (not task logs). */
  readonly onDiagnostic?: (message: string) => void;
  /**
   * Called after each commit with what it made durable, per run: its events and the task
   * log lines written since the previous commit (stored, truncated, timed as `baton logs`
   * shows them), so that a face can print both as they happen without reading the store.
   */
  readonly onCommitted?: (runId: string, events: readonly RunEvent[], logs: readonly LogLine[]) => void;
  /**
   * `local` (default): attempt bodies run in this process. `dispatch`: attempts go to the
   * task queue for `baton worker` processes, and their outcomes come back from it.
   */
  readonly mode?: 'local' | 'dispatch';
  /** Creates the child runs of subflow tasks; without it, a subflow task fails. */
  readonly children?: ChildRunLauncher;
  /** Makes each attempt's `ctx.data` (the runtime's data namespace); without it, `ctx.data` throws. */
  readonly data?: TaskDataProvider;
  /** Where outputs over `outputLimitBytes` are stored by reference; without it they fail the attempt. */
  readonly payloads?: PayloadStore;
  /** Largest output stored by reference (limits.payload_bytes). */
  readonly payloadLimitBytes?: number;
  /** Materializes and checks the assets a task produces, after its body succeeded (the runtime's). */
  readonly afterBody?: AfterBodyStep;
  /** Where tasks that declare `cache: inputs` find earlier outputs (the runtime's). */
  readonly resultCache?: ResultCache;
  /** Fetches a flow's `prefetch` paths into the cache as its runs start here. */
  readonly prefetch?: Prefetcher;
}
