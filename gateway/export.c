#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "codec.h"
#include "db.h"
#include "dbjson.h"
#include "frame.h"
#include "jsonw.h"
#include "log.h"

#define EXPORT_PREFIX "/api/adws/"
#define EXPORT_H2_FRAME 16384 /* HTTP/2's default largest DATA frame */
#define EXPORT_TIMEOUT_S (DB_STATEMENT_TIMEOUT_MS / 1000 + 10) /* a page read or a write */

/* ------------------------------------------------------------------------------------------ */
/* CSV (pure) */

int csv_field_append(buf_t *out, const char *s, size_t len)
{
    if (!s || !len)
        return 0;
    int quote = 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote)
        return buf_append(out, s, len) ? -ENOMEM : 0;
    if (buf_putc(out, '"'))
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        if ((s[i] == '"' && buf_putc(out, '"')) || buf_putc(out, s[i]))
            return -ENOMEM;
    return buf_putc(out, '"') ? -ENOMEM : 0;
}

/* Appends member v (borrowed; NULL when absent) as a field: a string as is, null or absent
 * empty, anything else as compact JSON. */
static int csv_value_append(buf_t *out, const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return csv_field_append(out, json_string_value(v), json_string_length(v));
    buf_t tmp;
    buf_init(&tmp, 0);
    int rc = jsonw_value(&tmp, v) ? -ENOMEM : csv_field_append(out, tmp.data, tmp.len);
    buf_free(&tmp);
    return rc;
}

int export_csv_row(buf_t *out, const char *json, size_t len, long long id_if_raw)
{
    static const char *const columns[] = {
        "id",     "received_at", "ts",      "type",     "step",   "event_type", "event",
        "status", "agent_id",    "summary", "cost_usd", "tokens", "payload"};
    const size_t ncol = sizeof columns / sizeof columns[0];
    json_t *doc = NULL;
    char why[128];
    if (codec_json_parse(json, len, &doc, why, sizeof why) || !json_is_object(doc)) {
        json_decref(doc);
        if (buf_printf(out, "%lld", id_if_raw))
            return -ENOMEM;
        for (size_t c = 1; c + 1 < ncol; c++)
            if (buf_putc(out, ','))
                return -ENOMEM;
        if (buf_putc(out, ',') || csv_field_append(out, json, len) || buf_puts(out, "\r\n"))
            return -ENOMEM;
        return 0;
    }
    int rc = 0;
    for (size_t c = 0; c < ncol && !rc; c++) {
        if (c && buf_putc(out, ','))
            rc = -ENOMEM;
        if (!rc)
            rc = csv_value_append(out, json_object_get(doc, columns[c]));
    }
    if (!rc && buf_puts(out, "\r\n"))
        rc = -ENOMEM;
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Pages (on a worker) */

typedef struct export_job_t export_job_t;

/* One of these per export. */
struct export_t {
    dbpool_t *pool;
    struct lws *wsi;
    char adw_id[ADW_ADW_ID_MAX + 1];
    const filter_list_t *scope; /* borrowed: the read token's prefixes */
    int csv;
    int head;
    int chunked; /* HTTP/1.1: the body is sent in chunks (not on HTTP/2) */
    int status;  /* once the first page is back: 200, 404 or 503 */
    int headers_sent;
    int finished;      /* the response is complete */
    int more;          /* pages may follow the one being written */
    int64_t last;      /* the id of the last event read */
    int64_t upto;      /* the run's last event when the export began */
    buf_t out;         /* the page being written */
    size_t off;        /* bytes of out written */
    export_job_t *job; /* the page being read, if any */
};

/* One of these per page read. */
struct export_job_t {
    dbjob_t job;     /* first: the pool hands it back */
    export_t *owner; /* NULL once the export ended */
    char adw_id[ADW_ADW_ID_MAX + 1];
    const filter_list_t *scope;
    int csv;
    int first; /* the first page: check the run, write the CSV header */
    int64_t after, upto;
    int status; /* 200, 404, 503, 500 */
    buf_t out;
    int64_t last;
    int more;
};

/* The first page's check: the run exists and lies in the scope; sets j->upto to its last id. */
static int job_check_run(export_job_t *j, PGconn *conn)
{
    if (!filter_in_scope(j->scope, j->adw_id))
        return 404;
    const char *params[1] = {j->adw_id};
    PGresult *r = db_exec(conn, "SELECT last_id FROM adw_runs WHERE adw_id = $1", 1, params,
                          DB_REPLY_TIMEOUT_MS);
    int st = 200;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (dbjson_undefined_table(r)) {
            st = 404; /* no schema yet: no run */
        } else {
            log_warn("export: run %s: %s", j->adw_id, PQerrorMessage(conn));
            st = 503;
        }
    } else if (PQntuples(r) != 1) {
        st = 404;
    } else {
        j->upto = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (j->upto <= 0)
            j->upto = INT64_MAX;
    }
    PQclear(r);
    return st;
}

