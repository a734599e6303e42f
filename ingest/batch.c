#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approval_rollup.h"
#include "batch_sql.h"
#include "budget.h"
#include "codec.h"
#include "log.h"
#include "pgbin.h"
#include "rollup.h"
#include "timefmt.h"
#include "upsert.h"

/* Batches with at least this many new events go in with COPY (three round trips, the least
 * work per row); smaller ones as one statement that also brings their runs, steps, agents and
 * tool calls up to date (one round trip). */
#define BATCH_COPY_MIN 64

struct batch_t {
    batch_options_t o;
    buf_t arrays[BATCH_NPARAMS]; /* a batch's parameters: events', then aggregates' columns */
    buf_t copy;                  /* a large batch's events as a binary COPY stream */
    buf_t older_keys;            /* the event_ids the check of older partitions sends */
    rollup_t agg;                /* what the batch adds to runs, steps, agents, tool calls */
    budget_t *budget;            /* the runs' budgets and spend, and what they raise */
    approval_rollup_t approvals; /* what its approval events write to adw_approvals */
};

/* One of these per batch_commit: the batch in hand, and what its steps learn about it. */
typedef struct tx_t {
    batch_t *b;
    PGconn *conn;
    store_req_t **reqs;
    size_t nreqs;
    size_t total;    /* events in the batch */
    size_t nfresh;   /* events this batch stores */
    int64_t next;    /* the last id assigned */
    int use_copy;    /* the events go in by COPY */
    int64_t older;   /* check the event_ids below this id in the pipeline (0: no check) */
    int older_sent;  /* the check is in the pipeline */
    int budget_sent; /* the budget columns' statement is in the pipeline */
    int nappr;       /* statements sent for adw_approvals (approval_rollup.h) */
    char *err;
    size_t errlen;
} tx_t;

batch_t *batch_new(const batch_options_t *o)
{
    batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->o = *o;
    for (int i = 0; i < BATCH_NPARAMS; i++)
        buf_init(&b->arrays[i], 0);
    buf_init(&b->copy, 0);
    budget_options_t bo = {
        .default_usd = o->run_budget_usd, .enforce = o->enforce_budget, .wait = o->wait};
    if (!(b->budget = budget_new(&bo))) {
        batch_destroy(&b);
        return NULL;
    }
    return b;
}

void batch_destroy(batch_t **bp)
{
    if (!bp || !*bp)
        return;
    batch_t *b = *bp;
    for (int i = 0; i < BATCH_NPARAMS; i++)
        buf_free(&b->arrays[i]);
    buf_free(&b->copy);
    buf_free(&b->older_keys);
    rollup_free(&b->agg);
    budget_destroy(&b->budget);
    approval_rollup_free(&b->approvals);
    free(b);
    *bp = NULL;
}

/* Copies into err the first line of msg. */
static void first_line(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    char *nl = strchr(err, '\n');
    if (nl)
        *nl = '\0';
}

/* Whether constraint names a partition's unique index on event_id (events_p<N>_event_id, or
 * events_event_id before the table was partitioned), or is the name the check of the older
 * partitions raises with (events_older_event_id, BATCH_OLDER_NAME). */
static int is_event_id_index(const char *constraint)
{
    static const char suffix[] = "_event_id";
    size_t len = strlen(constraint);
    return !strncmp(constraint, "events_", 7) && len > sizeof suffix &&
           !strcmp(constraint + len - (sizeof suffix - 1), suffix);
}

/* What a failed statement's result r (NULL: none, the sending failed) says about the batch;
 * err gets the reason. */
static batch_result_t classify(PGconn *conn, PGresult *r, char *err, size_t errlen)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : "";
    first_line(err, errlen, *msg ? msg : PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK)
        return BATCH_NOT_COMMITTED;
    const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (state && !strcmp(state, "23505") && constraint && is_event_id_index(constraint))
        return BATCH_DUPLICATE;
    if (state && (!strncmp(state, "22", 2) || !strncmp(state, "23", 2) || !strncmp(state, "54", 2)))
        return BATCH_DATA_ERROR;
    return BATCH_NOT_COMMITTED;
}

