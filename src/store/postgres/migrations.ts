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
  n_events integer;
  cur_seq bigint;
  fenced text[] := '{}';
  notify_tasks boolean := false;
BEGIN
  FOR e IN SELECT value FROM jsonb_array_elements(batch) ORDER BY value->>'runId' LOOP
    rid := e->>'runId';
    n_events := jsonb_array_length(e->'events');
    -- The epoch check and the row lock in one statement: a stale owner matches no row.
    UPDATE runs SET last_seq = last_seq + n_events,
        state = CASE WHEN e ? 'run' THEN e->'run'->>'state' ELSE state END,
        started_at = CASE WHEN e ? 'run' THEN (e->'run'->>'startedAt')::bigint ELSE started_at END,
        ended_at = CASE WHEN e ? 'run' THEN (e->'run'->>'endedAt')::bigint ELSE ended_at END,
        error = CASE WHEN e ? 'run' THEN NULLIF(e->'run'->'error', 'null'::jsonb) ELSE error END
      WHERE id = rid AND epoch = (e->>'epoch')::bigint
      RETURNING last_seq - n_events INTO cur_seq;
    IF NOT FOUND THEN
      fenced := fenced || rid;
      CONTINUE;
    END IF;
    IF n_events > 0 THEN
      INSERT INTO events (run_id, seq, type, at, data)
        SELECT rid, cur_seq + x.ord, x.ev->>'type', (x.ev->>'at')::bigint, x.ev
        FROM jsonb_array_elements(e->'events') WITH ORDINALITY AS x(ev, ord);
    END IF;
    IF jsonb_array_length(e->'tasks') > 0 THEN
      UPDATE task_runs t SET state = x.state, attempts = x.attempts, started_at = x."startedAt", ended_at = x."endedAt",
          skip_reason = x."skipReason", output = x.output, error = NULLIF(x.error, 'null'::jsonb)
        FROM jsonb_to_recordset(e->'tasks') AS x("index" integer, state text, attempts integer, "startedAt" bigint,
          "endedAt" bigint, "skipReason" text, output jsonb, error jsonb)
        WHERE t.run_id = rid AND t.idx = x."index";
    END IF;
    IF jsonb_array_length(e->'timers') > 0 THEN
      DELETE FROM timers t USING jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE t.run_id = rid AND t.task_idx = x.task AND x."dueAt" IS NULL;
      INSERT INTO timers (run_id, task_idx, due_at)
        SELECT rid, x.task, x."dueAt" FROM jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE x."dueAt" IS NOT NULL
        ON CONFLICT (run_id, task_idx) DO UPDATE SET due_at = excluded.due_at;
    END IF;
    IF jsonb_array_length(e->'logs') > 0 THEN
      INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
        SELECT rid, x."taskId", x.attempt, x.stream, x.at, x.text
        FROM jsonb_to_recordset(e->'logs') AS x("taskId" text, attempt integer, stream text, at bigint, text text);
    END IF;
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
-- Committed without waiting for the WAL flush: an outcome counts only once the scheduler's
-- own (synchronous) commit records it, and that commit flushes this one with it. If the
-- server crashes first, the claim simply lapses and the attempt runs again.
CREATE OR REPLACE FUNCTION baton_complete(results jsonb) RETURNS bigint[] LANGUAGE plpgsql AS $f$
DECLARE
  done bigint[];
  outcomes text;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  WITH u AS (
    UPDATE task_queue q SET status = 'done', result = x.result
    FROM jsonb_to_recordset(results) AS x(id bigint, token integer, result jsonb)
    WHERE q.id = x.id AND q.token = x.token AND q.status = 'claimed'
    RETURNING q.id, q.run_id, q.task_idx, q.attempt, q.result
  )
  SELECT coalesce(array_agg(id), '{}'),
         json_agg(json_build_object('id', id::text, 'runId', run_id, 'task', task_idx, 'attempt', attempt, 'result', result))::text
  INTO done, outcomes FROM u;
  -- Small outcomes travel in the notification itself, sparing the scheduler a query.
  PERFORM pg_notify('baton_results', CASE WHEN length(outcomes) < 7500 THEN outcomes ELSE '' END);
  RETURN ARRAY(SELECT x.id FROM jsonb_to_recordset(results) AS x(id bigint) WHERE NOT x.id = ANY(done));
END
$f$;

-- Claims ready attempts for a worker (labels it has, oldest first), skipping rows other
-- workers are claiming. Committed without waiting for the WAL flush, for the same reason
-- as baton_complete: a claim lost in a server crash only means the attempt runs again.
CREATE OR REPLACE FUNCTION baton_claim(p_worker text, p_lease_ms bigint, p_labels jsonb, p_limit integer)
RETURNS TABLE (id bigint, run_id text, task_idx integer, task_id text, attempt integer, token integer, payload jsonb,
  flow text, version text)
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
  WITH picked AS (
    SELECT q.id FROM task_queue q WHERE q.status = 'ready' AND q.labels <@ p_labels
    ORDER BY q.id LIMIT p_limit FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE task_queue q SET status = 'claimed', worker = p_worker, token = q.token + 1, lease_until = ${NOW} + p_lease_ms
    FROM picked WHERE q.id = picked.id
    RETURNING q.id, q.run_id, q.task_idx, q.task_id, q.attempt, q.token, q.payload
  )
  SELECT c.id, c.run_id, c.task_idx, c.task_id, c.attempt, c.token, c.payload, r.flow, r.version
  FROM claimed c JOIN runs r ON r.id = c.run_id ORDER BY c.id;
END
$f$;
`,
  },
  {
    version: 3,
    name: 'triggers, their firings, run priority',
    sql: `
