/**
 * The `dispatch` attempt mode: attempts go to the store's task queue for worker processes.
 * The commit that records an attempt's `task_started` also writes its queue row, with
 * everything a worker needs but the code; outcomes come back from the queue (harvested,
 * or pushed by the store's `results` wake-up) and the commit that records one deletes its
 * row. A cancel is a flag on the row, which the worker sees at its next renewal. The
 * engine's slots count attempts handed out, and are freed when the outcome arrives, the
 * attempt is cancelled, or its run ends or is dropped.
 */
import type { RunInput } from '../core/run-machine.js';
import { specPathOf, taskSpecOf } from '../core/run-topology.js';
import { boundTaskError } from '../core/truncation.js';
import { isPayloadRef } from '../core/payload-ref.js';
import type { Store, TaskOutcome } from '../store/store.js';
import type { ActiveRun, RunningAttempt } from './active-run.js';
import type { AttemptHost, AttemptMode } from './attempt-mode.js';
import { renderInputs, templateScope, toTaskError } from './attempt-runner.js';
import { extrasOf, scopeTasksOf, upstreamOutputsOf } from './run-scope.js';

export interface QueuedSettings {
  readonly store: Store;
  readonly errorLimitBytes: number;
}

/** Outcomes read per harvest round trip. */
const HARVEST_BATCH = 5000;

export class QueuedAttempts implements AttemptMode {
  /** Event and due times are compared across processes whose clocks may disagree. */
  readonly followsDatabaseClock = true;
  /** Queue rows handed to the run machine and not yet deleted by a commit. */
  private readonly harvesting = new Set<string>();
  private harvestRunning = false;
  private harvestAgain = false;

  constructor(
    private readonly host: AttemptHost,
    private readonly settings: QueuedSettings,
  ) {}

  /** Outcomes from workers already arrive in batches: the flush runs at once. */
  deferFlush(flush: () => void): void {
    queueMicrotask(flush);
  }

  subscribe(): (() => void)[] {
    const off = this.settings.store.subscribe?.('results', (outcomes) => {
      if (outcomes) for (const o of outcomes) this.acceptOutcome(o);
      else void this.harvest();
    });
    return off ? [off] : [];
  }

  /** A dispatcher's runs wait on remote workers: they are bounded by its concurrency of attempts alone. */
  claimRoom(): number {
    return Number.POSITIVE_INFINITY;
  }

  /** Puts the attempt on the task queue (in the same commit) with everything a worker needs but the code. */
  prepare(run: ActiveRun, task: number, attempt: number): void {
    const spec = taskSpecOf(run.state, task);
    const upstream = upstreamOutputsOf(run.state, task);
    const tasks = scopeTasksOf(run.state, task);
    const extras = extrasOf(run.state, task);
    // An output stored by reference is read back by the worker, which then renders the inputs.
    const byReference =
      Object.values(upstream).some(isPayloadRef) || Object.values(tasks).some((t) => isPayloadRef(t.output));
    let inputs: Record<string, unknown> | undefined;
    try {
      inputs = byReference
        ? undefined
        : renderInputs(spec, templateScope(run.lease.runId, run.state.plan.spec.name, run.params, tasks, extras));
    } catch (error) {
      // Nothing to hand out: the attempt fails here, right after its start is committed.
      const failure = toTaskError(error, this.settings.errorLimitBytes);
      queueMicrotask(() => this.host.submit(run, { type: 'attempt_failed', task, attempt, error: failure }));
      return;
    }
    run.pending.dispatches.push({
      task,
      taskId: extras.taskRunId,
      attempt,
      labels: spec.labels ?? [],
      payload: {
        params: run.params,
        ...(inputs ? { inputs } : {}),
        upstream,
        tasks,
        extras,
        specPath: specPathOf(run.state, task),
      },
    });
  }

  /** The commit that recorded the start also wrote the queue row: a worker takes it from there. */
  start(): void {}

  /** The body runs in a worker: flag the queue row; the worker stops it at its next renewal. */
  abort(run: ActiveRun, running: RunningAttempt): void {
    const { task, attempt } = running;
    this.host.releaseSlot(run, task);
    if (!run.finished) {
      run.pending.cancels.push({ task, attempt });
      this.host.scheduleFlush();
    }
  }

  /** Attempts still out were cancelled through the queue: their slots are free now. */
  finished(run: ActiveRun): void {
    this.releaseSlots(run);
  }

  /** Whoever owns the run next harvests what its workers report: the slots are free now. */
  dropped(run: ActiveRun): void {
    this.releaseSlots(run);
  }

  /**
   * The attempt may still be alive in a worker: its outcome (or its lapsed claim) comes
   * back through the queue.
   */
  resumeRunning(run: ActiveRun, task: number, attempt: number): void {
    this.host.occupySlot(run, task, attempt);
  }

  /** Attempts of a previous owner may have finished while nobody was listening. */
  activated(run: ActiveRun): void {
    if (run.running.size > 0) void this.harvest();
  }

  async harvest(): Promise<void> {
    if (this.host.stopped()) return;
    if (this.harvestRunning) {
      this.harvestAgain = true;
      return;
    }
    this.harvestRunning = true;
    try {
      do {
        this.harvestAgain = false;
        const ids = this.host.runIds();
        if (ids.length === 0) break;
        const outcomes = await this.settings.store.harvestTasks(ids, HARVEST_BATCH);
        for (const o of outcomes) this.acceptOutcome(o);
        if (outcomes.length >= HARVEST_BATCH) this.harvestAgain = true;
      } while (this.harvestAgain && !this.host.stopped());
    } catch (error) {
      this.host.diagnostic(`harvest failed: ${(error as Error).message}`);
    } finally {
      this.harvestRunning = false;
    }
  }

  forgetOutcome(id: string): void {
    this.harvesting.delete(id);
  }

  /** Attempts out in workers hold no slot here once their run ended or went elsewhere. */
  private releaseSlots(run: ActiveRun): void {
    for (const a of [...run.running.values()]) this.host.releaseSlot(run, a.task);
  }

  private acceptOutcome(o: TaskOutcome): void {
    if (this.harvesting.has(o.id)) return;
    const run = this.host.run(o.runId);
    if (!run || run.finished) return;
    this.harvesting.add(o.id);
    const running = run.running.get(o.task);
    if (running && running.attempt === o.attempt) this.host.releaseSlot(run, o.task);
    const input: RunInput =
      o.status === 'succeeded'
        ? o.cachedFrom === undefined
          ? { type: 'attempt_succeeded', task: o.task, attempt: o.attempt, output: o.output }
          : { type: 'attempt_succeeded', task: o.task, attempt: o.attempt, output: o.output, cachedFrom: o.cachedFrom }
        : o.status === 'failed'
          ? {
              type: 'attempt_failed',
              task: o.task,
              attempt: o.attempt,
              // A worker bounds what it reports; one with other settings (or an older Baton) may not.
              error: boundTaskError(
                o.error ?? { code: 'TASK_FAILED', message: 'the worker reported a failure', source: 'user' },
                this.settings.errorLimitBytes,
              ),
            }
          : { type: 'attempt_lost', task: o.task, attempt: o.attempt };
    this.host.submit(run, input, o.id);
  }
}
