#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "kept.h"
#include "log.h"
#include "replayq.h"
#include "timefmt.h"

struct replayer_t {
    replayer_options_t o;
    replayq_t q; /* pages reading now, and replays waiting for their turn */
    metric_t *m_replays, *m_events, *m_failed;
    metric_t *m_active, *m_waiting, *m_active_max, *m_waiting_max, *m_wait;
};

struct replay_t {
    dbjob_t job; /* first: the pool hands it back */
    replayq_item_t qi;
    replayer_t *rp;
    fanout_client_t *c; /* NULL once cancelled */
    replay_t **slot;
    filter_t filter;
    int64_t since; /* as the client asked */
    int64_t after; /* replayed up to here */
    int64_t upto;
    int64_t gap_first; /* > 0: a page began below the first kept id, this one (kept.h) */
    int64_t count;
    int in_flight; /* a page is being read (it holds one of the replayer's slots) */
    int paused;    /* until the backlog drains */
    /* The page read by the worker. */
    frame_t *frames[REPLAY_PAGE];
    size_t n;
    int64_t last;
    int more;
    int rc;
    char err[256];
};

static const double WAIT_BOUNDS[] = {0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60};

replayer_t *replayer_new(const replayer_options_t *o)
{
    replayer_t *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->o = *o;
    replayq_init(&rp->q, o->max_active ? o->max_active : 1);
    metrics_t *m = o->metrics;
    if (m) {
        rp->m_replays = metrics_counter(m, "adw_gateway_replays_total", NULL,
                                        "Replays started (subscriptions with since)");
        rp->m_events = metrics_counter(m, "adw_gateway_replayed_events_total", NULL,
                                       "Events sent to clients from PostgreSQL by replays");
        rp->m_failed = metrics_counter(m, "adw_gateway_replay_failures_total", NULL,
                                       "Replays that failed (client closed with 1011)");
        rp->m_active = metrics_gauge(m, "adw_gateway_replays_active", NULL,
                                     "Replay pages being read from PostgreSQL or queued for "
                                     "the database threads (at most ADW_GATEWAY_MAX_REPLAYS)");
        rp->m_waiting = metrics_gauge(m, "adw_gateway_replays_waiting", NULL,
                                      "Replays waiting for their turn to read (FIFO)");
        rp->m_active_max = metrics_gauge(m, "adw_gateway_replays_active_max", NULL,
                                         "The most replay pages read or queued at once");
        rp->m_waiting_max = metrics_gauge(m, "adw_gateway_replays_waiting_max", NULL,
                                          "The most replays that waited at once");
        rp->m_wait = metrics_histogram(m, "adw_gateway_replay_wait_seconds", NULL,
                                       "Time a replay page waited for its turn to read",
                                       WAIT_BOUNDS, sizeof WAIT_BOUNDS / sizeof WAIT_BOUNDS[0]);
    }
    return rp;
}

void replayer_destroy(replayer_t **prp)
{
    if (!prp || !*prp)
        return;
    free(*prp);
    *prp = NULL;
}

static void gauges(replayer_t *rp)
{
    metric_set(rp->m_active, (int64_t)rp->q.active);
    metric_set(rp->m_waiting, (int64_t)rp->q.waiting);
    metric_set(rp->m_active_max, (int64_t)rp->q.active_max);
    metric_set(rp->m_waiting_max, (int64_t)rp->q.waiting_max);
}

static replay_t *replay_of(replayq_item_t *it)
{
    return (replay_t *)(void *)((char *)it - offsetof(replay_t, qi));
}

static void replay_free(replay_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        frame_unref(&r->frames[i]);
    filter_free(&r->filter);
    free(r);
}

/* Detaches r from its client's slot and frees it. */
static void replay_finish(replay_t *r)
{
    if (r->slot)
        *r->slot = NULL;
    replay_free(r);
}

static void replay_fail(replay_t *r, const char *why)
{
    log_warn("replay after %" PRId64 " failed: %s", r->after, why);
    metric_add(r->rp->m_failed, 1);
    fanout_close(r->rp->o.fanout, r->c, REPLAY_CLOSE_FAILED, "replay failed; resume with since");
    replay_finish(r);
}

static void page_run(dbjob_t *job, PGconn *conn)
{
    replay_t *r = (replay_t *)job;
    db_page_query_t q = {.after = r->after,
                         .upto = r->upto,
                         .filter = &r->filter,
                         .limit = REPLAY_PAGE,
                         .byte_budget = r->rp->o.max_queue / 4};
    r->rc = db_events_page(conn, &q, r->frames, REPLAY_PAGE, &r->n, &r->last, &r->more, r->err,
                           sizeof r->err);
    /* Read after the page: a retention that dropped ids it started below is always seen. */
    int64_t first = 1;
    if (!r->rc && !(r->rc = kept_first_id(conn, &first, r->err, sizeof r->err)) &&
        !kept_complete(r->after, first))
        r->gap_first = first;
}

static void page_done(dbjob_t *job);

