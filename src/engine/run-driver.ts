/**
 * The driver of one run: what the engine does for a run it owns between the pure run
 * machine (core/run-machine.ts) and the store, in three steps.
 *
 * 1. Decide. `take` hands an input to the machine at the engine's `now` and records in the
 *    pending batch the events, the task runs they touched, the request they answered and
 *    the commands to carry out after the commit; it returns the tasks to dispatch, which the
 *    engine handles before the commit (a slot, or an attempt it carries out itself).
 *    `startAttempt` and `startInline` record the start of a dispatched task's attempt.
 * 2. Commit. `takeEntry` turns the pending batch into the run's CommitEntry and holds it in
 *    flight; after the store answered, exactly one of `committed`, `commitFailed` (nothing
 *    was written: the batch goes back in front of what came since) or `commitFenced`.
 * 3. Act. `committed` updates what the driver knows of the stored rows (timer rows, child
 *    runs waited for) and returns the effects to perform: attempt bodies to start, attempts
 *    to carry out, timers to arm, attempts and child runs to stop, the run's end.
 *
 * Invariants
 * - Effects leave the driver only through `committed`: a body start, a timer, the report
 *   of a run's end never precede the commit of the events they follow from.
 * - An input the machine refuses midway (RUN_INVALID_TRANSITION, or a fault of Baton's
 *   own) may have left the state half-applied: the driver fences itself off the run
 *   (`fault`), decides and commits nothing more, and the engine drops the run. The run's
 *   history is untouched; its lease lapses and whoever claims it next folds it afresh.
 * - A fenced commit (another process holds the run now) fences the driver the same way.
 * - No IO and no clock: time comes in as `now`, randomness through the settings.
 */
import { BatonError } from '../core/errors.js';
import type { Decision, RunCommand, RunEvent, RunInput, RunState, TaskRun } from '../core/run-machine.js';
import { decide } from '../core/run-machine.js';
import { taskSpecOf } from '../core/run-topology.js';
import type { CommitEntry, Lease, LogLine, NewRun, TaskRunPatch, TimerChange } from '../store/store.js';
import { MAX_HOLD_MS } from './database-clock.js';
import { isInlineKind } from './inline-actions.js';
import type { Pending } from './pending-commit.js';
import { emptyPending, hasPending, mergePending, runPatch, taskPatch } from './pending-commit.js';

export interface RunDriverSettings {
  /** The random source of retry jitter. */
  readonly random: () => number;
  /** Hears why an input was not decided: refused by the machine, or fencing the driver off its run. */
  readonly diagnostic: (message: string) => void;
}

/** A run as it was loaded from its history, for its driver. */
export interface RunDriverInit {
  readonly lease: Lease;
  /** The fold of the run's committed events. */
  readonly state: RunState;
  /** The time of the run's latest committed event (-Infinity for none): see `latestAt`. */
  readonly lastAt: number;
  /** A run not in the store yet (Engine.startNew): see `RunDriver.creating`. */
  readonly creating?: RunCreation;
}

/** A run whose first commit creates it, and who waits to hear that it was (or was not). */
export interface RunCreation {
  readonly input: NewRun;
  /** The lease the creating commit gives the run, in ms. */
  readonly leaseMs: number;
  /** Called once: without an error when the creating commit is durable. */
  readonly settle: (error?: Error) => void;
}

export interface AttemptRef {
  readonly task: number;
  readonly attempt: number;
}

/** What a committed batch asks the engine to do. */
export interface AfterCommit {
  /** The events committed, and the logs. */
  readonly events: readonly RunEvent[];
  readonly logs: readonly LogLine[];
  /** Attempts whose `task_started` is now durable: their bodies may start. */
  readonly starts: readonly AttemptRef[];
  /** Attempts the engine carries out itself (map lists, choices, waits, child runs). */
  readonly inline: readonly AttemptRef[];
  /** Timers to arm, attempts and child runs to stop, the run's end; never `dispatch`. */
  readonly commands: readonly RunCommand[];
}

