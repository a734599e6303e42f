#include "batch_sql.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pgbin.h"

/* Each kind's columns, in the statement's parameter order. */
static const upsert_col_t RUN_COLS[] = {
    UPSERT_ADW_ID,       UPSERT_STATUS,          UPSERT_CURRENT_STEP, UPSERT_N,
    UPSERT_COST,         UPSERT_TOKENS,          UPSERT_ITOK,         UPSERT_OTOK,
    UPSERT_CRTOK,        UPSERT_CCTOK,           UPSERT_FIRST_TS,     UPSERT_LAST_TS,
    UPSERT_FIRST_ID,     UPSERT_LAST_ID,         UPSERT_UPDATED,      UPSERT_STALLED,
    UPSERT_STOP_FAILURE, UPSERT_STOP_FAILURE_ID, UPSERT_END};
static const upsert_col_t STEP_COLS[] = {UPSERT_ADW_ID,   UPSERT_KEY,     UPSERT_STATUS,
                                         UPSERT_N,        UPSERT_COST,    UPSERT_TOKENS,
                                         UPSERT_FIRST_TS, UPSERT_LAST_TS, UPSERT_DURATION,
                                         UPSERT_FIRST_ID, UPSERT_LAST_ID, UPSERT_END};
static const upsert_col_t AGENT_COLS[] = {
    UPSERT_ADW_ID, UPSERT_KEY,      UPSERT_AGENT_TYPE, UPSERT_STATUS,   UPSERT_N,       UPSERT_COST,
    UPSERT_TOKENS, UPSERT_FIRST_TS, UPSERT_LAST_TS,    UPSERT_FIRST_ID, UPSERT_LAST_ID, UPSERT_END};
static const upsert_col_t TOOL_COLS[] = {
    UPSERT_ADW_ID,   UPSERT_KEY,     UPSERT_TOOL_NAME, UPSERT_AGENT_ID, UPSERT_STATUS,
    UPSERT_FIRST_TS, UPSERT_LAST_TS, UPSERT_FIRST_ID,  UPSERT_LAST_ID,  UPSERT_END};
/* The two sums of the spend rule, sent after the columns above (same map, same order). */
static const upsert_col_t RUN_SPEND_COLS[] = {
    UPSERT_OTEL_COST,  UPSERT_OTEL_TOKENS, UPSERT_OTEL_ITOK,  UPSERT_OTEL_OTOK, UPSERT_OTEL_CRTOK,
    UPSERT_OTEL_CCTOK, UPSERT_REP_COST,    UPSERT_REP_TOKENS, UPSERT_REP_ITOK,  UPSERT_REP_OTOK,
    UPSERT_REP_CRTOK,  UPSERT_REP_CCTOK,   UPSERT_END};
static const upsert_col_t SPEND_COLS[] = {UPSERT_OTEL_COST, UPSERT_OTEL_TOKENS, UPSERT_REP_COST,
                                          UPSERT_REP_TOKENS, UPSERT_END};
/* A session: its id (in the adw_id slot), its run, the id of the event that filed it. */
static const upsert_col_t SESSION_COLS[] = {UPSERT_ADW_ID, UPSERT_SESSION_RUN, UPSERT_LAST_ID,
                                            UPSERT_END};

#define NCOLS(cols) ((int)(sizeof(cols) / sizeof((cols)[0])) - 1)
/* The one-statement batch's parameters: the events' columns, then each kind's, in
 * batch_sql_kind's order. */
_Static_assert(BATCH_EVENT_COLS + NCOLS(RUN_COLS) + NCOLS(STEP_COLS) + NCOLS(AGENT_COLS) +
                       NCOLS(TOOL_COLS) + NCOLS(RUN_SPEND_COLS) + 2 * NCOLS(SPEND_COLS) +
                       NCOLS(SESSION_COLS) ==
                   BATCH_NPARAMS,
               "BATCH_SQL takes $1..$85");

const uint32_t BATCH_EVENT_OIDS[BATCH_EVENT_COLS] = {
    PGBIN_OID_INT8,  PGBIN_OID_TEXT, PGBIN_OID_TEXT,        PGBIN_OID_TEXT,        PGBIN_OID_TEXT,
    PGBIN_OID_TEXT,  PGBIN_OID_TEXT, PGBIN_OID_TIMESTAMPTZ, PGBIN_OID_TIMESTAMPTZ, PGBIN_OID_TEXT,
    PGBIN_OID_JSONB, PGBIN_OID_TEXT, PGBIN_OID_TEXT};

