/* store_resolve: the resolution of a commit whose answer was lost (batch.h's BATCH_UNKNOWN):
 * the writer reconnects and reads the batch's first and last fresh rows back until it knows
 * whether the batch is stored, answering its requests as soon as it does, or as unavailable
 * ("commit outcome unknown") when their time is up. Writer thread only.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "store_internal.h"
#include "timefmt.h"

/* The reason a request gets when its commit may or may not have happened. */
#define STORE_OUTCOME_UNKNOWN                                                                      \
    "database unavailable: commit outcome unknown; retry with the same event_id"

/* The rows that tell whether a batch committed: its first and last fresh events (id and
 * received_at, which no other event shares with them). */
typedef struct probe_t {
    int64_t first_id, last_id, first_us, last_us;
} probe_t;

/* Reads the probe's rows back on s->conn. Returns 1 when committed, 0 when not, -1 when the
 * query failed. */
static int probe_read(store_t *s, const probe_t *pr)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%" PRId64, pr->first_id);
    snprintf(b, sizeof b, "%" PRId64, pr->last_id);
    const char *params[2] = {a, b};
    PGresult *r = store__exec1(s,
                               "SELECT id, (extract(epoch from received_at) * 1000000)::bigint"
                               " FROM events WHERE id = $1::bigint OR id = $2::bigint",
                               2, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int found = 0;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        int64_t us = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        if ((id == pr->first_id && us == pr->first_us) || (id == pr->last_id && us == pr->last_us))
            found++;
    }
    PQclear(r);
    return found == (pr->first_id == pr->last_id ? 1 : 2);
}

/* After a COMMIT whose outcome was lost (the batch reqs was sent at deadline_us minus the
 * reply timeout): reconnects and reads back the batch's first and last fresh rows, until it
 * knows or the store stops. The requests are answered as soon as the outcome is known (OK, or
 * unavailable when not stored); when it is still unknown at deadline_us they are answered
 * unavailable with STORE_OUTCOME_UNKNOWN (their client retries with the same event_ids, which
 * the dedup answers either way), and the resolution goes on without them. The connection is
 * left closed: store__connect_step takes the writer lock and reads the last id afresh. */
void store__resolve_unknown(store_t *s, store_req_t **reqs, size_t nreqs, int64_t deadline_us)
{
    probe_t pr = {0};
    for (size_t q = 0; q < nreqs; q++)
        for (size_t i = 0; i < reqs[q]->nevents; i++)
            if (reqs[q]->fresh[i]) {
                if (!pr.first_id) {
                    pr.first_id = reqs[q]->ids[i];
                    pr.first_us = reqs[q]->events[i].received_us;
                }
                pr.last_id = reqs[q]->ids[i];
                pr.last_us = reqs[q]->events[i].received_us;
            }
    int64_t backoff = 100;
    int committed = -1;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        store__disconnect(s);
        int64_t left_ms = (deadline_us - timefmt_mono_us()) / 1000;
        /* While the requests wait, one attempt may not take much past their deadline. */
        int connect_s = nreqs && left_ms < 5000 ? (int)((left_ms + 999) / 1000) : 5;
        char err[256];
        if (!store__open_conn(s, connect_s, err, sizeof err) &&
            (committed = probe_read(s, &pr)) >= 0)
            break;
        if (stopping)
            break;
        if (nreqs && timefmt_mono_us() >= deadline_us) {
            log_warn("store: a commit's outcome is unknown after %" PRId64
                     " ms; its requests are answered 503 (retry with the same event_id)",
                     s->opts.reply_timeout_ms);
            for (size_t q = 0; q < nreqs; q++)
                store__complete_unavailable(s, reqs[q], STORE_OUTCOME_UNKNOWN);
            nreqs = 0;
        }
        /* Requests queued meanwhile are not held up by this batch: they are refused now. */
        store__drain_queue(s, "database unavailable, retry later");
        int64_t nap = backoff;
        if (nreqs) {
            int64_t to_deadline = (deadline_us - timefmt_mono_us()) / 1000;
            if (nap > to_deadline)
                nap = to_deadline > 0 ? to_deadline : 0;
        }
        struct timespec ts = {.tv_sec = nap / 1000, .tv_nsec = (nap % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff < 2000 ? backoff * 2 : 2000;
    }
    store__disconnect(s); /* the writer lock is taken afresh by store__connect_step */
    if (committed >= 0) {
        metric_add(committed ? s->m_unknown_stored : s->m_unknown_not_stored, 1);
        log_warn("store: a commit's outcome was lost; ids %" PRId64 "..%" PRId64 " are %s",
                 pr.first_id, pr.last_id, committed ? "stored" : "not stored");
    }
    if (!nreqs)
        return; /* answered already */
    if (committed == 1) {
        int64_t last = pr.last_id; /* raised events may follow the last fresh one */
        for (size_t q = 0; q < nreqs; q++)
            for (size_t i = 0; i < reqs[q]->nraised; i++)
                if (reqs[q]->raised[i].ev.id > last)
                    last = reqs[q]->raised[i].ev.id;
        atomic_store(&s->last_id, last);
        store__finish_ok(s, reqs, nreqs);
        return;
    }
    for (size_t q = 0; q < nreqs; q++)
        store__complete_unavailable(s, reqs[q],
                                    committed == 0 ? "database unavailable, retry later"
                                                   : STORE_OUTCOME_UNKNOWN);
}