/** What was in flight in a run loaded from its history, for the engine to take up again. */
export interface Resumed {
  /** Attempts whose body was running under the previous owner (or this one, before a restart). */
  readonly running: readonly AttemptRef[];
  /** Tasks that were ready and had not started. */
  readonly queued: readonly number[];
  /** Retry backoffs, sleeps and wait timeouts to arm again: task and due time. */
  readonly timers: readonly { readonly task: number; readonly dueAt: number }[];
  /** Child runs that subflow tasks wait for. */
  readonly children: readonly string[];
}

const NOTHING_TO_DISPATCH: readonly number[] = Object.freeze([]);

export class RunDriver {
  readonly lease: Lease;
  readonly state: RunState;
  /** What the next commit writes. Attempt modes add to it too: logs, queue rows, cancels. */
  pending: Pending = emptyPending();
  /** The time of the run's latest event: its next events are stamped no earlier (`stampTime`). */
  lastAt: number;
  /** Tasks with a timer row in the store, as of the last commit. */
  readonly withTimer = new Set<number>();
  /** Subflow tasks waiting for their child run: task index → child run id. */
  readonly children = new Map<number, string>();
  /** Why the driver fenced itself off the run, once it did: the engine must drop the run. */
  fault: string | null = null;
  /**
   * Set while the run is not in the store yet: every entry creates it (`CommitEntry.create`)
   * until one is committed; the engine then settles it and sets this to null.
   */
  creating: RunCreation | null;
  /** The batch of the entry the store is writing, and the timer rows that entry changes. */
  private inFlight: { readonly batch: Pending; readonly timers: readonly TimerChange[] } | null = null;
  private readonly settings: RunDriverSettings;

  constructor(init: RunDriverInit, settings: RunDriverSettings) {
    this.lease = init.lease;
    this.state = init.state;
    this.lastAt = init.lastAt;
    this.creating = init.creating ?? null;
    this.settings = settings;
  }

  /**
   * Step 1: decides `input` at `now` and records the result in the pending batch, with
   * `requestId` as answered if the request was decided. `harvestedId` names the queue row
   * the input came from, deleted by the same commit. Returns the tasks to dispatch before
   * the commit (often none); null if the input was not decided: refused by the machine
   * before it changed anything (reported, and ignored), or fencing the driver off the run
   * (`fault` is then set, and the engine must drop the run).
   */
  take(input: RunInput, now: number, requestId?: number, harvestedId?: string): readonly number[] | null {
    if (this.fault !== null) return null;
    // Kept even if the input is not decided: the commit deletes the row, or the engine forgets
    // it when it drops the run.
    if (harvestedId !== undefined) this.pending.harvested.push(harvestedId);
    const decision = this.decide(input, now);
    if (!decision) return null;
    const p = this.pending;
    for (const e of decision.events) p.events.push(e);
    for (const t of decision.touched) p.touched.add(t);
    if (requestId !== undefined) p.answered.push(requestId);
    let dispatch: number[] | undefined;
    for (const c of decision.commands) {
      if (c.type === 'dispatch') (dispatch ??= []).push(c.task);
      else p.commands.push(c);
    }
    return dispatch ?? NOTHING_TO_DISPATCH;
  }

  /**
   * Step 1, for a dispatched task given a slot: records the start of its next attempt,
   * whose body starts once the start is committed (`AfterCommit.starts`). Returns the
   * attempt number, or null if the task does not start (it moved on, or `fault` is set).
   */
  startAttempt(task: number, now: number): number | null {
    const attempt = this.recordStart(task, now);
    if (attempt !== null) this.pending.starts.push({ task, attempt });
    return attempt;
  }

