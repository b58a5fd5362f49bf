/**
 * Baton's testing kit: run your flows in your own test runner, against a real temporary
 * store, on a virtual clock. Sleeps, retry backoff, timeouts and waits with a timeout
 * complete instantly; events and approvals are sent from the test; and every task's
 * state, attempts and output can be asserted.
 *
 * @example
 * import { testFlow } from 'baton-orchestrator/testing';
 * import flow from '../flows/orders.js';
 *
 * const t = await testFlow(flow, { params: { order: 'o-1' } });
 * expect(await t.settle()).toBe('waiting');          // parked on wait_for_event
 * await t.signal('paid', { amount: 42 }, { key: 'o-1' });
 * expect(await t.settle()).toBe('succeeded');
 * expect(t.task('wait_paid').output).toEqual({ amount: 42 });
 * await t.close();
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import type { FlowSpec } from '../core/model.js';
import type { FlowPlan, RunEvent, RunState, TaskRun } from '../core/run-machine.js';
import { compilePlan, foldRun } from '../core/run-machine.js';
import { taskIdOf, taskIndexOf } from '../core/run-topology.js';
import type { RunStateName, TaskStateName } from '../core/states.js';
import { isTerminalRun } from '../core/states.js';
import type { FlowDefinition } from '../define/builder.js';
import { isFlowDefinition } from '../define/builder.js';
import { resolveConfig } from '../app/config.js';
import type { LoadedFlow } from '../app/flow-catalog.js';
import { FlowCatalog, flowVersion } from '../app/flow-catalog.js';
import { buildRun, createRun } from '../app/runs.js';
import type { Runtime } from '../app/runtime.js';
import { createExecutors, createRuntime } from '../app/runtime.js';
import type { ChildRunLauncher, Engine, FlowResolver, ResolvedFlow } from '../engine/engine.js';
import type { Store } from '../store/store.js';
import { jitterDelay } from '../core/schedule.js';
import { TIME_TRIGGER_KINDS } from '../core/trigger-spec.js';
import type { TriggerFlow, TriggerFlows, TriggerService } from '../triggers/trigger-service.js';
import type { NewRun } from '../store/store.js';
import { readDuration } from '../core/duration.js';
import { VirtualClock } from './virtual-clock.js';

export { VirtualClock } from './virtual-clock.js';

/** A flow as tests name it: a definition from `defineFlow`, or the path of a flow file. */
export type FlowUnderTest = FlowDefinition | string;

export interface TestKitOptions {
  /** Other flows the tested flows start as subflows. */
  readonly flows?: readonly FlowUnderTest[];
  /** Where virtual time starts. Default 2030-01-01T00:00:00Z. */
  readonly startAt?: number | string | Date;
  /** A PostgreSQL URL to run against instead of a temporary SQLite file (the database must exist). */
  readonly databaseUrl?: string;
  /** Attempt bodies running at once. Default: `concurrency` of baton.yaml's defaults (32). */
  readonly concurrency?: number;
}

export interface RunTestOptions {
  readonly params?: Readonly<Record<string, unknown>>;
}

/** A task run as a test sees it. */
export interface TaskView {
  readonly id: string;
  readonly state: TaskStateName;
  readonly attempts: number;
  readonly output: unknown;
  readonly error: TaskRun['error'];
  readonly skipReason: string | null;
  /** What a waiting task waits for. */
  readonly wait: TaskRun['wait'];
}

export interface SettleOptions {
  /** Timer steps before giving up (a retry loop that never ends). Default 10,000. */
  readonly maxSteps?: number;
  /**
   * Let the timeouts of event and approval waits fire instead of stopping at them: to
   * test what happens when nobody answers. Default false.
   */
  readonly fireWaitTimeouts?: boolean;
}

/** What `settle` ends on: the run's final state, or `waiting` for something only the test can send. */
export type SettleResult = RunStateName | 'waiting';

interface KnownFlow {
  readonly loaded: LoadedFlow;
  readonly flowDir: string;
}

/**
 * A temporary store and an engine on a virtual clock, for one test file or one test. The
 * store, the engine and the configuration (its limits included) come from the runtime that
 * every Baton process opens, with the defaults of baton.yaml; runs are created by the same
 * use case as `baton run`'s.
 */
