/**
 * The SQLite store: one database file, WAL mode, `synchronous=FULL`, so that a committed
 * transition survives power loss. Throughput comes from group commit (`commit` takes many
 * runs' changes in one transaction), never from weaker durability. Several processes may
 * share the file: writes take the write lock up front (BEGIN IMMEDIATE) and wait up to
 * `busyTimeoutMs` for it. Lease times use SQLite's clock expression, the same host clock
 * every process on this machine reads.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BatonError } from '../../core/errors.js';
import { ClaimedRuns } from '../claimed-runs.js';
import type { TaskError } from '../../core/model.js';
import { versionedEvent, versionedEventJson } from '../../core/run-history.js';
import type { RunEvent } from '../../core/run-machine.js';
import type { BackfillState, TriggerSpec } from '../../core/trigger-spec.js';
import { triggerId } from '../../core/trigger-spec.js';
import { childRunRefused } from '../child-runs.js';
import { createRowMappers, prefixUpperBound } from '../rows.js';
import type { Row } from '../rows.js';
import type {
  BackfillRecord,
  BackfillUpdate,
  BackfillUpdateResult,
  DataAccess,
  DataAccessFilter,
  DataAccessRecord,
  DataObjectListOptions,
  DataObjectRecord,
  NewBackfill,
  FireTriggerInput,
  FiringRecord,
  FiringResult,
  TriggerRecord,
  ClaimedTask,
  ClaimOptions,
  LeaderLease,
  LogLine,
  PruneResult,
  TaskCompletion,
  TaskOutcome,
  TaskRenewal,
  CommitEntry,
  CommitResult,
  FlowVersionRecord,
  Lease,
  NewRun,
  RunFilter,
  RunRecord,
  RunRequest,
  RunRequestKind,
  ParkRequest,
  Store,
  StoredEvent,
  StoredLogLine,
  TaskRunRecord,
} from '../store.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteDataObjects } from './sqlite-data-objects.js';
import { SqliteAssets } from './sqlite-assets.js';
import type {
  AssetAtLocation,
  AssetCheckResult,
  RunMaterialization,
  AssetLink,
  AssetListOptions,
  AssetMaterialization,
  AssetMaterializationRecord,
  AssetSummary,
  AssetVersionOptions,
  ResultCacheEntry,
} from '../ports/assets.js';
import { MultiRowInsert } from './multi-row-insert.js';
import { runCreatedEvent } from '../run-created.js';

/** Named points where a test may crash the process (see engine/crash-points.ts). */
export interface StoreFaults {
  crashPoint(name: 'mid_commit'): void;
}

export interface SqliteStoreOptions {
  /** Path of the database file; parent folders are created. `:memory:` for tests. */
  readonly path: string;
  /** How long a write waits for another process's write lock, in ms. Default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * How long opening waits for another process's lock, in ms: when processes start together
   * on a new file (a worker and a command), one creates the tables while the others wait,
   * however slow a busy machine makes that. Default 60000.
   */
  readonly openTimeoutMs?: number;
  readonly faults?: StoreFaults;
}

const NOW_MS = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;
/** How long a lost claim waits before it is reported again if no commit recorded it. */
const LOST_REPORT_MS = 5000;
const FINISHED: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

const { toRun, toTaskRun, toTrigger, toBackfill, toFiring, toLogLine } = createRowMappers((v) => parseJson(v));

function parseJson<T>(text: unknown): T | null {
  return typeof text === 'string' ? (JSON.parse(text) as T) : null;
}