const rollup_map_t *batch_sql_kind(const rollup_t *agg, int k, const upsert_col_t **cols)
{
    const rollup_map_t *maps[BATCH_NKINDS] = {&agg->runs,   &agg->steps,   &agg->agents,
                                              &agg->tools,  &agg->runs,    &agg->steps,
                                              &agg->agents, &agg->sessions};
    static const upsert_col_t *const kind_cols[BATCH_NKINDS] = {
        RUN_COLS,       STEP_COLS,  AGENT_COLS, TOOL_COLS,
        RUN_SPEND_COLS, SPEND_COLS, SPEND_COLS, SESSION_COLS};
    *cols = kind_cols[k];
    return maps[k];
}

/* Saturating sums of a stored total and a batch's (both non-negative). */
#define SAT_BIGINT(t, col)                                                                         \
    " CASE WHEN excluded." col " > 9223372036854775807 - " t "." col                               \
    " THEN 9223372036854775807 ELSE " t "." col " + excluded." col " END"
#define SAT_FLOAT(t, col)                                                                          \
    " CASE WHEN excluded." col " > 1.7976931348623157e308::float8 - " t "." col                    \
    " THEN 1.7976931348623157e308::float8 ELSE " t "." col " + excluded." col " END"
/* The spend rule (rollup.h) on a stored row t and a batch's sums: the totals shown are OTel's
 * when the row then has any OTel spend, else the others'. */
#define HAS_OTEL(t)                                                                                \
    " (" t ".otel_cost_usd > 0 OR excluded.otel_cost_usd > 0 OR " t ".otel_tokens > 0"             \
    " OR excluded.otel_tokens > 0)"
// clang-format off
#define SHOWN_BIGINT(t, col)                                                                       \
    " CASE WHEN" HAS_OTEL(t)                                                                       \
    " THEN" SAT_BIGINT(t, "otel_" col)                                                             \
    " ELSE" SAT_BIGINT(t, "rep_" col) " END"
#define SHOWN_FLOAT(t, col)                                                                        \
    " CASE WHEN" HAS_OTEL(t)                                                                       \
    " THEN" SAT_FLOAT(t, "otel_" col)                                                              \
    " ELSE" SAT_FLOAT(t, "rep_" col) " END"
// clang-format on

/* The statements read as SQL, a clause a line. */
// clang-format off
/* A batch in one statement: the events' rows ($1..$13), then what they add to their runs
 * ($14..$31, their two sums of spend $63..$74), steps ($32..$42, $75..$78), agents ($43..$53,
 * $79..$82) and tool calls ($54..$62), and the sessions they file ($83..$85). Each parameter is
 * an array, one element per event, run, step, agent, tool call or session; a batch that went in
 * by COPY passes no events. Each row is written once: the batch's aggregates are one per key. */