static void job_run(dbjob_t *job, PGconn *conn)
{
    export_job_t *j = (export_job_t *)job;
    if (j->first && (j->status = job_check_run(j, conn)) != 200)
        return;
    j->status = 200;
    frame_t *frames[EXPORT_PAGE];
    filter_t f;
    filter_init(&f);
    char err[256];
    if (filter_set_csv(&f, FILTER_ADW_ID, j->adw_id, strlen(j->adw_id), err, sizeof err)) {
        j->status = 500;
        return;
    }
    f.scope = j->scope;
    db_page_query_t q = {.after = j->after, .upto = j->upto, .filter = &f, .limit = EXPORT_PAGE};
    size_t n = 0;
    if (db_events_page(conn, &q, frames, EXPORT_PAGE, &n, &j->last, &j->more, err, sizeof err)) {
        log_warn("export: run %s: %s", j->adw_id, err);
        filter_free(&f);
        j->status = 503;
        return;
    }
    filter_free(&f);
    int rc = j->first && j->csv ? buf_puts(&j->out, EXPORT_CSV_HEADER) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = (const char *)frames[i]->payload;
        if (!rc)
            rc = j->csv ? export_csv_row(&j->out, p, frames[i]->len, (long long)frames[i]->id)
                        : buf_append(&j->out, p, frames[i]->len) || buf_putc(&j->out, '\n');
        frame_unref(&frames[i]);
    }
    if (rc) {
        buf_free(&j->out);
        j->status = 500;
    }
}

static void job_done(dbjob_t *job);

/* Queues the read of the page after e->last. Returns 0 or -EAGAIN/-ENOMEM. */
static int export_submit(export_t *e, int first)
{
    export_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->job.run = job_run;
    j->job.done = job_done;
    j->owner = e;
    memcpy(j->adw_id, e->adw_id, sizeof j->adw_id);
    j->scope = e->scope;
    j->csv = e->csv;
    j->first = first;
    j->after = e->last;
    j->upto = e->upto;
    j->status = 500;
    buf_init(&j->out, 0);
    if (dbpool_submit(e->pool, &j->job)) {
        free(j);
        return -EAGAIN;
    }
    e->job = j;
    lws_set_timeout(e->wsi, PENDING_TIMEOUT_USER_OK, EXPORT_TIMEOUT_S);
    return 0;
}

/* Sets e's body to {"error":msg} with status. */
static void export_fail(export_t *e, int status, const char *msg)
{
    e->status = status;
    e->more = 0;
    buf_reset(&e->out);
    e->off = 0;
    if (buf_puts(&e->out, "{\"error\":") || jsonw_string(&e->out, msg, strlen(msg)) ||
        buf_putc(&e->out, '}'))
        buf_free(&e->out);
}

static void job_done(dbjob_t *job)
{
    export_job_t *j = (export_job_t *)job;
    export_t *e = j->owner;
    if (e) {
        e->job = NULL;
        if (job->failed) {
            log_warn("export: %s", job->err);
            j->status = 503;
        }
        if (!e->headers_sent) {
            if (j->status == 404) {
                char msg[128];
                snprintf(msg, sizeof msg, "no run with adw_id %s", e->adw_id);
                export_fail(e, 404, msg);
            } else if (j->status != 200) {
                export_fail(e, j->status,
                            j->status == 503 ? "database unavailable" : "out of memory");
            } else {
                e->status = 200;
            }
        } else if (j->status != 200) {
            e->status = j->status; /* cut short: the connection closes */
        }
        if (j->status == 200) {
            if (j->first)
                e->upto = j->upto;
            buf_free(&e->out);
            e->out = j->out;
            buf_init(&j->out, 0);
            e->off = 0;
            e->last = j->last;
            e->more = j->more;
        }
        lws_callback_on_writable(e->wsi);
    }
    buf_free(&j->out);
    free(j);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's side */

int export_match(const char *path)
{
    if (strncmp(path, EXPORT_PREFIX, strlen(EXPORT_PREFIX)))
        return 0;
    const char *id = path + strlen(EXPORT_PREFIX), *slash = strchr(id, '/');
    return slash && slash > id &&
           (!strcmp(slash, "/events.ndjson") || !strcmp(slash, "/events.csv"));
}

export_t *export_start(dbpool_t *pool, struct lws *wsi, const char *path,
                       const filter_list_t *scope, int head)
{
    export_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->pool = pool;
    e->wsi = wsi;
    e->scope = scope;
    e->head = head;
    e->chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COLON_PATH) <= 0;
    buf_init(&e->out, 0);
    const char *id = path + strlen(EXPORT_PREFIX), *slash = strchr(id, '/');
    e->csv = !strcmp(slash, "/events.csv");
    size_t n = (size_t)(slash - id);
    int valid = n <= ADW_ADW_ID_MAX;
    for (size_t i = 0; i < n && valid; i++) {
        char c = id[i];
        valid = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == ':' || c == '-';
    }
    memcpy(e->adw_id, id, valid ? n : 0);
    if (!valid) {
        export_fail(e, 404, "no such run");
        lws_callback_on_writable(wsi);
        return e;
    }
    if (export_submit(e, 1)) {
        free(e);
        return NULL;
    }
    return e;
}

