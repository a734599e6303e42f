#include "api.h"

#include "approvals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "db.h"
#include "dbjson.h"
#include "frame.h"
#include "jsonw.h"
#include "kept.h"
#include "log.h"
#include "timefmt.h"

/* ------------------------------------------------------------------------------------------ */
/* Parsing */

static int valid_adw_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > ADW_ADW_ID_MAX)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

int api_parse(const char *path, const param_t *params, size_t n, api_query_t *q, char *err,
              size_t errlen)
{
    memset(q, 0, sizeof *q);
    filter_init(&q->filter);
    q->limit = API_LIMIT_DEFAULT;
    if (!strcmp(path, "/api/adws") || !strcmp(path, "/api/adws/")) {
        q->kind = API_RUNS;
    } else if (!strncmp(path, "/api/adws/", 10)) {
        q->kind = API_RUN;
        const char *id = path + 10;
        if (!valid_adw_id(id)) {
            snprintf(err, errlen, "no such run");
            return 404;
        }
        snprintf(q->adw_id, sizeof q->adw_id, "%s", id);
    } else if (!strcmp(path, "/api/events")) {
        q->kind = API_EVENTS;
    } else if (!strcmp(path, "/api/approvals") || !strcmp(path, "/api/approvals/")) {
        q->kind = API_APPROVALS;
    } else if (!strcmp(path, "/api/search")) {
        q->kind = API_SEARCH;
        return search_parse(params, n, &q->search, &q->filter, err, errlen);
    } else {
        snprintf(err, errlen, "not found");
        return 404;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = params[i].name, *v = params[i].value;
        int64_t x;
        if (!strcmp(name, "limit") && q->kind != API_RUN) {
            if (param_int(v, 1, API_LIMIT_MAX, &x)) {
                snprintf(err, errlen, "limit must be an integer from 1 to %d", API_LIMIT_MAX);
                return 400;
            }
            q->limit = (int)x;
        } else if (!strcmp(name, "since") && q->kind == API_EVENTS) {
            if (param_int(v, 0, INT64_MAX, &x)) {
                snprintf(err, errlen, "since must be an event id (an integer >= 0)");
                return 400;
            }
            q->since = x;
        } else if (!strcmp(name, "status") && (q->kind == API_RUNS || q->kind == API_APPROVALS)) {
            filter_t tmp;
            filter_init(&tmp);
            if (filter_set_csv(&tmp, FILTER_STEPS, v, strlen(v), err, errlen)) {
                filter_free(&tmp);
                snprintf(err, errlen, "status: at most %d values of 1 to %d bytes",
                         FILTER_VALUES_MAX, FILTER_VALUE_MAX);
                return 400;
            }
            for (size_t k = 0; k < q->status.n; k++)
                free(q->status.v[k]);
            free(q->status.v);
            q->status = tmp.key[FILTER_STEPS];
            for (size_t k = 0; q->kind == API_APPROVALS && k < q->status.n; k++)
                if (!approvals_status_ok(q->status.v[k])) {
                    snprintf(err, errlen,
                             "status must be pending, allowed, denied, expired or all (or a comma "
                             "list of them)");
                    return 400;
                }
        } else if (q->kind == API_APPROVALS && !strcmp(name, "adw_id")) {
            if (filter_set_csv(&q->filter, FILTER_ADW_ID, v, strlen(v), err, errlen))
                return 400;
        } else if (q->kind == API_EVENTS && filter_key_from_name(name) >= 0) {
            if (filter_set_csv(&q->filter, (filter_key_t)filter_key_from_name(name), v, strlen(v),
                               err, errlen))
                return 400;
        }
    }
    return 0;
}

void api_query_free(api_query_t *q)
{
    filter_free(&q->filter);
    for (size_t k = 0; k < q->status.n; k++)
        free(q->status.v[k]);
    free(q->status.v);
    q->status.v = NULL;
    q->status.n = 0;
}

char *api_error_body(const char *msg, size_t *len)
{
    buf_t b;
    buf_init(&b, 0);
    if (buf_puts(&b, "{\"error\":") || jsonw_string(&b, msg, strlen(msg)) || buf_putc(&b, '}')) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}