#define BATCH_SQL_HEAD \
    "WITH rb AS (SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::bigint[]," \
    " $18::float8[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[]," \
    " $24::timestamptz[], $25::timestamptz[], $26::bigint[], $27::bigint[], $28::timestamptz[]," \
    " $29::boolean[], $30::text[], $31::bigint[], $63::float8[], $64::bigint[], $65::bigint[]," \
    " $66::bigint[], $67::bigint[], $68::bigint[], $69::float8[], $70::bigint[], $71::bigint[]," \
    " $72::bigint[], $73::bigint[], $74::bigint[])" \
    " AS t(adw_id, status, current_step, n, cost, tokens, itok, otok, crtok, cctok, first_ts," \
    " last_ts, first_id, last_id, updated_at, stalled, stop_failure, stop_failure_id," \
    " otel_cost_usd, otel_tokens, otel_input_tokens, otel_output_tokens, otel_cache_read_tokens," \
    " otel_cache_creation_tokens, rep_cost_usd, rep_tokens, rep_input_tokens, rep_output_tokens," \
    " rep_cache_read_tokens, rep_cache_creation_tokens))," \
    " sb AS (SELECT * FROM unnest($32::text[], $33::text[], $34::text[], $35::bigint[]," \
    " $36::float8[], $37::bigint[], $38::timestamptz[], $39::timestamptz[], $40::bigint[]," \
    " $41::bigint[], $42::bigint[], $75::float8[], $76::bigint[], $77::float8[], $78::bigint[])" \
    " AS t(adw_id, step, status, n, cost, tokens, first_ts, last_ts, duration_ms, first_id," \
    " last_id, otel_cost_usd, otel_tokens, rep_cost_usd, rep_tokens))," \
    " ev AS (INSERT INTO events (id, adw_id, type, step, event_type, event, status, ts," \
    " received_at, event_id, doc, agent_id, agent_type) SELECT * FROM unnest($1::bigint[]," \
    " $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]," \
    " $9::timestamptz[], $10::text[], $11::jsonb[], $12::text[], $13::text[]))," \
    " ru AS (INSERT INTO adw_runs AS r (adw_id, status, current_step, event_count, cost_usd," \
    " tokens, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, first_ts," \
    " last_ts, first_id, last_id, updated_at, stalled, stop_failure, stop_failure_id," \
    " otel_cost_usd, otel_tokens, otel_input_tokens, otel_output_tokens, otel_cache_read_tokens," \
    " otel_cache_creation_tokens, rep_cost_usd, rep_tokens, rep_input_tokens, rep_output_tokens," \
    " rep_cache_read_tokens, rep_cache_creation_tokens)" \
    " SELECT adw_id, coalesce(status, 'running'), current_step, n, cost, tokens, itok, otok," \
    " crtok, cctok, first_ts, last_ts, first_id, last_id, updated_at, coalesce(stalled, false)," \
    " stop_failure," \
    " stop_failure_id, otel_cost_usd, otel_tokens, otel_input_tokens, otel_output_tokens," \
    " otel_cache_read_tokens, otel_cache_creation_tokens, rep_cost_usd, rep_tokens," \
    " rep_input_tokens, rep_output_tokens, rep_cache_read_tokens, rep_cache_creation_tokens" \
    " FROM rb" \
    " ON CONFLICT (adw_id) DO UPDATE SET" \
    " status = coalesce((SELECT rb.status FROM rb WHERE rb.adw_id = excluded.adw_id), r.status)," \
    " current_step = coalesce(excluded.current_step, r.current_step)," \
    " event_count = r.event_count + excluded.event_count," \
    " otel_cost_usd =" SAT_FLOAT("r", "otel_cost_usd") "," \
    " otel_tokens =" SAT_BIGINT("r", "otel_tokens") "," \
    " otel_input_tokens =" SAT_BIGINT("r", "otel_input_tokens") "," \
    " otel_output_tokens =" SAT_BIGINT("r", "otel_output_tokens") "," \
    " otel_cache_read_tokens =" SAT_BIGINT("r", "otel_cache_read_tokens") "," \
    " otel_cache_creation_tokens =" SAT_BIGINT("r", "otel_cache_creation_tokens") "," \
    " rep_cost_usd =" SAT_FLOAT("r", "rep_cost_usd") "," \
    " rep_tokens =" SAT_BIGINT("r", "rep_tokens") "," \
    " rep_input_tokens =" SAT_BIGINT("r", "rep_input_tokens") "," \
    " rep_output_tokens =" SAT_BIGINT("r", "rep_output_tokens") "," \
    " rep_cache_read_tokens =" SAT_BIGINT("r", "rep_cache_read_tokens") "," \
    " rep_cache_creation_tokens =" SAT_BIGINT("r", "rep_cache_creation_tokens") "," \
    " cost_usd =" SHOWN_FLOAT("r", "cost_usd") "," \
    " tokens =" SHOWN_BIGINT("r", "tokens") "," \
    " input_tokens =" SHOWN_BIGINT("r", "input_tokens") "," \
    " output_tokens =" SHOWN_BIGINT("r", "output_tokens") "," \
    " cache_read_tokens =" SHOWN_BIGINT("r", "cache_read_tokens") "," \
    " cache_creation_tokens =" SHOWN_BIGINT("r", "cache_creation_tokens") "," \
    " first_ts = least(r.first_ts, excluded.first_ts)," \
    " last_ts = greatest(r.last_ts, excluded.last_ts)," \
    " last_id = greatest(r.last_id, excluded.last_id)," \
    " updated_at = excluded.updated_at," \
    " stalled = coalesce((SELECT rb.stalled FROM rb WHERE rb.adw_id = excluded.adw_id)," \
    " r.stalled)," \
    " stop_failure = CASE WHEN excluded.stop_failure_id IS NULL THEN r.stop_failure" \
    " ELSE excluded.stop_failure END," \
    " stop_failure_id = coalesce(excluded.stop_failure_id, r.stop_failure_id))"

