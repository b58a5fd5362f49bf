/**
 * The engine drives runs: it owns a run through a lease, feeds what happens to the run's
 * driver (run-driver.ts: decide, commit entry, effects after the commit), group-commits
 * the entries of every run that changed, and only then carries out the effects (start
 * attempt bodies, arm timers, abort attempts, report the end). It keeps what concerns
 * many runs: slots and pools, ready queues, claiming and parking, timers, when to flush.
 * Where attempt bodies run, in this process or in workers, is its attempt mode's
 * business (attempt-mode.ts); its own phases are lifecycle.ts.
 *
 * Invariants
 * - Nothing external happens before the events it depends on are committed: an attempt
 *   body starts only after its `task_started` is durable; a run is reported finished
 *   only after its final event is durable.
 * - One flush = one transaction for every run that changed since the last flush (group
 *   commit). A failed commit (locked database, full disk) is retried with backoff and
 *   nothing it would have caused happens until it succeeds.
 * - A run whose lease is lost (fenced commit, failed renewal) is dropped at once: its
 *   attempts are aborted and their results discarded.
 * - Concurrency is bounded globally and by pool; slots are held by attempt bodies that
 *   are actually running, so a cancelled shell command holds its slot until it is dead.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { BatonError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import type { TaskSpec } from '../core/model.js';
import type { RunEvent, RunInput, Wait } from '../core/run-machine.js';
import { decide, foldRun } from '../core/run-machine.js';
import { taskIdOf, taskSpecOf } from '../core/run-topology.js';
import type { RunStateName } from '../core/states.js';
import { isTerminalRun } from '../core/states.js';
import type { CommitEntry, Lease, LogLine, NewRun, RunRequest, Store } from '../store/store.js';
import { runCreatedEvent } from '../store/run-created.js';
import { renderInputs, templateScope, toTaskError } from './attempt-runner.js';
import { choiceSelection, isInlineKind, mapItems, parkingWait } from './inline-actions.js';
import { extrasOf, scopeTasksOf } from './run-scope.js';
import { ActiveRun } from './active-run.js';
import type { AttemptHost, AttemptMode } from './attempt-mode.js';
import { InProcessAttempts } from './in-process-attempts.js';
import { QueuedAttempts } from './queued-attempts.js';
import type {
  ChildRunLauncher,
  EngineClock,
  EngineFaults,
  EngineOptions,
  FlowResolver,
  ResolvedFlow,
} from './engine-options.js';
import type { LongTimer, TimerHost } from './long-timer.js';
import { EngineLifecycle } from './lifecycle.js';
import type { EnginePhase } from './lifecycle.js';
import { setLongInterval, setLongTimeout } from './long-timer.js';
import { DatabaseClock } from './database-clock.js';
import { AttemptController } from './attempt-controller.js';
import { requestInput, runPatch, taskPatch } from './pending-commit.js';
import type { AfterCommit, RunCreation, RunDriverSettings } from './run-driver.js';
import { latestAt, stampTime } from './run-driver.js';

export type * from './engine-options.js';

interface ReadyItem {
  readonly run: ActiveRun;
  readonly task: number;
}

export class Engine {
  readonly owner: string;
  private readonly store: Store;
  private readonly flows: FlowResolver;
  private readonly concurrency: number;
  private readonly pools: Readonly<Record<string, number>>;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  /** EngineOptions.wakeAheadMs; parked runs due sooner than twice this stay in memory. */
  private readonly wakeAheadMs: number;
  private readonly eagerStarts: boolean;
  private readonly errorLimit: number;
  private readonly killGraceMs: number;
  private readonly clock: EngineClock;
  /** Set when following the database clock: `clock` reads it, `syncClock` measures it. */
  private readonly databaseClock: DatabaseClock | null;
  private readonly random: () => number;
  /** What every run's driver is given: shared, the engine's. */
  private readonly driverSettings: RunDriverSettings;
  private readonly faults: EngineFaults | undefined;
  private readonly diagnostic: (message: string) => void;
  private readonly onCommitted:
    ((runId: string, events: readonly RunEvent[], logs: readonly LogLine[]) => void) | undefined;

  private readonly runs = new Map<string, ActiveRun>();
  /** Runs activated since the last flush: each is considered for parking after it. */
  private readonly activated: ActiveRun[] = [];
  private readonly resolvedFlows = new Map<string, Promise<ResolvedFlow>>();
  private readonly inbox: { run: ActiveRun; input: RunInput; requestId?: number; harvestedId?: string }[] = [];
  /** Where attempt bodies run (`mode`): in this process, or in workers through the task queue. */
  private readonly attempts: AttemptMode;
  private readonly parkWaitingRuns: boolean;
  private readonly childLauncher: ChildRunLauncher | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly ready = new Map<string, ReadyItem[]>();
  private readonly poolUse = new Map<string, number>();
  private runningCount = 0;
  /** Engine actions (map lists, waits, child launches) started and not yet submitted. */
  private inlineInFlight = 0;
  /** Runs being claimed and loaded by `execute`. */
  private activating = 0;
  /** Runs claimed ahead of their wake-up and waiting for it: they take no claim room. */
  private readonly waitingAhead = new Set<ActiveRun>();
  /** When this engine claims next for a run it parked (claimAt), and the timer that does it. */
  private wakeClaim: { readonly at: number; readonly timer: LongTimer } | null = null;
  /** Child-run checks in flight: one may hold a child's outcome it has not submitted yet. */
  private checkingChildren = 0;
  private flushScheduled = false;
  private flushing: Promise<void> | null = null;
  private commitBackoffMs = 0;
  private heartbeat: LongTimer | undefined;
  private poller: NodeJS.Timeout | undefined;
  private claiming = false;
  private claimAgain = false;
  /** idle, working, draining, stopped: see lifecycle.ts. */
  private readonly life = new EngineLifecycle();
  private idleWaiters: (() => void)[] = [];

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.flows = options.flows;
    this.concurrency = options.concurrency ?? 32;
    this.pools = options.pools ?? {};
    this.leaseMs = options.leaseMs ?? 15_000;
    this.pollMs = options.pollMs ?? 200;
    this.wakeAheadMs = options.wakeAheadMs ?? WAKE_AHEAD_MS;
    this.eagerStarts = options.eagerStarts ?? false;
    this.errorLimit = options.errorLimitBytes ?? LIMITS.error_bytes.default;
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.faults = options.faults;
    // Before the clock: which clock the engine follows by default depends on the mode.
    this.attempts = this.attemptMode(options);
    const local = options.clock ?? { now: () => Date.now() };
    const followDatabase = options.useDatabaseClock ?? this.attempts.followsDatabaseClock;
    // Between readings the database clock is interpolated on a monotonic clock, which a
    // change of this machine's wall clock does not move (an injected clock stays in charge).
    const databaseClock = followDatabase
      ? new DatabaseClock(options.clock ? () => local.now() : () => performance.timeOrigin + performance.now())
      : null;
    this.databaseClock = databaseClock;
    this.clock = databaseClock ? { now: () => databaseClock.now() } : local;
    this.random = options.random ?? Math.random;
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    this.diagnostic = options.onDiagnostic ?? (() => undefined);
    this.driverSettings = { random: this.random, diagnostic: this.diagnostic };
    this.onCommitted = options.onCommitted;
    this.childLauncher = options.children;
    this.parkWaitingRuns = options.parkWaitingRuns ?? options.clock === undefined;
  }

  /**
   * The attempt mode of `options.mode`, chosen once: the engine asks it, never the mode,
   * whatever depends on where attempt bodies run.
   */
  private attemptMode(options: EngineOptions): AttemptMode {
    const host: AttemptHost = {
      run: (runId) => this.runs.get(runId),
      runIds: () => [...this.runs.keys()],
      stopped: () => this.life.stopped,
      now: () => this.clock.now(),
      submit: (run, input, outcomeId) => this.submit(run, input, undefined, outcomeId),
      scheduleFlush: () => this.scheduleFlush(),
      occupySlot: (run, task, attempt) => this.occupySlot(run, task, attempt),
      releaseSlot: (run, task) => this.releaseSlot(run, task),
      diagnostic: (message) => this.diagnostic(message),
    };
    const modes: Record<NonNullable<EngineOptions['mode']>, () => AttemptMode> = {
      local: () =>
        new InProcessAttempts(host, {
          executors: options.executors,
          concurrency: this.concurrency,
          claimBatch: CLAIM_BATCH,
          outputLimitBytes: options.outputLimitBytes ?? 256 * 1024,
          logLimitBytes: options.logLimitBytes ?? 1024 * 1024,
          logLineLimitBytes: options.logLineLimitBytes ?? LIMITS.log_line_bytes.default,
          errorLimitBytes: this.errorLimit,
          killGraceMs: this.killGraceMs,
          faults: this.faults,
          data: options.data,
          payloads: options.payloads,
          payloadLimitBytes: options.payloadLimitBytes,
          afterBody: options.afterBody,
          resultCache: options.resultCache,
          prefetch: options.prefetch,
        }),
      dispatch: () => new QueuedAttempts(host, { store: this.store, errorLimitBytes: this.errorLimit }),
    };
    return modes[options.mode ?? 'local']();
  }

  /** Runs this process currently owns. */
  activeRunIds(): string[] {
    return [...this.runs.keys()];
  }

  /**
   * Takes one run and drives it to its end; resolves with the final state. A run owned
   * by a process that is dead (same host, pid gone) is taken over at once; a run owned
   * by a live process is refused with RUN_OWNED.
   */
  async execute(runId: string): Promise<RunStateName> {
    const existing = this.runs.get(runId);
    if (existing) return existing.done;
    this.activating++;
    let claimed: ActiveRun | RunStateName;
    try {
      claimed = await this.claimAndActivate(runId);
    } finally {
      this.activating--;
    }
    return typeof claimed === 'string' ? claimed : claimed.done;
  }

  /** Claims a run (waiting out a live owner's start or the flow's max_active_runs) and activates it. */
  private async claimAndActivate(runId: string): Promise<ActiveRun | RunStateName> {
    const record = await this.store.getRun(runId);
    if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`);
    if (isTerminalRun(record.state)) return record.state;
    let lease: Lease | null = null;
    for (let waited = false; !lease; waited = true) {
      const current = waited ? await this.store.getRun(runId) : record;
      if (!current || isTerminalRun(current.state)) return current?.state ?? 'failed';
      const claim = { owner: this.owner, leaseMs: this.leaseMs, respectActiveLimit: true };
      lease = await this.store.claimRun(runId, claim);
      if (!lease && current.owner && isDeadLocalOwner(current.owner)) {
        lease = await this.store.claimRun(runId, { ...claim, takeOverEpoch: current.epoch });
      }
      if (lease) break;
      const liveOwner = current.owner !== null && current.leaseUntil !== null && !isDeadLocalOwner(current.owner);
      if (liveOwner && current.state === 'running') {
        throw new BatonError('RUN_OWNED', `run ${runId} is being executed by ${current.owner}`);
      }
      // Queued behind the flow's max_active_runs, or claimed by a process that has not let go.
      if (!waited) {
        this.diagnostic(
          current.owner
            ? `run ${runId} waits for ${current.owner} to start or release it`
            : `run ${runId} waits: flow ${current.flow} is at its max_active_runs`,
        );
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
      if (this.life.stopped) throw new BatonError('RUN_OWNED', `run ${runId}: engine stopped while waiting`);
    }
    let run: ActiveRun;
    try {
      run = await this.activate(lease, true);
    } catch (error) {
      this.runs.delete(runId);
      await this.store.releaseRun(lease).catch(() => undefined);
      throw error;
    }
    this.ensureTimers();
    return run;
  }

  /**
   * Applies a user request (cancel, rerun) to a run that no live process owns, committing
   * the result; used by the CLI. Returns false if a live process owns the run, in which
   * case the caller leaves a request for it.
   */
  async applyDirect(runId: string, input: RunInput, options: { includeFinished?: boolean } = {}): Promise<boolean> {
    const record = await this.store.getRun(runId);
    if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`);
    const claim = { owner: this.owner, leaseMs: this.leaseMs, includeFinished: options.includeFinished ?? false };
    let lease = await this.store.claimRun(runId, claim);
    if (!lease && record.owner && isDeadLocalOwner(record.owner)) {
      lease = await this.store.claimRun(runId, { ...claim, takeOverEpoch: record.epoch });
    }
    if (!lease) return false;
    try {
      // Only the pinned definition is needed here, not the code: a run whose code changed
      // can still be cancelled or reopened.
      const plan = await this.flows.plan(record.flow, record.version);
      const events = (await this.store.readEvents(runId)).map((e) => e.event);
      const state = foldRun(runId, plan, events);
      if (this.databaseClock && !this.databaseClock.synced) await this.syncClock();
      const decision = decide(state, input, stampTime(latestAt(events), this.clock.now()), this.random);
      const result = await this.store.commit([
        {
          lease,
          events: decision.events,
          run: runPatch(state),
          tasks: [...decision.touched].map((i) => taskPatch(state, i)),
          timers: [...decision.touched].map((i) => ({ task: i, dueAt: state.tasks[i]?.retryAt ?? null })),
          logs: [],
        },
      ]);
      if (result.fenced.length > 0) throw new BatonError('STORE_FENCED', `run ${runId} was taken by another process`);
      return true;
    } finally {
      await this.store.releaseRun(lease).catch(() => undefined);
    }
  }

  /** Worker mode: keep claiming queued and orphaned runs until `drain` or `stop`. */
  startWorker(): void {
    if (!this.life.moveTo('working')) return;
    this.ensureTimers();
    void this.syncClock()
      .catch(() => undefined)
      .then(() => this.claimNew());
  }

  /** Stops taking new work, lets running attempts finish and commit, then releases every run. */
  async drain(): Promise<void> {
    if (this.life.stopped) return;
    this.life.moveTo('draining');
    await this.waitIdle();
    await this.stop();
  }

  /** Stops at once: aborts running attempts, releases leases. Unfinished runs continue elsewhere. */
  async stop(): Promise<void> {
    if (!this.life.moveTo('stopped')) return;
    this.heartbeat?.cancel();
    if (this.poller) clearInterval(this.poller);
    if (this.wakeClaim) this.clearTimer(this.wakeClaim.timer);
    this.wakeClaim = null;
    this.unsubscribe?.();
    const owned = [...this.runs.values()];
    for (const run of owned) this.dropRun(run, 'engine stopped', false);
    await this.flushing;
    // Give aborted bodies (shell commands being killed) time to exit before the process may.
    const deadline = Date.now() + this.killGraceMs + 1000;
    while (this.runningCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // Hand the runs back so that another process takes them at once, not after the lease;
    // those that only wait are parked, to be taken when they are due.
    for (const run of owned) {
      const parkable = this.parkWaitingRuns && run.running.size === 0 && !run.hasPending();
      const park = parkable ? run.onlyWaits() : null;
      const handBack = park
        ? this.store.parkRun(run.lease, { wakeAt: park.wakeAt, awaiting: [...run.children.values()] })
        : this.store.releaseRun(run.lease);
      await handBack.catch(() => undefined);
    }
  }

  private ensureTimers(): void {
    if (this.life.stopped) return;
    // The lease is a setting of up to 366 days: a third of it may exceed what setInterval holds.
    this.heartbeat ??= setLongInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.poller ??= setInterval(() => {
      void this.poll();
      void this.attempts.harvest();
    }, this.pollMs);
    if (!this.unsubscribe && this.store.subscribe) {
      const offs = [this.store.subscribe('runs', () => void this.claimNew()), ...this.attempts.subscribe()];
      this.unsubscribe = () => offs.forEach((off) => off());
    }
  }

  private async waitIdle(): Promise<void> {
    if (this.runningCount === 0 && !this.flushScheduled && !this.flushing) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.runningCount === 0 && !this.flushScheduled && !this.flushing && this.inbox.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async poll(): Promise<void> {
    if (this.life.stopped) return;
    try {
      if (this.runs.size > 0) {
        const requests = await this.store.pendingRequests([...this.runs.keys()]);
        for (const r of requests) this.acceptRequest(r);
        await this.checkChildren();
      }
      await this.claimNew();
    } catch (error) {
      this.diagnostic(`poll failed: ${(error as Error).message}`);
    }
  }

  /** Worker mode: claims queued and orphaned runs while there is room. */
  private async claimNew(): Promise<void> {
    if (!this.life.working || this.runningCount >= this.concurrency) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        const limit = Math.min(CLAIM_BATCH, this.attempts.claimRoom(this.runs.size, this.waitingAhead.size));
        if (limit <= 0) break;
        const leases = await this.store.claimRuns({
          owner: this.owner,
          leaseMs: this.leaseMs,
          limit,
          wakeAheadMs: this.parkWaitingRuns ? this.wakeAheadMs : 0,
        });
        // Activated one after another so that a full batch of claims cannot starve the others.
        const woken: ActiveRun[] = [];
        for (const lease of leases) {
          const run = await this.activate(lease).catch((error: unknown) => this.failActivation(lease, error));
          if (run) woken.push(run);
        }
        const now = this.clock.now();
        for (const run of woken) {
          const wakeAt = run.running.size === 0 ? run.onlyWaits()?.wakeAt : undefined;
          if (typeof wakeAt === 'number' && wakeAt > now) this.waitingAhead.add(run);
        }
        if (woken.length > 0) {
          // A parked run woken by a request (a signal, a decision) or by the end of a child
          // run takes it now, not at the next poll; only then may it be parked again.
          const requests = await this.store.pendingRequests(woken.map((r) => r.lease.runId));
          for (const r of requests) this.acceptRequest(r);
          if (woken.some((r) => r.children.size > 0)) await this.checkChildren();
          this.activated.push(...woken);
          this.scheduleFlush();
        }
        if (leases.length === limit) this.claimAgain = true;
      } while (this.claimAgain && this.life.working);
    } catch (error) {
      this.diagnostic(`claim failed: ${(error as Error).message}`);
    } finally {
      this.claiming = false;
    }
  }

  /**
   * Releases a run whose open work only waits (worker mode): it leaves this process's memory
   * and is claimed again — by any engine — when its earliest timer is due, a request for it
   * arrives, or a child run it waits for ends (store.parkRun). A wait due within twice the
   * wake-ahead (so that a run claimed ahead of its wake-up is never parked again at once)
   * stays here: parking it would cost more than the wait.
   */
  private maybePark(run: ActiveRun): void {
    if (!this.parkWaitingRuns || !this.life.working) return;
    if (run.pinned || run.finished || run.parking || this.runs.get(run.lease.runId) !== run) return;
    if (run.state.state !== 'running' || run.running.size > 0 || run.inlineInFlight > 0) return;
    if (run.hasPending() || this.inbox.some((item) => item.run === run)) return;
    const park = run.onlyWaits();
    if (!park) return;
    if (park.wakeAt !== null && park.wakeAt - this.clock.now() < 2 * this.wakeAheadMs) return;
    run.parking = true;
    const awaiting = [...run.children.values()];
    this.store
      .parkRun(run.lease, { wakeAt: park.wakeAt, awaiting })
      .then((parked) => {
        if (!parked) {
          this.dropRun(run, 'fenced: another process owns this run now', true);
          return;
        }
        // Nothing of it is ready: it only waits.
        this.forget(run);
        if (park.wakeAt !== null) this.claimAt(park.wakeAt);
        run.resolveDone(run.state.state);
        this.notifyIdle();
      })
      .catch((error: unknown) => {
        // Inputs were refused while parking: forget the run; once its lease lapses any engine
        // takes it again from its history.
        this.diagnostic(`parking run ${run.lease.runId} failed: ${(error as Error).message}`);
        run.parking = false;
        this.dropRun(run, 'parking failed', false);
      });
  }

  /**
   * Claims when a run this engine parked comes due, rather than at the next poll after: the
   * earliest such time is kept (one timer), later ones are found by the poll that follows.
   */
  private claimAt(wakeAt: number): void {
    // A park that completes after stop or drain arms nothing: the timer would keep the process alive.
    if (!this.life.working) return;
    if (this.wakeClaim && this.wakeClaim.at <= wakeAt) return;
    if (this.wakeClaim) this.clearTimer(this.wakeClaim.timer);
    const timer = this.setTimer(
      () => {
        this.wakeClaim = null;
        void this.claimNew();
      },
      Math.max(0, wakeAt - this.wakeAheadMs - this.clock.now()),
    );
    this.wakeClaim = { at: wakeAt, timer };
  }

  /**
   * A claimed run this engine cannot load (its flow or its code is missing here): released
   * without waking anyone, so that an engine that has the flow takes it at its next poll and
   * this one does not claim it again at once, in a loop.
   */
  private async failActivation(lease: Lease, error: unknown): Promise<undefined> {
    this.diagnostic(`cannot execute run ${lease.runId}: ${(error as Error).message}`);
    this.runs.delete(lease.runId);
    await this.store.releaseRun(lease, { wake: false }).catch(() => undefined);
  }

  private acceptRequest(request: RunRequest): void {
    const run = this.runs.get(request.runId);
    if (!run || run.finished) return;
    const input = requestInput(run.state, request);
    if (input) {
      this.submit(run, input, request.id);
      return;
    }
    // A request naming a task the run does not have is answered (deleted) without effect.
    if (!run.pending.answered.includes(request.id)) run.pending.answered.push(request.id);
    this.scheduleFlush();
  }

  /** Subflow tasks whose child run ended: hands the child's outcome to the parent. */
  private async checkChildren(): Promise<void> {
    this.checkingChildren++;
    try {
      await this.checkChildrenNow();
    } finally {
      this.checkingChildren--;
    }
  }

  private async checkChildrenNow(): Promise<void> {
    for (const run of [...this.runs.values()]) {
      if (run.children.size === 0) continue;
      // One listing per parent, not one read per child: a map of subflows waits for many.
      const listed = new Map(
        (await this.store.listRuns({ parentRunId: run.lease.runId, limit: 4 * run.children.size + 100 })).map((r) => [
          r.id,
          r,
        ]),
      );
      for (const [task, childId] of [...run.children]) {
        if (run.finished) break;
        const child = listed.get(childId) ?? (await this.store.getRun(childId));
        if (!child || !isTerminalRun(child.state)) continue;
        run.children.delete(task);
        const output = child.state === 'succeeded' ? await this.childOutput(childId, child.flow, child.version) : null;
        this.submit(run, {
          type: 'child_finished',
          task,
          runId: childId,
          state: child.state,
          output,
          error: child.error,
        });
      }
    }
  }

  /** A child run's result: the outputs of its last tasks (those nothing depends on), by id. */
  private async childOutput(runId: string, flow: string, version: string): Promise<Record<string, unknown>> {
    const plan = await this.flows.plan(flow, version);
    const rows = await this.store.getTaskRuns(runId);
    const out: Record<string, unknown> = {};
    plan.spec.tasks.forEach((spec, i) => {
      const row = rows[i];
      if ((plan.graph.downstream[i]?.length ?? 0) > 0 || spec.finally || spec.handles !== undefined) return;
      if (row?.state === 'succeeded') out[spec.id] = row.output;
    });
    return out;
  }

  /** Reads the database clock once more, narrowing this engine's estimate of it (database-clock.ts). */
  async syncClock(): Promise<void> {
    await this.databaseClock?.sync(() => this.store.now());
  }

  private async renew(): Promise<void> {
    await this.syncClock().catch(() => undefined);
    if (this.runs.size === 0) return;
    try {
      // A run still to be created has no row to renew: its creating commit sets its lease.
      const owned = new Map([...this.runs.values()].filter((r) => !r.creating).map((r) => [r.lease.runId, r]));
      if (owned.size === 0) return;
      const lost = await this.store.renewLeases(
        [...owned.values()].map((r) => r.lease),
        this.leaseMs,
      );
      // The leases sent, not whatever holds the run now: a new lease may have replaced one.
      for (const runId of lost) {
        const run = owned.get(runId);
        if (run) this.dropRun(run, 'lease lost', true);
      }
    } catch (error) {
      this.diagnostic(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  /** Loads a claimed run from its history and resumes whatever was in flight. */
  private async activate(lease: Lease, pinned = false): Promise<ActiveRun> {
    // Our own lease lapsed (the database was away) and a poll claimed the run again: the old
    // state is fenced by the new epoch, so forget it before loading the run afresh.
    const stale = this.runs.get(lease.runId);
    if (stale) this.dropRun(stale, 'claimed again under a new lease', true);
    const record = await this.store.getRun(lease.runId);
    if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${lease.runId}`);
    const flow = await this.resolveFlow(record.flow, record.version);
    const events = (await this.store.readEvents(lease.runId)).map((e) => e.event);
    // The first times this engine stamps come from the database clock, not from a guess.
    if (this.databaseClock && !this.databaseClock.synced) await this.syncClock().catch(() => undefined);
    this.faults?.crashPoint('after_claim');
    return this.adopt(lease, flow, record.params, events, pinned);
  }

  /**
   * Creates a run owned by this engine and starts it in one commit: the run row, its lease
   * and its `run_created`, `run_started` and first `task_started` events are written in one
   * synced transaction, not three (create, claim, start). Resolves once that commit is
   * durable (the run's first bodies are started by then); `done` settles when the run
   * ends. A run with a dedupe key, of a flow capped by max_active_runs, or with a parent
   * is created first and then executed, as `execute` does: each needs what the store holds
   * before anything can be decided.
   */
  async startNew(
    input: NewRun,
  ): Promise<{ readonly runId: string; readonly created: boolean; readonly done: Promise<RunStateName> }> {
    if (!startsHere(input)) {
      const { run, created } = await this.store.createRun(input);
      const done = this.execute(run.id);
      done.catch(() => undefined);
      return { runId: run.id, created, done };
    }
    return this.createHere(input, true);
  }

  /**
   * Worker mode: creates a run and, when this worker has room for another run, starts it
   * here in the commit that creates it, as `startNew` does (an eager start: no claim, and
   * one commit before its first body instead of three); the run is then this worker's as if
   * it had claimed it, and may be parked. Without room (or with a dedupe key, a flow capped
   * by max_active_runs, a parent) the run is created queued, for the first worker to claim.
   * Resolves once the run is created.
   */
  async startEagerly(input: NewRun): Promise<{ readonly runId: string; readonly created: boolean }> {
    if (!this.hasRoomForRun() || !startsHere(input)) {
      const { run, created } = await this.store.createRun(input);
      if (created) void this.claimNew();
      return { runId: run.id, created };
    }
    const { runId, created } = await this.createHere(input, false);
    return { runId, created };
  }

  /** Worker mode: whether `startEagerly` would start a run here now (EngineOptions.eagerStarts, and room). */
  hasRoomForRun(): boolean {
    return this.eagerStarts && this.life.working && this.attempts.claimRoom(this.runs.size, this.waitingAhead.size) > 0;
  }

  /** Holds a run not yet in the store, whose first commit creates it (`CommitEntry.create`). */
  private async createHere(
    input: NewRun,
    pinned: boolean,
  ): Promise<{ readonly runId: string; readonly created: true; readonly done: Promise<RunStateName> }> {
    const f = input.flow;
    // Resolving reads the pinned version from the store: record it first (a no-op when present).
    if (!this.resolvedFlows.has(flowKey(f.flow, f.version))) await this.store.putFlowVersion(f);
    const flow = await this.resolveFlow(f.flow, f.version);
    if (this.databaseClock && !this.databaseClock.synced) await this.syncClock().catch(() => undefined);
    // A stopped engine takes no input: the run would never be committed, nor its creator answered.
    if (this.life.stopped) {
      throw new BatonError('ENGINE_STOPPED', `the engine is stopped and cannot start run ${input.id}`, {
        hint: 'Create a new engine (or client worker) to take work again.',
      });
    }
    const created = runCreatedEvent(input);
    // The epoch of a run's first claim: the commit creating the run sets it (Store.commit).
    const lease: Lease = { runId: input.id, owner: this.owner, epoch: 1 };
    return new Promise((resolve, reject) => {
      const run = this.adopt(lease, flow, input.params, [created], pinned, {
        input,
        leaseMs: this.leaseMs,
        settle: (error) => (error ? reject(error) : resolve({ runId: input.id, created: true, done: run.done })),
      });
      // `startNew`'s caller waits for this one commit: nothing else is worth waiting for.
      if (pinned) this.scheduleFlush(true);
      this.ensureTimers();
    });
  }

  /** Holds a run this engine owns, folded from its events, and takes up whatever it had in flight. */
  private adopt(
    lease: Lease,
    flow: ResolvedFlow,
    params: Readonly<Record<string, unknown>>,
    events: readonly RunEvent[],
    pinned: boolean,
    creating?: RunCreation,
  ): ActiveRun {
    const state = foldRun(lease.runId, flow.plan, events);
    const init = {
      lease,
      state,
      lastAt: latestAt(events),
      flow,
      params,
      pinned,
      ...(creating ? { creating } : {}),
    };
    const run = new ActiveRun(init, this.driverSettings);
    this.runs.set(lease.runId, run);
    if (state.state === 'queued') {
      this.submit(run, { type: 'start' });
    } else {
      const now = this.clock.now();
      const resumed = run.resume();
      for (const a of resumed.running) this.attempts.resumeRunning(run, a.task, a.attempt);
      for (const task of resumed.queued) this.dispatchTask(run, task, now);
      for (const t of resumed.timers) this.armTimer(run, t.task, t.dueAt - now);
      // The process that ran a child may have died with this run's previous owner.
      for (const childId of resumed.children) this.runChild(childId);
      this.scheduleFlush();
    }
    this.armRunTimeout(run);
    this.attempts.activated(run);
    return run;
  }

  /**
   * A pinned flow version, resolved once per engine: versions never change, and their code
   * was checked when first resolved.
   */
  private resolveFlow(flow: string, version: string): Promise<ResolvedFlow> {
    const key = flowKey(flow, version);
    let resolved = this.resolvedFlows.get(key);
    if (!resolved) {
      resolved = this.flows.resolve(flow, version).then((r) => ({ ...r, version }));
      this.resolvedFlows.set(key, resolved);
      resolved.catch(() => this.resolvedFlows.delete(key));
    }
    return resolved;
  }

  /** Counts an attempt already in flight (found on takeover) against the slots. */
  private occupySlot(run: ActiveRun, task: number, attempt: number): void {
    run.running.set(task, {
      task,
      attempt,
      controller: new AttemptController(),
      logBytes: 0,
      logTruncated: false,
      bodyStarted: true,
    });
    this.runningCount++;
    const pool = this.poolOf(run, task);
    this.poolUse.set(pool, (this.poolUse.get(pool) ?? 0) + 1);
  }

  private armRunTimeout(run: ActiveRun): void {
    const timeoutMs = run.state.plan.spec.timeoutMs;
    if (timeoutMs === null) return;
    const startedAt = run.state.startedAt ?? this.clock.now();
    const delay = Math.max(0, startedAt + timeoutMs - this.clock.now());
    run.runTimer = this.setTimer(() => this.submit(run, { type: 'run_timeout' }), delay);
  }

  private armTimer(run: ActiveRun, task: number, delayMs: number): void {
    const existing = run.timers.get(task);
    if (existing) this.clearTimer(existing);
    const timer = this.setTimer(() => {
      run.timers.delete(task);
      const dueAt = run.state.tasks[task]?.retryAt ?? null;
      const now = this.clock.now();
      // The due time in the run's state decides, should it be later than the one armed.
      if (dueAt !== null && dueAt > now) {
        this.armTimer(run, task, dueAt - now);
        return;
      }
      this.faults?.crashPoint('retry_timer');
      this.submit(run, { type: 'retry_due', task });
    }, delayMs);
    run.timers.set(task, timer);
  }

  /** Arms a durable timer of a run on the engine's clock, for any delay (see long-timer.ts). */
  private setTimer(fn: () => void, ms: number): LongTimer {
    return setLongTimeout(fn, ms, this.timerHost);
  }

  private clearTimer(timer: LongTimer): void {
    timer.cancel();
  }

  /** The engine's clock with its timers (a virtual clock's in the testing kit, else Node's). */
  private readonly timerHost: TimerHost = {
    now: () => this.clock.now(),
    setTimeout: (fn, ms) => (this.clock.setTimer ? this.clock.setTimer(fn, ms) : setTimeout(fn, ms)),
    clearTimeout: (handle) =>
      this.clock.clearTimer ? this.clock.clearTimer(handle) : clearTimeout(handle as NodeJS.Timeout),
  };

  /**
   * Delivers an input to a run this engine owns (tests and embedders); false if it does
   * not own the run. Signals and decisions from other processes arrive as requests.
   */
  send(runId: string, input: RunInput): boolean {
    const run = this.runs.get(runId);
    if (!run || run.finished) return false;
    this.submit(run, input);
    return true;
  }

  /**
   * Tasks of the runs this engine owns that wait for the outside world: an event or an
   * approval (their timeouts aside, nothing but a signal or a decision moves them).
   */
  waitingForOutside(): { runId: string; task: string; wait: 'event' | 'approval' }[] {
    const out: { runId: string; task: string; wait: 'event' | 'approval' }[] = [];
    for (const run of this.runs.values()) {
      run.state.tasks.forEach((t, i) => {
        const kind = t.state === 'waiting' ? t.wait?.kind : undefined;
        if (kind === 'event' || kind === 'approval') {
          out.push({ runId: run.lease.runId, task: taskIdOf(run.state, i), wait: kind });
        }
      });
    }
    return out;
  }

  /** Where the engine is in its lifecycle: idle, working, draining or stopped (lifecycle.ts). */
  get phase(): EnginePhase {
    return this.life.phase;
  }

  /** Worker mode: claims queued runs now (a run was just created here), rather than at the next poll. */
  async claimNow(): Promise<void> {
    await this.claimNew();
  }

  /** Looks for requests and finished child runs now, rather than at the next poll. */
  async pollNow(): Promise<void> {
    await this.poll();
  }

  /**
   * True when nothing moves without the outside world or a timer: no attempt body runs,
   * no commit is pending, no engine action is in flight.
   */
  isIdle(): boolean {
    return (
      this.runningCount === 0 &&
      !this.flushScheduled &&
      !this.flushing &&
      this.inbox.length === 0 &&
      this.inlineInFlight === 0 &&
      this.activating === 0 &&
      this.checkingChildren === 0 &&
      [...this.ready.values()].every((q) => q.length === 0)
    );
  }

  private submit(run: ActiveRun, input: RunInput, requestId?: number, harvestedId?: string): void {
    if (run.finished || run.parking || this.life.stopped) return;
    // Its wait is over (or something else came first): from now on it takes room as any run.
    this.waitingAhead.delete(run);
    this.inbox.push({
      run,
      input,
      ...(requestId === undefined ? {} : { requestId }),
      ...(harvestedId === undefined ? {} : { harvestedId }),
    });
    this.scheduleFlush();
  }

  /**
   * Flushes once the attempt mode lets outcomes gather (group commit), or with `soon` right
   * after the current task: for a run whose creator waits alone for its first commit.
   */
  private scheduleFlush(soon = false): void {
    if (this.flushScheduled && !soon) return;
    this.flushScheduled = true;
    const flushIt = () => {
      this.flushScheduled = false;
      if (this.flushing) {
        // A commit is in flight; pick the inbox up right after it.
        void this.flushing.then(() => this.scheduleFlush());
        return;
      }
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        if (this.inbox.length > 0) this.scheduleFlush();
        this.notifyIdle();
      });
    };
    if (soon) queueMicrotask(flushIt);
    else this.attempts.deferFlush(flushIt);
  }

  /** Decides every queued input, starts what slots allow, commits once, then acts; parks what only waits. */
  private async flush(): Promise<void> {
    const touched = new Set<ActiveRun>();
    try {
      await this.flushInbox(touched);
    } finally {
      for (const run of touched) this.maybePark(run);
    }
  }

  /**
   * Hands every queued input to its run's driver and starts what slots allow. Kept out of
   * the async flushInbox, so that this loop, run once per task outcome, is optimized as a
   * plain function of its own.
   */
  private decideInbox(touched: Set<ActiveRun>, now: number): void {
    const items = this.inbox.splice(0, this.inbox.length);
    for (const { run, input, requestId, harvestedId } of items) {
      if (run.finished || this.runs.get(run.lease.runId) !== run) {
        // Dropped: its queue row was not consumed, and is harvested again by the run's owner.
        if (harvestedId !== undefined) this.attempts.forgetOutcome(harvestedId);
        continue;
      }
      touched.add(run);
      const dispatch = run.take(input, now, requestId, harvestedId);
      if (!dispatch) this.dropIfFenced(run);
      else for (const task of dispatch) this.dispatchTask(run, task, now);
    }
    this.pump(now);
  }

  private async flushInbox(touched: Set<ActiveRun>): Promise<void> {
    this.decideInbox(touched, this.clock.now());
    for (const run of this.activated.splice(0)) touched.add(run);
    const batch: ActiveRun[] = [];
    const entries: CommitEntry[] = [];
    for (const run of this.runs.values()) {
      const entry = run.takeEntry();
      if (!entry) continue;
      batch.push(run);
      entries.push(entry);
      // A batch whose commit failed comes back here without inputs: its runs are still candidates.
      touched.add(run);
    }
    if (entries.length === 0) return;
    let fenced: ReadonlySet<string>;
    try {
      fenced = new Set((await this.store.commit(entries)).fenced);
      this.commitBackoffMs = 0;
    } catch (error) {
      // Nothing was written; keep every change pending and try again shortly.
      for (const run of batch) run.commitFailed();
      this.commitBackoffMs = Math.min(Math.max(this.commitBackoffMs * 2, 20), 2000);
      this.diagnostic(`commit failed, retrying in ${this.commitBackoffMs} ms: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, this.commitBackoffMs));
      this.scheduleFlush();
      return;
    }
    // Every driver hears the answer before any effect is carried out.
    const effects = batch.map((run) => {
      if (!fenced.has(run.lease.runId)) return run.committed();
      run.commitFenced();
      return null;
    });
    for (const entry of entries) for (const id of entry.harvested ?? []) this.attempts.forgetOutcome(id);
    batch.forEach((run, k) => {
      const after = effects[k];
      if (!after) {
        this.dropIfFenced(run);
        return;
      }
      const creating = run.creating;
      run.creating = null;
      this.act(run, after);
      // Once the run's first bodies have started: its creator learns it exists.
      creating?.settle();
    });
  }

  /** Drops a run whose driver fenced itself off it (run-driver.ts); a refused input left it as it was. */
  private dropIfFenced(run: ActiveRun): void {
    if (run.fault !== null) this.dropRun(run, run.fault, true);
  }

  /** Reports a committed batch and carries out what it asked for. */
  private act(run: ActiveRun, after: AfterCommit): void {
    if (this.onCommitted && (after.events.length > 0 || after.logs.length > 0))
      this.onCommitted(run.lease.runId, after.events, after.logs);
    for (const s of after.starts) this.attempts.start(run, s.task, s.attempt);
    for (const a of after.inline) void this.performInline(run, a.task, a.attempt);
    const now = this.clock.now();
    for (const c of after.commands) {
      if (c.type === 'arm_timer') this.armTimer(run, c.task, c.dueAt - now);
      else if (c.type === 'abort') this.abortAttempt(run, c.task, c.attempt, c.reason);
      else if (c.type === 'cancel_child') void this.cancelChild(c.runId, c.reason);
      else if (c.type === 'finished') this.finish(run, c.state);
    }
  }

  /** Queues a ready task for a slot, or starts at once what the engine carries out itself. */
  private dispatchTask(run: ActiveRun, task: number, now: number): void {
    if (!isInlineKind(taskSpecOf(run.state, task))) {
      this.enqueueReady(run, task);
      return;
    }
    if (run.startInline(task, now) === null) this.dropIfFenced(run);
    else this.scheduleFlush();
  }

  /** Carries out a map, a choice by rules, or a parking task: one input for the machine. */
  private async performInline(run: ActiveRun, task: number, attempt: number): Promise<void> {
    const state = run.state;
    const spec = taskSpecOf(state, task);
    const scope = templateScope(
      run.lease.runId,
      state.plan.spec.name,
      run.params,
      scopeTasksOf(state, task),
      extrasOf(state, task),
    );
    const now = this.clock.now();
    let input: RunInput;
    this.inlineInFlight++;
    run.inlineInFlight++;
    try {
      if (spec.kind === 'map') {
        input = { type: 'map_items', task, attempt, items: mapItems(spec, scope) };
      } else if (spec.kind === 'choice') {
        input = { type: 'attempt_succeeded', task, attempt, output: { selected: choiceSelection(spec, scope) } };
      } else if (spec.kind === 'subflow') {
        const wait: Wait = {
          kind: 'run',
          runId: await this.launchChild(run, task, attempt, spec, scope),
          timeoutAt: spec.timeoutMs === null ? null : now + spec.timeoutMs,
        };
        input = { type: 'attempt_parked', task, attempt, wait };
      } else {
        input = { type: 'attempt_parked', task, attempt, wait: parkingWait(spec, scope, now) };
      }
    } catch (error) {
      input = { type: 'attempt_failed', task, attempt, error: toTaskError(error, this.errorLimit) };
    } finally {
      this.inlineInFlight--;
      run.inlineInFlight--;
    }
    this.submit(run, input);
  }

  private async launchChild(
    run: ActiveRun,
    task: number,
    attempt: number,
    spec: TaskSpec,
    scope: Readonly<Record<string, unknown>>,
  ): Promise<string> {
    if (!this.childLauncher) {
      throw new BatonError('SUBFLOW_FAILED', `task ${spec.id}: this process cannot start child runs`, {
        hint: 'Run the flow through the baton CLI, which knows the flow catalog.',
      });
    }
    const childId = await this.childLauncher.launch({
      parentRunId: run.lease.runId,
      parentTask: taskIdOf(run.state, task),
      attempt,
      flow: String(spec.config.flow),
      version: typeof spec.config.version === 'string' ? spec.config.version : null,
      params: renderInputs(spec, scope),
    });
    this.runChild(childId);
    return childId;
  }

  /** A worker-mode engine claims a child like any queued run; otherwise this process runs it. */
  private runChild(childId: string): void {
    if (this.life.working) {
      void this.claimNew();
      return;
    }
    this.execute(childId)
      // The parent hears of its child's end at once, not at the next poll.
      .then(() => this.checkChildren())
      .catch((error: unknown) => this.diagnostic(`child run ${childId}: ${(error as Error).message}`));
  }

  private async cancelChild(runId: string, reason: string): Promise<void> {
    try {
      const child = await this.store.getRun(runId);
      if (!child || isTerminalRun(child.state)) return;
      const local = this.runs.get(runId);
      if (local) this.submit(local, { type: 'cancel', reason: `parent: ${reason}` });
      else await this.store.addRequest(runId, 'cancel', { reason: `parent: ${reason}` });
    } catch (error) {
      this.diagnostic(`cancel of child run ${runId} failed: ${(error as Error).message}`);
    }
  }

  private abortAttempt(run: ActiveRun, task: number, attempt: number, reason: string): void {
    const running = run.running.get(task);
    if (!running || running.attempt !== attempt) return;
    this.attempts.abort(run, running, reason);
  }

  private finish(run: ActiveRun, state: RunStateName): void {
    this.forget(run);
    this.removeReady(run);
    this.attempts.finished(run);
    // The commit that ended the run also let go of its lease (Store.commit): nothing to release.
    run.resolveDone(state);
    // The run's place is free: a worker takes the next queued run now, not at its next poll.
    void this.claimNew();
  }

  /** Forgets a run this process may no longer write to; aborts its attempts. */
  private dropRun(run: ActiveRun, reason: string, asError: boolean): void {
    if (run.finished) return;
    this.forget(run);
    this.attempts.dropped(run, reason);
    this.removeReady(run);
    for (const id of run.pending.harvested) this.attempts.forgetOutcome(id);
    const error = asError
      ? new BatonError('STORE_FENCED', `run ${run.lease.runId}: ${reason}`)
      : new BatonError('RUN_OWNED', `run ${run.lease.runId}: ${reason}`);
    run.rejectDone(error);
    run.done.catch(() => undefined);
    // A run never created: whoever asked for it learns so instead of waiting for its end.
    const creating = run.creating;
    run.creating = null;
    creating?.settle(error);
  }

  /** The engine no longer drives the run (ended, dropped, parked): its timers stop, its place is free. */
  private forget(run: ActiveRun): void {
    run.finished = true;
    this.waitingAhead.delete(run);
    if (run.runTimer) this.clearTimer(run.runTimer);
    for (const t of run.timers.values()) this.clearTimer(t);
    // Only this run's entry: a newer lease of the same run may have replaced it.
    if (this.runs.get(run.lease.runId) === run) this.runs.delete(run.lease.runId);
  }

  private poolOf(run: ActiveRun, task: number): string {
    return taskSpecOf(run.state, task).pool ?? '';
  }

  private enqueueReady(run: ActiveRun, task: number): void {
    const pool = this.poolOf(run, task);
    let queue = this.ready.get(pool);
    if (!queue) {
      queue = [];
      this.ready.set(pool, queue);
    }
    queue.push({ run, task });
  }

  private removeReady(run: ActiveRun): void {
    for (const [pool, queue] of this.ready) {
      this.ready.set(
        pool,
        queue.filter((item) => item.run !== run),
      );
    }
  }

  /** Slots of a pool: from the project's config, else from the flow that declares it. */
  private poolSlots(pool: string, run: ActiveRun | undefined): number {
    if (pool === '') return Number.POSITIVE_INFINITY;
    return this.pools[pool] ?? run?.state.plan.spec.pools[pool] ?? 1;
  }

  /** Starts queued tasks while global and pool slots allow; records their start in the batch. */
  private pump(now: number): void {
    if (this.life.closing) return;
    for (const [pool, queue] of this.ready) {
      let used = this.poolUse.get(pool) ?? 0;
      const slots = this.poolSlots(pool, queue[0]?.run);
      let taken = 0;
      while (taken < queue.length && this.runningCount < this.concurrency && used < slots) {
        const item = queue[taken++] as ReadyItem;
        const { run, task } = item;
        if (run.finished || run.running.has(task)) continue;
        const attempt = run.startAttempt(task, now);
        if (attempt === null) {
          this.dropIfFenced(run);
          continue;
        }
        this.attempts.prepare(run, task, attempt);
        run.running.set(task, {
          task,
          attempt,
          controller: new AttemptController(),
          logBytes: 0,
          logTruncated: false,
          bodyStarted: false,
        });
        this.runningCount++;
        used++;
      }
      this.poolUse.set(pool, used);
      if (taken > 0) queue.splice(0, taken);
    }
  }

  private releaseSlot(run: ActiveRun, task: number): void {
    run.running.delete(task);
    this.runningCount--;
    const pool = this.poolOf(run, task);
    this.poolUse.set(pool, (this.poolUse.get(pool) ?? 1) - 1);
  }
}

/** Runs claimed per claim round trip: woken runs due at the same second are taken in batches. */
const CLAIM_BATCH = 64;

/**
 * How long before its wake-up a parked run is claimed again by default (see
 * EngineOptions.wakeAheadMs): it then waits in memory, and at its due time only the
 * decision and its commit are left to do, so that many timers due at the same second fire
 * on time. One worker on PostgreSQL claims ten thousand runs in about two seconds here.
 */
const WAKE_AHEAD_MS = 3000;

/** True if `owner` names a process on this host that no longer exists. */
/**
 * Whether a run can be created by the engine that starts it: not with a dedupe key (the run
 * may exist), a flow capped by max_active_runs (the cap is counted in the store) or a parent
 * (the parent's limits are).
 */
function startsHere(input: NewRun): boolean {
  return !input.dedupeKey && (input.maxActiveRuns ?? null) === null && !input.parent;
}

function flowKey(flow: string, version: string): string {
  return `${flow}\u0000${version}`;
}

export function isDeadLocalOwner(owner: string): boolean {
  const [host, pidText] = owner.split('/');
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
