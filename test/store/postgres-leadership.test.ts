/**
 * Leadership on PostgreSQL across processes: a holder's lease is bounded by the life of its
 * process's session, so a standby takes over from a killed leader at its next try rather
 * than after the lease (docs/deploy.md, "Schedulers"). Two stores on one database stand
 * for two processes; closing one ends its session as a kill would.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { createTestDatabase } from './pg-helpers.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function twoProcesses(): Promise<{ url: string; a: PostgresStore; b: PostgresStore }> {
  const db = await createTestDatabase();
  cleanups.push(db.drop);
  const a = await PostgresStore.open({ url: db.url, poolSize: 2 });
  cleanups.push(() => a.close());
  const b = await PostgresStore.open({ url: db.url, poolSize: 2 });
  cleanups.push(() => b.close());
  return { url: db.url, a, b };
}

describe('postgres leadership', () => {
  it('takes the leadership and the runs of a holder whose session ended, long before its leases lapse', async () => {
    const { a, b } = await twoProcesses();
    const { run } = await a.createRun({
      id: 'r1',
      flow: { flow: 'f', version: 'v', spec: '{}', sourcePath: '/f', createdAt: 0 },
      params: {},
      taskIds: ['t'],
      createdAt: 0,
    });
    const led = await a.acquireLeadership('scheduler', 'host/1/a', 60_000);
    expect(led).toMatchObject({ holder: 'host/1/a' });
    expect(await a.claimRun(run.id, { owner: 'host/1/a', leaseMs: 60_000 })).not.toBeNull();
    // Alive: its lease holds.
    expect(await b.acquireLeadership('scheduler', 'host/2/b', 60_000)).toBeNull();
    await a.close();
    // The server releases the session's locks as its backend exits, a moment after the close.
    await expect
      .poll(() => b.acquireLeadership('scheduler', 'host/2/b', 60_000), { timeout: 5000, interval: 50 })
      .not.toBeNull();
    expect(await b.acquireLeadership('scheduler', 'host/2/b', 60_000)).toEqual({
      name: 'scheduler',
      holder: 'host/2/b',
      epoch: (led?.epoch ?? 0) + 1,
    });
    expect((await b.claimRuns({ owner: 'host/2/b', leaseMs: 60_000, limit: 10 })).map((l) => l.runId)).toEqual([
      run.id,
    ]);
  });

  it('holds the session of a live holder again once its connection is back', async () => {
    const { url, a, b } = await twoProcesses();
    const led = await a.acquireLeadership('scheduler', 'host/1/a', 60_000);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    cleanups.push(() => admin.end());
    const sessionHeld = async () =>
      (
        await admin.query(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND objid = hashtext('host/1/a')::oid`,
        )
      ).rows.map((r: { pid: number }) => r.pid);
    const [before] = await sessionHeld();
    // The connection that holds the holder's session ends (the server restarted, say) ...
    await admin.query('SELECT pg_terminate_backend($1)', [before]);
    // ... and comes back by itself, holding the session again: the holder shows alive.
    await expect
      .poll(async () => (await sessionHeld()).filter((pid) => pid !== before), { timeout: 5000 })
      .toHaveLength(1);
    expect(await b.acquireLeadership('scheduler', 'host/2/b', 60_000)).toBeNull();
    expect(await a.acquireLeadership('scheduler', 'host/1/a', 60_000)).toEqual(led);
  });
});