/* The steps' upsert: the lean statement's last, the whole one's CTE su. */
#define BATCH_SQL_STEPS \
    " INSERT INTO adw_steps AS s (adw_id, step, status, event_count, cost_usd, tokens," \
    " first_ts, last_ts, duration_ms, first_id, last_id, otel_cost_usd, otel_tokens," \
    " rep_cost_usd, rep_tokens)" \
    " SELECT adw_id, step, coalesce(status, 'running'), n, cost, tokens, first_ts, last_ts," \
    " duration_ms, first_id, last_id, otel_cost_usd, otel_tokens, rep_cost_usd, rep_tokens" \
    " FROM sb" \
    " ON CONFLICT (adw_id, step) DO UPDATE SET" \
    " status = coalesce((SELECT sb.status FROM sb WHERE sb.adw_id = excluded.adw_id" \
    " AND sb.step = excluded.step), s.status)," \
    " event_count = s.event_count + excluded.event_count," \
    " otel_cost_usd =" SAT_FLOAT("s", "otel_cost_usd") "," \
    " otel_tokens =" SAT_BIGINT("s", "otel_tokens") "," \
    " rep_cost_usd =" SAT_FLOAT("s", "rep_cost_usd") "," \
    " rep_tokens =" SAT_BIGINT("s", "rep_tokens") "," \
    " cost_usd =" SHOWN_FLOAT("s", "cost_usd") "," \
    " tokens =" SHOWN_BIGINT("s", "tokens") "," \
    " first_ts = least(s.first_ts, excluded.first_ts)," \
    " last_ts = greatest(s.last_ts, excluded.last_ts)," \
    " duration_ms = coalesce(excluded.duration_ms, s.duration_ms)," \
    " last_id = greatest(s.last_id, excluded.last_id)"

