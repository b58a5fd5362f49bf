/**
 * The public client against the real stores: a SQLite file and a fresh PostgreSQL
 * database. Flows are defined in code and registered without a file; runs are executed by
 * the client's own in-process worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatonError, defineFlow, openClient } from '../../src/index.js';
import type { BatonClient, RunEventRecord } from '../../src/index.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const add = defineFlow({
  name: 'client_add',
  params: { a: { type: 'number' }, b: { type: 'number', default: 1 } },
});
const sum = add.task('sum', async ({ params }) => params.a + params.b);
add.task('twice', { inputs: { s: sum } }, async ({ inputs }) => ({ twice: inputs.s * 2 }));

const failing = defineFlow({ name: 'client_failing' });
failing.task('boom', { retry: { maxAttempts: 1 } }, async () => {
  throw new Error('boom on purpose');
});

const gated = defineFlow({ name: 'client_gated', params: { order: { type: 'string' } } });
const paid = gated.waitForEvent('paid', { event: 'payment', match: '${{ params.order }}' });
const ok = gated.approval('ship_ok', { approvers: ['ana'] });
gated.task('ship', { inputs: { payment: paid }, after: [ok] }, async ({ inputs }) => ({ shipped: inputs.payment }));

/** Bounded: a test that waits gives up with a clear failure rather than hanging. */
const WAIT = { timeoutMs: 30_000 };

type Setup = { database: string; cleanup: () => Promise<void> };
const stores: Record<string, () => Promise<Setup>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-client-'));
    return { database: join(dir, 'baton.db'), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const db = await createTestDatabase();
    return { database: db.url, cleanup: db.drop };
  },
};

