/**
 * Tests of the orders flow with Baton's testing kit: each test starts a run on a
 * temporary store and a virtual clock, lets it settle, and asserts task states, attempts
 * and outputs. Retry backoff takes no real time.
 * Run them from the repository root: npx vitest run examples/testing
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testFlow } from 'baton-orchestrator/testing';
import orders from '../flows/orders.js';

type Run = Awaited<ReturnType<typeof testFlow>>;
const runs: Run[] = [];

/** Starts a run of the orders flow; afterEach closes it (and removes its store). */
async function start(params: Record<string, unknown> = {}): Promise<Run> {
  const run = await testFlow(orders, { params });
  runs.push(run);
  return run;
}

afterEach(async () => {
  for (const run of runs.splice(0)) await run.close();
});

describe('orders', () => {
  it('map: prices every line in its own task run, and hands the list on in order', async () => {
    const run = await start({
      lines: [
        { sku: 'A-1', qty: 2 },
        { sku: 'B-2', qty: 1 },
        { sku: 'C-3', qty: 4 },
      ],
    });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('price[2]')).toMatchObject({ state: 'succeeded', output: { sku: 'C-3', qty: 4, amount: 29 } });
    expect(run.task('price').output).toEqual([
      { sku: 'A-1', qty: 2, amount: 25 },
      { sku: 'B-2', qty: 1, amount: 40 },
      { sku: 'C-3', qty: 4, amount: 29 },
    ]);
    expect(run.task('total').output).toBe(94);
  });

  it('map: an item that fails fails the map with MAP_ITEM_FAILED, and what follows is skipped', async () => {
    const run = await start({
      lines: [
        { sku: 'A-1', qty: 1 },
        { sku: 'Z-9', qty: 1 },
      ],
    });
    expect(await run.settle()).toBe('failed');
    // A validation error is not retried, although the map's policy allows 3 attempts.
    expect(run.task('price[1]')).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'UNKNOWN_SKU' } });
    expect(run.task('price').error).toMatchObject({ code: 'MAP_ITEM_FAILED' });
    expect(run.task('total')).toMatchObject({
      state: 'skipped',
      skipReason: expect.stringContaining('upstream failed'),
    });
  });

  it('retries: a transient error is retried after its backoff, on the virtual clock', async () => {
    const run = await start({ flaky_pricing: true });
    const before = run.kit.clock.now();
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('price[0]').attempts).toBe(2);
    expect(run.task('price[1]').attempts).toBe(2);
    // 30 s of backoff went by in virtual time, none in real time.
    expect(run.kit.clock.now() - before).toBeGreaterThanOrEqual(30_000);
    const retries = (await run.events()).filter((e) => e.type === 'retry_scheduled');
    expect(retries.map((e) => (e.type === 'retry_scheduled' ? e.delayMs : 0))).toEqual([30_000, 30_000]);
  });

  it('choice: a small order takes the standard branch; the join runs after it', async () => {
    const run = await start();
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('route').output).toEqual({ selected: ['standard'] });
    expect(run.task('express')).toMatchObject({
      state: 'skipped',
      skipReason: 'branch not taken: route chose standard',
    });
    expect(run.task('shipping').output).toEqual({ carrier: 'post', days: 3 });
  });

  it('choice: a large order takes the express branch', async () => {
    const run = await start({ lines: [{ sku: 'D-4', qty: 2 }] });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('standard').state).toBe('skipped');
    expect(run.task('shipping').output).toEqual({ carrier: 'courier', days: 1 });
  });

  it('on_failure: the handler gets the error, and recover makes its output the task output', async () => {
    const run = await start({ printer_online: false });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('label.on_failure')).toMatchObject({ state: 'succeeded' });
    expect(run.task('label')).toMatchObject({
      state: 'succeeded',
      output: { printed: false, handwritten: true, reason: 'PRINTER_OFFLINE' },
    });
  });

  it('finally: release_stock runs last, after a success and after a failure', async () => {
    const ok = await start();
    expect(await ok.settle()).toBe('succeeded');
    const failed = await start({ lines: [{ sku: 'Z-9', qty: 1 }] });
    expect(await failed.settle()).toBe('failed');
    for (const run of [ok, failed]) {
      expect(run.task('release_stock')).toMatchObject({ state: 'succeeded', output: { released: 'o-1' } });
      const started = (await run.events()).flatMap((e) => (e.type === 'task_started' ? [e.task] : []));
      expect(started.at(-1)).toBe('release_stock');
    }
  });
});