/* ------------------------------------------------------------------------------------------ */
/* Queries (on a worker) */

struct api_job_t {
    dbjob_t job; /* first: the pool hands it back */
    api_query_t q;
    api_reply_fn reply;
    void *user; /* NULL once cancelled */
    int status;
    buf_t body;
};

static void pq_reason(char *err, size_t errlen, PGconn *conn)
{
    snprintf(err, errlen, "%s", PQerrorMessage(conn));
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

/* Sets the job's answer to an error with msg. */
static void answer_error(api_job_t *j, int status, const char *msg)
{
    j->status = status;
    dbjson_error(&j->body, msg);
}

#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* Read FROM adw_runs (unaliased: the failed steps' subquery names it). */
static const char RUN_COLUMNS[] =
    "adw_id, status, current_step, event_count, cost_usd, tokens, input_tokens, output_tokens,"
    " cache_read_tokens, cache_creation_tokens, " US("first_ts") ", " US(
        "last_ts") ","
                   " first_id, last_id, " US(
                       "updated_at") ", stalled, stop_failure, stop_failure_id,"
                                     " (SELECT coalesce(json_agg(s.step ORDER BY s.first_id), "
                                     "'[]') FROM adw_steps s"
                                     " WHERE s.adw_id = adw_runs.adw_id AND s.status = "
                                     "'failed')::text, budget_usd";

/* The failed steps' JSON array text of column col, as an array (an empty one should it not
 * parse); NULL when out of memory. */
static json_t *steps_array_json(const PGresult *r, int row, int col)
{
    json_t *v = json_loadb(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), 0, NULL);
    if (json_is_array(v))
        return v;
    json_decref(v);
    return json_array();
}

