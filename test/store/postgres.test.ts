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

  it('lists data objects bytewise in a database whose collation sorts otherwise', async () => {
    const db = await createTestDatabase(`TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    const store = await PostgresStore.open({ url: db.url, poolSize: 2 });
    try {
      const paths = [
        'data://raw/a-x',
        'data://raw/B',
        'data://raw/a/1',
        'data://raw/ab',
        'data://raw/A/1',
        'data://raw/a/2',
      ];
      await store.recordDataAccesses(paths.map((path, i) => ({ op: 'write', path, size: 1, etag: null, at: i })));
      const bytewise = [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      // The database's own order differs, so the store's order is its own doing.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ p: string }>('SELECT unnest($1::text[]) AS p ORDER BY p', [paths]);
        expect(rows.map((r) => r.p)).not.toEqual(bytewise);
      } finally {
        await client.end();
      }
      expect((await store.listDataObjects({ limit: 10 })).map((o) => o.path)).toEqual(bytewise);
      const firstPage = await store.listDataObjects({ limit: 3 });
      const rest = await store.listDataObjects({ limit: 10, afterPath: firstPage.at(-1)?.path as string });
      expect([...firstPage, ...rest].map((o) => o.path)).toEqual(bytewise);
      expect((await store.listDataObjects({ limit: 10, prefix: 'data://raw/a/' })).map((o) => o.path)).toEqual([
        'data://raw/a/1',
        'data://raw/a/2',
      ]);
      expect((await store.listDataObjects({ limit: 10, prefix: 'data://raw/A' })).map((o) => o.path)).toEqual([
        'data://raw/A/1',
      ]);
    } finally {
      await store.close();
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
