/**
 * The engine drives runs: it owns a run through a lease, feeds what happens to the pure
 * run machine, group-commits the resulting events, and only then carries out the
 * commands (start attempt bodies, arm timers, abort attempts, report the end).
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
import { BatonError, isBatonError } from '../core/errors.js';
import type { TaskError, TaskSpec } from '../core/model.js';
import type { FlowPlan, RunCommand, RunEvent, RunInput, RunState } from '../core/run-machine.js';
import { decide, foldRun } from '../core/run-machine.js';
import type { RunStateName } from '../core/states.js';
import { isTerminalRun } from '../core/states.js';
import { renderValue } from '../define/expression.js';
import type { CommitEntry, Lease, LogLine, RunRequest, Store, TaskRunPatch } from '../store/store.js';
import type { AttemptContext, ExecutorRegistry, TaskFunction } from './executor.js';
import { AttemptAbort } from './executor.js';
import { upstreamScope } from './executors/shell.js';

/** Where the engine gets a flow's code for a pinned version. */
export interface ResolvedFlow {
  readonly plan: FlowPlan;
  /** Folder of the flow file (relative paths resolve from here). */
  readonly flowDir: string;
  readonly resolveFunction: (taskId: string) => TaskFunction | undefined;
}

export interface FlowResolver {
  resolve(flow: string, version: string): Promise<ResolvedFlow>;
}

/** Named instants where a crash test may kill the process. */
export type CrashPointName = 'after_claim' | 'after_body' | 'mid_commit' | 'retry_timer';

export interface EngineFaults {
  crashPoint(name: CrashPointName): void;
}

export interface EngineClock {
  now(): number;
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
  /** Largest task output accepted, in bytes of JSON. Default 256 KiB. */
  readonly outputLimitBytes?: number;
  /** Largest log kept per attempt, in bytes. Default 1 MiB. */
  readonly logLimitBytes?: number;
  /** Time between SIGTERM and SIGKILL when stopping a shell task. Default 2000 ms. */
  readonly killGraceMs?: number;
  readonly clock?: EngineClock;
  readonly random?: () => number;
  readonly faults?: EngineFaults;
  /** Identifies this process in leases; default `<host>/<pid>/<uuid>`. */
  readonly owner?: string;
  /** Diagnostics for operators (not task logs). */
  readonly onDiagnostic?: (message: string) => void;
  /** Called after each commit with the events it made durable, per run. */
  readonly onCommitted?: (runId: string, events: readonly RunEvent[]) => void;
}

interface RunningAttempt {
  readonly task: number;
  readonly attempt: number;
  readonly controller: AbortController;
  logBytes: number;
  logTruncated: boolean;
  /** False until the batch recording its start is committed and the body launched. */
  bodyStarted: boolean;
}

interface Pending {
  events: CommitEntry['events'] extends readonly (infer E)[] ? E[] : never;
  touched: Set<number>;
  logs: LogLine[];
  answered: number[];
  starts: { task: number; attempt: number }[];
  commands: RunCommand[];
}

interface ActiveRun {
  readonly lease: Lease;
  readonly state: RunState;
  readonly flow: ResolvedFlow;
  readonly params: Readonly<Record<string, unknown>>;
  readonly running: Map<number, RunningAttempt>;
  readonly timers: Map<number, NodeJS.Timeout>;
  readonly withTimer: Set<number>;
  pending: Pending;
  runTimer?: NodeJS.Timeout;
  finished: boolean;
  readonly done: Promise<RunStateName>;
  resolveDone: (state: RunStateName) => void;
  rejectDone: (error: Error) => void;
}

interface ReadyItem {
  readonly run: ActiveRun;
  readonly task: number;
}

function emptyPending(): Pending {
  return { events: [], touched: new Set(), logs: [], answered: [], starts: [], commands: [] };
}

