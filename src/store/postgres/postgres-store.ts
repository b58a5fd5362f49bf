/**
 * The PostgreSQL store: the same port as SQLite, for many processes on many machines.
 * Connections come from a bounded pool; every statement is parameterized; the group
 * commit and worker completions are single calls to SQL functions (one round trip each);
 * work is claimed with `FOR UPDATE SKIP LOCKED`; lease and timer times are read from the
 * database clock, never from the caller's. LISTEN/NOTIFY wakes idle workers and
 * schedulers (channels `baton_tasks`, `baton_results`, `baton_runs`); polling remains the
 * fallback. Driver errors become STORE_* errors; a lost connection is STORE_UNAVAILABLE,
 * which callers treat as retryable. A statement that locks several rows locks them in one
 * order (runs by id, bytewise; then task_queue rows by id) or skips locked ones, so that
 * renewals, commits, harvests and completions running at once cannot deadlock.
 */
import pg from 'pg';
import { BatonError } from '../../core/errors.js';
import { redactErrorUrl } from '../../core/redact-url.js';
import type { TaskError } from '../../core/model.js';
import { versionedEvent } from '../../core/run-history.js';
import type { RunEvent } from '../../core/run-machine.js';
import type { BackfillState, TriggerSpec } from '../../core/trigger-spec.js';
import { triggerId } from '../../core/trigger-spec.js';
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
  CommitEntry,
  CommitResult,
  FlowVersionRecord,
  LeaderLease,
  Lease,
  LogLine,
  NewRun,
  PruneResult,
  RunFilter,
  RunRecord,
  RunRequest,
  RunRequestKind,
  ParkRequest,
  Store,
  StoredEvent,
  StoredLogLine,
  TaskCompletion,
  TaskOutcome,
  TaskRenewal,
  TaskRunPatch,
  TaskRunRecord,
} from '../store.js';
import { childRunRefused } from '../child-runs.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { PostgresDataObjects } from './postgres-data-objects.js';
import { PostgresAssets } from './postgres-assets.js';
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
import { runCreatedEvent } from '../run-created.js';
import { ClaimedRuns } from '../claimed-runs.js';

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database`. */
  readonly url: string;
  /** Most connections this process opens (LISTEN uses one more). Default 10. */
  readonly poolSize?: number;
  /** Statement timeout in ms, so that no call hangs on a stuck server. Default 30000. */
  readonly statementTimeoutMs?: number;
}

const NOW = 'baton_now()';
/**
 * First key of the session advisory locks that show a leadership holder alive (the second
 * is `hashtext(holder)`); two-key advisory locks are apart from Baton's one-key ones.
 */
const SESSION_LOCK_KEY = 1650553967;
/** SQL: true while some session of this database holds the session lock of `holderSql`. */
const sessionAlive = (holderSql: string) =>
  `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.classid = ${SESSION_LOCK_KEY}::oid AND l.objid = hashtext(${holderSql})::oid)`;
/** How long a lost claim waits before it is reported again if no commit recorded it. */
const LOST_REPORT_MS = 5000;
const CHANNELS = {
  tasks: 'baton_tasks',
  results: 'baton_results',
  runs: 'baton_runs',
  ends: 'baton_run_ends',
} as const;

const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004', '53300']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * A driver error whose text may hold the database URL or its password, with both redacted:
 * the message, and the error kept as `cause` (whose stack `BATON_DEBUG=1` prints).
 */
function withoutUrl(error: unknown, url: string | undefined): { message: string; cause: unknown } {
  if (url === undefined) return { message: error instanceof Error ? error.message : String(error), cause: error };
  return redactErrorUrl(error, url);
}

/** Turns a driver error into a store error; `url` (the store's) never shows in its text. */
export function translatePgError(error: unknown, action: string, url?: string): BatonError {
  if (error instanceof BatonError) return error;
  const code = (error as { code?: unknown }).code;
  const { message, cause } = withoutUrl(error, url);
  if (
    (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || NETWORK_CODES.has(code))) ||
    /Connection terminated|connection error|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(
      message,
    )
  ) {
    return new BatonError('STORE_UNAVAILABLE', `the database is unavailable (${action}): ${message}`, { cause });
  }
  if (code === '23505' || code === '40001' || code === '40P01') {
    return new BatonError('STORE_CONFLICT', `${action}: ${message}`, { cause });
  }
  if (code === '53100')
    return new BatonError('STORE_FULL', `the database server's disk is full (${action})`, { cause });
  if (code === '55P03' || code === '57014') {
    return new BatonError('STORE_BUSY', `the database is busy (${action}): ${message}`, { cause });
  }
  return new BatonError('STORE_IO', `${action} failed: ${message}`, { cause });
}

// jsonb columns arrive decoded; NULL arrives as null.
const { toRun, toTaskRun, toTrigger, toBackfill, toFiring, toLogLine } = createRowMappers((v) => v ?? null);

interface NotifiedOutcome {
  readonly id: string;
  readonly runId: string;
  readonly task: number;
  readonly attempt: number;
  readonly result: StoredResult;
}

/** A completion as the task queue keeps it (the `result` column). */
interface StoredResult {
  readonly status: 'succeeded' | 'failed';
  readonly output: unknown;
  readonly error: TaskError | null;
  readonly cachedFrom?: string;
}

function outcomeOf(result: StoredResult): Pick<TaskOutcome, 'status' | 'output' | 'error' | 'cachedFrom'> {
  return {
    status: result.status,
    output: result.output,
    ...(result.error ? { error: result.error } : {}),
    ...(typeof result.cachedFrom === 'string' ? { cachedFrom: result.cachedFrom } : {}),
  };
}

