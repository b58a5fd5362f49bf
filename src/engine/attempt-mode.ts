/**
 * Where the attempt bodies of a run execute, and what follows from that. The engine
 * decides and commits the same way in both modes; an attempt mode decides only what the
 * engine does around an attempt of a task the engine does not carry out itself:
 *
 * - in-process-attempts.ts (`local`): the body runs in this process once its
 *   `task_started` is committed; it is aborted through its controller.
 * - queued-attempts.ts (`dispatch`): the commit that records `task_started` also puts the
 *   attempt on the store's task queue; a worker process runs it, and its outcome is
 *   harvested from the queue. A cancel is a flag on the queue row.
 *
 * An attempt mode never commits and never decides: it queues inputs for the run machine
 * and records in a run's pending batch what the next commit writes, through AttemptHost.
 */
import type { RunInput } from '../core/run-machine.js';
import type { ActiveRun, RunningAttempt } from './active-run.js';

/** What an attempt mode may ask of its engine. */
export interface AttemptHost {
  /** The run this engine holds under that id (possibly finished, not yet forgotten). */
  run(runId: string): ActiveRun | undefined;
  /** Ids of the runs this engine holds. */
  runIds(): string[];
  /** True once the engine stopped: it takes no input any more. */
  stopped(): boolean;
  /** The engine's clock. */
  now(): number;
  /** Queues an input for a run's machine; `outcomeId` names the queue row it came from. */
  submit(run: ActiveRun, input: RunInput, outcomeId?: string): void;
  /** Asks for a flush (a commit of every pending batch) soon. */
  scheduleFlush(): void;
  /** Counts an attempt already in flight (found on takeover) against the slots. */
  occupySlot(run: ActiveRun, task: number, attempt: number): void;
  /** Frees the slot an attempt held and forgets the attempt. */
  releaseSlot(run: ActiveRun, task: number): void;
  diagnostic(message: string): void;
}

export interface AttemptMode {
  /** Whether the engine follows the database clock when its options do not say. */
  readonly followsDatabaseClock: boolean;
  /** Puts off a flush: inputs arriving before it runs share its commit. */
  deferFlush(flush: () => void): void;
  /** Subscribes to the store's wake-ups this mode needs; returns how to unsubscribe. */
  subscribe(): (() => void)[];
  /**
   * How many more runs a working engine claims, given the runs it holds and, among them,
   * those claimed ahead of their wake-up.
   */
  claimRoom(held: number, waitingAhead: number): number;
  /** An attempt was given a slot: its `task_started` is in the run's pending batch, not yet committed. */
  prepare(run: ActiveRun, task: number, attempt: number): void;
  /** The `task_started` of an attempt is committed: start it. */
  start(run: ActiveRun, task: number, attempt: number): void;
  /** The run machine asked to stop a running attempt (committed): cancel it. */
  abort(run: ActiveRun, running: RunningAttempt, reason: string): void;
  /** The commit that ended a run is done: what becomes of its attempts still running. */
  finished(run: ActiveRun): void;
  /** The engine may no longer write to a run (fenced, lease lost, stopped): let go of its attempts. */
  dropped(run: ActiveRun, reason: string): void;
  /** A task found running when a run is activated (claimed, taken over, woken). */
  resumeRunning(run: ActiveRun, task: number, attempt: number): void;
  /** A run was activated and its tasks resumed. */
  activated(run: ActiveRun): void;
  /** Collects outcomes of attempts that ran elsewhere, for the runs this engine holds. */
  harvest(): Promise<void>;
  /** A harvested outcome is no longer held: committed (its row deleted), or its run dropped. */
  forgetOutcome(id: string): void;
}