  /**
   * Step 1, for a dispatched task the engine carries out itself (inline-actions.ts): as
   * `startAttempt`, carried out once committed (`AfterCommit.inline`).
   */
  startInline(task: number, now: number): number | null {
    const attempt = this.recordStart(task, now);
    if (attempt !== null) this.pending.inline.push({ task, attempt });
    return attempt;
  }

  /** True when something waits to be committed. */
  hasPending(): boolean {
    return hasPending(this.pending);
  }

  /**
   * Step 2: the pending batch as the entry of the next commit, held in flight until the
   * store answered; null when nothing is pending or the driver is fenced off the run.
   */
  takeEntry(): CommitEntry | null {
    if (this.inFlight) {
      throw new BatonError('INTERNAL', `run ${this.lease.runId}: a commit was taken before the last one was answered`);
    }
    if (this.fault !== null || !hasPending(this.pending)) return null;
    const pending = this.pending;
    const state = this.state;
    const tasks: TaskRunPatch[] = [];
    const timers: TimerChange[] = [];
    for (const i of pending.touched) {
      tasks.push(taskPatch(state, i));
      const retryAt = state.tasks[i]?.retryAt ?? null;
      // `withTimer` changes only once the commit succeeded (`committed`): a failed commit is
      // retried, and must still delete the timer row then.
      if (retryAt !== null) timers.push({ task: i, dueAt: retryAt });
      else if (this.withTimer.has(i)) timers.push({ task: i, dueAt: null });
    }
    this.pending = emptyPending();
    this.inFlight = { batch: pending, timers };
    const creating = this.creating;
    return {
      lease: this.lease,
      ...(creating ? { create: { run: creating.input, leaseMs: creating.leaseMs } } : {}),
      events: pending.events,
      run: runPatch(state),
      tasks,
      timers,
      logs: pending.logs,
      answered: pending.answered,
      dispatches: pending.dispatches,
      harvested: pending.harvested,
      cancels: pending.cancels,
    };
  }

  /** Step 2, nothing was written: the batch in flight goes back in front of what came since. */
  commitFailed(): void {
    this.pending = mergePending(this.answered().batch, this.pending);
  }

  /** Step 2, the store refused the entry (the lease moved on): the driver is fenced off the run. */
  commitFenced(): void {
    this.answered();
    // A creating entry is fenced when the run exists already (Store.commit).
    this.fault ??= this.creating
      ? 'a run with this id or dedupe key exists already'
      : 'fenced: another process owns this run now';
  }

  /** Step 3: the entry in flight is durable; returns what it asks the engine to do. */
  committed(): AfterCommit {
    const { batch, timers } = this.answered();
    for (const t of timers) {
      if (t.dueAt === null) this.withTimer.delete(t.task);
      else this.withTimer.add(t.task);
    }
    for (const i of batch.touched) {
      const t = this.state.tasks[i];
      if (t?.state === 'waiting' && t.wait?.kind === 'run') this.children.set(i, t.wait.runId);
      else this.children.delete(i);
    }
    return batch;
  }

  /**
   * Takes up a run loaded from its history (claimed, taken over, woken): notes its timer
   * rows and the child runs it waits for, and returns what the engine must take up again.
   * An attempt the engine carries out itself is recorded to be carried out again after the
   * next commit: it is idempotent (a subflow finds the child its attempt already made).
   */
  resume(): Resumed {
    const running: AttemptRef[] = [];
    const queued: number[] = [];
    const timers: { task: number; dueAt: number }[] = [];
    const children: string[] = [];
    this.state.tasks.forEach((t, i) => {
      if (t.state === 'running') {
        if (isInlineKind(taskSpecOf(this.state, i))) this.pending.inline.push({ task: i, attempt: t.attempt });
        else running.push({ task: i, attempt: t.attempt });
      } else if (t.state === 'queued') {
        queued.push(i);
      } else if ((t.state === 'retrying' || t.state === 'waiting') && t.retryAt !== null) {
        this.withTimer.add(i);
        timers.push({ task: i, dueAt: t.retryAt });
      }
      if (t.state === 'waiting' && t.wait?.kind === 'run') {
        this.children.set(i, t.wait.runId);
        children.push(t.wait.runId);
      }
    });
    return { running, queued, timers, children };
  }