/** Outcomes carried by a `baton_results` notification, if it carries them. */
function parseOutcomes(payload: string | undefined): TaskOutcome[] | undefined {
  if (!payload) return undefined;
  try {
    return (JSON.parse(payload) as NotifiedOutcome[]).map((o) => ({
      id: o.id,
      runId: o.runId,
      task: o.task,
      attempt: o.attempt,
      ...outcomeOf(o.result),
    }));
  } catch {
    return undefined;
  }
}

/**
 * One patch per task run, the last one given for it: the commit upserts them in one
 * statement, which may touch each row once only (SQLite applies them in order, to the
 * same effect).
 */
function lastPatchPerTask(patches: readonly TaskRunPatch[]): readonly TaskRunPatch[] {
  const byIndex = new Map<number, TaskRunPatch>();
  for (const p of patches) byIndex.set(p.index, p);
  return byIndex.size === patches.length ? patches : [...byIndex.values()];
}

/** Parses int8 as a JS number: Baton's bigints are ms timestamps and counters, well under 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private listener: pg.Client | null = null;
  private listening: Promise<void> | null = null;
  private readonly endListeners = new Set<(runId: string) => void>();
  private readonly subscribers = new Map<string, Set<(outcomes?: readonly TaskOutcome[]) => void>>();
  /** Leadership holders of this process, whose session locks the listener connection holds. */
  private readonly sessionHolders = new Set<string>();
  /** Those whose lock the current listener connection was granted. */
  private readonly sessionLocked = new Set<string>();
  /** Calls waiting for the listener connection (see `listenerConnected`). */
  private listenerWaiters: (() => void)[] = [];
  private closed = false;
  /** Runs just claimed, read in the claim's round trip, until the claimant reads them. */
  private readonly claimed = new ClaimedRuns();
  private readonly dataObjects = new PostgresDataObjects({
    q: (action, text, values) => this.q(action, text, values),
    tx: (action, fn) => this.tx(action, fn),
  });
  private readonly assets = new PostgresAssets({
    q: (action, text, values) => this.q(action, text, values),
    tx: (action, fn) => this.tx(action, fn),
  });

  private constructor(private readonly options: PostgresStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      types,
    });
    // An idle client that loses its connection must not crash the process.
    this.pool.on('error', () => undefined);
  }

  /** Connects and migrates. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  private async q(action: string, text: string, values: unknown[] = []): Promise<Row[]> {
    try {
      const result = await this.pool.query(text, values);
      return result.rows as Row[];
    } catch (error) {
      throw translatePgError(error, action, this.options.url);
    }
  }

  private async tx<T>(action: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw translatePgError(error, action, this.options.url);
    }
    let broken = false;
    // A connection that dies between two statements of the transaction emits an error on the
    // client; without a listener that would end the process. The next statement fails anyway.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw translatePgError(error, action, this.options.url);
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    const latest = POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]?.version ?? 0;
    await this.tx('migrating the database', async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('baton_migrate'))`);
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
      );
      const applied = (await c.query('SELECT version FROM schema_migrations')).rows.map((r: Row) => Number(r.version));
      const newest = Math.max(0, ...applied);
      if (newest > latest) {
        throw new BatonError(
          'STORE_TOO_NEW',
          `the database is at migration ${newest}; this Baton knows up to ${latest}`,
        );
      }
      for (const m of POSTGRES_MIGRATIONS) {
        if (applied.includes(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const listener = this.listener;
    this.listener = null;
    for (const wake of this.listenerWaiters.splice(0)) wake();
    if (listener) await listener.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  async now(): Promise<number> {
    const rows = await this.q('reading the clock', `SELECT ${NOW} AS now`);
    return Number(rows[0]?.now);
  }

  async putFlowVersion(r: FlowVersionRecord): Promise<void> {
    await this.q(
      'saving a flow version',
      'INSERT INTO flow_versions (flow, version, spec, source_path, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
      [r.flow, r.version, r.spec, r.sourcePath, r.createdAt],
    );
  }

  async getFlowVersion(flow: string, version: string): Promise<FlowVersionRecord | null> {
    const rows = await this.q(
      'reading a flow version',
      'SELECT * FROM flow_versions WHERE flow = $1 AND version = $2',
      [flow, version],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      flow: row.flow as string,
      version: row.version as string,
      spec: row.spec as string,
      sourcePath: row.source_path as string,
      createdAt: Number(row.created_at),
    };
  }

  async createRun(input: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    // A child run changes its parent's row (its count of children).
    if (input.parent) this.claimed.forget([input.parent.runId]);
    const rows = await this.q('creating a run', 'SELECT * FROM baton_create_run($1::jsonb)', [
      PostgresStore.createRunPayload(input),
    ]);
    const row = rows[0] as Row;
    const refused = (row.run as Row).refused;
    if (input.parent?.limits && (refused === 'depth' || refused === 'child_runs')) {
      const limit = refused === 'depth' ? input.parent.limits.depth : input.parent.limits.childRuns;
      throw childRunRefused(refused, input.parent, Number((row.run as Row).value), limit);
    }
    return { run: toRun(row.run as Row), created: row.created === true };
  }

  async createRuns(inputs: readonly NewRun[]): Promise<{ run: RunRecord; created: boolean }[]> {
    if (inputs.length === 0) return [];
    // Created in dedupe-key order, so that two calls naming the same keys wait for each
    // other's rows in one order and cannot deadlock; answered in input order.
    const order = inputs.map((_, i) => i);
    const keyOf = (i: number) => inputs[i]?.dedupeKey ?? '';
    order.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : a - b));
    const payload = `[${order.map((i) => PostgresStore.createRunPayload(inputs[i] as NewRun)).join(',')}]`;
    return this.tx('creating runs', async (c) => {
      // One round trip: the function runs once per element, in array order, each call
      // seeing the runs the calls before it created.
      const rows = (
        await c.query(
          `SELECT r.created, r.run FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS p(v, ord)
             CROSS JOIN LATERAL baton_create_run(p.v) AS r ORDER BY p.ord`,
          [payload],
        )
      ).rows as Row[];
      const out: { run: RunRecord; created: boolean }[] = new Array(inputs.length);
      rows.forEach((row, k) => {
        const i = order[k] as number;
        const input = inputs[i] as NewRun;
        const refused = (row.run as Row).refused;
        if (input.parent?.limits && (refused === 'depth' || refused === 'child_runs')) {
          const limit = refused === 'depth' ? input.parent.limits.depth : input.parent.limits.childRuns;
          throw childRunRefused(refused, input.parent, Number((row.run as Row).value), limit);
        }
        out[i] = { run: toRun(row.run as Row), created: row.created === true };
      });
      return out;
    });
  }

  private static createRunPayload(input: NewRun): string {
    const f = input.flow;
    const event = runCreatedEvent(input);
    return JSON.stringify({
      id: input.id,
      flow: f,
      params: input.params,
      dedupeKey: input.dedupeKey ?? null,
      createdAt: input.createdAt,
      taskIds: input.taskIds,
      maxActiveRuns: input.maxActiveRuns ?? null,
      priority: input.priority ?? 0,
      triggerId: input.triggerId ?? null,
      parent: input.parent ?? null,
      labels: input.labels ?? {},
      event: versionedEvent(event),
    });
  }

  async getRun(id: string): Promise<RunRecord | null> {
    const claimed = this.claimed.takeRun(id);
    if (claimed) return claimed;
    const rows = await this.q('reading a run', 'SELECT * FROM runs WHERE id = $1', [id]);
    return rows[0] ? toRun(rows[0]) : null;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.flow) {
      args.push(filter.flow);
      where.push(`flow = $${args.length}`);
    }
    if (filter.state) {
      args.push(filter.state);
      where.push(`state = $${args.length}`);
    }
    if (filter.parentRunId) {
      args.push(filter.parentRunId);
      where.push(`parent_run_id = $${args.length}`);
    }
    if (filter.labels && Object.keys(filter.labels).length > 0) {
      // Containment, which the GIN index of migration 9 serves: every pair given must be there.
      args.push(JSON.stringify(filter.labels));
      where.push(`labels @> $${args.length}::jsonb`);
    }
    args.push(filter.limit ?? 50);
    const rows = await this.q(
      'listing runs',
      `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT $${args.length}`,
      args,
    );
    return rows.map(toRun);
  }

  async runsByIdPrefix(prefix: string, limit: number): Promise<RunRecord[]> {
    // The range walks the primary key index in the database collation. For letters and
    // digits (every id Baton makes) that range holds every id with the prefix under C and
    // the usual language collations alike; `starts_with` drops what a collation adds. Other
    // prefixes may sort apart from their ids outside C, so they get the exact test alone.
    const upper = /^[0-9A-Za-z]+$/.test(prefix) ? prefixUpperBound(prefix) : null;
    const rows = await this.q(
      'finding runs by id prefix',
      upper === null
        ? 'SELECT * FROM runs WHERE starts_with(id, $1) ORDER BY id LIMIT $2'
        : 'SELECT * FROM runs WHERE id >= $1 AND id < $3 AND starts_with(id, $1) ORDER BY id LIMIT $2',
      upper === null ? [prefix, limit] : [prefix, limit, upper],
    );
    // Listed in code point order, as on SQLite, whatever the collation ordered them by.
    return rows.map(toRun).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async getTaskRuns(runId: string): Promise<TaskRunRecord[]> {
    const rows = await this.q(
      'reading task runs',
      'SELECT *, output IS NOT NULL AS has_output FROM task_runs WHERE run_id = $1 ORDER BY idx',
      [runId],
    );
    return rows.map(toTaskRun);
  }

  async readEvents(runId: string, afterSeq = 0): Promise<StoredEvent[]> {
    const claimed = afterSeq === 0 ? this.claimed.takeEvents(runId) : null;
    if (claimed) return claimed;
    const rows = await this.q(
      'reading events',
      'SELECT seq, data FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq',
      [runId, afterSeq],
    );
    return rows.map((row) => ({ runId, seq: Number(row.seq), event: row.data as RunEvent }));
  }

  async claimRun(runId: string, o: ClaimOptions): Promise<Lease | null> {
    this.claimed.forget([runId]);
    return this.tx('claiming a run', async (c) => {
      if (o.respectActiveLimit) {
        const run = (await c.query('SELECT * FROM runs WHERE id = $1 FOR UPDATE', [runId])).rows[0] as Row | undefined;
        if (run && run.state === 'queued' && run.max_active_runs !== null) {
          if ((await this.activeOfFlow(c, run.flow as string, runId)) >= Number(run.max_active_runs)) return null;
        }
      }
      const rows = (
        await c.query(
          `UPDATE runs SET owner = $2, epoch = epoch + 1, lease_until = ${NOW} + $3, parked = false, wake_at = NULL
           WHERE id = $1
             AND ($4 OR state IN ('queued', 'running'))
             AND (owner IS NULL OR lease_until IS NULL OR lease_until < ${NOW} OR owner = $2 OR epoch = $5)
           RETURNING epoch`,
          [runId, o.owner, o.leaseMs, o.includeFinished ?? false, o.takeOverEpoch ?? -1],
        )
      ).rows as Row[];
      if (!rows[0]) return null;
      await this.reopenLost(c, [runId]);
      return { runId, owner: o.owner, epoch: Number(rows[0].epoch) };
    });
  }

  /**
   * A harvest marks a lapsed claim `lost` and the owner's next commit records it and
   * deletes the row. If the previous owner never made that commit, the new owner's first
   * harvest reports the row again at once.
   */
  private async reopenLost(c: pg.PoolClient, runIds: readonly string[]): Promise<void> {
    if (runIds.length === 0) return;
    await c.query(
      `UPDATE task_queue SET lease_until = 0 WHERE id IN (
         SELECT id FROM task_queue WHERE run_id = ANY($1::text[]) AND status = 'lost' ORDER BY id FOR UPDATE)`,
      [runIds],
    );
  }

  private async activeOfFlow(c: pg.PoolClient, flow: string, except: string): Promise<number> {
    const rows = await c.query(
      `SELECT count(*)::int AS n FROM runs WHERE flow = $1 AND id <> $2
         AND (state = 'running' OR (state = 'queued' AND owner IS NOT NULL AND lease_until >= ${NOW}))`,
      [flow, except],
    );
    return Number((rows.rows[0] as Row).n);
  }

  async claimRuns(o: ClaimOptions & { limit: number; wakeAheadMs?: number }): Promise<Lease[]> {
    // The claimant reads each run and its events next: they come with the claim.
    const rows = await this.q('claiming runs', 'SELECT * FROM baton_claim_runs_loaded($1, $2, $3, $4)', [
      o.owner,
      o.leaseMs,
      o.limit,
      o.wakeAheadMs ?? 0,
    ]);
    return rows.map((row) => {
      const runId = row.id as string;
      const events = (row.events as [number, RunEvent][]).map(([seq, event]) => ({ runId, seq: Number(seq), event }));
      this.claimed.keep(toRun(row.run as Row), events);
      return { runId, owner: o.owner, epoch: Number(row.epoch) };
    });
  }

  async renewLeases(leases: readonly Lease[], leaseMs: number): Promise<string[]> {
    if (leases.length === 0) return [];
    this.claimed.forget(leases.map((l) => l.runId));
    const rows = await this.q(
      'renewing leases',
      // Rows locked in id order, skipping those another transaction holds (a commit of the
      // run, or an earlier renewal still running): a statement that waits for no lock takes
      // part in no deadlock and queues behind nothing. A skipped lease still held is renewed
      // next time (every third of the lease); the leases lost are those the run no longer
      // shows (the statement's snapshot: a takeover committed meanwhile shows next time).
      `WITH l AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS l(id, owner, epoch)),
       held AS (
         SELECT r.id FROM runs r JOIN l ON r.id = l.id AND r.owner = l.owner AND r.epoch = l.epoch
         ORDER BY r.id COLLATE "C" FOR UPDATE OF r SKIP LOCKED
       ),
       renewed AS (UPDATE runs r SET lease_until = ${NOW} + $4 FROM held WHERE r.id = held.id RETURNING r.id)
       SELECT l.id FROM l
       WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = l.id AND r.owner = l.owner AND r.epoch = l.epoch)`,
      [leases.map((l) => l.runId), leases.map((l) => l.owner), leases.map((l) => l.epoch), leaseMs],
    );
    return rows.map((r) => r.id as string);
  }

  async parkRun(lease: Lease, park: ParkRequest): Promise<boolean> {
    this.claimed.forget([lease.runId]);
    // A function, so that it locks before it reads (see migration 11): a request or child
    // end racing the park is seen by it, or sees the run parked.
    const rows = await this.q('parking a run', 'SELECT baton_park_run($1, $2, $3, $4, $5) AS parked', [
      lease.runId,
      lease.owner,
      lease.epoch,
      park.awaiting,
      park.wakeAt,
    ]);
    return (rows[0] as Row).parked === true;
  }

  onRunEnd(listener: (runId: string) => void): () => void {
    this.endListeners.add(listener);
    // Listening on the ends channel is a subscription like the others (see subscribe).
    const off = this.subscribe('ends', () => undefined);
    return () => {
      this.endListeners.delete(listener);
      off();
    };
  }

  async releaseRun(lease: Lease, options: { readonly wake?: boolean } = {}): Promise<void> {
    this.claimed.forget([lease.runId]);
    // An unfinished run let go is for any engine to take, at once: idle ones are woken.
    await this.q(
      'releasing a run',
      `WITH released AS (
         UPDATE runs SET owner = NULL, lease_until = NULL WHERE id = $1 AND epoch = $2 RETURNING id, state
       )
       SELECT pg_notify('baton_runs', id) FROM released WHERE $3 AND state IN ('queued', 'running')`,
      [lease.runId, lease.epoch, options.wake !== false],
    );
  }

  async commit(entries: readonly CommitEntry[]): Promise<CommitResult> {
    if (entries.length === 0) return { fenced: [] };
    this.claimed.forget(entries.map((e) => e.lease.runId));
    const batch = entries.map((e) => ({
      runId: e.lease.runId,
      epoch: e.lease.epoch,
      events: e.events.map(versionedEvent),
      ...(e.run ? { run: e.run } : {}),
      tasks: lastPatchPerTask(e.tasks),
      timers: e.timers,
      logs: e.logs,
      ...(e.answered?.length ? { answered: e.answered } : {}),
      ...(e.harvested?.length ? { harvested: e.harvested } : {}),
      ...(e.cancels?.length ? { cancels: e.cancels } : {}),
      ...(e.dispatches?.length ? { dispatches: e.dispatches } : {}),
    }));
    if (!entries.some((e) => e.create)) {
      const rows = await this.q('committing run changes', 'SELECT baton_commit($1::jsonb) AS fenced', [
        JSON.stringify(batch),
      ]);
      // A run this commit ended let go of its lease in it (trigger runs_release_ended, migration 10).
      return { fenced: (rows[0]?.fenced as string[]) ?? [] };
    }
    return this.tx('committing run changes', async (c) => {
      const refused = new Set<string>();
      for (const e of entries) {
        if (e.create && !(await PostgresStore.createOwned(c, e.lease, e.create))) refused.add(e.lease.runId);
      }
      const rows = await c.query('SELECT baton_commit($1::jsonb) AS fenced', [
        JSON.stringify(batch.filter((b) => !refused.has(b.runId))),
      ]);
      return { fenced: [...refused, ...(((rows.rows[0] as Row | undefined)?.fenced as string[]) ?? [])] };
    });
  }

  /**
   * Inserts a run a commit creates (CommitEntry.create) and gives it to the lease's owner,
   * in the commit's transaction; false, writing nothing, when the run (or its dedupe key)
   * exists already.
   */
  private static async createOwned(
    c: pg.PoolClient,
    lease: Lease,
    create: NonNullable<CommitEntry['create']>,
  ): Promise<boolean> {
    const input = create.run;
    if (input.id !== lease.runId) {
      throw new BatonError('INTERNAL', `a commit creating run ${input.id} holds the lease of ${lease.runId}`);
    }
    if ((await c.query('SELECT 1 FROM runs WHERE id = $1', [input.id])).rows.length > 0) return false;
    const made = (
      await c.query('SELECT created FROM baton_create_run($1::jsonb)', [PostgresStore.createRunPayload(input)])
    ).rows[0] as Row | undefined;
    if (made?.created !== true) return false;
    await c.query(`UPDATE runs SET owner = $2, epoch = $3, lease_until = ${NOW} + $4 WHERE id = $1`, [
      input.id,
      lease.owner,
      lease.epoch,
      create.leaseMs,
    ]);
    return true;
  }

  async addRequest(runId: string, kind: RunRequestKind, payload: Readonly<Record<string, unknown>>): Promise<void> {
    await this.q(
      'recording a request',
      `INSERT INTO requests (run_id, kind, payload, created_at) VALUES ($1, $2, $3, ${NOW})`,
      [runId, kind, JSON.stringify(payload)],
    );
  }

  async pendingRequests(runIds: readonly string[]): Promise<RunRequest[]> {
    if (runIds.length === 0) return [];
    const rows = await this.q('reading requests', 'SELECT * FROM requests WHERE run_id = ANY($1::text[]) ORDER BY id', [
      runIds,
    ]);
    return rows.map((row) => ({
      id: Number(row.id),
      runId: row.run_id as string,
      kind: row.kind as RunRequestKind,
      payload: row.payload as Record<string, unknown>,
    }));
  }

  async readLogs(runId: string, o: { task?: string; afterSeq?: number; limit?: number }): Promise<StoredLogLine[]> {
    const rows = o.task
      ? await this.q(
          'reading logs',
          'SELECT * FROM logs WHERE run_id = $1 AND task_id = $2 AND seq > $3 ORDER BY seq LIMIT $4',
          [runId, o.task, o.afterSeq ?? 0, o.limit ?? 10_000],
        )
      : await this.q('reading logs', 'SELECT * FROM logs WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [
          runId,
          o.afterSeq ?? 0,
          o.limit ?? 10_000,
        ]);
    return rows.map(toLogLine);
  }

  async appendLogs(lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    await this.q(
      'appending logs',
      `INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::text[])`,
      [
        lines.map((l) => l.runId),
        lines.map((l) => l.taskId),
        lines.map((l) => l.attempt),
        lines.map((l) => l.stream),
        lines.map((l) => l.at),
        lines.map((l) => l.text),
      ],
    );
  }

  async claimTasks(o: {
    worker: string;
    labels: readonly string[];
    limit: number;
    leaseMs: number;
  }): Promise<ClaimedTask[]> {
    const rows = await this.q('claiming tasks', 'SELECT * FROM baton_claim($1, $2, $3::jsonb, $4)', [
      o.worker,
      o.leaseMs,
      JSON.stringify(o.labels),
      o.limit,
    ]);
    return rows.map((row) => ({
      id: String(row.id),
      runId: row.run_id as string,
      flow: row.flow as string,
      version: row.version as string,
      task: Number(row.task_idx),
      taskId: row.task_id as string,
      attempt: Number(row.attempt),
      token: Number(row.token),
      payload: row.payload as Record<string, unknown>,
    }));
  }

  async renewTasks(
    worker: string,
    claims: readonly { id: string; token: number }[],
    leaseMs: number,
  ): Promise<TaskRenewal> {
    if (claims.length === 0) return { lost: [], cancelled: [] };
    const rows = await this.q(
      'renewing task claims',
      `WITH held AS (
         SELECT q.id FROM task_queue q JOIN unnest($1::bigint[], $2::int[]) AS c(id, token)
           ON q.id = c.id AND q.token = c.token
         WHERE q.worker = $3 AND q.status = 'claimed'
         ORDER BY q.id FOR UPDATE OF q
       )
       UPDATE task_queue q SET lease_until = ${NOW} + $4 FROM held WHERE q.id = held.id
       RETURNING q.id, q.cancel`,
      [claims.map((c) => c.id), claims.map((c) => c.token), worker, leaseMs],
    );
    const kept = new Map(rows.map((r) => [String(r.id), r.cancel === true]));
    return {
      lost: claims.filter((c) => !kept.has(c.id)).map((c) => c.id),
      cancelled: claims.filter((c) => kept.get(c.id) === true).map((c) => c.id),
    };
  }

  async completeTasks(results: readonly TaskCompletion[]): Promise<{ refused: string[] }> {
    if (results.length === 0) return { refused: [] };
    const payload = results.map((r) => ({
      id: Number(r.id),
      token: r.token,
      result: {
        status: r.status,
        output: r.output ?? null,
        error: r.error ?? null,
        ...(r.cachedFrom !== undefined ? { cachedFrom: r.cachedFrom } : {}),
      },
    }));
    const rows = await this.q('completing tasks', 'SELECT baton_complete($1::jsonb) AS refused', [
      JSON.stringify(payload),
    ]);
    return { refused: ((rows[0]?.refused as unknown[]) ?? []).map(String) };
  }

  async harvestTasks(runIds: readonly string[], limit: number): Promise<TaskOutcome[]> {
    if (runIds.length === 0) return [];
    const rows = await this.q(
      'harvesting task outcomes',
      // A lapsed claim is reported lost; the owner's next commit records that and deletes
      // the row. Should that commit never come (the owner died, was fenced, or dropped the
      // run), the row is reported again once LOST_REPORT_MS has passed (at once after a
      // takeover, see reopenLost); an owner still holding the outcome ignores the repeat.
      // A row another transaction holds (a completion, a commit) is being changed: it is
      // skipped, not waited for, and looked at again by the next harvest.
      `WITH stale AS (
         SELECT id FROM task_queue
         WHERE run_id = ANY($1::text[]) AND status IN ('claimed', 'lost') AND lease_until < ${NOW}
         ORDER BY id FOR UPDATE SKIP LOCKED
       ),
       lost AS (
         UPDATE task_queue q SET status = 'lost', lease_until = ${NOW} + ${LOST_REPORT_MS}
         FROM stale WHERE q.id = stale.id
         RETURNING q.id, q.run_id, q.task_idx, q.attempt, q.status, q.result
       )
       SELECT * FROM lost
       UNION ALL
       SELECT * FROM (
         SELECT id, run_id, task_idx, attempt, status, result FROM task_queue
         WHERE run_id = ANY($1::text[]) AND status = 'done' ORDER BY id LIMIT $2
       ) done`,
      [runIds, limit],
    );
    return rows.map((row) => {
      const base = {
        id: String(row.id),
        runId: row.run_id as string,
        task: Number(row.task_idx),
        attempt: Number(row.attempt),
      };
      if (row.status === 'lost') return { ...base, status: 'lost' as const };
      return { ...base, ...outcomeOf(row.result as StoredResult) };
    });
  }

  /**
   * A holder leads while its lease runs and while its session lives: this process's
   * listener connection holds an advisory lock named after the holder, which PostgreSQL
   * drops the moment that connection ends, so a standby takes over from a killed leader at
   * its next try instead of waiting out the lease. The lease remains the bound when the
   * session outlives its process (a lost machine, until the server notices).
   *
   * Taking the leadership from another holder also ends the leases that holder still held
   * on runs: a holder is one process, which owns its runs under the same name, so they are
   * taken over at once too. Should that process still be alive, the runs' epochs fence it.
   */
  async acquireLeadership(name: string, holder: string, leaseMs: number): Promise<LeaderLease | null> {
    await this.holdSession(holder);
    const rows = await this.q(
      'acquiring leadership',
      `WITH previous AS (SELECT holder FROM leadership WHERE name = $1),
       taken AS (
         INSERT INTO leadership (name, holder, epoch, lease_until) VALUES ($1, $2, 1, ${NOW} + $3)
         ON CONFLICT (name) DO UPDATE SET
           holder = excluded.holder,
           epoch = CASE WHEN leadership.holder = excluded.holder THEN leadership.epoch ELSE leadership.epoch + 1 END,
           lease_until = excluded.lease_until
         -- The lock table is looked at only when the lease alone does not decide.
         WHERE CASE WHEN leadership.holder = excluded.holder OR leadership.lease_until < ${NOW} THEN true
           ELSE NOT ${sessionAlive('leadership.holder')} END
         RETURNING epoch
       ),
       released AS (
         UPDATE runs SET lease_until = ${NOW} - 1
         WHERE id IN (
           SELECT id FROM runs
           WHERE EXISTS (SELECT 1 FROM taken) AND (SELECT holder FROM previous) IS DISTINCT FROM $2
             AND owner = (SELECT holder FROM previous) AND state IN ('queued', 'running') AND lease_until >= ${NOW}
           ORDER BY id COLLATE "C" FOR UPDATE)
       )
       SELECT epoch FROM taken`,
      [name, holder, leaseMs],
    );
    return rows[0] ? { name, holder, epoch: Number(rows[0].epoch) } : null;
  }

  /** Makes the listener connection hold the session lock of `holder` (see acquireLeadership). */
  private async holdSession(holder: string): Promise<void> {
    this.sessionHolders.add(holder);
    if (this.sessionLocked.has(holder) && this.listener) return;
    void this.ensureListener();
    const client = await this.listenerConnected();
    if (!client) {
      throw new BatonError('STORE_UNAVAILABLE', 'the database is unavailable (acquiring leadership): no connection');
    }
    try {
      await this.lockSession(client, holder);
    } catch (error) {
      throw translatePgError(error, 'acquiring leadership', this.options.url);
    }
  }

  /**
   * Takes the session lock of `holder` on `client`. Refused, another session holds it: an
   * earlier connection of this process the server has not yet seen end (it shows the holder
   * alive meanwhile); the next call tries again.
   */
  private async lockSession(client: pg.Client, holder: string): Promise<void> {
    const rows = (await client.query(`SELECT pg_try_advisory_lock(${SESSION_LOCK_KEY}, hashtext($1)) AS ok`, [holder]))
      .rows as Row[];
    if (rows[0]?.ok === true && this.listener === client) this.sessionLocked.add(holder);
  }

  /** The listener connection once it is up, or null if it is not up within the connect timeout. */
  private listenerConnected(): Promise<pg.Client | null> {
    if (this.listener || this.closed) return Promise.resolve(this.listener);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.listenerWaiters = this.listenerWaiters.filter((w) => w !== wake);
        resolve(this.listener);
      };
      const timer = setTimeout(wake, 10_000);
      this.listenerWaiters.push(wake);
    });
  }

  async releaseLeadership(lease: LeaderLease): Promise<void> {
    await this.q('releasing leadership', 'DELETE FROM leadership WHERE name = $1 AND holder = $2 AND epoch = $3', [
      lease.name,
      lease.holder,
      lease.epoch,
    ]);
  }

  async prune(before: number): Promise<PruneResult> {
    let runs = 0;
    for (;;) {
      const deleted = await this.tx('pruning history', async (c) => {
        const ids = (
          await c.query(
            `SELECT id FROM runs WHERE state IN ('succeeded', 'failed', 'cancelled') AND ended_at < $1
             ORDER BY ended_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
            [before],
          )
        ).rows.map((r: Row) => r.id as string);
        if (ids.length === 0) return 0;
        this.claimed.forget(ids);
        for (const table of ['events', 'task_runs', 'timers', 'logs', 'requests', 'task_queue']) {
          await c.query(`DELETE FROM ${table} WHERE run_id = ANY($1::text[])`, [ids]);
        }
        await c.query('DELETE FROM runs WHERE id = ANY($1::text[])', [ids]);
        return ids.length;
      });
      if (deleted === 0) return { runs };
      runs += deleted;
    }
  }

  subscribe(
    channel: 'tasks' | 'results' | 'runs' | 'ends',
    onWake: (outcomes?: readonly TaskOutcome[]) => void,
  ): () => void {
    const name = CHANNELS[channel];
    let set = this.subscribers.get(name);
    if (!set) {
      set = new Set();
      this.subscribers.set(name, set);
    }
    const isNew = set.size === 0;
    set.add(onWake);
    if (isNew && this.listener) void this.listener.query(`LISTEN ${name}`).catch(() => undefined);
    void this.ensureListener();
    return () => set?.delete(onWake);
  }

  /** One dedicated connection for LISTEN; reconnects with backoff when it drops. */
  private ensureListener(): Promise<void> {
    if (this.listening || this.closed) return this.listening ?? Promise.resolve();
    this.listening = (async () => {
      let delay = 100;
      while (!this.closed) {
        const client = new pg.Client({ connectionString: this.options.url, types });
        client.on('error', () => undefined);
        try {
          await client.connect();
          const ended = new Promise<void>((resolve) => {
            // `on`, not `once`: a second error on a dying connection must not go unheard.
            client.on('error', () => resolve());
            client.once('end', () => resolve());
          });
          for (const name of this.subscribers.keys()) await client.query(`LISTEN ${name}`);
          client.on('notification', (msg) => {
            if (msg.channel === CHANNELS.ends) {
              if (msg.payload) for (const listener of this.endListeners) listener(msg.payload);
              return;
            }
            const outcomes = msg.channel === CHANNELS.results ? parseOutcomes(msg.payload) : undefined;
            for (const fn of this.subscribers.get(msg.channel) ?? []) fn(outcomes);
          });
          if (!this.closed) {
            this.listener = client;
            // The holders of this process are alive again as soon as the connection is back.
            for (const holder of this.sessionHolders) await this.lockSession(client, holder);
            for (const wake of this.listenerWaiters.splice(0)) wake();
            delay = 100;
            // Anything may have happened while the connection was down: wake everyone once.
            for (const set of this.subscribers.values()) for (const fn of set) fn();
            await ended;
          }
        } catch {
          // The server is away; try again shortly.
        }
        this.listener = null;
        this.sessionLocked.clear();
        await client.end().catch(() => undefined);
        if (this.closed) break;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    })();
    return this.listening;
  }

  async syncTriggers(flow: string, sourcePath: string, specs: readonly TriggerSpec[], now: number): Promise<void> {
    await this.tx('recording triggers', async (c) => {
      const ids: string[] = [];
      for (const spec of specs) {
        const id = triggerId(flow, spec.name);
        ids.push(id);
        await c.query(
          `INSERT INTO triggers (id, flow, name, kind, spec, source_path, registered_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
           ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, spec = excluded.spec, source_path = excluded.source_path,
             updated_at = excluded.updated_at,
             cursor = CASE WHEN triggers.kind = excluded.kind THEN triggers.cursor ELSE NULL END`,
          [id, flow, spec.name, spec.kind, JSON.stringify(spec), sourcePath, now],
        );
      }
      await c.query('DELETE FROM triggers WHERE flow = $1 AND NOT (id = ANY($2::text[]))', [flow, ids]);
    });
  }

  async listTriggers(): Promise<TriggerRecord[]> {
    return (await this.q('listing triggers', 'SELECT * FROM triggers ORDER BY id')).map(toTrigger);
  }

  async getTrigger(id: string): Promise<TriggerRecord | null> {
    const rows = await this.q('reading a trigger', 'SELECT * FROM triggers WHERE id = $1', [id]);
    return rows[0] ? toTrigger(rows[0]) : null;
  }

  async setTriggerPaused(id: string, paused: boolean): Promise<boolean> {
    const rows = await this.q(
      'pausing a trigger',
      'UPDATE triggers SET paused = $2, updated_at = $3 WHERE id = $1 RETURNING id',
      [id, paused, Date.now()],
    );
    return rows.length > 0;
  }

  async fireTrigger(input: FireTriggerInput): Promise<FiringResult[] | null> {
    return this.tx('recording a trigger firing', async (c) => {
      const row = (await c.query('SELECT cursor FROM triggers WHERE id = $1 FOR UPDATE', [input.triggerId])).rows[0] as
        Row | undefined;
      if (!row) return null;
      const expected =
        input.expectedCursor === null || input.expectedCursor === undefined
          ? null
          : JSON.stringify(input.expectedCursor);
      if ((row.cursor ?? null) !== expected) return null;
      const results: FiringResult[] = [];
      for (const f of input.firings) {
        let outcome: FiringResult['outcome'] = f.outcome;
        let runId = f.runId ?? null;
        if (f.run) {
          const created = (
            await c.query('SELECT * FROM baton_create_run($1::jsonb)', [PostgresStore.createRunPayload(f.run)])
          ).rows[0] as Row;
          runId = (created.run as Row).id as string;
          if (created.created !== true) outcome = 'deduplicated';
        }
        for (const id of f.cancelRuns ?? []) {
          await c.query(`INSERT INTO requests (run_id, kind, payload, created_at) VALUES ($1, 'cancel', $2, ${NOW})`, [
            id,
            JSON.stringify({ reason: `overlap: ${f.reason}` }),
          ]);
        }
        await c.query(
          'INSERT INTO trigger_firings (trigger_id, at, outcome, reason, run_id, dedupe_key) VALUES ($1, $2, $3, $4, $5, $6)',
          [input.triggerId, f.at, outcome, f.reason, runId, f.run?.dedupeKey ?? null],
        );
        results.push({ outcome, runId });
      }
      await c.query('UPDATE triggers SET cursor = $2, next_fire_at = $3, updated_at = $4 WHERE id = $1', [
        input.triggerId,
        input.cursor === null || input.cursor === undefined ? null : JSON.stringify(input.cursor),
        input.nextFireAt,
        Date.now(),
      ]);
      return results;
    });
  }

  async listFirings(id: string, limit: number): Promise<FiringRecord[]> {
    const rows = await this.q(
      'reading trigger firings',
      'SELECT * FROM trigger_firings WHERE trigger_id = $1 ORDER BY seq DESC LIMIT $2',
      [id, limit],
    );
    return rows.map(toFiring);
  }

  async finishedRuns(flow: string, after: number, limit: number): Promise<RunRecord[]> {
    const rows = await this.q(
      'listing finished runs',
      `SELECT * FROM runs WHERE flow = $1 AND state IN ('succeeded', 'failed', 'cancelled') AND ended_at > $2
       ORDER BY ended_at, id LIMIT $3`,
      [flow, after, limit],
    );
    return rows.map(toRun);
  }

  async activeRuns(flow: string): Promise<RunRecord[]> {
    const rows = await this.q(
      'listing active runs',
      `SELECT * FROM runs WHERE flow = $1 AND state IN ('queued', 'running') ORDER BY created_at`,
      [flow],
    );
    return rows.map(toRun);
  }

  async runsByDedupeKeys(keys: readonly string[]): Promise<RunRecord[]> {
    const unique = [...new Set(keys)];
    if (unique.length === 0) return [];
    // One index range scan per key, bytewise ("C", whatever the database collation; see
    // migration 4): [key, key + '$') holds the key and every `<key>#…`; the few others a
    // range may hold (`<key>!…`) are dropped below.
    const rows = await this.q(
      'reading runs by dedupe key',
      `SELECT k.key AS wanted_key, r.* FROM unnest($1::text[]) AS k(key)
       CROSS JOIN LATERAL (
         SELECT * FROM runs x
         WHERE (x.dedupe_key COLLATE "C") >= (k.key COLLATE "C") AND (x.dedupe_key COLLATE "C") < ((k.key || '$') COLLATE "C")
       ) r`,
      [unique],
    );
    const out = new Map<string, RunRecord>();
    for (const row of rows) {
      const wanted = row.wanted_key as string;
      const key = row.dedupe_key as string;
      if (key === wanted || key.startsWith(`${wanted}#`)) out.set(row.id as string, toRun(row));
    }
    return [...out.values()];
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
    const rows = await this.q(
      'recording a backfill',
      `INSERT INTO backfills (id, flow, trigger_id, spec, source_path, from_at, to_at, max_parallel, rerun, state, total,
         created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING *`,
      [
        input.id,
        input.flow,
        input.triggerId,
        JSON.stringify(input.spec),
        input.sourcePath,
        input.fromAt,
        input.toAt,
        input.maxParallel,
        input.rerun,
        input.state,
        input.total,
        input.createdAt,
      ],
    );
    return toBackfill(rows[0] as Row);
  }

  async getBackfill(id: string): Promise<BackfillRecord | null> {
    const rows = await this.q('reading a backfill', 'SELECT * FROM backfills WHERE id = $1', [id]);
    return rows[0] ? toBackfill(rows[0]) : null;
  }

  async listBackfills(filter: { states?: readonly BackfillState[]; limit?: number } = {}): Promise<BackfillRecord[]> {
    const states = filter.states ?? [];
    const rows = await this.q(
      'listing backfills',
      `SELECT * FROM backfills ${states.length ? 'WHERE state = ANY($2::text[])' : ''}
       ORDER BY created_at DESC, id DESC LIMIT $1`,
      states.length ? [filter.limit ?? 1000, [...states]] : [filter.limit ?? 1000],
    );
    return rows.map(toBackfill);
  }

  async updateBackfill(input: BackfillUpdate): Promise<BackfillUpdateResult | null> {
    return this.tx('moving a backfill', async (c) => {
      const row = (await c.query('SELECT * FROM backfills WHERE id = $1 FOR UPDATE', [input.id])).rows[0] as
        Row | undefined;
      if (!row || Number(row.version) !== input.expectedVersion) return null;
      const current = toBackfill(row);
      const runs: { runId: string; created: boolean }[] = [];
      for (const r of input.runs ?? []) {
        const made = (await c.query('SELECT * FROM baton_create_run($1::jsonb)', [PostgresStore.createRunPayload(r)]))
          .rows[0] as Row;
        runs.push({ runId: (made.run as Row).id as string, created: made.created === true });
      }
      for (const cancel of input.cancelRuns ?? []) {
        await c.query(`INSERT INTO requests (run_id, kind, payload, created_at) VALUES ($1, 'cancel', $2, ${NOW})`, [
          cancel.runId,
          JSON.stringify({ reason: cancel.reason }),
        ]);
      }
      const state = input.state ?? current.state;
      const updated = (
        await c.query(
          `UPDATE backfills SET state = $2, next_index = $3, done_index = $4, reason = $5, ended_at = $6, updated_at = $7,
             version = version + 1
           WHERE id = $1 RETURNING *`,
          [
            input.id,
            state,
            input.nextIndex ?? current.nextIndex,
            input.doneIndex ?? current.doneIndex,
            input.reason === undefined ? current.reason : input.reason,
            state === 'cancelled' || state === 'completed' ? (current.endedAt ?? input.at) : null,
            input.at,
          ],
        )
      ).rows[0] as Row;
      return { backfill: toBackfill(updated), runs };
    });
  }
}
