/**
 * The client over HTTP against the client on the store: one scenario (start with params,
 * result, status, list, tasks, cancel a sleeping run, signal and approve a waiting run, a
 * run that fails, an unknown run) played through both, on a real server (127.0.0.1, port
 * 0) whose in-process worker executes the runs, over a SQLite file and a PostgreSQL
 * database. Both must tell the same story; and each run, read through both, must read the
 * same.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import { findTrigger } from '../../src/app/triggers.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import type { Engine } from '../../src/engine/engine.js';
import type { RunningServer } from '../../src/server/server.js';
import { startServer } from '../../src/server/server.js';
import { defineFlow, openClient } from '../../src/index.js';
import type { BatonApi, BatonClient, BatonRemoteClient, RunInfo, TaskRunInfo } from '../../src/index.js';
import { freePort } from '../helpers/ports.js';
import { rejection, thrown } from '../helpers/thrown.js';
import { waitFor } from '../helpers/wait.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import { storeSetups } from '../store/pg-helpers.js';

const FLOWS: Record<string, string> = {
  'hello.yaml': `name: hello
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
  'sleeper.yaml': `name: sleeper
tasks:
  nap:
    run: sleep 30
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
  'hourly.yaml': `name: hourly
triggers:
  every_hour: { kind: interval, every: 1h }
tasks:
  work:
    run: echo hourly
`,
  'flaky.yaml': `name: flaky
tasks:
  boom:
    run: exit 3
`,
};

/** Bounded: a wait gives up with a clear failure rather than hanging. */
const WAIT = { timeoutMs: 20_000 };
const LABELS = { suite: 'conformance' };

/** A run as it reads whoever started it: no id, no times. */
const stable = (r: RunInfo) => {
  const { id: _id, createdAt: _c, startedAt: _s, endedAt: _e, ...rest } = r;
  return rest;
};
const statesOf = (tasks: readonly TaskRunInfo[]) => Object.fromEntries(tasks.map((t) => [t.id, t.state]));

/** The scenario: what a program sees through `client`, without ids and times. */
async function scenario(client: BatonApi): Promise<{ story: Record<string, unknown>; runs: string[] }> {
  const story: Record<string, unknown> = {};
  const runs: string[] = [];

  // Start with params; result, status, list and tasks.
  const hello = await client.start('hello', { who: 'ana' }, { labels: LABELS });
  runs.push(hello.id);
  story.helloCreated = hello.created;
  story.helloResult = await hello.result(WAIT);
  const status = await client.status(hello.id);
  expect(await hello.status()).toEqual(status);
  story.helloStatus = stable(status);
  const [listed] = await client.list({ flow: 'hello', labels: LABELS, limit: 1 });
  expect(listed).toEqual(status);
  story.helloTasks = await client.tasks(hello.id);
  story.helloByHandle = (await client.handle(hello.id)).flow;

  // Cancel a sleeping run.
  const sleeper = await client.start('sleeper', {}, { labels: LABELS });
  runs.push(sleeper.id);
  await waitFor(async () => ((await sleeper.tasks())[0]?.state === 'running' ? true : undefined), {
    ...WAIT,
    what: 'the nap to run',
  });
  const cancelled = await client.cancel(sleeper.id, { reason: 'enough' });
  story.cancelled = { state: cancelled.state, error: cancelled.error?.code ?? null };
  const cancelError = await rejection(sleeper.result(WAIT));
  story.cancelledResult = { code: cancelError.code, state: cancelError.details.state };
  story.cancelledTasks = statesOf(await client.tasks(sleeper.id));

  // Signal and approve a waiting run.
  const gate = await client.start('gate', {}, { labels: LABELS });
  runs.push(gate.id);
  await waitFor(async () => ((await gate.tasks()).every((t) => t.state === 'waiting') ? true : undefined), {
    ...WAIT,
    what: 'the gate to wait',
  });
  const timedOut = await rejection(client.result(gate.id, { timeoutMs: 150 }));
  story.waitTimeout = { code: timedOut.code, state: timedOut.details.state };
  story.signalled = await gate.signal('payment.received', { data: { amount: 5 }, id: 'pay-1' });
  story.signalledAgain = await client.signal(gate.id, 'payment.received', { data: { amount: 5 }, id: 'pay-1' });
  story.approved = await client.approve(gate.id, 'go_live', { by: 'ana', comment: 'ship it' });
  const gateResult = await gate.result(WAIT);
  // The decision's time is the one thing of the result that differs from run to run.
  story.gateResult = {
    ...gateResult,
    go_live: { ...(gateResult.go_live as object), at: typeof (gateResult.go_live as { at: unknown }).at },
  };

  // A run that fails.
  const flaky = await client.start('flaky', {}, { labels: LABELS });
  runs.push(flaky.id);
  const failed = await rejection(flaky.result(WAIT));
  story.failed = {
    code: failed.code,
    message: failed.message.replaceAll(flaky.id, '<run>'),
    hint: failed.hint.replaceAll(flaky.id, '<run>'),
    details: { ...failed.details, runId: failed.details.runId === flaky.id },
  };
  story.failedStatus = stable(await client.status(flaky.id));

  // A run that is not there, and a bad param.
  const missing = await rejection(client.status('no-such-run'));
  story.missing = { code: missing.code, message: missing.message, hint: missing.hint };
  const missingResult = await rejection(client.result('no-such-run'));
  story.missingResult = missingResult.code;
  const badParam = await rejection(client.start('hello', { who: 42 }));
  story.badParam = { code: badParam.code, message: badParam.message };
  const unknownFlow = await rejection(client.start('nope'));
  story.unknownFlow = unknownFlow.code;
  return { story, runs };
}