export class TestKit {
  readonly clock: VirtualClock;
  readonly store: Store;
  readonly engine: Engine;
  private readonly flows = new Map<string, KnownFlow>();
  private readonly tempDir: string | null;
  /** Flows whose time triggers run on the virtual clock (`schedule`). */
  private readonly scheduled = new Set<string>();
  private triggers: TriggerService | null = null;

  private constructor(
    private readonly rt: Runtime,
    clock: VirtualClock,
    tempDir: string | null,
  ) {
    this.store = rt.store;
    this.clock = clock;
    this.tempDir = tempDir;
    const resolver: FlowResolver = {
      resolve: async (flow, version) => this.resolved(flow, version),
      plan: async (flow, version) => (await this.resolved(flow, version)).plan,
    };
    const children: ChildRunLauncher = {
      launch: async (request) => {
        const known = this.flows.get(request.flow);
        if (!known) {
          throw new BatonError('FLOW_NOT_FOUND', `subflow ${request.parentTask}: no flow named ${request.flow}`, {
            hint: 'Pass the child flow to the kit: createTestKit({ flows: [child] }).',
          });
        }
        const id = await this.createRun(
          known,
          request.params,
          `child:${request.parentRunId}/${request.parentTask}/${request.attempt}`,
          {
            runId: request.parentRunId,
            task: request.parentTask,
            // baton.yaml's limits: a recursive flow stops in a test as it would in production.
            limits: { depth: this.rt.config.subflowDepth, childRuns: this.rt.config.childRunsPerRun },
          },
        );
        return id;
      },
    };
    this.engine = rt.createEngine({ flows: resolver, clock, children, pollMs: 20 });
  }

