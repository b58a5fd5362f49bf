/**
 * Backfills (src/triggers/backfill.ts): the pure planning, and recorded backfills
 * advanced by the trigger service on a real SQLite file and on PostgreSQL with a virtual
 * clock: max_parallel, priority, dedupe keys shared with the schedule, idempotence, plan
 * without changes, pause/resume/cancel, --rerun, restarts and concurrent processors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { triggerFlows } from '../../src/app/runtime.js';
import { scheduledRunKey } from '../../src/core/schedule.js';
import type { RunRecord } from '../../src/store/store.js';
import {
  backfillFireTimes,
  backfillProgress,
  backfillTrigger,
  BackfillProcessor,
  classifyInterval,
  latestRun,
  moveBackfill,
  planBackfill,
  recordBackfill,
  rerunKey,
  rerunNumber,
} from '../../src/triggers/backfill.js';
import { cronSchedule, intervalSchedule } from '../../src/triggers/time-schedule.js';
import { parseInstant } from '../../src/cli/commands/backfill.js';
import type { TriggerProject } from './trigger-harness.js';
import { BACKENDS, flowYaml, iso, openTriggerProject } from './trigger-harness.js';

/** 02:00 UTC on 1 January 2024 + (d - 1) days; day(0) is 31 December 2023. */
const day = (d: number) => Date.UTC(2024, 0, d, 2);
const daily = (name: string, extra: readonly string[] = [], settings: readonly string[] = []) =>
  flowYaml(name, [
    ...extra,
    'triggers:',
    '  nightly:',
    '    kind: cron',
    '    cron: "0 2 * * *"',
    ...settings.map((s) => `    ${s}`),
  ]);

function fakeRun(key: string | null, state: RunRecord['state']): RunRecord {
  return {
    id: `r-${key}-${state}`,
    flow: 'f',
    version: 'v',
    state,
    params: {},
    dedupeKey: key,
    parentRunId: null,
    parentTask: null,
    depth: 0,
    createdAt: 0,
    startedAt: null,
    endedAt: null,
    error: null,
    owner: null,
    epoch: 0,
    leaseUntil: null,
    taskCount: 1,
    maxActiveRuns: null,
    priority: 0,
    triggerId: null,
    labels: {},
  };
}