/* {"reason": text, "id": N} from the columns reason and reason + 1, or null when no reason. */
static json_t *stop_failure_json(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "reason", dbjson_text(r, row, col)) ||
              json_object_set_new(o, "id", dbjson_int(r, row, col + 1)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Builds a run object from a row of RUN_COLUMNS; NULL when out of memory. */
static json_t *run_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    static const char *const names[] = {
        "adw_id",   "status",       "current_step",  "event_count",       "cost_usd",
        "tokens",   "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
        "first_ts", "last_ts"};
    int err = 0;
    for (int c = 0; c < 12; c++) {
        json_t *v = c < 3     ? dbjson_text(r, row, c)
                    : c == 4  ? dbjson_real(r, row, c)
                    : c >= 10 ? dbjson_ts(r, row, c)
                              : dbjson_int(r, row, c);
        err |= json_object_set_new(o, names[c], v);
    }
    int64_t first = strtoll(PQgetvalue(r, row, 10), NULL, 10);
    int64_t last = strtoll(PQgetvalue(r, row, 11), NULL, 10);
    err |= json_object_set_new(o, "duration_ms", json_integer((last - first) / 1000));
    err |= json_object_set_new(o, "first_id", dbjson_int(r, row, 12));
    err |= json_object_set_new(o, "last_id", dbjson_int(r, row, 13));
    err |= json_object_set_new(o, "updated_at", dbjson_ts(r, row, 14));
    err |= json_object_set_new(o, "stalled", json_boolean(!strcmp(PQgetvalue(r, row, 15), "t")));
    err |= json_object_set_new(o, "failed_steps", steps_array_json(r, row, 18));
    err |= json_object_set_new(o, "stop_failure", stop_failure_json(r, row, 16));
    err |= json_object_set_new(o, "budget_usd", dbjson_real(r, row, 19)); /* null: no budget */
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static const char STEP_COLUMNS[] = "step, status, event_count, cost_usd, tokens, " US(
    "first_ts") ", " US("last_ts") ", duration_ms, first_id, last_id";

static json_t *step_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int err = 0;
    err |= json_object_set_new(o, "step", dbjson_text(r, row, 0));
    err |= json_object_set_new(o, "status", dbjson_text(r, row, 1));
    err |= json_object_set_new(o, "event_count", dbjson_int(r, row, 2));
    err |= json_object_set_new(o, "cost_usd", dbjson_real(r, row, 3));
    err |= json_object_set_new(o, "tokens", dbjson_int(r, row, 4));
    err |= json_object_set_new(o, "first_ts", dbjson_ts(r, row, 5));
    err |= json_object_set_new(o, "last_ts", dbjson_ts(r, row, 6));
    int64_t first = strtoll(PQgetvalue(r, row, 5), NULL, 10);
    int64_t last = strtoll(PQgetvalue(r, row, 6), NULL, 10);
    err |= json_object_set_new(o, "duration_ms",
                               PQgetisnull(r, row, 7) ? json_integer((last - first) / 1000)
                                                      : dbjson_int(r, row, 7));
    err |= json_object_set_new(o, "first_id", dbjson_int(r, row, 8));
    err |= json_object_set_new(o, "last_id", dbjson_int(r, row, 9));
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Serializes v into the job's body with status 200, or a 500 when that fails. Steals v. */
static void answer_json(api_job_t *j, json_t *v)
{
    buf_reset(&j->body);
    if (!v || jsonw_value(&j->body, v)) {
        answer_error(j, 500, "out of memory");
    } else {
        j->status = 200;
    }
    json_decref(v);
}

static void run_runs(api_job_t *j, PGconn *conn)
{
    char sql[2048], limit[16];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM adw_runs WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))"
             " AND ($3::text[] IS NULL OR EXISTS"
             " (SELECT 1 FROM unnest($3::text[]) AS p WHERE starts_with(adw_id, p)))"
             " ORDER BY last_id DESC LIMIT $2::int",
             RUN_COLUMNS);
    snprintf(limit, sizeof limit, "%d", j->q.limit);
    const filter_list_t *scope = j->q.filter.scope;
    buf_t st, sc;
    buf_init(&st, 0);
    buf_init(&sc, 0);
    if ((j->q.status.n && db_text_array(&st, &j->q.status)) ||
        (scope && scope->n && db_text_array(&sc, scope))) {
        buf_free(&st);
        buf_free(&sc);
        answer_error(j, 500, "out of memory");
        return;
    }
    const char *params[3] = {j->q.status.n ? st.data : NULL, limit,
                             scope && scope->n ? sc.data : NULL};
    PGresult *r = db_exec(conn, sql, 3, params, DB_REPLY_TIMEOUT_MS);
    buf_free(&st);
    buf_free(&sc);
    json_t *arr = json_array();
    if (PQresultStatus(r) != PGRES_TUPLES_OK && !dbjson_undefined_table(r)) {
        char e[256];
        pq_reason(e, sizeof e, conn);
        log_warn("api: runs: %s", e);
        answer_error(j, 503, "database unavailable");
        json_decref(arr);
        PQclear(r);
        return;
    }
    int rows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    for (int i = 0; i < rows && arr; i++)
        if (json_array_append_new(arr, run_json(r, i))) {
            json_decref(arr);
            arr = NULL;
        }
    PQclear(r);
    if (arr && approvals_pending_counts(conn, arr) == -EIO) {
        json_decref(arr);
        answer_error(j, 503, "database unavailable");
        return;
    }
    answer_json(j, arr ? json_pack("{so}", "adws", arr) : NULL);
}

static const char AGENT_COLUMNS[] =
    "agent_id, agent_type, status, event_count, cost_usd, tokens, " US("first_ts") ", " US(
        "last_ts");

/* Builds an agent object from a row of AGENT_COLUMNS; NULL when out of memory. */
static json_t *agent_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int err = 0;
    err |= json_object_set_new(o, "agent_id", dbjson_text(r, row, 0));
    err |= json_object_set_new(o, "agent_type", dbjson_text(r, row, 1));
    err |= json_object_set_new(o, "status", dbjson_text(r, row, 2));
    err |= json_object_set_new(o, "event_count", dbjson_int(r, row, 3));
    err |= json_object_set_new(o, "cost_usd", dbjson_real(r, row, 4));
    err |= json_object_set_new(o, "tokens", dbjson_int(r, row, 5));
    err |= json_object_set_new(o, "first_ts", dbjson_ts(r, row, 6));
    err |= json_object_set_new(o, "last_ts", dbjson_ts(r, row, 7));
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Runs sql with the run's adw_id as $1. Returns its result, or NULL after answering 503 (the
 * reason, naming what, goes to the log). */
