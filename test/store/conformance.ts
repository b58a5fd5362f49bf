/**
 * The store conformance suite: every implementation of the Store port must pass it. It is
 * written against the interface only; `sqlite.test.ts` runs it on a real SQLite file, and
 * the PostgreSQL implementation runs the same suite against a real server.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import type { FlowVersionRecord, Lease, Store, TaskRunPatch } from '../../src/store/store.js';

export interface StoreFactory {
  readonly name: string;
  open(): Promise<Store>;
  /** Removes whatever `open` created. */
  destroy(store: Store): Promise<void>;
  /**
   * The timers of a run, by task index, read from the database itself: the port only
   * writes timers (the engine re-arms them from run history), so tests look underneath.
   */
  timers(store: Store, runId: string): Promise<{ task: number; dueAt: number }[]>;
}

const flow: FlowVersionRecord = {
  flow: 'demo',
  version: 'v1',
  spec: '{"name":"demo"}',
  sourcePath: '/flows/demo.yaml',
  createdAt: 1_700_000_000_000,
};

let counter = 0;
function runId(): string {
  counter++;
  return `run-${process.pid}-${counter}`;
}

export function storeConformance(factory: StoreFactory): void {
  describe(`store conformance: ${factory.name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await factory.destroy(store);
    });

    async function newRun(options: { dedupeKey?: string; maxActiveRuns?: number; flowName?: string } = {}) {
      const id = runId();
      const { run } = await store.createRun({
        id,
        flow: { ...flow, flow: options.flowName ?? flow.flow },
        params: { day: '2024-01-01' },
        taskIds: ['a', 'b', 'c'],
        createdAt: Date.now(),
        dedupeKey: options.dedupeKey ?? null,
        maxActiveRuns: options.maxActiveRuns ?? null,
      });
      return run;
    }

    it('creates a queued run with pending task runs and a run_created event', async () => {
      const run = await newRun();
      expect(run.state).toBe('queued');
      expect(run.params).toEqual({ day: '2024-01-01' });
      const tasks = await store.getTaskRuns(run.id);
      expect(tasks.map((t) => [t.taskId, t.state, t.attempts])).toEqual([
        ['a', 'pending', 0],
        ['b', 'pending', 0],
        ['c', 'pending', 0],
      ]);
      const events = await store.readEvents(run.id);
      expect(events.map((e) => e.event.type)).toEqual(['run_created']);
      expect(await store.getFlowVersion('demo', 'v1')).toMatchObject({ sourcePath: '/flows/demo.yaml' });
    });

    it('returns the existing run for a repeated dedupe key', async () => {
      const first = await newRun({ dedupeKey: 'k1' });
      const again = await store.createRun({
        id: runId(),
        flow,
        params: {},
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: 'k1',
      });
      expect(again.created).toBe(false);
      expect(again.run.id).toBe(first.id);
      expect((await store.listRuns({})).filter((r) => r.dedupeKey === 'k1')).toHaveLength(1);
    });

    it('hands a run to one owner at a time and bumps the epoch on each claim', async () => {
      const run = await newRun();
      const a = await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 });
      expect(a).not.toBeNull();
      expect(await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 })).toBeNull();
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000, takeOverEpoch: (a as Lease).epoch });
      expect(b?.epoch).toBe((a as Lease).epoch + 1);
    });

    it('lets another owner claim a run whose lease lapsed', async () => {
      const run = await newRun();
      const a = (await store.claimRun(run.id, { owner: 'A', leaseMs: 30 })) as Lease;
      await new Promise((r) => setTimeout(r, 80));
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 });
      expect(b?.epoch).toBe(a.epoch + 1);
      expect(await store.renewLeases([a], 10_000)).toEqual([run.id]);
    });

    it('commits events and derived rows together, and refuses a stale epoch', async () => {
      const run = await newRun();
      const a = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      const started: RunEvent[] = [
        { type: 'run_started', at: 1 },
        { type: 'tasks_queued', at: 1, tasks: ['a'] },
        { type: 'task_started', at: 2, task: 'a', attempt: 1 },
      ];
      const result = await store.commit([
        {
          lease: a,
          events: started,
          run: { state: 'running', startedAt: 1, endedAt: null, error: null },
          tasks: [
            {
              index: 0,
              taskId: 'a',
              state: 'running',
              attempts: 1,
              startedAt: 2,
              endedAt: null,
              skipReason: null,
              output: undefined,
              error: null,
            },
          ],
          timers: [{ task: 1, dueAt: 5000 }],
          logs: [{ runId: run.id, taskId: 'a', attempt: 1, stream: 'stdout', at: 3, text: 'hello' }],
        },
      ]);
      expect(result.fenced).toEqual([]);
      expect((await store.readEvents(run.id)).map((e) => [e.seq, e.event.type])).toEqual([
        [1, 'run_created'],
        [2, 'run_started'],
        [3, 'tasks_queued'],
        [4, 'task_started'],
      ]);
      expect((await store.getRun(run.id))?.state).toBe('running');
      expect((await store.getTaskRuns(run.id))[0]).toMatchObject({ state: 'running', attempts: 1 });
      expect((await store.readLogs(run.id, {})).map((l) => l.text)).toEqual(['hello']);
      expect((await store.readEvents(run.id, 3)).map((e) => e.seq)).toEqual([4]);

      const b = (await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000, takeOverEpoch: a.epoch })) as Lease;
      const stale = await store.commit([
        {
          lease: a,
          events: [{ type: 'task_succeeded', at: 9, task: 'a', attempt: 1, output: 1 }],
          tasks: [],
          timers: [],
          logs: [],
        },
      ]);
      expect(stale.fenced).toEqual([run.id]);
      expect((await store.readEvents(run.id)).map((e) => e.event.type)).not.toContain('task_succeeded');
      const fresh = await store.commit([
        {
          lease: b,
          events: [{ type: 'task_succeeded', at: 9, task: 'a', attempt: 1, output: { rows: 3 } }],
          tasks: [
            {
              index: 0,
              taskId: 'a',
              state: 'succeeded',
              attempts: 1,
              startedAt: 2,
              endedAt: 9,
              skipReason: null,
              output: { rows: 3 },
              error: null,
            },
          ],
          timers: [{ task: 1, dueAt: null }],
          logs: [],
        },
      ]);
      expect(fresh.fenced).toEqual([]);
      expect((await store.getTaskRuns(run.id))[0]).toMatchObject({ state: 'succeeded', output: { rows: 3 } });
    });

    it('claims queued runs oldest first and respects max active runs per flow', async () => {
      const r1 = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const r2 = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const r3 = await newRun();
      const leases = await store.claimRuns({ owner: 'W', leaseMs: 10_000, limit: 10 });
      const ids = leases.map((l) => l.runId);
      expect(ids).toContain(r1.id);
      expect(ids).toContain(r3.id);
      expect(ids).not.toContain(r2.id);
      expect(await store.claimRuns({ owner: 'W2', leaseMs: 10_000, limit: 10 })).toEqual([]);
    });

    it('keeps requests until a commit answers them', async () => {
      const run = await newRun();
      await store.addRequest(run.id, 'cancel', { reason: 'stop' });
      const pending = await store.pendingRequests([run.id]);
      expect(pending).toMatchObject([{ runId: run.id, kind: 'cancel', payload: { reason: 'stop' } }]);
      const lease = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], answered: pending.map((p) => p.id) }]);
      expect(await store.pendingRequests([run.id])).toEqual([]);
    });

    it('filters runs by flow and state, newest first', async () => {
      const a = await newRun({ flowName: 'f1' });
      await new Promise((r) => setTimeout(r, 5));
      const b = await newRun({ flowName: 'f1' });
      await newRun({ flowName: 'f2' });
      expect((await store.listRuns({ flow: 'f1' })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await store.listRuns({ state: 'succeeded' })).length).toBe(0);
      expect((await store.listRuns({ limit: 1 })).length).toBe(1);
    });

    async function runWithId(id: string) {
      return (await store.createRun({ id, flow, params: {}, taskIds: ['a'], createdAt: Date.now(), dedupeKey: null }))
        .run;
    }

    it('finds runs by id prefix, in id order, at most the limit', async () => {
      for (const id of ['r0m3xk2a9f4c1d', 'r0m3xk2b00aa11', 'r0m3xk2a9f0000', 'r0m3xl0000aaaa', 'r0m3xk']) {
        await runWithId(id);
      }
      const ids = async (prefix: string, limit = 10) => (await store.runsByIdPrefix(prefix, limit)).map((r) => r.id);
      expect(await ids('r0m3xk2a')).toEqual(['r0m3xk2a9f0000', 'r0m3xk2a9f4c1d']);
      // The prefix itself, when it is a whole id, is among the runs it finds.
      expect(await ids('r0m3xk')).toEqual(['r0m3xk', 'r0m3xk2a9f0000', 'r0m3xk2a9f4c1d', 'r0m3xk2b00aa11']);
      expect(await ids('r0m3xk', 2)).toEqual(['r0m3xk', 'r0m3xk2a9f0000']);
      expect(await ids('r0m3xk2b00aa11')).toEqual(['r0m3xk2b00aa11']);
      expect(await ids('r0m3xz')).toEqual([]);
      // Bytewise: no case folding, and no neighbour that merely sorts close by.
      expect(await ids('R0M3XK')).toEqual([]);
      expect(await ids('r0m3xk2a9f4c1d0')).toEqual([]);
      expect(await store.runsByIdPrefix('r0m3xk2b', 1)).toMatchObject([{ id: 'r0m3xk2b00aa11', flow: 'demo' }]);
    });

    it('takes characters that LIKE or a collation would treat specially literally in an id prefix', async () => {
      for (const id of ['run_1', 'runa1', 'run%2', 'run-3', 'run-30', 'ru\u00e9', 'ru\u{1f600}x']) await runWithId(id);
      const ids = async (prefix: string) => (await store.runsByIdPrefix(prefix, 10)).map((r) => r.id);
      expect(await ids('run_')).toEqual(['run_1']);
      expect(await ids('run%')).toEqual(['run%2']);
      expect(await ids('run-3')).toEqual(['run-3', 'run-30']);
      expect(await ids('ru\u00e9')).toEqual(['ru\u00e9']);
      expect(await ids('ru\u{1f600}')).toEqual(['ru\u{1f600}x']);
      expect((await ids('ru')).length).toBe(7);
    });

    async function startedRun(): Promise<{ id: string; lease: Lease }> {
      const run = await newRun();
      const lease = (await store.claimRun(run.id, { owner: 'S', leaseMs: 10_000 })) as Lease;
      return { id: run.id, lease };
    }

    function dispatchEntry(lease: Lease, dispatches: { task: number; taskId: string; labels: string[] }[]) {
      return {
        lease,
        events: [],
        tasks: [],
        timers: [],
        logs: [],
        dispatches: dispatches.map((d) => ({ ...d, attempt: 1, payload: { inputs: { n: d.task } } })),
      };
    }

    it('hands queued attempts to workers whose labels match, and fences completions by token', async () => {
      const { id, lease } = await startedRun();
      await store.commit([
        dispatchEntry(lease, [
          { task: 0, taskId: 'a', labels: [] },
          { task: 1, taskId: 'b', labels: ['gpu'] },
        ]),
      ]);
      const plain = await store.claimTasks({ worker: 'w1', labels: [], limit: 10, leaseMs: 10_000 });
      expect(plain.map((t) => t.taskId)).toEqual(['a']);
      expect(plain[0]).toMatchObject({
        runId: id,
        flow: 'demo',
        version: 'v1',
        attempt: 1,
        payload: { inputs: { n: 0 } },
      });
      const gpu = await store.claimTasks({ worker: 'w2', labels: ['gpu', 'eu'], limit: 10, leaseMs: 10_000 });
      expect(gpu.map((t) => t.taskId)).toEqual(['b']);
      expect(await store.claimTasks({ worker: 'w3', labels: ['gpu'], limit: 10, leaseMs: 10_000 })).toEqual([]);

      const a = plain[0] as (typeof plain)[number];
      expect(await store.renewTasks('w1', [{ id: a.id, token: a.token }], 10_000)).toEqual({ lost: [], cancelled: [] });
      const wrong = await store.completeTasks([{ id: a.id, token: a.token + 1, status: 'succeeded', output: 1 }]);
      expect(wrong.refused).toEqual([a.id]);
      expect(
        (await store.completeTasks([{ id: a.id, token: a.token, status: 'succeeded', output: { rows: 2 } }])).refused,
      ).toEqual([]);
      const outcomes = await store.harvestTasks([id], 100);
      expect(outcomes).toEqual([
        { id: a.id, runId: id, task: 0, attempt: 1, status: 'succeeded', output: { rows: 2 } },
      ]);
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], harvested: [a.id] }]);
      expect(await store.harvestTasks([id], 100)).toEqual([]);
    });

    it('reports an expired claim as lost once, refuses its late completion, and passes cancellation to the worker', async () => {
      const { id, lease } = await startedRun();
      await store.commit([
        dispatchEntry(lease, [
          { task: 0, taskId: 'a', labels: [] },
          { task: 1, taskId: 'b', labels: [] },
        ]),
      ]);
      const claimed = await store.claimTasks({ worker: 'w1', labels: [], limit: 10, leaseMs: 40 });
      expect(claimed).toHaveLength(2);
      const [a, b] = claimed as [(typeof claimed)[number], (typeof claimed)[number]];
      await store.commit([{ lease, events: [], tasks: [], timers: [], logs: [], cancels: [{ task: 1, attempt: 1 }] }]);
      expect(await store.renewTasks('w1', [{ id: b.id, token: b.token }], 40)).toEqual({ lost: [], cancelled: [b.id] });
      await new Promise((r) => setTimeout(r, 120));
      const lost = await store.harvestTasks([id], 100);
      expect(lost.map((o) => [o.task, o.status])).toEqual([
        [0, 'lost'],
        [1, 'lost'],
      ]);
      expect(await store.harvestTasks([id], 100)).toEqual([]);
      expect(
        (await store.completeTasks([{ id: a.id, token: a.token, status: 'succeeded', output: 1 }])).refused,
      ).toEqual([a.id]);
      expect((await store.renewTasks('w1', [{ id: a.id, token: a.token }], 1000)).lost).toEqual([a.id]);
    });

    it('gives leadership to one holder at a time, and to another after the lease lapses', async () => {
      const a = await store.acquireLeadership('scheduler', 'A', 60);
      expect(a).toMatchObject({ holder: 'A' });
      expect(await store.acquireLeadership('scheduler', 'B', 60)).toBeNull();
      expect((await store.acquireLeadership('scheduler', 'A', 60))?.epoch).toBe(a?.epoch);
      await new Promise((r) => setTimeout(r, 120));
      const b = await store.acquireLeadership('scheduler', 'B', 10_000);
      expect(b?.epoch).toBe((a?.epoch ?? 0) + 1);
      await store.releaseLeadership(b as NonNullable<typeof b>);
      expect(await store.acquireLeadership('scheduler', 'C', 10_000)).toMatchObject({ holder: 'C' });
    });

    it("ends the previous holder's run leases when another takes the leadership, and no one else's", async () => {
      const mine = await newRun();
      const other = await newRun();
      const a = await store.acquireLeadership('scheduler', 'A', 60);
      expect(await store.claimRun(mine.id, { owner: 'A', leaseMs: 60_000 })).not.toBeNull();
      expect(await store.claimRun(other.id, { owner: 'X', leaseMs: 60_000 })).not.toBeNull();
      // Keeping the leadership ends nothing.
      expect((await store.acquireLeadership('scheduler', 'A', 60))?.epoch).toBe(a?.epoch);
      expect(await store.claimRuns({ owner: 'B', leaseMs: 60_000, limit: 10 })).toEqual([]);
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.acquireLeadership('scheduler', 'B', 60_000)).toMatchObject({ holder: 'B' });
      // A's run is B's to take at once, a minute before its own lease would have lapsed.
      const taken = await store.claimRuns({ owner: 'B', leaseMs: 60_000, limit: 10 });
      expect(taken.map((l) => l.runId)).toEqual([mine.id]);
      expect((await store.getRun(other.id))?.owner).toBe('X');
    });

    it('prunes finished runs that ended before the cutoff, with their history', async () => {
      const old = await startedRun();
      await store.commit([
        {
          lease: old.lease,
          events: [{ type: 'run_succeeded', at: 1000 }],
          run: { state: 'succeeded', startedAt: 900, endedAt: 1000, error: null },
          tasks: [],
          timers: [],
          logs: [{ runId: old.id, taskId: 'a', attempt: 1, stream: 'log', at: 950, text: 'x' }],
        },
      ]);
      const live = await newRun();
      expect(await store.prune(Date.now())).toEqual({ runs: 1 });
      expect(await store.getRun(old.id)).toBeNull();
      expect(await store.readEvents(old.id)).toEqual([]);
      expect(await store.readLogs(old.id, {})).toEqual([]);
      expect(await store.getRun(live.id)).not.toBeNull();
    });

    it('appends worker logs outside a run commit', async () => {
      const run = await newRun();
      await store.appendLogs([
        { runId: run.id, taskId: 'a', attempt: 1, stream: 'stdout', at: 1, text: 'one' },
        { runId: run.id, taskId: 'b', attempt: 1, stream: 'stderr', at: 2, text: 'two' },
      ]);
      expect((await store.readLogs(run.id, { task: 'b' })).map((l) => [l.stream, l.text])).toEqual([['stderr', 'two']]);
    });

    it('records triggers, fires them atomically with their runs, and refuses a stale cursor', async () => {
      const cron = { name: 'nightly', kind: 'cron', config: { cron: '0 2 * * *' }, params: {} };
      const hook = { name: 'hook', kind: 'webhook', config: {}, params: {} };
      await store.syncTriggers('demo', '/flows/demo.yaml', [cron, hook], 1000);
      expect((await store.listTriggers()).map((t) => [t.id, t.kind, t.paused])).toEqual([
        ['demo/hook', 'webhook', false],
        ['demo/nightly', 'cron', false],
      ]);
      expect(await store.setTriggerPaused('demo/hook', true)).toBe(true);
      expect(await store.setTriggerPaused('demo/none', true)).toBe(false);
      const newRun = (key: string) => ({
        id: runId(),
        flow,
        params: { interval_end: key },
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: key,
        triggerId: 'demo/nightly',
      });
      const first = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: null,
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [
          { at: 100, outcome: 'run', reason: 'cron 0 2 * * * at 100', run: newRun('demo/nightly@100') },
          { at: 100, outcome: 'skipped', reason: 'catch-up policy latest' },
        ],
      });
      expect(first?.map((r) => r.outcome)).toEqual(['run', 'skipped']);
      const runIdMade = first?.[0]?.runId as string;
      expect((await store.getRun(runIdMade))?.params).toEqual({ interval_end: 'demo/nightly@100' });
      // A second scheduler with the old cursor gets nothing done.
      const stale = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: null,
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [{ at: 100, outcome: 'run', reason: 'again', run: newRun('demo/nightly@100') }],
      });
      expect(stale).toBeNull();
      const again = await store.fireTrigger({
        triggerId: 'demo/nightly',
        expectedCursor: { last: 100 },
        cursor: { last: 100 },
        nextFireAt: 200,
        firings: [
          { at: 150, outcome: 'run', reason: 'redelivered', run: newRun('demo/nightly@100'), cancelRuns: [runIdMade] },
        ],
      });
      expect(again).toEqual([{ outcome: 'deduplicated', runId: runIdMade }]);
      expect((await store.pendingRequests([runIdMade])).map((r) => r.kind)).toEqual(['cancel']);
      const trigger = await store.getTrigger('demo/nightly');
      expect(trigger).toMatchObject({ cursor: { last: 100 }, nextFireAt: 200 });
      expect((await store.listFirings('demo/nightly', 10)).map((f) => f.outcome)).toEqual([
        'deduplicated',
        'skipped',
        'run',
      ]);
      expect((await store.activeRuns('demo')).map((r) => r.id)).toEqual([runIdMade]);
      // Redeclaring the flow keeps cursors and pauses, and drops triggers no longer declared.
      await store.syncTriggers('demo', '/flows/demo.yaml', [cron], 2000);
      expect((await store.listTriggers()).map((t) => t.id)).toEqual(['demo/nightly']);
      expect((await store.getTrigger('demo/nightly'))?.cursor).toEqual({ last: 100 });
    });

    it('keeps run priority and trigger id, and claims queued runs of higher priority first', async () => {
      const base = { flow, params: {}, taskIds: ['a'] };
      const low = await store.createRun({
        ...base,
        id: runId(),
        createdAt: Date.now() - 10_000,
        priority: -1,
        triggerId: 'demo/nightly#backfill-b1',
      });
      const normal = await store.createRun({ ...base, id: runId(), createdAt: Date.now(), triggerId: 'demo/nightly' });
      const manual = await store.createRun({ ...base, id: runId(), createdAt: Date.now() + 1 });
      expect([low.run.priority, low.run.triggerId]).toEqual([-1, 'demo/nightly#backfill-b1']);
      expect([normal.run.priority, normal.run.triggerId]).toEqual([0, 'demo/nightly']);
      expect([manual.run.priority, manual.run.triggerId]).toEqual([0, null]);
      expect((await store.getRun(low.run.id))?.priority).toBe(-1);
      // The older run has the lower priority: the two others go first.
      const first = await store.claimRuns({ owner: 'S', leaseMs: 10_000, limit: 2 });
      expect(first.map((l) => l.runId).sort()).toEqual([normal.run.id, manual.run.id].sort());
      const next = await store.claimRuns({ owner: 'S', leaseMs: 10_000, limit: 2 });
      expect(next.map((l) => l.runId)).toEqual([low.run.id]);
    });

    it('finds runs by dedupe key, with the reruns that extend it after a #', async () => {
      const make = (key: string) =>
        store.createRun({ id: runId(), flow, params: {}, taskIds: ['a'], createdAt: Date.now(), dedupeKey: key });
      const key = 'demo/nightly@2024-01-02T00:00:00.000Z';
      const own = await make(key);
      const rerun = await make(`${key}#backfill-b1-1`);
      await make('demo/nightly@2024-01-02T00:00:00.000Z0'); // a longer key, not a rerun
      await make('demo/nightly@2024-01-02T00:00:00.000Y');
      await make('demo/nightly@2024-01-02T00:00:00.000Z$');
      const other = await make('demo/nightly@2024-01-03T00:00:00.000Z');
      const found = await store.runsByDedupeKeys([key, 'demo/nightly@2024-01-03T00:00:00.000Z', 'nope']);
      expect(found.map((r) => r.id).sort()).toEqual([own.run.id, rerun.run.id, other.run.id].sort());
      expect(await store.runsByDedupeKeys([])).toEqual([]);
    });

    it('records backfills and moves them with their runs in one transaction, refusing a stale version', async () => {
      const spec = { name: 'nightly', kind: 'cron', config: { cron: '0 2 * * *', timezone: 'UTC' }, params: {} };
      const made = await store.createBackfill({
        id: 'b1',
        flow: 'demo',
        triggerId: 'demo/nightly',
        spec,
        sourcePath: '/flows/demo.yaml',
        fromAt: 1000,
        toAt: 5000,
        maxParallel: 2,
        rerun: true,
        state: 'running',
        total: 4,
        createdAt: 100,
      });
      expect(made).toMatchObject({
        id: 'b1',
        spec,
        rerun: true,
        state: 'running',
        total: 4,
        nextIndex: 0,
        doneIndex: 0,
        endedAt: null,
        reason: null,
      });
      await store.createBackfill({ ...made, id: 'b2', rerun: false, state: 'paused', createdAt: 200 });
      expect((await store.listBackfills()).map((b) => b.id)).toEqual(['b2', 'b1']);
      expect((await store.listBackfills({ states: ['running'] })).map((b) => b.id)).toEqual(['b1']);
      expect(await store.getBackfill('none')).toBeNull();

      const existing = await newRun({ dedupeKey: 'demo/nightly@k1' });
      const run = (key: string) => ({
        id: runId(),
        flow,
        params: {},
        taskIds: ['a'],
        createdAt: Date.now(),
        dedupeKey: key,
        priority: -1,
        triggerId: 'demo/nightly#backfill-b1',
      });
      const moved = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version,
        at: 300,
        nextIndex: 2,
        runs: [run('demo/nightly@k1'), run('demo/nightly@k2')],
        cancelRuns: [{ runId: existing.id, reason: 'test' }],
      });
      expect(moved?.runs.map((r) => r.created)).toEqual([false, true]);
      expect(moved?.runs[0]?.runId).toBe(existing.id);
      expect(moved?.backfill).toMatchObject({ nextIndex: 2, doneIndex: 0, state: 'running', updatedAt: 300 });
      expect(moved?.backfill.version).toBe(made.version + 1);
      expect((await store.pendingRequests([existing.id])).map((r) => [r.kind, r.payload.reason])).toEqual([
        ['cancel', 'test'],
      ]);
      // A second process that read the old version writes nothing.
      const stale = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version,
        at: 400,
        nextIndex: 3,
        runs: [run('demo/nightly@k3')],
      });
      expect(stale).toBeNull();
      expect(await store.runsByDedupeKeys(['demo/nightly@k3'])).toEqual([]);
      expect((await store.getBackfill('b1'))?.nextIndex).toBe(2);
      const done = await store.updateBackfill({
        id: 'b1',
        expectedVersion: made.version + 1,
        at: 500,
        doneIndex: 4,
        nextIndex: 4,
        state: 'completed',
        reason: 'finished',
      });
      expect(done?.backfill).toMatchObject({ state: 'completed', endedAt: 500, reason: 'finished', doneIndex: 4 });
      expect(await store.updateBackfill({ id: 'none', expectedVersion: 0, at: 1 })).toBeNull();
    });

    /** A patch for task run `index`, named as the engine names map items (`m[<item>]`). */
    function item(index: number, state: TaskRunPatch['state'], extra: Partial<TaskRunPatch> = {}): TaskRunPatch {
      return {
        index,
        taskId: `m[${index - 3}]`,
        state,
        attempts: 0,
        startedAt: null,
        endedAt: null,
        skipReason: null,
        output: undefined,
        error: null,
        ...extra,
      };
    }

    function tasksEntry(lease: Lease, tasks: TaskRunPatch[], timers: { task: number; dueAt: number | null }[] = []) {
      return { lease, events: [], tasks, timers, logs: [] };
    }

    it('creates the task runs a commit names for the first time, updates them after, and fences both', async () => {
      const { id, lease } = await startedRun();
      const made = await store.commit([
        tasksEntry(lease, [item(0, 'succeeded', { taskId: 'a', attempts: 1 }), item(3, 'queued'), item(4, 'queued')]),
      ]);
      expect(made.fenced).toEqual([]);
      expect((await store.getTaskRuns(id)).map((t) => [t.index, t.taskId, t.state])).toEqual([
        [0, 'a', 'succeeded'],
        [1, 'b', 'pending'],
        [2, 'c', 'pending'],
        [3, 'm[0]', 'queued'],
        [4, 'm[1]', 'queued'],
      ]);
      expect((await store.getRun(id))?.taskCount).toBe(5);

      // A later patch changes the row's state, never its task id.
      await store.commit([
        tasksEntry(lease, [
          item(3, 'succeeded', { taskId: 'other', attempts: 1, startedAt: 10, endedAt: 20, output: { n: 1 } }),
          item(4, 'waiting', { attempts: 1, startedAt: 10 }),
        ]),
      ]);
      const [first, , , third, fourth] = await store.getTaskRuns(id);
      expect(third).toMatchObject({ taskId: 'm[0]', state: 'succeeded', attempts: 1, endedAt: 20, output: { n: 1 } });
      expect(fourth).toMatchObject({ taskId: 'm[1]', state: 'waiting', startedAt: 10, endedAt: null, error: null });
      expect(fourth?.output).toBeUndefined();
      expect(first?.output).toBeUndefined();
      // A task that returned null has an output, and it is null.
      await store.commit([tasksEntry(lease, [item(0, 'succeeded', { taskId: 'a', attempts: 1, output: null })])]);
      expect((await store.getTaskRuns(id))[0]).toHaveProperty('output', null);
      expect((await store.getRun(id))?.taskCount).toBe(5);

      const next = (await store.claimRun(id, { owner: 'T', leaseMs: 10_000, takeOverEpoch: lease.epoch })) as Lease;
      expect((await store.commit([tasksEntry(lease, [item(5, 'queued')])])).fenced).toEqual([id]);
      expect(await store.getTaskRuns(id)).toHaveLength(5);
      // Two patches for one index in one entry: the last one wins, on both stores.
      await store.commit([tasksEntry(next, [item(5, 'queued'), item(5, 'running', { attempts: 1 })])]);
      expect((await store.getTaskRuns(id))[5]).toMatchObject({ index: 5, taskId: 'm[2]', state: 'running' });
      expect((await store.getRun(id))?.taskCount).toBe(6);
    });

    it('creates ten thousand task runs in one commit', async () => {
      const { id, lease } = await startedRun();
      const items = Array.from({ length: 10_000 }, (_, i) => item(3 + i, 'pending'));
      expect((await store.commit([tasksEntry(lease, items)])).fenced).toEqual([]);
      const tasks = await store.getTaskRuns(id);
      expect(tasks).toHaveLength(10_003);
      expect(tasks[10_002]).toMatchObject({ index: 10_002, taskId: 'm[9999]', state: 'pending', attempts: 0 });
      expect((await store.getRun(id))?.taskCount).toBe(10_003);
    });

    it('keeps timers of task runs created at run time, and clears them, as for the first tasks', async () => {
      const { id, lease } = await startedRun();
      await store.commit([
        tasksEntry(
          lease,
          [item(1, 'retrying', { taskId: 'b', attempts: 1 }), item(3, 'retrying', { attempts: 1 })],
          [
            { task: 1, dueAt: 6000 },
            { task: 3, dueAt: 5000 },
          ],
        ),
      ]);
      expect(await factory.timers(store, id)).toEqual([
        { task: 1, dueAt: 6000 },
        { task: 3, dueAt: 5000 },
      ]);
      await store.commit([tasksEntry(lease, [item(4, 'waiting')], [{ task: 4, dueAt: 7000 }])]);
      await store.commit([tasksEntry(lease, [], [{ task: 3, dueAt: 8000 }])]);
      expect(await factory.timers(store, id)).toEqual([
        { task: 1, dueAt: 6000 },
        { task: 3, dueAt: 8000 },
        { task: 4, dueAt: 7000 },
      ]);
      await store.commit([
        tasksEntry(
          lease,
          [item(3, 'queued', { attempts: 1 })],
          [
            { task: 3, dueAt: null },
            { task: 4, dueAt: null },
          ],
        ),
      ]);
      expect(await factory.timers(store, id)).toEqual([{ task: 1, dueAt: 6000 }]);
    });

    it('keeps waiting task runs, whose run stays active and counts against max active runs', async () => {
      const parked = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const next = await newRun({ maxActiveRuns: 1, flowName: 'limited' });
      const lease = (await store.claimRun(parked.id, { owner: 'S', leaseMs: 10_000 })) as Lease;
      await store.commit([
        {
          ...tasksEntry(lease, [item(0, 'waiting', { taskId: 'a', attempts: 1, startedAt: 5 })]),
          run: { state: 'running', startedAt: 5, endedAt: null, error: null },
        },
      ]);
      await store.releaseRun(lease);
      expect((await store.getTaskRuns(parked.id))[0]).toMatchObject({ taskId: 'a', state: 'waiting' });
      expect((await store.activeRuns('limited')).map((r) => r.id).sort()).toEqual([parked.id, next.id].sort());
      expect((await store.listRuns({ state: 'running' })).map((r) => r.id)).toEqual([parked.id]);
      const claimed = await store.claimRuns({ owner: 'W', leaseMs: 10_000, limit: 10 });
      expect(claimed.map((l) => l.runId)).toEqual([parked.id]);
    });

    it("links child runs to the run and task that started them, and lists a run's children", async () => {
      const parent = await newRun();
      const child = (n: number) =>
        store.createRun({
          id: runId(),
          flow: { ...flow, flow: 'child' },
          params: { n },
          taskIds: ['x'],
          createdAt: Date.now() + n,
          dedupeKey: `${parent.id}/sub[${n}]`,
          parent: { runId: parent.id, task: 'sub' },
        });
      const first = await child(0);
      const second = await child(1);
      expect([first.created, second.created]).toEqual([true, true]);
      expect(first.run).toMatchObject({ parentRunId: parent.id, parentTask: 'sub', dedupeKey: `${parent.id}/sub[0]` });
      // A parent that crashed before recording its child finds the same child again.
      const again = await child(0);
      expect([again.created, again.run.id]).toEqual([false, first.run.id]);

      const children = await store.listRuns({ parentRunId: parent.id });
      expect(children.map((r) => [r.id, r.parentRunId, r.parentTask])).toEqual([
        [second.run.id, parent.id, 'sub'],
        [first.run.id, parent.id, 'sub'],
      ]);
      expect((await store.listRuns({ parentRunId: parent.id, limit: 1 })).map((r) => r.id)).toEqual([second.run.id]);
      expect(await store.listRuns({ parentRunId: first.run.id })).toEqual([]);
      expect(await store.getRun(second.run.id)).toMatchObject({ parentRunId: parent.id, parentTask: 'sub' });
      expect(await store.getRun(parent.id)).toMatchObject({ parentRunId: null, parentTask: null });
    });

    it('gives a child run its depth and refuses, atomically, one too deep or one child too many', async () => {
      const limits = { depth: 2, childRuns: 3 };
      const child = (parentId: string, n: number, task = 'sub') =>
        store.createRun({
          id: runId(),
          flow: { ...flow, flow: 'child' },
          params: { n },
          taskIds: ['x'],
          createdAt: Date.now() + n,
          dedupeKey: `${parentId}/${task}[${n}]`,
          parent: { runId: parentId, task, limits },
        });
      const root = await newRun();
      expect(root.depth).toBe(0);
      const one = (await child(root.id, 0)).run;
      const two = (await child(one.id, 0)).run;
      expect([one.depth, two.depth]).toEqual([1, 2]);
      await expect(child(two.id, 0)).rejects.toMatchObject({
        code: 'SUBFLOW_DEPTH',
        message: `subflow sub of run ${two.id}: a child run at depth 3 is over the limit subflow_depth (2)`,
      });
      expect(await store.listRuns({ parentRunId: two.id })).toEqual([]);

      // Children started at once are counted one after the other: exactly the limit is made.
      const wide = await newRun();
      const results = await Promise.allSettled([0, 1, 2, 3, 4].map((n) => child(wide.id, n, 'fan')));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code: string }] : []));
      expect(refused.map((e) => e.code)).toEqual(['SUBFLOW_CHILD_RUNS', 'SUBFLOW_CHILD_RUNS']);
      expect(await store.listRuns({ parentRunId: wide.id })).toHaveLength(3);
      // A child found again by its dedupe key is returned, whatever the count.
      const made = (await store.listRuns({ parentRunId: wide.id })).map((r) => r.params.n as number).sort();
      const again = await child(wide.id, made[0] as number, 'fan');
      expect(again.created).toBe(false);
      // Without limits, a child is made and counted all the same.
      const free = await store.createRun({
        id: runId(),
        flow: { ...flow, flow: 'child' },
        params: {},
        taskIds: ['x'],
        createdAt: Date.now(),
        parent: { runId: wide.id, task: 'other' },
      });
      expect(free.run.depth).toBe(1);
      await expect(child(wide.id, 9, 'fan')).rejects.toMatchObject({ code: 'SUBFLOW_CHILD_RUNS' });
    });

    it('keeps signal and approval requests, with their JSON payloads, until a commit answers them', async () => {
      const run = await newRun();
      const signal = { name: 'file_landed', data: { path: '/in/a.csv', sizes: [1, 2] } };
      const approval = { task: 'publish', approved: true, by: 'ana', comment: null };
      await store.addRequest(run.id, 'signal', signal);
      await store.addRequest(run.id, 'approval', approval);
      await store.addRequest(run.id, 'cancel_task', { task: 'b' });
      const pending = await store.pendingRequests([run.id]);
      expect(pending.map((r) => [r.runId, r.kind, r.payload])).toEqual([
        [run.id, 'signal', signal],
        [run.id, 'approval', approval],
        [run.id, 'cancel_task', { task: 'b' }],
      ]);
      const lease = (await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 })) as Lease;
      const [answered, ...rest] = pending;
      await store.commit([{ ...tasksEntry(lease, []), answered: [(answered as (typeof pending)[number]).id] }]);
      expect((await store.pendingRequests([run.id])).map((r) => r.kind)).toEqual(['approval', 'cancel_task']);
      await store.commit([{ ...tasksEntry(lease, []), answered: rest.map((r) => r.id) }]);
      expect(await store.pendingRequests([run.id])).toEqual([]);
    });

    it('reads the database clock', async () => {
      const before = Date.now();
      const now = await store.now();
      expect(Math.abs(now - before)).toBeLessThan(5000);
    });
  });
}
