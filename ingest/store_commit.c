/* store_commit: the commit of a batch (batch.h): the requests go in one transaction, a
 * request PostgreSQL refuses is isolated so that the others still commit, and each request
 * completes (OK, rejected or unavailable). A commit whose answer was lost goes to
 * store_resolve.c; a lost connection makes the store CONNECTING. Writer thread only.
 */
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>

#include "batch.h"
#include "log.h"
#include "partition.h"
#include "store_internal.h"
#include "timefmt.h"

/* Commits reqs, isolating a request PostgreSQL refuses so the others still commit. */
// NOLINTNEXTLINE(misc-no-recursion): one level at most, the retry is one request at a time
void store__process(store_t *s, store_req_t **reqs, size_t nreqs)
{
    char err[256];
    int64_t t0 = timefmt_mono_us();
    int64_t last_id = atomic_load(&s->last_id);
    /* Each partition's unique index sees only its own event_ids. When every id this batch may
     * take (each event and the at most 3 its budget raises) lies in one partition, that
     * partition's index finds a duplicate stored in it, and a check in the batch's pipeline one
     * stored below it; else the event_ids are looked up first. */
    size_t total = 0;
    for (size_t q = 0; q < nreqs; q++)
        total += reqs[q]->nevents;
    int64_t dedup = partition_dedup_floor(s->parts, last_id + 1, last_id + 4 * (int64_t)total);
    batch_result_t res = batch_commit(s->batch, s->conn, reqs, nreqs,
                                      dedup < 0 ? BATCH_LOOKUP : dedup, &last_id, err, sizeof err);
    if (res == BATCH_DUPLICATE && dedup >= 0) {
        metric_add(s->m_lookups, 1);
        res = batch_commit(s->batch, s->conn, reqs, nreqs, BATCH_LOOKUP, &last_id, err, sizeof err);
    }
    switch (res) {
    case BATCH_OK:
        atomic_store(&s->last_id, last_id);
        store__finish_ok(s, reqs, nreqs);
        return;
    case BATCH_DUPLICATE: /* cannot happen after the lookup; treated as a refusal */
    case BATCH_DATA_ERROR:
        if (nreqs > 1) {
            for (size_t q = 0; q < nreqs; q++)
                store__process(s, &reqs[q], 1);
            return;
        }
        log_warn("store: PostgreSQL refused a request: %s", err);
        reqs[0]->status = STORE_STATUS_REJECTED;
        snprintf(reqs[0]->err, sizeof reqs[0]->err, "refused by the database: %.130s", err);
        store__complete(s, reqs[0]);
        return;
    case BATCH_UNKNOWN:
        log_warn("store: %s", err);
        store__set_error(s, err);
        store__set_state(s, STORE_CONNECTING);
        store__resolve_unknown(s, reqs, nreqs, t0 + s->opts.reply_timeout_ms * 1000);
        return;
    case BATCH_SEND_FAILED:
        /* Cannot tell what was sent: start afresh (a new connection takes the lock again). */
        store__disconnect(s);
        /* fall through */
    case BATCH_NOT_COMMITTED:
        log_warn("store: transaction failed: %s", err);
        store__set_error(s, err);
        for (size_t q = 0; q < nreqs; q++)
            store__complete_unavailable(s, reqs[q], "database unavailable, retry later");
        if (PQstatus(s->conn) != CONNECTION_OK) {
            store__disconnect(s);
            store__set_state(s, STORE_CONNECTING);
        }
        return;
    }
}
