#include "approvals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dbjson.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"

static const char LIST_SQL[] =
    "SELECT approval_id, adw_id, step, tool_name, tool_use_id, summary, tool_input::text, rule,"
    " status, requested_id, " US("requested_at") ", " US("expires_at") ", decided_id, " US(
        "decided_at") ", decision, reason, decided_by, waited_ms"
                      " FROM adw_approvals"
                      " WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))"
                      " AND ($2::text[] IS NULL OR adw_id = ANY($2::text[]))"
                      " AND ($3::text[] IS NULL OR EXISTS"
                      " (SELECT 1 FROM unnest($3::text[]) AS p WHERE starts_with(adw_id, p)))"
                      " ORDER BY requested_id DESC LIMIT $4::int";

int approvals_status_ok(const char *v)
{
    static const char *const ok[] = {"pending", "allowed", "denied", "expired",
                                     APPROVALS_STATUS_ALL};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(v, ok[i]))
            return 1;
    return 0;
}

/* One approval object from row `row` of LIST_SQL; NULL when out of memory. */
static json_t *row_json(const PGresult *r, int row)
{
    static const char *const names[] = {
        "approval_id", "adw_id",     "step",     "tool_name",    "tool_use_id",  "summary",
        "tool_input",  "rule",       "status",   "requested_id", "requested_at", "expires_at",
        "decided_id",  "decided_at", "decision", "reason",       "decided_by",   "waited_ms"};
    json_t *o = json_object();
    if (!o)
        return NULL;
    int err = 0;
    for (int c = 0; c < (int)(sizeof names / sizeof names[0]); c++) {
        json_t *v;
        if (c == 6)
            v = dbjson_doc(r, row, c);
        else if (c == 9 || c == 12 || c == 17)
            v = dbjson_int(r, row, c);
        else if (c == 10 || c == 11 || c == 13)
            v = dbjson_ts(r, row, c);
        else
            v = dbjson_text(r, row, c);
        err |= json_object_set_new(o, names[c], v);
    }
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int approvals_run(PGconn *conn, const filter_list_t *status, const filter_t *f, int limit,
                  buf_t *body)
{
    int all = !status->n;
    for (size_t i = 0; i < status->n; i++)
        all |= !strcmp(status->v[i], APPROVALS_STATUS_ALL);
    buf_t st, ids, sc;
    buf_init(&st, 0);
    buf_init(&ids, 0);
    buf_init(&sc, 0);
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const filter_list_t *idl = &f->key[FILTER_ADW_ID];
    int nomem = (!all && db_text_array(&st, status)) || (idl->n && db_text_array(&ids, idl)) ||
                (f->scope && f->scope->n && db_text_array(&sc, f->scope));
    const char *params[4] = {all ? NULL : st.data, idl->n ? ids.data : NULL,
                             f->scope && f->scope->n ? sc.data : NULL, lim};
    PGresult *r = nomem ? NULL : db_exec(conn, LIST_SQL, 4, params, DB_REPLY_TIMEOUT_MS);
    buf_free(&st);
    buf_free(&ids);
    buf_free(&sc);
    if (nomem)
        return 500;
    int missing = PQresultStatus(r) != PGRES_TUPLES_OK && dbjson_undefined_table(r);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && !missing) {
        log_warn("api: approvals: %s", PQerrorMessage(conn));
        PQclear(r);
        dbjson_error(body, "database unavailable");
        return 503;
    }
    json_t *arr = json_array();
    int rows = missing ? 0 : PQntuples(r);
    for (int i = 0; i < rows && arr; i++)
        if (json_array_append_new(arr, row_json(r, i))) {
            json_decref(arr);
            arr = NULL;
        }
    PQclear(r);
    json_t *out = arr ? json_pack("{so}", "approvals", arr) : NULL;
    buf_reset(body);
    int rc = !out || jsonw_value(body, out);
    json_decref(out);
    return rc ? 500 : 200;
}

int approvals_pending_counts(PGconn *conn, json_t *run)
{
    json_t *one[1] = {run};
    json_t **runs = json_is_array(run) ? NULL : one;
    size_t n = json_is_array(run) ? json_array_size(run) : 1;
    if (!n)
        return 0;
    filter_list_t ids = {.v = calloc(n, sizeof(char *)), .n = 0};
    if (!ids.v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *o = runs ? runs[i] : json_array_get(run, i);
        const char *id = json_string_value(json_object_get(o, "adw_id"));
        if (id)
            ids.v[ids.n++] = (char *)id;
    }
    buf_t arr;
    buf_init(&arr, 0);
    int rc = db_text_array(&arr, &ids);
    free(ids.v);
    if (rc) {
        buf_free(&arr);
        return -ENOMEM;
    }
    const char *params[1] = {arr.data};
    PGresult *r = db_exec(conn,
                          "SELECT adw_id, count(*) FROM adw_approvals WHERE status = 'pending'"
                          " AND adw_id = ANY($1::text[]) GROUP BY adw_id",
                          1, params, DB_REPLY_TIMEOUT_MS);
    buf_free(&arr);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && !dbjson_undefined_table(r)) {
        log_warn("api: pending approvals: %s", PQerrorMessage(conn));
        PQclear(r);
        return -EIO;
    }
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *o = runs ? runs[i] : json_array_get(run, i);
        const char *id = json_string_value(json_object_get(o, "adw_id"));
        json_int_t count = 0;
        for (int k = 0; ok && id && k < PQntuples(r); k++)
            if (!strcmp(PQgetvalue(r, k, 0), id))
                count = strtoll(PQgetvalue(r, k, 1), NULL, 10);
        rc = json_object_set_new(o, "pending_approvals", json_integer(count)) ? -ENOMEM : 0;
    }
    PQclear(r);
    return rc;
}
