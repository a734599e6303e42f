#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "dbjson.h"
#include "log.h"
#include "pgwait.h"

/* Copies libpq's message into err without its trailing newline. */
static void pq_reason(char *err, size_t errlen, const char *what, const char *msg)
{
    snprintf(err, errlen, "%s: %s", what, msg && *msg ? msg : "unknown error");
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

static _Thread_local unsigned failures; /* db_failures */

PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                  int timeout_ms)
{
    /* One bound for the whole query: a silent link costs at most timeout_ms. */
    const pgwait_t w = {.who = "db", .timeout_ms = timeout_ms, .each_result = 0};
    PGresult *r = pgwait_exec_params(conn, &w, sql, nparams, params);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        failures++;
    return r;
}

unsigned db_failures(void)
{
    return failures;
}

PGconn *db_connect(const char *conninfo, char *err, size_t errlen)
{
    char timeout[16], options[96], user_timeout[16];
    snprintf(timeout, sizeof timeout, "%d", DB_CONNECT_TIMEOUT_S);
    snprintf(options, sizeof options, "-c default_transaction_read_only=on -c statement_timeout=%d",
             DB_STATEMENT_TIMEOUT_MS);
    snprintf(user_timeout, sizeof user_timeout, "%d", DB_REPLY_TIMEOUT_MS);
    const char *const keys[] = {"dbname",           "connect_timeout",  "application_name",
                                "options",          "keepalives_idle",  "keepalives_interval",
                                "keepalives_count", "tcp_user_timeout", NULL};
    const char *const vals[] = {conninfo ? conninfo : "",
                                timeout,
                                "adw-gateway",
                                options,
                                "5",
                                "2",
                                "3",
                                user_timeout,
                                NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        pq_reason(err, errlen, "cannot connect to PostgreSQL", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

int db_ensure(PGconn **conn, const char *conninfo, char *err, size_t errlen)
{
    if (*conn && PQstatus(*conn) == CONNECTION_OK)
        return 0;
    if (*conn) {
        PQfinish(*conn);
        *conn = NULL;
    }
    *conn = db_connect(conninfo, err, errlen);
    return *conn ? 0 : -EIO;
}

int db_ping(PGconn *conn, char *err, size_t errlen)
{
    PGresult *r = db_exec(conn, "SELECT 1", 0, NULL, DB_PING_TIMEOUT_MS);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        pq_reason(err, errlen, "database check failed", PQerrorMessage(conn));
    PQclear(r);
    return ok ? 0 : -EIO;
}

int db_position(PGconn *conn, int64_t *last_id, int64_t *epoch, char *err, size_t errlen)
{
    *last_id = 0;
    *epoch = 0;
    PGresult *r =
        db_exec(conn, "SELECT coalesce(max(id), 0) FROM events", 0, NULL, DB_PING_TIMEOUT_MS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int empty = dbjson_undefined_table(r);
        if (!empty)
            pq_reason(err, errlen, "cannot read the last event id", PQerrorMessage(conn));
        PQclear(r);
        return empty ? 0 : -EIO;
    }
    *last_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = db_exec(conn, "SELECT value FROM adw_meta WHERE key = 'epoch'", 0, NULL,
                DB_PING_TIMEOUT_MS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int missing = dbjson_undefined_table(r);
        if (!missing)
            pq_reason(err, errlen, "cannot read the epoch", PQerrorMessage(conn));
        PQclear(r);
        return missing ? 0 : -EIO;
    }
    if (PQntuples(r) == 1)
        *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int db_text_array(buf_t *out, const filter_list_t *l)
{
    if (buf_putc(out, '{'))
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        if ((i && buf_putc(out, ',')) || buf_putc(out, '"'))
            return -ENOMEM;
        for (const char *p = l->v[i]; *p; p++) {
            if ((*p == '"' || *p == '\\') && buf_putc(out, '\\'))
                return -ENOMEM;
            if (buf_putc(out, *p))
                return -ENOMEM;
        }
        if (buf_putc(out, '"'))
            return -ENOMEM;
    }
    return buf_putc(out, '}') ? -ENOMEM : 0;
}

static const char PAGE_SQL[] =
    "SELECT id, adw_id, type, step, coalesce(event_type, event), doc::text, agent_id FROM events"
    " WHERE id > $1::bigint AND ($2::bigint = 0 OR id <= $2::bigint)"
    " AND ($3::text[] IS NULL OR adw_id = ANY($3::text[]))"
    " AND ($4::text[] IS NULL OR step = ANY($4::text[]))"
    " AND ($5::text[] IS NULL OR coalesce(event_type, event) = ANY($5::text[]))"
    " AND ($6::text[] IS NULL OR type = ANY($6::text[]))"
    " AND ($9::text[] IS NULL OR agent_id = ANY($9::text[]))"
    " AND ($8::text[] IS NULL OR EXISTS"
    " (SELECT 1 FROM unnest($8::text[]) AS p WHERE starts_with(adw_id, p)))"
    " ORDER BY id LIMIT $7::int";

frame_t *db_row_frame(const PGresult *r, int row, int64_t id)
{
    filter_event_t fields = {{NULL}};
    static const int col_of_key[FILTER_NKEYS] = {1, 3, 4, 2, 6};
    for (int k = 0; k < FILTER_NKEYS; k++)
        if (!PQgetisnull(r, row, col_of_key[k]))
            fields.field[k] = PQgetvalue(r, row, col_of_key[k]);
    const char *doc = PQgetvalue(r, row, 5);
    size_t len = (size_t)PQgetlength(r, row, 5);
    frame_t *f = frame_from_stored(id, doc, len, &fields);
    if (f)
        return f;
    json_t *v = NULL;
    char why[160];
    if (!codec_json_parse(doc, len, &v, why, sizeof why)) {
        f = frame_from_event(v, why, sizeof why);
        json_decref(v);
    }
    if (!f) {
        log_debug("event %" PRId64 ": sent as stored (%s)", id, why);
        f = frame_new_event_raw(id, doc, len, &fields);
    }
    return f;
}

int db_events_page(PGconn *conn, const db_page_query_t *q, frame_t **frames, size_t cap, size_t *n,
                   int64_t *last, int *more, char *err, size_t errlen)
{
    *n = 0;
    *last = q->after;
    *more = 0;
    char after[24], upto[24], limit[16];
    snprintf(after, sizeof after, "%" PRId64, q->after);
    snprintf(upto, sizeof upto, "%" PRId64, q->upto);
    int lim = q->limit < 1 ? 1 : q->limit > 1000 ? 1000 : q->limit;
    if ((size_t)lim > cap)
        lim = (int)cap;
    snprintf(limit, sizeof limit, "%d", lim);
    /* PAGE_SQL's parameter ($n - 1) of each key's list, by filter_key_t. */
    static const int param_of_key[FILTER_NKEYS] = {2, 3, 4, 5, 8};
    buf_t arrays[FILTER_NKEYS], scope;
    const char *params[9] = {after, upto, NULL, NULL, NULL, NULL, limit, NULL, NULL};
    int rc = 0;
    for (int k = 0; k < FILTER_NKEYS; k++) {
        buf_init(&arrays[k], 0);
        if (!q->filter || !q->filter->key[k].n)
            continue;
        if (db_text_array(&arrays[k], &q->filter->key[k]))
            rc = -ENOMEM;
        params[param_of_key[k]] = arrays[k].data;
    }
    buf_init(&scope, 0);
    if (q->filter && q->filter->scope && q->filter->scope->n) {
        if (db_text_array(&scope, q->filter->scope))
            rc = -ENOMEM;
        params[7] = scope.data;
    }
    PGresult *r = NULL;
    if (rc) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    r = db_exec(conn, PAGE_SQL, 9, params, q->timeout_ms > 0 ? q->timeout_ms : DB_REPLY_TIMEOUT_MS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pq_reason(err, errlen, "cannot read events", PQerrorMessage(conn));
        rc = -EIO;
        goto done;
    }
    int rows = PQntuples(r);
    size_t bytes = 0;
    for (int i = 0; i < rows; i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        frame_t *f = db_row_frame(r, i, id);
        if (!f) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
            goto done;
        }
        frames[(*n)++] = f;
        *last = id;
        bytes += f->len;
        if (q->byte_budget && bytes >= q->byte_budget && i + 1 < rows) {
            *more = 1;
            break;
        }
    }
    if (rows == lim)
        *more = 1;
done:
    if (rc) {
        while (*n)
            frame_unref(&frames[--*n]);
        *last = q->after;
        *more = 0;
    }
    PQclear(r);
    for (int k = 0; k < FILTER_NKEYS; k++)
        buf_free(&arrays[k]);
    buf_free(&scope);
    return rc;
}