for (const [storeName, makeStore] of Object.entries(stores)) {
  describe(`client on ${storeName}`, () => {
    let setup: Setup;
    let baton: BatonClient;

    beforeEach(async () => {
      setup = await makeStore();
      baton = await openClient({ database: setup.database, flows: [add, failing, gated] });
    });

    afterEach(async () => {
      await baton.close();
      await setup.cleanup();
    });

    it('starts a run of a flow defined in code and awaits its typed result', async () => {
      baton.startWorker({ concurrency: 4 });
      const run = await baton.start(add, { a: 2 }, { output: sum });
      expect(run.created).toBe(true);
      const value: number = await run.result(WAIT);
      expect(value).toBe(3);
      const all = await baton.start('client_add', { a: 5, b: 5 });
      expect(await all.result(WAIT)).toEqual({ sum: 10, twice: { twice: 20 } });
      const status = await run.status();
      expect(status).toMatchObject({ id: run.id, flow: 'client_add', state: 'succeeded', params: { a: 2, b: 1 } });
      expect(status.endedAt).not.toBeNull();
    });

    it('refuses bad params before creating anything', async () => {
      await expect(baton.start('client_add', { a: 'x' })).rejects.toMatchObject({ code: 'RUN_PARAM_INVALID' });
      await expect(baton.start('client_add', { a: 1, nope: 2 })).rejects.toBeInstanceOf(BatonError);
      await expect(baton.start('no_such_flow')).rejects.toMatchObject({ code: 'FLOW_NOT_FOUND' });
      expect(await baton.list()).toEqual([]);
    });

    it('rejects result() with RUN_FAILED when the run fails, and times out a wait with no worker', async () => {
      const stuck = await baton.start(add, { a: 1 });
      await expect(stuck.result({ timeoutMs: 150 })).rejects.toMatchObject({ code: 'RUN_WAIT_TIMEOUT' });
      baton.startWorker();
      const run = await baton.start(failing);
      const error = await run.result(WAIT).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BatonError);
      expect(error).toMatchObject({ code: 'RUN_FAILED', details: { runId: run.id, state: 'failed' } });
      expect((error as BatonError).message).toContain('boom on purpose');
      expect(await stuck.result(WAIT)).toEqual({ sum: 2, twice: { twice: 4 } });
    });

    it('cancels a queued run and a waiting run', async () => {
      const queued = await baton.start(add, { a: 1 });
      expect((await queued.cancel()).state).toBe('cancelled');
      await expect(queued.result(WAIT)).rejects.toMatchObject({ code: 'RUN_FAILED', details: { state: 'cancelled' } });
      baton.startWorker();
      const waiting = await baton.start(gated, { order: 'o-1' });
      await waitForTask(baton, waiting.id, 'paid', 'waiting');
      // The worker of this client owns the run: the cancel is a request it answers.
      const after = await waiting.cancel({ reason: 'customer left' });
      expect(after.state).toBe('cancelled');
    });

    it('starts many runs in one transaction, honouring dedupe keys', async () => {
      const first = await baton.start(add, { a: 1 }, { dedupeKey: 'order-1' });
      const handles = await baton.startMany([
        { flow: add, params: { a: 10 }, dedupeKey: 'order-1' },
        { flow: 'client_add', params: { a: 20 }, dedupeKey: 'order-2' },
        { flow: add, params: { a: 30 }, dedupeKey: 'order-2' },
        { flow: add, params: { a: 40 } },
      ]);
      expect(handles.map((h) => h.created)).toEqual([false, true, false, true]);
      expect(handles[0]?.id).toBe(first.id);
      expect(handles[2]?.id).toBe(handles[1]?.id);
      expect(await baton.list()).toHaveLength(3);
      // One bad input creates none of the batch.
      await expect(
        baton.startMany([
          { flow: add, params: { a: 50 }, dedupeKey: 'order-3' },
          { flow: add, params: { a: 'not a number' } },
        ]),
      ).rejects.toMatchObject({ code: 'RUN_PARAM_INVALID', details: { index: 1 } });
      expect(await baton.list()).toHaveLength(3);
      baton.startWorker();
      const results = await Promise.all(handles.map((h) => h.result(WAIT)));
      expect(results.map((r) => r.sum)).toEqual([2, 21, 21, 41]);
    });

    it('startMany keeps the params size limit, as start does', async () => {
      const big = 'x'.repeat(70 * 1024);
      const blob = defineFlow({ name: 'client_blob', params: { text: { type: 'string' } } });
      blob.task('len', async ({ params }) => params.text.length);
      await expect(baton.start(blob, { text: big })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      await expect(
        baton.startMany([
          { flow: blob, params: { text: 'small' } },
          { flow: blob, params: { text: big } },
        ]),
      ).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect(await baton.list()).toEqual([]);
    });

    it('watches the events of a run until it ends', async () => {
      baton.startWorker();
      const run = await baton.start(add, { a: 4 });
      const seen: RunEventRecord[] = [];
      for await (const e of baton.watch(run.id)) seen.push(e);
      const types = seen.map((e) => e.event.type);
      expect(types[0]).toBe('run_created');
      expect(types).toContain('task_succeeded');
      expect(types.at(-1)).toBe('run_succeeded');
      expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1));
      expect((await run.status()).state).toBe('succeeded');
    });

    it('signals and approves a waiting run, whose worker then finishes it', async () => {
      baton.startWorker();
      const run = await baton.start(gated, { order: 'o-7' }, { output: 'ship' });
      await waitForTask(baton, run.id, 'paid', 'waiting');
      await expect(run.approve('ship_ok', { by: 'bob' })).rejects.toMatchObject({ code: 'APPROVER_NOT_ALLOWED' });
      const other = await run.signal('payment', { key: 'o-8', data: { amount: 1 } });
      expect(other.woke).toEqual([]);
      const sent = await run.signal('payment', { key: 'o-7', data: { amount: 42 } });
      expect(sent.woke).toEqual(['paid']);
      await waitForTask(baton, run.id, 'ship_ok', 'waiting');
      const decided = await run.approve('ship_ok', { by: 'ana', comment: 'go' });
      expect(decided.taskState).toBe('succeeded');
      expect(await run.result(WAIT)).toEqual({ shipped: { amount: 42 } });
      await expect(run.signal('payment', { key: 'o-7' })).rejects.toMatchObject({ code: 'SIGNAL_INVALID' });
    });

    it('rejects an approval: the run fails', async () => {
      baton.startWorker();
      const run = await baton.start(gated, { order: 'o-9' });
      await run.signal('payment', { key: 'o-9', data: 1 });
      await waitForTask(baton, run.id, 'ship_ok', 'waiting');
      const decided = await baton.reject(run.id, 'ship_ok', { by: 'ana' });
      expect(decided.taskState).toBe('failed');
      await expect(run.result(WAIT)).rejects.toMatchObject({ code: 'RUN_FAILED' });
    });

    it('drains a worker gracefully: the running attempt finishes, nothing new is taken', async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      let started = 0;
      const slow = defineFlow({ name: 'client_slow' });
      slow.task('work', async () => {
        started++;
        await gate;
        return 'done';
      });
      baton.register(slow);
      const worker = baton.startWorker({ concurrency: 1 });
      const first = await baton.start(slow);
      for (let i = 0; i < 300 && started === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(started).toBe(1);
      const draining = worker.drain();
      const second = await baton.start(slow);
      release();
      await draining;
      expect(await first.result(WAIT)).toEqual({ work: 'done' });
      // The drained worker took nothing new: the second run waits for another worker.
      expect((await second.status()).state).toBe('queued');
      expect(started).toBe(1);
      await worker.stop();
      baton.startWorker();
      expect(await second.result(WAIT)).toEqual({ work: 'done' });
    });

    it('pins a code-defined flow by its code: another definition under the name is another version', async () => {
      baton.startWorker();
      const v1 = defineFlow({ name: 'client_versioned' });
      v1.task('t', async () => 1);
      const one = await baton.start(v1);
      expect(await one.result(WAIT)).toEqual({ t: 1 });
      const v2 = defineFlow({ name: 'client_versioned' });
      v2.task('t', async () => 2);
      baton.register(v2);
      const two = await baton.start('client_versioned');
      expect(await two.result(WAIT)).toEqual({ t: 2 });
      const [a, b] = [await one.status(), await two.status()];
      expect(a.version).not.toBe(b.version);
    });
  });
}

/** Waits (bounded) until a task run of the run is in a state. */
async function waitForTask(baton: BatonClient, runId: string, task: string, state: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const tasks = await baton.tasks(runId);
    if (tasks.find((t) => t.id === task)?.state === state) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${task} of run ${runId} did not become ${state}`);
}
