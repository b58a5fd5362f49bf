/**
 * A deterministic, in-process simulation of the engine against a real SQLite file.
 *
 * One simulation runs one generated flow to its end on a virtual clock, with engines that
 * come and go: at a chosen commit, the store wrapper makes the commit fail (the engine must
 * retry it), or "crashes" the engine that made it (before or after the commit is durable;
 * the process is gone, with its timers and its bodies), or freezes it (a process paused
 * after a durable commit, which wakes up later as a zombie). A new engine under a new owner
 * then takes the run over, as after a `kill -9`: its previous owner looks like a dead
 * process on this host, so the engine's own takeover path (claimRun with takeOverEpoch)
 * takes the run at once.
 *
 * What it records, and checks while it runs:
 * - every commit and every body start, in order (the trace printed on failure);
 * - at the instant a body starts, the store's events: its `task_started` must be there,
 *   and (for the run's current owner) no `task_succeeded` of the same task;
 * - every commit made under a lease that a later claim superseded must be fenced.
 * After the run: it ended as a run without faults did (same final state, same task states
 * and outputs), no task succeeded twice, no timer fired before it was due, and every timer
 * the committed history held at a takeover (retry backoff, sleep, wait_until, an event
 * wait's timeout) fired when due under the new owner. A run that stops moving with no timer
 * armed and no signal left to send fails at once, naming what it waited for.
 *
 * Bodies run in the engine (local mode) or in a simulated worker that takes them from the
 * task queue (dispatch mode); the worker also reports each attempt under a stale fencing
 * token first and again after its report, and both must be refused.
 *
 * Everything is seeded: the flow, the signals, the engines' randomness. A failure names the
 * seed and the fault, and `SIM_SEED` / `SIM_FAULT` replay exactly that simulation.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatonError } from '../../src/core/errors.js';
import type { FlowPlan, RunEvent } from '../../src/core/run-machine.js';
import { compilePlan, foldRun } from '../../src/core/run-machine.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { FlowResolver } from '../../src/engine/engine.js';
import { Engine } from '../../src/engine/engine.js';
import type { AttemptRequest, TaskExecutor } from '../../src/engine/executor.js';
import { ExecutorRegistry } from '../../src/engine/executor.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { ClaimOptions, CommitEntry, CommitResult, Lease, Store, TaskCompletion } from '../../src/store/store.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';
import type { PendingTimer } from './history-checks.js';
import { ClockView } from './sim-clock.js';
import { checkHistory, checkTimersFired } from './history-checks.js';
import type { Fault, Scenario } from './sim-scenario.js';
import { REPLAY_FILE, SIM_START, describeFault, prng } from './sim-scenario.js';

// ---------------------------------------------------------------------------------------
// The simulated world

/** What the simulation saw happen, in order; the tail is printed with a failure. */
export type TraceEntry =
  | {
      readonly t: 'claim';
      readonly gen: number;
      readonly runId: string;
      readonly epoch: number;
      readonly takeOver: boolean;
    }
  | {
      readonly t: 'commit';
      readonly gen: number;
      readonly index: number;
      readonly outcome: 'written' | 'failed' | 'crash_before' | 'crash_after' | 'freeze_after' | 'crashed';
      readonly entries: readonly { readonly runId: string; readonly epoch: number; readonly events: string }[];
      readonly fenced: readonly string[];
    }
  | { readonly t: 'body'; readonly by: string; readonly task: string; readonly attempt: number }
  | {
      readonly t: 'report';
      readonly task: string;
      readonly attempt: number;
      readonly token: number;
      readonly refused: boolean;
    }
  | { readonly t: 'signal'; readonly event: string; readonly at: number }
  | { readonly t: 'gen'; readonly gen: number; readonly what: string }
  | { readonly t: 'diag'; readonly gen: number; readonly text: string };