/** Turns a driver error into a store error; nothing above the store sees SQLite codes. */
export function translateSqliteError(error: unknown, action: string): BatonError {
  if (error instanceof BatonError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_BUSY_SNAPSHOT') {
    return new BatonError('STORE_BUSY', `the database is locked by another process (${action})`, { cause: error });
  }
  if (code === 'SQLITE_FULL') {
    return new BatonError('STORE_FULL', `the disk holding the database is full (${action})`, { cause: error });
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
    return new BatonError('STORE_CONFLICT', `${action}: ${message}`, { cause: error });
  }
  return new BatonError('STORE_IO', `${action} failed: ${message}`, { cause: error });
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly faults: StoreFaults | undefined;
  private readonly stmt: ReturnType<SqliteStore['prepare']>;
  /** A commit's events and task rows, written many to a statement. */
  private readonly eventRows: MultiRowInsert;
  private readonly taskRows: MultiRowInsert;
  private readonly dataObjects: SqliteDataObjects;
  private readonly assets: SqliteAssets;
  private readonly runWakers = new Set<() => void>();
  private readonly endListeners = new Set<(runId: string) => void>();
  /** Rows and events of runs this process just claimed, for the engine's first reads of them. */
  private readonly claimed = new ClaimedRuns();
  /** Runs asked for by `createRun` and not yet in a transaction (see createRun). */
  private pendingCreates: {
    readonly input: NewRun;
    readonly resolve: (result: { run: RunRecord; created: boolean }) => void;
    readonly reject: (error: unknown) => void;
  }[] = [];

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    try {
      this.db = new Database(options.path, { timeout: Math.max(busyTimeoutMs, options.openTimeoutMs ?? 60_000) });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = OFF');
    } catch (error) {
      throw translateSqliteError(error, `opening ${options.path}`);
    }
    this.faults = options.faults;
    try {
      this.migrateSync();
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    this.stmt = this.prepare();
    this.eventRows = new MultiRowInsert(
      this.db,
      5,
      (values) => `INSERT INTO events (run_id, seq, type, at, data) VALUES ${values}`,
    );
    // A task run's id is fixed when its row is created; later patches change its state only.
    this.taskRows = new MultiRowInsert(
      this.db,
      10,
      (values) =>
        `INSERT INTO task_runs (run_id, idx, task_id, state, attempts, started_at, ended_at, skip_reason, output, error)
         VALUES ${values}
         ON CONFLICT (run_id, idx) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
           started_at = excluded.started_at, ended_at = excluded.ended_at, skip_reason = excluded.skip_reason,
           output = excluded.output, error = excluded.error`,
    );
    this.dataObjects = new SqliteDataObjects(this.db, (action, fn) => this.guard(action, fn));
    this.assets = new SqliteAssets(this.db, (action, fn) => this.guard(action, fn));
  }

  private migrateSync(): void {
    const db = this.db;
    try {
      db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      const latest = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]?.version ?? 0;
      const applied =
        (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
      if (applied > latest) {
        throw new BatonError(
          'STORE_TOO_NEW',
          `the database is at migration ${applied}; this Baton knows up to ${latest}`,
        );
      }
      if (applied === latest) return;
      const run = db.transaction(() => {
        const done = new Set(
          (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
        );
        for (const m of SQLITE_MIGRATIONS) {
          if (done.has(m.version)) continue;
          db.exec(m.sql);
          db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
            m.version,
            m.name,
            Date.now(),
          );
        }
      });
      run.immediate();
    } catch (error) {
      throw translateSqliteError(error, 'migrating the database');
    }
  }

  private prepare() {
    const db = this.db;
    return {
      now: db.prepare(`SELECT ${NOW_MS} AS now`),
      putFlow: db.prepare(
        'INSERT OR IGNORE INTO flow_versions (flow, version, spec, source_path, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      getFlow: db.prepare('SELECT * FROM flow_versions WHERE flow = ? AND version = ?'),
      insertRun: db.prepare(
        `INSERT INTO runs (id, flow, version, state, params, dedupe_key, created_at, task_count, max_active_runs, last_seq,
           priority, trigger_id, parent_run_id, parent_task, depth, labels)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
      ),
      parentOfChild: db.prepare('SELECT depth, child_runs FROM runs WHERE id = ?'),
      countChild: db.prepare('UPDATE runs SET child_runs = child_runs + 1 WHERE id = ?'),
      // Every task row of a new run in one statement: a run may have 100,000 tasks.
      insertTasks: db.prepare(
        `INSERT INTO task_runs (run_id, idx, task_id, state) SELECT ?, key, value, 'pending' FROM json_each(?)`,
      ),
      runByDedupe: db.prepare('SELECT * FROM runs WHERE dedupe_key = ?'),
      getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
      runsOfIds: db.prepare('SELECT * FROM runs WHERE id IN (SELECT value FROM json_each(?))'),
      eventsOfRuns: db.prepare(
        'SELECT run_id, seq, data FROM events WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, seq',
      ),
      taskRuns: db.prepare('SELECT * FROM task_runs WHERE run_id = ? ORDER BY idx'),
      events: db.prepare('SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq'),
      insertEvent: db.prepare('INSERT INTO events (run_id, seq, type, at, data) VALUES (?, ?, ?, ?, ?)'),
      runEpoch: db.prepare('SELECT epoch, last_seq, task_count FROM runs WHERE id = ?'),
      leaseCreated: db.prepare(
        `UPDATE runs SET owner = @owner, epoch = @epoch, lease_until = ${NOW_MS} + @leaseMs WHERE id = @id`,
      ),
      updateRun: db.prepare(
        'UPDATE runs SET state = ?, started_at = ?, ended_at = ?, error = ?, last_seq = ? WHERE id = ?',
      ),
      // A run's end lets go of its lease in the same write (the epoch was checked in the commit).
      updateRunEnded: db.prepare(
        `UPDATE runs SET state = ?, started_at = ?, ended_at = ?, error = ?, last_seq = ?, owner = NULL, lease_until = NULL
         WHERE id = ? RETURNING parent_run_id`,
      ),
      updateSeq: db.prepare('UPDATE runs SET last_seq = ? WHERE id = ?'),
      recountTasks: db.prepare(
        'UPDATE runs SET task_count = (SELECT count(*) FROM task_runs WHERE run_id = ?) WHERE id = ?',
      ),
      setTimer: db.prepare('INSERT OR REPLACE INTO timers (run_id, task_idx, due_at) VALUES (?, ?, ?)'),
      clearTimer: db.prepare('DELETE FROM timers WHERE run_id = ? AND task_idx = ?'),
      insertLog: db.prepare('INSERT INTO logs (run_id, task_id, attempt, stream, at, text) VALUES (?, ?, ?, ?, ?, ?)'),
      claimOne: db.prepare(
        `UPDATE runs SET owner = @owner, epoch = epoch + 1, lease_until = ${NOW_MS} + @leaseMs,
           parked = 0, wake_at = NULL
         WHERE id = @id
           AND (@includeFinished = 1 OR state IN ('queued', 'running'))
           AND (owner IS NULL OR lease_until IS NULL OR lease_until < ${NOW_MS} OR owner = @owner OR epoch = @takeOver)
         RETURNING epoch`,
      ),
      // Each candidate query reads its own partial index (migration 10) in claim order and
      // stops at its limit: parked runs, however many, are never scanned.
      orphans: db.prepare(
        `SELECT id, flow, state, max_active_runs FROM runs INDEXED BY runs_orphans
         WHERE state = 'running' AND parked = 0
           AND (owner IS NULL OR lease_until IS NULL OR lease_until < ${NOW_MS})
         LIMIT ?`,
      ),
      queued: db.prepare(
        `SELECT id, flow, state, max_active_runs FROM runs INDEXED BY runs_queued
         WHERE state = 'queued' AND parked = 0
           AND (owner IS NULL OR lease_until IS NULL OR lease_until < ${NOW_MS})
         ORDER BY priority DESC, created_at
         LIMIT ?`,
      ),
      dueParked: db.prepare(
        `SELECT id, flow, state, max_active_runs FROM runs
         WHERE parked = 1 AND wake_at <= ${NOW_MS} + ?
         ORDER BY wake_at
         LIMIT ?`,
      ),
      park: db.prepare(
        `UPDATE runs SET owner = NULL, lease_until = NULL, parked = 1,
           wake_at = CASE
             WHEN EXISTS (SELECT 1 FROM requests q WHERE q.run_id = @id)
               OR EXISTS (SELECT 1 FROM runs c WHERE c.id IN (SELECT value FROM json_each(@awaiting))
                          AND c.state IN ('succeeded', 'failed', 'cancelled'))
             THEN ${NOW_MS} ELSE @wakeAt END
         WHERE id = @id AND owner = @owner AND epoch = @epoch`,
      ),
      activeOfFlow: db.prepare(
        `SELECT count(*) AS n FROM runs
         WHERE flow = ? AND id <> ?
           AND (state = 'running' OR (state = 'queued' AND owner IS NOT NULL AND lease_until >= ${NOW_MS}))`,
      ),
      renew: db.prepare(`UPDATE runs SET lease_until = ${NOW_MS} + ? WHERE id = ? AND owner = ? AND epoch = ?`),
      syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
      syncFull: db.prepare('PRAGMA synchronous = FULL'),
      release: db.prepare(
        'UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = ? AND epoch = ? RETURNING state',
      ),
      addRequest: db.prepare(`INSERT INTO requests (run_id, kind, payload, created_at) VALUES (?, ?, ?, ${NOW_MS})`),
      requestsOfRuns: db.prepare('SELECT * FROM requests WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY id'),
      deleteRequest: db.prepare('DELETE FROM requests WHERE id = ?'),
      logs: db.prepare('SELECT * FROM logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      enqueue: db.prepare(
        `INSERT INTO task_queue (run_id, task_idx, task_id, attempt, labels, payload, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, 'ready', ${NOW_MS})`,
      ),
      cancelQueued: db.prepare('UPDATE task_queue SET cancel = 1 WHERE run_id = ? AND task_idx = ? AND attempt = ?'),
      deleteQueued: db.prepare('DELETE FROM task_queue WHERE id = ?'),
      deleteQueueOfRun: db.prepare('DELETE FROM task_queue WHERE run_id = ?'),
      readyTasks: db.prepare(
        `SELECT q.*, r.flow, r.version FROM task_queue q JOIN runs r ON r.id = q.run_id
         WHERE q.status = 'ready' ORDER BY q.id LIMIT ?`,
      ),
      claimTask: db.prepare(
        `UPDATE task_queue SET status = 'claimed', worker = ?, token = token + 1, lease_until = ${NOW_MS} + ?
         WHERE id = ? AND status = 'ready' RETURNING token`,
      ),
      renewTask: db.prepare(
        `UPDATE task_queue SET lease_until = ${NOW_MS} + ? WHERE id = ? AND token = ? AND worker = ? AND status = 'claimed'
         RETURNING cancel`,
      ),
      completeTask: db.prepare(
        `UPDATE task_queue SET status = 'done', result = ? WHERE id = ? AND token = ? AND status = 'claimed'`,
      ),
      doneForRun: db.prepare(
        `SELECT * FROM task_queue WHERE run_id = ? AND (status = 'done' OR (status IN ('claimed', 'lost') AND lease_until < ${NOW_MS}))
         ORDER BY id LIMIT ?`,
      ),
      // A lost claim is reported again after LOST_REPORT_MS if no commit recorded it (the
      // owner died, was fenced or dropped the run), and at once after a takeover.
      markLost: db.prepare(
        `UPDATE task_queue SET status = 'lost', lease_until = ${NOW_MS} + ${LOST_REPORT_MS} WHERE id = ?`,
      ),
      reopenLost: db.prepare(`UPDATE task_queue SET lease_until = 0 WHERE run_id = ? AND status = 'lost'`),
      acquireLeader: db.prepare(
        `INSERT INTO leadership (name, holder, epoch, lease_until) VALUES (@name, @holder, 1, ${NOW_MS} + @leaseMs)
         ON CONFLICT (name) DO UPDATE SET
           holder = excluded.holder,
           epoch = CASE WHEN leadership.holder = excluded.holder THEN leadership.epoch ELSE leadership.epoch + 1 END,
           lease_until = excluded.lease_until
         WHERE leadership.holder = excluded.holder OR leadership.lease_until < ${NOW_MS}
         RETURNING epoch`,
      ),
      releaseLeader: db.prepare('DELETE FROM leadership WHERE name = ? AND holder = ? AND epoch = ?'),
      leaderOf: db.prepare('SELECT holder FROM leadership WHERE name = ?'),
      expireRunLeasesOf: db.prepare(
        `UPDATE runs SET lease_until = ${NOW_MS} - 1
         WHERE owner = ? AND state IN ('queued', 'running') AND lease_until >= ${NOW_MS}`,
      ),
      prunable: db.prepare(
        `SELECT id FROM runs WHERE state IN ('succeeded', 'failed', 'cancelled') AND ended_at < ? LIMIT 1000`,
      ),
      triggersOfFlow: db.prepare('SELECT id FROM triggers WHERE flow = ?'),
      upsertTrigger: db.prepare(
        `INSERT INTO triggers (id, flow, name, kind, spec, source_path, registered_at, updated_at)
         VALUES (@id, @flow, @name, @kind, @spec, @sourcePath, @now, @now)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, spec = excluded.spec, source_path = excluded.source_path,
           updated_at = excluded.updated_at,
           cursor = CASE WHEN triggers.kind = excluded.kind THEN triggers.cursor ELSE NULL END`,
      ),
      deleteTrigger: db.prepare('DELETE FROM triggers WHERE id = ?'),
      listTriggers: db.prepare('SELECT * FROM triggers ORDER BY id'),
      getTrigger: db.prepare('SELECT * FROM triggers WHERE id = ?'),
      pauseTrigger: db.prepare('UPDATE triggers SET paused = ?, updated_at = ? WHERE id = ?'),
      moveCursor: db.prepare('UPDATE triggers SET cursor = ?, next_fire_at = ?, updated_at = ? WHERE id = ?'),
      insertFiring: db.prepare(
        'INSERT INTO trigger_firings (trigger_id, at, outcome, reason, run_id, dedupe_key) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      listFirings: db.prepare('SELECT * FROM trigger_firings WHERE trigger_id = ? ORDER BY seq DESC LIMIT ?'),
      finishedRuns: db.prepare(
        `SELECT * FROM runs WHERE flow = ? AND state IN ('succeeded', 'failed', 'cancelled') AND ended_at > ?
         ORDER BY ended_at, id LIMIT ?`,
      ),
      activeRuns: db.prepare(
        `SELECT * FROM runs WHERE flow = ? AND state IN ('queued', 'running') ORDER BY created_at`,
      ),
      logsForTask: db.prepare('SELECT * FROM logs WHERE run_id = ? AND task_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      // Keys compare bytewise (BINARY collation): [key, key + '$') holds the key and every
      // `<key>#…`, in one range of the unique index; the few others (`<key>!…`) are dropped.
      runsByKey: db.prepare('SELECT * FROM runs WHERE dedupe_key >= ? AND dedupe_key < ?'),
      insertBackfill: db.prepare(
        `INSERT INTO backfills (id, flow, trigger_id, spec, source_path, from_at, to_at, max_parallel, rerun, state, total,
           created_at, updated_at)
         VALUES (@id, @flow, @triggerId, @spec, @sourcePath, @fromAt, @toAt, @maxParallel, @rerun, @state, @total,
           @createdAt, @createdAt)`,
      ),
      getBackfill: db.prepare('SELECT * FROM backfills WHERE id = ?'),
      moveBackfill: db.prepare(
        `UPDATE backfills SET state = @state, next_index = @nextIndex, done_index = @doneIndex, reason = @reason,
           ended_at = @endedAt, updated_at = @at, version = version + 1
         WHERE id = @id AND version = @expectedVersion`,
      ),
    };
  }

  /**
   * Runs a write that need not wait for the disk (claims, lease renewals, worker completions):
   * it is in the log at once and reaches the disk with the next synced commit, which comes
   * before anything acts on it. docs/operations.md#durability says why each is safe.
   */
  /** Keeps the rows and events of runs just claimed (in the claim's transaction). */
  private keepClaimed(ids: readonly string[]): void {
    const list = JSON.stringify(ids);
    const events = new Map<string, StoredEvent[]>();
    for (const row of this.stmt.eventsOfRuns.all(list) as Row[]) {
      const runId = row.run_id as string;
      let of = events.get(runId);
      if (!of) events.set(runId, (of = []));
      of.push({ runId, seq: row.seq as number, event: JSON.parse(row.data as string) as RunEvent });
    }
    for (const row of this.stmt.runsOfIds.all(list) as Row[]) {
      const run = toRun(row);
      this.claimed.keep(run, events.get(run.id) ?? []);
    }
  }

  private unsynced<T>(fn: () => T): T {
    this.stmt.syncNormal.run();
    try {
      return fn();
    } finally {
      this.stmt.syncFull.run();
    }
  }

  private guard<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw translateSqliteError(error, action);
    }
  }

  async migrate(): Promise<void> {
    this.migrateSync();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async now(): Promise<number> {
    return this.guard('reading the clock', () => (this.stmt.now.get() as { now: number }).now);
  }

  /** Runs `PRAGMA integrity_check`; returns "ok" when the file is sound. */
  integrityCheck(): string {
    return this.guard('checking integrity', () => String(this.db.pragma('integrity_check', { simple: true })));
  }

  async putFlowVersion(r: FlowVersionRecord): Promise<void> {
    this.guard('saving a flow version', () =>
      this.stmt.putFlow.run(r.flow, r.version, r.spec, r.sourcePath, r.createdAt),
    );
  }

  async getFlowVersion(flow: string, version: string): Promise<FlowVersionRecord | null> {
    const row = this.guard('reading a flow version', () => this.stmt.getFlow.get(flow, version) as Row | undefined);
    if (!row) return null;
    return {
      flow: row.flow as string,
      version: row.version as string,
      spec: row.spec as string,
      sourcePath: row.source_path as string,
      createdAt: row.created_at as number,
    };
  }

  /**
   * Group commit: runs created by concurrent callers in the same turn of the event loop share
   * one transaction, so one synced commit, not one each. Each run is inserted under a
   * savepoint of its own, so that one refused run (a child over its limits) fails alone; a
   * caller's promise settles only once the shared commit is on disk.
   */
  async createRun(input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    return new Promise((resolve, reject) => {
      this.pendingCreates.push({ input, resolve, reject });
      if (this.pendingCreates.length === 1) setImmediate(() => this.createPending());
    });
  }

  private createPending(): void {
    const batch = this.pendingCreates;
    this.pendingCreates = [];
    if (batch.length === 0) return;
    const insertOne = this.db.transaction((input: NewRun) => this.insertRun(input));
    let outcomes: ({ ok: { run: RunRecord; created: boolean } } | { error: unknown })[];
    try {
      outcomes = this.guard('creating a run', () =>
        this.db
          .transaction(() =>
            batch.map(({ input }) => {
              try {
                return { ok: insertOne(input) };
              } catch (error) {
                return { error };
              }
            }),
          )
          .immediate(),
      );
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => {
      const item = batch[i];
      if (!item) return;
      if ('ok' in outcome) item.resolve(outcome.ok);
      else
        item.reject(
          outcome.error instanceof BatonError ? outcome.error : translateSqliteError(outcome.error, 'creating a run'),
        );
    });
    if (outcomes.some((o) => 'ok' in o && o.ok.created)) this.wakeRunClaimers();
  }

  async createRuns(inputs: readonly NewRun[]): Promise<{ run: RunRecord; created: boolean }[]> {
    if (inputs.length === 0) return [];
    const results = this.guard('creating runs', () =>
      this.db.transaction(() => inputs.map((input) => this.insertRun(input))).immediate(),
    );
    if (results.some((r) => r.created)) this.wakeRunClaimers();
    return results;
  }

  /** Creates a run inside the caller's transaction (or returns the one with its dedupe key). */
  private insertRun(input: NewRun): { run: RunRecord; created: boolean };
  private insertRun(input: NewRun, readBack: false): { created: boolean };
  private insertRun(input: NewRun, readBack = true): { run?: RunRecord; created: boolean } {
    const s = this.stmt;
    if (input.dedupeKey) {
      const existing = s.runByDedupe.get(input.dedupeKey) as Row | undefined;
      if (existing) return { run: toRun(existing), created: false };
    }
    if (input.parent) this.claimed.forget([input.parent.runId]);
    const depth = input.parent ? this.admitChild(input.parent) : 0;
    const f = input.flow;
    s.putFlow.run(f.flow, f.version, f.spec, f.sourcePath, f.createdAt);
    s.insertRun.run(
      input.id,
      f.flow,
      f.version,
      JSON.stringify(input.params),
      input.dedupeKey ?? null,
      input.createdAt,
      input.taskIds.length,
      input.maxActiveRuns ?? null,
      input.priority ?? 0,
      input.triggerId ?? null,
      input.parent?.runId ?? null,
      input.parent?.task ?? null,
      depth,
      JSON.stringify(input.labels ?? {}),
    );
    s.insertTasks.run(input.id, JSON.stringify(input.taskIds));
    const created = runCreatedEvent(input);
    s.insertEvent.run(input.id, 1, created.type, created.at, JSON.stringify(versionedEvent(created)));
    // A run created by a commit (createOwned) is not read back: nobody asked for its record.
    return readBack ? { run: toRun(s.getRun.get(input.id) as Row), created: true } : { created: true };
  }

  /**
   * The depth of a new child of `parent`, counted among its children; throws when the
   * limits refuse it. A parent no longer in the store counts as a top-level run.
   */
  private admitChild(parent: NonNullable<NewRun['parent']>): number {
    const row = this.stmt.parentOfChild.get(parent.runId) as { depth: number; child_runs: number } | undefined;
    const depth = Number(row?.depth ?? 0) + 1;
    const children = Number(row?.child_runs ?? 0);
    if (parent.limits && depth > parent.limits.depth) {
      throw childRunRefused('depth', parent, depth, parent.limits.depth);
    }
    if (parent.limits && children >= parent.limits.childRuns) {
      throw childRunRefused('child_runs', parent, children, parent.limits.childRuns);
    }
    if (row) this.stmt.countChild.run(parent.runId);
    return depth;
  }

  async getRun(id: string): Promise<RunRecord | null> {
    const claimed = this.claimed.takeRun(id);
    if (claimed) return claimed;
    const row = this.guard('reading a run', () => this.stmt.getRun.get(id) as Row | undefined);
    return row ? toRun(row) : null;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.flow) {
      where.push('flow = ?');
      args.push(filter.flow);
    }
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    if (filter.parentRunId) {
      where.push('parent_run_id = ?');
      args.push(filter.parentRunId);
    }
    // One index range of run_labels per pair (migration 9); a run must be in all of them.
    for (const [key, value] of Object.entries(filter.labels ?? {})) {
      where.push('id IN (SELECT run_id FROM run_labels WHERE key = ? AND value = ?)');
      args.push(key, value);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
    args.push(filter.limit ?? 50);
    return this.guard('listing runs', () => (this.db.prepare(sql).all(...args) as Row[]).map(toRun));
  }

  async runsByIdPrefix(prefix: string, limit: number): Promise<RunRecord[]> {
    // A range of the primary key (BINARY collation: code point order), not LIKE, which
    // ignores case and so cannot use the index.
    const upper = prefixUpperBound(prefix);
    const sql = `SELECT * FROM runs WHERE id >= ?${upper === null ? '' : ' AND id < ?'} ORDER BY id LIMIT ?`;
    const args = upper === null ? [prefix, limit] : [prefix, upper, limit];
    return this.guard('finding runs by id prefix', () => (this.db.prepare(sql).all(...args) as Row[]).map(toRun));
  }

  async getTaskRuns(runId: string): Promise<TaskRunRecord[]> {
    return this.guard('reading task runs', () => (this.stmt.taskRuns.all(runId) as Row[]).map(toTaskRun));
  }

  async readEvents(runId: string, afterSeq = 0): Promise<StoredEvent[]> {
    const claimed = afterSeq === 0 ? this.claimed.takeEvents(runId) : null;
    if (claimed) return claimed;
    return this.guard('reading events', () =>
      (this.stmt.events.all(runId, afterSeq) as Row[]).map((row) => ({
        runId,
        seq: row.seq as number,
        event: JSON.parse(row.data as string) as RunEvent,
      })),
    );
  }

  async claimRun(runId: string, o: ClaimOptions): Promise<Lease | null> {
    this.claimed.forget([runId]);
    return this.guard('claiming a run', () => {
      const tx = this.db.transaction(() => {
        if (o.respectActiveLimit) {
          const run = this.stmt.getRun.get(runId) as Row | undefined;
          if (run && run.state === 'queued' && run.max_active_runs !== null) {
            const active = (this.stmt.activeOfFlow.get(run.flow, runId) as { n: number }).n;
            if (active >= (run.max_active_runs as number)) return null;
          }
        }
        const row = this.stmt.claimOne.get({
          id: runId,
          owner: o.owner,
          leaseMs: o.leaseMs,
          includeFinished: o.includeFinished ? 1 : 0,
          takeOver: o.takeOverEpoch ?? -1,
        }) as { epoch: number } | undefined;
        if (!row) return null;
        this.stmt.reopenLost.run(runId);
        return { runId, owner: o.owner, epoch: row.epoch };
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async claimRuns(o: ClaimOptions & { limit: number; wakeAheadMs?: number }): Promise<Lease[]> {
    return this.guard('claiming runs', () => {
      const tx = this.db.transaction(() => {
        const leases: Lease[] = [];
        const due = this.stmt.dueParked.all(o.wakeAheadMs ?? 0, o.limit) as { id: string }[];
        // Orphaned runs (their owner's lease lapsed) before queued ones, as before any new work.
        const orphans = this.stmt.orphans.all(o.limit * 4) as { id: string }[];
        const queued = orphans.length < o.limit ? (this.stmt.queued.all(o.limit * 4) as { id: string }[]) : [];
        const candidates = [...due, ...orphans, ...queued] as {
          id: string;
          flow: string;
          state: string;
          max_active_runs: number | null;
        }[];
        for (const row of candidates) {
          if (leases.length >= o.limit) break;
          // Checked one run at a time so that runs claimed earlier in this loop count.
          if (row.state === 'queued' && row.max_active_runs !== null) {
            const active = (this.stmt.activeOfFlow.get(row.flow, row.id) as { n: number }).n;
            if (active >= row.max_active_runs) continue;
          }
          const claimed = this.stmt.claimOne.get({
            id: row.id,
            owner: o.owner,
            leaseMs: o.leaseMs,
            includeFinished: 0,
            takeOver: -1,
          }) as { epoch: number } | undefined;
          if (claimed) {
            this.stmt.reopenLost.run(row.id);
            leases.push({ runId: row.id, owner: o.owner, epoch: claimed.epoch });
          }
        }
        // The engine resumes each claimed run from its row and events at once: read them
        // here, two statements for the whole batch rather than two per run.
        if (leases.length > 0) this.keepClaimed(leases.map((l) => l.runId));
        return leases;
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async renewLeases(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    this.claimed.forget(leases.map((l) => l.runId));
    return this.guard('renewing leases', () => {
      const tx = this.db.transaction(() => {
        const lost: string[] = [];
        for (const l of leases) {
          if (this.stmt.renew.run(leaseMs, l.runId, l.owner, l.epoch).changes === 0) lost.push(l.runId);
        }
        return lost;
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async releaseRun(lease: Lease, options: { readonly wake?: boolean } = {}): Promise<void> {
    this.claimed.forget([lease.runId]);
    const released = this.guard('releasing a run', () => this.stmt.release.get(lease.runId, lease.epoch)) as
      { state: string } | undefined;
    // An unfinished run let go is for any engine to take, at once.
    if (released && !FINISHED.has(released.state) && options.wake !== false) this.wakeRunClaimers();
  }

  async parkRun(lease: Lease, park: ParkRequest): Promise<boolean> {
    this.claimed.forget([lease.runId]);
    return this.guard(
      'parking a run',
      () =>
        this.stmt.park.run({
          id: lease.runId,
          owner: lease.owner,
          epoch: lease.epoch,
          wakeAt: park.wakeAt,
          awaiting: JSON.stringify(park.awaiting),
        }).changes === 1,
    );
  }

  onRunEnd(listener: (runId: string) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  subscribe(channel: 'tasks' | 'results' | 'runs', onWake: () => void): () => void {
    // Only this process's own writes can be heard here; other processes are found by polling.
    if (channel !== 'runs') return () => undefined;
    this.runWakers.add(onWake);
    return () => this.runWakers.delete(onWake);
  }

  /** Tells this process's subscribers that runs may be claimable now (after the commit). */
  private wakeRunClaimers(): void {
    if (this.runWakers.size === 0) return;
    queueMicrotask(() => {
      for (const wake of this.runWakers) wake();
    });
  }

  private announceEnds(runIds: readonly string[]): void {
    if (runIds.length === 0 || this.endListeners.size === 0) return;
    queueMicrotask(() => {
      for (const id of runIds) for (const listener of this.endListeners) listener(id);
    });
  }

  async commit(entries: readonly CommitEntry[]): Promise<CommitResult> {
    this.claimed.forget(entries.map((e) => e.lease.runId));
    const s = this.stmt;
    return this.guard('committing run changes', () => {
      const events = this.eventRows;
      const tasks = this.taskRows;
      const tx = this.db.transaction(() => {
        events.clear();
        tasks.clear();
        const fenced: string[] = [];
        const ended: string[] = [];
        let endedChild = false;
        let first = true;
        for (const e of entries) {
          const runId = e.lease.runId;
          if (e.create && !this.createOwned(e.lease, e.create)) {
            fenced.push(runId);
            continue;
          }
          const current = s.runEpoch.get(runId) as { epoch: number; last_seq: number; task_count: number } | undefined;
          if (!current || current.epoch !== e.lease.epoch) {
            fenced.push(runId);
            continue;
          }
          let seq = current.last_seq;
          for (const ev of e.events) {
            events.put(runId);
            events.put(++seq);
            events.put(ev.type);
            events.put(ev.at);
            events.put(versionedEventJson(ev));
          }
          events.flush();
          if (first) {
            this.faults?.crashPoint('mid_commit');
            first = false;
          }
          const ends = e.run !== undefined && FINISHED.has(e.run.state);
          if (e.run && ends) {
            // A finished run needs no lease: let go of it here rather than in a commit of its own.
            const row = s.updateRunEnded.get(
              e.run.state,
              e.run.startedAt,
              e.run.endedAt,
              json(e.run.error),
              seq,
              runId,
            ) as { parent_run_id: string | null };
            ended.push(runId);
            if (row.parent_run_id !== null) endedChild = true;
          } else if (e.run) {
            s.updateRun.run(e.run.state, e.run.startedAt, e.run.endedAt, json(e.run.error), seq, runId);
          } else if (seq !== current.last_seq) {
            s.updateSeq.run(seq, runId);
          }
          let highest = -1;
          for (const t of e.tasks) {
            tasks.put(runId);
            tasks.put(t.index);
            tasks.put(t.taskId);
            tasks.put(t.state);
            tasks.put(t.attempts);
            tasks.put(t.startedAt);
            tasks.put(t.endedAt);
            tasks.put(t.skipReason);
            tasks.put(json(t.output));
            tasks.put(json(t.error));
            if (t.index > highest) highest = t.index;
          }
          tasks.flush();
          // Rows past the last known index may be new (the engine appends task runs at the
          // end): keep task_count the number of task runs.
          if (highest >= current.task_count) s.recountTasks.run(runId, runId);
          for (const timer of e.timers) {
            if (timer.dueAt === null) s.clearTimer.run(runId, timer.task);
            else s.setTimer.run(runId, timer.task, timer.dueAt);
          }
          for (const l of e.logs) s.insertLog.run(l.runId, l.taskId, l.attempt, l.stream, l.at, l.text);
          for (const id of e.answered ?? []) s.deleteRequest.run(id);
          for (const d of e.dispatches ?? []) {
            s.enqueue.run(runId, d.task, d.taskId, d.attempt, JSON.stringify(d.labels), JSON.stringify(d.payload));
          }
          for (const id of e.harvested ?? []) s.deleteQueued.run(id);
          for (const c of e.cancels ?? []) s.cancelQueued.run(runId, c.task, c.attempt);
          // A finished run has no more use for its queue rows; a worker still holding one
          // learns at its next renewal that the claim is gone, and stops.
          if (ends) s.deleteQueueOfRun.run(runId);
        }
        return { fenced, ended, endedChild };
      });
      const { fenced, ended, endedChild } = tx.immediate();
      this.announceEnds(ended);
      // The end of a child run may have made its parked parent due.
      if (endedChild) this.wakeRunClaimers();
      return { fenced };
    });
  }

  /**
   * Inserts a run a commit creates (CommitEntry.create) and gives it to the lease's owner;
   * false, writing nothing, when the run (or its dedupe key) exists already.
   */
  private createOwned(lease: Lease, create: NonNullable<CommitEntry['create']>): boolean {
    const input = create.run;
    if (input.id !== lease.runId)
      throw new BatonError('INTERNAL', `a commit creating run ${input.id} holds the lease of ${lease.runId}`);
    if (this.stmt.runEpoch.get(input.id) !== undefined) return false;
    if (input.dedupeKey && this.stmt.runByDedupe.get(input.dedupeKey) !== undefined) return false;
    this.insertRun(input, false);
    this.stmt.leaseCreated.run({ id: input.id, owner: lease.owner, epoch: lease.epoch, leaseMs: create.leaseMs });
    return true;
  }

  async addRequest(runId: string, kind: RunRequestKind, payload: Readonly<Record<string, unknown>>): Promise<void> {
    this.guard('recording a request', () => this.stmt.addRequest.run(runId, kind, JSON.stringify(payload)));
    this.wakeRunClaimers();
  }

  async pendingRequests(runIds: readonly string[]): Promise<RunRequest[]> {
    return this.guard('reading requests', () => {
      // One statement for all the runs an engine holds, polled often: requests are few.
      return (this.stmt.requestsOfRuns.all(JSON.stringify(runIds)) as Row[]).map((row) => ({
        id: row.id as number,
        runId: row.run_id as string,
        kind: row.kind as RunRequestKind,
        payload: JSON.parse(row.payload as string) as Record<string, unknown>,
      }));
    });
  }

  async readLogs(runId: string, o: { task?: string; afterSeq?: number; limit?: number }): Promise<StoredLogLine[]> {
    return this.guard('reading logs', () => {
      const rows = (
        o.task
          ? this.stmt.logsForTask.all(runId, o.task, o.afterSeq ?? 0, o.limit ?? 10_000)
          : this.stmt.logs.all(runId, o.afterSeq ?? 0, o.limit ?? 10_000)
      ) as Row[];
      return rows.map(toLogLine);
    });
  }

  async appendLogs(lines: readonly LogLine[]): Promise<void> {
    this.guard('appending logs', () => {
      const tx = this.db.transaction(() => {
        for (const l of lines) this.stmt.insertLog.run(l.runId, l.taskId, l.attempt, l.stream, l.at, l.text);
      });
      tx.immediate();
    });
  }

  async claimTasks(o: {
    worker: string;
    labels: readonly string[];
    limit: number;
    leaseMs: number;
  }): Promise<ClaimedTask[]> {
    return this.guard('claiming tasks', () => {
      const tx = this.db.transaction(() => {
        const out: ClaimedTask[] = [];
        const have = new Set(o.labels);
        // Scanning a few times the limit leaves room for rows whose labels do not match.
        for (const row of this.stmt.readyTasks.all(o.limit * 4) as Row[]) {
          if (out.length >= o.limit) break;
          const labels = JSON.parse(row.labels as string) as string[];
          if (!labels.every((l) => have.has(l))) continue;
          const claimed = this.stmt.claimTask.get(o.worker, o.leaseMs, row.id) as { token: number } | undefined;
          if (!claimed) continue;
          out.push({
            id: String(row.id),
            runId: row.run_id as string,
            flow: row.flow as string,
            version: row.version as string,
            task: row.task_idx as number,
            taskId: row.task_id as string,
            attempt: row.attempt as number,
            token: claimed.token,
            payload: JSON.parse(row.payload as string) as Record<string, unknown>,
          });
        }
        return out;
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async renewTasks(
    worker: string,
    claims: readonly { id: string; token: number }[],
    leaseMs: number,
  ): Promise<TaskRenewal> {
    return this.guard('renewing task claims', () => {
      const tx = this.db.transaction(() => {
        const lost: string[] = [];
        const cancelled: string[] = [];
        for (const c of claims) {
          const row = this.stmt.renewTask.get(leaseMs, Number(c.id), c.token, worker) as { cancel: number } | undefined;
          if (!row) lost.push(c.id);
          else if (row.cancel) cancelled.push(c.id);
        }
        return { lost, cancelled };
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async completeTasks(results: readonly TaskCompletion[]): Promise<{ refused: string[] }> {
    return this.guard('completing tasks', () => {
      const tx = this.db.transaction(() => {
        const refused: string[] = [];
        for (const r of results) {
          const result = JSON.stringify({
            status: r.status,
            output: r.output ?? null,
            error: r.error ?? null,
            ...(r.cachedFrom !== undefined ? { cachedFrom: r.cachedFrom } : {}),
          });
          if (this.stmt.completeTask.run(result, Number(r.id), r.token).changes === 0) refused.push(r.id);
        }
        return { refused };
      });
      return this.unsynced(() => tx.immediate());
    });
  }

  async harvestTasks(runIds: readonly string[], limit: number): Promise<TaskOutcome[]> {
    return this.guard('harvesting task outcomes', () => {
      const tx = this.db.transaction(() => {
        const out: TaskOutcome[] = [];
        for (const runId of runIds) {
          for (const row of this.stmt.doneForRun.all(runId, limit) as Row[]) {
            const base = { id: String(row.id), runId, task: row.task_idx as number, attempt: row.attempt as number };
            if (row.status === 'claimed' || row.status === 'lost') {
              this.stmt.markLost.run(row.id);
              out.push({ ...base, status: 'lost' });
              continue;
            }
            const result = JSON.parse(row.result as string) as {
              status: 'succeeded' | 'failed';
              output: unknown;
              error: TaskError | null;
              cachedFrom?: string;
            };
            out.push({
              ...base,
              status: result.status,
              output: result.output,
              ...(result.error ? { error: result.error } : {}),
              ...(typeof result.cachedFrom === 'string' ? { cachedFrom: result.cachedFrom } : {}),
            });
          }
        }
        return out;
      });
      return tx.immediate();
    });
  }

  /**
   * Taking the leadership from another holder also ends the leases that holder still held
   * on runs, as on PostgreSQL: a holder is one process, owning its runs under the same name.
   */
  async acquireLeadership(name: string, holder: string, leaseMs: number): Promise<LeaderLease | null> {
    return this.guard('acquiring leadership', () => {
      const tx = this.db.transaction(() => {
        const previous = (this.stmt.leaderOf.get(name) as { holder: string } | undefined)?.holder;
        const row = this.stmt.acquireLeader.get({ name, holder, leaseMs }) as { epoch: number } | undefined;
        if (row && previous !== undefined && previous !== holder) this.stmt.expireRunLeasesOf.run(previous);
        return row ? { name, holder, epoch: row.epoch } : null;
      });
      return tx.immediate();
    });
  }

  async releaseLeadership(lease: LeaderLease): Promise<void> {
    this.guard('releasing leadership', () => this.stmt.releaseLeader.run(lease.name, lease.holder, lease.epoch));
  }

  async prune(before: number): Promise<PruneResult> {
    return this.guard('pruning history', () => {
      let runs = 0;
      const tx = this.db.transaction((ids: string[]) => {
        for (const table of ['events', 'task_runs', 'timers', 'logs', 'requests', 'task_queue']) {
          const del = this.db.prepare(`DELETE FROM ${table} WHERE run_id = ?`);
          for (const id of ids) del.run(id);
        }
        const delRun = this.db.prepare('DELETE FROM runs WHERE id = ?');
        for (const id of ids) delRun.run(id);
      });
      for (;;) {
        const ids = (this.stmt.prunable.all(before) as { id: string }[]).map((r) => r.id);
        if (ids.length === 0) break;
        this.claimed.forget(ids);
        tx.immediate(ids);
        runs += ids.length;
      }
      return { runs };
    });
  }

  async syncTriggers(flow: string, sourcePath: string, specs: readonly TriggerSpec[], now: number): Promise<void> {
    this.guard('recording triggers', () =>
      this.db
        .transaction(() => {
          const keep = new Set<string>();
          for (const spec of specs) {
            const id = triggerId(flow, spec.name);
            keep.add(id);
            this.stmt.upsertTrigger.run({
              id,
              flow,
              name: spec.name,
              kind: spec.kind,
              spec: JSON.stringify(spec),
              sourcePath,
              now,
            });
          }
          for (const row of this.stmt.triggersOfFlow.all(flow) as { id: string }[]) {
            if (!keep.has(row.id)) this.stmt.deleteTrigger.run(row.id);
          }
        })
        .immediate(),
    );
  }

  async listTriggers(): Promise<TriggerRecord[]> {
    return this.guard('listing triggers', () => (this.stmt.listTriggers.all() as Row[]).map(toTrigger));
  }

  async getTrigger(id: string): Promise<TriggerRecord | null> {
    const row = this.guard('reading a trigger', () => this.stmt.getTrigger.get(id) as Row | undefined);
    return row ? toTrigger(row) : null;
  }

  async setTriggerPaused(id: string, paused: boolean): Promise<boolean> {
    return this.guard(
      'pausing a trigger',
      () => this.stmt.pauseTrigger.run(paused ? 1 : 0, Date.now(), id).changes > 0,
    );
  }

  async fireTrigger(input: FireTriggerInput): Promise<FiringResult[] | null> {
    this.wakeRunClaimers();
    return this.guard('recording a trigger firing', () =>
      this.db
        .transaction((): FiringResult[] | null => {
          const row = this.stmt.getTrigger.get(input.triggerId) as Row | undefined;
          if (!row) return null;
          if (
            (row.cursor ?? null) !==
            (input.expectedCursor === null || input.expectedCursor === undefined
              ? null
              : JSON.stringify(input.expectedCursor))
          ) {
            return null;
          }
          const results: FiringResult[] = [];
          for (const f of input.firings) {
            let outcome: FiringResult['outcome'] = f.outcome;
            let runId = f.runId ?? null;
            if (f.run) {
              const { run, created } = this.insertRun(f.run);
              runId = run.id;
              if (!created) outcome = 'deduplicated';
            }
            for (const id of f.cancelRuns ?? [])
              this.stmt.addRequest.run(id, 'cancel', JSON.stringify({ reason: `overlap: ${f.reason}` }));
            this.stmt.insertFiring.run(input.triggerId, f.at, outcome, f.reason, runId, f.run?.dedupeKey ?? null);
            results.push({ outcome, runId });
          }
          this.stmt.moveCursor.run(
            input.cursor === null || input.cursor === undefined ? null : JSON.stringify(input.cursor),
            input.nextFireAt,
            Date.now(),
            input.triggerId,
          );
          return results;
        })
        .immediate(),
    );
  }

  async listFirings(id: string, limit: number): Promise<FiringRecord[]> {
    return this.guard('reading trigger firings', () => (this.stmt.listFirings.all(id, limit) as Row[]).map(toFiring));
  }

  async finishedRuns(flow: string, after: number, limit: number): Promise<RunRecord[]> {
    return this.guard('listing finished runs', () =>
      (this.stmt.finishedRuns.all(flow, after, limit) as Row[]).map(toRun),
    );
  }

  async activeRuns(flow: string): Promise<RunRecord[]> {
    return this.guard('listing active runs', () => (this.stmt.activeRuns.all(flow) as Row[]).map(toRun));
  }

  async runsByDedupeKeys(keys: readonly string[]): Promise<RunRecord[]> {
    return this.guard('reading runs by dedupe key', () => {
      const out = new Map<string, RunRecord>();
      for (const key of new Set(keys)) {
        for (const row of this.stmt.runsByKey.all(key, `${key}$`) as Row[]) {
          const run = toRun(row);
          if (run.dedupeKey === key || run.dedupeKey?.startsWith(`${key}#`)) out.set(run.id, run);
        }
      }
      return [...out.values()];
    });
  }

  async recordDataAccesses(accesses: readonly DataAccess[]): Promise<void> {
    return this.dataObjects.recordDataAccesses(accesses);
  }

  async getDataObject(path: string): Promise<DataObjectRecord | null> {
    return this.dataObjects.getDataObject(path);
  }

  async listDataObjects(options: DataObjectListOptions): Promise<DataObjectRecord[]> {
    return this.dataObjects.listDataObjects(options);
  }

  async forgetDataObject(path: string): Promise<boolean> {
    return this.dataObjects.forgetDataObject(path);
  }

  async dataAccesses(filter: DataAccessFilter): Promise<DataAccessRecord[]> {
    return this.dataObjects.dataAccesses(filter);
  }
  async recordMaterialization(materialization: AssetMaterialization): Promise<{ id: number; created: boolean }> {
    return this.assets.recordMaterialization(materialization);
  }

  async listAssets(options: AssetListOptions): Promise<AssetSummary[]> {
    return this.assets.listAssets(options);
  }

  async getAsset(key: string): Promise<AssetSummary | null> {
    return this.assets.getAsset(key);
  }

  async assetVersions(key: string, options: AssetVersionOptions): Promise<AssetMaterializationRecord[]> {
    return this.assets.assetVersions(key, options);
  }

  async upstreamAssets(key: string): Promise<AssetLink[]> {
    return this.assets.upstreamAssets(key);
  }

  async downstreamAssets(key: string): Promise<AssetLink[]> {
    return this.assets.downstreamAssets(key);
  }

  async assetsAtLocations(locations: readonly string[]): Promise<AssetAtLocation[]> {
    return this.assets.assetsAtLocations(locations);
  }

  async assetChecks(materializationId: number): Promise<AssetCheckResult[]> {
    return this.assets.assetChecks(materializationId);
  }

  async runMaterializations(runId: string, limit: number): Promise<RunMaterialization[]> {
    return this.assets.runMaterializations(runId, limit);
  }

  async pruneAssetVersions(before: number): Promise<number> {
    return this.assets.pruneAssetVersions(before);
  }

  async recordResultCache(entry: ResultCacheEntry): Promise<void> {
    return this.assets.recordResultCache(entry);
  }

  async pruneResultCache(before: number): Promise<number> {
    return this.assets.pruneResultCache(before);
  }

  async resultCache(key: string): Promise<ResultCacheEntry | null> {
    return this.assets.resultCache(key);
  }

  async createBackfill(input: NewBackfill): Promise<BackfillRecord> {
    return this.guard('recording a backfill', () => {
      this.stmt.insertBackfill.run({
        ...input,
        spec: JSON.stringify(input.spec),
        rerun: input.rerun ? 1 : 0,
      });
      return toBackfill(this.stmt.getBackfill.get(input.id) as Row);
    });
  }

  async getBackfill(id: string): Promise<BackfillRecord | null> {
    const row = this.guard('reading a backfill', () => this.stmt.getBackfill.get(id) as Row | undefined);
    return row ? toBackfill(row) : null;
  }

  async listBackfills(filter: { states?: readonly BackfillState[]; limit?: number } = {}): Promise<BackfillRecord[]> {
    const states = filter.states ?? [];
    const sql = `SELECT * FROM backfills ${states.length ? `WHERE state IN (${states.map(() => '?').join(', ')})` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.guard('listing backfills', () =>
      (this.db.prepare(sql).all(...states, filter.limit ?? 1000) as Row[]).map(toBackfill),
    );
  }

  async updateBackfill(input: BackfillUpdate): Promise<BackfillUpdateResult | null> {
    this.wakeRunClaimers();
    return this.guard('moving a backfill', () =>
      this.db
        .transaction((): BackfillUpdateResult | null => {
          const row = this.stmt.getBackfill.get(input.id) as Row | undefined;
          if (!row || row.version !== input.expectedVersion) return null;
          const current = toBackfill(row);
          const runs = (input.runs ?? []).map((r) => {
            const { run, created } = this.insertRun(r);
            return { runId: run.id, created };
          });
          for (const c of input.cancelRuns ?? []) {
            this.stmt.addRequest.run(c.runId, 'cancel', JSON.stringify({ reason: c.reason }));
          }
          const state = input.state ?? current.state;
          this.stmt.moveBackfill.run({
            id: input.id,
            expectedVersion: input.expectedVersion,
            state,
            nextIndex: input.nextIndex ?? current.nextIndex,
            doneIndex: input.doneIndex ?? current.doneIndex,
            reason: input.reason === undefined ? current.reason : input.reason,
            endedAt: state === 'cancelled' || state === 'completed' ? (current.endedAt ?? input.at) : null,
            at: input.at,
          });
          return { backfill: toBackfill(this.stmt.getBackfill.get(input.id) as Row), runs };
        })
        .immediate(),
    );
  }
}