static int write_headers(export_t *e)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    struct lws *wsi = e->wsi;
    int ok = e->status == 200;
    const char *ctype = !ok      ? "application/json"
                        : e->csv ? "text/csv; charset=utf-8"
                                 : "application/x-ndjson";
    char disp[ADW_ADW_ID_MAX + 64];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s-events.%s\"", e->adw_id,
             e->csv ? "csv" : "ndjson");
    if (lws_add_http_common_headers(wsi, (unsigned)e->status, ctype,
                                    ok ? LWS_ILLEGAL_HTTP_CONTENT_LEN : e->out.len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (ok && lws_add_http_header_by_name(
                   wsi, (const unsigned char *)"content-disposition:", (const unsigned char *)disp,
                   (int)strlen(disp), &p, end)) ||
        (ok && e->chunked &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"transfer-encoding:",
                                     (const unsigned char *)"chunked", 7, &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    e->headers_sent = 1;
    return 0;
}

/* HTTP/1.1 chunked framing: after each chunk's data, and the last (empty) chunk. */
static const unsigned char CHUNK_END[2] = {'\r', '\n'};
static const unsigned char LAST_CHUNK[5] = {'0', '\r', '\n', '\r', '\n'};

int export_writeable(export_t *e, unsigned char *wbuf)
{
    struct lws *wsi = e->wsi;
    if (e->job || e->finished)
        return 0; /* a page is being read: its arrival asks for the next callback */
    if (!e->headers_sent) {
        if (write_headers(e))
            return -1;
        if (e->head || (e->status != 200 && !e->out.len)) {
            e->finished = 1;
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (e->status != 200 && e->headers_sent && e->off == 0 && e->out.len == 0)
        return -1; /* a page failed mid-download: cut it short */
    int chunked = e->chunked && e->status == 200;
    size_t n = e->out.len - e->off;
    if (n > EXPORT_CHUNK)
        n = EXPORT_CHUNK;
    if (!e->chunked) {
        /* HTTP/2: one DATA frame of at most the default frame size, within the peer's window. */
        lws_fileofs_t allow = lws_get_peer_write_allowance(wsi);
        if (n > EXPORT_H2_FRAME)
            n = EXPORT_H2_FRAME;
        if (allow >= 0 && (lws_fileofs_t)n > allow)
            n = (size_t)allow;
        if (!n && e->off < e->out.len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    int final = e->off + n == e->out.len && !e->more;
    unsigned char *data = wbuf + LWS_PRE + 16, *p = data;
    size_t len = n;
    if (n) {
        memcpy(data, e->out.data + e->off, n);
        if (chunked) {
            char head[16];
            int h = snprintf(head, sizeof head, "%zx\r\n", n);
            p = data - h;
            memcpy(p, head, (size_t)h);
            memcpy(data + n, CHUNK_END, sizeof CHUNK_END);
            len = n + (size_t)h + sizeof CHUNK_END;
        }
    }
    if (final && chunked) {
        memcpy(p + len, LAST_CHUNK, sizeof LAST_CHUNK);
        len += sizeof LAST_CHUNK;
    }
    /* On HTTP/2 an empty final write ends the stream. */
    if ((len || final) &&
        lws_write(wsi, p, len, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)len)
        return -1;
    e->off += n;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, EXPORT_TIMEOUT_S);
    if (final) {
        buf_free(&e->out);
        e->more = 0;
        e->finished = 1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (e->off < e->out.len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    /* The page is written: only now read the next one. */
    buf_free(&e->out);
    e->off = 0;
    if (export_submit(e, 0)) {
        log_warn("export: run %s: the database queue is full; download cut short", e->adw_id);
        return -1;
    }
    return 0;
}

void export_destroy(export_t **pe)
{
    if (!pe || !*pe)
        return;
    export_t *e = *pe;
    if (e->job) {
        e->job->owner = NULL;
        dbpool_cancel(e->pool, &e->job->job);
    }
    buf_free(&e->out);
    free(e);
    *pe = NULL;
}