/** Thrown at a crashed engine by its store: the process it stands for is gone. */
class SimCrashed extends Error {
  constructor(gen: number) {
    super(`simulated crash of engine #${gen}`);
  }
}

interface Gen {
  readonly id: number;
  readonly owner: string;
  readonly clock: ClockView;
  engine: Engine;
  state: 'alive' | 'crashed' | 'frozen' | 'zombie';
  /** Resolves the store calls a frozen engine is held in. */
  thaw: () => void;
  thawed: Promise<void>;
  /** Set when `execute` rejects while the engine is alive and not being stopped. */
  failure: unknown;
  /** Set once the engine is being stopped. */
  stopped?: Promise<void>;
  /** Wake-up listeners the engine registered, by channel. */
  readonly listeners: Map<string, Set<() => void>>;
  wake(channel: string): void;
  /** Store calls made, to tell a quiet engine from a busy one. */
  calls: number;
}

/** One simulation: which flow, which fault, on which store. */
export interface SimOptions {
  readonly scenario: Scenario;
  readonly fault: Fault | null;
  /** The store every simulation of a test file shares (one run each). */
  readonly store: Store;
  readonly runId: string;
  /** `local` (bodies run in the engine) or `dispatch` (a simulated worker runs them from the queue). Default local. */
  readonly mode?: 'local' | 'dispatch';
  /** Steps of the driver (quiesce, then one clock jump or signal) before the run must have ended. */
  readonly maxSteps?: number;
}

/** What a simulation that kept every invariant ended with. */
export interface SimResult {
  readonly runState: string;
  /** Task id → `state output`, the result compared with a simulation without faults. */
  readonly outcome: Readonly<Record<string, string>>;
  /** Commits made (every call, failed ones included). */
  readonly commits: number;
  readonly generations: number;
  /**
   * Timers pending in the committed history when a new engine took over, by what they
   * wait for: `retry` (a backoff), `sleep`, `wait_until`, `wait_for_event` (its timeout),
   * `run_timeout` (the flow's deadline).
   */
  readonly timersAtTakeover: Readonly<Record<string, number>>;
  readonly trace: readonly TraceEntry[];
  readonly events: readonly RunEvent[];
}

/** A simulation found an invariant broken; the message names the seed, the fault and the trace. */
export class SimViolation extends Error {}

const DEAD_PID = findDeadPid();

/** A pid of this host that no process has now: owners named with it look dead to the engine. */
function findDeadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  for (const pid of [child.pid, 4_194_305, 99_999_999]) {
    if (!pid) continue;
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no free pid found to name simulated dead owners with');
}

