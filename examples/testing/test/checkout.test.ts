/**
 * Tests of the checkout flow: a wait for an event, an approval and a sleep. `settle`
 * stops when the run waits for something only the test can send (a signal, a decision);
 * sleeps and timeouts pass on the virtual clock, at once.
 * Run them from the repository root: npx vitest run examples/testing
 */
import { afterEach, describe, expect, it } from 'vitest';
import { testFlow } from 'baton-orchestrator/testing';
import checkout from '../flows/checkout.js';

type Run = Awaited<ReturnType<typeof testFlow>>;
const runs: Run[] = [];

async function start(orderId = 'o-7'): Promise<Run> {
  const run = await testFlow(checkout, { params: { order_id: orderId }, startAt: '2030-03-01T09:00:00Z' });
  runs.push(run);
  return run;
}

afterEach(async () => {
  for (const run of runs.splice(0)) await run.close();
});

/** Pays the order and gets the run to the approval. */
async function paid(run: Run): Promise<void> {
  expect(await run.settle()).toBe('waiting');
  await run.signal('payment.received', { amount: 80 }, { key: 'o-7', by: 'billing' });
  expect(await run.settle()).toBe('waiting');
  expect(run.task('review').state).toBe('waiting');
}

describe('checkout', () => {
  it('wait_for_event: only the payment for this order wakes the task; its data is the output', async () => {
    const run = await start();
    expect(await run.settle()).toBe('waiting');
    expect(run.task('payment')).toMatchObject({
      state: 'waiting',
      wait: { kind: 'event', event: 'payment.received', key: 'o-7' },
    });

    await run.signal('payment.received', { amount: 5 }, { key: 'o-8' }); // another order's
    expect(run.task('payment').state).toBe('waiting');

    await run.signal('payment.received', { amount: 80 }, { key: 'o-7' });
    expect(run.task('payment')).toMatchObject({ state: 'succeeded', output: { amount: 80 } });
  });

  it('wait_for_event: nobody pays within 2 hours, the wait fails with WAIT_TIMEOUT', async () => {
    const run = await start();
    expect(await run.settle({ fireWaitTimeouts: true })).toBe('failed');
    expect(run.task('payment').error).toMatchObject({ code: 'WAIT_TIMEOUT' });
    expect(run.task('ship').state).toBe('skipped');
    expect(run.task('notify').state).toBe('succeeded'); // finally
    expect(run.kit.clock.now()).toBe(Date.parse('2030-03-01T11:00:00Z'));
  });

  it('approval: dana approves; the decision is the output', async () => {
    const run = await start();
    await paid(run);
    expect(run.task('review').wait).toMatchObject({ kind: 'approval', approvers: ['dana'] });
    await run.approve('review', { by: 'dana', comment: 'looks fine' });
    expect(run.task('review')).toMatchObject({
      state: 'succeeded',
      output: { approved: true, by: 'dana', comment: 'looks fine' },
    });
    expect(await run.settle()).toBe('succeeded');
    expect(run.task('ship').output).toEqual({ order: 'o-7', paid: 80 });
  });

  it('approval: a rejection fails the task with APPROVAL_REJECTED, and it is not retried', async () => {
    const run = await start();
    await paid(run);
    await run.reject('review', { by: 'dana', comment: 'address looks wrong' });
    expect(await run.settle()).toBe('failed');
    expect(run.task('review')).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'APPROVAL_REJECTED', message: 'dana rejected review: address looks wrong' },
    });
    expect(run.task('cool_off').state).toBe('skipped');
  });

  it('approval: nobody decides within a day, the task fails with APPROVAL_TIMEOUT', async () => {
    const run = await start();
    await paid(run);
    expect(await run.settle({ fireWaitTimeouts: true })).toBe('failed');
    expect(run.task('review').error).toMatchObject({ code: 'APPROVAL_TIMEOUT' });
  });

  it('sleep: the run waits 15 minutes after the approval, in virtual time', async () => {
    const run = await start();
    await paid(run);
    await run.approve('review', { by: 'dana' });
    const approvedAt = run.kit.clock.now();

    await run.advance('10m');
    expect(run.task('cool_off')).toMatchObject({ state: 'waiting', wait: { kind: 'timer' } });
    expect(run.task('ship').state).toBe('pending');

    await run.advance('5m');
    expect(run.task('cool_off')).toMatchObject({ state: 'succeeded', output: { until: approvedAt + 15 * 60_000 } });
    expect(await run.settle()).toBe('succeeded');
  });

  it('finally: notify runs when the run is cancelled while it waits', async () => {
    const run = await start();
    expect(await run.settle()).toBe('waiting');
    await run.cancel();
    expect(await run.settle()).toBe('cancelled');
    expect(run.task('payment').state).toBe('cancelled');
    expect(run.task('notify')).toMatchObject({ state: 'succeeded', output: 'checkout of o-7 ended' });
  });
});
