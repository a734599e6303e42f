/* store_scan: the scans the writer runs as submissions of their own (store_submit): the stall
 * scan (a run_stalled for each running run idle too long, stall.h) and the approval expire
 * scan (an approval_expired for each pending approval no ingest holds, approval_event.h). Each
 * reads its rows, builds the events into the request and commits them like a submission
 * (store__process). Writer thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "approval_event.h"
#include "buf.h"
#include "log.h"
#include "stall.h"
#include "store_internal.h"
#include "timefmt.h"

/* Gives r room for n events (r has none yet). Returns 0 or -ENOMEM (r unchanged). */
static int req_reserve(store_req_t *r, size_t n)
{
    adw_event_t *events = calloc(n, sizeof *events);
    int64_t *ids = calloc(n, sizeof *ids);
    unsigned char *fresh = calloc(n, 1);
    size_t *frame_end = calloc(n, sizeof *frame_end);
    if (!events || !ids || !fresh || !frame_end) {
        free(events);
        free(ids);
        free(fresh);
        free(frame_end);
        return -ENOMEM;
    }
    free(r->events);
    free(r->ids);
    free(r->fresh);
    free(r->frame_end);
    r->events = events;
    r->ids = ids;
    r->fresh = fresh;
    r->frame_end = frame_end;
    return 0;
}

/* The failed query res (cleared here) of the scan r (store_submit), what ("stall scan") names
 * it: logged and kept as the last error, r completed as unavailable, and a lost connection
 * makes the writer connect again. */
static void scan_failed(store_t *s, store_req_t *r, PGresult *res, const char *what)
{
    char err[256];
    snprintf(err, sizeof err, "%s: %s", what, PQerrorMessage(s->conn));
    PQclear(res);
    log_warn("store: %s", err);
    store__set_error(s, err);
    store__complete_unavailable(s, r, "database unavailable, retry later");
    if (PQstatus(s->conn) != CONNECTION_OK) {
        store__disconnect(s);
        store__set_state(s, STORE_CONNECTING);
    }
}

/* The rows of the scan r's result res, with room reserved in r for an event each. Returns their
 * number; 0 when there are none, or no memory now (the next scan tries): then res is cleared and
 * r completed. */
static int scan_reserve(store_t *s, store_req_t *r, PGresult *res)
{
    int rows = PQntuples(res);
    if (rows == 0 || req_reserve(r, (size_t)rows)) {
        PQclear(res);
        store__finish_ok(s, &r, 1);
        return 0;
    }
    return rows;
}

/* Commits the n events the scan r raised into r->events (none: r completes at once). */
static void scan_commit(store_t *s, store_req_t *r, size_t n)
{
    r->nevents = n;
    atomic_fetch_add(&s->pending, (int64_t)n); /* store_done.c: complete_all takes them off */
    if (n == 0) {
        store__finish_ok(s, &r, 1);
        return;
    }
    store__process(s, &r, 1);
}

/* The runs a stall scan raises run_stalled for: running, not stalled, idle since before $1
 * (microseconds since the epoch, ingest's clock, as received_at), the longest idle first.
 * The partial index adw_runs_running_idle serves it. */
static const char STALL_SCAN_SQL[] = "SELECT adw_id, current_step, last_id,"
                                     " (extract(epoch from updated_at) * 1000000)::bigint"
                                     " FROM adw_runs"
                                     " WHERE status = 'running' AND NOT stalled"
                                     " AND updated_at < to_timestamp($1::bigint / 1000000.0)"
                                     " ORDER BY updated_at LIMIT $2::int";

