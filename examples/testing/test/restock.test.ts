/**
 * Tests of the restock flow: a quorum of two suppliers out of three (k_of_n), and a race
 * between two carrier quotes decided by a score function.
 * Run them from the repository root: npx vitest run examples/testing
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTestKit, type TestKit } from 'baton-orchestrator/testing';
import restock from '../flows/restock.js';

// One kit (one temporary store, one virtual clock) for the whole file; each test starts
// its own run in it.
let kit: TestKit | undefined;

async function start(params: Record<string, unknown> = {}) {
  kit ??= await createTestKit();
  return kit.run(restock, { params });
}

afterEach(async () => {
  await kit?.close();
  kit = undefined;
});

describe('restock', () => {
  it('k_of_n: reserves once two suppliers confirm, and cancels the slow one as not needed', async () => {
    const run = await start({ slow: ['west'] });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('reserve').output).toEqual({ confirmed_by: ['confirm_east', 'confirm_north'] });
    expect(run.task('confirm_west')).toMatchObject({
      state: 'cancelled',
      skipReason: 'not needed: reserve reached its quorum',
    });
  });

  it('k_of_n: one supplier out of stock still leaves a quorum; two do not', async () => {
    const one = await start({ slow: [], out_of_stock: ['north'] });
    // The quorum is met, but the failed supplier still fails the run.
    expect(await one.settle()).toBe('failed');
    expect(one.task('reserve').state).toBe('succeeded');
    expect(one.task('confirm_north').error).toMatchObject({ code: 'OUT_OF_STOCK' });

    const two = await start({ slow: [], out_of_stock: ['north', 'east'] });
    expect(await two.settle()).toBe('failed');
    expect(two.task('reserve')).toMatchObject({
      state: 'skipped',
      skipReason: 'quorum can no longer be reached: confirm_north, confirm_east did not succeed',
    });
  });

  it('race: the score function picks the cheapest quote; the loser is recorded', async () => {
    const run = await start();
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('best_quote').output).toMatchObject({
      winner: 'quote_ups',
      output: { carrier: 'ups', price: 16 },
      losers: [{ task: 'quote_dhl', state: 'succeeded' }],
    });
  });

  it('race: a branch that fails loses without failing the run', async () => {
    const run = await start({ carriers_down: ['ups'] });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('quote_ups').state).toBe('failed');
    expect(run.task('best_quote').output).toMatchObject({ winner: 'quote_dhl' });
  });

  it('race: no branch succeeds, the race fails with RACE_NO_WINNER', async () => {
    const run = await start({ carriers_down: ['ups', 'dhl'] });
    expect(await run.settle()).toBe('failed');
    expect(run.task('best_quote').error).toMatchObject({ code: 'RACE_NO_WINNER' });
  });
});
