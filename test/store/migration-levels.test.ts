/**
 * Upgrades from every earlier schema level, on both stores. For each level N below the
 * latest, a database is grown as a real one would be: migration 1, then the rows Baton
 * wrote at level 1 (test/fixtures/schema-levels/level-1.sql), migration 2, the rows of
 * level 2, … up to N. The current store then opens it (migrating to the latest level), and
 * everything must still be readable, every history must fold, and the runs in it must
 * carry on: a run whose owner died is claimed and finished, a retry timer fires, a queued
 * run starts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { FlowPlan, RunEvent, RunInput, RunState } from '../../src/core/run-machine.js';
import { compilePlan, decide, foldRun } from '../../src/core/run-machine.js';
import { HISTORY_FORMAT, readPinnedSpec } from '../../src/core/run-history.js';
import { runPatch, taskPatch } from '../../src/engine/pending-commit.js';
import type { Migration } from '../../src/store/sqlite/migrations.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Lease, Store } from '../../src/store/store.js';
import { createTestDatabase } from './pg-helpers.js';

const LEVELS_DIR = join(import.meta.dirname, '..', 'fixtures', 'schema-levels');

/** The levels of a dialect's migrations: the latest, and every one before it. */
function levels(migrations: readonly Migration[]): { latest: number; earlier: number[] } {
  const latest = (migrations.at(-1) as Migration).version;
  return { latest, earlier: migrations.map((m) => m.version).filter((v) => v < latest) };
}

/** The rows Baton wrote at a schema level (none if the level added no table or column worth a row). */
function levelRows(level: number): string | null {
  const file = join(LEVELS_DIR, `level-${level}.sql`);
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}

type Row = Record<string, unknown>;

/** A database of one dialect at an earlier level. */
interface OldDatabase {
  /** The latest level of its dialect: where opening it with the current store takes it. */
  readonly latest: number;
  /** Opens it with the current store, which migrates it. */
  open(): Promise<Store>;
  /** A plain query, beside the store. */
  query(sql: string): Promise<Row[]>;
  cleanup(): Promise<void>;
}

const SCHEMA_MIGRATIONS_DDL =
  'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)';

interface Dialect {
  readonly migrations: readonly Migration[];
  create(level: number): Promise<OldDatabase>;
}

const dialects: Record<string, Dialect> = {
  sqlite: { migrations: SQLITE_MIGRATIONS, create: createSqlite },
  postgres: { migrations: POSTGRES_MIGRATIONS, create: createPostgres },
};

async function createSqlite(level: number): Promise<OldDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-levels-'));
  const path = join(dir, 'baton.db');
  const db = new Database(path);
  db.exec(SCHEMA_MIGRATIONS_DDL);
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= level)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      m.version,
      m.name,
      1700000000000,
    );
    const rows = levelRows(m.version);
    if (rows) db.exec(rows);
  }
  db.close();
  return {
    latest: levels(SQLITE_MIGRATIONS).latest,
    open: async () => new SqliteStore({ path }),
    async query(sql) {
      const raw = new Database(path, { readonly: true });
      try {
        return raw.prepare(sql).all() as Row[];
      } finally {
        raw.close();
      }
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createPostgres(level: number): Promise<OldDatabase> {
  const database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(SCHEMA_MIGRATIONS_DDL);
    for (const m of POSTGRES_MIGRATIONS.filter((x) => x.version <= level)) {
      await client.query('BEGIN');
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        1700000000000,
      ]);
      const rows = levelRows(m.version);
      if (rows) await client.query(rows);
      await client.query('COMMIT');
    }
  } finally {
    await client.end();
  }
  return {
    latest: levels(POSTGRES_MIGRATIONS).latest,
    open: () => PostgresStore.open({ url: database.url, poolSize: 2 }),
    async query(sql) {
      const c = new pg.Client({ connectionString: database.url });
      await c.connect();
      try {
        return (await c.query(sql)).rows as Row[];
      } finally {
        await c.end();
      }
    },
    cleanup: () => database.drop(),
  };
}

