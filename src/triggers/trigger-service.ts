/**
 * The trigger service: turns schedules and events into runs, durably. It records the
 * triggers the project's flows declare, fires time triggers (cron, interval) from their
 * cursors with the catch-up policy, and hands event sources (webhook, file, s3, streams,
 * flow-to-flow) a way to create runs.
 *
 * Invariants
 * - Every run a trigger creates has a dedupe key (`<trigger>@<fire time>` for schedules, a
 *   source-specific key for events), and is created in the same transaction that records
 *   the firing and moves the trigger's cursor: a restart, a retried event or a second
 *   scheduler never creates the same run twice, and no fire time is acted on twice.
 * - A source acknowledges its event (offset, message, file marker) only after `emit` has
 *   returned, i.e. after the run is committed.
 * - Every firing is recorded: the run it created, or why it created none.
 */
import { BatonError } from '../core/errors.js';
import type {
  CronTriggerConfig,
  IntervalTriggerConfig,
  OverlapPolicy,
  TimeTriggerConfig,
  TriggerSpec,
} from '../core/trigger-spec.js';
import { TIME_TRIGGER_KINDS, triggerId } from '../core/trigger-spec.js';
import type { Schedule } from '../core/schedule.js';
import { dueFirings } from '../core/schedule.js';
import type { FiringInput, FiringResult, NewRun, RunRecord, Store, TriggerRecord } from '../store/store.js';
import { cronSchedule, intervalSchedule } from './time-schedule.js';

/** What the service needs to know about a flow to create runs of it. */
export interface TriggerFlow {
  readonly name: string;
  readonly sourcePath: string;
  readonly triggers: readonly TriggerSpec[];
  readonly overlap: OverlapPolicy;
  /** Builds a validated run of the flow (params checked and filled); throws RUN_PARAM_INVALID. */
  newRun(
    params: Readonly<Record<string, unknown>>,
    options: { dedupeKey: string; triggerId: string; at: number },
  ): NewRun;
}

export interface TriggerFlows {
  /** Every flow of the project that declares triggers. */
  list(): Promise<TriggerFlow[]>;
  /** One flow, from the file that declares it (or by name in the project), or null. */
  get(name: string, sourcePath?: string): Promise<TriggerFlow | null>;
}

/** An event a source turns into a run. */
export interface TriggerEvent {
  /** Unique per event; a redelivered event has the same key and creates no second run. */
  readonly dedupeKey: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Why the trigger fired, for the firing history. */
  readonly reason: string;
}

export interface EmitResult {
  readonly outcome: FiringResult['outcome'] | 'refused';
  readonly runId: string | null;
  /** For `refused`: what was wrong with the event (bad params); nothing was created. */
  readonly error?: BatonError;
}

/** What a running source may do. */
export interface SourceContext {
  readonly trigger: TriggerRecord;
  /**
   * Creates the runs (or finds them by dedupe key) and records the firings; acknowledge
   * after it returns. With `cursor`, the trigger's cursor moves in the same transaction.
   */
  emit(events: readonly TriggerEvent[], options?: { readonly cursor?: unknown }): Promise<EmitResult[]>;
  /** Reads and moves this trigger's cursor (for sources that keep their own progress, e.g. files seen). */
  cursor(): Promise<unknown>;
  now(): number;
  diagnostic(message: string): void;
}

export interface TriggerSource {
  stop(): Promise<void>;
}

/** Starts a source for a trigger; each event kind registers one. */
export type TriggerSourceFactory = (context: SourceContext) => Promise<TriggerSource>;

export interface TriggerServiceOptions {
  readonly store: Store;
  readonly flows: TriggerFlows;
  readonly sources?: ReadonlyMap<string, TriggerSourceFactory>;
  /** Current time in ms (database clock in scale-out deployments). */
  readonly now?: () => number;
  readonly random?: () => number;
  /** How often time triggers are evaluated. Default 1000 ms. */
  readonly tickMs?: number;
  /** How late a fire time may be and still count as on time (not missed). Default 60 s. */
  readonly graceMs?: number;
  readonly onDiagnostic?: (message: string) => void;
}