int batch_prepare(const batch_t *b, PGconn *conn, char *err, size_t errlen)
{
    if (batch_sql_prepare(conn, &b->o.wait, err, errlen))
        return -EIO;
    return budget_prepare(b->budget, conn, err, errlen);
}

/* ---- the steps of a commit, in order ---- */

/* Clears the requests' outputs; counts the batch's events. */
static void clear_outputs(tx_t *t)
{
    t->total = 0;
    for (size_t q = 0; q < t->nreqs; q++) {
        store_req_t *r = t->reqs[q];
        t->total += r->nevents;
        memset(r->ids, 0, r->nevents * sizeof(int64_t));
        memset(r->fresh, 0, r->nevents);
        buf_reset(&r->frames);
        for (size_t i = 0; i < r->nraised; i++)
            event_clear(&r->raised[i].ev);
        r->nraised = 0;
    }
}

/* Calls fn on each fresh event of the batch in id order: each request's fresh events, each
 * followed by those raised after it. Stops at fn's first nonzero return, and returns it. */
static int each_fresh(store_req_t **reqs, size_t nreqs,
                      int (*fn)(void *arg, store_req_t *r, adw_event_t *e, size_t *frame_end),
                      void *arg)
{
    for (size_t q = 0; q < nreqs; q++) {
        store_req_t *r = reqs[q];
        size_t k = 0;
        for (size_t i = 0; i < r->nevents; i++) {
            int rc = r->fresh[i] ? fn(arg, r, &r->events[i], &r->frame_end[i]) : 0;
            for (; !rc && k < r->nraised && r->raised[k].after == i; k++)
                rc = fn(arg, r, &r->raised[k].ev, &r->raised[k].frame_end);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Appends to b the text[] literal element for s (NULL: an SQL NULL), for unnest($n::text[]). */
static void arr_text(buf_t *b, const char *s)
{
    buf_putc(b, b->len ? ',' : '{');
    if (!s) {
        buf_puts(b, "NULL");
        return;
    }
    buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

static void arr_close(buf_t *b)
{
    if (!b->len)
        buf_putc(b, '{');
    buf_putc(b, '}');
}

/* Writes into keys the text[] literal of the batch's event_ids (only the fresh events' with
 * fresh_only). Returns how many it holds; with none, keys is left empty. */
static size_t event_id_keys(const tx_t *t, buf_t *keys, int fresh_only)
{
    buf_reset(keys);
    size_t n = 0;
    for (size_t q = 0; q < t->nreqs; q++)
        for (size_t i = 0; i < t->reqs[q]->nevents; i++)
            if ((!fresh_only || t->reqs[q]->fresh[i]) && t->reqs[q]->events[i].event_id) {
                arr_text(keys, t->reqs[q]->events[i].event_id);
                n++;
            }
    if (n)
        arr_close(keys);
    return n;
}

/* Looks up which event_ids of the batch are stored already; marks those events not fresh with
 * their stored ids. One writer (the advisory lock): what is stored cannot change under us, so
 * the lookup needs no transaction of its own. */
static batch_result_t find_duplicates(tx_t *t)
{
    buf_t *keys = &t->b->arrays[0];
    if (!event_id_keys(t, keys, 0))
        return BATCH_OK;
    metric_add(t->b->o.lookups, 1);
    const char *params[1] = {keys->data};
    PGresult *r = pgwait_exec_params(
        t->conn, &t->b->o.wait, "SELECT event_id, id FROM events WHERE event_id = ANY($1::text[])",
        1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        batch_result_t res = classify(t->conn, r, t->err, t->errlen);
        PQclear(r);
        return res;
    }
    int n = PQntuples(r);
    for (int row = 0; row < n; row++) {
        const char *eid = PQgetvalue(r, row, 0);
        int64_t id = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        for (size_t q = 0; q < t->nreqs; q++)
            for (size_t i = 0; i < t->reqs[q]->nevents; i++) {
                store_req_t *req = t->reqs[q];
                adw_event_t *e = &req->events[i];
                if (e->event_id && !req->ids[i] && !strcmp(e->event_id, eid)) {
                    req->ids[i] = id;
                    req->fresh[i] = 0;
                }
            }
    }
    PQclear(r);
    return BATCH_OK;
}

/* One walk over the batch's events not stored before, in order, for refile_sessions: each
 * event with attr_session gets the run its session was filed under by the batch's earlier
 * events (the sessions map, built as it goes), else by stored (a map of adw_sessions' rows; NULL:
 * none read). With keys, nothing is re-filed: the sessions not found are appended to keys (a
 * text[] literal) and counted in *nkeys. Returns 0, or -ENOMEM. */
static int walk_sessions(tx_t *t, const rollup_map_t *stored, buf_t *keys, size_t *nkeys)
{
    rollup_map_t *seen = &t->b->agg.sessions;
    if (rollup_map_reset(seen, t->total))
        return -ENOMEM;
    for (size_t q = 0; q < t->nreqs; q++) {
        store_req_t *r = t->reqs[q];
        for (size_t i = 0; i < r->nevents; i++) {
            adw_event_t *e = &r->events[i];
            if (r->ids[i])
                continue; /* stored before */
            const char *session = rollup_session_id(e);
            if (session) {
                rollup_map_get(seen, session, NULL)->session_run = e->adw_id;
                continue;
            }
            if (!e->attr_session)
                continue;
            const rollup_agg_t *found = rollup_map_find(seen, e->attr_session, NULL);
            if (!found && stored)
                found = rollup_map_find(stored, e->attr_session, NULL);
            if (keys) {
                if (!found) {
                    arr_text(keys, e->attr_session);
                    ++*nkeys;
                }
            } else if (found && strcmp(found->session_run, e->adw_id) &&
                       rollup_refile(e, found->session_run)) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}

/* Re-files the events that came with attr_session (an OTel record with a session id and no
 * run of its own) under the run their session was filed under: by the batch's earlier events
 * first, else as adw_sessions has it (one SELECT, only when some session is not in the batch).
 * Not found: they keep their adw_id. One writer (the advisory lock): adw_sessions cannot change
 * under us, so the SELECT needs no transaction of its own. Leaves the sessions and tools maps
 * empty. */
static batch_result_t refile_sessions(tx_t *t)
{
    rollup_map_t *stored = &t->b->agg.tools;
    buf_t *keys = &t->b->arrays[0];
    buf_reset(keys);
    size_t nkeys = 0;
    PGresult *r = NULL;
    batch_result_t res = BATCH_NOT_COMMITTED;
    int any = 0;
    for (size_t q = 0; q < t->nreqs && !any; q++)
        for (size_t i = 0; i < t->reqs[q]->nevents && !any; i++)
            any = t->reqs[q]->events[i].attr_session && !t->reqs[q]->ids[i];
    if (!any)
        return BATCH_OK;
    if (walk_sessions(t, NULL, keys, &nkeys))
        goto oom;
    if (nkeys) {
        arr_close(keys);
        const char *params[1] = {keys->data};
        r = pgwait_exec_params(
            t->conn, &t->b->o.wait,
            "SELECT session_id, adw_id FROM adw_sessions WHERE session_id = ANY($1::text[])", 1,
            params);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            res = classify(t->conn, r, t->err, t->errlen);
            goto fail;
        }
        if (rollup_map_reset(stored, t->total))
            goto oom;
        for (int row = 0; row < PQntuples(r); row++)
            rollup_map_get(stored, PQgetvalue(r, row, 0), NULL)->session_run =
                PQgetvalue(r, row, 1);
    }
    if (walk_sessions(t, nkeys ? stored : NULL, NULL, NULL))
        goto oom;
    PQclear(r);
    r = NULL;
    if (rollup_map_reset(stored, t->total) || rollup_map_reset(&t->b->agg.sessions, t->total))
        goto oom;
    return BATCH_OK;
oom:
    snprintf(t->err, t->errlen, "out of memory");
    res = BATCH_NOT_COMMITTED;
fail:
    PQclear(r);
    return res;
}

/* Reads the budgets and spend of the batch's runs the budget cache lacks (budget.h). */
static batch_result_t load_budgets(tx_t *t)
{
    PGresult *failed = NULL;
    int rc = budget_begin(t->b->budget, t->conn, t->reqs, t->nreqs, t->total, &failed);
    if (rc == -ENOMEM) {
        snprintf(t->err, t->errlen, "out of memory");
        return BATCH_NOT_COMMITTED;
    }
    if (rc) {
        batch_result_t res = classify(t->conn, failed, t->err, t->errlen);
        PQclear(failed);
        return res;
    }
    return BATCH_OK;
}

/* Gives each event not stored before the next id; a duplicate inside the batch reuses the first
 * one's id; the events its budget raises (budget_fold) get the ids right after it. The steps map
 * doubles as the event_id index, and is emptied again after. */
static batch_result_t assign_ids(tx_t *t)
{
    rollup_map_t *seen = &t->b->agg.steps;
    for (size_t q = 0; q < t->nreqs; q++) {
        store_req_t *r = t->reqs[q];
        for (size_t i = 0; i < r->nevents; i++) {
            adw_event_t *e = &r->events[i];
            if (r->ids[i])
                continue; /* stored before */
            if (e->event_id) {
                const rollup_agg_t *dup = rollup_map_find(seen, e->event_id, NULL);
                if (dup) {
                    r->ids[i] = dup->first_id;
                    continue;
                }
                rollup_map_get(seen, e->event_id, NULL)->first_id = t->next + 1;
            }
            r->ids[i] = ++t->next;
            r->fresh[i] = 1;
            e->id = t->next;
            t->nfresh++;
            int raised = budget_fold(t->b->budget, r, i, &t->next);
            if (raised < 0) {
                snprintf(t->err, t->errlen, "out of memory");
                return BATCH_NOT_COMMITTED;
            }
            t->nfresh += (size_t)raised;
        }
    }
    if (rollup_map_reset(&t->b->agg.steps, t->total)) {
        snprintf(t->err, t->errlen, "out of memory");
        return BATCH_NOT_COMMITTED;
    }
    return BATCH_OK;
}

/* Appends e's row, its 13 columns, to col[0..12] (one buffer per column, or the same COPY
 * buffer thirteen times); nulls[c] is set when column c gets a NULL. */
static int encode_event(buf_t **col, int *nulls, const adw_event_t *e)
{
    char received[TIMEFMT_LEN], prefix[96];
    timefmt_format(e->received_us, received);
    snprintf(prefix, sizeof prefix, "\"id\":%" PRId64 ",\"received_at\":\"%s\"", e->id, received);
    int rc = 0;
    rc |= pgbin_int8(col[0], e->id);
    rc |= pgbin_text(col[1], e->adw_id, &nulls[1]);
    rc |= pgbin_text(col[2], e->type, &nulls[2]);
    rc |= pgbin_text(col[3], e->step, &nulls[3]);
    rc |= pgbin_text(col[4], e->event_type, &nulls[4]);
    rc |= pgbin_text(col[5], e->event, &nulls[5]);
    rc |= pgbin_text(col[6], e->status, &nulls[6]);
    rc |= pgbin_timestamptz(col[7], e->ts_us);
    rc |= pgbin_timestamptz(col[8], e->received_us);
    rc |= pgbin_text(col[9], e->event_id, &nulls[9]);
    rc |= pgbin_jsonb(col[10], e->doc, prefix);
    rc |= pgbin_text(col[11], e->agent_id, &nulls[11]);
    rc |= pgbin_text(col[12], e->agent_type, &nulls[12]);
    return rc;
}

/* each_fresh's step of encode_rows: one row, and the event folded into the aggregates. */
typedef struct row_ctx_t {
    tx_t *t;
    buf_t **col;
    int *nulls;
} row_ctx_t;

static int encode_one_row(void *arg, store_req_t *r, adw_event_t *e, size_t *frame_end)
{
    (void)r;
    (void)frame_end;
    row_ctx_t *x = arg;
    int rc = 0;
    if (x->t->use_copy)
        rc |= pgbin_copy_row(&x->t->b->copy, BATCH_EVENT_COLS);
    rc |= encode_event(x->col, x->nulls, e);
    rollup_event(&x->t->b->agg, e);
    return rc;
}

/* Encodes the fresh events' rows, as binary arrays (one per column) or as the rows of a binary
 * COPY (every column into one buffer), and folds each into the batch's aggregates, in id
 * order. */
static batch_result_t encode_rows(tx_t *t)
{
    batch_t *b = t->b;
    t->use_copy = t->nfresh >= BATCH_COPY_MIN;
    buf_t *col[BATCH_EVENT_COLS];
    int rc = 0, nulls[BATCH_EVENT_COLS] = {0};
    if (t->use_copy)
        rc |= pgbin_copy_begin(&b->copy);
    for (int c = 0; c < BATCH_EVENT_COLS; c++) {
        col[c] = t->use_copy ? &b->copy : &b->arrays[c];
        if (!t->use_copy)
            rc |= pgbin_array_begin(col[c], BATCH_EVENT_OIDS[c]);
    }
    row_ctx_t x = {.t = t, .col = col, .nulls = nulls};
    if (!rc)
        rc |= each_fresh(t->reqs, t->nreqs, encode_one_row, &x);
    if (t->use_copy)
        rc |= pgbin_copy_end(&b->copy);
    if (rc || (t->use_copy && b->copy.len > INT32_MAX)) {
        snprintf(t->err, t->errlen, "cannot serialize the batch (out of memory)");
        return BATCH_NOT_COMMITTED;
    }
    if (!t->use_copy)
        for (int c = 0; c < BATCH_EVENT_COLS; c++)
            pgbin_array_end(col[c], (uint32_t)t->nfresh, nulls[c]);
    if (approval_rollup_encode(&b->approvals, t->reqs, t->nreqs)) {
        snprintf(t->err, t->errlen, "cannot serialize the batch's approvals (out of memory)");
        return BATCH_NOT_COMMITTED;
    }
    return BATCH_OK;
}

/* Sends the batch statement: the events' columns in arrays[0..12] (none: empty arrays, as
 * after a COPY), the runs, steps, agents, tool calls, their sums of spend and the sessions from
 * the aggregates. Returns 0 or -1. */
static int send_statement(tx_t *t, int with_events)
{
    batch_t *b = t->b;
    if (!with_events)
        for (int c = 0; c < BATCH_EVENT_COLS; c++)
            if (pgbin_array_empty(&b->arrays[c], BATCH_EVENT_OIDS[c]))
                return -1;
    /* No agent, tool call or session in the batch: the lean statement, which PostgreSQL sets up
     * with three fewer upserts. */
    int lean = !b->agg.agents.used && !b->agg.tools.used && !b->agg.sessions.used;
    const char *values[BATCH_NPARAMS];
    int lengths[BATCH_NPARAMS], formats[BATCH_NPARAMS];
    for (int c = 0; c < BATCH_EVENT_COLS; c++) {
        values[c] = b->arrays[c].data;
        lengths[c] = (int)b->arrays[c].len;
        formats[c] = 1;
    }
    for (int k = 0, at = BATCH_EVENT_COLS; k < BATCH_NKINDS; k++) {
        const upsert_col_t *cols = NULL;
        const rollup_map_t *m = batch_sql_kind(&b->agg, k, &cols);
        int n = upsert_encode(&b->arrays[at], m, cols);
        if (n < 0)
            return -1;
        for (int c = at; c < at + n; c++) {
            int sent = !lean || batch_sql_lean_kind(k);
            values[c] = sent ? b->arrays[c].data : NULL;
            lengths[c] = sent ? (int)b->arrays[c].len : 0;
            formats[c] = 1;
        }
        at += n;
    }
    return PQsendQueryPrepared(t->conn, lean ? BATCH_LEAN_NAME : BATCH_SQL_NAME, BATCH_NPARAMS,
                               values, lengths, formats, 0) == 1
               ? 0
               : -1;
}

/* Sends the check that none of the fresh events' event_ids is stored below t->older, in the
 * partitions whose unique indexes the batch's own partition does not see (BATCH_OLDER_NAME).
 * Returns 1 when sent, 0 when there is nothing to check, -1 when the sending failed. */
static int send_older_check(tx_t *t)
{
    if (t->older <= 0)
        return 0;
    buf_t *keys = &t->b->older_keys;
    if (!event_id_keys(t, keys, 1))
        return 0;
    char below[24];
    snprintf(below, sizeof below, "%" PRId64, t->older);
    const char *params[2] = {below, keys->data};
    return PQsendQueryPrepared(t->conn, BATCH_OLDER_NAME, 2, params, NULL, NULL, 0) == 1 ? 1 : -1;
}

/* A large batch: BEGIN and the COPY in one round trip, the rows in a second. The transaction
 * block stays open for send_pipeline's statement and COMMIT. */
static batch_result_t send_copy(tx_t *t)
{
    const pgwait_t *w = &t->b->o.wait;
    PGresult *r = pgwait_exec(t->conn, w,
                              "BEGIN; COPY events (id, adw_id, type, step, event_type,"
                              " event, status, ts, received_at, event_id, doc, agent_id,"
                              " agent_type)"
                              " FROM STDIN (FORMAT binary)");
    batch_result_t res = BATCH_OK;
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        res = classify(t->conn, r, t->err, t->errlen);
        PQclear(r);
        return res;
    }
    PQclear(r);
    if (PQputCopyData(t->conn, t->b->copy.data, (int)t->b->copy.len) != 1 ||
        PQputCopyEnd(t->conn, NULL) != 1)
        return classify(t->conn, NULL, t->err, t->errlen);
    r = pgwait_result(t->conn, w);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        res = classify(t->conn, r, t->err, t->errlen);
    PQclear(r);
    while ((r = pgwait_result(t->conn, w)))
        PQclear(r);
    return res;
}

/* Sends, in pipeline mode, the check of the partitions below the batch's when it has one, the
 * batch statement (with the events' arrays, or after a COPY without), the budget columns'
 * statement when they change, the approvals' statements when the batch has some, COMMIT after
 * a COPY, then Sync, which commits the implicit transaction of the statements before it (or
 * rolls it back when one failed). */
static batch_result_t send_pipeline(tx_t *t)
{
    if (PQenterPipelineMode(t->conn) != 1 || (t->older_sent = send_older_check(t)) < 0 ||
        send_statement(t, !t->use_copy) ||
        (t->budget_sent = budget_send(t->b->budget, t->conn)) < 0 ||
        (t->nappr = approval_rollup_send(&t->b->approvals, t->conn)) < 0 ||
        (t->use_copy && PQsendQueryParams(t->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1) ||
        PQpipelineSync(t->conn) != 1) {
        classify(t->conn, NULL, t->err, t->errlen);
        return BATCH_SEND_FAILED;
    }
    return BATCH_OK;
}

/* each_fresh's step of encode_frames: e's map appended to r's frames. Never stops the walk. */
static int encode_one_frame(void *arg, store_req_t *r, adw_event_t *e, size_t *frame_end)
{
    int *rc = arg;
    char received[TIMEFMT_LEN];
    timefmt_format(e->received_us, received);
    *rc |= codec_msgpack_event(&r->frames, e->doc, e->id, received);
    *frame_end = r->frames.len;
    return 0;
}

/* Encodes each fresh event for publishing, in id order (raised events after the event that
 * raised them): a msgpack map of id, received_at, then its keys. Returns 0, or -ENOMEM. */
static int encode_frames(store_req_t **reqs, size_t nreqs)
{
    int rc = 0;
    for (size_t q = 0; q < nreqs; q++)
        buf_reset(&reqs[q]->frames);
    each_fresh(reqs, nreqs, encode_one_frame, &rc);
    if (!rc)
        return 0;
    /* Out of memory: no frame at all rather than a cut one (an empty frame is not published,
     * and each gateway reads those events from PostgreSQL after the gap). */
    for (size_t q = 0; q < nreqs; q++) {
        buf_reset(&reqs[q]->frames);
        memset(reqs[q]->frame_end, 0, reqs[q]->nevents * sizeof *reqs[q]->frame_end);
        for (size_t i = 0; i < reqs[q]->nraised; i++)
            reqs[q]->raised[i].frame_end = 0;
    }
    return -ENOMEM;
}

/* After a commit whose frames could not be encoded: tries again; if memory is still short,
 * the events go unpublished: each gateway sees the gap with the next event or heartbeat and
 * reads them from PostgreSQL. */
static void encode_frames_again(store_req_t **reqs, size_t nreqs)
{
    if (encode_frames(reqs, nreqs))
        log_warn("store: out of memory encoding a committed batch for publishing; gateways will "
                 "read it from PostgreSQL");
}

/* Reads the pipeline's results up to its Sync: BATCH_OK when everything succeeded, what the
 * server's first error says (an error the server reports carries an SQLSTATE and proves that
 * nothing was committed; one libpq makes up for a lost connection proves nothing), or
 * BATCH_UNKNOWN when the connection went before the COMMIT's answer. */
static batch_result_t read_outcome(tx_t *t)
{
    int nq = (t->use_copy ? 2 : 1) + t->older_sent + (t->budget_sent > 0) + t->nappr, synced = 0;
    batch_result_t res = BATCH_OK;
    for (int guard = 0; guard < 4 * nq + 4 && !synced; guard++) {
        PGresult *r = pgwait_result(t->conn, &t->b->o.wait);
        if (!r) {
            if (PQstatus(t->conn) != CONNECTION_OK)
                break;
            continue; /* the end of one query's results */
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            synced = 1;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_PIPELINE_ABORTED:
            break;
        default:
            if (res == BATCH_OK && PQresultErrorField(r, PG_DIAG_SQLSTATE))
                res = classify(t->conn, r, t->err, t->errlen); /* never BATCH_OK */
        }
        PQclear(r);
    }
    if (synced)
        PQexitPipelineMode(t->conn);
    if (res == BATCH_OK && (!synced || PQstatus(t->conn) != CONNECTION_OK)) {
        snprintf(t->err, t->errlen, "connection lost during commit: %s", PQerrorMessage(t->conn));
        char *nl = strchr(t->err, '\n');
        if (nl)
            *nl = '\0';
        return BATCH_UNKNOWN;
    }
    return res;
}

/* Counts a committed batch in the metrics. */
static void count_commit(const tx_t *t, int64_t t0)
{
    const batch_options_t *o = &t->b->o;
    metric_add(o->stored, (int64_t)t->nfresh);
    metric_add(o->duplicates, (int64_t)(t->total - t->nfresh));
    metric_add(o->batches, 1);
    metric_observe(o->batch_size, (double)t->total);
    metric_observe(o->commit_latency, (double)(timefmt_mono_us() - t0) / 1e6);
}

batch_result_t batch_commit(batch_t *b, PGconn *conn, store_req_t **reqs, size_t nreqs,
                            int64_t dedup, int64_t *last_id, char *err, size_t errlen)
{
    tx_t t = {.b = b,
              .conn = conn,
              .reqs = reqs,
              .nreqs = nreqs,
              .next = *last_id,
              .older = dedup > 0 ? dedup : 0,
              .err = err,
              .errlen = errlen};
    batch_result_t res = BATCH_NOT_COMMITTED;
    int unencoded = 0;
    clear_outputs(&t);
    int64_t t0 = timefmt_mono_us();
    if (rollup_reset(&b->agg, t.total)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (dedup == BATCH_LOOKUP && (res = find_duplicates(&t)) != BATCH_OK)
        goto fail;
    if ((res = refile_sessions(&t)) != BATCH_OK)
        goto fail;
    if ((res = load_budgets(&t)) != BATCH_OK)
        goto fail;
    if ((res = assign_ids(&t)) != BATCH_OK)
        goto fail;
    if (t.nfresh) { /* else every event was stored before: nothing to write */
        if ((res = encode_rows(&t)) != BATCH_OK)
            goto fail;
        if (t.use_copy && (res = send_copy(&t)) != BATCH_OK)
            goto fail;
        if ((res = send_pipeline(&t)) != BATCH_OK)
            goto fail;
        /* While PostgreSQL works: each fresh event as it will be published. */
        unencoded = encode_frames(reqs, nreqs);
        if ((res = read_outcome(&t)) != BATCH_OK)
            goto fail;
    }
    *last_id = t.next;
    budget_commit(b->budget);
    count_commit(&t, t0);
    if (unencoded) /* out of memory: once more, else the gateways read these from PostgreSQL */
        encode_frames_again(reqs, nreqs);
    return BATCH_OK;

fail:
    budget_abort(b->budget); /* the cache forgets what it cannot tell was stored */
    /* A transaction block left open (and failed, with COPY) on a live connection is rolled
     * back; when the connection's state is unknown, the caller's next step settles it. */
    if (res != BATCH_SEND_FAILED && res != BATCH_UNKNOWN && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(pgwait_exec(conn, &b->o.wait, "ROLLBACK"));
    return res;
}
