/**
 * The trigger service: turns schedules and events into runs, durably. It records the
 * triggers the project's flows declare, fires time triggers (cron, interval) from their
 * cursors with the catch-up policy, hands event sources (webhook, file, s3, streams,
 * flow-to-flow) a way to create runs, and advances backfills (./backfill.ts) on its tick.
 *
 * Invariants
 * - Every run a trigger creates has a dedupe key (`<trigger>@<fire time>` for schedules, a
 *   source-specific key for events), and is created in the same transaction that records
 *   the firing and moves the trigger's cursor: a restart, a retried event or a second
 *   scheduler never creates the same run twice, and no fire time is acted on twice.
 * - A source acknowledges its event (offset, message, file marker) only after `emit` has
 *   returned, i.e. after the run is committed.
 * - Every firing is recorded: the run it created, or why it created none.
 * - Overlap policies and deadlines look at the runs of the schedule and of events, never
 *   at backfill runs of old intervals; deadlines only at the runs of their own trigger.
 */
import { BatonError } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { cutMarker, cutText } from '../core/truncation.js';
import type { OverlapPolicy, TimeTriggerConfig, TriggerSpec } from '../core/trigger-spec.js';
import { TIME_TRIGGER_KINDS, triggerId } from '../core/trigger-spec.js';
import { dueFirings, intervalParams, jitterDelay, scheduledRunKey } from '../core/schedule.js';
import type {
  FireTriggerInput,
  FiringInput,
  FiringResult,
  NewRun,
  RunRecord,
  Store,
  TriggerRecord,
} from '../store/store.js';
import { BackfillProcessor, isBackfillRun } from './backfill.js';
import { triggerSchedule } from './time-schedule.js';