describe('backfill planning (pure)', () => {
  it('takes the fire times in (from, to], oldest first, and refuses too many', () => {
    const schedule = cronSchedule('0 2 * * *', 'UTC');
    expect(backfillFireTimes(schedule, Date.parse('2024-01-01T00:00:00Z'), day(4)).map(iso)).toEqual([
      iso(day(1)),
      iso(day(2)),
      iso(day(3)),
      iso(day(4)),
    ]);
    expect(backfillFireTimes(schedule, day(1), day(3)).map(iso)).toEqual([iso(day(2)), iso(day(3))]);
    expect(backfillFireTimes(schedule, day(1), day(1) + 1000)).toEqual([]);
    expect(() => backfillFireTimes(intervalSchedule(60_000), 0, 10_001 * 60_000)).toThrow(
      /more than 10000 intervals; at most 10000 per backfill/,
    );
  });

  it('classifies an interval by its latest run, and reruns only failed ones, once per backfill', () => {
    const key = 'f/t@2024-01-01T02:00:00.000Z';
    const opts = { rerun: false, handled: false };
    expect(classifyInterval([], opts)).toMatchObject({ plan: 'create', progress: 'pending' });
    expect(classifyInterval([], { ...opts, handled: true })).toMatchObject({ plan: 'create', progress: 'done' });
    expect(classifyInterval([fakeRun(key, 'queued')], opts)).toMatchObject({ plan: 'running', progress: 'running' });
    expect(classifyInterval([fakeRun(key, 'succeeded')], opts)).toMatchObject({ plan: 'succeeded', progress: 'done' });
    expect(classifyInterval([fakeRun(key, 'failed')], opts)).toMatchObject({ plan: 'failed', progress: 'failed' });
    expect(classifyInterval([fakeRun(key, 'cancelled')], { ...opts, rerun: true })).toMatchObject({
      plan: 'rerun',
      progress: 'pending',
    });
    // The backfill's own rerun failed too: it stays failed.
    const own = fakeRun(rerunKey(key, 'b1', 1), 'failed');
    expect(
      classifyInterval([fakeRun(key, 'failed'), own], { rerun: true, handled: false, backfillId: 'b1' }),
    ).toMatchObject({ plan: 'failed', run: own });
    // Another backfill's successful rerun wins over the failed original.
    const fixed = fakeRun(rerunKey(key, 'b0', 1), 'succeeded');
    expect(classifyInterval([fixed, fakeRun(key, 'failed')], { rerun: true, handled: false })).toMatchObject({
      plan: 'succeeded',
      run: fixed,
    });
    expect(rerunNumber(key)).toBe(0);
    expect(rerunNumber(`${key}#backfill-b0mx1-12`)).toBe(12);
    expect(latestRun([fakeRun(`${key}#backfill-b2-2`, 'queued'), fakeRun(key, 'failed')])?.dedupeKey).toBe(
      `${key}#backfill-b2-2`,
    );
  });

  it('picks the only time trigger, or the one named, and says why it cannot', () => {
    const cron = { name: 'nightly', kind: 'cron', config: {}, params: {} };
    const hook = { name: 'hook', kind: 'webhook', config: {}, params: {} };
    expect(backfillTrigger({ name: 'f', triggers: [hook, cron] })).toBe(cron);
    expect(() => backfillTrigger({ name: 'f', triggers: [hook] })).toThrow(
      'flow f has no cron or interval trigger; a backfill creates runs for a schedule',
    );
    expect(() => backfillTrigger({ name: 'f', triggers: [cron, { ...cron, name: 'hourly' }] })).toThrow(
      'flow f has 2 cron/interval triggers (nightly, hourly)',
    );
    expect(() => backfillTrigger({ name: 'f', triggers: [cron, hook] }, 'hook')).toThrow(
      'trigger hook of flow f is a webhook trigger',
    );
    expect(() => backfillTrigger({ name: 'f', triggers: [cron] }, 'nope')).toThrow('flow f has no trigger named nope');
  });

  it('reads --from/--to as UTC dates or instants', () => {
    expect(parseInstant('2024-01-01', '--from')).toBe(Date.parse('2024-01-01T00:00:00Z'));
    expect(parseInstant('2024-01-01T06:30', '--from')).toBe(Date.parse('2024-01-01T06:30:00Z'));
    expect(parseInstant('2024-01-01T06:30:00+02:00', '--to')).toBe(Date.parse('2024-01-01T04:30:00Z'));
    expect(() => parseInstant('yesterday', '--to')).toThrow('--to yesterday: not a date or instant');
  });
});

