#include "migrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each entry is one version, applied in its own transaction. Never edit a released entry:
 * add a new one. proto/schema.sql shows the result for people querying the database. */
static const char *const MIGRATIONS[] = {
    /* 1: events, run state, step state, epoch */
    "CREATE TABLE adw_meta (\n"
    "    key text PRIMARY KEY,\n"
    "    value text NOT NULL\n"
    ");\n"
    "INSERT INTO adw_meta (key, value)\n"
    "    VALUES ('epoch', (floor(random() * 9007199254740990) + 1)::bigint::text);\n"
    "CREATE TABLE events (\n"
    "    id bigint PRIMARY KEY,\n"
    "    adw_id text NOT NULL,\n"
    "    type text NOT NULL,\n"
    "    step text,\n"
    "    event_type text,\n"
    "    event text,\n"
    "    status text,\n"
    "    ts timestamptz NOT NULL,\n"
    "    received_at timestamptz NOT NULL,\n"
    "    event_id text,\n"
    "    doc jsonb NOT NULL\n"
    ");\n"
    "CREATE INDEX events_adw_id_id ON events (adw_id, id);\n"
    "CREATE UNIQUE INDEX events_event_id ON events (event_id) WHERE event_id IS NOT NULL;\n"
    "CREATE TABLE adw_runs (\n"
    "    adw_id text PRIMARY KEY,\n"
    "    status text NOT NULL,\n"
    "    current_step text,\n"
    "    event_count bigint NOT NULL,\n"
    "    cost_usd double precision NOT NULL,\n"
    "    tokens bigint NOT NULL,\n"
    "    input_tokens bigint NOT NULL,\n"
    "    output_tokens bigint NOT NULL,\n"
    "    cache_read_tokens bigint NOT NULL,\n"
    "    cache_creation_tokens bigint NOT NULL,\n"
    "    first_ts timestamptz NOT NULL,\n"
    "    last_ts timestamptz NOT NULL,\n"
    "    first_id bigint NOT NULL,\n"
    "    last_id bigint NOT NULL,\n"
    "    updated_at timestamptz NOT NULL\n"
    ");\n"
    "CREATE INDEX adw_runs_last_id ON adw_runs (last_id DESC);\n"
    "CREATE INDEX adw_runs_status ON adw_runs (status, last_id DESC);\n"
    "CREATE TABLE adw_steps (\n"
    "    adw_id text NOT NULL,\n"
    "    step text NOT NULL,\n"
    "    status text NOT NULL,\n"
    "    event_count bigint NOT NULL,\n"
    "    cost_usd double precision NOT NULL,\n"
    "    tokens bigint NOT NULL,\n"
    "    first_ts timestamptz NOT NULL,\n"
    "    last_ts timestamptz NOT NULL,\n"
    "    duration_ms bigint,\n"
    "    first_id bigint NOT NULL,\n"
    "    last_id bigint NOT NULL,\n"
    "    PRIMARY KEY (adw_id, step)\n"
    ");\n",
    /* 2: the run model: subagents, tool calls, stalls, stop failures; a run's status only
     * from run-level events, recomputed for the rows stored before */
    "ALTER TABLE events ADD COLUMN agent_id text, ADD COLUMN agent_type text;\n"
    "CREATE INDEX events_adw_id_agent_id ON events (adw_id, agent_id, id)\n"
    "    WHERE agent_id IS NOT NULL;\n"
    "ALTER TABLE adw_runs ADD COLUMN stalled boolean NOT NULL DEFAULT false,\n"
    "    ADD COLUMN stop_failure text, ADD COLUMN stop_failure_id bigint;\n"
    "CREATE INDEX adw_runs_running_idle ON adw_runs (updated_at)\n"
    "    WHERE status = 'running' AND NOT stalled;\n"
    "UPDATE adw_runs r SET status = coalesce((\n"
    "    SELECT CASE e.event WHEN 'adw_complete' THEN 'completed'\n"
    "                        WHEN 'adw_failed' THEN 'failed' ELSE e.status END\n"
    "    FROM events e\n"
    "    WHERE e.adw_id = r.adw_id AND e.type = 'system'\n"
    "      AND (e.event IN ('adw_complete', 'adw_failed')\n"
    "           OR (e.step IS NULL AND e.status IS NOT NULL))\n"
    "    ORDER BY e.id DESC LIMIT 1), 'running');\n"
    "CREATE TABLE adw_agents (\n"
    "    adw_id text NOT NULL,\n"
    "    agent_id text NOT NULL,\n"
    "    agent_type text,\n"
    "    status text NOT NULL,\n"
    "    event_count bigint NOT NULL,\n"
    "    cost_usd double precision NOT NULL,\n"
    "    tokens bigint NOT NULL,\n"
    "    first_ts timestamptz NOT NULL,\n"
    "    last_ts timestamptz NOT NULL,\n"
    "    first_id bigint NOT NULL,\n"
    "    last_id bigint NOT NULL,\n"
    "    PRIMARY KEY (adw_id, agent_id)\n"
    ");\n"
    "CREATE TABLE adw_tool_calls (\n"
    "    adw_id text NOT NULL,\n"
    "    tool_use_id text NOT NULL,\n"
    "    tool_name text,\n"
    "    agent_id text,\n"
    "    status text NOT NULL,\n"
    "    first_id bigint NOT NULL,\n"
    "    last_id bigint NOT NULL,\n"
    "    first_ts timestamptz NOT NULL,\n"
    "    last_ts timestamptz NOT NULL,\n"
    "    PRIMARY KEY (adw_id, tool_use_id)\n"
    ");\n",
    /* 3: OTel's spend kept apart from the others' (the totals shown: OTel's when a row has
     * any, else the others'; the spend stored before is the others'), and the run each session
     * id was last filed under, from the events stored before */
    "CREATE TABLE adw_sessions (\n"
    "    session_id text PRIMARY KEY,\n"
    "    adw_id text NOT NULL,\n"
    "    last_id bigint NOT NULL\n"
    ");\n"
    "ALTER TABLE adw_runs\n"
    "    ADD COLUMN otel_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_input_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_output_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_cache_read_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_cache_creation_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_input_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_output_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_cache_read_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_cache_creation_tokens bigint NOT NULL DEFAULT 0;\n"
    /* Wider rows make the planner's choice between adw_runs_status and the stall scan's
     * partial index hang on how many 'running' rows ANALYZE's sample happens to hold: a
     * larger sample counts the few running runs among many finished ones. */
    "ALTER TABLE adw_runs ALTER COLUMN status SET STATISTICS 1000;\n"
    "UPDATE adw_runs SET rep_cost_usd = cost_usd, rep_tokens = tokens,\n"
    "    rep_input_tokens = input_tokens, rep_output_tokens = output_tokens,\n"
    "    rep_cache_read_tokens = cache_read_tokens,\n"
    "    rep_cache_creation_tokens = cache_creation_tokens;\n"
    "ALTER TABLE adw_steps\n"
    "    ADD COLUMN otel_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_tokens bigint NOT NULL DEFAULT 0;\n"
    "UPDATE adw_steps SET rep_cost_usd = cost_usd, rep_tokens = tokens;\n"
    "ALTER TABLE adw_agents\n"
    "    ADD COLUMN otel_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN otel_tokens bigint NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_cost_usd double precision NOT NULL DEFAULT 0,\n"
    "    ADD COLUMN rep_tokens bigint NOT NULL DEFAULT 0;\n"
    "UPDATE adw_agents SET rep_cost_usd = cost_usd, rep_tokens = tokens;\n"
    "INSERT INTO adw_sessions (session_id, adw_id, last_id)\n"
    "    SELECT DISTINCT ON (doc->'payload'->>'session_id')\n"
    "           doc->'payload'->>'session_id', adw_id, id\n"
    "    FROM events\n"
    "    WHERE jsonb_typeof(doc->'payload'->'session_id') = 'string'\n"
    "      AND doc->'payload'->>'session_id' <> ''\n"
    "    ORDER BY doc->'payload'->>'session_id', id DESC;\n",
    /* 4: search (GET /api/search at the gateway): a trigram index over each event's searched
     * text, its summary, tool name and target; the gateway's query (gateway/search.c) writes
     * the same expression. pg_trgm is a trusted extension: the database's owner may create it. */
    "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
    "CREATE INDEX events_search ON events USING gin ((lower(\n"
    "    coalesce(doc->>'summary', '') || ' ' || coalesce(doc->'payload'->>'tool_name', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'file_path', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'command', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'pattern', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'url', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'path', '')\n"
    "    || ' ' || coalesce(doc->'payload'->'tool_input'->>'query', ''))) gin_trgm_ops);\n",
    /* 5: approvals (a rollup of the approval events ingest raises, proto/http.md) */
    "CREATE TABLE adw_approvals (\n"
    "    approval_id text PRIMARY KEY,\n"
    "    adw_id text NOT NULL,\n"
    "    step text,\n"
    "    tool_name text,\n"
    "    tool_use_id text,\n"
    "    summary text,\n"
    "    tool_input jsonb,\n"
    "    rule text,\n"
    "    status text NOT NULL,\n"
    "    requested_id bigint NOT NULL,\n"
    "    requested_at timestamptz NOT NULL,\n"
    "    expires_at timestamptz NOT NULL,\n"
    "    decided_id bigint,\n"
    "    decided_at timestamptz,\n"
    "    decision text,\n"
    "    reason text,\n"
    "    decided_by text,\n"
    "    waited_ms bigint\n"
    ");\n"
    "CREATE INDEX adw_approvals_status ON adw_approvals (status, requested_id DESC);\n"
    "CREATE INDEX adw_approvals_adw_id ON adw_approvals (adw_id, requested_id);\n",
    /* 6: budgets: a run's budget (its adw_start's payload.budget_usd, else ingest's default;
     * NULL: none) and the ids of the budget_warning and budget_exceeded it raised (once each);
     * the partial index tells a writer at start whether any run has a budget */
    "ALTER TABLE adw_runs ADD COLUMN budget_usd double precision,\n"
    "    ADD COLUMN budget_warning_id bigint,\n"
    "    ADD COLUMN budget_exceeded_id bigint;\n"
    "CREATE INDEX adw_runs_budgeted ON adw_runs (adw_id) WHERE budget_usd IS NOT NULL;\n",
    /* 7: events partitioned by id range, without copying a row: the table becomes the first
     * partition, events_p1 (ids 1 to its highest; the writer creates the next ones ahead,
     * ingest/partition.c), attached after a CHECK constraint validated beforehand so that the
     * ATTACH does not scan it again; its indexes attach to the partitioned ones. Its unique
     * index on event_id stays its own: a unique index over all partitions would have to hold the
     * partition key, so each partition has its own, and the writer looks every batch's
     * event_ids up before inserting (proto/decisions.md). An empty table is dropped instead
     * (the writer creates events_p1). adw_meta gains first_kept_id, which the retention moves. */
    "DO $$\n"
    "DECLARE top bigint;\n"
    "BEGIN\n"
    "    LOCK TABLE events IN ACCESS EXCLUSIVE MODE;\n"
    "    SELECT coalesce(max(id), 0) INTO top FROM events;\n"
    "    ALTER TABLE events RENAME TO events_p1;\n"
    "    ALTER INDEX events_pkey RENAME TO events_p1_pkey;\n"
    "    ALTER INDEX events_adw_id_id RENAME TO events_p1_adw_id_id;\n"
    "    ALTER INDEX events_event_id RENAME TO events_p1_event_id;\n"
    "    ALTER INDEX events_adw_id_agent_id RENAME TO events_p1_adw_id_agent_id;\n"
    "    ALTER INDEX events_search RENAME TO events_p1_search;\n"
    "    CREATE TABLE events (\n"
    "        id bigint NOT NULL,\n"
    "        adw_id text NOT NULL,\n"
    "        type text NOT NULL,\n"
    "        step text,\n"
    "        event_type text,\n"
    "        event text,\n"
    "        status text,\n"
    "        ts timestamptz NOT NULL,\n"
    "        received_at timestamptz NOT NULL,\n"
    "        event_id text,\n"
    "        doc jsonb NOT NULL,\n"
    "        agent_id text,\n"
    "        agent_type text,\n"
    "        PRIMARY KEY (id)\n"
    "    ) PARTITION BY RANGE (id);\n"
    "    CREATE INDEX events_adw_id_id ON events (adw_id, id);\n"
    "    CREATE INDEX events_adw_id_agent_id ON events (adw_id, agent_id, id)\n"
    "        WHERE agent_id IS NOT NULL;\n"
    "    CREATE INDEX events_search ON events USING gin ((lower(\n"
    "        coalesce(doc->>'summary', '') || ' ' || coalesce(doc->'payload'->>'tool_name', "
    "'')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'file_path', '')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'command', '')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'pattern', '')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'url', '')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'path', '')\n"
    "        || ' ' || coalesce(doc->'payload'->'tool_input'->>'query', ''))) gin_trgm_ops);\n"
    "    IF top = 0 THEN\n"
    "        DROP TABLE events_p1;\n"
    "    ELSE\n"
    "        EXECUTE format('ALTER TABLE events_p1 ADD CONSTRAINT events_p1_ids'\n"
    "            ' CHECK (id >= 1 AND id < %s) NOT VALID', top + 1);\n"
    "        ALTER TABLE events_p1 VALIDATE CONSTRAINT events_p1_ids;\n"
    "        EXECUTE format('ALTER TABLE events ATTACH PARTITION events_p1'\n"
    "            ' FOR VALUES FROM (1) TO (%s)', top + 1);\n"
    "        ALTER TABLE events_p1 DROP CONSTRAINT events_p1_ids;\n"
    "    END IF;\n"
    "    INSERT INTO adw_meta (key, value) VALUES ('first_kept_id', '1')\n"
    "        ON CONFLICT (key) DO NOTHING;\n"
    "END\n"
    "$$;\n",
    /* 8: what the writer's check of the partitions below the one a batch goes to calls on an
     * event_id stored there (batch_sql.h, BATCH_OLDER_NAME): it fails the batch's transaction
     * as that partition's unique index would, with unique_violation naming
     * events_older_event_id, and the writer commits the batch again after a lookup
     * (proto/decisions.md, "Deduplication without a global unique index"). */
    "CREATE FUNCTION adw_event_id_taken(eid text, stored_id bigint) RETURNS void\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    RAISE unique_violation USING CONSTRAINT = 'events_older_event_id',\n"
    "        MESSAGE = format('event_id %s is stored already, as event %s', eid, stored_id);\n"
    "END\n"
    "$$;\n",
};