const ISO = (ms: number) => new Date(ms).toISOString();

interface TimeCursor {
  /** The last fire time acted on. */
  readonly last: number | null;
  /** Runs already reported for a missed deadline. */
  readonly missed?: readonly string[];
}

export class TriggerService {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly running = new Map<string, TriggerSource>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;

  constructor(private readonly o: TriggerServiceOptions) {
    this.now = o.now ?? (() => Date.now());
    this.random = o.random ?? Math.random;
  }

  private diagnostic(message: string): void {
    this.o.onDiagnostic?.(message);
  }

  /** Records the project's triggers, starts event sources, and evaluates time triggers until stopped. */
  async start(): Promise<void> {
    await this.sync();
    await this.startSources();
    const every = this.o.tickMs ?? 1000;
    this.timer = setInterval(() => void this.tick(), every);
    await this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    for (const [id, source] of this.running) {
      await source.stop().catch((error: unknown) => this.diagnostic(`stopping ${id}: ${(error as Error).message}`));
    }
    this.running.clear();
  }

  /** Records the triggers every flow declares now. */
  async sync(): Promise<void> {
    const now = this.now();
    for (const flow of await this.o.flows.list()) {
      await this.o.store.syncTriggers(flow.name, flow.sourcePath, flow.triggers, now);
    }
  }

  private async startSources(): Promise<void> {
    for (const trigger of await this.o.store.listTriggers()) {
      if (TIME_TRIGGER_KINDS.has(trigger.kind) || this.running.has(trigger.id)) continue;
      const factory = this.o.sources?.get(trigger.kind);
      if (!factory) continue;
      try {
        this.running.set(trigger.id, await factory(this.contextFor(trigger)));
      } catch (error) {
        this.diagnostic(`trigger ${trigger.id} could not start: ${(error as Error).message}`);
        await this.record(trigger, [
          { at: this.now(), outcome: 'error', reason: `could not start: ${(error as Error).message}` },
        ]);
      }
    }
  }

  private contextFor(trigger: TriggerRecord): SourceContext {
    return {
      trigger,
      emit: (events, options) => this.emit(trigger.id, events, options),
      cursor: async () => (await this.o.store.getTrigger(trigger.id))?.cursor ?? null,
      now: this.now,
      diagnostic: (m) => this.diagnostic(`trigger ${trigger.id}: ${m}`),
    };
  }

  /** Appends firings without creating runs (errors, refusals). */
  private async record(trigger: TriggerRecord, firings: FiringInput[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.o.store.getTrigger(trigger.id);
      if (!current) return;
      const done = await this.o.store.fireTrigger({
        triggerId: trigger.id,
        expectedCursor: current.cursor,
        cursor: current.cursor,
        nextFireAt: current.nextFireAt,
        firings,
      });
      if (done) return;
    }
  }

  /**
   * Creates runs for events of a trigger (a webhook call, a file, a message…), applying the
   * flow's overlap policy; returns one result per event. Paused triggers refuse events.
   */
  async emit(
    id: string,
    events: readonly TriggerEvent[],
    options: { readonly cursor?: unknown } = {},
  ): Promise<EmitResult[]> {
    const trigger = await this.o.store.getTrigger(id);
    if (!trigger) throw new BatonError('FLOW_NOT_FOUND', `no trigger ${id}`);
    const flow = await this.o.flows.get(trigger.flow, trigger.sourcePath);
    if (!flow) throw new BatonError('FLOW_NOT_FOUND', `trigger ${id}: flow ${trigger.flow} is gone`);
    const at = this.now();
    if (trigger.paused) {
      await this.record(trigger, [
        { at, outcome: 'skipped', reason: `paused; ${events.length} event(s) not turned into runs` },
      ]);
      return events.map(() => ({
        outcome: 'refused' as const,
        runId: null,
        error: new BatonError('USAGE', `trigger ${id} is paused`, {
          hint: `Resume it with baton triggers resume ${id}.`,
        }),
      }));
    }
    const results: EmitResult[] = [];
    const firings: FiringInput[] = [];
    const slots: number[] = [];
    const active = await this.o.store.activeRuns(flow.name);
    for (const event of events) {
      let run: NewRun;
      try {
        run = flow.newRun(
          { ...trigger.spec.params, ...event.params },
          { dedupeKey: event.dedupeKey, triggerId: id, at },
        );
      } catch (error) {
        const e = error instanceof BatonError ? error : new BatonError('RUN_PARAM_INVALID', (error as Error).message);
        firings.push({ at, outcome: 'error', reason: `${event.reason}: ${e.message}` });
        slots.push(-1);
        results.push({ outcome: 'refused', runId: null, error: e });
        continue;
      }
      const overlap = this.overlapFiring(flow, active, run, event.reason, at);
      firings.push(overlap);
      slots.push(results.length);
      results.push({ outcome: overlap.outcome === 'run' ? 'run' : 'skipped', runId: null });
    }
    const stored = await this.fireWithRetry(trigger, firings, options);
    stored.forEach((r, i) => {
      const slot = slots[i] as number;
      if (slot >= 0) results[slot] = { outcome: r.outcome, runId: r.runId };
    });
    return results;
  }

