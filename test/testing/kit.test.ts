/**
 * The public testing kit, used as a flow author would: flows from the builder, a run per
 * test, virtual time, events and approvals sent from the test, and assertions on task
 * states, attempts and outputs. Every test runs on a temporary SQLite file and on a fresh
 * PostgreSQL database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../src/core/task-failure.js';
import { defineFlow } from '../../src/define/builder.js';
import type { TestKit } from '../../src/testing/index.js';
import { createTestKit, testFlow } from '../../src/testing/index.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const HOUR = 3_600_000;

const stores: Record<string, () => Promise<{ url?: string; drop: () => Promise<void> }>> = {
  sqlite: async () => ({ drop: async () => undefined }),
  postgres: async () => createTestDatabase(),
};

for (const [storeName, makeStore] of Object.entries(stores)) {
  describe(`testing kit on ${storeName}`, () => {
    let db: { url?: string; drop: () => Promise<void> };
    const kits: TestKit[] = [];
    beforeAll(async () => {
      db = await makeStore();
    });
    afterAll(async () => {
      for (const kit of kits) await kit.close().catch(() => undefined);
      await db.drop();
    });
    const open = async (flows: Parameters<typeof createTestKit>[0] = {}) => {
      const kit = await createTestKit({ ...flows, ...(db.url ? { databaseUrl: db.url } : {}) });
      kits.push(kit);
      return kit;
    };

    it('retries with backoff on virtual time: an hour of backoff takes no real time', async () => {
      const f = defineFlow({ name: `flaky_${storeName}` });
      f.task('call', { retry: { maxAttempts: 4, backoff: '1h', maxBackoff: '1d', jitter: 'none' } }, async (ctx) => {
        if (ctx.attempt < 3) throw Object.assign(new Error('rate limited'), { code: 'RATE_LIMITED' });
        return ctx.attempt;
      });
      const kit = await open();
      const run = await kit.run(f);
      const started = kit.clock.now();
      const realStart = Date.now();
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('call')).toMatchObject({ state: 'succeeded', attempts: 3, output: 3 });
      // Two failures: 1 h, then 2 h of backoff, on the virtual clock.
      expect(kit.clock.now() - started).toBe(3 * HOUR);
      expect(Date.now() - realStart).toBeLessThan(10_000);
    });

    it('maps over an upstream list with max_parallel and hands the ordered results downstream', async () => {
      const f = defineFlow({ name: `map_${storeName}` });
      const list = f.task('list', async () => [3, 1, 2, 5]);
      let inFlight = 0;
      let peak = 0;
      const each = f.map('square', { over: list, maxParallel: 2 }, async (ctx) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return { index: ctx.mapIndex, value: ctx.item * ctx.item };
      });
      f.task('sum', { inputs: { squares: each } }, async (ctx) => ctx.inputs.squares.reduce((a, s) => a + s.value, 0));
      const run = await (await open()).run(f);
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('square').output).toEqual([
        { index: 0, value: 9 },
        { index: 1, value: 1 },
        { index: 2, value: 4 },
        { index: 3, value: 25 },
      ]);
      expect(run.task('square[3]')).toMatchObject({ state: 'succeeded', attempts: 1 });
      expect(run.task('sum').output).toBe(39);
      expect(peak).toBe(2);
    });

    it('a map over a group with a nested map, continuing past a failed item', async () => {
      const f = defineFlow({ name: `group_${storeName}`, params: { regions: { type: 'array', default: [] } } });
      f.mapGroup('per_region', { over: '${{ params.regions }}', onItemFailure: 'continue' }, (g) => {
        const files = g.task('list', async (ctx) => {
          if (ctx.item === 'bad') throw Object.assign(new Error('no such region'), { code: 'NO_REGION' });
          return [`${String(ctx.item)}-1`, `${String(ctx.item)}-2`];
        });
        g.map('load', { over: files }, async (ctx) => `loaded ${ctx.item}`);
      });
      const kit = await open();
      const run = await kit.run(f, { params: { regions: ['eu', 'bad', 'us'] } });
      expect(await run.settle()).toBe('succeeded');
      const out = run.task('per_region').output as { results: unknown[]; failures: { index: number; item: unknown }[] };
      expect(out.results).toEqual([
        ['loaded eu-1', 'loaded eu-2'],
        ['loaded us-1', 'loaded us-2'],
      ]);
      expect(out.failures).toMatchObject([{ index: 1, item: 'bad', error: { code: 'NO_REGION' } }]);
      expect(run.task('per_region[2].load[1]')).toMatchObject({ state: 'succeeded', output: 'loaded us-2' });
      expect(run.task('per_region[1].load').state).toBe('skipped');
    });

    it('a choice runs the selected branch, skips the other, and a join runs after it', async () => {
      const f = defineFlow({ name: `choice_${storeName}`, params: { rows: { type: 'integer', default: 0 } } });
      f.choice('route', { rules: [{ when: '${{ params.rows > 100 }}', then: ['big'] }], otherwise: ['small'] });
      f.task('big', async () => 'spark');
      f.task('small', async () => 'pandas');
      f.task('report', { after: ['big', 'small'], triggerRule: 'none_failed_min_one_success' }, async (ctx) =>
        Object.keys(ctx.upstream),
      );
      const kit = await open();
      const run = await kit.run(f, { params: { rows: 500 } });
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('route').output).toEqual({ selected: ['big'] });
      expect(run.task('small')).toMatchObject({ state: 'skipped' });
      expect(run.task('small').skipReason).toMatch(/^branch not taken/);
      expect(run.task('report').output).toEqual(['big']);
    });

    it('a quorum runs at k successes and cancels the rest without failing the run', async () => {
      const f = defineFlow({ name: `quorum_${storeName}` });
      const replica = (id: string, ms: number) =>
        f.task(id, async (ctx) => {
          await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, ms);
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(t);
              reject(ctx.signal.reason as Error);
            });
          });
          return id;
        });
      replica('a', 5);
      replica('b', 10);
      replica('c', 5_000);
      f.task('commit', { after: ['a', 'b', 'c'], triggerRule: { kOfN: 2, cancelRest: true } }, async (ctx) =>
        Object.keys(ctx.upstream).sort(),
      );
      const run = await (await open()).run(f);
      const realStart = Date.now();
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('commit').output).toEqual(['a', 'b']);
      expect(run.task('c')).toMatchObject({ state: 'cancelled' });
      expect(run.task('c').skipReason).toMatch(/quorum/);
      // The slow replica was stopped, not waited for.
      expect(Date.now() - realStart).toBeLessThan(4_000);
    });

    it('a race: the first success wins; with all, a score picks the winner', async () => {
      const f = defineFlow({ name: `race_${storeName}` });
      f.task('champion', async () => ({ auc: 0.81 }));
      f.task('challenger', async () => ({ auc: 0.86 }));
      f.task('broken', async () => {
        throw new Error('diverged');
      });
      f.race(
        'best',
        { branches: ['champion', 'challenger', 'broken'], mode: 'all' },
        (output) => (output as { auc: number }).auc,
      );
      const run = await (await open()).run(f);
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('best').output).toMatchObject({
        winner: 'challenger',
        output: { auc: 0.86 },
        scores: { champion: 0.81, challenger: 0.86 },
      });
      const losers = (run.task('best').output as { losers: { task: string; state: string }[] }).losers;
      expect(losers.map((l) => [l.task, l.state])).toEqual([
        ['champion', 'succeeded'],
        ['broken', 'failed'],
      ]);
    });

    it('a subflow runs the child flow, links it, and returns its outputs; a failed child is retried with a new one', async () => {
      const child = defineFlow({ name: `child_${storeName}`, params: { n: { type: 'integer' } } });
      child.task('double', async (ctx) => {
        if (ctx.params.n < 0) throw Object.assign(new Error('negative'), { code: 'NEGATIVE' });
        return ctx.params.n * 2;
      });
      const parent = defineFlow({ name: `parent_${storeName}`, params: { n: { type: 'integer', default: 0 } } });
      parent.subflow('calc', {
        flow: `child_${storeName}`,
        params: { n: '${{ params.n }}' },
        retry: { maxAttempts: 2, backoff: '10m', maxBackoff: '1h' },
      });
      const kit = await open({ flows: [child] });
      const ok = await kit.run(parent, { params: { n: 21 } });
      expect(await ok.settle()).toBe('succeeded');
      expect(ok.task('calc').output).toEqual({ double: 42 });
      const children = await ok.children();
      expect(children).toHaveLength(1);
      const record = await kit.store.getRun(children[0]?.id ?? '');
      expect(record).toMatchObject({ parentRunId: ok.id, parentTask: 'calc', state: 'succeeded' });

      const bad = await kit.run(parent, { params: { n: -1 } });
      expect(await bad.settle()).toBe('failed');
      expect(bad.task('calc')).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'SUBFLOW_FAILED' } });
      expect(await bad.children()).toHaveLength(2);
    });

    it('sleep and wait_until park on durable timers and finish on virtual time', async () => {
      const f = defineFlow({ name: `sleepy_${storeName}` });
      const nap = f.sleep('nap', { duration: '36h' });
      f.waitUntil('noon', { until: '2030-01-03T12:00:00Z', after: [nap] });
      const kit = await open();
      const run = await kit.run(f);
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('nap').output).toEqual({ until: Date.UTC(2030, 0, 2, 12) });
      expect(kit.clock.now()).toBe(Date.UTC(2030, 0, 3, 12));
    });

    it('wait_for_event: a signal wakes the task and its payload is the output; a timeout fails it', async () => {
      const f = defineFlow({ name: `paid_${storeName}`, params: { order: { type: 'string', default: 'o-1' } } });
      const paid = f.waitForEvent('paid', { event: 'payment', match: '${{ params.order }}', timeout: '2h' });
      f.task('ship', { inputs: { payment: paid } }, async (ctx) => ctx.inputs.payment);
      const kit = await open();
      const run = await kit.run(f);
      expect(await run.settle()).toBe('waiting');
      expect(run.task('paid')).toMatchObject({
        state: 'waiting',
        wait: { kind: 'event', event: 'payment', key: 'o-1' },
      });
      await run.signal('payment', { amount: 3 }, { key: 'o-2' });
      expect(run.task('paid').state).toBe('waiting');
      await run.signal('payment', { amount: 42 }, { key: 'o-1' });
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('ship').output).toEqual({ amount: 42 });

      const late = await kit.run(f);
      expect(await late.settle()).toBe('waiting');
      expect(await late.settle({ fireWaitTimeouts: true })).toBe('failed');
      expect(late.task('paid').error).toMatchObject({ code: 'WAIT_TIMEOUT' });
    });

    it('a signal sent before the task waits is kept for it', async () => {
      const f = defineFlow({ name: `early_${storeName}` });
      const nap = f.sleep('nap', { duration: '1h' });
      f.waitForEvent('go', { event: 'go', after: [nap] });
      const kit = await open();
      const run = await kit.run(f);
      await run.advance('1m');
      expect(run.task('nap').state).toBe('waiting');
      await run.signal('go', 'early bird');
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('go').output).toBe('early bird');
    });

    it('approval: approved by an allowed approver, rejected with a comment, who decided recorded', async () => {
      const f = defineFlow({ name: `gate_${storeName}` });
      const gate = f.approval('gate', { message: 'Ship?', approvers: ['ann', 'bob'] });
      f.task('ship', { inputs: { decision: gate } }, async (ctx) => ctx.inputs.decision);
      const kit = await open();
      const yes = await kit.run(f);
      expect(await yes.settle()).toBe('waiting');
      await expect(yes.approve('gate', { by: 'eve' })).rejects.toMatchObject({ code: 'APPROVER_NOT_ALLOWED' });
      expect(yes.task('gate').state).toBe('waiting');
      await yes.approve('gate', { by: 'ann', comment: 'looks good' });
      expect(await yes.settle()).toBe('succeeded');
      expect(yes.task('ship').output).toMatchObject({ approved: true, by: 'ann', comment: 'looks good' });
      const decided = (await yes.events()).find((e) => e.type === 'approval_decided');
      expect(decided).toMatchObject({ task: 'gate', approved: true, by: 'ann' });

      const no = await kit.run(f);
      await no.settle();
      await no.reject('gate', { by: 'bob', comment: 'not on a Friday' });
      expect(await no.settle()).toBe('failed');
      expect(no.task('gate').error).toMatchObject({ code: 'APPROVAL_REJECTED', kind: 'rejected' });
      expect(no.task('gate').error?.message).toContain('not on a Friday');
      expect(no.task('ship').state).toBe('skipped');
    });

    it('on_failure recovers a failed task with the handler output; finally runs after a cancel', async () => {
      const f = defineFlow({ name: `catch_${storeName}` });
      const load = f.task(
        'load',
        {
          retry: { maxAttempts: 2, backoff: '5m', maxBackoff: '1h' },
          onFailure: { run: async (ctx) => ({ fallback: true, after: ctx.error.code }), recover: true },
        },
        async () => {
          throw Object.assign(new Error('warehouse down'), { code: 'WAREHOUSE_DOWN' });
        },
      );
      f.task('report', { inputs: { loaded: load } }, async (ctx) => ctx.inputs.loaded);
      f.task('cleanup', { finally: true }, async () => 'cleaned');
      const kit = await open();
      const run = await kit.run(f);
      expect(await run.settle()).toBe('succeeded');
      expect(run.task('load')).toMatchObject({ state: 'succeeded', attempts: 2 });
      expect(run.task('report').output).toEqual({ fallback: true, after: 'WAREHOUSE_DOWN' });
      expect(run.task('cleanup').output).toBe('cleaned');

      const g = defineFlow({ name: `cancelled_${storeName}` });
      g.waitForEvent('forever', { event: 'never' });
      g.task('cleanup', { finally: true }, async () => 'cleaned anyway');
      const stopped = await kit.run(g);
      expect(await stopped.settle()).toBe('waiting');
      await stopped.cancel();
      expect(await stopped.settle()).toBe('cancelled');
      expect(stopped.task('forever').state).toBe('cancelled');
      expect(stopped.task('cleanup')).toMatchObject({ state: 'succeeded', output: 'cleaned anyway' });
    });

    it('schedules fire on virtual time: a day of an hourly cron in no time, with data intervals', async () => {
      const f = defineFlow({
        name: `hourly_${storeName}`,
        triggers: { hourly: { kind: 'cron', cron: '0 * * * *', timezone: 'UTC', catchup: 'none' } },
      });
      f.task('load', async (ctx) => [ctx.params.interval_start, ctx.params.interval_end]);
      const kit = await open();
      await kit.schedule(f);
      const realStart = Date.now();
      await kit.advance('1d');
      const runs = await kit.runsOf(f);
      expect(runs).toHaveLength(24);
      for (const run of runs) await run.refresh();
      expect(runs.every((r) => r.state === 'succeeded')).toBe(true);
      // Time starts at 2030-01-01T00:00Z: the first fire time after it is 01:00.
      expect(runs[0]?.task('load').output).toEqual(['2030-01-01T00:00:00.000Z', '2030-01-01T01:00:00.000Z']);
      expect(runs[23]?.task('load').output).toEqual(['2030-01-01T23:00:00.000Z', '2030-01-02T00:00:00.000Z']);
      expect(Date.now() - realStart).toBeLessThan(30_000);
    });

    it('cancelling a parent run cancels its waiting child run', async () => {
      const child = defineFlow({ name: `waits_${storeName}` });
      child.waitForEvent('hold', { event: 'never' });
      const parent = defineFlow({ name: `holder_${storeName}` });
      parent.subflow('run_child', { flow: `waits_${storeName}` });
      const kit = await open({ flows: [child] });
      const run = await kit.run(parent);
      expect(await run.settle()).toBe('waiting');
      const [childRun] = await run.children();
      expect(childRun).toBeDefined();
      await run.cancel();
      expect(await run.settle()).toBe('cancelled');
      expect(run.task('run_child').state).toBe('cancelled');
      await kit.quiesce();
      const state = await childRun?.refresh();
      expect(state?.state).toBe('cancelled');
    });

    it('error kinds: retry only transient failures; a handler takes only the kinds it names', async () => {
      const f = defineFlow({ name: `kinds_${storeName}` });
      f.task(
        'fetch',
        { retry: { maxAttempts: 5, backoff: '1m', maxBackoff: '1h', retryOn: ['transient'] } },
        async (ctx) => {
          if (ctx.attempt < 3) throw new TaskFailure('503 from the API', { code: 'HTTP_503', kind: 'transient' });
          throw new TaskFailure('the payload is not an order', {
            code: 'BAD_ORDER',
            kind: 'validation',
            details: { line: 7 },
          });
        },
      );
      f.task(
        'parse',
        {
          retry: { maxAttempts: 3, backoff: '1m', maxBackoff: '1h' },
          onFailure: { run: async () => 'fallback', recover: true, on: ['timeout'] },
        },
        async () => {
          throw new TaskFailure('bad column', { kind: 'validation' });
        },
      );
      const run = await (await open()).run(f);
      expect(await run.settle()).toBe('failed');
      // Two transient failures were retried; the validation failure ended it.
      expect(run.task('fetch')).toMatchObject({
        state: 'failed',
        attempts: 3,
        error: { code: 'BAD_ORDER', kind: 'validation', details: { line: 7 } },
      });
      // Validation errors are never retried, and the handler only takes timeouts.
      expect(run.task('parse')).toMatchObject({ state: 'failed', attempts: 1, error: { kind: 'validation' } });
      expect(run.task('parse.on_failure').state).toBe('skipped');
    });

    it('answers a request that names a task the run does not have, and changes nothing', async () => {
      const f = defineFlow({ name: `stray_${storeName}` });
      f.waitForEvent('hold', { event: 'go' });
      const kit = await open();
      const run = await kit.run(f);
      expect(await run.settle()).toBe('waiting');
      await kit.store.addRequest(run.id, 'cancel_task', { task: 'nope', reason: 'typo' });
      await kit.quiesce();
      expect(await kit.store.pendingRequests([run.id])).toEqual([]);
      await run.refresh();
      expect(run.task('hold').state).toBe('waiting');
    });

    it('testFlow: the one-call form', async () => {
      const f = defineFlow({ name: `one_${storeName}` });
      f.task('hello', async () => 'world');
      const run = await testFlow(f, db.url ? { databaseUrl: db.url } : {});
      try {
        expect(await run.settle()).toBe('succeeded');
        expect(run.tasks().map((t) => [t.id, t.state, t.output])).toEqual([['hello', 'succeeded', 'world']]);
      } finally {
        await run.close();
      }
    });
  });
}