/** The pinned definition of flow legacy, read as the engine reads it. */
async function legacyPlan(store: Store): Promise<FlowPlan> {
  const record = await store.getFlowVersion('legacy', 'v1');
  if (!record) throw new Error('flow legacy v1 is gone');
  return compilePlan(readPinnedSpec(record.spec, 'flow legacy version v1'));
}

async function fold(store: Store, plan: FlowPlan, runId: string): Promise<{ state: RunState; events: RunEvent[] }> {
  const events = (await store.readEvents(runId)).map((e) => e.event);
  return { state: foldRun(runId, plan, events), events };
}

/** Decides inputs one after the other, as an engine would, and commits them in one batch. */
async function carryOn(
  store: Store,
  lease: Lease,
  state: RunState,
  inputs: readonly RunInput[],
  extra: { answered?: number[]; harvested?: string[]; clearTimers?: number[] } = {},
): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  const touched = new Set<number>();
  let now = Math.max(Date.now(), ...state.tasks.map((t) => t.retryAt ?? 0));
  for (const input of inputs) {
    const d = decide(state, input, now++, () => 0);
    events.push(...d.events);
    for (const i of d.touched) touched.add(i);
  }
  const result = await store.commit([
    {
      lease,
      events,
      run: runPatch(state),
      tasks: [...touched].map((i) => taskPatch(state, i)),
      timers: (extra.clearTimers ?? []).map((task) => ({ task, dueAt: null })),
      logs: [],
      ...(extra.answered ? { answered: extra.answered } : {}),
      ...(extra.harvested ? { harvested: extra.harvested } : {}),
    },
  ]);
  expect(result.fenced).toEqual([]);
  return events;
}