/* Queues r's next page on the pool; r holds a slot. Returns 0, or -EAGAIN when the pool's queue
 * is full (its other users, the REST API, filled it). */
static int page_submit(replay_t *r)
{
    r->job.run = page_run;
    r->job.done = page_done;
    if (dbpool_submit(r->rp->o.pool, &r->job))
        return -EAGAIN;
    r->in_flight = 1;
    return 0;
}

/* Hands free slots to the replays waiting longest. One that cannot be queued on the pool goes
 * back to the head of the line, for replayer_pump to try again once the pool has worked. */
static void admit(replayer_t *rp)
{
    replayq_item_t *it;
    while ((it = replayq_next(&rp->q))) {
        replay_t *r = replay_of(it);
        if (page_submit(r)) {
            replayq_unget(&rp->q, it);
            break;
        }
        metric_observe(rp->m_wait, (double)(timefmt_mono_us() - it->since_us) / 1e6);
    }
    gauges(rp);
}

static void next_page(replay_t *r);

static void page_done(dbjob_t *job)
{
    replay_t *r = (replay_t *)job;
    replayer_t *rp = r->rp;
    r->in_flight = 0;
    replayq_release(&rp->q, &r->qi);
    if (!r->c) { /* cancelled meanwhile */
        replay_free(r);
    } else if (r->c->close_code) {
        replay_finish(r);
    } else if (job->failed || r->rc) {
        replay_fail(r, job->failed ? job->err : r->err);
    } else {
        fanout_t *f = rp->o.fanout;
        for (size_t i = 0; i < r->n; i++) {
            frame_t *fr = r->frames[i];
            r->frames[i] = NULL;
            fanout_replay_add(f, r->c, fr);
        }
        metric_add(rp->m_events, (int64_t)r->n);
        r->count += (int64_t)r->n;
        r->after = r->more ? r->last : r->upto;
        r->n = 0;
        if (r->c->close_code)
            replay_finish(r);
        else
            next_page(r); /* behind those waiting, if any: one page per turn */
    }
    admit(rp);
}

/* Ends r when it has reached upto (no database read at all when it started there), pauses it
 * while its client's backlog is over half of max_queue, else asks for a turn to read the next
 * page: at once when a slot is free and nobody waits, else at the tail of the line. */
static void next_page(replay_t *r)
{
    replayer_t *rp = r->rp;
    if (r->after >= r->upto) {
        char msg[160], kept[64];
        kept_json(r->since, r->gap_first ? r->gap_first : 1, kept, sizeof kept);
        int n = snprintf(msg, sizeof msg,
                         "{\"type\":\"replayed\",\"count\":%" PRId64 ",\"last_id\":%" PRId64 "%s}",
                         r->count, r->upto, kept);
        frame_t *fr = frame_new_text(msg, (size_t)n);
        if (!fr) {
            replay_fail(r, "out of memory");
            return;
        }
        fanout_replay_end(rp->o.fanout, r->c, fr);
        replay_finish(r);
        return;
    }
    if (r->c->bytes > rp->o.max_queue / 2) {
        r->paused = 1;
        return;
    }
    r->paused = 0;
    if (replayq_acquire(&rp->q, &r->qi, timefmt_mono_us())) {
        if (page_submit(r))
            replayq_unget(&rp->q, &r->qi);
        else
            metric_observe(rp->m_wait, 0);
    }
    gauges(rp);
}

int replay_start(replayer_t *rp, fanout_client_t *c, const filter_t *filter, int64_t since,
                 replay_t **slot)
{
    replay_cancel(slot);
    replay_t *r = calloc(1, sizeof *r);
    if (!r || filter_copy(&r->filter, filter)) {
        free(r);
        fanout_close(rp->o.fanout, c, REPLAY_CLOSE_FAILED, "out of memory");
        return -ENOMEM;
    }
    r->rp = rp;
    r->c = c;
    r->slot = slot;
    r->since = since;
    r->after = since;
    r->upto = fanout_replay_begin(rp->o.fanout, c, since);
    r->job.need = r->upto; /* a standby that reaches the end of the replay may serve it */
    *slot = r;
    metric_add(rp->m_replays, 1);
    next_page(r);
    return 0;
}

void replay_cancel(replay_t **slot)
{
    if (!slot || !*slot)
        return;
    replay_t *r = *slot;
    *slot = NULL;
    r->c = NULL;
    r->slot = NULL;
    if (r->in_flight) {
        dbpool_cancel(r->rp->o.pool, &r->job); /* page_done frees it, discarding the page */
        return;
    }
    replayer_t *rp = r->rp;
    replayq_remove(&rp->q, &r->qi);
    replay_free(r);
    gauges(rp);
}

void replay_pump(replay_t *r)
{
    if (r && r->c && r->paused && r->c->bytes <= r->rp->o.max_queue / 2)
        next_page(r);
}

void replayer_pump(replayer_t *rp)
{
    if (rp && rp->q.waiting)
        admit(rp);
}
