/**
 * The HTTP API v1 on a real server (127.0.0.1, port 0) over a real store, SQLite file and
 * PostgreSQL database: every route's answer, bad input answered 400/422 with a message,
 * unknown objects 404, and the live event stream resumed with Last-Event-ID.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import type { Engine } from '../../src/engine/engine.js';
import type { RunningServer } from '../../src/server/server.js';
import { startServer } from '../../src/server/server.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';

const FLOWS: Record<string, string> = {
  'hello.yaml': `name: hello
description: says hello
params:
  who: { type: string, default: world }
tasks:
  greet:
    run: echo "hello $WHO"
    env: { WHO: '\${{ params.who }}' }
  after:
    depends_on: [greet]
    run: echo done
`,
  'gate.yaml': `name: gate
tasks:
  go_live:
    approval:
      message: ship?
  paid:
    wait_for_event:
      event: payment.received
`,
  'flaky.yaml': `name: flaky
tasks:
  boom:
    run: exit 3
`,
  'hooked.yaml': `name: hooked
triggers:
  on_call:
    kind: webhook
tasks:
  work:
    run: echo hooked
`,
  'hourly.yaml': `name: hourly
triggers:
  every_hour: { kind: interval, every: 1h }
tasks:
  work:
    run: echo hourly
`,
  'broken.yaml': `name: broken
tasks:
  a:
    depends_on: [nope]
    run: echo a
`,
};

const stores = storeSetups('baton-server-');

interface Json {
  [k: string]: unknown;
}

for (const kind of Object.keys(stores)) {
  describe(`HTTP API on ${kind}`, () => {
    let setup: StoreSetup;
    let rt: Runtime;
    let engine: Engine;
    let service: TriggerService;
    let server: RunningServer;
    let base: string;

    const call = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; json: Json }> => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      return { status: res.status, json: (text ? JSON.parse(text) : {}) as Json };
    };
    const errorOf = (json: Json) => json.error as { code: string; message: string; hint: string | null };

    /** Reads the run until it is in one of `states` (bounded). */
    const until = async (id: string, states: string[]): Promise<Json> => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const { json } = await call('GET', `/api/v1/runs/${id}`);
        if (states.includes(json.state as string)) return json;
        if (Date.now() > deadline) throw new Error(`run ${id} is ${String(json.state)}, not ${states.join('|')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    beforeAll(async () => {
      setup = await (stores[kind] as () => Promise<StoreSetup>)();
      mkdirSync(join(setup.dir, 'flows'));
      writeFileSync(join(setup.dir, 'baton.yaml'), 'concurrency: 4\n');
      for (const [name, text] of Object.entries(FLOWS)) writeFileSync(join(setup.dir, 'flows', name), text);
      rt = await openRuntime({ cwd: setup.dir, env: { ...process.env, ...setup.env } });
      service = rt.createTriggerService();
      await service.sync();
      engine = rt.createEngine();
      engine.startWorker();
      server = await startServer({
        rt,
        port: 0,
        webhooks: { service, env: {} },
        uiDir: join(setup.dir, 'no-ui'),
        live: { pollMs: 100 },
      });
      base = `http://127.0.0.1:${server.port}`;
    }, 30_000);

    afterAll(async () => {
      await server?.close();
      await engine?.stop();
      await service?.stop();
      await rt?.close();
      await setup?.cleanup();
    }, 30_000);

    it('answers health, version and the OpenAPI document; unknown routes are ROUTE_NOT_FOUND', async () => {
      const health = await call('GET', '/api/v1/health');
      expect(health).toMatchObject({ status: 200, json: { status: 'ok', store: kind } });
      expect((await call('GET', '/api/v1/version')).json).toMatchObject({ api: 'v1' });
      const doc = await call('GET', '/api/v1/openapi.json');
      expect(doc.json.openapi).toBe('3.1.0');
      expect(Object.keys(doc.json.paths as Json)).toEqual(
        expect.arrayContaining(['/api/v1/runs/{id}', '/api/v1/flows/{flow}/runs', '/api/v1/triggers/{id}/pause']),
      );
      const missing = await call('GET', '/api/v1/nothing/here');
      expect(missing.status).toBe(404);
      expect(errorOf(missing.json)).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
      expect(errorOf(missing.json).message).toContain('/api/v1/nothing/here');
      expect((await call('DELETE', '/api/v1/runs')).status).toBe(404);
    });

    it('serves a page saying the UI is not built', async () => {
      const res = await fetch(`${base}/runs/some/page`, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('npm run build');
    });

    it('lists flows, failing ones first, filtered by q; shows one flow; 404 for an unknown one', async () => {
      const { status, json } = await call('GET', '/api/v1/flows');
      expect(status).toBe(200);
      const items = json.items as Json[];
      expect(items.map((f) => f.name)).toEqual(['broken', 'flaky', 'gate', 'hello', 'hooked', 'hourly']);
      expect((items[0]?.problems as unknown[]).length).toBeGreaterThan(0);
      expect(items.find((f) => f.name === 'hooked')?.triggers).toEqual([
        { name: 'on_call', kind: 'webhook', paused: false, next_fire_at: null },
      ]);
      const page = await call('GET', '/api/v1/flows?limit=2');
      expect((page.json.items as Json[]).length).toBe(2);
      const next = await call('GET', `/api/v1/flows?limit=2&cursor=${String(page.json.next_cursor)}`);
      expect((next.json.items as Json[]).map((f) => f.name)).toEqual(['gate', 'hello']);
      expect(((await call('GET', '/api/v1/flows?q=ell')).json.items as Json[]).map((f) => f.name)).toEqual(['hello']);
      const hello = await call('GET', '/api/v1/flows/hello');
      expect(hello.json).toMatchObject({
        name: 'hello',
        description: 'says hello',
        task_count: 2,
        params_schema: { type: 'object', properties: { who: { type: 'string', default: 'world' } } },
        graph: { edges: [{ from: 'greet', to: 'after' }] },
      });
      const unknown = await call('GET', '/api/v1/flows/nope');
      expect(unknown.status).toBe(404);
      expect(errorOf(unknown.json).code).toBe('FLOW_NOT_FOUND');
      const bad = await call('GET', '/api/v1/flows?limit=9999');
      expect(bad.status).toBe(400);
      expect(errorOf(bad.json)).toMatchObject({ code: 'REQUEST_INVALID' });
      expect(errorOf(bad.json).message).toContain('limit');
      expect((await call('GET', '/api/v1/flows?cursor=zzz')).status).toBe(400);
    });

    it('starts a run, deduplicates, refuses bad params (422) and malformed bodies (400)', async () => {
      const started = await call('POST', '/api/v1/flows/hello/runs', {
        params: { who: 'api' },
        dedupe_key: 'k1',
        labels: { team: 'web' },
      });
      expect(started.status).toBe(201);
      expect(started.json).toMatchObject({ created: true, run: { flow: 'hello', params: { who: 'api' } } });
      const again = await call('POST', '/api/v1/flows/hello/runs', { dedupe_key: 'k1' });
      expect(again).toMatchObject({ status: 200, json: { id: started.json.id, created: false } });

      const refused = await call('POST', '/api/v1/flows/hello/runs', { params: { nope: 1 } });
      expect(refused.status).toBe(422);
      expect(errorOf(refused.json)).toMatchObject({ code: 'RUN_PARAM_INVALID' });
      expect(errorOf(refused.json).message).toContain('nope');
      const badLabel = await call('POST', '/api/v1/flows/hello/runs', { labels: { '-x': 'y' } });
      expect(badLabel.status).toBe(422);
      const malformed = await call('POST', '/api/v1/flows/hello/runs', '{"params":');
      expect(malformed.status).toBe(400);
      expect(errorOf(malformed.json).code).toBe('REQUEST_INVALID');
      const wrongType = await call('POST', '/api/v1/flows/hello/runs', { params: 'x' });
      expect(wrongType.status).toBe(400);
      expect(errorOf(wrongType.json).message).toContain('params');
      const noFlow = await call('POST', '/api/v1/flows/nope/runs', {});
      expect(noFlow.status).toBe(404);

      const batch = await call('POST', '/api/v1/flows/hello/runs:batch', { runs: [{}, { params: { who: 'b' } }] });
      expect(batch.status).toBe(201);
      expect((batch.json.items as Json[]).map((i) => i.created)).toEqual([true, true]);
      expect((await call('POST', '/api/v1/flows/hello/runs:batch', { runs: [] })).status).toBe(400);
      const badBatch = await call('POST', '/api/v1/flows/hello/runs:batch', { runs: [{}, { params: { x: 1 } }] });
      expect(badBatch.status).toBe(422);
    });

    it('shows a run, its tasks, one task with attempts, history, logs and child runs', async () => {
      const started = await call('POST', '/api/v1/flows/hello/runs', { params: { who: 'logs' } });
      const id = started.json.id as string;
      const run = await until(id, ['succeeded']);
      expect(run).toMatchObject({ id, state: 'succeeded', task_count: 2, failure: null, children: [], parent: null });
      expect((run.tasks as Json[]).map((t) => [t.id, t.state])).toEqual([
        ['greet', 'succeeded'],
        ['after', 'succeeded'],
      ]);
      const tasks = await call('GET', `/api/v1/runs/${id}/tasks?limit=1`);
      expect((tasks.json.items as Json[]).map((t) => t.id)).toEqual(['greet']);
      expect(tasks.json.next_cursor).not.toBeNull();
      const greet = await call('GET', `/api/v1/runs/${id}/tasks/greet`);
      expect(greet.json).toMatchObject({ task: { id: 'greet', attempts: 1 }, attempts: [{ attempt: 1 }] });
      const noTask = await call('GET', `/api/v1/runs/${id}/tasks/nope`);
      expect(noTask.status).toBe(404);
      expect(errorOf(noTask.json).code).toBe('TASK_NOT_FOUND');
      const events = await call('GET', `/api/v1/runs/${id}/events`);
      const types = (events.json.items as Json[]).map((e) => e.type);
      expect(types[0]).toBe('run_created');
      expect(types).toContain('run_succeeded');
      const after = await call('GET', `/api/v1/runs/${id}/events?after=1&limit=1`);
      expect((after.json.items as Json[])[0]?.seq).toBe(2);
      const logs = await call('GET', `/api/v1/runs/${id}/logs?task=greet`);
      expect((logs.json.items as Json[]).map((l) => l.text)).toEqual(['hello logs']);
      expect((await call('GET', `/api/v1/runs/${id}/children`)).json).toEqual({ items: [], next_cursor: null });
      const missing = await call('GET', '/api/v1/runs/r000000000000000');
      expect(missing.status).toBe(404);
      expect(errorOf(missing.json)).toMatchObject({ code: 'RUN_NOT_FOUND' });
      expect((await call('GET', '/api/v1/runs/r000000000000000/logs')).status).toBe(404);
      expect((await call('GET', `/api/v1/runs/${id}/logs?attempt=0`)).status).toBe(400);
    });

    it('lists runs newest first, filtered by flow and states, page by page', async () => {
      const all = await call('GET', '/api/v1/runs?flow=hello&state=succeeded,queued,running&limit=2');
      expect(all.status).toBe(200);
      const items = all.json.items as Json[];
      expect(items.length).toBe(2);
      expect(items.every((r) => r.flow === 'hello')).toBe(true);
      expect(String(items[0]?.created_at) >= String(items[1]?.created_at)).toBe(true);
      const next = await call('GET', `/api/v1/runs?flow=hello&limit=2&cursor=${String(all.json.next_cursor)}`);
      expect((next.json.items as Json[]).length).toBeGreaterThan(0);
      const none = await call('GET', '/api/v1/runs?flow=hello&until=2000-01-01T00:00:00Z');
      expect(none.json.items).toEqual([]);
      const bad = await call('GET', '/api/v1/runs?state=sleeping');
      expect(bad.status).toBe(400);
      expect(errorOf(bad.json).message).toContain('sleeping');
      expect((await call('GET', '/api/v1/runs?since=yesterday')).status).toBe(400);
    });

    it('approves, signals and cancels a waiting run; retries and resumes a failed one', async () => {
      const id = (await call('POST', '/api/v1/flows/gate/runs', {})).json.id as string;
      const deadline = Date.now() + 15_000;
      for (;;) {
        const { json } = await call('GET', `/api/v1/runs/${id}`);
        if ((json.tasks as Json[]).filter((t) => t.state === 'waiting').length === 2) break;
        if (Date.now() > deadline) throw new Error('the gate tasks never waited');
        await new Promise((r) => setTimeout(r, 50));
      }
      const wrongTask = await call('POST', `/api/v1/runs/${id}/approve`, { task: 'nope', by: 'alice' });
      expect(wrongTask.status).toBe(404);
      expect((await call('POST', `/api/v1/runs/${id}/approve`, { task: 'go_live' })).status).toBe(400);
      const approved = await call('POST', `/api/v1/runs/${id}/approve`, {
        task: 'go_live',
        by: 'alice',
        comment: 'ok',
      });
      expect(approved).toMatchObject({ status: 200, json: { task: 'go_live', task_state: 'succeeded' } });
      const again = await call('POST', `/api/v1/runs/${id}/reject`, { task: 'go_live', by: 'bob' });
      expect(again.status).toBe(409);
      const badEvent = await call('POST', `/api/v1/runs/${id}/signal`, { event: 'no spaces' });
      expect(badEvent.status).toBe(422);
      expect(errorOf(badEvent.json).code).toBe('SIGNAL_INVALID');
      const signal = await call('POST', `/api/v1/runs/${id}/signal`, { event: 'payment.received', payload: { n: 1 } });
      expect(signal.status).toBe(200);
      expect((signal.json.delivered as Json).woke).toEqual(['paid']);
      await until(id, ['succeeded']);

      const waiting = (await call('POST', '/api/v1/flows/gate/runs', {})).json.id as string;
      const cancelled = await call('POST', `/api/v1/runs/${waiting}/cancel`, { reason: 'not today' });
      expect(cancelled.status).toBe(200);
      expect((await until(waiting, ['cancelled'])).state).toBe('cancelled');
      expect((await call('POST', '/api/v1/runs/r000000000000000/cancel', {})).status).toBe(404);

      const failed = (await call('POST', '/api/v1/flows/flaky/runs', {})).json.id as string;
      const run = await until(failed, ['failed']);
      expect(run.failure).toMatchObject({ task: 'boom' });
      const bothWays = await call('POST', `/api/v1/runs/${failed}/retry`, { from: 'boom', failed: true });
      expect(bothWays.status).toBe(422);
      const retried = await call('POST', `/api/v1/runs/${failed}/retry`, {});
      expect(retried.status).toBe(200);
      await until(failed, ['failed']);
      const fromTask = await call('POST', `/api/v1/runs/${failed}/retry`, { from: 'nope' });
      expect(fromTask.status).toBe(404);
      const resumed = await call('POST', `/api/v1/runs/${failed}/resume`);
      expect(resumed).toMatchObject({ status: 200, json: { id: failed, state: 'failed' } });
    }, 40_000);

    it('lists, shows, pauses and resumes triggers; a webhook on the same port creates a run', async () => {
      const list = await call('GET', '/api/v1/triggers');
      expect((list.json.items as Json[]).map((t) => t.id).sort()).toEqual(['hooked/on_call', 'hourly/every_hour']);
      const hourly = await call('GET', `/api/v1/triggers/${encodeURIComponent('hourly/every_hour')}`);
      expect((hourly.json.next_fire_times as string[]).length).toBe(5);
      const one = await call('GET', `/api/v1/triggers/${encodeURIComponent('hooked/on_call')}`);
      expect(one.json).toMatchObject({ id: 'hooked/on_call', kind: 'webhook', paused: false, next_fire_times: [] });
      const paused = await call('POST', `/api/v1/triggers/${encodeURIComponent('hooked/on_call')}/pause`);
      expect(paused.json.paused).toBe(true);
      const refused = await call('POST', '/hooks/on_call', {});
      expect(refused.status).toBe(409);
      const resumed = await call('POST', `/api/v1/triggers/${encodeURIComponent('hooked/on_call')}/resume`);
      expect(resumed.json.paused).toBe(false);
      const hook = await call('POST', '/hooks/hooked/on_call', { x: 1 }, { 'idempotency-key': 'once' });
      expect(hook.status).toBe(422);
      const ok = await call('POST', '/hooks/on_call', {});
      expect(ok.status).toBe(202);
      expect(ok.json.outcome).toBe('run');
      await until(ok.json.run_id as string, ['succeeded']);
      const history = await call('GET', `/api/v1/triggers/${encodeURIComponent('hooked/on_call')}/history?limit=10`);
      expect((history.json.items as Json[]).map((f) => f.outcome)).toContain('run');
      expect((await call('GET', '/api/v1/triggers/hooked%2Fnope')).status).toBe(404);
      expect((await call('POST', '/hooks/nope', {})).status).toBe(404);
    });

    it("lists a flow's versions", async () => {
      const versions = await call('GET', '/api/v1/flows/hello/versions');
      expect(versions.status).toBe(200);
      const hello = await call('GET', '/api/v1/flows/hello');
      expect((versions.json.items as Json[]).map((v) => v.version)).toEqual([hello.json.version]);
      expect((await call('GET', '/api/v1/flows/nope/versions')).status).toBe(404);
    });

    it('plans, starts, lists, pauses, resumes and cancels a backfill', async () => {
      const range = { flow: 'hourly', from: '2024-01-01', to: '2024-01-01T03:00:00Z' };
      const plan = await call('POST', '/api/v1/backfills/plan', range);
      expect(plan.status).toBe(200);
      expect(plan.json.trigger).toBe('hourly/every_hour');
      expect((plan.json.intervals as Json[]).map((i) => [i.fire_at, i.status])).toEqual([
        ['2024-01-01T01:00:00.000Z', 'create'],
        ['2024-01-01T02:00:00.000Z', 'create'],
        ['2024-01-01T03:00:00.000Z', 'create'],
      ]);
      const started = await call('POST', '/api/v1/backfills', { ...range, max_parallel: 2 });
      expect(started.status).toBe(201);
      expect(started.json).toMatchObject({ flow: 'hourly', state: 'running', max_parallel: 2, progress: { total: 3 } });
      const id = started.json.id as string;
      expect(((await call('GET', '/api/v1/backfills')).json.items as Json[]).map((b) => b.id)).toContain(id);
      expect((await call('GET', `/api/v1/backfills/${id}`)).json.id).toBe(id);
      expect((await call('POST', `/api/v1/backfills/${id}/pause`)).json.state).toBe('paused');
      const twice = await call('POST', `/api/v1/backfills/${id}/pause`);
      expect(twice.status).toBe(200);
      expect((await call('POST', `/api/v1/backfills/${id}/resume`)).json.state).toBe('running');
      expect((await call('POST', `/api/v1/backfills/${id}/cancel`)).json.state).toBe('cancelled');
      const notAgain = await call('POST', `/api/v1/backfills/${id}/resume`);
      expect(notAgain.status).toBe(422);
      const unknown = await call('GET', '/api/v1/backfills/nope');
      expect(unknown.status).toBe(404);
      expect(errorOf(unknown.json).code).toBe('BACKFILL_NOT_FOUND');
      const badDate = await call('POST', '/api/v1/backfills/plan', { ...range, from: 'someday' });
      expect(badDate.status).toBe(422);
      expect(errorOf(badDate.json).message).toContain('someday');
      expect((await call('POST', '/api/v1/backfills/plan', { from: '2024-01-01', to: '2024-01-02' })).status).toBe(400);
      const future = await call('POST', '/api/v1/backfills', { ...range, to: '2999-01-01' });
      expect(future.status).toBe(422);
      expect((await call('POST', '/api/v1/backfills/plan', { ...range, flow: 'nope' })).status).toBe(404);
    });

    it('lists assets; an unknown asset is 404', async () => {
      expect(await call('GET', '/api/v1/assets')).toMatchObject({
        status: 200,
        json: { items: [], next_cursor: null },
      });
      const missing = await call('GET', '/api/v1/assets/nope');
      expect(missing.status).toBe(404);
      expect(errorOf(missing.json).code).toBe('ASSET_NOT_FOUND');
    });

    it('streams run, task and log events, and resumes after Last-Event-ID', async () => {
      const events: { id: number; event: string; data: Json }[] = [];
      const read = async (headers: Record<string, string>, stop: (e: (typeof events)[number]) => boolean) => {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 15_000);
        const got: (typeof events)[number][] = [];
        try {
          const res = await fetch(`${base}/api/v1/events?flow=hello`, { headers, signal: controller.signal });
          expect(res.headers.get('content-type')).toContain('text/event-stream');
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += new TextDecoder().decode(value);
            let cut: number;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              const fields = Object.fromEntries(
                block
                  .split('\n')
                  .filter((l) => !l.startsWith(':'))
                  .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
              );
              if (!fields.id) continue;
              const e = {
                id: Number(fields.id),
                event: String(fields.event),
                data: JSON.parse(String(fields.data)) as Json,
              };
              got.push(e);
              if (stop(e)) {
                controller.abort();
                return got;
              }
            }
          }
        } catch (error) {
          if ((error as Error).name !== 'AbortError') throw error;
        } finally {
          clearTimeout(timer);
        }
        return got;
      };
      const reading = read({}, (e) => e.event === 'run' && e.data.state === 'succeeded');
      await new Promise((r) => setTimeout(r, 300));
      const id = (await call('POST', '/api/v1/flows/hello/runs', { params: { who: 'live' } })).json.id as string;
      events.push(...(await reading));
      expect(events.some((e) => e.event === 'log' && e.data.text === 'hello live' && e.data.run_id === id)).toBe(true);
      expect(events.some((e) => e.event === 'task' && (e.data.task as Json).state === 'succeeded')).toBe(true);
      expect(events.every((e, i) => i === 0 || e.id > (events[i - 1] as (typeof events)[number]).id)).toBe(true);
      // A client that saw only the first event gets the rest of them again.
      const first = events[0] as (typeof events)[number];
      const replay = await read({ 'last-event-id': String(first.id) }, (e) => e.id === events.at(-1)?.id);
      expect(replay.map((e) => e.id)).toEqual(events.slice(1).map((e) => e.id));
    });

    it('follows the log lines of a run until it ends', async () => {
      const id = (await call('POST', '/api/v1/flows/hello/runs', { params: { who: 'follow' } })).json.id as string;
      const res = await fetch(`${base}/api/v1/runs/${id}/logs?follow=true`, { signal: AbortSignal.timeout(15_000) });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const text = await res.text();
      expect(text).toContain('"text":"hello follow"');
      expect(text).toContain('"text":"done"');
    });
  });
}

