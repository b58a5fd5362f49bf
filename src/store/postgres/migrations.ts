/**
 * Numbered PostgreSQL migrations, the same numbers as the SQLite ones. They run inside one
 * transaction under an advisory lock, so two processes starting at once migrate once. The
 * hot paths (group commit, task completion) are SQL functions so that each is one round
 * trip to the server.
 */
import type { Migration } from '../sqlite/migrations.js';

const NOW = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'runs, task runs, events, timers, requests, logs',
    sql: `
CREATE TABLE IF NOT EXISTS flow_versions (
  flow text NOT NULL,
  version text NOT NULL,
  spec text NOT NULL,
  source_path text NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY (flow, version)
);

CREATE TABLE IF NOT EXISTS runs (
  id text PRIMARY KEY,
  flow text NOT NULL,
  version text NOT NULL,
  state text NOT NULL,
  params jsonb NOT NULL,
  dedupe_key text UNIQUE,
  created_at bigint NOT NULL,
  started_at bigint,
  ended_at bigint,
  error jsonb,
  owner text,
  epoch bigint NOT NULL DEFAULT 0,
  lease_until bigint,
  last_seq bigint NOT NULL DEFAULT 0,
  task_count integer NOT NULL,
  max_active_runs integer
);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state, created_at);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, created_at);
CREATE INDEX IF NOT EXISTS runs_open ON runs (created_at) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS runs_finished ON runs (ended_at) WHERE state IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE IF NOT EXISTS task_runs (
  run_id text NOT NULL,
  idx integer NOT NULL,
  task_id text NOT NULL,
  state text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  started_at bigint,
  ended_at bigint,
  skip_reason text,
  output jsonb,
  error jsonb,
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE IF NOT EXISTS events (
  run_id text NOT NULL,
  seq bigint NOT NULL,
  type text NOT NULL,
  at bigint NOT NULL,
  data jsonb NOT NULL,
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE IF NOT EXISTS timers (
  run_id text NOT NULL,
  task_idx integer NOT NULL,
  due_at bigint NOT NULL,
  PRIMARY KEY (run_id, task_idx)
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due_at);

CREATE TABLE IF NOT EXISTS requests (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_run ON requests (run_id);

CREATE TABLE IF NOT EXISTS logs (
  seq bigserial PRIMARY KEY,
  run_id text NOT NULL,
  task_id text NOT NULL,
  attempt integer NOT NULL,
  stream text NOT NULL,
  at bigint NOT NULL,
  text text NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (run_id, seq);
`,
  },
  {
    version: 2,
    name: 'task queue for worker processes, scheduler leadership',
    sql: `
CREATE TABLE IF NOT EXISTS task_queue (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL,
  task_idx integer NOT NULL,
  task_id text NOT NULL,
  attempt integer NOT NULL,
  labels jsonb NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL,
  worker text,
  token integer NOT NULL DEFAULT 0,
  lease_until bigint,
  cancel boolean NOT NULL DEFAULT false,
  result jsonb,
  created_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS task_queue_ready ON task_queue (id) WHERE status = 'ready';
CREATE INDEX IF NOT EXISTS task_queue_outcomes ON task_queue (run_id) WHERE status IN ('done', 'claimed');
CREATE INDEX IF NOT EXISTS task_queue_by_run ON task_queue (run_id, task_idx, attempt);

CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);

CREATE TABLE IF NOT EXISTS leadership (
  name text PRIMARY KEY,
  holder text NOT NULL,
  epoch bigint NOT NULL,
  lease_until bigint NOT NULL
);

CREATE OR REPLACE FUNCTION baton_now() RETURNS bigint LANGUAGE sql VOLATILE AS $f$ SELECT ${NOW} $f$;

-- One group commit: for each entry, check the lease epoch (fencing), append events, update
-- the derived rows, queue attempts, and answer requests. Returns the fenced run ids.
CREATE OR REPLACE FUNCTION baton_commit(batch jsonb) RETURNS text[] LANGUAGE plpgsql AS $f$
DECLARE
  e jsonb;
  rid text;
  cur_epoch bigint;
  cur_seq bigint;
  fenced text[] := '{}';
  notify_tasks boolean := false;
BEGIN
  FOR e IN SELECT value FROM jsonb_array_elements(batch) ORDER BY value->>'runId' LOOP
    rid := e->>'runId';
    SELECT r.epoch, r.last_seq INTO cur_epoch, cur_seq FROM runs r WHERE r.id = rid FOR UPDATE;
    IF NOT FOUND OR cur_epoch <> (e->>'epoch')::bigint THEN
      fenced := fenced || rid;
      CONTINUE;
    END IF;
    INSERT INTO events (run_id, seq, type, at, data)
      SELECT rid, cur_seq + x.ord, x.ev->>'type', (x.ev->>'at')::bigint, x.ev
      FROM jsonb_array_elements(e->'events') WITH ORDINALITY AS x(ev, ord);
    cur_seq := cur_seq + jsonb_array_length(e->'events');
    IF e ? 'run' THEN
      UPDATE runs SET state = e->'run'->>'state',
        started_at = (e->'run'->>'startedAt')::bigint,
        ended_at = (e->'run'->>'endedAt')::bigint,
        error = NULLIF(e->'run'->'error', 'null'::jsonb),
        last_seq = cur_seq
      WHERE id = rid;
    ELSE
      UPDATE runs SET last_seq = cur_seq WHERE id = rid;
    END IF;
    UPDATE task_runs t SET state = x.state, attempts = x.attempts, started_at = x."startedAt", ended_at = x."endedAt",
        skip_reason = x."skipReason", output = x.output, error = NULLIF(x.error, 'null'::jsonb)
      FROM jsonb_to_recordset(e->'tasks') AS x("index" integer, state text, attempts integer, "startedAt" bigint,
        "endedAt" bigint, "skipReason" text, output jsonb, error jsonb)
      WHERE t.run_id = rid AND t.idx = x."index";
    DELETE FROM timers t USING jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
      WHERE t.run_id = rid AND t.task_idx = x.task AND x."dueAt" IS NULL;
    INSERT INTO timers (run_id, task_idx, due_at)
      SELECT rid, x.task, x."dueAt" FROM jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
      WHERE x."dueAt" IS NOT NULL
      ON CONFLICT (run_id, task_idx) DO UPDATE SET due_at = excluded.due_at;
    INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
      SELECT rid, x."taskId", x.attempt, x.stream, x.at, x.text
      FROM jsonb_to_recordset(e->'logs') AS x("taskId" text, attempt integer, stream text, at bigint, text text);
    IF e ? 'answered' THEN
      DELETE FROM requests WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text(e->'answered'));
    END IF;
    IF e ? 'harvested' THEN
      DELETE FROM task_queue WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text(e->'harvested'));
    END IF;
    IF e ? 'cancels' THEN
      UPDATE task_queue q SET cancel = true FROM jsonb_to_recordset(e->'cancels') AS x(task integer, attempt integer)
        WHERE q.run_id = rid AND q.task_idx = x.task AND q.attempt = x.attempt;
    END IF;
    IF e ? 'dispatches' AND jsonb_array_length(e->'dispatches') > 0 THEN
      INSERT INTO task_queue (run_id, task_idx, task_id, attempt, labels, payload, status, created_at)
        SELECT rid, x.task, x."taskId", x.attempt, x.labels, x.payload, 'ready', ${NOW}
        FROM jsonb_to_recordset(e->'dispatches') AS x(task integer, "taskId" text, attempt integer, labels jsonb, payload jsonb);
      notify_tasks := true;
    END IF;
    -- A finished run has no more use for its queue rows; a worker still holding one learns
    -- at its next renewal that the claim is gone, and stops.
    IF e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled') THEN
      DELETE FROM task_queue WHERE run_id = rid;
    END IF;
  END LOOP;
  IF notify_tasks THEN PERFORM pg_notify('baton_tasks', ''); END IF;
  RETURN fenced;
END
$f$;

-- Worker completions, fenced by claim token; wakes the schedulers. Returns refused ids.
CREATE OR REPLACE FUNCTION baton_complete(results jsonb) RETURNS bigint[] LANGUAGE plpgsql AS $f$
DECLARE
  done bigint[];
BEGIN
  WITH u AS (
    UPDATE task_queue q SET status = 'done', result = x.result
    FROM jsonb_to_recordset(results) AS x(id bigint, token integer, result jsonb)
    WHERE q.id = x.id AND q.token = x.token AND q.status = 'claimed'
    RETURNING q.id
  ) SELECT coalesce(array_agg(id), '{}') INTO done FROM u;
  PERFORM pg_notify('baton_results', '');
  RETURN ARRAY(SELECT x.id FROM jsonb_to_recordset(results) AS x(id bigint) WHERE NOT x.id = ANY(done));
END
$f$;
`,
  },
];
