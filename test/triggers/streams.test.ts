/**
 * Stream triggers against the real brokers of the machine (NATS JetStream, Redis Streams,
 * RabbitMQ), on SQLite and on PostgreSQL: a real trigger service and an engine executing
 * the runs, in a project in a temp folder. Every test uses its own stream, queue or group
 * and removes it afterwards.
 *
 * What is checked: N messages make exactly N runs (N/batch with `batch`), each with the
 * right `messages` param, and every message ends acknowledged; a redelivery after a crash
 * between the run's commit and the ack (a fault that throws at `after_emit`, so that the
 * source abandons the batch unacknowledged as a crash would) makes no second run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { EngineFaults } from '../../src/engine/engine.js';
import type { RunRecord } from '../../src/store/store.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { storeSetups } from '../store/pg-helpers.js';
import type { StoreSetup } from '../store/pg-helpers.js';
import type { Broker, BrokerKind } from './stream-brokers.js';
import { BROKER_KINDS, createBroker } from './stream-brokers.js';

const TASKS_MJS = `export function count(ctx) { return { n: ctx.params.messages.length }; }\n`;
const TRIGGER = 'on_stream/inbox';
const WAIT_MS = 30_000;

// --- the project ----------------------------------------------------------------------

type Setup = StoreSetup;
const STORES = storeSetups('baton-streams-');

/** What a test started, stopped in reverse order after it. */
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  diagnostics.length = 0;
});

interface Harness {
  readonly rt: Runtime;
  readonly service: TriggerService;
  readonly broker: Broker;
}

async function start(
  store: string,
  kind: BrokerKind,
  options: { batch?: number; faults?: EngineFaults; publishFirst?: readonly unknown[]; config?: string } = {},
): Promise<Harness> {
  const setup = await (STORES[store] as () => Promise<Setup>)();
  cleanups.push(() => setup.cleanup());
  const broker = await createBroker(kind, options.batch ?? 1);
  cleanups.push(() => broker.close());
  mkdirSync(join(setup.dir, 'flows'));
  writeFileSync(join(setup.dir, 'baton.yaml'), `lease: 2s\n${options.config ?? ''}`);
  writeFileSync(join(setup.dir, 'flows', 'tasks.mjs'), TASKS_MJS);
  const flow = {
    name: 'on_stream',
    triggers: { inbox: broker.trigger },
    tasks: { count: { kind: 'function', module: './tasks.mjs', export: 'count' } },
  };
  // JSON is YAML.
  writeFileSync(join(setup.dir, 'flows', 'on_stream.yaml'), JSON.stringify(flow, null, 2));
  if (options.publishFirst) await broker.publish(options.publishFirst);
  const rt = await openRuntime({ cwd: setup.dir, env: setup.env });
  cleanups.push(() => rt.close());
  rt.createEngine().startWorker();
  const service = rt.createTriggerService({
    tickMs: 100,
    onDiagnostic: (m) => diagnostics.push(m),
    ...(options.faults ? { sources: new Map([[kind, broker.source(options.faults)]]) } : {}),
  });
  await service.start();
  cleanups.push(() => service.stop());
  return { rt, service, broker };
}

const diagnostics: string[] = [];