/** Everything a database grown up to `level` holds, read and carried on by the current store. */
async function checkUpgraded(store: Store, db: OldDatabase, level: number): Promise<void> {
  const migrated = await db.query('SELECT max(version) AS v FROM schema_migrations');
  expect(Number(migrated[0]?.v)).toBe(db.latest);

  // The pinned definition, as it was written: no format stamp, read as format 1.
  const pinned = await store.getFlowVersion('legacy', 'v1');
  expect(JSON.parse(pinned?.spec ?? '{}')).not.toHaveProperty('v');
  const plan = await legacyPlan(store);
  expect(plan.spec.tasks.map((t) => t.id)).toEqual(['extract', 'transform', 'load']);

  // A finished run: its record, task runs, history and logs.
  const done = await store.getRun('r-done');
  expect(done).toMatchObject({
    state: 'succeeded',
    params: { day: '2023-11-13' },
    dedupeKey: 'legacy:2023-11-13',
    priority: 0,
    parentRunId: null,
    depth: 0,
  });
  expect((await store.getTaskRuns('r-done')).map((t) => [t.taskId, t.state, t.attempts, t.output])).toEqual([
    ['extract', 'succeeded', 1, { rows: 120 }],
    ['transform', 'succeeded', 1, { rows: 118 }],
    ['load', 'succeeded', 1, 'loaded 118'],
  ]);
  const doneHistory = await fold(store, plan, 'r-done');
  expect(doneHistory.events.some((e) => e.v !== undefined)).toBe(false);
  expect(doneHistory.state.state).toBe('succeeded');
  expect(doneHistory.state.tasks.map((t) => [t.state, t.attempt, t.output])).toEqual([
    ['succeeded', 1, { rows: 120 }],
    ['succeeded', 1, { rows: 118 }],
    ['succeeded', 1, 'loaded 118'],
  ]);
  expect((await store.readLogs('r-done', {})).map((l) => [l.taskId, l.stream, l.text])).toEqual([
    ['extract', 'stdout', 'read 120 rows'],
    ['load', 'stderr', 'slow insert'],
  ]);

  // The worker queue, leadership, triggers, backfills and child runs, as far as the level had them.
  const queued = level >= 2 ? await store.claimTasks({ worker: 'w-new', labels: [], limit: 5, leaseMs: 60_000 }) : [];
  if (level >= 2) {
    expect(queued.map((q) => [q.runId, q.taskId, q.attempt, q.flow, q.version])).toEqual([
      ['r-running', 'transform', 1, 'legacy', 'v1'],
    ]);
    expect(queued[0]?.payload).toMatchObject({ upstream: { extract: { rows: 7 } } });
    const leaders = await db.query("SELECT holder FROM leadership WHERE name = 'scheduler'");
    expect(leaders.map((r) => r.holder)).toEqual(['scheduler-on-a-dead-host']);
  }
  const triggers = await store.listTriggers();
  expect(triggers.map((t) => t.id)).toEqual(level >= 3 ? ['legacy/nightly'] : []);
  if (level >= 3) {
    expect(triggers[0]).toMatchObject({ kind: 'cron', paused: false, cursor: { lastFireAt: 1700100000000 } });
    expect(triggers[0]?.spec).toMatchObject({ name: 'nightly', config: { cron: '0 2 * * *' } });
    const firings = await store.listFirings('legacy/nightly', 10);
    expect(firings.map((f) => [f.outcome, f.runId])).toEqual([['created', 'r-queued']]);
    expect(await store.getRun('r-queued')).toMatchObject({ state: 'queued', priority: 5, triggerId: 'legacy/nightly' });
  }
  const backfill = await store.getBackfill('bf-1');
  if (level >= 4) expect(backfill).toMatchObject({ state: 'running', total: 3, nextIndex: 1, rerun: false });
  else expect(backfill).toBeNull();
  if (level >= 5) {
    // Depths written at level 6, or computed by migration 6 for runs made before it.
    expect(await store.getRun('r-child')).toMatchObject({
      parentRunId: 'r-running',
      parentTask: 'transform',
      depth: 1,
    });
    const counts = await db.query("SELECT id, child_runs FROM runs WHERE id IN ('r-running', 'r-child') ORDER BY id");
    expect(counts.map((r) => [r.id, Number(r.child_runs)])).toEqual([
      ['r-child', level >= 6 ? 1 : 0],
      ['r-running', 1],
    ]);
  }
  if (level >= 6) expect(await store.getRun('r-grandchild')).toMatchObject({ parentRunId: 'r-child', depth: 2 });

  // A run whose owner died mid-attempt: claimed by the new store, its pending signal and
  // its attempt's result recorded, its last task run, the run finished.
  const lease = await store.claimRun('r-running', { owner: 'upgraded', leaseMs: 60_000 });
  expect(lease).not.toBeNull();
  const running = await fold(store, plan, 'r-running');
  expect(running.state.tasks.map((t) => t.state)).toEqual(['succeeded', 'running', 'pending']);
  const requests = await store.pendingRequests(['r-running']);
  expect(requests.map((r) => r.kind)).toEqual(['signal']);
  const signal = requests[0]?.payload as Extract<RunInput, { type: 'signal' }>;
  await carryOn(
    store,
    lease as Lease,
    running.state,
    [
      { ...signal, type: 'signal' },
      { type: 'attempt_succeeded', task: 1, attempt: 1, output: { rows: 7 } },
      { type: 'attempt_started', task: 2 },
      { type: 'attempt_succeeded', task: 2, attempt: 1, output: 'loaded 7' },
    ],
    { answered: requests.map((r) => r.id), ...(level >= 2 ? { harvested: queued.map((q) => q.id) } : {}) },
  );
  expect(await store.getRun('r-running')).toMatchObject({ state: 'succeeded' });
  expect(await store.pendingRequests(['r-running'])).toEqual([]);
  const finished = await fold(store, plan, 'r-running');
  expect(finished.state.state).toBe('succeeded');
  expect(finished.state.signals.map((s) => s.id)).toEqual(['sig-2']);
  // The old events as they were; the new ones stamped with the current format.
  expect(finished.events.map((e) => e.v ?? null)).toEqual([
    ...Array<null>(7).fill(null),
    ...Array<number>(finished.events.length - 7).fill(HISTORY_FORMAT),
  ]);
  expect((await store.getTaskRuns('r-running')).map((t) => [t.state, t.output])).toEqual([
    ['succeeded', { rows: 7 }],
    ['succeeded', { rows: 7 }],
    ['succeeded', 'loaded 7'],
  ]);

  // A retry timer written at level 1 fires.
  expect(
    (await db.query("SELECT due_at FROM timers WHERE run_id = 'r-retrying'")).map((r) => Number(r.due_at)),
  ).toEqual([1700000063300]);
  const retryLease = await store.claimRun('r-retrying', { owner: 'upgraded', leaseMs: 60_000 });
  const retrying = await fold(store, plan, 'r-retrying');
  expect(retrying.state.tasks[2]).toMatchObject({ state: 'retrying', attempt: 1, retryAt: 1700000063300 });
  const due = await carryOn(store, retryLease as Lease, retrying.state, [{ type: 'retry_due', task: 2 }], {
    clearTimers: [2],
  });
  expect(due.map((e) => e.type)).toEqual(['tasks_queued']);
  expect(await db.query("SELECT due_at FROM timers WHERE run_id = 'r-retrying'")).toEqual([]);
  expect((await fold(store, plan, 'r-retrying')).state.tasks[2]?.state).toBe('queued');

  // A queued run made before the upgrade is claimed (by priority) and starts.
  const claims = await store.claimRuns({ owner: 'upgraded', leaseMs: 60_000, limit: 10 });
  const expectedQueued = [
    ...(level >= 3 ? ['r-queued'] : []),
    ...(level >= 5 ? ['r-child'] : []),
    ...(level >= 6 ? ['r-grandchild'] : []),
  ];
  expect(claims.map((c) => c.runId)).toEqual(expectedQueued);
  for (const claim of claims) {
    const queuedRun = await fold(store, plan, claim.runId);
    const started = await carryOn(store, claim, queuedRun.state, [{ type: 'start' }]);
    expect(started.map((e) => e.type)).toEqual(['run_started', 'tasks_queued']);
    expect(await store.getRun(claim.runId)).toMatchObject({ state: 'running' });
  }

  // A run created after the upgrade, of the version pinned before it: stamped from its first event.
  const createdAt = Date.now();
  const { run: fresh, created } = await store.createRun({
    id: 'r-after-upgrade',
    flow: pinned as NonNullable<typeof pinned>,
    params: { day: '2023-11-17' },
    taskIds: ['extract', 'transform', 'load'],
    createdAt,
    dedupeKey: null,
    maxActiveRuns: null,
  });
  expect(created).toBe(true);
  expect((await store.readEvents(fresh.id)).map((e) => e.event)).toEqual([
    {
      v: HISTORY_FORMAT,
      type: 'run_created',
      at: createdAt,
      flow: 'legacy',
      version: 'v1',
      params: { day: '2023-11-17' },
    },
  ]);
  expect((await fold(store, plan, fresh.id)).state.state).toBe('queued');

  // Data metadata (migration 12), which no earlier level had: its accesses are recorded.
  await store.recordDataAccesses([
    {
      op: 'write',
      path: 'data://raw/after-upgrade.csv',
      runId: fresh.id,
      taskId: 'extract',
      size: 3,
      etag: null,
      at: createdAt,
    },
  ]);
  expect(await store.listDataObjects({ limit: 10, prefix: 'data://raw/after' })).toMatchObject([
    { path: 'data://raw/after-upgrade.csv', mount: 'raw', key: 'after-upgrade.csv', producerRunId: fresh.id },
  ]);
  expect((await store.dataAccesses({ runId: fresh.id, limit: 10 })).map((a) => a.op)).toEqual(['write']);
  if (level >= 12) {
    // The rows of level 12: an object written and read since, one only read, and their accesses.
    expect(await store.getDataObject('data://raw/legacy/orders.csv')).toMatchObject({
      size: 42,
      schema: { columns: ['id', 'total'] },
      producerRunId: 'r-done',
      producerTaskId: 'extract',
      writtenAt: 1700000100000,
      lastReadAt: 1700000200000,
    });
    expect(await store.getDataObject('data://raw/legacy/prices.json')).toMatchObject({ producerRunId: null });
    expect((await store.dataAccesses({ path: 'data://raw/legacy/orders.csv', limit: 10 })).map((a) => a.op)).toEqual([
      'write',
      'read',
    ]);
  }

  // Assets (migration 13), which no earlier level had: a materialization and its lineage are recorded.
  await store.recordMaterialization({
    assetKey: 'orders_clean',
    version: 'b'.repeat(64),
    runId: fresh.id,
    flow: 'legacy',
    taskId: 'transform',
    attempt: 1,
    at: createdAt,
    location: 'data://raw/after-upgrade.csv',
    size: 3,
    rowCount: 1,
    schema: null,
    inputs: [{ assetKey: 'orders_raw', version: null }],
    checks: [
      { name: 'rows', kind: 'row_count', severity: 'error', passed: true, failingCount: 0, sample: [], message: null },
    ],
  });
  // Level 13 holds an asset of its own, listed beside this one.
  const listed = await store.listAssets({ limit: 10 });
  expect(listed.filter((a) => a.key === 'orders_clean')).toMatchObject([{ key: 'orders_clean', stale: false }]);
  expect(listed.map((a) => a.key)).toEqual(level >= 13 ? ['legacy_orders', 'orders_clean'] : ['orders_clean']);
  expect(await store.upstreamAssets('orders_clean')).toMatchObject([{ key: 'orders_raw', versionRead: null }]);
  if (level >= 13) {
    // The rows of level 13: two versions of an asset, the latest made from another's, checks of each.
    const versions = await store.assetVersions('legacy_orders', { limit: 10 });
    expect(versions.map((v) => [v.attempt, v.version[1], v.rowCount])).toEqual([
      [2, '2', 3],
      [1, '1', 2],
    ]);
    expect(versions[1]?.schema).toEqual([{ name: 'id', type: 'BIGINT' }]);
    expect(await store.getAsset('legacy_orders')).toMatchObject({ latestId: versions[0]?.id, runId: 'r-done' });
    expect(await store.upstreamAssets('legacy_orders')).toMatchObject([
      { key: 'legacy_prices', versionRead: 'd1'.repeat(32), latestVersion: null },
    ]);
    expect(await store.assetChecks(versions[1]?.id as number)).toMatchObject([
      { name: 'ids', passed: false, failingCount: 1, sample: [{ id: null }] },
    ]);
  }

  // The result cache (migration 14), which no earlier level had: an entry is recorded and read back.
  await store.recordResultCache({
    key: 'e'.repeat(64),
    flow: 'legacy',
    taskId: 'transform',
    runId: fresh.id,
    taskRunId: 'transform',
    attempt: 1,
    output: { rows: 3 },
    at: createdAt,
  });
  expect(await store.resultCache('e'.repeat(64))).toMatchObject({ runId: fresh.id, output: { rows: 3 } });
}

describe('schema levels', () => {
  it('has the rows of every earlier level of both stores', () => {
    // A new migration makes the level before it an earlier level: add its rows then.
    const earlier = new Set([...levels(SQLITE_MIGRATIONS).earlier, ...levels(POSTGRES_MIGRATIONS).earlier]);
    expect([...earlier].filter((level) => levelRows(level) === null)).toEqual([]);
  });
});

for (const [name, { migrations, create }] of Object.entries(dialects)) {
  const { latest, earlier } = levels(migrations);
  describe(`upgrading ${name} from an earlier schema level`, () => {
    const open: { store: Store | null; db: OldDatabase }[] = [];
    afterAll(async () => {
      for (const o of open) {
        await o.store?.close().catch(() => undefined);
        await o.db.cleanup();
      }
    });

    for (const level of earlier) {
      it(`level ${level} → ${latest}: reads every row, folds every history, carries on every run`, async () => {
        const db = await create(level);
        const entry: { store: Store | null; db: OldDatabase } = { store: null, db };
        open.push(entry);
        entry.store = await db.open();
        await checkUpgraded(entry.store, db, level);
      });
    }
  });
}
