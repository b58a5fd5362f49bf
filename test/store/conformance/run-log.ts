/**
 * Conformance of the run log port (src/store/ports/run-log.ts): runs, task runs, events,
 * leases, fencing, parking and child runs.
 */
import { expect, it } from 'vitest';
import type { Lease, TaskRunPatch } from '../../../src/store/store.js';
import { HISTORY_FORMAT } from '../../../src/core/run-history.js';
import type { RunEvent } from '../../../src/core/run-machine.js';
import type { TaskStateName } from '../../../src/core/states.js';
import { describePort, flow, runId, runningTaskA, tasksEntry } from './shared.js';
import type { StoreFactory } from './shared.js';

export function runLogConformance(factory: StoreFactory): void {
  describePort(factory, 'run log', (t) => {
    const { newRun, startedRun, runWithId } = t;

    it('creates a queued run with pending task runs and a run_created event', async () => {
      const { store } = t;
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
      const { store } = t;
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

    it('creates a run owned by the lease in the commit that records its start', async () => {
      const { store } = t;
      const id = runId();
      const lease: Lease = { runId: id, owner: 'A', epoch: 1 };
      const result = await store.commit([
        {
          lease,
          create: {
            run: { id, flow, params: { day: 'x' }, taskIds: ['a'], createdAt: Date.now(), labels: { team: 'ops' } },
            leaseMs: 10_000,
          },
          events: [
            { type: 'run_started', at: 1 },
            { type: 'task_started', at: 2, task: 'a', attempt: 1 },
          ],
          run: { state: 'running', startedAt: 1, endedAt: null, error: null },
          tasks: [runningTaskA()],
          timers: [],
          logs: [],
        },
      ]);
      expect(result.fenced).toEqual([]);
      const run = await store.getRun(id);
      expect(run).toMatchObject({
        state: 'running',
        owner: 'A',
        epoch: 1,
        params: { day: 'x' },
        labels: { team: 'ops' },
      });
      expect(run?.leaseUntil).toBeGreaterThan(Date.now());
      const events = await store.readEvents(id);
      expect(events.map((e) => [e.seq, e.event.type])).toEqual([
        [1, 'run_created'],
        [2, 'run_started'],
        [3, 'task_started'],
      ]);
      expect((await store.getTaskRuns(id)).map((r) => [r.taskId, r.state, r.attempts])).toEqual([['a', 'running', 1]]);
      // Owned from its first commit: nobody else may claim it while the lease holds.
      expect(await store.claimRun(id, { owner: 'B', leaseMs: 10_000 })).toBeNull();
      expect(await store.claimRuns({ owner: 'B', leaseMs: 10_000, limit: 10 })).toEqual([]);
      expect(await store.renewLeases([lease], 10_000)).toEqual([]);
    });

    it('fences a creating commit whose run exists already, writing nothing of it', async () => {
      const { store } = t;
      const existing = await newRun();
      const other = runId();
      const entry = (id: string) => ({
        lease: { runId: id, owner: 'A', epoch: 1 },
        create: { run: { id, flow, params: {}, taskIds: ['a'], createdAt: Date.now() }, leaseMs: 10_000 },
        events: [{ type: 'run_started', at: 1 } as RunEvent],
        run: { state: 'running' as const, startedAt: 1, endedAt: null, error: null },
        tasks: [],
        timers: [],
        logs: [],
      });
      const result = await store.commit([entry(existing.id), entry(other)]);
      expect(result.fenced).toEqual([existing.id]);
      expect(await store.getRun(existing.id)).toMatchObject({ state: 'queued', owner: null });
      expect((await store.readEvents(existing.id)).map((e) => e.event.type)).toEqual(['run_created']);
      // The other entry of the same commit is written.
      expect((await store.readEvents(other)).map((e) => e.event.type)).toEqual(['run_created', 'run_started']);
    });

    it('hands a run to one owner at a time and bumps the epoch on each claim', async () => {
      const { store } = t;
      const run = await newRun();
      const a = await store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 });
      expect(a).not.toBeNull();
      expect(await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 })).toBeNull();
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000, takeOverEpoch: (a as Lease).epoch });
      expect(b?.epoch).toBe((a as Lease).epoch + 1);
    });

    it('lets another owner claim a run whose lease lapsed', async () => {
      const { store } = t;
      const run = await newRun();
      const a = (await store.claimRun(run.id, { owner: 'A', leaseMs: 30 })) as Lease;
      await new Promise((r) => setTimeout(r, 80));
      const b = await store.claimRun(run.id, { owner: 'B', leaseMs: 10_000 });
      expect(b?.epoch).toBe(a.epoch + 1);
      expect(await store.renewLeases([a], 10_000)).toEqual([run.id]);
    });

    it('commits events and derived rows together, and refuses a stale epoch', async () => {
      const { store } = t;
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
          tasks: [{ ...runningTaskA(), output: undefined }],
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

    it('commits hundreds of events and task rows of several runs in order, each run its own', async () => {
      const { store } = t;
      const ids = Array.from({ length: 130 }, (_, i) => `t${i}`);
      const made = await Promise.all(
        [0, 1].map(() => store.createRun({ id: runId(), flow, params: {}, taskIds: ids, createdAt: Date.now() })),
      );
      const leases = await Promise.all(
        made.map(({ run }) => store.claimRun(run.id, { owner: 'A', leaseMs: 10_000 }) as Promise<Lease>),
      );
      const patch = (i: number, state: TaskStateName): TaskRunPatch => ({
        index: i,
        taskId: `t${i}`,
        state,
        attempts: 1,
        startedAt: i,
        endedAt: null,
        skipReason: null,
        output: { i },
        error: null,
      });
      const result = await store.commit(
        leases.map((lease, k) => ({
          lease,
          events: ids.map((id, i): RunEvent => ({ type: 'task_started', at: i, task: id, attempt: 1 + k })),
          // One row more than the run had: a task run appended at the end, as a map adds them.
          tasks: [...ids.map((_, i) => patch(i, k === 0 ? 'running' : 'queued')), patch(130, 'queued')],
          timers: [],
          logs: [],
        })),
      );
      expect(result.fenced).toEqual([]);
      for (const [k, { run }] of made.entries()) {
        const events = await store.readEvents(run.id);
        expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 131 }, (_, i) => i + 1));
        expect(events.slice(1).map((e) => e.event)).toEqual(
          ids.map((id, i) => ({ v: HISTORY_FORMAT, type: 'task_started', at: i, task: id, attempt: 1 + k })),
        );
        const rows = await store.getTaskRuns(run.id);
        expect(rows).toHaveLength(131);
        expect(rows.map((r) => [r.taskId, r.state, r.output])).toEqual(
          Array.from({ length: 131 }, (_, i) => [`t${i}`, k === 0 && i < 130 ? 'running' : 'queued', { i }]),
        );
        expect((await store.getRun(run.id))?.taskCount).toBe(131);
      }
    });

    it('claims queued runs oldest first and respects max active runs per flow', async () => {
      const { store } = t;
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

    it('filters runs by flow and state, newest first', async () => {
      const { store } = t;
      const a = await newRun({ flowName: 'f1' });
      await new Promise((r) => setTimeout(r, 5));
      const b = await newRun({ flowName: 'f1' });
      await newRun({ flowName: 'f2' });
      expect((await store.listRuns({ flow: 'f1' })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await store.listRuns({ state: 'succeeded' })).length).toBe(0);
      expect((await store.listRuns({ limit: 1 })).length).toBe(1);
    });

    it('finds runs by id prefix, in id order, at most the limit', async () => {
      const { store } = t;
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
      const { store } = t;
      for (const id of ['run_1', 'runa1', 'run%2', 'run-3', 'run-30', 'ru\u00e9', 'ru\u{1f600}x']) await runWithId(id);
      const ids = async (prefix: string) => (await store.runsByIdPrefix(prefix, 10)).map((r) => r.id);
      expect(await ids('run_')).toEqual(['run_1']);
      expect(await ids('run%')).toEqual(['run%2']);
      expect(await ids('run-3')).toEqual(['run-3', 'run-30']);
      expect(await ids('ru\u00e9')).toEqual(['ru\u00e9']);
      expect(await ids('ru\u{1f600}')).toEqual(['ru\u{1f600}x']);
      expect((await ids('ru')).length).toBe(7);
    });

    it('keeps run priority and trigger id, and claims queued runs of higher priority first', async () => {
      const { store } = t;
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
      const { store } = t;
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

    it('creates the task runs a commit names for the first time, updates them after, and fences both', async () => {
      const { store } = t;
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
      const { store } = t;
      const { id, lease } = await startedRun();
      const items = Array.from({ length: 10_000 }, (_, i) => item(3 + i, 'pending'));
      expect((await store.commit([tasksEntry(lease, items)])).fenced).toEqual([]);
      const tasks = await store.getTaskRuns(id);
      expect(tasks).toHaveLength(10_003);
      expect(tasks[10_002]).toMatchObject({ index: 10_002, taskId: 'm[9999]', state: 'pending', attempts: 0 });
      expect((await store.getRun(id))?.taskCount).toBe(10_003);
    });

    it('keeps timers of task runs created at run time, and clears them, as for the first tasks', async () => {
      const { store } = t;
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
      const { store } = t;
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
      const { store } = t;
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
      const { store } = t;
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

    // Claimers race from separate store objects, as separate processes would: each has its
    // own connections, so on PostgreSQL their statements meet on the server at once.
    it('hands one queued run to exactly one of eight claimers racing for it', async () => {
      const { store } = t;
      const run = await newRun();
      const claimers = await t.connectMany(8);
      const results = await Promise.all(
        claimers.map((other, i) => other.claimRun(run.id, { owner: `C${i}`, leaseMs: 10_000 })),
      );
      const won = results.filter((lease): lease is Lease => lease !== null);
      expect(won).toHaveLength(1);
      const winner = won[0] as Lease;
      expect(winner.epoch).toBe(run.epoch + 1);
      expect(await store.getRun(run.id)).toMatchObject({ owner: winner.owner, epoch: winner.epoch });
    });

    it('never hands one run to two claimRuns batches racing each other', async () => {
      const { store } = t;
      const made = await store.createRuns(
        Array.from({ length: 40 }, (_, i) => ({
          id: runId(),
          flow,
          params: { i },
          taskIds: ['a'],
          createdAt: Date.now() + i,
        })),
      );
      const claimers = await t.connectMany(8);
      const batches = await Promise.all(
        claimers.map((other, i) => other.claimRuns({ owner: `C${i}`, leaseMs: 10_000, limit: 10 })),
      );
      const leases = batches.flat();
      const ids = leases.map((l) => l.runId);
      expect(new Set(ids).size).toBe(ids.length);
      // Each lease is the one the run holds: no batch was handed a run another one took after.
      for (const lease of leases) {
        expect(await store.getRun(lease.runId)).toMatchObject({ owner: lease.owner, epoch: lease.epoch });
      }
      // The runs no batch took are still free, and nothing else is.
      const rest = await store.claimRuns({ owner: 'late', leaseMs: 10_000, limit: 100 });
      expect([...ids, ...rest.map((l) => l.runId)].sort()).toEqual(made.map((m) => m.run.id).sort());
    });

    it('keeps the labels a run was created with, and lists the runs that have every label asked for', async () => {
      const { store } = t;
      const make = (labels?: Record<string, string>) =>
        store.createRun({
          id: runId(),
          flow,
          params: {},
          taskIds: ['a'],
          createdAt: Date.now(),
          ...(labels ? { labels } : {}),
        });
      const growthProd = (await make({ team: 'growth', env: 'prod' })).run;
      const growthDev = (await make({ team: 'growth', env: 'dev', 'example.com/tier': 'gold' })).run;
      const plain = (await make()).run;
      const [batched] = await store.createRuns([
        { id: runId(), flow, params: {}, taskIds: ['a'], createdAt: Date.now(), labels: { team: 'data', env: 'prod' } },
      ]);
      expect(growthProd.labels).toEqual({ team: 'growth', env: 'prod' });
      expect(plain.labels).toEqual({});
      expect(batched?.run.labels).toEqual({ team: 'data', env: 'prod' });
      expect((await store.getRun(growthDev.id))?.labels).toEqual({
        team: 'growth',
        env: 'dev',
        'example.com/tier': 'gold',
      });

      const ids = async (labels: Record<string, string>, extra: { flow?: string; limit?: number } = {}) =>
        (await store.listRuns({ labels, ...extra })).map((r) => r.id).sort();
      expect(await ids({ team: 'growth' })).toEqual([growthProd.id, growthDev.id].sort());
      expect(await ids({ team: 'growth', env: 'prod' })).toEqual([growthProd.id]);
      expect(await ids({ env: 'prod' })).toEqual([growthProd.id, batched?.run.id].sort());
      expect(await ids({ 'example.com/tier': 'gold' })).toEqual([growthDev.id]);
      // A value must match whole, and a key with another key's value matches nothing.
      expect(await ids({ team: 'grow' })).toEqual([]);
      expect(await ids({ env: 'growth' })).toEqual([]);
      expect(await ids({ team: 'growth', env: 'staging' })).toEqual([]);
      expect(await ids({ team: 'growth' }, { flow: 'other' })).toEqual([]);
      expect(await ids({ team: 'growth' }, { limit: 1 })).toHaveLength(1);
      // No labels asked for: every run.
      expect(await ids({})).toHaveLength(4);
      // Labels of runs made in one batch are found as those of runs made one by one.
      expect((await store.listRuns({ labels: { team: 'data' } })).map((r) => r.id)).toEqual([batched?.run.id]);
    });

    it('lets go of the lease of a run in the commit that ends it', async () => {
      const { store } = t;
      const { id, lease } = await startedRun();
      const at = Date.now();
      const running = await store.commit([
        {
          lease,
          events: [],
          run: { state: 'running', startedAt: at, endedAt: null, error: null },
          tasks: [],
          timers: [],
          logs: [],
        },
      ]);
      expect(running.fenced).toEqual([]);
      expect(await store.getRun(id)).toMatchObject({ state: 'running', owner: 'S' });
      const ended = await store.commit([
        {
          lease,
          events: [],
          run: { state: 'succeeded', startedAt: at, endedAt: at + 1, error: null },
          tasks: [],
          timers: [],
          logs: [],
        },
      ]);
      expect(ended.fenced).toEqual([]);
      expect(await store.getRun(id)).toMatchObject({
        state: 'succeeded',
        owner: null,
        leaseUntil: null,
        epoch: lease.epoch,
      });
    });

    it('claims a parked run when its wake-up is due, or once it is within the wake-ahead asked for', async () => {
      const { store } = t;
      const { id, lease } = await startedRun();
      const wakeAt = (await store.now()) + 60_000;
      expect(await store.parkRun(lease, { wakeAt, awaiting: [] })).toBe(true);
      const claim = (wakeAheadMs?: number) =>
        store.claimRuns({
          owner: 'W',
          leaseMs: 10_000,
          limit: 10,
          ...(wakeAheadMs === undefined ? {} : { wakeAheadMs }),
        });
      expect(await claim()).toEqual([]);
      expect(await claim(30_000)).toEqual([]);
      const [taken] = await claim(120_000);
      expect(taken).toMatchObject({ runId: id, owner: 'W', epoch: lease.epoch + 1 });
      expect(await store.getRun(id)).toMatchObject({ owner: 'W' });
      expect(await claim(120_000)).toEqual([]);
    });

    it('creates runs asked for at once, each on its own: a refused child fails alone', async () => {
      const { store } = t;
      const root = await newRun();
      const limits = { depth: 5, childRuns: 1 };
      const make = (n: number, parent: boolean) =>
        store.createRun({
          id: runId(),
          flow: { ...flow, flow: parent ? 'child' : 'demo' },
          params: { n },
          taskIds: ['x'],
          createdAt: Date.now() + n,
          ...(parent ? { dedupeKey: `${root.id}/sub[${n}]`, parent: { runId: root.id, task: 'sub', limits } } : {}),
        });
      // Eight runs in one turn: two children of a parent that may have one, among six others.
      const outcomes = await Promise.allSettled([0, 1, 2, 3, 4, 5, 6, 7].map((n) => make(n, n === 2 || n === 5)));
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SUBFLOW_CHILD_RUNS' });
      const made = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      expect(made).toHaveLength(7);
      for (const m of made) {
        expect(m.created).toBe(true);
        expect(await store.getRun(m.run.id)).toMatchObject({ id: m.run.id, state: 'queued' });
        expect((await store.readEvents(m.run.id)).map((e) => e.event.type)).toEqual(['run_created']);
      }
      expect(await store.listRuns({ parentRunId: root.id })).toHaveLength(1);
    });
  });
}