static PGresult *run_query(api_job_t *j, PGconn *conn, const char *sql, const char *what)
{
    const char *params[1] = {j->q.adw_id};
    PGresult *r = db_exec(conn, sql, 1, params, DB_REPLY_TIMEOUT_MS);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    char e[256];
    pq_reason(e, sizeof e, conn);
    log_warn("api: %s: %s", what, e);
    answer_error(j, 503, "database unavailable");
    PQclear(r);
    return NULL;
}

/* Sets run's member name to an array of one object per row of r, built by row_fn. Returns 0 or
 * -ENOMEM. */
static int set_rows(json_t *run, const char *name, const PGresult *r,
                    json_t *(*row_fn)(const PGresult *, int))
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    for (int i = 0; i < PQntuples(r); i++)
        if (json_array_append_new(arr, row_fn(r, i))) {
            json_decref(arr);
            return -ENOMEM;
        }
    return json_object_set_new(run, name, arr) ? -ENOMEM : 0;
}

static void run_run(api_job_t *j, PGconn *conn)
{
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT %s FROM adw_runs WHERE adw_id = $1", RUN_COLUMNS);
    const char *params[1] = {j->q.adw_id};
    /* A run outside the token's scope answers as one that does not exist. */
    PGresult *r = filter_in_scope(j->q.filter.scope, j->q.adw_id)
                      ? db_exec(conn, sql, 1, params, DB_REPLY_TIMEOUT_MS)
                      : NULL;
    if (r && PQresultStatus(r) != PGRES_TUPLES_OK && !dbjson_undefined_table(r)) {
        char e[256];
        pq_reason(e, sizeof e, conn);
        log_warn("api: run: %s", e);
        answer_error(j, 503, "database unavailable");
        PQclear(r);
        return;
    }
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char msg[128];
        snprintf(msg, sizeof msg, "no run with adw_id %s", j->q.adw_id);
        answer_error(j, 404, msg);
        PQclear(r);
        return;
    }
    json_t *run = run_json(r, 0);
    PQclear(r);

    snprintf(sql, sizeof sql, "SELECT %s FROM adw_steps WHERE adw_id = $1 ORDER BY first_id",
             STEP_COLUMNS);
    if (!(r = run_query(j, conn, sql, "steps")))
        goto fail;
    int nomem = !run || set_rows(run, "steps", r, step_json);
    PQclear(r);

    snprintf(sql, sizeof sql, "SELECT %s FROM adw_agents WHERE adw_id = $1 ORDER BY first_id",
             AGENT_COLUMNS);
    if (!(r = run_query(j, conn, sql, "agents")))
        goto fail;
    nomem = nomem || set_rows(run, "agents", r, agent_json);
    PQclear(r);

    if (!(r = run_query(j, conn,
                        "SELECT count(*), count(*) FILTER (WHERE status = 'failed')"
                        " FROM adw_tool_calls WHERE adw_id = $1",
                        "tool calls")))
        goto fail;
    nomem = nomem || json_object_set_new(run, "tool_calls", dbjson_int(r, 0, 0)) ||
            json_object_set_new(run, "tool_failures", dbjson_int(r, 0, 1));
    PQclear(r);

    int prc = nomem ? 0 : approvals_pending_counts(conn, run);
    if (prc == -EIO) {
        answer_error(j, 503, "database unavailable");
        goto fail;
    }
    nomem = nomem || prc;
    if (nomem) {
        json_decref(run);
        answer_json(j, NULL);
        return;
    }
    answer_json(j, run);
    return;
fail: /* answered 503 */
    json_decref(run);
}