CREATE TABLE IF NOT EXISTS triggers (
  id text PRIMARY KEY,
  flow text NOT NULL,
  name text NOT NULL,
  kind text NOT NULL,
  spec text NOT NULL,
  source_path text NOT NULL,
  paused boolean NOT NULL DEFAULT false,
  cursor text,
  next_fire_at bigint,
  registered_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS triggers_by_flow ON triggers (flow);

CREATE TABLE IF NOT EXISTS trigger_firings (
  seq bigserial PRIMARY KEY,
  trigger_id text NOT NULL,
  at bigint NOT NULL,
  outcome text NOT NULL,
  reason text NOT NULL,
  run_id text,
  dedupe_key text
);
CREATE INDEX IF NOT EXISTS trigger_firings_by_trigger ON trigger_firings (trigger_id, seq);

ALTER TABLE runs ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS trigger_id text;
CREATE INDEX IF NOT EXISTS runs_active_by_flow ON runs (flow, created_at) WHERE state IN ('queued', 'running');

-- Creates a run with its task runs and first event in one round trip; with a dedupe key
-- that exists already, returns that run instead. Wakes the schedulers.
CREATE OR REPLACE FUNCTION baton_create_run(p jsonb) RETURNS TABLE (created boolean, run jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  r runs;
  key text := p->>'dedupeKey';
BEGIN
  IF key IS NOT NULL THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    IF FOUND THEN
      RETURN QUERY SELECT false, to_jsonb(r);
      RETURN;
    END IF;
  END IF;
  INSERT INTO flow_versions (flow, version, spec, source_path, created_at)
    VALUES (p->'flow'->>'flow', p->'flow'->>'version', p->'flow'->>'spec', p->'flow'->>'sourcePath',
      (p->'flow'->>'createdAt')::bigint)
    ON CONFLICT DO NOTHING;
  INSERT INTO runs (id, flow, version, state, params, dedupe_key, created_at, task_count, max_active_runs, last_seq,
      priority, trigger_id)
    VALUES (p->>'id', p->'flow'->>'flow', p->'flow'->>'version', 'queued', p->'params', key,
      (p->>'createdAt')::bigint, jsonb_array_length(p->'taskIds'), (p->>'maxActiveRuns')::integer, 1,
      coalesce((p->>'priority')::integer, 0), p->>'triggerId')
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING * INTO r;
  IF NOT FOUND THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    RETURN QUERY SELECT false, to_jsonb(r);
    RETURN;
  END IF;
  INSERT INTO task_runs (run_id, idx, task_id, state)
    SELECT r.id, t.ord - 1, t.id, 'pending' FROM jsonb_array_elements_text(p->'taskIds') WITH ORDINALITY AS t(id, ord);
  INSERT INTO events (run_id, seq, type, at, data) VALUES (r.id, 1, 'run_created', (p->>'createdAt')::bigint, p->'event');
  PERFORM pg_notify('baton_runs', r.id);
  RETURN QUERY SELECT true, to_jsonb(r);
END
$f$;

-- Claims up to p_limit runs that are queued or whose owner's lease lapsed: running ones
-- first, then by priority and age, respecting each flow's max_active_runs. One round trip;
-- committed without waiting for the WAL flush, since the claimant's first (synchronous)
-- commit makes the claim durable, and a claim lost in a crash only fences that claimant out.
CREATE OR REPLACE FUNCTION baton_claim_runs(p_owner text, p_lease_ms bigint, p_limit integer)
RETURNS TABLE (id text, epoch bigint) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  active integer;
  claimed integer := 0;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR c IN
    SELECT r.id, r.flow, r.state, r.max_active_runs FROM runs r
    WHERE r.state IN ('queued', 'running') AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    ORDER BY r.state = 'running' DESC, r.priority DESC, r.created_at
    LIMIT p_limit * 4 FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    IF c.state = 'queued' AND c.max_active_runs IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtext('baton_flow:' || c.flow));
      SELECT count(*) INTO active FROM runs x WHERE x.flow = c.flow AND x.id <> c.id
        AND (x.state = 'running' OR (x.state = 'queued' AND x.owner IS NOT NULL AND x.lease_until >= ${NOW}));
      CONTINUE WHEN active >= c.max_active_runs;
    END IF;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    -- Claims the previous owner harvested as lost but never recorded (it died or was fenced
    -- before its commit) are reported again by the new owner's first harvest.
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
END
$f$;
`,
  },
  {
    version: 4,
    name: 'backfills',
    sql: `
CREATE TABLE IF NOT EXISTS backfills (
  id text PRIMARY KEY,
  flow text NOT NULL,
  trigger_id text NOT NULL,
  spec text NOT NULL,
  source_path text NOT NULL,
  from_at bigint NOT NULL,
  to_at bigint NOT NULL,
  max_parallel integer NOT NULL,
  rerun boolean NOT NULL DEFAULT false,
  state text NOT NULL,
  total integer NOT NULL,
  next_index integer NOT NULL DEFAULT 0,
  done_index integer NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  ended_at bigint,
  reason text
);
CREATE INDEX IF NOT EXISTS backfills_by_state ON backfills (state, created_at);
-- Prefix lookups of dedupe keys (\`<key>#…\`, reruns of an interval) compare bytewise.
CREATE INDEX IF NOT EXISTS runs_dedupe_key_c ON runs ((dedupe_key COLLATE "C")) WHERE dedupe_key IS NOT NULL;
`,
  },
  {
    version: 5,
    name: 'parent and child runs, task runs created at run time',
    // The task state `waiting` and the request kinds `signal` and `approval` need no schema
    // change: states and kinds are unchecked text, request payloads jsonb.
    sql: `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_run_id text;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_task text;
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id, created_at) WHERE parent_run_id IS NOT NULL;

-- As in migration 3, and records the parent run and task of a subflow run.
CREATE OR REPLACE FUNCTION baton_create_run(p jsonb) RETURNS TABLE (created boolean, run jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  r runs;
  key text := p->>'dedupeKey';
BEGIN
  IF key IS NOT NULL THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    IF FOUND THEN
      RETURN QUERY SELECT false, to_jsonb(r);
      RETURN;
    END IF;
  END IF;
  INSERT INTO flow_versions (flow, version, spec, source_path, created_at)
    VALUES (p->'flow'->>'flow', p->'flow'->>'version', p->'flow'->>'spec', p->'flow'->>'sourcePath',
      (p->'flow'->>'createdAt')::bigint)
    ON CONFLICT DO NOTHING;
  INSERT INTO runs (id, flow, version, state, params, dedupe_key, created_at, task_count, max_active_runs, last_seq,
      priority, trigger_id, parent_run_id, parent_task)
    VALUES (p->>'id', p->'flow'->>'flow', p->'flow'->>'version', 'queued', p->'params', key,
      (p->>'createdAt')::bigint, jsonb_array_length(p->'taskIds'), (p->>'maxActiveRuns')::integer, 1,
      coalesce((p->>'priority')::integer, 0), p->>'triggerId', p->'parent'->>'runId', p->'parent'->>'task')
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING * INTO r;
  IF NOT FOUND THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    RETURN QUERY SELECT false, to_jsonb(r);
    RETURN;
  END IF;
  INSERT INTO task_runs (run_id, idx, task_id, state)
    SELECT r.id, t.ord - 1, t.id, 'pending' FROM jsonb_array_elements_text(p->'taskIds') WITH ORDINALITY AS t(id, ord);
  INSERT INTO events (run_id, seq, type, at, data) VALUES (r.id, 1, 'run_created', (p->>'createdAt')::bigint, p->'event');
  PERFORM pg_notify('baton_runs', r.id);
  RETURN QUERY SELECT true, to_jsonb(r);
END
$f$;

-- As in migration 2, except that task patches are upserted: a run grows task runs while it
-- runs (one per map item), created by the commit that first records them, in one statement
-- however many there are. A task run's id is fixed when its row is created. The patches of
-- one entry name each index once (the store keeps the last), as ON CONFLICT DO UPDATE needs.
-- Outputs are read with ->, which keeps a JSON null output apart from no output (an absent
-- key), as SQLite does; jsonb_to_recordset would make both SQL NULL.
CREATE OR REPLACE FUNCTION baton_commit(batch jsonb) RETURNS text[] LANGUAGE plpgsql AS $f$
DECLARE
  e jsonb;
  rid text;
  n_events integer;
  cur_seq bigint;
  cur_count integer;
  highest integer;
  fenced text[] := '{}';
  notify_tasks boolean := false;
BEGIN
  FOR e IN SELECT value FROM jsonb_array_elements(batch) ORDER BY value->>'runId' LOOP
    rid := e->>'runId';
    n_events := jsonb_array_length(e->'events');
    -- The epoch check and the row lock in one statement: a stale owner matches no row.
    UPDATE runs SET last_seq = last_seq + n_events,
        state = CASE WHEN e ? 'run' THEN e->'run'->>'state' ELSE state END,
        started_at = CASE WHEN e ? 'run' THEN (e->'run'->>'startedAt')::bigint ELSE started_at END,
        ended_at = CASE WHEN e ? 'run' THEN (e->'run'->>'endedAt')::bigint ELSE ended_at END,
        error = CASE WHEN e ? 'run' THEN NULLIF(e->'run'->'error', 'null'::jsonb) ELSE error END
      WHERE id = rid AND epoch = (e->>'epoch')::bigint
      RETURNING last_seq - n_events, task_count INTO cur_seq, cur_count;
    IF NOT FOUND THEN
      fenced := fenced || rid;
      CONTINUE;
    END IF;
    IF n_events > 0 THEN
      INSERT INTO events (run_id, seq, type, at, data)
        SELECT rid, cur_seq + x.ord, x.ev->>'type', (x.ev->>'at')::bigint, x.ev
        FROM jsonb_array_elements(e->'events') WITH ORDINALITY AS x(ev, ord);
    END IF;
    IF jsonb_array_length(e->'tasks') > 0 THEN
      WITH up AS (
        INSERT INTO task_runs AS t (run_id, idx, task_id, state, attempts, started_at, ended_at, skip_reason, output, error)
          SELECT rid, (x.p->>'index')::integer, x.p->>'taskId', x.p->>'state', (x.p->>'attempts')::integer,
            (x.p->>'startedAt')::bigint, (x.p->>'endedAt')::bigint, x.p->>'skipReason', x.p->'output',
            NULLIF(x.p->'error', 'null'::jsonb)
          FROM jsonb_array_elements(e->'tasks') AS x(p)
        ON CONFLICT (run_id, idx) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
          started_at = excluded.started_at, ended_at = excluded.ended_at, skip_reason = excluded.skip_reason,
          output = excluded.output, error = excluded.error
        RETURNING t.idx
      )
      SELECT max(idx) INTO highest FROM up;
      -- Rows past the last known index may be new (the engine appends task runs at the
      -- end): keep task_count the number of task runs.
      IF highest >= cur_count THEN
        UPDATE runs SET task_count = (SELECT count(*) FROM task_runs WHERE run_id = rid) WHERE id = rid;
      END IF;
    END IF;
    IF jsonb_array_length(e->'timers') > 0 THEN
      DELETE FROM timers t USING jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE t.run_id = rid AND t.task_idx = x.task AND x."dueAt" IS NULL;
      INSERT INTO timers (run_id, task_idx, due_at)
        SELECT rid, x.task, x."dueAt" FROM jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE x."dueAt" IS NOT NULL
        ON CONFLICT (run_id, task_idx) DO UPDATE SET due_at = excluded.due_at;
    END IF;
    IF jsonb_array_length(e->'logs') > 0 THEN
      INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
        SELECT rid, x."taskId", x.attempt, x.stream, x.at, x.text
        FROM jsonb_to_recordset(e->'logs') AS x("taskId" text, attempt integer, stream text, at bigint, text text);
    END IF;
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
`,
  },
  {
    version: 6,
    name: 'depth of child runs, children per run',
    // Stored when a child is created, so that its limits are checked without walking the
    // parent chain or counting siblings; the runs already there get theirs computed once.
    sql: `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS depth integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS child_runs integer NOT NULL DEFAULT 0;
WITH RECURSIVE chain (id, depth) AS (
  SELECT id, 0 FROM runs WHERE parent_run_id IS NULL
  UNION ALL
  SELECT r.id, chain.depth + 1 FROM runs r JOIN chain ON r.parent_run_id = chain.id
)
UPDATE runs SET depth = coalesce((SELECT depth FROM chain WHERE chain.id = runs.id), 1)
  WHERE parent_run_id IS NOT NULL;
UPDATE runs SET child_runs = c.n
  FROM (SELECT parent_run_id, count(*) AS n FROM runs WHERE parent_run_id IS NOT NULL GROUP BY parent_run_id) c
  WHERE runs.id = c.parent_run_id;

-- As in migration 5, and a child run gets its depth (its parent's + 1) and is counted
-- among its parent's children. With p.parent.limits, a child deeper than limits.depth, or
-- one more than limits.childRuns children, is refused: the answer is created = false with
-- run = { refused: 'depth' | 'child_runs', value }, and nothing is written. The parent row
-- is locked first, so that children created at once are counted one after the other.
CREATE OR REPLACE FUNCTION baton_create_run(p jsonb) RETURNS TABLE (created boolean, run jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  r runs;
  key text := p->>'dedupeKey';
  parent_id text := p->'parent'->>'runId';
  parent_depth integer;
  parent_children integer;
  child_depth integer := 0;
BEGIN
  IF key IS NOT NULL THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    IF FOUND THEN
      RETURN QUERY SELECT false, to_jsonb(r);
      RETURN;
    END IF;
  END IF;
  IF parent_id IS NOT NULL THEN
    SELECT depth, child_runs INTO parent_depth, parent_children FROM runs WHERE id = parent_id FOR UPDATE;
    child_depth := coalesce(parent_depth, 0) + 1;
    IF p->'parent'->'limits' IS NOT NULL AND jsonb_typeof(p->'parent'->'limits') = 'object' THEN
      IF child_depth > (p->'parent'->'limits'->>'depth')::integer THEN
        RETURN QUERY SELECT false, jsonb_build_object('refused', 'depth', 'value', child_depth);
        RETURN;
      END IF;
      IF coalesce(parent_children, 0) >= (p->'parent'->'limits'->>'childRuns')::integer THEN
        RETURN QUERY SELECT false, jsonb_build_object('refused', 'child_runs', 'value', parent_children);
        RETURN;
      END IF;
    END IF;
  END IF;
  INSERT INTO flow_versions (flow, version, spec, source_path, created_at)
    VALUES (p->'flow'->>'flow', p->'flow'->>'version', p->'flow'->>'spec', p->'flow'->>'sourcePath',
      (p->'flow'->>'createdAt')::bigint)
    ON CONFLICT DO NOTHING;
  INSERT INTO runs (id, flow, version, state, params, dedupe_key, created_at, task_count, max_active_runs, last_seq,
      priority, trigger_id, parent_run_id, parent_task, depth)
    VALUES (p->>'id', p->'flow'->>'flow', p->'flow'->>'version', 'queued', p->'params', key,
      (p->>'createdAt')::bigint, jsonb_array_length(p->'taskIds'), (p->>'maxActiveRuns')::integer, 1,
      coalesce((p->>'priority')::integer, 0), p->>'triggerId', parent_id, p->'parent'->>'task', child_depth)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING * INTO r;
  IF NOT FOUND THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    RETURN QUERY SELECT false, to_jsonb(r);
    RETURN;
  END IF;
  IF parent_depth IS NOT NULL THEN
    UPDATE runs SET child_runs = child_runs + 1 WHERE id = parent_id;
  END IF;
  INSERT INTO task_runs (run_id, idx, task_id, state)
    SELECT r.id, t.ord - 1, t.id, 'pending' FROM jsonb_array_elements_text(p->'taskIds') WITH ORDINALITY AS t(id, ord);
  INSERT INTO events (run_id, seq, type, at, data) VALUES (r.id, 1, 'run_created', (p->>'createdAt')::bigint, p->'event');
  PERFORM pg_notify('baton_runs', r.id);
  RETURN QUERY SELECT true, to_jsonb(r);
END
$f$;
`,
  },
  {
    version: 7,
    name: 'parked runs and their wake-ups',
    // As in SQLite: a parked run has no owner and is claimed again once wake_at has passed;
    // a request for it and the end of one of its child runs bring wake_at forward to now in
    // the transaction that records them, and notify baton_runs so that an idle engine claims
    // it at once. The end of any run is notified on baton_run_ends (payload: its id), so
    // that waiting clients need not poll.
    sql: `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS parked boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS wake_at bigint;
CREATE INDEX IF NOT EXISTS runs_parked_by_wake ON runs (wake_at) WHERE parked;
CREATE INDEX IF NOT EXISTS runs_claimable ON runs (priority, created_at)
  WHERE NOT parked AND state IN ('queued', 'running');

CREATE OR REPLACE FUNCTION baton_wake_for_request() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  UPDATE runs SET wake_at = ${NOW}
    WHERE id = NEW.run_id AND parked AND (wake_at IS NULL OR wake_at > ${NOW});
  IF FOUND THEN PERFORM pg_notify('baton_runs', NEW.run_id); END IF;
  RETURN NULL;
END
$f$;
DROP TRIGGER IF EXISTS requests_wake_run ON requests;
CREATE TRIGGER requests_wake_run AFTER INSERT ON requests
  FOR EACH ROW EXECUTE FUNCTION baton_wake_for_request();

CREATE OR REPLACE FUNCTION baton_run_ended() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_notify('baton_run_ends', NEW.id);
  IF NEW.parent_run_id IS NOT NULL THEN
    UPDATE runs SET wake_at = ${NOW}
      WHERE id = NEW.parent_run_id AND parked AND (wake_at IS NULL OR wake_at > ${NOW});
    IF FOUND THEN PERFORM pg_notify('baton_runs', NEW.parent_run_id); END IF;
  END IF;
  RETURN NULL;
END
$f$;
DROP TRIGGER IF EXISTS runs_end ON runs;
CREATE TRIGGER runs_end AFTER UPDATE OF state ON runs
  FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled')
    AND OLD.state NOT IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION baton_run_ended();

-- Parked runs that are due first (their timers fire on time), then orphaned running runs,
-- then queued runs by priority. Parked runs that are not due are never scanned.
CREATE OR REPLACE FUNCTION baton_claim_runs(p_owner text, p_lease_ms bigint, p_limit integer)
RETURNS TABLE (id text, epoch bigint) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  active integer;
  claimed integer := 0;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR c IN
    SELECT r.id FROM runs r
    WHERE r.parked AND r.wake_at <= ${NOW}
    ORDER BY r.wake_at, r.id
    LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms,
        parked = false, wake_at = NULL
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    claimed := claimed + 1;
  END LOOP;
  IF claimed >= p_limit THEN RETURN; END IF;
  FOR c IN
    SELECT r.id, r.flow, r.state, r.max_active_runs FROM runs r
    WHERE NOT r.parked AND r.state IN ('queued', 'running')
      AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    ORDER BY r.state = 'running' DESC, r.priority DESC, r.created_at
    LIMIT p_limit * 4 FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    IF c.state = 'queued' AND c.max_active_runs IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtext('baton_flow:' || c.flow));
      SELECT count(*) INTO active FROM runs x WHERE x.flow = c.flow AND x.id <> c.id
        AND (x.state = 'running' OR (x.state = 'queued' AND x.owner IS NOT NULL AND x.lease_until >= ${NOW}));
      CONTINUE WHEN active >= c.max_active_runs;
    END IF;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    -- Claims the previous owner harvested as lost but never recorded (it died or was fenced
    -- before its commit) are reported again by the new owner's first harvest.
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
END
$f$;
`,
  },
  {
    version: 8,
    name: 'one lock order for many rows; a set-based group commit',
    // Statements that lock several rows take them in one order, runs by id (bytewise), then
    // task_queue rows by id, so that a scheduler's commit, its lease renewal and harvest, and
    // the workers' completions never wait for each other in a cycle (a deadlock costs the
    // victim the server's deadlock_timeout and a retry). A group commit of many runs changes
    // their rows with one statement per table rather than several per run. The claim of
    // runs returns their rows and events, which the claimant reads next.
    sql: `
-- As in migration 5, with its effects in the same order, for the entries whose epoch
-- matches. Every runs row named by the batch is locked first, in id order; then the
-- task_queue rows the commit deletes or marks, in id order. One entry per run.
CREATE OR REPLACE FUNCTION baton_commit(batch jsonb) RETURNS text[] LANGUAGE plpgsql AS $f$
DECLARE
  ok_ids text[];
  fenced text[];
  grown text[];
  has_events boolean;
  has_tasks boolean;
  has_timers boolean;
  has_logs boolean;
  has_answered boolean;
  has_queue boolean;
  has_dispatches boolean;
  e jsonb;
  rid text;
  n_events integer;
  cur_seq bigint;
  cur_count integer;
  highest integer;
BEGIN
  -- One entry (a run moving on its own, as in a chain of tasks): its rows one statement per
  -- kind, as in migration 5, which costs less than the set-based path below for one run.
  IF jsonb_array_length(batch) = 1 THEN
    e := batch->0;
    rid := e->>'runId';
    n_events := jsonb_array_length(e->'events');
    UPDATE runs SET last_seq = last_seq + n_events,
        state = CASE WHEN e ? 'run' THEN e->'run'->>'state' ELSE state END,
        started_at = CASE WHEN e ? 'run' THEN (e->'run'->>'startedAt')::bigint ELSE started_at END,
        ended_at = CASE WHEN e ? 'run' THEN (e->'run'->>'endedAt')::bigint ELSE ended_at END,
        error = CASE WHEN e ? 'run' THEN NULLIF(e->'run'->'error', 'null'::jsonb) ELSE error END
      WHERE id = rid AND epoch = (e->>'epoch')::bigint
      RETURNING last_seq - n_events, task_count INTO cur_seq, cur_count;
    IF NOT FOUND THEN
      RETURN ARRAY[rid];
    END IF;
    IF n_events > 0 THEN
      INSERT INTO events (run_id, seq, type, at, data)
        SELECT rid, cur_seq + x.ord, x.ev->>'type', (x.ev->>'at')::bigint, x.ev
        FROM jsonb_array_elements(e->'events') WITH ORDINALITY AS x(ev, ord);
    END IF;
    IF jsonb_array_length(e->'tasks') > 0 THEN
      WITH up AS (
        INSERT INTO task_runs AS t (run_id, idx, task_id, state, attempts, started_at, ended_at, skip_reason, output, error)
          SELECT rid, (x.p->>'index')::integer, x.p->>'taskId', x.p->>'state', (x.p->>'attempts')::integer,
            (x.p->>'startedAt')::bigint, (x.p->>'endedAt')::bigint, x.p->>'skipReason', x.p->'output',
            NULLIF(x.p->'error', 'null'::jsonb)
          FROM jsonb_array_elements(e->'tasks') AS x(p)
        ON CONFLICT (run_id, idx) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
          started_at = excluded.started_at, ended_at = excluded.ended_at, skip_reason = excluded.skip_reason,
          output = excluded.output, error = excluded.error
        RETURNING t.idx
      )
      SELECT max(idx) INTO highest FROM up;
      IF highest >= cur_count THEN
        UPDATE runs SET task_count = (SELECT count(*) FROM task_runs WHERE run_id = rid) WHERE id = rid;
      END IF;
    END IF;
    IF jsonb_array_length(e->'timers') > 0 THEN
      DELETE FROM timers t USING jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE t.run_id = rid AND t.task_idx = x.task AND x."dueAt" IS NULL;
      INSERT INTO timers (run_id, task_idx, due_at)
        SELECT rid, x.task, x."dueAt" FROM jsonb_to_recordset(e->'timers') AS x(task integer, "dueAt" bigint)
        WHERE x."dueAt" IS NOT NULL
        ON CONFLICT (run_id, task_idx) DO UPDATE SET due_at = excluded.due_at;
    END IF;
    IF jsonb_array_length(e->'logs') > 0 THEN
      INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
        SELECT rid, x."taskId", x.attempt, x.stream, x.at, x.text
        FROM jsonb_to_recordset(e->'logs') AS x("taskId" text, attempt integer, stream text, at bigint, text text);
    END IF;
    IF e ? 'answered' THEN
      DELETE FROM requests WHERE id IN (SELECT value::bigint FROM jsonb_array_elements_text(e->'answered'));
    END IF;
    -- Claimed rows (a worker's completion or renewal may hold them) are locked in id order.
    IF e ? 'cancels' OR e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled') THEN
      PERFORM 1 FROM task_queue q WHERE q.run_id = rid ORDER BY q.id FOR UPDATE;
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
      PERFORM pg_notify('baton_tasks', '');
    END IF;
    IF e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled') THEN
      DELETE FROM task_queue WHERE run_id = rid;
    END IF;
    RETURN '{}';
  END IF;
  PERFORM 1 FROM runs r
    WHERE r.id = ANY (ARRAY(SELECT x.e->>'runId' FROM jsonb_array_elements(batch) AS x(e)))
    ORDER BY r.id COLLATE "C" FOR UPDATE;
  -- The epoch check (fencing) and the run patch in one statement: a stale owner matches no row.
  WITH u AS (
    UPDATE runs r SET last_seq = r.last_seq + jsonb_array_length(x.e->'events'),
        state = CASE WHEN x.e ? 'run' THEN x.e->'run'->>'state' ELSE r.state END,
        started_at = CASE WHEN x.e ? 'run' THEN (x.e->'run'->>'startedAt')::bigint ELSE r.started_at END,
        ended_at = CASE WHEN x.e ? 'run' THEN (x.e->'run'->>'endedAt')::bigint ELSE r.ended_at END,
        error = CASE WHEN x.e ? 'run' THEN NULLIF(x.e->'run'->'error', 'null'::jsonb) ELSE r.error END
      FROM jsonb_array_elements(batch) AS x(e)
      WHERE r.id = x.e->>'runId' AND r.epoch = (x.e->>'epoch')::bigint
      RETURNING r.id
  )
  SELECT coalesce(array_agg(u.id), '{}') INTO ok_ids FROM u;
  -- The statements below skip fenced entries (usually none) by this list, whose test costs
  -- nothing when it is empty; a set difference finds it in linear time.
  fenced := ARRAY(SELECT x.e->>'runId' FROM jsonb_array_elements(batch) AS x(e) EXCEPT SELECT unnest(ok_ids) ORDER BY 1);
  IF cardinality(ok_ids) = 0 THEN
    RETURN fenced;
  END IF;
  SELECT bool_or(jsonb_array_length(x.e->'events') > 0), bool_or(jsonb_array_length(x.e->'tasks') > 0),
      bool_or(jsonb_array_length(x.e->'timers') > 0), bool_or(jsonb_array_length(x.e->'logs') > 0),
      bool_or(x.e ? 'answered'),
      bool_or(x.e ? 'harvested' OR x.e ? 'cancels' OR x.e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled')),
      bool_or(x.e ? 'dispatches' AND jsonb_array_length(x.e->'dispatches') > 0)
    INTO has_events, has_tasks, has_timers, has_logs, has_answered, has_queue, has_dispatches
    FROM jsonb_array_elements(batch) AS x(e) WHERE NOT x.e->>'runId' = ANY (fenced);
  IF has_events THEN
    -- Numbered after the run's last event before this commit (last_seq is already moved on).
    INSERT INTO events (run_id, seq, type, at, data)
      SELECT r.id, r.last_seq - jsonb_array_length(x.e->'events') + v.ord, v.ev->>'type', (v.ev->>'at')::bigint, v.ev
      FROM jsonb_array_elements(batch) AS x(e)
      JOIN runs r ON r.id = x.e->>'runId'
      CROSS JOIN LATERAL jsonb_array_elements(x.e->'events') WITH ORDINALITY AS v(ev, ord)
      WHERE NOT x.e->>'runId' = ANY (fenced);
  END IF;
  IF has_tasks THEN
    WITH up AS (
      INSERT INTO task_runs AS t (run_id, idx, task_id, state, attempts, started_at, ended_at, skip_reason, output, error)
        SELECT x.e->>'runId', (p.p->>'index')::integer, p.p->>'taskId', p.p->>'state', (p.p->>'attempts')::integer,
          (p.p->>'startedAt')::bigint, (p.p->>'endedAt')::bigint, p.p->>'skipReason', p.p->'output',
          NULLIF(p.p->'error', 'null'::jsonb)
        FROM jsonb_array_elements(batch) AS x(e)
        CROSS JOIN LATERAL jsonb_array_elements(x.e->'tasks') AS p(p)
        WHERE NOT x.e->>'runId' = ANY (fenced)
      ON CONFLICT (run_id, idx) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
        started_at = excluded.started_at, ended_at = excluded.ended_at, skip_reason = excluded.skip_reason,
        output = excluded.output, error = excluded.error
      RETURNING t.run_id, t.idx
    )
    SELECT array_agg(DISTINCT up.run_id) INTO grown FROM up JOIN runs r ON r.id = up.run_id WHERE up.idx >= r.task_count;
    -- Rows past the last known index may be new (the engine appends task runs at the end):
    -- keep task_count the number of task runs.
    IF grown IS NOT NULL THEN
      UPDATE runs r SET task_count = (SELECT count(*) FROM task_runs t WHERE t.run_id = r.id) WHERE r.id = ANY (grown);
    END IF;
  END IF;
  IF has_timers THEN
    DELETE FROM timers t USING jsonb_array_elements(batch) AS x(e),
        jsonb_to_recordset(x.e->'timers') AS m(task integer, "dueAt" bigint)
      WHERE NOT x.e->>'runId' = ANY (fenced) AND t.run_id = x.e->>'runId' AND t.task_idx = m.task AND m."dueAt" IS NULL;
    INSERT INTO timers (run_id, task_idx, due_at)
      SELECT x.e->>'runId', m.task, m."dueAt"
      FROM jsonb_array_elements(batch) AS x(e)
      CROSS JOIN LATERAL jsonb_to_recordset(x.e->'timers') AS m(task integer, "dueAt" bigint)
      WHERE NOT x.e->>'runId' = ANY (fenced) AND m."dueAt" IS NOT NULL
      ON CONFLICT (run_id, task_idx) DO UPDATE SET due_at = excluded.due_at;
  END IF;
  IF has_logs THEN
    INSERT INTO logs (run_id, task_id, attempt, stream, at, text)
      SELECT x.e->>'runId', l."taskId", l.attempt, l.stream, l.at, l.text
      FROM jsonb_array_elements(batch) AS x(e)
      CROSS JOIN LATERAL jsonb_to_recordset(x.e->'logs') AS l("taskId" text, attempt integer, stream text, at bigint, text text)
      WHERE NOT x.e->>'runId' = ANY (fenced);
  END IF;
  IF has_answered THEN
    DELETE FROM requests WHERE id IN (
      SELECT a.value::bigint FROM jsonb_array_elements(batch) AS x(e)
      CROSS JOIN LATERAL jsonb_array_elements_text(x.e->'answered') AS a
      WHERE NOT x.e->>'runId' = ANY (fenced));
  END IF;
  IF has_queue THEN
    PERFORM 1 FROM task_queue q WHERE q.id IN (
        SELECT h.value::bigint FROM jsonb_array_elements(batch) AS x(e)
        CROSS JOIN LATERAL jsonb_array_elements_text(coalesce(x.e->'harvested', '[]')) AS h
        WHERE NOT x.e->>'runId' = ANY (fenced)
      UNION ALL
        SELECT q2.id FROM jsonb_array_elements(batch) AS x(e)
        CROSS JOIN LATERAL jsonb_to_recordset(coalesce(x.e->'cancels', '[]')) AS c(task integer, attempt integer)
        JOIN task_queue q2 ON q2.run_id = x.e->>'runId' AND q2.task_idx = c.task AND q2.attempt = c.attempt
        WHERE NOT x.e->>'runId' = ANY (fenced)
      UNION ALL
        SELECT q3.id FROM jsonb_array_elements(batch) AS x(e)
        JOIN task_queue q3 ON q3.run_id = x.e->>'runId'
        WHERE NOT x.e->>'runId' = ANY (fenced) AND x.e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled'))
      ORDER BY q.id FOR UPDATE;
    DELETE FROM task_queue WHERE id IN (
      SELECT h.value::bigint FROM jsonb_array_elements(batch) AS x(e)
      CROSS JOIN LATERAL jsonb_array_elements_text(x.e->'harvested') AS h
      WHERE NOT x.e->>'runId' = ANY (fenced));
    UPDATE task_queue q SET cancel = true
      FROM jsonb_array_elements(batch) AS x(e),
        jsonb_to_recordset(x.e->'cancels') AS c(task integer, attempt integer)
      WHERE NOT x.e->>'runId' = ANY (fenced) AND x.e ? 'cancels'
        AND q.run_id = x.e->>'runId' AND q.task_idx = c.task AND q.attempt = c.attempt;
  END IF;
  IF has_dispatches THEN
    INSERT INTO task_queue (run_id, task_idx, task_id, attempt, labels, payload, status, created_at)
      SELECT x.e->>'runId', d.task, d."taskId", d.attempt, d.labels, d.payload, 'ready', ${NOW}
      FROM jsonb_array_elements(batch) AS x(e)
      CROSS JOIN LATERAL jsonb_to_recordset(x.e->'dispatches') AS d(task integer, "taskId" text, attempt integer,
        labels jsonb, payload jsonb)
      WHERE NOT x.e->>'runId' = ANY (fenced) AND x.e ? 'dispatches';
  END IF;
  -- A finished run has no more use for its queue rows; a worker still holding one learns
  -- at its next renewal that the claim is gone, and stops.
  IF has_queue THEN
    DELETE FROM task_queue q USING jsonb_array_elements(batch) AS x(e)
      WHERE NOT x.e->>'runId' = ANY (fenced) AND x.e->'run'->>'state' IN ('succeeded', 'failed', 'cancelled')
        AND q.run_id = x.e->>'runId';
  END IF;
  IF has_dispatches THEN PERFORM pg_notify('baton_tasks', ''); END IF;
  RETURN fenced;
END
$f$;

-- Claims runs as baton_claim_runs does, and returns with each its row and its events, which
-- the claimant reads next to resume the run: one round trip instead of three.
CREATE OR REPLACE FUNCTION baton_claim_runs_loaded(p_owner text, p_lease_ms bigint, p_limit integer)
RETURNS TABLE (id text, epoch bigint, run jsonb, events jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  ids text[];
BEGIN
  SELECT coalesce(array_agg(c.id ORDER BY c.ord), '{}') INTO ids
    FROM baton_claim_runs(p_owner, p_lease_ms, p_limit) WITH ORDINALITY AS c(id, epoch, ord);
  RETURN QUERY
    SELECT r.id, r.epoch, to_jsonb(r),
      (SELECT coalesce(jsonb_agg(jsonb_build_array(e.seq, e.data) ORDER BY e.seq), '[]'::jsonb)
        FROM events e WHERE e.run_id = r.id)
    FROM runs r WHERE r.id = ANY (ids) ORDER BY array_position(ids, r.id);
END
$f$;

-- As in migration 2, with the claimed rows of a batch locked in id order before they change.
CREATE OR REPLACE FUNCTION baton_complete(results jsonb) RETURNS bigint[] LANGUAGE plpgsql AS $f$
DECLARE
  done bigint[];
  outcomes text;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  IF jsonb_array_length(results) > 1 THEN
    PERFORM 1 FROM task_queue q JOIN jsonb_to_recordset(results) AS x(id bigint, token integer)
        ON q.id = x.id AND q.token = x.token
      WHERE q.status = 'claimed' ORDER BY q.id FOR UPDATE OF q;
  END IF;
  WITH u AS (
    UPDATE task_queue q SET status = 'done', result = x.result
    FROM jsonb_to_recordset(results) AS x(id bigint, token integer, result jsonb)
    WHERE q.id = x.id AND q.token = x.token AND q.status = 'claimed'
    RETURNING q.id, q.run_id, q.task_idx, q.attempt, q.result
  )
  SELECT coalesce(array_agg(id), '{}'),
         json_agg(json_build_object('id', id::text, 'runId', run_id, 'task', task_idx, 'attempt', attempt, 'result', result))::text
  INTO done, outcomes FROM u;
  -- Small outcomes travel in the notification itself, sparing the scheduler a query.
  PERFORM pg_notify('baton_results', CASE WHEN length(outcomes) < 7500 THEN outcomes ELSE '' END);
  RETURN ARRAY(SELECT x.id FROM jsonb_to_recordset(results) AS x(id bigint) WHERE NOT x.id = ANY(done));
END
$f$;
`,
  },
  {
    version: 9,
    name: 'run labels',
    // Labels are fixed when a run is created. A GIN index (jsonb_path_ops) serves the
    // containment filter labels @> '{"team":"growth"}', which needs every pair given.
    sql: `
ALTER TABLE runs ADD COLUMN IF NOT EXISTS labels jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX IF NOT EXISTS runs_labels ON runs USING gin (labels jsonb_path_ops);

-- As in migration 6, and the run keeps p.labels (an object of strings; {} without).
CREATE OR REPLACE FUNCTION baton_create_run(p jsonb) RETURNS TABLE (created boolean, run jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  r runs;
  key text := p->>'dedupeKey';
  parent_id text := p->'parent'->>'runId';
  parent_depth integer;
  parent_children integer;
  child_depth integer := 0;
BEGIN
  IF key IS NOT NULL THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    IF FOUND THEN
      RETURN QUERY SELECT false, to_jsonb(r);
      RETURN;
    END IF;
  END IF;
  IF parent_id IS NOT NULL THEN
    SELECT depth, child_runs INTO parent_depth, parent_children FROM runs WHERE id = parent_id FOR UPDATE;
    child_depth := coalesce(parent_depth, 0) + 1;
    IF p->'parent'->'limits' IS NOT NULL AND jsonb_typeof(p->'parent'->'limits') = 'object' THEN
      IF child_depth > (p->'parent'->'limits'->>'depth')::integer THEN
        RETURN QUERY SELECT false, jsonb_build_object('refused', 'depth', 'value', child_depth);
        RETURN;
      END IF;
      IF coalesce(parent_children, 0) >= (p->'parent'->'limits'->>'childRuns')::integer THEN
        RETURN QUERY SELECT false, jsonb_build_object('refused', 'child_runs', 'value', parent_children);
        RETURN;
      END IF;
    END IF;
  END IF;
  INSERT INTO flow_versions (flow, version, spec, source_path, created_at)
    VALUES (p->'flow'->>'flow', p->'flow'->>'version', p->'flow'->>'spec', p->'flow'->>'sourcePath',
      (p->'flow'->>'createdAt')::bigint)
    ON CONFLICT DO NOTHING;
  INSERT INTO runs (id, flow, version, state, params, dedupe_key, created_at, task_count, max_active_runs, last_seq,
      priority, trigger_id, parent_run_id, parent_task, depth, labels)
    VALUES (p->>'id', p->'flow'->>'flow', p->'flow'->>'version', 'queued', p->'params', key,
      (p->>'createdAt')::bigint, jsonb_array_length(p->'taskIds'), (p->>'maxActiveRuns')::integer, 1,
      coalesce((p->>'priority')::integer, 0), p->>'triggerId', parent_id, p->'parent'->>'task', child_depth,
      coalesce(p->'labels', '{}'::jsonb))
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING * INTO r;
  IF NOT FOUND THEN
    SELECT * INTO r FROM runs WHERE dedupe_key = key;
    RETURN QUERY SELECT false, to_jsonb(r);
    RETURN;
  END IF;
  IF parent_depth IS NOT NULL THEN
    UPDATE runs SET child_runs = child_runs + 1 WHERE id = parent_id;
  END IF;
  INSERT INTO task_runs (run_id, idx, task_id, state)
    SELECT r.id, t.ord - 1, t.id, 'pending' FROM jsonb_array_elements_text(p->'taskIds') WITH ORDINALITY AS t(id, ord);
  INSERT INTO events (run_id, seq, type, at, data) VALUES (r.id, 1, 'run_created', (p->>'createdAt')::bigint, p->'event');
  PERFORM pg_notify('baton_runs', r.id);
  RETURN QUERY SELECT true, to_jsonb(r);
END
$f$;
`,
  },
  {
    version: 10,
    name: 'claims by index, ended runs released',
    // As in migration 7, with each kind of candidate read from an index of its own in claim
    // order, stopping at the limit: due parked runs by wake_at; orphaned running runs (their
    // owner's lease lapsed); queued runs by priority, then age. Migration 7 sorted every due
    // run, or every active one, at each claim. A run that ends lets go of its lease in the
    // commit that ends it (it needs none), not in a statement of its own.
    sql: `
CREATE INDEX IF NOT EXISTS runs_queued ON runs (priority DESC, created_at) WHERE state = 'queued' AND NOT parked;
CREATE INDEX IF NOT EXISTS runs_orphans ON runs (lease_until) WHERE state = 'running' AND NOT parked;
DROP INDEX IF EXISTS runs_claimable;

CREATE OR REPLACE FUNCTION baton_claim_runs(p_owner text, p_lease_ms bigint, p_limit integer)
RETURNS TABLE (id text, epoch bigint) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  active integer;
  claimed integer := 0;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR c IN
    SELECT r.id FROM runs r
    WHERE r.parked AND r.wake_at <= ${NOW}
    ORDER BY r.wake_at
    LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms,
        parked = false, wake_at = NULL
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    claimed := claimed + 1;
  END LOOP;
  IF claimed >= p_limit THEN RETURN; END IF;
  FOR c IN
    SELECT r.id FROM runs r
    WHERE r.state = 'running' AND NOT r.parked
      AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    -- Claims the previous owner harvested as lost but never recorded are reported again.
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
  IF claimed >= p_limit THEN RETURN; END IF;
  FOR c IN
    SELECT r.id, r.flow, r.max_active_runs FROM runs r
    WHERE r.state = 'queued' AND NOT r.parked
      AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    ORDER BY r.priority DESC, r.created_at
    LIMIT p_limit * 4 FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    IF c.max_active_runs IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtext('baton_flow:' || c.flow));
      SELECT count(*) INTO active FROM runs x WHERE x.flow = c.flow AND x.id <> c.id
        AND (x.state = 'running' OR (x.state = 'queued' AND x.owner IS NOT NULL AND x.lease_until >= ${NOW}));
      CONTINUE WHEN active >= c.max_active_runs;
    END IF;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
END
$f$;

CREATE OR REPLACE FUNCTION baton_release_ended() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  NEW.owner := NULL;
  NEW.lease_until := NULL;
  RETURN NEW;
END
$f$;
DROP TRIGGER IF EXISTS runs_release_ended ON runs;
CREATE TRIGGER runs_release_ended BEFORE UPDATE OF state ON runs
  FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled')) EXECUTE FUNCTION baton_release_ended();
`,
  },
  {
    version: 11,
    name: 'claims ahead of wake-ups, parks that see what races them',
    // As in migration 10, with parked runs due within p_wake_ahead_ms counted as due: an
    // engine claims them shortly before their wake-up, so that many timers due at once
    // fire on time. The functions take a fourth argument, so they are made anew.
    //
    // Parking a run, and a request for it or the end of a child run it waits for, no longer
    // race: before, the park read requests and child states in its statement's snapshot,
    // and a request or child end committed meanwhile found the run not yet parked, so
    // neither woke it (a lost wake-up: the run slept until its next timer, or forever).
    // Now the park locks the awaited children (FOR SHARE, so a child's end waits for it or
    // it waits for the child's end) and then the run, and reads with a fresh snapshot; a
    // request locks the run before it looks whether it is parked. One of the two then
    // always sees the other.
    sql: `
DROP FUNCTION IF EXISTS baton_claim_runs_loaded(text, bigint, integer);
DROP FUNCTION IF EXISTS baton_claim_runs(text, bigint, integer);

CREATE FUNCTION baton_claim_runs(p_owner text, p_lease_ms bigint, p_limit integer, p_wake_ahead_ms bigint DEFAULT 0)
RETURNS TABLE (id text, epoch bigint) LANGUAGE plpgsql AS $f$
DECLARE
  c record;
  active integer;
  claimed integer := 0;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  FOR c IN
    SELECT r.id FROM runs r
    WHERE r.parked AND r.wake_at <= ${NOW} + p_wake_ahead_ms
    ORDER BY r.wake_at
    LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms,
        parked = false, wake_at = NULL
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    claimed := claimed + 1;
  END LOOP;
  IF claimed >= p_limit THEN RETURN; END IF;
  FOR c IN
    SELECT r.id FROM runs r
    WHERE r.state = 'running' AND NOT r.parked
      AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    -- Claims the previous owner harvested as lost but never recorded are reported again.
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
  IF claimed >= p_limit THEN RETURN; END IF;
  FOR c IN
    SELECT r.id, r.flow, r.max_active_runs FROM runs r
    WHERE r.state = 'queued' AND NOT r.parked
      AND (r.owner IS NULL OR r.lease_until IS NULL OR r.lease_until < ${NOW})
    ORDER BY r.priority DESC, r.created_at
    LIMIT p_limit * 4 FOR UPDATE SKIP LOCKED
  LOOP
    EXIT WHEN claimed >= p_limit;
    IF c.max_active_runs IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtext('baton_flow:' || c.flow));
      SELECT count(*) INTO active FROM runs x WHERE x.flow = c.flow AND x.id <> c.id
        AND (x.state = 'running' OR (x.state = 'queued' AND x.owner IS NOT NULL AND x.lease_until >= ${NOW}));
      CONTINUE WHEN active >= c.max_active_runs;
    END IF;
    RETURN QUERY UPDATE runs r SET owner = p_owner, epoch = r.epoch + 1, lease_until = ${NOW} + p_lease_ms
      WHERE r.id = c.id RETURNING r.id, r.epoch;
    UPDATE task_queue q SET lease_until = 0 WHERE q.run_id = c.id AND q.status = 'lost';
    claimed := claimed + 1;
  END LOOP;
END
$f$;

-- As in migration 8, over the claim above.
CREATE FUNCTION baton_claim_runs_loaded(p_owner text, p_lease_ms bigint, p_limit integer, p_wake_ahead_ms bigint DEFAULT 0)
RETURNS TABLE (id text, epoch bigint, run jsonb, events jsonb) LANGUAGE plpgsql AS $f$
DECLARE
  ids text[];
BEGIN
  SELECT coalesce(array_agg(c.id ORDER BY c.ord), '{}') INTO ids
    FROM baton_claim_runs(p_owner, p_lease_ms, p_limit, p_wake_ahead_ms) WITH ORDINALITY AS c(id, epoch, ord);
  RETURN QUERY
    SELECT r.id, r.epoch, to_jsonb(r),
      (SELECT coalesce(jsonb_agg(jsonb_build_array(e.seq, e.data) ORDER BY e.seq), '[]'::jsonb)
        FROM events e WHERE e.run_id = r.id)
    FROM runs r WHERE r.id = ANY (ids) ORDER BY array_position(ids, r.id);
END
$f$;

CREATE OR REPLACE FUNCTION baton_park_run(p_id text, p_owner text, p_epoch bigint, p_awaiting text[], p_wake_at bigint)
RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  -- Children first, then the run, in this order everywhere: no lock cycle with a child's end.
  PERFORM 1 FROM runs c WHERE c.id = ANY (p_awaiting) ORDER BY c.id FOR SHARE;
  PERFORM 1 FROM runs r WHERE r.id = p_id AND r.owner = p_owner AND r.epoch = p_epoch FOR NO KEY UPDATE;
  IF NOT FOUND THEN RETURN false; END IF;
  -- A statement of its own: its snapshot has every request and child end committed by now.
  UPDATE runs r SET owner = NULL, lease_until = NULL, parked = true,
      wake_at = CASE
        WHEN EXISTS (SELECT 1 FROM requests q WHERE q.run_id = r.id)
          OR EXISTS (SELECT 1 FROM runs c WHERE c.id = ANY (p_awaiting)
                     AND c.state IN ('succeeded', 'failed', 'cancelled'))
        THEN ${NOW} ELSE p_wake_at END
    WHERE r.id = p_id;
  RETURN true;
END
$f$;

-- As in migration 7, with the run locked first: a park in flight finishes before this looks.
CREATE OR REPLACE FUNCTION baton_wake_for_request() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM 1 FROM runs WHERE id = NEW.run_id FOR NO KEY UPDATE;
  UPDATE runs SET wake_at = ${NOW}
    WHERE id = NEW.run_id AND parked AND (wake_at IS NULL OR wake_at > ${NOW});
  IF FOUND THEN PERFORM pg_notify('baton_runs', NEW.run_id); END IF;
  RETURN NULL;
END
$f$;
`,
  },
  {
    version: 12,
    name: 'data objects and their accesses',
    // As in SQLite. Paths collate "C" (bytewise, as SQLite's BINARY), whatever the
    // database's collation, so that listings and their pages are in the same order on both
    // stores and a prefix is one range of the primary key. The schema is JSON kept as text,
    // as trigger specs are: jsonb would refuse a \u0000 that SQLite keeps.
    sql: `
CREATE TABLE IF NOT EXISTS data_objects (
  path text COLLATE "C" PRIMARY KEY,
  mount text NOT NULL,
  key text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  etag text,
  sha256 text,
  schema text,
  content_type text,
  producer_run_id text,
  producer_task_id text,
  written_at bigint,
  last_read_at bigint,
  CHECK (path = 'data://' || mount || '/' || key)
);

CREATE TABLE IF NOT EXISTS data_accesses (
  id bigserial PRIMARY KEY,
  run_id text,
  task_id text,
  attempt integer,
  path text NOT NULL,
  op text NOT NULL CHECK (op IN ('read', 'write')),
  size bigint NOT NULL CHECK (size >= 0),
  etag text,
  at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS data_accesses_by_run ON data_accesses (run_id, id);
CREATE INDEX IF NOT EXISTS data_accesses_by_path ON data_accesses (path, id);
`,
  },
  {
    version: 13,
    name: 'assets, their lineage and their checks',
    // As in SQLite. Keys collate "C" (bytewise, as SQLite's BINARY), so that listings and
    // their pages are in the same order on both stores; samples and schemas are JSON kept
    // as text, as data object schemas are.
    sql: `
CREATE TABLE IF NOT EXISTS asset_materializations (
  id bigserial PRIMARY KEY,
  asset_key text COLLATE "C" NOT NULL,
  version text NOT NULL,
  run_id text NOT NULL,
  flow text NOT NULL,
  task_id text NOT NULL,
  attempt integer NOT NULL,
  at bigint NOT NULL,
  location text NOT NULL,
  size bigint,
  row_count bigint,
  schema text,
  UNIQUE (run_id, task_id, attempt, asset_key)
);
CREATE INDEX IF NOT EXISTS asset_materializations_by_key ON asset_materializations (asset_key, id);

CREATE TABLE IF NOT EXISTS asset_inputs (
  materialization_id bigint NOT NULL,
  input_key text COLLATE "C" NOT NULL,
  input_version text,
  PRIMARY KEY (materialization_id, input_key)
);
CREATE INDEX IF NOT EXISTS asset_inputs_by_key ON asset_inputs (input_key, materialization_id);

CREATE TABLE IF NOT EXISTS asset_check_results (
  materialization_id bigint NOT NULL,
  position integer NOT NULL,
  name text NOT NULL,
  kind text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('error', 'warn')),
  passed boolean NOT NULL,
  failing_count bigint NOT NULL CHECK (failing_count >= 0),
  sample text NOT NULL,
  message text,
  PRIMARY KEY (materialization_id, position)
);

CREATE TABLE IF NOT EXISTS assets (
  key text COLLATE "C" PRIMARY KEY,
  latest_id bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_latest ON assets (latest_id);
`,
  },
  {
    version: 14,
    name: 'the result cache',
    // As in SQLite: one row per cache key, the attempt that last succeeded with it and its
    // output as JSON text.
    sql: `
CREATE TABLE IF NOT EXISTS result_cache (
  key text PRIMARY KEY,
  flow text NOT NULL,
  task_id text NOT NULL,
  run_id text NOT NULL,
  task_run_id text NOT NULL,
  attempt integer NOT NULL,
  output text NOT NULL,
  at bigint NOT NULL
);
`,
  },
];