/* Runs the stall scan r (store_submit) and commits what it raises. */
void store__scan_stalls(store_t *s, store_req_t *r)
{
    int64_t now_us = timefmt_now_us();
    char cutoff[24], limit[24];
    snprintf(cutoff, sizeof cutoff, "%" PRId64, now_us - r->stall_s * 1000000);
    int64_t most =
        s->opts.max_batch_events < STALL_SCAN_MAX ? s->opts.max_batch_events : STALL_SCAN_MAX;
    snprintf(limit, sizeof limit, "%" PRId64, most);
    const char *params[2] = {cutoff, limit};
    PGresult *res = store__exec1(s, STALL_SCAN_SQL, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        scan_failed(s, r, res, "stall scan");
        return;
    }
    int rows = scan_reserve(s, r, res);
    if (rows == 0)
        return; /* nothing to raise */
    size_t n = 0;
    for (int row = 0; row < rows; row++) {
        const char *adw_id = PQgetvalue(res, row, 0);
        const char *step = PQgetisnull(res, row, 1) ? NULL : PQgetvalue(res, row, 1);
        int64_t last_id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
        int64_t idle_s = stall_idle_s(now_us, strtoll(PQgetvalue(res, row, 3), NULL, 10));
        char err[EVENT_ERR_LEN];
        if (stall_event_build(adw_id, step, idle_s, last_id, now_us, &r->events[n], err,
                              sizeof err)) {
            log_warn("store: no run_stalled for run %s: %s", adw_id, err);
            continue;
        }
        n++;
    }
    PQclear(res);
    scan_commit(s, r, n);
}

/* The approvals an expire scan ends: pending, not held by this ingest ($1), the oldest first. */
static const char APPROVAL_SCAN_SQL[] =
    "SELECT approval_id, adw_id, step, summary,"
    " (extract(epoch from requested_at) * 1000000)::bigint"
    " FROM adw_approvals WHERE status = 'pending' AND NOT (approval_id = ANY($1::text[]))"
    " ORDER BY requested_id LIMIT $2::int";

/* The latest ended approvals, for r->ended. */
static const char APPROVAL_ENDED_SQL[] =
    "SELECT approval_id, status FROM adw_approvals WHERE status <> 'pending'"
    " ORDER BY requested_id DESC LIMIT $1::int";

/* Reads the latest ended approvals into r->ended; nothing on failure (no memory, an error). */
static void read_ended(store_t *s, store_req_t *r)
{
    char limit[24];
    snprintf(limit, sizeof limit, "%d", APPROVAL_SCAN_ENDED_MAX);
    const char *params[1] = {limit};
    PGresult *res = store__exec1(s, APPROVAL_ENDED_SQL, 1, params);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        buf_t b;
        buf_init(&b, 0);
        int bad = buf_putc(&b, '\0'); /* allocated: an empty list is "" */
        buf_reset(&b);
        for (int row = 0; row < PQntuples(res) && !bad; row++)
            bad |= buf_printf(&b, "%s %s\n", PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
        if (!bad) {
            r->ended = b.data; /* NUL-terminated by buf_printf */
            b.data = NULL;
        }
        buf_free(&b);
    }
    PQclear(res);
}

/* Runs the approval expire scan r (store_submit) and commits what it raises. */
void store__scan_approvals(store_t *s, store_req_t *r)
{
    int64_t now_us = timefmt_now_us();
    char limit[24];
    int64_t most =
        s->opts.max_batch_events < APPROVAL_SCAN_MAX ? s->opts.max_batch_events : APPROVAL_SCAN_MAX;
    snprintf(limit, sizeof limit, "%" PRId64, most);
    const char *params[2] = {r->held ? r->held : "{}", limit};
    PGresult *res = store__exec1(s, APPROVAL_SCAN_SQL, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        scan_failed(s, r, res, "approval scan");
        return;
    }
    read_ended(s, r);
    int rows = scan_reserve(s, r, res);
    if (rows == 0)
        return; /* nothing to end */
    size_t n = 0;
    for (int row = 0; row < rows; row++) {
        const char *id = PQgetvalue(res, row, 0);
        const char *adw_id = PQgetvalue(res, row, 1);
        const char *step = PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2);
        const char *summary = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
        int64_t since = strtoll(PQgetvalue(res, row, 4), NULL, 10);
        int64_t waited_ms = now_us > since ? (now_us - since) / 1000 : 0;
        char err[EVENT_ERR_LEN];
        if (approval_event_expired(id, adw_id, step, "ingest restarted", waited_ms, summary, now_us,
                                   &r->events[n], err, sizeof err)) {
            log_warn("store: no approval_expired for approval %s: %s", id, err);
            continue;
        }
        n++;
    }
    PQclear(res);
    r->approvals = 1;
    scan_commit(s, r, n);
}
