/**
 * Statements that lock many `runs` (or `task_queue`) rows lock them in one order, so that a
 * scheduler's lease renewal, its group commit, its harvest and the workers' claims and
 * completions, running at once on many runs, never deadlock. A deadlock would cost the
 * victim a second (the server's deadlock_timeout) and fail its call.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { CommitEntry, Lease } from '../../src/store/store.js';
import { createTestDatabase } from './pg-helpers.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const RUNS = 800;
const ROUNDS = 4;

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** Deadlocks the server counted in this database, once no other session of it is left to report some. */
async function deadlocks(url: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const rows = await query<{ n: string }>(
      url,
      'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    if (Number(rows[0]?.n) === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // A session's counters reach the shared statistics as it exits, a moment after it is gone.
  await new Promise((r) => setTimeout(r, 300));
  const rows = await query<{ deadlocks: string }>(
    url,
    'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]?.deadlocks);
}

/** Run ids in an order of creation apart from their sorted order, as a busy server makes them. */
function shuffledIds(n: number): string[] {
  const ids = Array.from({ length: n }, (_, i) => `run${String(i).padStart(5, '0')}`);
  let seed = 12345;
  for (let i = ids.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [ids[i], ids[j]] = [ids[j] as string, ids[i] as string];
  }
  return ids;
}

describe('postgres lock order', () => {
  it('renews leases and commits on many runs at once without a deadlock', async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const store = await PostgresStore.open({ url: db.url, poolSize: 4 });
    cleanups.push(() => store.close());
    const flow = { flow: 'f', version: 'v', spec: '{}', sourcePath: '/f', createdAt: 0 };
    const ids = shuffledIds(RUNS);
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(
        ids.slice(i, i + 100).map((id) => store.createRun({ id, flow, params: {}, taskIds: ['t'], createdAt: 0 })),
      );
    }
    const leases: Lease[] = [];
    for (let i = 0; i < 100 && leases.length < RUNS; i++) {
      leases.push(...(await store.claimRuns({ owner: 'S', leaseMs: 60_000, limit: 500 })));
    }
    expect(leases).toHaveLength(RUNS);
    const before = await deadlocks(db.url);

    const failures: unknown[] = [];
    const renewals = (async () => {
      for (let round = 0; round < ROUNDS * 3; round++) {
        // Every order but the sorted one: as the engine holds them, and reversed.
        const order = round % 2 === 0 ? leases : [...leases].reverse();
        const lost = await store.renewLeases(order, 60_000).catch((e: unknown) => failures.push(e));
        if (Array.isArray(lost)) expect(lost).toEqual([]);
      }
    })();
    const commits = (async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const entries: CommitEntry[] = (round % 2 === 0 ? leases : [...leases].reverse()).map((lease) => ({
          lease,
          events: [{ type: 'task_started', at: round, task: 't', attempt: round + 1 }],
          tasks: [
            {
              index: 0,
              taskId: 't',
              state: 'running',
              attempts: round + 1,
              startedAt: round,
              endedAt: null,
              skipReason: null,
              output: null,
              error: null,
            },
          ],
          timers: [],
          logs: [],
          dispatches: [{ task: 0, taskId: 't', attempt: round + 1, labels: [], payload: {} }],
        }));
        const result = await store.commit(entries).catch((e: unknown) => failures.push(e));
        if (result && typeof result === 'object') expect(result.fenced).toEqual([]);
      }
    })();
    const claims = (async () => {
      // Workers claim and complete the attempts the commits queue, meanwhile.
      for (let round = 0; round < ROUNDS * 4; round++) {
        const claimed = await store.claimTasks({ worker: 'W', labels: [], limit: 400, leaseMs: 60_000 });
        await store
          .completeTasks(claimed.map((c) => ({ id: c.id, token: c.token, status: 'succeeded', output: null })))
          .catch((e: unknown) => failures.push(e));
      }
    })();
    const harvests = (async () => {
      for (let round = 0; round < ROUNDS * 2; round++) {
        await store.harvestTasks(ids, 5000).catch((e: unknown) => failures.push(e));
      }
    })();
    await Promise.all([renewals, commits, claims, harvests]);

    expect(failures).toEqual([]);
    await store.close();
    expect(await deadlocks(db.url)).toBe(before);
  }, 180_000);
});
