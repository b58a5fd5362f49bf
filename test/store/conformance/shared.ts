/**
 * What every port's conformance file shares: the factory a store test supplies, a fixture
 * that opens a fresh store for each test, and the few records tests build runs from.
 * Each file under this folder checks one port (src/store/ports/) against the interface
 * only; `sqlite.test.ts` runs all of them on a real SQLite file and `postgres.test.ts` on
 * a real PostgreSQL server.
 */
import { afterEach, beforeEach, describe } from 'vitest';
import type { FlowVersionRecord, Lease, RunRecord, Store, TaskRunPatch } from '../../../src/store/store.js';

export interface StoreFactory {
  readonly name: string;
  open(): Promise<Store>;
  /** Removes whatever `open` created. */
  destroy(store: Store): Promise<void>;
  /**
   * Another store object on the database of `store`, as a second process would open it
   * (its own connections); the caller closes it. For tests of claimers racing each other.
   */
  connect(store: Store): Promise<Store>;
  /**
   * The timers of a run, by task index, read from the database itself: the port only
   * writes timers (the engine re-arms them from run history), so tests look underneath.
   */
  timers(store: Store, runId: string): Promise<{ task: number; dueAt: number }[]>;
}

export const flow: FlowVersionRecord = {
  flow: 'demo',
  version: 'v1',
  spec: '{"name":"demo"}',
  sourcePath: '/flows/demo.yaml',
  createdAt: 1_700_000_000_000,
};

let counter = 0;
/** A run id unique in this process, and across processes sharing a database. */
export function runId(): string {
  counter++;
  return `run-${process.pid}-${counter}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The store of the running test, with the helpers most tests start from. */
export interface PortFixture {
  readonly store: Store;
  readonly factory: StoreFactory;
  /** A queued run of `demo` (or `flowName`) with task runs a, b, c. */
  newRun(options?: { dedupeKey?: string; maxActiveRuns?: number; flowName?: string }): Promise<RunRecord>;
  /** A queued run with one task, under the given id. */
  runWithId(id: string): Promise<RunRecord>;
  /** A new run claimed by owner `S`. */
  startedRun(): Promise<{ id: string; lease: Lease }>;
  /** `n` more store objects on the same database, closed after the test. */
  connectMany(n: number): Promise<Store[]>;
}

/**
 * Declares the conformance tests of one port for one store: `body` registers its tests and
 * reads `fixture.store` inside them, a fresh store for each test.
 */
export function describePort(factory: StoreFactory, port: string, body: (fixture: PortFixture) => void): void {
  describe(`${port} conformance: ${factory.name}`, () => {
    let store: Store | undefined;
    let extra: Store[] = [];
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      const others = extra;
      extra = [];
      await Promise.all(others.map((s) => s.close()));
      if (store) await factory.destroy(store);
      store = undefined;
    });

    const current = (): Store => {
      if (!store) throw new Error('the store is open only inside a test');
      return store;
    };
    const fixture: PortFixture = {
      get store() {
        return current();
      },
      factory,
      async newRun(options = {}) {
        const { run } = await current().createRun({
          id: runId(),
          flow: { ...flow, flow: options.flowName ?? flow.flow },
          params: { day: '2024-01-01' },
          taskIds: ['a', 'b', 'c'],
          createdAt: Date.now(),
          dedupeKey: options.dedupeKey ?? null,
          maxActiveRuns: options.maxActiveRuns ?? null,
        });
        return run;
      },
      async runWithId(id) {
        const made = await current().createRun({
          id,
          flow,
          params: {},
          taskIds: ['a'],
          createdAt: Date.now(),
          dedupeKey: null,
        });
        return made.run;
      },
      async startedRun() {
        const run = await fixture.newRun();
        const lease = (await current().claimRun(run.id, { owner: 'S', leaseMs: 10_000 })) as Lease;
        return { id: run.id, lease };
      },
      async connectMany(n) {
        const opened: Store[] = [];
        for (let i = 0; i < n; i++) {
          const other = await factory.connect(current());
          extra.push(other);
          opened.push(other);
        }
        // One statement apiece first, so that each has a live connection and a race
        // between them is not decided by who connected first.
        await Promise.all(opened.map((other) => other.now()));
        return opened;
      },
    };
    body(fixture);
  });
}

/** Commit entry that puts attempts of the given tasks on the task queue. */
export function dispatchEntry(lease: Lease, dispatches: { task: number; taskId: string; labels: string[] }[]) {
  return {
    lease,
    events: [],
    tasks: [],
    timers: [],
    logs: [],
    dispatches: dispatches.map((d) => ({ ...d, attempt: 1, payload: { inputs: { n: d.task } } })),
  };
}

/** Commit entry that changes nothing but the given task runs and timers. */
export function tasksEntry(
  lease: Lease,
  tasks: Parameters<Store['commit']>[0][number]['tasks'],
  timers: { task: number; dueAt: number | null }[] = [],
) {
  return { lease, events: [], tasks, timers, logs: [] };
}

/** The task run row of task `a` (index 0) at its first attempt, running since 2. */
export function runningTaskA(): TaskRunPatch {
  return {
    index: 0,
    taskId: 'a',
    state: 'running',
    attempts: 1,
    startedAt: 2,
    endedAt: null,
    skipReason: null,
    output: null,
    error: null,
  };
}