/** What the service needs to know about a flow to create runs of it. */
export interface TriggerFlow {
  readonly name: string;
  readonly sourcePath: string;
  readonly triggers: readonly TriggerSpec[];
  readonly overlap: OverlapPolicy;
  /** Builds a validated run of the flow (params checked and filled); throws RUN_PARAM_INVALID. */
  newRun(
    params: Readonly<Record<string, unknown>>,
    options: { dedupeKey: string; triggerId: string; at: number; priority?: number },
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
  /** Reads this trigger's cursor (for sources that keep their own progress, e.g. files seen). */
  cursor(): Promise<unknown>;
  /** Whether the trigger is paused now; a source may hold its events back meanwhile. */
  paused(): Promise<boolean>;
  /**
   * Moves this trigger's cursor from `expected` (what `cursor()` returned) to `next`
   * without recording a firing; false, and nothing written, if it moved meanwhile.
   */
  setCursor(next: unknown, expected: unknown): Promise<boolean>;
  /** Those of these runs that still exist, e.g. to act once the run an event caused has succeeded. */
  runs(ids: readonly string[]): Promise<RunRecord[]>;
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
  /** Longest reason a history entry keeps, in bytes (an error's message may be any size). Default limits.error_bytes. */
  readonly errorLimitBytes?: number;
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
  private ticks = 0;
  private stopped = false;
  /** The start in flight, if any: `stop` waits for it. */
  private starting: Promise<void> | undefined;
  /** Backfills (`baton backfill`) advance on the same tick as the schedules. */
  readonly backfills: BackfillProcessor;

  constructor(private readonly o: TriggerServiceOptions) {
    this.now = o.now ?? (() => Date.now());
    this.random = o.random ?? Math.random;
    this.backfills = new BackfillProcessor({
      store: o.store,
      flows: o.flows,
      now: this.now,
      onDiagnostic: (m) => this.diagnostic(m),
    });
  }

  private diagnostic(message: string): void {
    this.o.onDiagnostic?.(message);
  }

  /** Records the project's triggers, starts event sources, and evaluates time triggers until stopped. */
  async start(): Promise<void> {
    this.stopped = false;
    const starting = this.startOnce();
    this.starting = starting.catch(() => undefined);
    await starting;
  }

  private async startOnce(): Promise<void> {
    await this.sync();
    if (this.stopped) return;
    await this.startSources();
    if (this.stopped) return;
    const every = this.o.tickMs ?? 1000;
    this.timer = setInterval(() => void this.tick(), every);
    await this.tick();
  }

  /**
   * Stops evaluating triggers and stops the event sources. A `start` still in flight (a
   * process told to stop just as it became leader) ends first: it would otherwise set its
   * timer, or start a source, after this returned, and keep the process alive.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.starting;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    for (const [id, source] of this.running) {
      await source.stop().catch((error: unknown) => this.diagnostic(`stopping ${id}: ${(error as Error).message}`));
    }
    this.running.clear();
  }

  /** Records the triggers every flow declares now. */
  async sync(): Promise<void> {
    const now = this.now();
    const declared = new Set<string>();
    for (const flow of await this.o.flows.list()) {
      declared.add(flow.name);
      await this.o.store.syncTriggers(flow.name, flow.sourcePath, flow.triggers, now);
    }
    // Triggers of flows that no longer declare any, or whose file is gone, are dropped.
    for (const trigger of await this.o.store.listTriggers()) {
      if (declared.has(trigger.flow)) continue;
      const flow = await this.o.flows.get(trigger.flow, trigger.sourcePath);
      if (!flow || flow.triggers.length === 0)
        await this.o.store.syncTriggers(trigger.flow, trigger.sourcePath, [], now);
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
      paused: async () => (await this.o.store.getTrigger(trigger.id))?.paused ?? true,
      setCursor: async (next, expected) => {
        const current = await this.o.store.getTrigger(trigger.id);
        if (!current) return false;
        const moved = await this.fire({
          triggerId: trigger.id,
          expectedCursor: expected,
          cursor: next,
          nextFireAt: current.nextFireAt,
          firings: [],
        });
        return moved !== null;
      },
      runs: async (ids) =>
        (await Promise.all(ids.map((id) => this.o.store.getRun(id)))).filter((r): r is RunRecord => r !== null),
      now: this.now,
      diagnostic: (m) => this.diagnostic(`trigger ${trigger.id}: ${m}`),
    };
  }

  /** Records firings through the store, each reason within limits.error_bytes. */
  private fire(input: FireTriggerInput): Promise<FiringResult[] | null> {
    const limit = this.o.errorLimitBytes ?? LIMITS.error_bytes.default;
    const marker = (bytes: number) => ` … ${cutMarker('reason', limit, 'limits.error_bytes')(bytes)}`;
    const firings = input.firings.map((f) => {
      const reason = cutText(f.reason, limit, marker);
      return reason === f.reason ? f : { ...f, reason };
    });
    return this.o.store.fireTrigger({ ...input, firings });
  }

  /** Appends firings without creating runs (errors, refusals). */
  private async record(trigger: TriggerRecord, firings: FiringInput[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.o.store.getTrigger(trigger.id);
      if (!current) return;
      const done = await this.fire({
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
    const active: Pick<RunRecord, 'id'>[] = (await this.o.store.activeRuns(flow.name)).filter((r) => !isBackfillRun(r));
    for (const [order, event] of events.entries()) {
      let run: NewRun;
      try {
        run = flow.newRun(
          { ...trigger.spec.params, ...event.params },
          { dedupeKey: event.dedupeKey, triggerId: id, at: at + order },
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
      // A run made earlier in this batch is active for the events after it.
      if (overlap.run) active.push({ id: overlap.run.id });
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
    active: readonly Pick<RunRecord, 'id'>[],
    run: NewRun,
    reason: string,
    at: number,
  ): FiringInput {
    if (flow.overlap === 'queue') {
      // One at a time: the run waits in the queue until the active ones end. The limit is
      // set even when nothing is active now, so that runs created together (catch-up, a
      // batch of events) also take turns.
      return {
        at,
        outcome: 'run',
        reason: active.length > 0 ? `${reason} (queued behind ${active.length} active run(s))` : reason,
        run: { ...run, maxActiveRuns: 1 },
      };
    }
    if (active.length === 0 || flow.overlap === 'allow') return { at, outcome: 'run', reason, run };
    if (flow.overlap === 'skip') {
      return {
        at,
        outcome: 'skipped',
        reason: `${reason}: skipped, run ${active[0]?.id} of ${flow.name} is still active (overlap: skip)`,
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
      const result = await this.fire({
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
      await this.backfills.tick();
      // Sources that could not start (a broker down at start-up) are tried again now and then.
      if (++this.ticks % 10 === 0) await this.startSources();
    } catch (error) {
      // The store is away (STORE_UNAVAILABLE): the next tick tries again. Called from a
      // timer, a rejection here would end the process.
      this.diagnostic(`triggers: ${(error as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private async tickTrigger(trigger: TriggerRecord): Promise<void> {
    const config = trigger.spec.config as unknown as TimeTriggerConfig;
    const schedule = triggerSchedule(trigger.spec);
    const cursor = (trigger.cursor as TimeCursor | null) ?? { last: null };
    const now = this.now();
    const origin = config.startAt ?? trigger.registeredAt;
    // Jitter delays creation, never the fire time the run is for.
    const horizon = now - jitterDelay(trigger.id, config.jitterMs);
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
      // Backfill runs of old intervals do not count as overlapping the schedule.
      const active: Pick<RunRecord, 'id'>[] =
        due.fire.length > 0 ? (await this.o.store.activeRuns(flow.name)).filter((r) => !isBackfillRun(r)) : [];
      const newest = due.fire[due.fire.length - 1];
      for (const [order, fireTime] of due.fire.entries()) {
        const reason = `${trigger.kind} fire time ${ISO(fireTime)}`;
        if (flow.overlap === 'cancel_previous' && fireTime !== newest) {
          // It would be created only to be cancelled by the next one: recorded as superseded.
          firings.push({
            at: now,
            outcome: 'skipped',
            reason: `${reason}: superseded by fire time ${ISO(newest as number)} (overlap: cancel_previous)`,
          });
          continue;
        }
        let run: NewRun;
        try {
          run = flow.newRun(
            { ...trigger.spec.params, ...intervalParams(schedule, fireTime) },
            // One ms apart, so that catch-up runs are claimed in the order of their fire times.
            { dedupeKey: scheduledRunKey(trigger.id, fireTime), triggerId: trigger.id, at: now + order },
          );
        } catch (error) {
          firings.push({ at: now, outcome: 'error', reason: `${reason}: ${(error as Error).message}` });
          continue;
        }
        const firing = this.overlapFiring(flow, active, run, reason, now);
        firings.push(firing);
        // A run made by this tick is active for the fire times after it (overlap: skip).
        if (firing.run) active.push({ id: firing.run.id });
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
    const result = await this.fire({
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
      // Only runs this trigger's schedule made: manual runs, other triggers' runs and
      // backfills of old intervals have no deadline here.
      if (run.triggerId !== trigger.id) continue;
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
