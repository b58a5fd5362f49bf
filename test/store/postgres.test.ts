import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { Store } from '../../src/store/store.js';
import { PORT_CONFORMANCE } from './conformance/index.js';
import type { StoreFactory } from './conformance/index.js';
import { createTestDatabase } from './pg-helpers.js';

const databases = new Map<Store, { url: string; drop: () => Promise<void> }>();

const postgres: StoreFactory = {
  name: 'postgres',
  async open() {
    const db = await createTestDatabase();
    const store = await PostgresStore.open({ url: db.url, poolSize: 4 });
    databases.set(store, db);
    return store;
  },
  async destroy(store) {
    await store.close();
    await databases.get(store)?.drop();
  },
  // Another store object with its own pool on the same database: its claims race on the
  // server with those of every other store object.
  async connect(store) {
    return PostgresStore.open({ url: databases.get(store)?.url as string, poolSize: 2 });
  },
  async timers(store, runId) {
    const client = new pg.Client({ connectionString: databases.get(store)?.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ task: number; due_at: string }>(
        'SELECT task_idx AS task, due_at FROM timers WHERE run_id = $1 ORDER BY task_idx',
        [runId],
      );
      return rows.map((r) => ({ task: r.task, dueAt: Number(r.due_at) }));
    } finally {
      await client.end();
    }
  },
};

for (const conformance of PORT_CONFORMANCE) conformance(postgres);

describe('postgres store specifics', () => {
  it('migrates once when two processes start at the same time', async () => {
    const db = await createTestDatabase();
    try {
      const [a, b] = await Promise.all([PostgresStore.open({ url: db.url }), PostgresStore.open({ url: db.url })]);
      expect(await a.now()).toBeGreaterThan(0);
      await a.close();
      await b.close();
    } finally {
      await db.drop();
    }
  });

  it('turns an unreachable server into STORE_UNAVAILABLE', async () => {
    await expect(PostgresStore.open({ url: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
  });

  it('wakes a subscriber when work is queued', async () => {
    const db = await createTestDatabase();
    const store = await PostgresStore.open({ url: db.url });
    try {
      let woke = 0;
      const off = store.subscribe('tasks', () => woke++);
      await new Promise((r) => setTimeout(r, 200));
      const before = woke;
      const { run } = await store.createRun({
        id: 'r1',
        flow: { flow: 'f', version: 'v', spec: '{}', sourcePath: '/f', createdAt: 0 },
        params: {},
        taskIds: ['a'],
        createdAt: 0,
      });
      const lease = await store.claimRun(run.id, { owner: 'S', leaseMs: 10_000 });
      await store.commit([
        {
          lease: lease as NonNullable<typeof lease>,
          events: [],
          tasks: [],
          timers: [],
          logs: [],
          dispatches: [{ task: 0, taskId: 'a', attempt: 1, labels: [], payload: {} }],
        },
      ]);
      const deadline = Date.now() + 5000;
      while (woke === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(woke).toBeGreaterThan(before);
      off();
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