/** Waits until the flow has `count` runs, all finished; returns them in the order their first messages were published. */
async function waitForRuns(rt: Runtime, count: number, sent: readonly unknown[]): Promise<RunRecord[]> {
  const end = Date.now() + WAIT_MS;
  let runs: RunRecord[] = [];
  while (Date.now() < end) {
    runs = await rt.store.listRuns({ flow: 'on_stream', limit: 1000 });
    if (runs.length > count) break;
    if (runs.length === count && runs.every((r) => isTerminalRun(r.state))) {
      // A little longer, so that a second run for a redelivered message would show.
      await new Promise((r) => setTimeout(r, 500));
      runs = await rt.store.listRuns({ flow: 'on_stream', limit: 1000 });
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(runs.length, `runs of on_stream; diagnostics:\n${diagnostics.join('\n')}`).toBe(count);
  for (const r of runs) expect(r.state).toBe('succeeded');
  const position = (r: RunRecord) => sent.findIndex((p) => isDeepStrictEqual(p, messagesOf(r)[0]?.data));
  return [...runs].sort((a, b) => position(a) - position(b));
}

/** Polls `probe` until it returns something, for at most WAIT_MS. */
async function waitFor<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const end = Date.now() + WAIT_MS;
  while (Date.now() < end) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${what} within ${WAIT_MS} ms; diagnostics:\n${diagnostics.join('\n')}`);
}

interface MessageParam {
  readonly data: unknown;
  readonly [key: string]: unknown;
}

const messagesOf = (run: RunRecord) => run.params.messages as MessageParam[];

/** Stops the trigger service and checks that the broker holds nothing unacknowledged. */
async function expectDrained(h: Harness): Promise<void> {
  await h.service.stop();
  const end = Date.now() + 10_000;
  let outstanding = await h.broker.outstanding();
  while (outstanding !== 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    outstanding = await h.broker.outstanding();
  }
  expect(outstanding, 'messages not acknowledged').toBe(0);
}

const payloads = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ order: i, tag }));

describe.each(Object.keys(STORES))('stream triggers on %s', (store) => {
  describe.each(BROKER_KINDS)('%s', (kind) => {
    it('turns each message into one run with the message as its param', async () => {
      const h = await start(store, kind);
      const sent: unknown[] = [...payloads(4, 'one-each'), 'plain text, not JSON'];
      await h.broker.publish(sent);
      const runs = await waitForRuns(h.rt, sent.length, sent);
      for (const run of runs) expect(messagesOf(run)).toHaveLength(1);
      const got = runs.map((r) => messagesOf(r)[0] as MessageParam);
      expect(got.map((m) => m.data)).toEqual(sent);
      for (const m of got) for (const key of h.broker.metadata) expect(m[key], key).toBeDefined();
      expect(new Set(runs.map((r) => r.dedupeKey)).size).toBe(sent.length);
      for (const r of runs) expect(r.dedupeKey?.startsWith(`${TRIGGER}:${kind}:`)).toBe(true);
      await expectDrained(h);
    });

    it('with batch, makes one run per batch listing its messages in order', async () => {
      const sent = payloads(8, 'batched');
      // Published before the source starts, so that every read finds a full batch.
      const h = await start(store, kind, { batch: 4, publishFirst: sent });
      const runs = await waitForRuns(h.rt, 2, sent);
      for (const run of runs) expect(messagesOf(run)).toHaveLength(4);
      expect(runs.flatMap((r) => messagesOf(r).map((m) => m.data))).toEqual(sent);
      await expectDrained(h);
    });

    it('splits a batch whose messages together are over the params limit', async () => {
      const sent = payloads(4, 'split').map((p) => ({ ...p, pad: 'x'.repeat(200) }));
      const h = await start(store, kind, {
        batch: 4,
        publishFirst: sent,
        config: 'limits:\n  params_bytes: 1000\n',
      });
      const runs = await waitForRuns(h.rt, 2, sent);
      for (const run of runs) expect(messagesOf(run)).toHaveLength(2);
      expect(runs.flatMap((r) => messagesOf(r).map((m) => m.data))).toEqual(sent);
      const firings = await h.rt.store.listFirings(TRIGGER, 100);
      expect(firings.filter((f) => f.outcome === 'error')).toHaveLength(1);
      await expectDrained(h);
    });

    it('holds messages while the trigger is paused and makes their runs once resumed', async () => {
      const h = await start(store, kind);
      await h.rt.store.setTriggerPaused(TRIGGER, true);
      const sent = payloads(2, 'paused');
      await h.broker.publish(sent);
      await waitFor(async () => {
        const firings = await h.rt.store.listFirings(TRIGGER, 100);
        return firings.some((f) => f.outcome === 'skipped' && f.reason.startsWith('paused')) ? true : undefined;
      }, 'a firing that says the trigger is paused');
      expect(await h.rt.store.listRuns({ flow: 'on_stream' })).toHaveLength(0);
      await h.rt.store.setTriggerPaused(TRIGGER, false);
      const runs = await waitForRuns(h.rt, 2, sent);
      expect(runs.flatMap((r) => messagesOf(r).map((m) => m.data))).toEqual(sent);
      await expectDrained(h);
    });

    for (const batch of [1, 2]) {
      it(`a redelivery after a crash between commit and ack makes no second run (batch ${batch})`, async () => {
        let crashes = 0;
        const faults: EngineFaults = {
          crashPoint(name) {
            // The first batch: its run is committed, then the source dies before acknowledging.
            if (name === 'after_emit' && crashes++ === 0) throw new Error('simulated crash between commit and ack');
          },
        };
        const sent = payloads(4, 'redelivered');
        const h = await start(store, kind, { batch, faults, publishFirst: sent });
        // JetStream redelivers after the ack wait (2 s here); the others at once.
        await waitFor(async () => {
          const all = await h.rt.store.listFirings(TRIGGER, 100);
          return all.some((f) => f.outcome === 'deduplicated') ? all : undefined;
        }, 'a deduplicated firing');
        const runs = await waitForRuns(h.rt, 4 / batch, sent);
        const firings = await h.rt.store.listFirings(TRIGGER, 100);
        expect(runs.flatMap((r) => messagesOf(r).map((m) => m.data))).toEqual(sent);
        const deduplicated = firings.filter((f) => f.outcome === 'deduplicated');
        expect(deduplicated, 'the redelivered batch found its run').toHaveLength(1);
        expect(deduplicated[0]?.runId).toBe(runs[0]?.id);
        expect(firings.filter((f) => f.outcome === 'run')).toHaveLength(4 / batch);
        await expectDrained(h);
      });
    }
  });
});
