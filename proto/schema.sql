-- The PostgreSQL schema adw-ingest creates and migrates (version 8; ingest/migrate.c applies it).
-- Users may query these tables directly. adw-ingest is their only writer.

CREATE TABLE adw_schema_migrations (
    version integer PRIMARY KEY,              -- one row per applied migration
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE adw_meta (
    key text PRIMARY KEY,                     -- 'epoch': random integer < 2^53 naming this database;
    value text NOT NULL                       -- 'first_kept_id': the first event id the retention
);                                            -- kept (1 until it drops a partition)

-- One row per event, partitioned by id range (see "Partitions" below).
CREATE TABLE events (
    id bigint PRIMARY KEY,                    -- contiguous, increasing in commit order
    adw_id text NOT NULL,
    type text NOT NULL,                       -- adw_event | system
    step text,
    event_type text,                          -- adw_event's event_type
    event text,                               -- system's event
    status text,
    ts timestamptz NOT NULL,                  -- the event's timestamp, else received_at
    received_at timestamptz NOT NULL,
    event_id text,                            -- idempotency key
    doc jsonb NOT NULL,                       -- the event exactly as delivered (with id, received_at)
    agent_id text,                            -- the subagent it comes from; NULL: the main agent
    agent_type text                           -- that subagent's type, when given
) PARTITION BY RANGE (id);
CREATE INDEX events_adw_id_id ON events (adw_id, id);
CREATE INDEX events_adw_id_agent_id ON events (adw_id, agent_id, id) WHERE agent_id IS NOT NULL;
-- GET /api/search (the gateway): trigrams of each event's searched text, its summary, tool name
-- and target (payload.tool_input's file_path, command, pattern, url, path, query), lower-cased.
-- The search matches it with ILIKE '%word%' per word, which this index serves.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX events_search ON events USING gin ((lower(
    coalesce(doc->>'summary', '') || ' ' || coalesce(doc->'payload'->>'tool_name', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'file_path', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'command', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'pattern', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'url', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'path', '')
    || ' ' || coalesce(doc->'payload'->'tool_input'->>'query', ''))) gin_trgm_ops);

-- Partitions. adw-ingest, the only writer, creates them ahead: at start and between batches,
-- each `ADW_INGEST_PARTITION_EVENTS` ids wide (default 4,000,000), named events_p<first id>, so
-- that the ids of the next batch and one whole partition beyond always have one. There is no
-- DEFAULT partition. Each partition has the indexes above (partitioned indexes) and a unique
-- index of its own on event_id: a unique index over all partitions would have to hold the
-- partition key, so the writer checks a batch's event_ids against the partitions below the one
-- its ids go to, in the batch's own transaction, and commits again after looking them up when
-- one is stored (proto/decisions.md, "Deduplication without a global unique index").
-- With `ADW_INGEST_RETENTION` set, the writer drops (DETACH, then DROP) the oldest partitions
-- whose newest event (the received_at of their highest id) is older than the retention, never
-- the one holding the newest event (nor the next id: max(id) always stays), and in the same
-- transaction sets adw_meta's first_kept_id and
-- deletes the runs whose last event was dropped (adw_runs.last_id < first_kept_id) with their
-- rows in adw_steps, adw_agents, adw_tool_calls, adw_sessions and adw_approvals.
-- A database migrated from version 6 or earlier keeps its old table as its first partition,
-- events_p1, ids 1 to its highest (its indexes named events_p1_*); the next one starts there.
-- A new database with the default size and batch starts with these two:
CREATE TABLE events_p1 PARTITION OF events FOR VALUES FROM (1) TO (4000001);
CREATE UNIQUE INDEX events_p1_event_id ON events_p1 (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE events_p4000001 PARTITION OF events FOR VALUES FROM (4000001) TO (8000001);
CREATE UNIQUE INDEX events_p4000001_event_id ON events_p4000001 (event_id)
    WHERE event_id IS NOT NULL;
-- What that check calls on an event_id stored in a partition below (version 8): fails the
-- transaction as the partition's unique index would, naming events_older_event_id.
CREATE FUNCTION adw_event_id_taken(eid text, stored_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE unique_violation USING CONSTRAINT = 'events_older_event_id',
        MESSAGE = format('event_id %s is stored already, as event %s', eid, stored_id);
END
$$;

-- One row per run: its derived state, kept current in the same transaction as its events.
CREATE TABLE adw_runs (
    adw_id text PRIMARY KEY,
    status text NOT NULL,                     -- 'running' from the first event; then only run-level
                                              -- events set it: adw_complete 'completed', adw_failed
                                              -- 'failed', a system event without a step its status
    current_step text,                        -- step of the latest event that had one
    event_count bigint NOT NULL,
    cost_usd double precision NOT NULL,       -- sum of payload.cost_usd (the spend rule: OTel's sum
                                              -- when the run has any OTel spend, else the others')
    tokens bigint NOT NULL,                   -- sum of payload.tokens, else of the four kinds below
    input_tokens bigint NOT NULL,             -- (these five: the spend rule too)
    output_tokens bigint NOT NULL,
    cache_read_tokens bigint NOT NULL,
    cache_creation_tokens bigint NOT NULL,
    first_ts timestamptz NOT NULL,            -- earliest event timestamp
    last_ts timestamptz NOT NULL,             -- latest event timestamp
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,                  -- most recently active first: ORDER BY last_id DESC
    updated_at timestamptz NOT NULL,          -- received_at of the latest event
    stalled boolean NOT NULL DEFAULT false,   -- the latest event (approval and budget events
                                              -- aside) is a system run_stalled
    stop_failure text,                        -- the latest StopFailure's payload.error, else summary
    stop_failure_id bigint,                   -- that event's id (never cleared)
    -- The spend rule's two sums (proto/decisions.md, "One spend is counted once"): OTel's, from
    -- the records of POST /v1/logs, and the others' (rep: reported by stream-json results, hook
    -- payloads, any event with cost or token keys). The six columns above show otel_* when
    -- otel_cost_usd > 0 or otel_tokens > 0, else rep_*.
    otel_cost_usd double precision NOT NULL DEFAULT 0,
    otel_tokens bigint NOT NULL DEFAULT 0,
    otel_input_tokens bigint NOT NULL DEFAULT 0,
    otel_output_tokens bigint NOT NULL DEFAULT 0,
    otel_cache_read_tokens bigint NOT NULL DEFAULT 0,
    otel_cache_creation_tokens bigint NOT NULL DEFAULT 0,
    rep_cost_usd double precision NOT NULL DEFAULT 0,
    rep_tokens bigint NOT NULL DEFAULT 0,
    rep_input_tokens bigint NOT NULL DEFAULT 0,
    rep_output_tokens bigint NOT NULL DEFAULT 0,
    rep_cache_read_tokens bigint NOT NULL DEFAULT 0,
    rep_cache_creation_tokens bigint NOT NULL DEFAULT 0,
    -- Budgets (version 6; proto/http.md, "Budgets"): the run's adw_start's
    -- payload.budget_usd, else ADW_INGEST_RUN_BUDGET_USD (NULL: none), and the ids of the
    -- budget_warning (80 %) and budget_exceeded (100 %) it raised, once each (NULL until then;
    -- never cleared).
    budget_usd double precision,
    budget_warning_id bigint,
    budget_exceeded_id bigint
);
CREATE INDEX adw_runs_last_id ON adw_runs (last_id DESC);
CREATE INDEX adw_runs_status ON adw_runs (status, last_id DESC);
CREATE INDEX adw_runs_running_idle ON adw_runs (updated_at)  -- the stall scan's candidates
    WHERE status = 'running' AND NOT stalled;
ALTER TABLE adw_runs ALTER COLUMN status SET STATISTICS 1000;  -- few running among many ended
CREATE INDEX adw_runs_budgeted ON adw_runs (adw_id)  -- at start: whether any run has a budget
    WHERE budget_usd IS NOT NULL;

-- One row per (run, step); steps began in first_id order.
CREATE TABLE adw_steps (
    adw_id text NOT NULL,
    step text NOT NULL,
    status text NOT NULL,                     -- from step_start / step_complete / explicit status
    event_count bigint NOT NULL,
    cost_usd double precision NOT NULL,       -- the spend rule, as the run's
    tokens bigint NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    duration_ms bigint,                       -- step_complete's duration_ms when given
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    otel_cost_usd double precision NOT NULL DEFAULT 0,  -- the two sums, as the run's
    otel_tokens bigint NOT NULL DEFAULT 0,
    rep_cost_usd double precision NOT NULL DEFAULT 0,
    rep_tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (adw_id, step)
);

-- One row per (run, agent_id): a subagent's events (those with an agent_id).
CREATE TABLE adw_agents (
    adw_id text NOT NULL,
    agent_id text NOT NULL,
    agent_type text,                          -- the latest one given
    status text NOT NULL,                     -- 'running'; 'completed' after its SubagentStop
    event_count bigint NOT NULL,
    cost_usd double precision NOT NULL,       -- summed as the run's
    tokens bigint NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    otel_cost_usd double precision NOT NULL DEFAULT 0,  -- the two sums, as the run's
    otel_tokens bigint NOT NULL DEFAULT 0,
    rep_cost_usd double precision NOT NULL DEFAULT 0,
    rep_tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (adw_id, agent_id)
);

-- One row per (run, tool_use_id): payload.tool_use_id of PreToolUse, PermissionRequest,
-- PostToolUse, PostToolUseFailure and ToolResultBlock, payload.id of a ToolUseBlock.
CREATE TABLE adw_tool_calls (
    adw_id text NOT NULL,
    tool_use_id text NOT NULL,
    tool_name text,                           -- the latest one given
    agent_id text,                            -- the subagent that made the call; NULL: the main agent
    status text NOT NULL,                     -- 'running' (PreToolUse, PermissionRequest,
                                              -- ToolUseBlock; never after a finished status),
                                              -- 'completed' (PostToolUse, ToolResultBlock),
                                              -- 'failed' (PostToolUseFailure, ToolResultBlock
                                              -- with is_error)
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (adw_id, tool_use_id)
);

-- One row per Claude Code session id: the run its events were last filed under. Kept from
-- every event whose payload has a string session_id (hook bodies, stream-json); an OTel record
-- that names no run (no adw.id resource attribute) but a session.id is filed under this run,
-- else under the first 8 characters of its session id.
CREATE TABLE adw_sessions (
    session_id text PRIMARY KEY,
    adw_id text NOT NULL,                     -- the run of the latest event with this session_id
    last_id bigint NOT NULL                   -- that event's id
);

-- One row per approval (version 5; proto/http.md, "Approvals"): a rollup of the approval
-- events ingest raises, written in the same transaction as the events. approval_requested
-- inserts the row; the first approval_decided or approval_expired updates it, only while it is
-- 'pending'. Events with these names that a client sent change no row.
CREATE TABLE adw_approvals (
    approval_id text PRIMARY KEY,             -- 32 lowercase hex characters
    adw_id text NOT NULL,
    step text,                                -- the held hook's step
    tool_name text,
    tool_use_id text,
    summary text,                             -- the hook's summary ("Bash: rm -rf build/")
    tool_input jsonb,                         -- as in approval_requested's payload
    rule text,                                -- the rule's name
    status text NOT NULL,                     -- 'pending', 'allowed', 'denied', 'expired'
    requested_id bigint NOT NULL,             -- approval_requested's id
    requested_at timestamptz NOT NULL,        -- its received_at
    expires_at timestamptz NOT NULL,          -- when the rule's on_timeout applies
    decided_id bigint,                        -- approval_decided's or approval_expired's id
    decided_at timestamptz,                   -- its received_at
    decision text,                            -- 'allow' or 'deny'; NULL when expired
    reason text,                              -- the decision's reason, or why it expired
    decided_by text,                          -- a name, 'timeout' or 'ingest'; NULL when expired
    waited_ms bigint
);
CREATE INDEX adw_approvals_status ON adw_approvals (status, requested_id DESC);
CREATE INDEX adw_approvals_adw_id ON adw_approvals (adw_id, requested_id);

-- Examples:
--   SELECT adw_id, status, cost_usd, tokens FROM adw_runs ORDER BY last_id DESC LIMIT 20;
--   SELECT step, status, duration_ms FROM adw_steps WHERE adw_id = 'a1b2c3d4' ORDER BY first_id;
--   SELECT doc->>'summary' FROM events WHERE adw_id = 'a1b2c3d4' AND event_type = 'ToolUseBlock' ORDER BY id;
--   SELECT agent_type, status, event_count, cost_usd FROM adw_agents WHERE adw_id = 'a1b2c3d4' ORDER BY first_id;
--   SELECT tool_name, count(*) FILTER (WHERE status = 'failed') FROM adw_tool_calls GROUP BY 1;
--   SELECT adw_id, otel_cost_usd, rep_cost_usd, cost_usd FROM adw_runs WHERE otel_cost_usd > 0;
--   SELECT approval_id, adw_id, summary, expires_at FROM adw_approvals WHERE status = 'pending'
--       ORDER BY requested_id DESC;
--   SELECT id, doc->>'summary' FROM events WHERE lower(coalesce(doc->>'summary', '') || ...)
--       ILIKE '%auth.py%' ORDER BY id DESC LIMIT 50;   -- the index's expression, written whole
--   SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
--       JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass;  -- partitions