static const char BATCH_SQL[] =
    BATCH_SQL_HEAD ", su AS (" BATCH_SQL_STEPS "),"
    /* An agent's batch status is NULL or 'completed' (its SubagentStop): 'completed' stays. */
    " au AS (INSERT INTO adw_agents AS a (adw_id, agent_id, agent_type, status, event_count,"
    " cost_usd, tokens, first_ts, last_ts, first_id, last_id, otel_cost_usd, otel_tokens,"
    " rep_cost_usd, rep_tokens)"
    " SELECT adw_id, agent_id, agent_type, coalesce(status, 'running'), n, cost, tokens,"
    " first_ts, last_ts, first_id, last_id, otel_cost_usd, otel_tokens, rep_cost_usd, rep_tokens"
    " FROM unnest($43::text[], $44::text[], $45::text[],"
    " $46::text[], $47::bigint[], $48::float8[], $49::bigint[], $50::timestamptz[],"
    " $51::timestamptz[], $52::bigint[], $53::bigint[], $79::float8[], $80::bigint[],"
    " $81::float8[], $82::bigint[])"
    " AS t(adw_id, agent_id, agent_type, status, n, cost, tokens, first_ts, last_ts, first_id,"
    " last_id, otel_cost_usd, otel_tokens, rep_cost_usd, rep_tokens)"
    " ON CONFLICT (adw_id, agent_id) DO UPDATE SET"
    " agent_type = coalesce(excluded.agent_type, a.agent_type),"
    " status = CASE WHEN excluded.status = 'completed' THEN excluded.status ELSE a.status END,"
    " event_count = a.event_count + excluded.event_count,"
    " otel_cost_usd =" SAT_FLOAT("a", "otel_cost_usd") ","
    " otel_tokens =" SAT_BIGINT("a", "otel_tokens") ","
    " rep_cost_usd =" SAT_FLOAT("a", "rep_cost_usd") ","
    " rep_tokens =" SAT_BIGINT("a", "rep_tokens") ","
    " cost_usd =" SHOWN_FLOAT("a", "cost_usd") ","
    " tokens =" SHOWN_BIGINT("a", "tokens") ","
    " first_ts = least(a.first_ts, excluded.first_ts),"
    " last_ts = greatest(a.last_ts, excluded.last_ts),"
    " last_id = greatest(a.last_id, excluded.last_id)),"
    /* A session's latest filing wins (ids grow with commit order). */
    " se AS (INSERT INTO adw_sessions AS x (session_id, adw_id, last_id)"
    " SELECT * FROM unnest($83::text[], $84::text[], $85::bigint[])"
    " ON CONFLICT (session_id) DO UPDATE SET adw_id = excluded.adw_id,"
    " last_id = excluded.last_id WHERE excluded.last_id > x.last_id)"
    /* A tool call's 'running' never replaces a stored 'completed' or 'failed'. */
    " INSERT INTO adw_tool_calls AS c (adw_id, tool_use_id, tool_name, agent_id, status,"
    " first_ts, last_ts, first_id, last_id)"
    " SELECT * FROM unnest($54::text[], $55::text[], $56::text[], $57::text[], $58::text[],"
    " $59::timestamptz[], $60::timestamptz[], $61::bigint[], $62::bigint[])"
    " ON CONFLICT (adw_id, tool_use_id) DO UPDATE SET"
    " tool_name = coalesce(excluded.tool_name, c.tool_name),"
    " agent_id = coalesce(excluded.agent_id, c.agent_id),"
    " status = CASE WHEN excluded.status = 'running' THEN c.status ELSE excluded.status END,"
    " first_ts = least(c.first_ts, excluded.first_ts),"
    " last_ts = greatest(c.last_ts, excluded.last_ts),"
    " last_id = greatest(c.last_id, excluded.last_id)";
/* The same without agents, tool calls and sessions: their CTEs would write nothing (one
 * event of most kinds), yet PostgreSQL would set up each of them. */
static const char BATCH_LEAN_SQL[] = BATCH_SQL_HEAD BATCH_SQL_STEPS;
/* The partitions below $1 only (pruned when the plan starts), by their unique indexes. */
static const char BATCH_OLDER_SQL[] =
    "SELECT adw_event_id_taken(event_id, id) FROM events"
    " WHERE id < $1::bigint AND event_id = ANY($2::text[]) LIMIT 1";
// clang-format on

int batch_sql_lean_kind(int k)
{
    return k == 0 || k == 1 || k == 4 || k == 5; /* runs, steps and their sums of spend */
}

int batch_sql_prepare(PGconn *conn, const pgwait_t *wait, char *err, size_t errlen)
{
    /* The lean statement does not name the parameters of agents, tool calls and sessions: they
     * are declared text, and sent NULL. */
    Oid lean_types[BATCH_NPARAMS] = {0};
    for (int k = 0, at = BATCH_EVENT_COLS; k < BATCH_NKINDS; k++) {
        const upsert_col_t *cols = NULL;
        rollup_t none = {0};
        (void)batch_sql_kind(&none, k, &cols);
        for (; *cols != UPSERT_END; cols++, at++)
            lean_types[at] = batch_sql_lean_kind(k) ? 0 : PGBIN_OID_TEXT;
    }
    const struct {
        const char *name, *sql;
        const Oid *types;
        int nparams;
    } stmts[] = {{BATCH_SQL_NAME, BATCH_SQL, NULL, BATCH_NPARAMS},
                 {BATCH_LEAN_NAME, BATCH_LEAN_SQL, lean_types, BATCH_NPARAMS},
                 {BATCH_OLDER_NAME, BATCH_OLDER_SQL, NULL, 2}};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *r = pgwait_collect(
            conn,
            PQsendPrepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, stmts[i].types),
            wait);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            snprintf(err, errlen, "preparing %s: %s", stmts[i].name, PQerrorMessage(conn));
            char *nl = strchr(err, '\n');
            if (nl)
                *nl = '\0';
            return -EIO;
        }
    }
    return 0;
}