/** A temporary SQLite store for a test file. */
export function openSimStore(): { store: SqliteStore; close(): Promise<void> } {
  // A memory-backed folder where there is one: the store syncs every commit to disk, which
  // would cost more than the whole simulation.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'baton-sim-'));
  const store = new SqliteStore({ path: join(dir, 'sim.db') });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runEventKey(e: RunEvent): string {
  return 'task' in e && typeof e.task === 'string' ? `${e.type}:${e.task}` : e.type;
}

/**
 * Runs one simulation to its end and checks the invariants along the way; throws a
 * SimViolation naming what broke.
 */
export async function simulate(options: SimOptions): Promise<SimResult> {
  const { scenario: sc, fault, store: raw, runId } = options;
  const mode = options.mode ?? 'local';
  const maxSteps = options.maxSteps ?? 400;
  const clock = new VirtualClock(SIM_START);
  const rng = prng(sc.seed ^ 0x5eed);
  const trace: TraceEntry[] = [];
  const violations: string[] = [];
  const gens: Gen[] = [];
  const plan: FlowPlan = compilePlan(sc.spec);
  const version = `v${sc.seed}`;
  const latestEpoch = new Map<string, number>();
  let commitIndex = 0;
  let faultUsed = false;
  let tookOver = false;
  let stopping = false;
  /** Attempts written to the task queue and not yet looked for by the worker. */
  let queued = 0;
  const timersAtTakeover: Record<string, number> = {};
  /** Each timer the committed history held when a new engine took over, to check that it fired. */
  const pendingAtTakeover: PendingTimer[] = [];

  const violate = (what: string) => {
    if (violations.length < 20) violations.push(what);
  };

  const flows: FlowResolver = {
    resolve: async () => ({ plan, flowDir: tmpdir(), resolveFunction: () => undefined }),
    plan: async () => plan,
  };

  /**
   * The sim's task body, wherever it runs (an engine's executor or the simulated worker):
   * checks the store at the instant it starts, then fails or succeeds as planned.
   * `current` is false for a zombie, which may legitimately run a body again.
   */
  const runBody = async (
    by: string,
    current: boolean,
    taskId: string,
    attempt: number,
    fail: number,
    upstream: readonly string[],
  ): Promise<unknown> => {
    // Read now: SQLite answers within this call, before anything else can commit.
    const reading = raw.readEvents(runId);
    trace.push({ t: 'body', by, task: taskId, attempt });
    const events = (await reading).map((e) => e.event);
    if (!events.some((e) => e.type === 'task_started' && e.task === taskId && e.attempt === attempt)) {
      violate(`${by} started the body of ${taskId} attempt ${attempt} before its task_started was committed`);
    }
    if (current && events.some((e) => e.type === 'task_succeeded' && e.task === taskId)) {
      violate(`${by} started ${taskId} attempt ${attempt} after the task's success was committed`);
    }
    await new Promise((r) => setImmediate(r));
    // Counted failures, not attempt numbers: a lost attempt (its engine died) changes
    // neither the outcome nor the retry times, so every fault must end as the reference.
    const failed = events.filter((e) => e.type === 'attempt_failed' && e.task === taskId && !e.lost).length;
    if (failed < fail) throw Object.assign(new Error(`planned failure of ${taskId}`), { code: 'SIM_PLANNED' });
    return { task: taskId, upstream: [...upstream].sort() };
  };

  const bodyOf = (gen: Gen): TaskExecutor => ({
    kind: 'sim',
    async execute(request: AttemptRequest): Promise<unknown> {
      const { taskId, attempt, inputs, upstream, signal } = request.context;
      const output = await runBody(
        `engine #${gen.id}`,
        gen.state === 'alive',
        taskId,
        attempt,
        Number(inputs.fail ?? 0),
        Object.keys(upstream),
      );
      if (signal.aborted) throw signal.reason;
      return output;
    },
  });

  /**
   * The simulated worker (dispatch mode): claims what is queued, runs it, and reports it
   * under its fencing token, after a report under an older token that must be refused.
   */
  const workerStep = async (): Promise<number> => {
    // Only when a written commit queued something: a claim is a write transaction.
    if (queued === 0) return 0;
    queued = 0;
    const claims = await raw.claimTasks({ worker: 'sim-worker', labels: [], limit: 16, leaseMs: 3_600_000 });
    for (const claim of claims) {
      // Another simulation's leftover (the store is shared): not this run's to report.
      if (claim.runId !== runId) continue;
      const payload = claim.payload as { inputs?: Record<string, unknown>; upstream?: Record<string, unknown> };
      let completion: TaskCompletion;
      try {
        const output = await runBody(
          'the worker',
          true,
          claim.taskId,
          claim.attempt,
          Number(payload.inputs?.fail ?? 0),
          Object.keys(payload.upstream ?? {}),
        );
        completion = { id: claim.id, token: claim.token, status: 'succeeded', output };
      } catch (error) {
        completion = {
          id: claim.id,
          token: claim.token,
          status: 'failed',
          error: { code: 'SIM_PLANNED', message: (error as Error).message, source: 'user' },
        };
      }
      // A worker whose claim was taken from it reports late, under the token it had.
      const stale = await raw.completeTasks([{ ...completion, token: claim.token - 1, output: { stale: true } }]);
      if (!stale.refused.includes(claim.id)) {
        violate(
          `a completion of ${claim.taskId} attempt ${claim.attempt} under the stale token ${claim.token - 1} was accepted`,
        );
      }
      const done = await raw.completeTasks([completion]);
      trace.push({
        t: 'report',
        task: claim.taskId,
        attempt: claim.attempt,
        token: claim.token,
        refused: done.refused.length > 0,
      });
      const again = await raw.completeTasks([{ ...completion, output: { again: true } }]);
      if (!again.refused.includes(claim.id)) {
        violate(`a second completion of ${claim.taskId} attempt ${claim.attempt} was accepted`);
      }
    }
    if (claims.length > 0) for (const g of gens) if (g.state !== 'crashed') g.wake('results');
    return claims.length;
  };

  const crash = (gen: Gen, how: string) => {
    gen.state = 'crashed';
    gen.clock.kill();
    trace.push({ t: 'gen', gen: gen.id, what: how });
    gen.thaw();
    // Only to free the engine's own timers and intervals: its store refuses every call, so
    // stopping writes nothing, as a dead process writes nothing.
    gen.stopped = gen.engine.stop().catch(() => undefined);
  };

  /** The store as one engine sees it: every method forwarded, commits and claims watched. */
  const storeFor = (gen: Gen): Store => {
    const commit = async (entries: readonly CommitEntry[]): Promise<CommitResult> => {
      const index = commitIndex++;
      const planned = !faultUsed && fault && fault.at === index && gen.state === 'alive' ? fault.kind : null;
      if (planned) faultUsed = true;
      const summary = entries.map((e) => ({
        runId: e.lease.runId,
        epoch: e.lease.epoch,
        events: e.events.map(runEventKey).join(' '),
      }));
      // A database round trip: whatever the engine does before the answer comes, it does
      // before the commit is durable.
      await new Promise((r) => setImmediate(r));
      if (gen.state === 'crashed') {
        trace.push({ t: 'commit', gen: gen.id, index, outcome: 'crashed', entries: summary, fenced: [] });
        throw new SimCrashed(gen.id);
      }
      if (planned === 'fail') {
        trace.push({ t: 'commit', gen: gen.id, index, outcome: 'failed', entries: summary, fenced: [] });
        throw new BatonError('STORE_BUSY', 'simulated commit failure: the database is locked');
      }
      if (planned === 'crash_before') {
        trace.push({ t: 'commit', gen: gen.id, index, outcome: 'crash_before', entries: summary, fenced: [] });
        crash(gen, 'crashed before its commit');
        throw new SimCrashed(gen.id);
      }
      // The run's epoch as the store has it when the commit goes in (SQLite reads within the
      // call, so nothing can claim the run in between), whichever way it was claimed.
      const epochs = entries.map((e) => raw.getRun(e.lease.runId));
      const result = await raw.commit(entries);
      for (const [k, e] of entries.entries()) {
        const epoch = (await epochs[k])?.epoch ?? 0;
        latestEpoch.set(e.lease.runId, Math.max(latestEpoch.get(e.lease.runId) ?? 0, epoch));
      }
      for (const e of entries) if (!result.fenced.includes(e.lease.runId)) queued += e.dispatches?.length ?? 0;
      trace.push({
        t: 'commit',
        gen: gen.id,
        index,
        outcome: planned ?? 'written',
        entries: summary,
        fenced: result.fenced,
      });
      for (const e of entries) {
        const latest = latestEpoch.get(e.lease.runId) ?? e.lease.epoch;
        if (e.lease.epoch < latest && !result.fenced.includes(e.lease.runId)) {
          violate(
            `commit #${index} of engine #${gen.id} under epoch ${e.lease.epoch} was accepted after epoch ${latest} took the run (${summary.find((s) => s.runId === e.lease.runId)?.events})`,
          );
        }
      }
      if (planned === 'crash_after') {
        crash(gen, 'crashed after its commit was written');
        throw new SimCrashed(gen.id);
      }
      if (planned === 'freeze_after') {
        gen.state = 'frozen';
        trace.push({ t: 'gen', gen: gen.id, what: 'froze after its commit was written' });
        await gen.thawed;
      }
      return result;
    };

    const claimRun = async (id: string, claim: ClaimOptions): Promise<Lease | null> => {
      let lease = await raw.claimRun(id, claim);
      let lapsed = false;
      if (!lease) {
        // The lease of an engine that crashed or froze has lapsed by now: what a real
        // clock would show after the lease length, shown at once.
        const record = await raw.getRun(id);
        if (record?.owner && gens.some((g) => g.owner === record.owner && g.state !== 'alive')) {
          lease = await raw.claimRun(id, { ...claim, takeOverEpoch: record.epoch });
          lapsed = lease !== null;
        }
      }
      if (lease) {
        latestEpoch.set(id, Math.max(latestEpoch.get(id) ?? 0, lease.epoch));
        trace.push({
          t: 'claim',
          gen: gen.id,
          runId: id,
          epoch: lease.epoch,
          takeOver: lapsed || claim.takeOverEpoch !== undefined,
        });
      }
      return lease;
    };

    const claimRuns = async (claim: ClaimOptions & { limit: number }): Promise<Lease[]> => {
      const leases = await raw.claimRuns(claim);
      for (const lease of leases) {
        latestEpoch.set(lease.runId, Math.max(latestEpoch.get(lease.runId) ?? 0, lease.epoch));
        trace.push({ t: 'claim', gen: gen.id, runId: lease.runId, epoch: lease.epoch, takeOver: false });
      }
      return leases;
    };

    const special: Record<string, (...args: never[]) => Promise<unknown>> = { commit, claimRun, claimRuns };
    // Wake-ups: the store's own where it has them, and the harness's: the simulated worker
    // rings `results` when it reports, as PostgreSQL's notifications would, instead of the
    // engine finding out at its next poll in real time. A dead process hears none.
    const subscribe = (channel: 'tasks' | 'results' | 'runs', onWake: () => void): (() => void) => {
      const listeners = gen.listeners.get(channel) ?? new Set<() => void>();
      gen.listeners.set(channel, listeners);
      const listener = () => {
        if (gen.state !== 'crashed') onWake();
      };
      listeners.add(listener);
      const off = raw.subscribe?.(channel, listener);
      return () => {
        listeners.delete(listener);
        off?.();
      };
    };
    return new Proxy(raw, {
      get(target, prop) {
        if (prop === 'subscribe') return subscribe;
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const method = value as (...a: unknown[]) => unknown;
        // Listener registrations (`onRunEnd`, …) answer at once, not with a promise; a
        // dead process's listeners hear nothing.
        if (typeof prop === 'string' && /^on[A-Z]/.test(prop)) {
          return (...args: unknown[]) =>
            method.apply(
              target,
              args.map((a) =>
                typeof a === 'function'
                  ? (...inner: unknown[]) =>
                      gen.state === 'crashed' ? undefined : (a as (...x: unknown[]) => unknown)(...inner)
                  : a,
              ),
            );
        }
        const own = typeof prop === 'string' ? special[prop] : undefined;
        const call = (args: unknown[]): unknown => {
          if (gen.state === 'crashed') {
            const refused = Promise.reject(new SimCrashed(gen.id));
            // Callers that fire and forget must not leave an unhandled rejection behind.
            refused.catch(() => undefined);
            return refused;
          }
          return own ? own(...(args as never[])) : method.apply(target, args);
        };
        return (...args: unknown[]) => {
          gen.calls++;
          // A paused process's calls go out when it wakes; everything else, as it is made.
          if (gen.state === 'frozen') return gen.thawed.then(() => call(args));
          return call(args);
        };
      },
    });
  };

  const startGen = (): Gen => {
    const id = gens.length;
    let thaw!: () => void;
    const thawed = new Promise<void>((r) => (thaw = r));
    const gen: Gen = {
      id,
      owner: `${hostname()}/${DEAD_PID}/sim-${sc.seed}-${id}`,
      clock: new ClockView(clock),
      engine: undefined as unknown as Engine,
      state: 'alive',
      thaw,
      thawed,
      failure: undefined,
      listeners: new Map(),
      calls: 0,
      wake(channel) {
        for (const listener of gen.listeners.get(channel) ?? []) listener();
      },
    };
    gen.engine = new Engine({
      store: storeFor(gen),
      executors: new ExecutorRegistry([bodyOf(gen)]),
      flows,
      clock: gen.clock,
      useDatabaseClock: false,
      mode,
      random: rng,
      owner: gen.owner,
      pollMs: 20,
      onDiagnostic: (text) => trace.push({ t: 'diag', gen: id, text }),
    });
    gens.push(gen);
    trace.push({ t: 'gen', gen: id, what: `started as ${gen.owner}` });
    gen.engine.execute(runId).catch((error: unknown) => {
      // Crashed, frozen or stopped engines lose their run; a live one must not.
      if (gen.state === 'alive' && !stopping) gen.failure = error;
    });
    return gen;
  };

  /** Waits (in real time, bounded) until an engine has nothing to do without the clock or the outside. */
  const quiesce = async (gen: Gen, limitMs = 10_000): Promise<void> => {
    const deadline = Date.now() + limitMs;
    for (let calm = 0, busy = 0; calm < 2;) {
      if (gen.state !== 'alive' || gen.failure !== undefined) return;
      if (Date.now() > deadline) throw new SimViolation(`engine #${gen.id} did not come to rest within ${limitMs} ms`);
      await new Promise((r) => setImmediate(r));
      if (mode === 'dispatch' && (await workerStep()) > 0) calm = 0;
      if (!gen.engine.isIdle()) {
        calm = 0;
        // Turns of the event loop while the engine works; real sleeps only while it waits
        // in real time (a commit retried after a backoff).
        if (++busy > 200) await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      busy = 0;
      await gen.engine.pollNow();
      calm = gen.engine.isIdle() ? calm + 1 : 0;
    }
  };

  const fail = (why: string): never => {
    throw new SimViolation(
      `${why}\n  replay: SIM_SEED=${sc.seed} SIM_FAULT=${describeFault(fault)} (${mode} mode: ${REPLAY_FILE[mode]})\n  flow:\n${sc.yaml
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}\n  trace (last 60):\n${trace
        .slice(-60)
        .map((e) => `    ${JSON.stringify(e)}`)
        .join('\n')}`,
    );
  };

  await raw.createRun({
    id: runId,
    flow: { flow: sc.spec.name, version, spec: JSON.stringify(sc.spec), sourcePath: '<sim>', createdAt: SIM_START },
    params: {},
    taskIds: sc.spec.tasks.map((t) => t.id),
    createdAt: SIM_START,
  });
  const pendingSignals = [...sc.signals].sort((a, b) => a.at - b.at);
  let live = startGen();
  let generations = 1;
  try {
    for (let step = 0; ; step++) {
      if (step >= maxSteps) fail(`the run did not end within ${maxSteps} steps`);
      await quiesce(live);
      if (violations.length > 0) fail(violations.join('\n'));
      if (live.failure !== undefined) fail(`engine #${live.id} failed: ${String(live.failure)}`);
      if (live.state !== 'alive') {
        // The engine died or froze: a new process takes the run over.
        if (generations >= 6) fail('more than 6 engines');
        // Durable timers and waits the new engine must find: what the committed history holds.
        const history = (await raw.readEvents(runId)).map((e) => e.event);
        const folded = foldRun(runId, plan, history);
        if (sc.spec.timeoutMs !== null && !isTerminalRun(folded.state)) {
          timersAtTakeover.run_timeout = (timersAtTakeover.run_timeout ?? 0) + 1;
        }
        folded.tasks.forEach((t, i) => {
          if ((t.state !== 'retrying' && t.state !== 'waiting') || t.retryAt === null) return;
          const kind = t.state === 'retrying' ? 'retry' : (sc.spec.tasks[i]?.kind ?? 'other');
          timersAtTakeover[kind] = (timersAtTakeover[kind] ?? 0) + 1;
          pendingAtTakeover.push({
            task: sc.spec.tasks[i]?.id ?? `#${i}`,
            kind,
            dueAt: t.retryAt,
            after: history.length,
          });
        });
        live = startGen();
        generations++;
        tookOver = true;
        continue;
      }
      const frozen = gens.find((g) => g.state === 'frozen');
      if (frozen && tookOver) {
        // The paused process wakes up after the run was taken from it: every write it
        // still makes must be fenced.
        frozen.state = 'zombie';
        trace.push({ t: 'gen', gen: frozen.id, what: 'woke up as a zombie' });
        frozen.thaw();
        continue;
      }
      const record = await raw.getRun(runId);
      if (record && isTerminalRun(record.state)) break;
      const now = clock.now();
      const signal = pendingSignals[0];
      if (signal && signal.at <= now) {
        pendingSignals.shift();
        trace.push({ t: 'signal', event: signal.event, at: now });
        await raw.addRequest(runId, 'signal', {
          id: `sig-${signal.event}`,
          event: signal.event,
          data: { event: signal.event },
        });
        continue;
      }
      const due = clock.nextDue();
      const next = Math.min(due ?? Number.POSITIVE_INFINITY, signal?.at ?? Number.POSITIVE_INFINITY);
      if (next === Number.POSITIVE_INFINITY) {
        fail(
          `the run is ${record?.state} with nothing left to wake it: no timer armed (engine #${live.id} holds ${live.clock.armed}), no signal to send`,
        );
      }
      clock.advanceTo(Math.max(next, now));
    }
    // Let zombies finish what they had, so that their last writes are checked too.
    for (const g of gens) {
      if (g.state === 'frozen') {
        g.state = 'zombie';
        g.thaw();
      }
    }
    for (const g of gens) {
      if (g.state !== 'zombie') continue;
      // Until it let go of the run (fenced), or nothing is left for it to do, or it stays
      // quiet: a dispatcher may wait on a remote attempt whose outcome went to the new owner.
      g.wake('results');
      const deadline = Date.now() + 5000;
      for (let quiet = 0; quiet < 50 && Date.now() < deadline;) {
        if (g.engine.activeRunIds().length === 0 || g.engine.isIdle()) break;
        const calls = g.calls;
        await new Promise((r) => setImmediate(r));
        quiet = g.calls === calls ? quiet + 1 : 0;
      }
    }
    if (violations.length > 0) fail(violations.join('\n'));
  } finally {
    stopping = true;
    for (const g of gens) {
      if (g.state === 'frozen') crash(g, 'never woke up');
    }
    await Promise.allSettled(gens.map((g) => g.stopped ?? g.engine.stop()));
    for (const g of gens) g.clock.kill();
  }

  const record = await raw.getRun(runId);
  const events = (await raw.readEvents(runId)).map((e) => e.event);
  const tasks = await raw.getTaskRuns(runId);
  const outcome: Record<string, string> = {};
  for (const t of tasks) outcome[t.taskId] = `${t.state} ${JSON.stringify(t.output ?? null)}`;
  const checked = [...checkHistory(events), ...checkTimersFired(events, pendingAtTakeover)];
  if (checked.length > 0) fail(checked.join('\n'));
  return {
    runState: record?.state ?? 'missing',
    outcome,
    commits: commitIndex,
    generations,
    timersAtTakeover,
    trace,
    events,
  };
}