describe('HTTP limits and the UI on the server port', () => {
  let setup: StoreSetup;
  let rt: Runtime;
  let server: RunningServer;

  beforeAll(async () => {
    setup = await (stores.sqlite as () => Promise<StoreSetup>)();
    mkdirSync(join(setup.dir, 'flows'));
    writeFileSync(join(setup.dir, 'flows', 'hello.yaml'), FLOWS['hello.yaml'] as string);
    mkdirSync(join(setup.dir, 'ui', 'assets'), { recursive: true });
    writeFileSync(join(setup.dir, 'ui', 'index.html'), '<!doctype html><title>Baton UI</title>');
    writeFileSync(join(setup.dir, 'ui', 'assets', 'app.js'), 'console.log(1)');
    rt = await openRuntime({ cwd: setup.dir, env: process.env });
    server = await startServer({
      rt,
      port: 0,
      uiDir: join(setup.dir, 'ui'),
      limits: { bodyBytes: 1024, headerTimeoutMs: 200, bodyTimeoutMs: 200 },
      live: { pingMs: 100 },
    });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
    await rt?.close();
    await setup?.cleanup();
  });

  it('serves the UI files, and index.html for any other page', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    expect(await (await fetch(`${base}/assets/app.js`)).text()).toBe('console.log(1)');
    const page = await fetch(`${base}/runs/r123`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Baton UI');
    expect(await (await fetch(`${base}/`)).text()).toContain('Baton UI');
    expect((await fetch(`${base}/api/v1/nope`)).status).toBe(404);
  });

  it('answers 413 to a body over limits.http_body_bytes, and no /hooks without webhooks', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    const res = await fetch(`${base}/api/v1/flows/hello/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ params: { who: 'x'.repeat(4000) } }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await fetch(`${base}/hooks/on_call`, { method: 'POST', body: '{}' })).status).toBe(404);
  });

  it('keeps an event stream open past the request timeouts, with pings', async () => {
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/events`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = Date.now() + 1200;
    try {
      while (Date.now() < until) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    } finally {
      controller.abort();
    }
    expect(Date.now()).toBeGreaterThanOrEqual(until);
    expect(text.split(': ping').length - 1).toBeGreaterThanOrEqual(5);
  });
});