static void run_events(api_job_t *j, PGconn *conn)
{
    // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof *p is a pointer
    frame_t **frames = calloc((size_t)j->q.limit, sizeof *frames);
    if (!frames) {
        answer_error(j, 500, "out of memory");
        return;
    }
    db_page_query_t q = {.after = j->q.since, .filter = &j->q.filter, .limit = j->q.limit};
    size_t n;
    int64_t last;
    int more;
    char err[256];
    if (db_events_page(conn, &q, frames, (size_t)j->q.limit, &n, &last, &more, err, sizeof err)) {
        free(frames);
        if (strstr(err, "does not exist")) { /* no schema yet: nothing stored */
            n = 0;
            last = j->q.since;
            frames = NULL;
        } else {
            log_warn("api: events: %s", err);
            answer_error(j, 503, "database unavailable");
            return;
        }
    }
    int64_t first = 1; /* the first kept id, read after the page (kept.h) */
    if (frames && kept_first_id(conn, &first, err, sizeof err)) {
        log_warn("api: events: %s", err);
        for (size_t i = 0; i < n; i++)
            frame_unref(&frames[i]);
        free(frames);
        answer_error(j, 503, "database unavailable");
        return;
    }
    buf_reset(&j->body);
    int rc = buf_puts(&j->body, "{\"events\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = buf_putc(&j->body, ',');
        if (!rc)
            rc = buf_append(&j->body, frames[i]->payload, frames[i]->len);
    }
    char kept[64];
    kept_json(j->q.since, first, kept, sizeof kept);
    if (!rc)
        rc = buf_printf(&j->body, "],\"next_since\":%" PRId64 "%s}", last, kept);
    for (size_t i = 0; i < n; i++)
        frame_unref(&frames[i]);
    free(frames);
    if (rc)
        answer_error(j, 500, "out of memory");
    else
        j->status = 200;
}

static void job_run(dbjob_t *job, PGconn *conn)
{
    api_job_t *j = (api_job_t *)job;
    switch (j->q.kind) {
    case API_RUNS:
        run_runs(j, conn);
        break;
    case API_RUN:
        run_run(j, conn);
        break;
    case API_EVENTS:
        run_events(j, conn);
        break;
    case API_APPROVALS: {
        static char pending[] = "pending";
        static char *pending_v[] = {pending};
        static const filter_list_t only_pending = {.v = pending_v, .n = 1};
        const filter_list_t *st = j->q.status.n ? &j->q.status : &only_pending;
        j->status = approvals_run(conn, st, &j->q.filter, j->q.limit, &j->body);
        if (j->status == 500)
            answer_error(j, 500, "out of memory");
        break;
    }
    case API_SEARCH:
        if ((j->status = search_run(conn, &j->q.search, &j->q.filter, &j->body)) == 500)
            answer_error(j, 500, "out of memory");
        break;
    }
}

static void job_done(dbjob_t *job)
{
    api_job_t *j = (api_job_t *)job;
    if (j->user) {
        if (job->failed) {
            log_warn("api: %s", job->err);
            answer_error(j, 503, "database unavailable");
        }
        size_t len = 0;
        char *body = buf_steal(&j->body, &len);
        if (!body) {
            j->status = 500;
            body = api_error_body("out of memory", &len);
        }
        j->reply(j->user, j->status, body, len);
    }
    buf_free(&j->body);
    api_query_free(&j->q);
    free(j);
}

api_job_t *api_submit(dbpool_t *pool, api_query_t *q, api_reply_fn reply, void *user)
{
    api_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->job.run = job_run;
    j->job.done = job_done;
    j->q = *q;
    j->reply = reply;
    j->user = user;
    j->status = 500;
    buf_init(&j->body, 0);
    if (dbpool_submit(pool, &j->job)) {
        *q = j->q; /* give it back */
        free(j);
        return NULL;
    }
    memset(q, 0, sizeof *q);
    filter_init(&q->filter);
    return j;
}

void api_cancel(api_job_t *job)
{
    if (job)
        job->user = NULL;
}