/**
 * A proxy in front of a server that counts the requests by path and, when `refuseEvents`,
 * answers the live event stream with a 404 as a proxy that does not pass it would.
 */
async function startProxy(target: string, refuseEvents: boolean) {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    seen.push(url.split('?')[0] as string);
    if (refuseEvents && url.startsWith('/api/v1/events')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
      return;
    }
    const upstream = httpRequest(new URL(url, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const stores = storeSetups('baton-remote-');

for (const kind of Object.keys(stores)) {
  describe(`client over HTTP on ${kind}`, () => {
    let setup: StoreSetup;
    let rt: Runtime;
    let engine: Engine;
    let service: TriggerService;
    let server: RunningServer;
    let local: BatonClient;
    let remote: BatonRemoteClient;

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
      server = await startServer({ rt, port: 0, uiDir: join(setup.dir, 'no-ui'), live: { pollMs: 100 } });
      local = await openClient({ project: setup.dir, env: setup.env });
      remote = await openClient({ url: server.url });
    }, 30_000);

    afterAll(async () => {
      await remote?.close();
      await local?.close();
      await server?.close();
      await engine?.stop();
      await service?.stop();
      await rt?.close();
      await setup?.cleanup();
    }, 30_000);

    it('tells the same story as the client on the store, and each run reads the same through both', async () => {
      expect(remote.dialect).toBe(kind);
      const near = await scenario(local);
      const far = await scenario(remote);
      expect(far.story).toEqual(near.story);
      // Sanity: the story is the one intended, not two equal failures.
      expect(near.story).toMatchObject({
        helloCreated: true,
        helloStatus: { flow: 'hello', state: 'succeeded', params: { who: 'ana' }, labels: LABELS },
        cancelled: { state: 'cancelled' },
        cancelledResult: { code: 'RUN_FAILED', state: 'cancelled' },
        waitTimeout: { code: 'RUN_WAIT_TIMEOUT', state: 'running' },
        signalled: { id: 'pay-1', woke: ['paid'], kept: false, duplicate: false },
        signalledAgain: { duplicate: true },
        approved: { task: 'go_live', taskState: 'succeeded' },
        gateResult: { go_live: { approved: true, by: 'ana', at: 'number' }, paid: { amount: 5 } },
        failed: { code: 'RUN_FAILED', details: { state: 'failed', task: 'boom' } },
        missing: { code: 'RUN_NOT_FOUND' },
        missingResult: 'RUN_NOT_FOUND',
        badParam: { code: 'RUN_PARAM_INVALID' },
      });
      for (const id of [...near.runs, ...far.runs]) {
        expect(await remote.status(id)).toEqual(await local.status(id));
        expect(await remote.tasks(id)).toEqual(await local.tasks(id));
        expect(await remote.runAssets(id)).toEqual(await local.runAssets(id));
        const events = async (c: BatonApi) => {
          const out = [];
          for await (const e of c.watch(id)) out.push(e);
          return out;
        };
        expect(await events(remote)).toEqual(await events(local));
      }
      expect(await remote.list({ labels: LABELS })).toEqual(await local.list({ labels: LABELS }));
    }, 90_000);

    it('starts many runs of a flow at once, honouring dedupe keys', async () => {
      const [a, b, c] = await remote.startMany([
        { flow: 'hello', params: { who: 'a' }, dedupeKey: `many-${kind}` },
        { flow: 'hello', params: { who: 'b' } },
        { flow: 'hello', params: { who: 'a' }, dedupeKey: `many-${kind}` },
      ]);
      expect([a?.created, b?.created, c?.created]).toEqual([true, true, false]);
      expect(c?.id).toBe(a?.id);
      expect(await b?.result(WAIT)).toEqual(await local.result(b?.id as string, WAIT));
      expect((await remote.status(a?.id as string)).dedupeKey).toBe(`many-${kind}`);
      const mixed = await rejection(remote.startMany([{ flow: 'hello' }, { flow: 'gate' }]));
      expect(mixed.code).toBe('USAGE');
    }, 30_000);

    it('retries a failed run and cancels one task run, as the client on the store does', async () => {
      const run = await remote.start('flaky');
      await rejection(run.result(WAIT));
      const retried = await run.retry({ fromFailed: true });
      expect(['queued', 'running']).toContain(retried.state);
      expect((await rejection(run.result(WAIT))).code).toBe('RUN_FAILED');
      expect((await remote.tasks(run.id))[0]?.attempts).toBe(2);
      expect((await rejection(remote.retry(run.id, { tasks: ['boom'] }))).code).toBe('USAGE');

      const gate = await remote.start('gate');
      await waitFor(async () => ((await gate.tasks()).length === 2 ? true : undefined), { ...WAIT, what: 'tasks' });
      const after = await gate.cancel({ task: 'paid' });
      expect(after.id).toBe(gate.id);
      expect(statesOf(await local.tasks(gate.id)).paid).toBe('cancelled');
      await remote.cancel(gate.id);
    }, 30_000);

    it('waits for a run on the live event stream, and polls when the stream is refused', async () => {
      for (const refuseEvents of [false, true]) {
        const proxy = await startProxy(server.url, refuseEvents);
        const client = await openClient({ url: proxy.url });
        try {
          const gate = await client.start('gate');
          const ended = gate.result(WAIT);
          await waitFor(async () => ((await local.tasks(gate.id)).length === 2 ? true : undefined), {
            ...WAIT,
            what: 'the gate to wait',
          });
          // Long enough for a client that polls to read the run many times.
          await new Promise((r) => setTimeout(r, 300));
          await local.signal(gate.id, 'payment.received', { data: 1 });
          await local.approve(gate.id, 'go_live', { by: 'ana' });
          expect(await ended).toMatchObject({ paid: 1, go_live: { approved: true } });
          const reads = proxy.seen.filter((p) => p === `/api/v1/runs/${gate.id}`).length;
          expect(proxy.seen.filter((p) => p === '/api/v1/events')).toHaveLength(1);
          if (refuseEvents) expect(reads).toBeGreaterThan(4);
          else expect(reads).toBeLessThanOrEqual(3);
        } finally {
          await client.close();
          await proxy.close();
        }
      }
    }, 30_000);

    it('pauses and resumes a trigger; an unknown one is the same error as on the store', async () => {
      await remote.pauseTrigger('hourly/every_hour');
      expect((await findTrigger(rt, 'hourly/every_hour')).paused).toBe(true);
      await remote.resumeTrigger('every_hour');
      expect((await findTrigger(rt, 'hourly/every_hour')).paused).toBe(false);
      const far = await rejection(remote.pauseTrigger('nope/none'));
      const near = await rejection(local.pauseTrigger('nope/none'));
      expect({ code: far.code, message: far.message, hint: far.hint }).toEqual({
        code: near.code,
        message: near.message,
        hint: near.hint,
      });
    });

    it('refuses what needs this process, and code-defined flows, with USAGE and a hint', async () => {
      const inCode = defineFlow({ name: 'in_code' });
      inCode.task('t', async () => 1);
      const refused = await rejection(remote.start(inCode));
      expect(refused.code).toBe('USAGE');
      expect(refused.hint).toMatch(/server's project/);
      expect(thrown(() => remote.register(inCode)).code).toBe('USAGE');
      expect(thrown(() => remote.startWorker()).hint).toMatch(/baton worker/);
    });

    it('keeps the problems of an error, and ends the waits still open when closed', async () => {
      const bad = await rejection(remote.start('hello', { who: 1, extra: true }));
      const near = await rejection(local.start('hello', { who: 1, extra: true }));
      expect(bad.code).toBe('RUN_PARAM_INVALID');
      expect(near.problems.length).toBeGreaterThan(0);
      expect(bad.problems).toEqual(near.problems);
      expect(bad.details).toEqual(near.details);

      const client = await openClient({ url: server.url });
      const gate = await client.start('gate');
      const waiting = rejection(gate.result(WAIT));
      await client.close();
      expect((await waiting).message).toMatch(/closed/);
      expect((await rejection(client.status(gate.id))).code).toBe('USAGE');
      await remote.cancel(gate.id);
    });
  });
}

describe('openClient({ url })', () => {
  it('is a USAGE error with a store, and SERVER_UNREACHABLE where no server answers', async () => {
    const both = await rejection(openClient({ url: 'http://127.0.0.1:8420', database: 'x.db' }));
    expect(both.code).toBe('USAGE');
    expect(both.message).toContain('database');
    expect((await rejection(openClient({ url: 'not a url' }))).code).toBe('USAGE');
    const port = await freePort();
    const away = await rejection(openClient({ url: `http://127.0.0.1:${port}` }));
    expect(away.code).toBe('SERVER_UNREACHABLE');
    expect(away.message).toContain(`127.0.0.1:${port}`);
    expect(away.hint).toMatch(/baton server/);
  });

  it('loads no server code: the remote client imports the server modules for their types only', () => {
    const root = resolve(import.meta.dirname, '../..');
    const seen = new Set<string>();
    const loaded: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      // Runtime imports: `import … from`, `export … from` and `import(…)`, but not `import type`.
      const specifiers = [
        ...text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^;'"]*?\sfrom\s+)?'([^']+)'/gm),
        ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
      ].map((m) => m[1] as string);
      for (const s of specifiers) {
        loaded.push(s);
        if (s.startsWith('.')) visit(resolve(dirname(file), s.replace(/\.js$/, '.ts')));
      }
    };
    visit(join(root, 'src/client/remote-client.ts'));
    expect(seen.size).toBeGreaterThan(3);
    expect(loaded.filter((s) => /fastify|\/server\/|\/app\/|\/store\//.test(s))).toEqual([]);
    expect([...seen].filter((f) => f.includes('/src/server/'))).toEqual([]);
  });
});
