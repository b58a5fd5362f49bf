/**
 * Numbered SQLite migrations. Each runs once, inside a write transaction, and is recorded
 * in schema_migrations; PostgreSQL migrations use the same numbers. A database with a
 * migration newer than the last one here is refused (STORE_TOO_NEW).
 */

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** SQLite's clock in milliseconds: the same expression the store's statements use. */
const NOW_MS = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, task runs, events, timers, requests, logs',
    sql: `
CREATE TABLE IF NOT EXISTS flow_versions (
  flow TEXT NOT NULL,
  version TEXT NOT NULL,
  spec TEXT NOT NULL,
  source_path TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (flow, version)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  flow TEXT NOT NULL,
  version TEXT NOT NULL,
  state TEXT NOT NULL,
  params TEXT NOT NULL,
  dedupe_key TEXT UNIQUE,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER,
  error TEXT,
  owner TEXT,
  epoch INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  last_seq INTEGER NOT NULL DEFAULT 0,
  task_count INTEGER NOT NULL,
  max_active_runs INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, created_at);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, created_at);

CREATE TABLE IF NOT EXISTS task_runs (
  run_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER,
  ended_at INTEGER,
  skip_reason TEXT,
  output TEXT,
  error TEXT,
  PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS timers (
  run_id TEXT NOT NULL,
  task_idx INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, task_idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due_at);

CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_run ON requests (run_id);

CREATE TABLE IF NOT EXISTS logs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  stream TEXT NOT NULL,
  at INTEGER NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (run_id, seq);
`,
  },
  {
    version: 2,
    name: 'task queue for worker processes, scheduler leadership',
    sql: `
CREATE TABLE IF NOT EXISTS task_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  task_idx INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  labels TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  worker TEXT,
  token INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER,
  cancel INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS task_queue_ready ON task_queue (status, id);
CREATE INDEX IF NOT EXISTS task_queue_by_run ON task_queue (run_id, status);

CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);

CREATE TABLE IF NOT EXISTS leadership (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  lease_until INTEGER NOT NULL
);
`,
  },
  {
    version: 3,
    name: 'triggers, their firings, run priority',
    sql: `
CREATE TABLE IF NOT EXISTS triggers (
  id TEXT PRIMARY KEY,
  flow TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  source_path TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  cursor TEXT,
  next_fire_at INTEGER,
  registered_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS triggers_by_flow ON triggers (flow);

CREATE TABLE IF NOT EXISTS trigger_firings (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  trigger_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  run_id TEXT,
  dedupe_key TEXT
);
CREATE INDEX IF NOT EXISTS trigger_firings_by_trigger ON trigger_firings (trigger_id, seq);

ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN trigger_id TEXT;
CREATE INDEX IF NOT EXISTS runs_active_by_flow ON runs (flow, created_at) WHERE state IN ('queued', 'running');
`,
  },
  {
    version: 4,
    name: 'backfills',
    sql: `
CREATE TABLE IF NOT EXISTS backfills (
  id TEXT PRIMARY KEY,
  flow TEXT NOT NULL,
  trigger_id TEXT NOT NULL,
  spec TEXT NOT NULL,
  source_path TEXT NOT NULL,
  from_at INTEGER NOT NULL,
  to_at INTEGER NOT NULL,
  max_parallel INTEGER NOT NULL,
  rerun INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  total INTEGER NOT NULL,
  next_index INTEGER NOT NULL DEFAULT 0,
  done_index INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ended_at INTEGER,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS backfills_by_state ON backfills (state, created_at);
`,
  },
  {
    version: 5,
    name: 'parent and child runs',
    // Task runs created at run time, the task state `waiting` and the request kinds
    // `signal` and `approval` need no schema change: states and kinds are unchecked text.
    sql: `
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
ALTER TABLE runs ADD COLUMN parent_task TEXT;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id, created_at) WHERE parent_run_id IS NOT NULL;
`,
  },
  {
    version: 6,
    name: 'depth of child runs, children per run',
    // Stored when a child is created, so that its limits are checked without walking the
    // parent chain or counting siblings; the runs already there get theirs computed once.
    sql: `
ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN child_runs INTEGER NOT NULL DEFAULT 0;
WITH RECURSIVE chain (id, depth) AS (
  SELECT id, 0 FROM runs WHERE parent_run_id IS NULL
  UNION ALL
  SELECT r.id, chain.depth + 1 FROM runs r JOIN chain ON r.parent_run_id = chain.id
)
UPDATE runs SET depth = coalesce((SELECT depth FROM chain WHERE chain.id = runs.id), 1)
  WHERE parent_run_id IS NOT NULL;
UPDATE runs SET child_runs = (SELECT count(*) FROM runs c WHERE c.parent_run_id = runs.id)
  WHERE id IN (SELECT parent_run_id FROM runs WHERE parent_run_id IS NOT NULL);
`,
  },
  {
    version: 7,
    name: 'parked runs and their wake-ups',
    // A run whose open work only waits (a sleep, a retry backoff, an event, an approval, a
    // child run) is released by its owner and marked parked, with the time its earliest timer
    // is due in wake_at. Claims take parked runs only once wake_at has passed; a request for
    // the run (a signal, a decision, a cancel) and the end of one of its child runs bring
    // wake_at forward to now, in the transaction that records them, so no wake-up is lost.
    sql: `
ALTER TABLE runs ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN wake_at INTEGER;
CREATE INDEX IF NOT EXISTS runs_parked_by_wake ON runs (wake_at) WHERE parked = 1;
CREATE INDEX IF NOT EXISTS runs_claimable ON runs (priority, created_at)
  WHERE parked = 0 AND state IN ('queued', 'running');
CREATE TRIGGER IF NOT EXISTS requests_wake_run AFTER INSERT ON requests
BEGIN
  UPDATE runs SET wake_at = ${NOW_MS}
    WHERE id = NEW.run_id AND parked = 1 AND (wake_at IS NULL OR wake_at > ${NOW_MS});
END;
CREATE TRIGGER IF NOT EXISTS runs_end_wakes_parent AFTER UPDATE OF state ON runs
  WHEN NEW.parent_run_id IS NOT NULL AND NEW.state IN ('succeeded', 'failed', 'cancelled')
    AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled')
BEGIN
  UPDATE runs SET wake_at = ${NOW_MS}
    WHERE id = NEW.parent_run_id AND parked = 1 AND (wake_at IS NULL OR wake_at > ${NOW_MS});
END;
`,
  },
  {
    // Migration 8 changed PostgreSQL's functions only; SQLite has no counterpart.
    version: 9,
    name: 'run labels',
    // Labels are fixed when a run is created. run_labels holds one row per label, kept by
    // triggers, so that a filter on labels reads an index range per label instead of
    // decoding the JSON of every run.
    sql: `
ALTER TABLE runs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS run_labels (
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  run_id TEXT NOT NULL,
  PRIMARY KEY (key, value, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_labels_by_run ON run_labels (run_id);
CREATE TRIGGER IF NOT EXISTS runs_labels_added AFTER INSERT ON runs WHEN NEW.labels <> '{}'
BEGIN
  INSERT OR IGNORE INTO run_labels (key, value, run_id) SELECT key, value, NEW.id FROM json_each(NEW.labels);
END;
CREATE TRIGGER IF NOT EXISTS runs_labels_removed AFTER DELETE ON runs WHEN OLD.labels <> '{}'
BEGIN
  DELETE FROM run_labels WHERE run_id = OLD.id;
END;
`,
  },
  {
    version: 10,
    name: 'claim indexes',
    // A claim reads orphaned and queued runs in claim order from indexes of their own,
    // stopping at its limit; the index of migration 7 mixed both and needed a sort of every
    // active run, parked ones too, at each claim.
    sql: `
CREATE INDEX IF NOT EXISTS runs_queued ON runs (priority DESC, created_at) WHERE state = 'queued' AND parked = 0;
CREATE INDEX IF NOT EXISTS runs_orphans ON runs (lease_until) WHERE state = 'running' AND parked = 0;
DROP INDEX IF EXISTS runs_claimable;
`,
  },
  {
    // Migration 11 changed PostgreSQL's functions only; SQLite has no counterpart.
    version: 12,
    name: 'data objects and their accesses',
    // One row per object read or written through a mount, by its path (keys compare
    // bytewise: listings page in code point order), and one row per read or write, kept
    // when the object's row goes: they are its lineage. The CHECKs refuse a row whose
    // path, mount and key disagree, and an access that is neither a read nor a write.
    sql: `
CREATE TABLE IF NOT EXISTS data_objects (
  path TEXT PRIMARY KEY,
  mount TEXT NOT NULL,
  key TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  etag TEXT,
  sha256 TEXT,
  schema TEXT,
  content_type TEXT,
  producer_run_id TEXT,
  producer_task_id TEXT,
  written_at INTEGER,
  last_read_at INTEGER,
  CHECK (path = 'data://' || mount || '/' || key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS data_accesses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT,
  task_id TEXT,
  attempt INTEGER,
  path TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('read', 'write')),
  size INTEGER NOT NULL CHECK (size >= 0),
  etag TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS data_accesses_by_run ON data_accesses (run_id, id);
CREATE INDEX IF NOT EXISTS data_accesses_by_path ON data_accesses (path, id);
`,
  },
  {
    version: 13,
    name: 'assets, their lineage and their checks',
    // One row per materialization of an asset (a version, made by one attempt: recording
    // twice keeps the first), its inputs (the versions of the assets it was made from,
    // lineage across flows) and its check results; the assets table points each key at its
    // latest materialization, so that listings and staleness read one row per asset.
    sql: `
CREATE TABLE IF NOT EXISTS asset_materializations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  asset_key TEXT NOT NULL,
  version TEXT NOT NULL,
  run_id TEXT NOT NULL,
  flow TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  location TEXT NOT NULL,
  size INTEGER,
  row_count INTEGER,
  schema TEXT,
  UNIQUE (run_id, task_id, attempt, asset_key)
);
CREATE INDEX IF NOT EXISTS asset_materializations_by_key ON asset_materializations (asset_key, id);

CREATE TABLE IF NOT EXISTS asset_inputs (
  materialization_id INTEGER NOT NULL,
  input_key TEXT NOT NULL,
  input_version TEXT,
  PRIMARY KEY (materialization_id, input_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS asset_inputs_by_key ON asset_inputs (input_key, materialization_id);

CREATE TABLE IF NOT EXISTS asset_check_results (
  materialization_id INTEGER NOT NULL,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('error', 'warn')),
  passed INTEGER NOT NULL,
  failing_count INTEGER NOT NULL CHECK (failing_count >= 0),
  sample TEXT NOT NULL,
  message TEXT,
  PRIMARY KEY (materialization_id, position)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS assets (
  key TEXT PRIMARY KEY,
  latest_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS assets_by_latest ON assets (latest_id);
`,
  },
  {
    version: 14,
    name: 'the result cache',
    // One row per cache key (a hash of everything a task's attempt read): the attempt that
    // last succeeded with it, and its output as JSON (an output stored by reference keeps
    // its marker). A later success with the same key replaces the row.
    sql: `
CREATE TABLE IF NOT EXISTS result_cache (
  key TEXT PRIMARY KEY,
  flow TEXT NOT NULL,
  task_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  task_run_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  output TEXT NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
`,
  },
];