  /**
   * When a run whose open work only waits is due next: the earliest of its timers (retry
   * backoffs, sleeps, wait timeouts) and its own deadline; `wakeAt` is null when only the
   * outside world moves it. Null when some task is queued or running (the run is busy) or
   * nothing waits. The engine parks such a run (releases it until then).
   */
  onlyWaits(): { wakeAt: number | null } | null {
    const state = this.state;
    let waits = false;
    let wakeAt: number | null = null;
    for (const t of state.tasks) {
      if (t.state === 'queued' || t.state === 'running') return null;
      if (t.state === 'waiting' || t.state === 'retrying') {
        waits = true;
        if (t.retryAt !== null && (wakeAt === null || t.retryAt < wakeAt)) wakeAt = t.retryAt;
      }
    }
    if (!waits) return null;
    const timeoutMs = state.plan.spec.timeoutMs;
    if (timeoutMs !== null && state.startedAt !== null) {
      const deadline = state.startedAt + timeoutMs;
      if (wakeAt === null || deadline < wakeAt) wakeAt = deadline;
    }
    return { wakeAt };
  }

  private answered(): { readonly batch: Pending; readonly timers: readonly TimerChange[] } {
    const inFlight = this.inFlight;
    if (!inFlight) throw new BatonError('INTERNAL', `run ${this.lease.runId}: no commit in flight to answer`);
    this.inFlight = null;
    return inFlight;
  }

  private recordStart(task: number, now: number): number | null {
    const decision = this.decide({ type: 'attempt_started', task }, now);
    if (!decision || decision.events.length === 0) return null;
    for (const e of decision.events) this.pending.events.push(e);
    this.pending.touched.add(task);
    return (this.state.tasks[task] as TaskRun).attempt;
  }

  /** `decide` at `now`, stamped by `stampTime`; keeps the latest event time. See the header for a refusal. */
  private decide(input: RunInput, now: number): Decision | null {
    if (this.fault !== null) return null;
    let decision: Decision;
    try {
      decision = decide(this.state, input, stampTime(this.lastAt, now), this.settings.random);
    } catch (error) {
      const code = error instanceof BatonError ? error.code : 'INTERNAL';
      const runId = this.lease.runId;
      if (code !== 'RUN_INVALID_TRANSITION' && code !== 'INTERNAL') {
        // A request the machine refuses before changing anything (a retry of a running run).
        this.settings.diagnostic(`run ${runId}: ${(error as Error).message}`);
        return null;
      }
      this.settings.diagnostic(`run ${runId}: ${code}: ${(error as Error).message}; this engine lets the run go`);
      this.fault = `${code} on ${input.type}`;
      return null;
    }
    for (const e of decision.events) if (e.at > this.lastAt) this.lastAt = e.at;
    return decision;
  }
}

/**
 * The time to stamp a run's next events with: `now`, or the time of the run's latest event
 * if the clock is behind it (an estimate of the database clock corrected, another
 * process's clock a little behind, a wall clock set back), so that a run's history never
 * runs backwards and no task ends before it started. A clock behind by more than
 * MAX_HOLD_MS jumped, or the earlier time came from a clock that is off (a run's creation
 * is stamped by the machine that created it): then the clock is followed, since retry and
 * timeout due times are counted from these stamps and would otherwise wait out the gap.
 */
export function stampTime(lastAt: number, now: number): number {
  return lastAt > now && lastAt - now <= MAX_HOLD_MS ? lastAt : now;
}

/** The latest time among a run's events (-Infinity for none). */
export function latestAt(events: readonly RunEvent[]): number {
  let latest = Number.NEGATIVE_INFINITY;
  for (const e of events) if (e.at > latest) latest = e.at;
  return latest;
}
