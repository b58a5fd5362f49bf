/**
 * The trigger service's time triggers against a real store (a SQLite file, and a fresh
 * PostgreSQL database), with a virtual clock the test moves: catch-up after downtime
 * under each policy, restarts and concurrent services that never create a run twice,
 * overlap policies, deadlines, paused triggers and jitter. Runs are built through
 * `rt.createTriggerService({ now })` from flow files, as `baton dev` and the scheduler do.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRun } from '../../src/app/runtime.js';
import { jitterDelay } from '../../src/core/schedule.js';
import type { TriggerProject } from './trigger-harness.js';
import { BACKENDS, flowYaml, h, iso, MINUTE, openTriggerProject, T0, timeTrigger } from './trigger-harness.js';

const hourly = (name: string, extra: Readonly<Record<string, string | number>> = {}, lines: readonly string[] = []) =>
  flowYaml(name, [...lines, ...timeTrigger('tick', { kind: 'interval', every: '1h', ...extra })]);

describe.each(BACKENDS)('trigger service on $name', (backend) => {
  let project: TriggerProject | undefined;
  afterEach(async () => {
    await project?.close();
    project = undefined;
  });
  const open = async (flows: Record<string, string>) => {
    project = await openTriggerProject(backend, flows);
    return project;
  };

  it('catches up after downtime by policy: all runs every missed interval, latest the last one, none nothing', async () => {
    const p = await open({
      all: hourly('all', { catchup: 'all' }),
      latest: hourly('latest', { catchup: 'latest' }),
      none: hourly('none', { catchup: 'none' }),
    });
    const service = p.service();
    await service.sync();
    await service.tick(); // registered at T0 + 1 min: nothing is due yet
    expect(await p.rt.store.listRuns({ limit: 100 })).toEqual([]);
    expect((await p.rt.store.getTrigger('all/tick'))?.nextFireAt).toBe(h(1));

    // Down from T0 + 1 min to 5 h 30 min later: fire times h1..h5 were missed.
    p.clock.now = h(5) + 30 * MINUTE;
    await service.tick();

    const all = await p.runs('all');
    expect(all.map((r) => [r.params.interval_start, r.params.interval_end, r.dedupeKey])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [iso(h(n - 1)), iso(h(n)), `all/tick@${iso(h(n))}`]),
    );
    expect(all.every((r) => r.triggerId === 'all/tick' && r.priority === 0 && r.state === 'queued')).toBe(true);
    expect((await p.firings('all/tick')).map((f) => f.outcome)).toEqual(['run', 'run', 'run', 'run', 'run']);

    const latest = await p.runs('latest');
    expect(latest.map((r) => [r.params.interval_start, r.params.interval_end])).toEqual([[iso(h(4)), iso(h(5))]]);
    const latestFirings = await p.firings('latest/tick');
    expect(latestFirings.map((f) => f.outcome)).toEqual(['skipped', 'run']);
    expect(latestFirings[0]?.reason).toBe(
      `4 missed fire time(s) skipped by catch-up policy latest (latest skipped ${iso(h(4))})`,
    );
    expect(latestFirings[1]).toMatchObject({ runId: latest[0]?.id, dedupeKey: `latest/tick@${iso(h(5))}` });

    expect(await p.runs('none')).toEqual([]);
    expect((await p.firings('none/tick')).map((f) => [f.outcome, f.reason])).toEqual([
      ['skipped', `5 missed fire time(s) skipped by catch-up policy none (latest skipped ${iso(h(5))})`],
    ]);

    // Back on time: each policy runs the next fire time once.
    p.clock.now = h(6) + 10_000;
    await service.tick();
    for (const flow of ['all', 'latest', 'none']) {
      const runs = await p.runs(flow);
      expect(runs.at(-1)?.params.interval_end, flow).toBe(iso(h(6)));
    }
    expect((await p.runs('all')).length).toBe(6);
    expect((await p.runs('latest')).length).toBe(2);
    expect((await p.runs('none')).length).toBe(1);
    for (const id of ['all/tick', 'latest/tick', 'none/tick']) {
      expect(await p.rt.store.getTrigger(id)).toMatchObject({ cursor: { last: h(6) }, nextFireAt: h(7) });
    }
  });

  it('limits catch-up to max_catchup and records the rest as skipped', async () => {
    const p = await open({ capped: hourly('capped', { catchup: 'all', max_catchup: 2 }) });
    const service = p.service();
    await service.sync();
    p.clock.now = h(6) + MINUTE;
    await service.tick();
    expect((await p.runs('capped')).map((r) => r.params.interval_end)).toEqual([iso(h(5)), iso(h(6))]);
    expect((await p.firings('capped/tick'))[0]).toMatchObject({
      outcome: 'skipped',
      reason: `4 missed fire time(s) skipped by catch-up policy all (latest skipped ${iso(h(4))})`,
    });
  });

  it('never creates a run twice: restarted services, and two services ticking at once', async () => {
    const p = await open({
      often: flowYaml('often', timeTrigger('tick', { kind: 'interval', every: '10m', catchup: 'all' })),
    });
    const first = p.service();
    await first.sync();
    p.clock.now = T0 + 35 * MINUTE;
    await first.tick();
    expect((await p.runs('often')).length).toBe(3); // :10, :20, :30
    // A restart (a new service on the same store, as after a crash) at the same instant.
    const second = p.service();
    await second.sync();
    await second.tick();
    await first.tick();
    expect((await p.runs('often')).length).toBe(3);
    // Two live services (two schedulers that both think they lead) over 2 simulated hours.
    for (let step = 1; step <= 24; step++) {
      p.clock.now = T0 + 35 * MINUTE + step * 5 * MINUTE;
      await Promise.all([first.tick(), second.tick(), p.service().tick()]);
    }
    const runs = await p.runs('often');
    const ends = runs.map((r) => r.params.interval_end);
    const expected = Array.from({ length: 15 }, (_, i) => iso(T0 + (i + 1) * 10 * MINUTE)); // up to T0 + 155 min
    expect(ends).toEqual(expected);
    expect(new Set(runs.map((r) => r.dedupeKey)).size).toBe(runs.length);
    const fired = (await p.firings('often/tick')).filter((f) => f.outcome === 'run' || f.outcome === 'deduplicated');
    expect(fired.map((f) => f.dedupeKey).sort()).toEqual(runs.map((r) => r.dedupeKey).sort());
    expect(fired.every((f) => f.outcome === 'run')).toBe(true);
    // The race was real: services that read a cursor another had moved wrote nothing.
    expect(p.diagnostics.filter((d) => d.includes('another scheduler moved it first')).length).toBeGreaterThan(0);
  });

  it('overlap skip: no run while one is active, and a catch-up batch creates one', async () => {
    const p = await open({ skipper: hourly('skipper', { catchup: 'all' }, ['overlap: skip']) });
    const service = p.service();
    await service.sync();
    p.clock.now = h(1) + MINUTE;
    await service.tick();
    const [first] = await p.runs('skipper');
    expect(first?.params.interval_end).toBe(iso(h(1)));
    p.clock.now = h(2) + MINUTE;
    await service.tick();
    expect((await p.runs('skipper')).length).toBe(1);
    expect((await p.firings('skipper/tick')).at(-1)).toMatchObject({
      outcome: 'skipped',
      reason: `interval fire time ${iso(h(2))}: skipped, run ${first?.id} of skipper is still active (overlap: skip)`,
    });
    await p.finish(first?.id as string);
    // Down for h3..h5: the oldest runs, the others overlap it and are skipped.
    p.clock.now = h(5) + MINUTE;
    await service.tick();
    const runs = await p.runs('skipper');
    expect(runs.map((r) => r.params.interval_end)).toEqual([iso(h(1)), iso(h(3))]);
    expect((await p.firings('skipper/tick')).slice(-3).map((f) => f.outcome)).toEqual(['run', 'skipped', 'skipped']);
  });

  it('overlap queue: runs are created and wait their turn, one at a time', async () => {
    const p = await open({ queued: hourly('queued', { catchup: 'all' }, ['overlap: queue']) });
    const service = p.service();
    await service.sync();
    p.clock.now = h(1) + MINUTE;
    await service.tick();
    p.clock.now = h(2) + MINUTE;
    await service.tick();
    const runs = await p.runs('queued');
    expect(runs.map((r) => [r.params.interval_end, r.maxActiveRuns])).toEqual([
      [iso(h(1)), 1],
      [iso(h(2)), 1],
    ]);
    expect((await p.firings('queued/tick')).at(-1)?.reason).toBe(
      `interval fire time ${iso(h(2))} (queued behind 1 active run(s))`,
    );
    // An engine takes the first; the second must wait for it.
    const claimed = await p.rt.store.claimRuns({ owner: 'engine', leaseMs: 60_000, limit: 10 });
    expect(claimed.map((l) => l.runId)).toEqual([runs[0]?.id]);
  });

  it('overlap cancel_previous: the new run asks the active one to cancel; catch-up keeps only the newest', async () => {
    const p = await open({ newest: hourly('newest', { catchup: 'all' }, ['overlap: cancel_previous']) });
    const service = p.service();
    await service.sync();
    p.clock.now = h(1) + MINUTE;
    await service.tick();
    p.clock.now = h(2) + MINUTE;
    await service.tick();
    const [older, newer] = await p.runs('newest');
    expect(newer?.params.interval_end).toBe(iso(h(2)));
    expect((await p.rt.store.pendingRequests([older?.id as string])).map((r) => r.kind)).toEqual(['cancel']);
    expect(await p.rt.store.pendingRequests([newer?.id as string])).toEqual([]);
    await p.finish(older?.id as string, 'cancelled');
    // Down for h3..h5: h3 and h4 are superseded by h5, which cancels the h2 run.
    p.clock.now = h(5) + MINUTE;
    await service.tick();
    const runs = await p.runs('newest');
    expect(runs.map((r) => r.params.interval_end)).toEqual([iso(h(1)), iso(h(2)), iso(h(5))]);
    expect((await p.firings('newest/tick')).slice(-3).map((f) => [f.outcome, f.reason])).toEqual([
      ['skipped', `interval fire time ${iso(h(3))}: superseded by fire time ${iso(h(5))} (overlap: cancel_previous)`],
      ['skipped', `interval fire time ${iso(h(4))}: superseded by fire time ${iso(h(5))} (overlap: cancel_previous)`],
      ['run', `interval fire time ${iso(h(5))} (cancelling 1 active run(s): overlap cancel_previous)`],
    ]);
    expect((await p.rt.store.pendingRequests([newer?.id as string])).map((r) => r.kind)).toEqual(['cancel']);
  });

  it('records a missed deadline once per run, across restarts, and only for runs the schedule made', async () => {
    const p = await open({ slow: hourly('slow', {}, []).replace('every: 1h', 'every: 1h\n    deadline: 30m') });
    const service = p.service();
    await service.sync();
    p.clock.now = h(1) + MINUTE;
    await service.tick();
    const [run] = await p.runs('slow');
    await p.start(run?.id as string);
    // A manual run of the same flow with an interval param is not the schedule's.
    const manual = await createRun(p.rt, await p.rt.catalog.find('slow'), {
      params: { interval_start: iso(h(0)), interval_end: iso(h(0)) },
    });
    expect(manual.run.triggerId).toBeNull();
    p.clock.now = h(1) + 20 * MINUTE;
    await service.tick();
    expect((await p.firings('slow/tick')).filter((f) => f.outcome === 'deadline_missed')).toEqual([]);
    p.clock.now = h(1) + 31 * MINUTE;
    await service.tick();
    p.clock.now = h(1) + 40 * MINUTE;
    await service.tick();
    p.clock.now = h(1) + 50 * MINUTE;
    await p.service().tick(); // a restarted service remembers what it reported
    const missed = (await p.firings('slow/tick')).filter((f) => f.outcome === 'deadline_missed');
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({ runId: run?.id });
    expect(missed[0]?.reason).toBe(
      `run ${run?.id} for ${iso(h(1))} is still running 1860 s after its fire time (deadline 1800 s)`,
    );
  });

  it('a paused trigger fires nothing and keeps its cursor; resumed, it catches up by its policy', async () => {
    const p = await open({ paused: hourly('paused', { catchup: 'latest' }) });
    const service = p.service();
    await service.sync();
    p.clock.now = h(1) + MINUTE;
    await service.tick();
    expect((await p.runs('paused')).length).toBe(1);
    expect(await p.rt.store.setTriggerPaused('paused/tick', true)).toBe(true);
    const before = await p.rt.store.getTrigger('paused/tick');
    const firingsBefore = await p.firings('paused/tick');
    for (let n = 2; n <= 6; n++) {
      p.clock.now = h(n) + MINUTE;
      await service.tick();
    }
    expect((await p.runs('paused')).length).toBe(1);
    expect(await p.firings('paused/tick')).toEqual(firingsBefore);
    expect((await p.rt.store.getTrigger('paused/tick'))?.cursor).toEqual(before?.cursor);
    // Syncing the definitions again keeps the pause.
    await p.service().sync();
    expect((await p.rt.store.getTrigger('paused/tick'))?.paused).toBe(true);
    await p.rt.store.setTriggerPaused('paused/tick', false);
    await service.tick();
    expect((await p.runs('paused')).map((r) => r.params.interval_end)).toEqual([iso(h(1)), iso(h(6))]);
  });

  it('jitter delays the creation of a run, not the fire time it is for', async () => {
    const p = await open({ jittered: hourly('jittered', { jitter: '10m' }) });
    const delay = jitterDelay('jittered/tick', 10 * MINUTE);
    expect(delay).toBeGreaterThan(MINUTE); // the test needs a delay worth seeing
    const service = p.service();
    await service.sync();
    p.clock.now = h(1);
    await service.tick();
    p.clock.now = h(1) + delay - 1;
    await service.tick();
    expect(await p.runs('jittered')).toEqual([]);
    p.clock.now = h(1) + delay;
    await service.tick();
    const [run] = await p.runs('jittered');
    expect(run).toMatchObject({
      createdAt: h(1) + delay,
      dedupeKey: `jittered/tick@${iso(h(1))}`,
      params: { interval_start: iso(h(0)), interval_end: iso(h(1)) },
    });
    // The next one is delayed by the same amount.
    p.clock.now = h(2) + delay - 1;
    await service.tick();
    expect((await p.runs('jittered')).length).toBe(1);
    p.clock.now = h(2) + delay;
    await service.tick();
    expect((await p.runs('jittered')).map((r) => r.createdAt)).toEqual([h(1) + delay, h(2) + delay]);
  });

  it('a cron trigger in a zone with DST creates its runs at the instants of the schedule', async () => {
    const p = await open({
      ny: flowYaml('ny', [
        'triggers:',
        '  nightly:',
        '    kind: cron',
        '    cron: "30 2 * * *"',
        '    timezone: America/New_York',
        '    catchup: all',
      ]),
    });
    p.clock.now = Date.parse('2024-03-08T12:00:00Z');
    const service = p.service();
    await service.sync();
    p.clock.now = Date.parse('2024-03-11T12:00:00Z');
    await service.tick();
    expect((await p.runs('ny')).map((r) => [r.params.interval_end, r.dedupeKey])).toEqual(
      ['2024-03-09T07:30:00.000Z', '2024-03-10T07:00:00.000Z', '2024-03-11T06:30:00.000Z'].map((t) => [
        t,
        `ny/nightly@${t}`,
      ]),
    );
    expect((await p.runs('ny'))[1]?.params.interval_start).toBe('2024-03-09T07:30:00.000Z');
  });
});

describe('trigger service lifecycle', () => {
  it('stopped while it starts (a scheduler told to stop as it becomes leader), it does nothing after stop returns', async () => {
    const p = await openTriggerProject(BACKENDS[0] as (typeof BACKENDS)[number], {});
    try {
      let afterStop = 0;
      let stopped = false;
      const store = new Proxy(p.rt.store, {
        get(target, key, receiver) {
          const value: unknown = Reflect.get(target, key, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (stopped) afterStop++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      // Reading the flows takes a while, as it does on a loaded machine: stop comes in the middle.
      const flows = {
        list: async () => {
          await new Promise((r) => setTimeout(r, 200));
          return [];
        },
        get: async () => null,
      };
      const service = p.rt.createTriggerService({ store, flows, tickMs: 10 });
      const starting = service.start();
      await new Promise((r) => setTimeout(r, 20));
      await service.stop();
      stopped = true;
      await starting;
      await new Promise((r) => setTimeout(r, 100));
      expect(afterStop).toBe(0);
    } finally {
      await p.close();
    }
  });
});