describe.each(BACKENDS)('backfills on $name', (backend) => {
  let project: TriggerProject | undefined;
  afterEach(async () => {
    await project?.close();
    project = undefined;
  });
  const open = async (flows: Record<string, string>, now = Date.parse('2024-02-01T00:00:00Z')) => {
    project = await openTriggerProject(backend, flows, { now });
    return project;
  };
  const flowOf = async (p: TriggerProject, name: string) => {
    const flow = await triggerFlows(p.rt).get(name);
    if (!flow) throw new Error(`no flow ${name}`);
    return flow;
  };
  const record = async (
    p: TriggerProject,
    o: { from: number; to: number; maxParallel?: number; rerun?: boolean; flow?: string },
  ) => {
    const plan = await planBackfill(p.rt.store, await flowOf(p, o.flow ?? 'daily'), {
      fromAt: o.from,
      toAt: o.to,
      rerun: o.rerun ?? false,
    });
    return recordBackfill(p.rt.store, plan, { maxParallel: o.maxParallel ?? 2, at: p.clock.now });
  };
  const progress = async (p: TriggerProject, id: string) => {
    const b = await p.rt.store.getBackfill(id);
    if (!b) throw new Error(`no backfill ${id}`);
    return { state: b.state, ...(await backfillProgress(p.rt.store, b)).progress };
  };
  /** Finishes every active run of the flow, then ticks, until the backfill ends (bounded). */
  const drain = async (p: TriggerProject, id: string, flow = 'daily') => {
    const service = p.service();
    for (let i = 0; i < 50; i++) {
      await service.tick();
      const b = await p.rt.store.getBackfill(id);
      if (b?.state === 'completed' || b?.state === 'cancelled') return;
      for (const r of await p.rt.store.activeRuns(flow)) await p.finish(r.id);
    }
    throw new Error(`backfill ${id} did not finish`);
  };

  it('--plan reads the intervals and their runs and changes nothing', async () => {
    const p = await open({ daily: daily('daily') });
    const flow = await flowOf(p, 'daily');
    const [done, running, failed] = await Promise.all(
      [2, 3, 4].map(
        async (d) =>
          (
            await p.rt.store.createRun(
              flow.newRun(
                { interval_end: iso(day(d)) },
                { dedupeKey: scheduledRunKey('daily/nightly', day(d)), triggerId: 'daily/nightly', at: p.clock.now },
              ),
            )
          ).run,
      ),
    );
    await p.finish(done?.id as string);
    await p.finish(failed?.id as string, 'failed');
    const before = await p.rt.store.listRuns({ limit: 100 });
    const plan = await planBackfill(p.rt.store, flow, { fromAt: day(0), toAt: day(5), rerun: false });
    expect(plan.intervals.map((v) => [v.intervalEnd, v.plan, v.runId])).toEqual([
      [iso(day(1)), 'create', null],
      [iso(day(2)), 'succeeded', done?.id],
      [iso(day(3)), 'running', running?.id],
      [iso(day(4)), 'failed', failed?.id],
      [iso(day(5)), 'create', null],
    ]);
    expect(plan.intervals[0]?.intervalStart).toBe(iso(day(0)));
    expect(plan.counts).toEqual({ create: 2, rerun: 0, succeeded: 1, running: 1, failed: 1 });
    const rerun = await planBackfill(p.rt.store, flow, { fromAt: day(0), toAt: day(5), rerun: true });
    expect(rerun.counts).toEqual({ create: 2, rerun: 1, succeeded: 1, running: 1, failed: 0 });
    expect(await p.rt.store.listRuns({ limit: 100 })).toEqual(before);
    expect(await p.rt.store.listBackfills()).toEqual([]);
  });

  it('creates at most max_parallel runs at a time, with priority -1 and the schedule keys, until completed', async () => {
    const p = await open({ daily: daily('daily') });
    const b = await record(p, { from: day(0), to: day(5), maxParallel: 2 });
    expect(b).toMatchObject({ state: 'running', total: 5, nextIndex: 0, maxParallel: 2 });
    expect(await progress(p, b.id)).toEqual({ state: 'running', total: 5, done: 0, failed: 0, running: 0, pending: 5 });
    const service = p.service();
    await service.tick();
    await service.tick(); // nothing more while two are active
    let runs = await p.runs('daily');
    expect(
      runs.map((r) => [r.params.interval_start, r.params.interval_end, r.dedupeKey, r.priority, r.triggerId]),
    ).toEqual(
      [1, 2].map((d) => [
        iso(day(d - 1)),
        iso(day(d)),
        `daily/nightly@${iso(day(d))}`,
        -1,
        `daily/nightly#backfill-${b.id}`,
      ]),
    );
    expect(await progress(p, b.id)).toMatchObject({ done: 0, running: 2, pending: 3 });
    await p.finish(runs[0]?.id as string);
    await service.tick();
    runs = await p.runs('daily');
    expect(runs.map((r) => r.params.interval_end)).toEqual([1, 2, 3].map((d) => iso(day(d))));
    expect(await progress(p, b.id)).toMatchObject({ done: 1, running: 2, pending: 2 });
    await drain(p, b.id);
    expect(await progress(p, b.id)).toEqual({
      state: 'completed',
      total: 5,
      done: 5,
      failed: 0,
      running: 0,
      pending: 0,
    });
    expect((await p.runs('daily')).length).toBe(5);
    expect((await p.rt.store.getBackfill(b.id))?.endedAt).toBe(p.clock.now);
  });

  it('is idempotent: a second backfill of the same range, or two at once, create nothing twice', async () => {
    const p = await open({ daily: daily('daily') });
    const first = await record(p, { from: day(0), to: day(4), maxParallel: 4 });
    await drain(p, first.id);
    const runs = await p.runs('daily');
    expect(runs.length).toBe(4);
    const again = await record(p, { from: day(0), to: day(4) });
    await p.service().tick();
    expect(await progress(p, again.id)).toMatchObject({ state: 'completed', done: 4, pending: 0 });
    expect(await p.runs('daily')).toEqual(runs);
    // Two overlapping backfills advanced at the same time, by several processes.
    const a = await record(p, { from: day(3), to: day(10), maxParallel: 3 });
    const b = await record(p, { from: day(5), to: day(12), maxParallel: 3 });
    for (let i = 0; i < 40; i++) {
      await Promise.all([p.service().tick(), p.service().tick()]);
      const states = await Promise.all([a.id, b.id].map((id) => p.rt.store.getBackfill(id)));
      if (states.every((s) => s?.state === 'completed')) break;
      for (const r of await p.rt.store.activeRuns('daily')) await p.finish(r.id);
    }
    const all = await p.runs('daily');
    expect(all.map((r) => r.params.interval_end)).toEqual(Array.from({ length: 12 }, (_, i) => iso(day(i + 1))));
    expect(new Set(all.map((r) => r.dedupeKey)).size).toBe(12);
    expect(await progress(p, a.id)).toMatchObject({ state: 'completed', done: 7 });
    expect(await progress(p, b.id)).toMatchObject({ state: 'completed', done: 7 });
  });

  it('survives restarts: a new service continues where the last left off', async () => {
    const p = await open({ daily: daily('daily') });
    const b = await record(p, { from: day(0), to: day(6), maxParallel: 2 });
    await p.service().tick();
    for (const r of await p.rt.store.activeRuns('daily')) await p.finish(r.id);
    // Another process (`baton backfill --wait`) advances it alongside the restarted service.
    const processor = new BackfillProcessor({ store: p.rt.store, flows: triggerFlows(p.rt), now: () => p.clock.now });
    const current = await p.rt.store.getBackfill(b.id);
    await Promise.all([p.service().tick(), processor.advance(current as NonNullable<typeof current>)]);
    expect((await p.runs('daily')).length).toBe(4);
    await drain(p, b.id);
    expect((await p.runs('daily')).map((r) => r.params.interval_end)).toEqual(
      [1, 2, 3, 4, 5, 6].map((d) => iso(day(d))),
    );
  });

  it('shares dedupe keys with the schedule in both directions', async () => {
    const p = await open({ daily: daily('daily', [], ['catchup: all']) }, Date.parse('2024-01-05T12:00:00Z'));
    const service = p.service();
    await service.sync();
    // The backfill runs two intervals before the schedule reaches them…
    p.clock.now = Date.parse('2024-01-07T12:00:00Z');
    const b = await record(p, { from: day(5), to: day(7), maxParallel: 5 });
    const processor = new BackfillProcessor({ store: p.rt.store, flows: triggerFlows(p.rt), now: () => p.clock.now });
    await processor.advance(b);
    expect((await p.runs('daily')).map((r) => [r.params.interval_end, r.priority])).toEqual([
      [iso(day(6)), -1],
      [iso(day(7)), -1],
    ]);
    // …so the schedule's catch-up finds them and makes none.
    await service.tick();
    expect((await p.runs('daily')).length).toBe(2);
    expect((await p.firings('daily/nightly')).map((f) => f.outcome)).toEqual(['deduplicated', 'deduplicated']);
    // The other way: the schedule ran 8 January; a backfill up to it only adds what is missing.
    p.clock.now = Date.parse('2024-01-08T12:00:00Z');
    await service.tick();
    expect((await p.runs('daily')).at(-1)).toMatchObject({ params: { interval_end: iso(day(8)) }, priority: 0 });
    const plan = await planBackfill(p.rt.store, await flowOf(p, 'daily'), {
      fromAt: day(4),
      toAt: day(8),
      rerun: false,
    });
    expect(plan.intervals.map((v) => v.plan)).toEqual(['create', 'running', 'running', 'running']);
  });

  it('pauses, resumes and cancels; cancelling asks its active runs to cancel', async () => {
    const p = await open({ daily: daily('daily') });
    const b = await record(p, { from: day(0), to: day(10), maxParallel: 2 });
    const service = p.service();
    await service.tick();
    expect((await p.runs('daily')).length).toBe(2);
    const paused = await moveBackfill(p.rt.store, b.id, 'paused', p.clock.now);
    expect(paused).toMatchObject({ state: 'paused', reason: 'paused by user' });
    for (const r of await p.rt.store.activeRuns('daily')) await p.finish(r.id);
    await service.tick();
    expect((await p.runs('daily')).length).toBe(2);
    expect(await progress(p, b.id)).toMatchObject({ state: 'paused', done: 2, running: 0, pending: 8 });
    expect((await moveBackfill(p.rt.store, b.id, 'paused', p.clock.now)).version).toBe(paused.version);
    await moveBackfill(p.rt.store, b.id, 'running', p.clock.now);
    await service.tick();
    const runs = await p.runs('daily');
    expect(runs.length).toBe(4);
    const active = runs.filter((r) => r.state === 'queued').map((r) => r.id);
    expect(active).toHaveLength(2);
    // A scheduled run of the same flow is not the backfill's to cancel.
    const flow = await flowOf(p, 'daily');
    const scheduled = await p.rt.store.createRun(
      flow.newRun({}, { dedupeKey: 'daily/nightly@x', triggerId: 'daily/nightly', at: p.clock.now }),
    );
    const cancelled = await moveBackfill(p.rt.store, b.id, 'cancelled', p.clock.now);
    expect(cancelled).toMatchObject({ state: 'cancelled', endedAt: p.clock.now });
    expect(
      (await p.rt.store.pendingRequests([...active, scheduled.run.id])).map((r) => [r.runId, r.kind]).sort(),
    ).toEqual(active.map((id) => [id, 'cancel']).sort());
    await service.tick();
    expect((await p.runs('daily')).length).toBe(5);
    await expect(moveBackfill(p.rt.store, b.id, 'running', p.clock.now)).rejects.toThrow(
      `backfill ${b.id} is cancelled; it cannot be resumed`,
    );
    expect((await moveBackfill(p.rt.store, b.id, 'cancelled', p.clock.now)).state).toBe('cancelled');
    await expect(moveBackfill(p.rt.store, 'b-none', 'paused', p.clock.now)).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('claims scheduled runs before backfill runs', async () => {
    const p = await open({ daily: daily('daily') });
    const b = await record(p, { from: day(0), to: day(3), maxParallel: 3 });
    await p.service().tick();
    const flow = await flowOf(p, 'daily');
    p.clock.now += 1000;
    const scheduled = await p.rt.store.createRun(
      flow.newRun({}, { dedupeKey: 'daily/nightly@now', triggerId: 'daily/nightly', at: p.clock.now }),
    );
    const [first] = await p.rt.store.claimRuns({ owner: 'engine', leaseMs: 60_000, limit: 1 });
    expect(first?.runId).toBe(scheduled.run.id);
    const rest = await p.rt.store.claimRuns({ owner: 'engine', leaseMs: 60_000, limit: 10 });
    expect(rest).toHaveLength(3);
    expect(await progress(p, b.id)).toMatchObject({ running: 3 });
  });

  it('--rerun gives a new run to intervals that did not succeed, once per backfill', async () => {
    const p = await open({ daily: daily('daily') });
    const first = await record(p, { from: day(0), to: day(3), maxParallel: 3 });
    await p.service().tick();
    const runs = await p.runs('daily');
    await p.finish(runs[0]?.id as string);
    await p.finish(runs[1]?.id as string, 'failed');
    await p.finish(runs[2]?.id as string, 'cancelled');
    await p.service().tick();
    expect(await progress(p, first.id)).toMatchObject({ state: 'completed', done: 1, failed: 2 });

    const second = await record(p, { from: day(0), to: day(3), rerun: true, maxParallel: 3 });
    await p.service().tick();
    const reruns = (await p.runs('daily')).filter((r) => r.dedupeKey?.includes('#'));
    expect(reruns.map((r) => [r.dedupeKey, r.params.interval_end]).sort()).toEqual(
      [2, 3].map((d) => [rerunKey(`daily/nightly@${iso(day(d))}`, second.id, 1), iso(day(d))]),
    );
    await p.finish(reruns[0]?.id as string);
    await p.finish(reruns[1]?.id as string, 'failed');
    await p.service().tick();
    await p.service().tick();
    expect(await progress(p, second.id)).toMatchObject({ state: 'completed', done: 2, failed: 1 });
    expect((await p.runs('daily')).length).toBe(5);
    // A third backfill reruns what is still failing: its key counts the runs so far.
    const third = await record(p, { from: day(0), to: day(3), rerun: true });
    await p.service().tick();
    const latest = (await p.runs('daily')).filter((r) => r.dedupeKey?.includes(third.id));
    expect(latest.map((r) => r.dedupeKey)).toEqual([rerunKey(`daily/nightly@${iso(day(3))}`, third.id, 2)]);
  });

  it('pauses with the reason when a run cannot be built, and leaves scheduled runs and deadlines alone', async () => {
    const p = await open({
      daily: daily('daily', ['overlap: skip'], ['deadline: 1h']),
      strict: daily('strict', ['params:', '  region: { type: string }']),
    });
    const strict = await record(p, { flow: 'strict', from: day(0), to: day(2) });
    await p.service().tick();
    const paused = await p.rt.store.getBackfill(strict.id);
    expect(paused?.state).toBe('paused');
    expect(paused?.reason).toMatch(/^interval 2024-01-01T02:00:00.000Z: .*region/);
    expect(await p.runs('strict')).toEqual([]);

    // Backfill runs of daily are active; the schedule's next fire time still runs (overlap
    // skip does not count them) and no deadline is reported for them.
    p.clock.now = Date.parse('2024-01-20T12:00:00Z');
    const service = p.service();
    await service.sync();
    await record(p, { from: day(0), to: day(3), maxParallel: 3 });
    await service.tick();
    expect((await p.rt.store.activeRuns('daily')).length).toBe(3);
    p.clock.now = day(21) + 60_000;
    await service.tick();
    p.clock.now = day(21) + 30 * 60_000;
    await service.tick();
    const firings = await p.firings('daily/nightly');
    expect(firings.map((f) => f.outcome)).toEqual(['run']);
    expect((await p.runs('daily')).at(-1)).toMatchObject({ params: { interval_end: iso(day(21)) }, priority: 0 });
    p.clock.now = day(21) + 2 * 3_600_000;
    await service.tick();
    const missed = (await p.firings('daily/nightly')).filter((f) => f.outcome === 'deadline_missed');
    expect(missed.map((f) => f.runId)).toEqual([(await p.runs('daily')).at(-1)?.id]);
  });
});