#define NMIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int migrate_latest(void)
{
    return NMIGRATIONS;
}

/* The statement through the caller's exec, else PQexec / PQexecParams. */
static PGresult *run(const migrate_db_t *db, const char *sql, int nparams,
                     const char *const *params)
{
    if (db->exec)
        return db->exec(db->ctx, sql, nparams, params);
    return nparams ? PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0)
                   : PQexec(db->conn, sql);
}

static int exec_ok(const migrate_db_t *db, const char *sql, char *err, size_t errlen)
{
    PGconn *conn = db->conn;
    PGresult *r = run(db, sql, 0, NULL);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -EIO;
}

int migrate_apply(const migrate_db_t *db, char *err, size_t errlen)
{
    PGconn *conn = db->conn;
    if (exec_ok(db,
                "CREATE TABLE IF NOT EXISTS adw_schema_migrations (\n"
                "    version integer PRIMARY KEY,\n"
                "    applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen))
        return -EIO;
    PGresult *r = run(db, "SELECT coalesce(max(version), 0) FROM adw_schema_migrations", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        PQclear(r);
        return -EIO;
    }
    const char *got = PQgetvalue(r, 0, 0);
    char *end = NULL;
    long current = strtol(got, &end, 10);
    if (end == got || *end || current < 0) {
        snprintf(err, errlen, "adw_schema_migrations holds version '%.32s', not a version", got);
        PQclear(r);
        return -EPROTO;
    }
    PQclear(r);
    if (current > NMIGRATIONS) {
        snprintf(err, errlen,
                 "the database schema is version %ld but this adw-ingest knows only up to %d: "
                 "run a newer adw-ingest",
                 current, NMIGRATIONS);
        return -EPROTO;
    }
    for (int v = (int)current + 1; v <= NMIGRATIONS; v++) {
        if (!MIGRATIONS[v - 1])
            continue; /* a version this program does not have */
        char ver[16];
        snprintf(ver, sizeof ver, "%d", v);
        const char *params[1] = {ver};
        if (exec_ok(db, "BEGIN", err, errlen))
            return -EIO;
        if (exec_ok(db, MIGRATIONS[v - 1], err, errlen))
            goto fail;
        r = run(db, "INSERT INTO adw_schema_migrations (version) VALUES ($1::int)", 1, params);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errlen, "%s", PQerrorMessage(conn));
        PQclear(r);
        if (!ok || exec_ok(db, "COMMIT", err, errlen))
            goto fail;
    }
    return 0;
fail:;
    char keep[256];
    snprintf(keep, sizeof keep, "%s", err);
    PQclear(run(db, "ROLLBACK", 0, NULL));
    snprintf(err, errlen, "migration failed: %s", keep);
    return -EIO;
}

int migrate_epoch(const migrate_db_t *db, int64_t *epoch, char *err, size_t errlen)
{
    PGconn *conn = db->conn;
    PGresult *r = run(db, "SELECT value FROM adw_meta WHERE key = 'epoch'", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(err, errlen, "cannot read the epoch: %s", PQerrorMessage(conn));
        PQclear(r);
        return -EIO;
    }
    *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}