  /** The firing for a run the trigger wants to create, after the flow's overlap policy. */
  private overlapFiring(
    flow: TriggerFlow,
    active: readonly RunRecord[],
    run: NewRun,
    reason: string,
    at: number,
  ): FiringInput {
    if (active.length === 0 || flow.overlap === 'allow') return { at, outcome: 'run', reason, run };
    if (flow.overlap === 'skip') {
      return {
        at,
        outcome: 'skipped',
        reason: `${reason}: skipped, run ${active[0]?.id} of ${flow.name} is still active (overlap: skip)`,
      };
    }
    if (flow.overlap === 'queue') {
      // One at a time: the new run waits in the queue until the active ones end.
      return {
        at,
        outcome: 'run',
        reason: `${reason} (queued behind ${active.length} active run(s))`,
        run: { ...run, maxActiveRuns: 1 },
      };
    }
    return {
      at,
      outcome: 'run',
      reason: `${reason} (cancelling ${active.length} active run(s): overlap cancel_previous)`,
      run,
      cancelRuns: active.map((r) => r.id),
    };
  }

  private async fireWithRetry(
    trigger: TriggerRecord,
    firings: FiringInput[],
    options: { readonly cursor?: unknown },
  ): Promise<FiringResult[]> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = attempt === 0 ? trigger : await this.o.store.getTrigger(trigger.id);
      if (!current) return [];
      const result = await this.o.store.fireTrigger({
        triggerId: trigger.id,
        expectedCursor: current.cursor,
        cursor: 'cursor' in options ? options.cursor : current.cursor,
        nextFireAt: current.nextFireAt,
        firings,
      });
      if (result) return result;
    }
    throw new BatonError(
      'STORE_CONFLICT',
      `trigger ${trigger.id}: its cursor kept moving; the events were not recorded`,
    );
  }

  /** Evaluates every time trigger once. */
  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      for (const trigger of await this.o.store.listTriggers()) {
        if (!TIME_TRIGGER_KINDS.has(trigger.kind) || trigger.paused) continue;
        try {
          await this.tickTrigger(trigger);
        } catch (error) {
          this.diagnostic(`trigger ${trigger.id}: ${(error as Error).message}`);
        }
      }
    } finally {
      this.ticking = false;
    }
  }

  private scheduleOf(trigger: TriggerRecord): Schedule {
    if (trigger.kind === 'cron') {
      const c = trigger.spec.config as unknown as CronTriggerConfig;
      return cronSchedule(c.cron, c.timezone);
    }
    const c = trigger.spec.config as unknown as IntervalTriggerConfig;
    return intervalSchedule(c.everyMs, c.startAt ?? 0);
  }

  private async tickTrigger(trigger: TriggerRecord): Promise<void> {
    const config = trigger.spec.config as unknown as TimeTriggerConfig;
    const schedule = this.scheduleOf(trigger);
    const cursor = (trigger.cursor as TimeCursor | null) ?? { last: null };
    const now = this.now();
    const origin = config.startAt ?? trigger.registeredAt;
    // Jitter delays creation, never the fire time the run is for.
    const horizon = now - config.jitterMs;
    const due = dueFirings({
      schedule,
      cursor: cursor.last,
      origin: config.startAt !== null ? origin - 1 : origin,
      now: Math.max(horizon, 0),
      catchup: config.catchup,
      maxCatchup: config.maxCatchup,
      endAt: config.endAt,
      graceMs: this.o.graceMs ?? 60_000,
    });
    const flow = await this.o.flows.get(trigger.flow, trigger.sourcePath);
    const firings: FiringInput[] = [];
    if (due.skippedCount > 0) {
      firings.push({
        at: now,
        outcome: 'skipped',
        reason: `${due.skippedCount} missed fire time(s) skipped by catch-up policy ${config.catchup} (latest skipped ${ISO(due.skipped[0] as number)})`,
      });
    }
    if (flow) {
      const active = due.fire.length > 0 ? await this.o.store.activeRuns(flow.name) : [];
      for (const fireTime of due.fire) {
        const previous = schedule.previous(fireTime, 1)[0] ?? fireTime;
        const params = { interval_start: ISO(previous), interval_end: ISO(fireTime) };
        const reason = `${trigger.kind} fire time ${ISO(fireTime)}`;
        let run: NewRun;
        try {
          run = flow.newRun(
            { ...trigger.spec.params, ...params },
            { dedupeKey: `${trigger.id}@${ISO(fireTime)}`, triggerId: trigger.id, at: now },
          );
        } catch (error) {
          firings.push({ at: now, outcome: 'error', reason: `${reason}: ${(error as Error).message}` });
          continue;
        }
        firings.push(this.overlapFiring(flow, active, run, reason, now));
      }
    } else if (due.fire.length > 0) {
      firings.push({
        at: now,
        outcome: 'error',
        reason: `flow ${trigger.flow} is gone; ${due.fire.length} fire time(s) dropped`,
      });
    }
    const missed =
      config.deadlineMs !== null
        ? await this.deadlineFirings(trigger, config.deadlineMs, cursor, now)
        : { firings: [], ids: [] };
    firings.push(...missed.firings);
    const nextCursor: TimeCursor = {
      last: due.cursor,
      ...(missed.ids.length > 0 || cursor.missed
        ? { missed: [...(cursor.missed ?? []), ...missed.ids].slice(-200) }
        : {}),
    };
    if (firings.length === 0 && nextCursor.last === cursor.last && due.nextFireAt === trigger.nextFireAt) return;
    const result = await this.o.store.fireTrigger({
      triggerId: trigger.id,
      expectedCursor: trigger.cursor,
      cursor: nextCursor,
      nextFireAt: due.nextFireAt,
      firings,
    });
    if (!result) this.diagnostic(`trigger ${trigger.id}: another scheduler moved it first; nothing fired twice`);
  }

  /** Runs of this trigger still going past their deadline, not reported before. */
  private async deadlineFirings(
    trigger: TriggerRecord,
    deadlineMs: number,
    cursor: TimeCursor,
    now: number,
  ): Promise<{ firings: FiringInput[]; ids: string[] }> {
    const reported = new Set(cursor.missed ?? []);
    const firings: FiringInput[] = [];
    const ids: string[] = [];
    for (const run of await this.o.store.activeRuns(trigger.flow)) {
      const end = typeof run.params.interval_end === 'string' ? Date.parse(run.params.interval_end) : NaN;
      if (Number.isNaN(end) || reported.has(run.id) || now <= end + deadlineMs) continue;
      ids.push(run.id);
      firings.push({
        at: now,
        outcome: 'deadline_missed',
        reason: `run ${run.id} for ${ISO(end)} is still ${run.state} ${Math.round((now - end) / 1000)} s after its fire time (deadline ${Math.round(deadlineMs / 1000)} s)`,
        runId: run.id,
      });
    }
    return { firings, ids };
  }

  /** Which trigger ids the service knows, for listing. */
  static idOf(flow: string, name: string): string {
    return triggerId(flow, name);
  }
}