function toTaskError(error: unknown): TaskError {
  if (error instanceof AttemptAbort) {
    if (error.kind === 'timeout') return { code: 'TASK_TIMEOUT', message: error.message, source: 'user' };
    if (error.kind === 'lease_lost') return { code: 'WORKER_LOST', message: error.message, source: 'baton' };
    return { code: 'TASK_CANCELLED', message: error.message, source: 'user' };
  }
  if (isBatonError(error)) {
    return { code: error.code, message: error.message, source: error.source, hint: error.hint };
  }
  if (error instanceof Error) {
    const raw = (error as unknown as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : 'TASK_FAILED';
    return { code, message: error.message || error.name, source: 'user' };
  }
  return { code: 'TASK_FAILED', message: String(error), source: 'user' };
}

export class Engine {
  readonly owner: string;
  private readonly store: Store;
  private readonly executors: ExecutorRegistry;
  private readonly flows: FlowResolver;
  private readonly concurrency: number;
  private readonly pools: Readonly<Record<string, number>>;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly outputLimit: number;
  private readonly logLimit: number;
  private readonly killGraceMs: number;
  private readonly clock: EngineClock;
  private readonly random: () => number;
  private readonly faults: EngineFaults | undefined;
  private readonly diagnostic: (message: string) => void;
  private readonly onCommitted: ((runId: string, events: readonly RunEvent[]) => void) | undefined;

  private readonly runs = new Map<string, ActiveRun>();
  private readonly inbox: { run: ActiveRun; input: RunInput; requestId?: number }[] = [];
  private readonly ready = new Map<string, ReadyItem[]>();
  private readonly poolUse = new Map<string, number>();
  private runningCount = 0;
  private flushScheduled = false;
  private flushing: Promise<void> | null = null;
  private commitBackoffMs = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private claiming = false;
  private workerMode = false;
  private draining = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.executors = options.executors;
    this.flows = options.flows;
    this.concurrency = options.concurrency ?? 32;
    this.pools = options.pools ?? {};
    this.leaseMs = options.leaseMs ?? 15_000;
    this.pollMs = options.pollMs ?? 200;
    this.outputLimit = options.outputLimitBytes ?? 256 * 1024;
    this.logLimit = options.logLimitBytes ?? 1024 * 1024;
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.random = options.random ?? Math.random;
    this.faults = options.faults;
    this.owner = options.owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    this.diagnostic = options.onDiagnostic ?? (() => undefined);
    this.onCommitted = options.onCommitted;
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
      // Queued behind the flow's max_active_runs (or a claim in flight): wait for room.
      if (!waited) this.diagnostic(`run ${runId} waits: flow ${current.flow} is at its max_active_runs`);
      await new Promise((r) => setTimeout(r, this.pollMs));
      if (this.stopped) throw new BatonError('RUN_OWNED', `run ${runId}: engine stopped while waiting`);
    }
    const run = await this.activate(lease);
    this.ensureTimers();
    return run.done;
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
    const flow = await this.flows.resolve(record.flow, record.version);
    const events = (await this.store.readEvents(runId)).map((e) => e.event);
    const state = foldRun(runId, flow.plan, events);
    const decision = decide(state, input, this.clock.now(), this.random);
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
    await this.store.releaseRun(lease);
    if (result.fenced.length > 0) throw new BatonError('STORE_FENCED', `run ${runId} was taken by another process`);
    return true;
  }

  /** Worker mode: keep claiming queued and orphaned runs until `drain` or `stop`. */
  startWorker(): void {
    this.workerMode = true;
    this.ensureTimers();
    void this.poll();
  }

  /** Stops taking new work, lets running attempts finish and commit, then releases every run. */
  async drain(): Promise<void> {
    this.draining = true;
    this.workerMode = false;
    await this.waitIdle();
    await this.stop();
  }

  /** Stops at once: aborts running attempts, releases leases. Unfinished runs continue elsewhere. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.workerMode = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.poller) clearInterval(this.poller);
    for (const run of this.runs.values()) this.dropRun(run, 'engine stopped', false);
    await this.flushing;
    // Give aborted bodies (shell commands being killed) time to exit before the process may.
    const deadline = Date.now() + this.killGraceMs + 1000;
    while (this.runningCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const run of [...this.runs.values()]) {
      this.runs.delete(run.lease.runId);
      await this.store.releaseRun(run.lease).catch(() => undefined);
    }
  }

  private ensureTimers(): void {
    if (this.stopped) return;
    this.heartbeat ??= setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.poller ??= setInterval(() => void this.poll(), this.pollMs);
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
    if (this.stopped) return;
    try {
      if (this.runs.size > 0) {
        const requests = await this.store.pendingRequests([...this.runs.keys()]);
        for (const r of requests) this.acceptRequest(r);
      }
      if (this.workerMode && !this.draining && !this.claiming && this.runningCount < this.concurrency) {
        this.claiming = true;
        try {
          const leases = await this.store.claimRuns({ owner: this.owner, leaseMs: this.leaseMs, limit: 8 });
          for (const lease of leases) {
            await this.activate(lease).catch((error: unknown) => this.failActivation(lease, error));
          }
        } finally {
          this.claiming = false;
        }
      }
    } catch (error) {
      this.diagnostic(`poll failed: ${(error as Error).message}`);
    }
  }

  private async failActivation(lease: Lease, error: unknown): Promise<void> {
    this.diagnostic(`cannot execute run ${lease.runId}: ${(error as Error).message}`);
    this.runs.delete(lease.runId);
    await this.store.releaseRun(lease).catch(() => undefined);
  }

  private acceptRequest(request: RunRequest): void {
    const run = this.runs.get(request.runId);
    if (!run || run.finished) return;
    const reason = typeof request.payload.reason === 'string' ? request.payload.reason : 'cancelled by user';
    if (request.kind === 'cancel') {
      this.submit(run, { type: 'cancel', reason }, request.id);
    } else {
      const task = run.state.plan.graph.indexOf.get(String(request.payload.task));
      if (task !== undefined) this.submit(run, { type: 'cancel', reason, task }, request.id);
    }
  }

  private async renew(): Promise<void> {
    if (this.runs.size === 0) return;
    try {
      const lost = await this.store.renewLeases(
        [...this.runs.values()].map((r) => r.lease),
        this.leaseMs,
      );
      for (const runId of lost) {
        const run = this.runs.get(runId);
        if (run) this.dropRun(run, 'lease lost', true);
      }
    } catch (error) {
      this.diagnostic(`lease renewal failed: ${(error as Error).message}`);
    }
  }

  /** Loads a claimed run from its history and resumes whatever was in flight. */
  private async activate(lease: Lease): Promise<ActiveRun> {
    const record = await this.store.getRun(lease.runId);
    if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${lease.runId}`);
    const flow = await this.flows.resolve(record.flow, record.version);
    const events = (await this.store.readEvents(lease.runId)).map((e) => e.event);
    const state = foldRun(lease.runId, flow.plan, events);
    this.faults?.crashPoint('after_claim');
    let resolveDone!: (s: RunStateName) => void;
    let rejectDone!: (e: Error) => void;
    const done = new Promise<RunStateName>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    const run: ActiveRun = {
      lease,
      state,
      flow,
      params: record.params,
      running: new Map(),
      timers: new Map(),
      withTimer: new Set(),
      pending: emptyPending(),
      finished: false,
      done,
      resolveDone,
      rejectDone,
    };
    this.runs.set(lease.runId, run);
    if (state.state === 'queued') {
      this.submit(run, { type: 'start' });
    } else {
      const now = this.clock.now();
      state.tasks.forEach((t, i) => {
        if (t.state === 'running') this.submit(run, { type: 'attempt_lost', task: i, attempt: t.attempt });
        else if (t.state === 'queued') this.enqueueReady(run, i);
        else if (t.state === 'retrying' && t.retryAt !== null) {
          run.withTimer.add(i);
          this.armTimer(run, i, t.retryAt - now);
        }
      });
      this.scheduleFlush();
    }
    this.armRunTimeout(run);
    return run;
  }

  private armRunTimeout(run: ActiveRun): void {
    const timeoutMs = run.state.plan.spec.timeoutMs;
    if (timeoutMs === null) return;
    const startedAt = run.state.startedAt ?? this.clock.now();
    const delay = Math.max(0, startedAt + timeoutMs - this.clock.now());
    run.runTimer = setTimeout(() => this.submit(run, { type: 'run_timeout' }), delay);
  }

  private armTimer(run: ActiveRun, task: number, delayMs: number): void {
    const existing = run.timers.get(task);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(
      () => {
        run.timers.delete(task);
        const dueAt = run.state.tasks[task]?.retryAt ?? null;
        const now = this.clock.now();
        if (dueAt !== null && dueAt > now) {
          this.armTimer(run, task, dueAt - now);
          return;
        }
        this.faults?.crashPoint('retry_timer');
        this.submit(run, { type: 'retry_due', task });
      },
      // setTimeout cannot wait longer than 2^31-1 ms; a later timer fires early and re-arms.
      Math.min(Math.max(0, delayMs), 2 ** 31 - 1),
    );
    run.timers.set(task, timer);
  }

  private submit(run: ActiveRun, input: RunInput, requestId?: number): void {
    if (run.finished || this.stopped) return;
    this.inbox.push(requestId === undefined ? { run, input } : { run, input, requestId });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
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
    });
  }

  /** Decides every queued input, starts what slots allow, commits once, then acts. */
  private async flush(): Promise<void> {
    const now = this.clock.now();
    const items = this.inbox.splice(0, this.inbox.length);
    for (const { run, input, requestId } of items) {
      if (run.finished || !this.runs.has(run.lease.runId)) continue;
      let decision;
      try {
        decision = decide(run.state, input, now, this.random);
      } catch (error) {
        this.diagnostic(`run ${run.lease.runId}: ${(error as Error).message}`);
        continue;
      }
      const p = run.pending;
      for (const e of decision.events) p.events.push(e);
      for (const t of decision.touched) p.touched.add(t);
      if (requestId !== undefined) p.answered.push(requestId);
      for (const c of decision.commands) {
        if (c.type === 'dispatch') this.enqueueReady(run, c.task);
        else p.commands.push(c);
      }
    }
    this.pump(now);
    const dirty = [...this.runs.values()].filter((r) => hasPending(r.pending));
    if (dirty.length === 0) return;
    const batches = dirty.map((run) => ({ run, pending: run.pending }));
    for (const run of dirty) run.pending = emptyPending();
    const entries: CommitEntry[] = batches.map(({ run, pending }) => this.entryFor(run, pending));
    let fenced: readonly string[];
    try {
      fenced = (await this.store.commit(entries)).fenced;
      this.commitBackoffMs = 0;
    } catch (error) {
      // Nothing was written; keep every change pending and try again shortly.
      for (const { run, pending } of batches) run.pending = mergePending(pending, run.pending);
      this.commitBackoffMs = Math.min(Math.max(this.commitBackoffMs * 2, 20), 2000);
      this.diagnostic(`commit failed, retrying in ${this.commitBackoffMs} ms: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, this.commitBackoffMs));
      this.scheduleFlush();
      return;
    }
    const fencedSet = new Set(fenced);
    for (const { run, pending } of batches) {
      if (fencedSet.has(run.lease.runId)) {
        this.dropRun(run, 'fenced: another process owns this run now', true);
        continue;
      }
      if (this.onCommitted && pending.events.length > 0) this.onCommitted(run.lease.runId, pending.events);
      this.act(run, pending);
    }
  }

  private entryFor(run: ActiveRun, pending: Pending): CommitEntry {
    const state = run.state;
    const tasks: TaskRunPatch[] = [];
    const timers: { task: number; dueAt: number | null }[] = [];
    for (const i of pending.touched) {
      tasks.push(taskPatch(state, i));
      const retryAt = state.tasks[i]?.retryAt ?? null;
      if (retryAt !== null) {
        timers.push({ task: i, dueAt: retryAt });
        run.withTimer.add(i);
      } else if (run.withTimer.delete(i)) {
        timers.push({ task: i, dueAt: null });
      }
    }
    return {
      lease: run.lease,
      events: pending.events,
      run: runPatch(state),
      tasks,
      timers,
      logs: pending.logs,
      answered: pending.answered,
    };
  }

  /** Carries out what a committed batch asked for. */
  private act(run: ActiveRun, pending: Pending): void {
    for (const s of pending.starts) this.startAttempt(run, s.task, s.attempt);
    const now = this.clock.now();
    for (const c of pending.commands) {
      if (c.type === 'arm_timer') this.armTimer(run, c.task, c.dueAt - now);
      else if (c.type === 'abort') run.running.get(c.task)?.controller.abort(new AttemptAbort('cancelled', c.reason));
      else if (c.type === 'finished') void this.finish(run, c.state);
    }
  }

  private async finish(run: ActiveRun, state: RunStateName): Promise<void> {
    run.finished = true;
    if (run.runTimer) clearTimeout(run.runTimer);
    for (const t of run.timers.values()) clearTimeout(t);
    this.removeReady(run);
    // Bodies still running (being killed) keep their slots until they exit.
    this.runs.delete(run.lease.runId);
    try {
      await this.store.releaseRun(run.lease);
    } catch (error) {
      this.diagnostic(`release of run ${run.lease.runId} failed: ${(error as Error).message}`);
    }
    run.resolveDone(state);
  }

  /** Forgets a run this process may no longer write to; aborts its attempts. */
  private dropRun(run: ActiveRun, reason: string, asError: boolean): void {
    if (run.finished) return;
    run.finished = true;
    if (run.runTimer) clearTimeout(run.runTimer);
    for (const t of run.timers.values()) clearTimeout(t);
    for (const a of [...run.running.values()]) {
      if (a.bodyStarted) a.controller.abort(new AttemptAbort('lease_lost', reason));
      else this.releaseSlot(run, a.task);
    }
    this.removeReady(run);
    this.runs.delete(run.lease.runId);
    if (asError) run.rejectDone(new BatonError('STORE_FENCED', `run ${run.lease.runId}: ${reason}`));
    else run.rejectDone(new BatonError('RUN_OWNED', `run ${run.lease.runId}: ${reason}`));
    run.done.catch(() => undefined);
  }

  private poolOf(run: ActiveRun, task: number): string {
    return (run.state.plan.spec.tasks[task] as TaskSpec).pool ?? '';
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

  private poolSlots(pool: string): number {
    if (pool === '') return Number.POSITIVE_INFINITY;
    return this.pools[pool] ?? 1;
  }

  /** Starts queued tasks while global and pool slots allow; records their start in the batch. */
  private pump(now: number): void {
    if (this.draining || this.stopped) return;
    for (const [pool, queue] of this.ready) {
      let used = this.poolUse.get(pool) ?? 0;
      const slots = this.poolSlots(pool);
      let taken = 0;
      while (taken < queue.length && this.runningCount < this.concurrency && used < slots) {
        const item = queue[taken++] as ReadyItem;
        const { run, task } = item;
        if (run.finished || run.running.has(task)) continue;
        const decision = decide(run.state, { type: 'attempt_started', task }, now, this.random);
        if (decision.events.length === 0) continue;
        const attempt = (run.state.tasks[task] as { attempt: number }).attempt;
        for (const e of decision.events) run.pending.events.push(e);
        run.pending.touched.add(task);
        run.pending.starts.push({ task, attempt });
        run.running.set(task, {
          task,
          attempt,
          controller: new AbortController(),
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

  private startAttempt(run: ActiveRun, task: number, attempt: number): void {
    const running = run.running.get(task);
    if (!running || running.attempt !== attempt) return;
    running.bodyStarted = true;
    const spec = run.state.plan.spec.tasks[task] as TaskSpec;
    const runId = run.lease.runId;
    const controller = running.controller;
    let timeout: NodeJS.Timeout | undefined;
    if (spec.timeoutMs !== null) {
      timeout = setTimeout(
        () =>
          controller.abort(
            new AttemptAbort('timeout', `attempt ${attempt} of ${spec.id} timed out after ${spec.timeoutMs} ms`),
          ),
        spec.timeoutMs,
      );
    }
    const writeLog = (stream: LogLine['stream'], text: string) => this.writeLog(run, running, spec.id, stream, text);
    const log = {
      info: (m: string) => writeLog('log', m),
      warn: (m: string) => writeLog('log', `WARN ${m}`),
      error: (m: string) => writeLog('log', `ERROR ${m}`),
    };
    const settle = (input: RunInput) => {
      if (timeout) clearTimeout(timeout);
      if (!run.running.has(task) || run.running.get(task) !== running) return;
      this.releaseSlot(run, task);
      if (controller.signal.reason instanceof AttemptAbort && controller.signal.reason.kind === 'lease_lost') {
        this.scheduleFlush();
        return;
      }
      this.submit(run, input);
      if (run.finished) this.scheduleFlush();
    };
    let context: AttemptContext;
    const executor = this.executors.get(spec.kind);
    try {
      if (!executor) {
        throw new BatonError('DEF_INVALID', `task ${spec.id}: no executor for kind "${spec.kind}"`, {
          hint: `Known kinds: ${this.executors.kinds().join(', ')}.`,
        });
      }
      const upstream: Record<string, unknown> = {};
      for (const u of run.state.plan.graph.upstream[task] as readonly number[]) {
        const ut = run.state.tasks[u];
        if (ut?.state === 'succeeded') upstream[run.state.plan.graph.ids[u] as string] = ut.output;
      }
      const scope = {
        params: run.params,
        tasks: upstreamScope(upstream),
        run: { id: runId, flow: run.state.plan.spec.name },
      };
      context = {
        runId,
        flow: run.state.plan.spec.name,
        taskId: spec.id,
        attempt,
        idempotencyKey: `${runId}/${spec.id}/0`,
        params: run.params,
        inputs: renderValue(spec.with, scope) as Record<string, unknown>,
        upstream,
        signal: controller.signal,
        log,
      };
    } catch (error) {
      settle({ type: 'attempt_failed', task, attempt, error: toTaskError(error) });
      return;
    }
    const started = executor.execute({
      task: spec,
      context,
      flowDir: run.flow.flowDir,
      resolveFunction: run.flow.resolveFunction,
      writeLog,
      killGraceMs: this.killGraceMs,
    });
    started.then(
      (output) => {
        this.faults?.crashPoint('after_body');
        const checked = this.checkOutput(spec.id, output);
        if ('error' in checked) settle({ type: 'attempt_failed', task, attempt, error: checked.error });
        else settle({ type: 'attempt_succeeded', task, attempt, output: checked.value });
      },
      (error: unknown) => {
        this.faults?.crashPoint('after_body');
        const reason = controller.signal.aborted ? controller.signal.reason : error;
        settle({ type: 'attempt_failed', task, attempt, error: toTaskError(reason) });
      },
    );
  }

  private checkOutput(taskId: string, output: unknown): { value: unknown } | { error: TaskError } {
    if (output === undefined) return { value: null };
    let text: string;
    try {
      text = JSON.stringify(output);
    } catch (error) {
      return {
        error: toTaskError(
          new BatonError(
            'TASK_OUTPUT_INVALID',
            `task ${taskId} returned a value that is not JSON: ${(error as Error).message}`,
          ),
        ),
      };
    }
    if (text === undefined) {
      return {
        error: toTaskError(
          new BatonError('TASK_OUTPUT_INVALID', `task ${taskId} returned a ${typeof output}, not JSON`),
        ),
      };
    }
    const bytes = Buffer.byteLength(text);
    if (bytes > this.outputLimit) {
      return {
        error: toTaskError(
          new BatonError(
            'TASK_OUTPUT_TOO_LARGE',
            `task ${taskId} returned ${bytes} bytes of output; the limit is ${this.outputLimit} bytes (limits.output_bytes)`,
          ),
        ),
      };
    }
    return { value: JSON.parse(text) as unknown };
  }

  private writeLog(
    run: ActiveRun,
    attempt: RunningAttempt,
    taskId: string,
    stream: LogLine['stream'],
    text: string,
  ): void {
    if (attempt.logTruncated || run.finished) return;
    attempt.logBytes += Buffer.byteLength(text) + 1;
    const at = this.clock.now();
    if (attempt.logBytes > this.logLimit) {
      attempt.logTruncated = true;
      text = `[log truncated at ${this.logLimit} bytes]`;
    }
    run.pending.logs.push({ runId: run.lease.runId, taskId, attempt: attempt.attempt, stream, at, text });
    this.scheduleFlush();
  }
}

function hasPending(p: Pending): boolean {
  return (
    p.events.length > 0 || p.logs.length > 0 || p.starts.length > 0 || p.commands.length > 0 || p.answered.length > 0
  );
}

function mergePending(older: Pending, newer: Pending): Pending {
  return {
    events: [...older.events, ...newer.events],
    touched: new Set([...older.touched, ...newer.touched]),
    logs: [...older.logs, ...newer.logs],
    answered: [...older.answered, ...newer.answered],
    starts: [...older.starts, ...newer.starts],
    commands: [...older.commands, ...newer.commands],
  };
}

function runPatch(state: RunState) {
  return { state: state.state, startedAt: state.startedAt, endedAt: state.endedAt, error: state.error };
}

function taskPatch(state: RunState, i: number): TaskRunPatch {
  const t = state.tasks[i];
  if (!t) throw new Error(`no task #${i}`);
  return {
    index: i,
    state: t.state,
    attempts: t.attempt,
    startedAt: t.startedAt,
    endedAt: t.endedAt,
    skipReason: t.skipReason,
    output: t.output,
    error: t.error,
  };
}

/** True if `owner` names a process on this host that no longer exists. */
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