  /** Opens a kit: a temporary SQLite store (or the given PostgreSQL database) and a virtual clock. */
  static async open(options: TestKitOptions = {}): Promise<TestKit> {
    const clock = new VirtualClock(options.startAt);
    const tempDir = options.databaseUrl ? null : mkdtempSync(join(tmpdir(), 'baton-test-'));
    const database = options.databaseUrl ?? join(tempDir as string, 'baton.db');
    // The defaults of a project without baton.yaml, read from no environment: a test sees
    // the limits a fresh project has, whatever the machine's BATON_* variables say.
    const config = resolveConfig(
      { dir: tempDir ?? process.cwd(), configFile: null, marker: 'none' },
      {},
      {},
      { database, ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}) },
    );
    let rt: Runtime;
    try {
      // A few connections: test files open many kits, in parallel, on one PostgreSQL server.
      rt = await createRuntime({ ...config, poolSize: 4 }, { env: {} });
    } catch (error) {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
      throw error;
    }
    const kit = new TestKit(rt, clock, tempDir);
    for (const flow of options.flows ?? []) await kit.add(flow);
    return kit;
  }

  /** Makes a flow known to the kit (as a subflow target, or to run). Returns its name. */
  async add(flow: FlowUnderTest): Promise<string> {
    const known = await loadFlow(flow);
    this.flows.set(known.loaded.spec.name, known);
    return known.loaded.spec.name;
  }

  /**
   * Puts the flow's time triggers (cron, interval) on the virtual clock: `advance` then
   * creates a run at every fire time it passes, and the kit executes them.
   */
  async schedule(flow: FlowUnderTest): Promise<void> {
    const name = await this.add(flow);
    const spec = (this.flows.get(name) as KnownFlow).loaded.spec;
    if (!(spec.triggers ?? []).some((t) => TIME_TRIGGER_KINDS.has(t.kind))) {
      throw new BatonError('USAGE', `flow ${name} has no cron or interval trigger to schedule`, {
        hint: 'Declare one under `triggers:` (YAML) or `triggers` in defineFlow.',
      });
    }
    this.scheduled.add(name);
    if (!this.triggers) {
      this.triggers = this.rt.createTriggerService({
        flows: this.triggerFlows(),
        // Time triggers only: event sources (files, streams) are not started in a test.
        sources: new Map(),
        now: () => this.clock.now(),
        random: () => 0,
        // Ticked by `advance`, not by a timer.
        tickMs: 2 ** 31 - 1,
      });
      // Runs made by triggers are queued: the engine claims them like a worker.
      this.engine.startWorker();
    }
    await this.triggers.sync();
    await this.triggers.tick();
  }

  /**
   * Moves virtual time forward by a duration, stopping at every due timer and fire time on
   * the way so that runs react in order, and lets the engine come to rest at the end.
   */
  async advance(by: number | string): Promise<void> {
    const reading = readDuration(by);
    if (!reading.ok) throw new BatonError('USAGE', `advance: ${reading.message}`, { hint: reading.hint });
    const ms = reading.ms;
    const target = this.clock.now() + ms;
    for (let step = 0; step < 100_000; step++) {
      await this.quiesce();
      const next = Math.min(target, this.clock.nextDue() ?? target, (await this.nextFireTime()) ?? target);
      this.clock.advanceTo(Math.max(next, this.clock.now()));
      await this.triggers?.tick();
      await this.quiesce();
      if (next >= target) return;
    }
    throw new BatonError('USAGE', `advance: more than 100,000 steps before ${new Date(target).toISOString()}`, {
      hint: 'A schedule or retry loop fires too often for this span; advance by less.',
    });
  }

  /** Runs of a flow, oldest first (those its schedules made included). */
  async runsOf(flow: string | FlowDefinition): Promise<TestRun[]> {
    const name = typeof flow === 'string' ? flow : flow.name;
    const runs = await this.store.listRuns({ flow: name });
    return runs.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id)).map((r) => this.attach(r.id));
  }

  private async nextFireTime(): Promise<number | null> {
    if (!this.triggers) return null;
    let next: number | null = null;
    for (const t of await this.store.listTriggers()) {
      if (!TIME_TRIGGER_KINDS.has(t.kind) || t.paused || t.nextFireAt === null) continue;
      const jitterMs = (t.spec.config as { jitterMs?: number }).jitterMs ?? 0;
      const at = t.nextFireAt + jitterDelay(t.id, jitterMs);
      if (next === null || at < next) next = at;
    }
    return next;
  }

  private triggerFlows(): TriggerFlows {
    const toFlow = (known: KnownFlow): TriggerFlow => ({
      name: known.loaded.spec.name,
      sourcePath: known.loaded.sourcePath,
      triggers: known.loaded.spec.triggers ?? [],
      overlap: known.loaded.spec.overlap ?? 'allow',
      newRun: (params, o) =>
        buildRun(this.rt.config, known.loaded, {
          params,
          dedupeKey: o.dedupeKey,
          triggerId: o.triggerId,
          now: o.at,
          ...(o.priority !== undefined ? { priority: o.priority } : {}),
        }),
    });
    return {
      list: async () => [...this.scheduled].map((name) => toFlow(this.flows.get(name) as KnownFlow)),
      get: async (name) => (this.scheduled.has(name) ? toFlow(this.flows.get(name) as KnownFlow) : null),
    };
  }

  /** Starts a run of the flow and returns its handle; nothing moves until `settle`. */
  async run(flow: FlowUnderTest, options: RunTestOptions = {}): Promise<TestRun> {
    const name = await this.add(flow);
    const id = await this.createRun(this.flows.get(name) as KnownFlow, options.params ?? {}, null, null);
    return this.attach(id);
  }

  /** A handle on an existing run (a child run, say). */
  attach(runId: string): TestRun {
    return new TestRun(this, runId);
  }

  /** Stops the engine and removes the temporary store. */
  async close(): Promise<void> {
    await this.triggers?.stop();
    await this.rt.close();
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }

  /** Waits (in real time, bounded) until the engine has nothing left to do without a timer or the test. */
  async quiesce(limitMs = 30_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    // Idle twice in a row across a poll: child runs and requests are only seen by a poll.
    for (let calm = 0; calm < 2;) {
      if (Date.now() > deadline) {
        throw new BatonError('RUN_OWNED', `the engine did not come to rest within ${limitMs} ms`, {
          hint: 'A task body may be stuck; give it a timeout, or raise the limit.',
        });
      }
      await new Promise((r) => setImmediate(r));
      if (!this.engine.isIdle()) {
        calm = 0;
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      await this.engine.pollNow();
      calm = this.engine.isIdle() ? calm + 1 : 0;
    }
  }

  private async resolved(flow: string, version: string): Promise<ResolvedFlow> {
    const known = this.flows.get(flow);
    if (!known || known.loaded.version !== version) {
      throw new BatonError('FLOW_NOT_FOUND', `the test kit has no flow ${flow} at version ${version}`);
    }
    const definition = known.loaded.definition;
    return {
      plan: compilePlan(known.loaded.spec),
      flowDir: known.flowDir,
      resolveFunction: (key) => definition?.functionOf(key),
    };
  }

  /** Creates a run through the same use case as `baton run`: params resolved and held to the limit. */
  private async createRun(
    known: KnownFlow,
    rawParams: Readonly<Record<string, unknown>>,
    dedupeKey: string | null,
    parent: NonNullable<NewRun['parent']> | null,
  ): Promise<string> {
    const { run } = await createRun(this.rt, known.loaded, {
      params: rawParams,
      now: this.clock.now(),
      ...(dedupeKey !== null ? { dedupeKey } : {}),
      ...(parent ? { parent } : {}),
    });
    return run.id;
  }

  /** The plan of a run, for folding its history. */
  async planOf(runId: string): Promise<{ plan: FlowPlan; state: RunStateName }> {
    const record = await this.store.getRun(runId);
    if (!record) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`);
    return { plan: (await this.resolved(record.flow, record.version)).plan, state: record.state };
  }
}

/** One run under test. */
export class TestRun {
  private latest: RunState | null = null;
  private executing: Promise<unknown> | null = null;

  constructor(
    readonly kit: TestKit,
    readonly id: string,
  ) {}

  /**
   * Runs until the run ends, or until it waits for something only the test can send (an
   * event or an approval, even one with a timeout: see `fireWaitTimeouts`). Virtual time
   * jumps from one due timer to the next: retries, sleeps and timeouts take no real time.
   */
  async settle(options: SettleOptions = {}): Promise<SettleResult> {
    this.executing ??= this.kit.engine.execute(this.id).catch(() => undefined);
    const maxSteps = options.maxSteps ?? 10_000;
    for (let step = 0; step < maxSteps; step++) {
      await this.kit.quiesce();
      const record = await this.kit.store.getRun(this.id);
      if (record && isTerminalRun(record.state)) {
        await this.refresh();
        return record.state;
      }
      // A task waiting for an event or an approval is the test's turn, not its timeout's.
      const parked = !options.fireWaitTimeouts && this.kit.engine.waitingForOutside().length > 0;
      if (parked || !this.kit.clock.jumpToNext()) {
        await this.refresh();
        return 'waiting';
      }
    }
    throw new BatonError('RUN_OWNED', `run ${this.id} did not settle within ${maxSteps} timer steps`, {
      hint: 'A retry or schedule loop may never end; check the flow, or raise maxSteps.',
    });
  }

  /** Moves virtual time forward (firing the timers and schedules it passes) and lets the run react. */
  async advance(by: number | string): Promise<void> {
    this.executing ??= this.kit.engine.execute(this.id).catch(() => undefined);
    await this.kit.advance(by);
    await this.refresh();
  }

  /** Sends an event to the run, as `baton signal` does. */
  async signal(event: string, data: unknown = null, options: { key?: string; by?: string } = {}): Promise<void> {
    await this.deliver({
      type: 'signal',
      id: randomUUID(),
      event,
      key: options.key ?? null,
      data,
      by: options.by ?? 'test',
    });
  }

  /** Approves a waiting approval task, as `baton approve` does. */
  async approve(task: string, options: { by?: string; comment?: string } = {}): Promise<void> {
    await this.decide(task, true, options);
  }

  /** Rejects a waiting approval task, as `baton reject` does. */
  async reject(task: string, options: { by?: string; comment?: string } = {}): Promise<void> {
    await this.decide(task, false, options);
  }

  /** Cancels the run (its `finally` tasks still run). */
  async cancel(reason = 'cancelled by test'): Promise<void> {
    await this.deliver({ type: 'cancel', reason });
  }

  /** The run's state after the last settle, advance or send. */
  get state(): RunStateName {
    return this.current().state;
  }

  /** A task run by id (`load`, `process[3]`, `per_region[1].load`). */
  task(id: string): TaskView {
    const state = this.current();
    const i = taskIndexOf(state, id);
    if (i === undefined) {
      throw new BatonError('TASK_NOT_FOUND', `run ${this.id} has no task "${id}"`, {
        hint: `Tasks: ${this.tasks()
          .slice(0, 20)
          .map((t) => t.id)
          .join(', ')}`,
      });
    }
    return view(state, i);
  }

  /** Every task run, the flow's own first, then map instances in the order they were made. */
  tasks(): TaskView[] {
    const state = this.current();
    return state.tasks.map((_, i) => view(state, i));
  }

  /** The run's history. */
  async events(): Promise<RunEvent[]> {
    return (await this.kit.store.readEvents(this.id)).map((e) => e.event);
  }

  /** Child runs started by subflow tasks. */
  async children(): Promise<TestRun[]> {
    const runs = await this.kit.store.listRuns({ parentRunId: this.id });
    return runs.map((r) => this.kit.attach(r.id));
  }

  /** Reads the run's state from its history (settle and the senders do this for you). */
  async refresh(): Promise<RunState> {
    const { plan } = await this.kit.planOf(this.id);
    const events = await this.events();
    this.latest = foldRun(this.id, plan, events);
    return this.latest;
  }

  private current(): RunState {
    if (!this.latest) {
      throw new BatonError('USAGE', `run ${this.id} has not been read yet`, {
        hint: 'Call await run.settle() (or run.refresh()) first.',
      });
    }
    return this.latest;
  }

  private async decide(task: string, approved: boolean, options: { by?: string; comment?: string }): Promise<void> {
    const state = await this.refresh();
    const i = taskIndexOf(state, task);
    const t = i === undefined ? undefined : state.tasks[i];
    if (i === undefined || t?.state !== 'waiting' || t.wait?.kind !== 'approval') {
      throw new BatonError('APPROVAL_NOT_WAITING', `task ${task} of run ${this.id} is not waiting for an approval`, {
        hint: `Its state is ${t?.state ?? 'unknown'}; call settle() until it waits.`,
      });
    }
    const by = options.by ?? 'test';
    const approvers = t.wait.approvers;
    if (approvers.length > 0 && !approvers.includes(by)) {
      throw new BatonError(
        'APPROVER_NOT_ALLOWED',
        `${by} may not decide ${task}: its approvers are ${approvers.join(', ')}`,
        {
          hint: `Pass { by: '${approvers[0] as string}' }.`,
        },
      );
    }
    await this.deliver({ type: 'decision', task: i, approved, by, comment: options.comment ?? null });
  }

  private async deliver(input: Parameters<Engine['send']>[1]): Promise<void> {
    this.executing ??= this.kit.engine.execute(this.id).catch(() => undefined);
    await this.kit.quiesce();
    if (!this.kit.engine.send(this.id, input)) {
      throw new BatonError('RUN_NOT_FOUND', `run ${this.id} is not active; it is ${(await this.refresh()).state}`);
    }
    await this.kit.quiesce();
    await this.refresh();
  }
}

function view(state: RunState, i: number): TaskView {
  const t = state.tasks[i] as TaskRun;
  return {
    id: taskIdOf(state, i),
    state: t.state,
    attempts: t.attempt,
    output: t.output,
    error: t.error,
    skipReason: t.skipReason,
    wait: t.wait,
  };
}

async function loadFlow(flow: FlowUnderTest): Promise<KnownFlow> {
  if (typeof flow === 'string') {
    const path = resolve(flow);
    const catalog = new FlowCatalog(dirname(path), { kinds: createExecutors().kinds() });
    return { loaded: await catalog.load(path), flowDir: dirname(path) };
  }
  if (!isFlowDefinition(flow)) {
    throw new BatonError('USAGE', 'testFlow: expected a flow from defineFlow() or the path of a flow file');
  }
  const spec: FlowSpec = flow.toSpec();
  return {
    loaded: { spec, version: flowVersion(spec, []), sourcePath: '<test>', definition: flow },
    flowDir: process.cwd(),
  };
}

/** Opens a kit for one flow and starts a run of it: the shortest way to test a flow. */
export async function testFlow(
  flow: FlowUnderTest,
  options: TestKitOptions & RunTestOptions = {},
): Promise<TestRun & { close(): Promise<void> }> {
  const kit = await TestKit.open(options);
  let run: TestRun;
  try {
    run = await kit.run(flow, options);
  } catch (error) {
    // A flow or params that are refused leave no store behind.
    await kit.close();
    throw error;
  }
  return Object.assign(run, { close: () => kit.close() });
}

/** Opens a kit: a temporary store and an engine on a virtual clock. */
export function createTestKit(options: TestKitOptions = {}): Promise<TestKit> {
  return TestKit.open(options);
}
