/**
 * Parking a run on PostgreSQL while a request for it, or the end of a child run it waits
 * for, is being committed by another session. Whichever commits first, the run must end up
 * due (its wake-up brought forward to now): a lost wake-up would leave it parked until its
 * next timer, or for ever when it has none. Each case holds the other session's transaction
 * open across the park, the order in which the wake-up used to be lost.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { Lease } from '../../src/store/store.js';
import { createTestDatabase } from './pg-helpers.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const flow = { flow: 'f', version: 'v', spec: '{}', sourcePath: '/f', createdAt: 0 };

async function setup(): Promise<{ store: PostgresStore; other: pg.Client; parent: Lease; child: string }> {
  const db = await createTestDatabase();
  cleanups.push(db.drop);
  const store = await PostgresStore.open({ url: db.url, poolSize: 4 });
  cleanups.push(() => store.close());
  const other = new pg.Client({ connectionString: db.url });
  await other.connect();
  cleanups.push(() => other.end());
  await store.createRun({ id: 'parent', flow, params: {}, taskIds: ['sub'], createdAt: 0 });
  const parent = (await store.claimRun('parent', { owner: 'P', leaseMs: 60_000 })) as Lease;
  await store.createRun({
    id: 'child',
    flow,
    params: {},
    taskIds: ['t'],
    createdAt: 0,
    parent: { runId: 'parent', task: 'sub' },
  });
  return { store, other, parent, child: 'child' };
}

/** The parent's park state, and whether its wake-up is due now (on the database clock). */
async function parkState(other: pg.Client): Promise<{ parked: boolean; due: boolean }> {
  const { rows } = await other.query<{ parked: boolean; due: boolean }>(
    `SELECT parked, wake_at IS NOT NULL AND wake_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS due
       FROM runs WHERE id = 'parent'`,
  );
  return rows[0] as { parked: boolean; due: boolean };
}

/** Parks `parent` while `other` holds `statement` uncommitted; commits it once the park has had time to run. */
async function parkDuring(
  store: PostgresStore,
  other: pg.Client,
  parent: Lease,
  awaiting: string[],
  statement: string,
): Promise<boolean> {
  await other.query('BEGIN');
  await other.query(statement);
  const parking = store.parkRun(parent, { wakeAt: null, awaiting });
  // Either the park waits for the other transaction (it must) or it is done by now.
  const first = await Promise.race([parking.then(() => 'park'), new Promise((r) => setTimeout(() => r('wait'), 300))]);
  await other.query('COMMIT');
  expect(await parking).toBe(true);
  return first === 'wait';
}

describe('parking on postgres', () => {
  it('a request committed while the run is being parked makes it due', async () => {
    const { store, other, parent } = await setup();
    const waited = await parkDuring(
      store,
      other,
      parent,
      [],
      `INSERT INTO requests (run_id, kind, payload, created_at) VALUES ('parent', 'signal', '{}', 0)`,
    );
    expect(waited).toBe(true);
    expect(await parkState(other)).toEqual({ parked: true, due: true });
    expect((await store.claimRuns({ owner: 'Q', leaseMs: 60_000, limit: 5 })).map((l) => l.runId)).toContain('parent');
  });

  it('a child run that ends while its parent is being parked makes the parent due', async () => {
    const { store, other, parent, child } = await setup();
    const waited = await parkDuring(
      store,
      other,
      parent,
      [child],
      `UPDATE runs SET state = 'succeeded', ended_at = 1 WHERE id = '${child}'`,
    );
    expect(waited).toBe(true);
    expect(await parkState(other)).toEqual({ parked: true, due: true });
    expect((await store.claimRuns({ owner: 'Q', leaseMs: 60_000, limit: 5 })).map((l) => l.runId)).toEqual(['parent']);
  });

  it('a request recorded after the run is parked still makes it due', async () => {
    const { store, other, parent } = await setup();
    expect(await store.parkRun(parent, { wakeAt: null, awaiting: [] })).toBe(true);
    expect(await parkState(other)).toEqual({ parked: true, due: false });
    await store.addRequest('parent', 'signal', {});
    expect(await parkState(other)).toEqual({ parked: true, due: true });
  });
});
