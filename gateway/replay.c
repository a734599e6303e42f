#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "kept.h"
#include "log.h"

struct replayer_t {
    replayer_options_t o;
    metric_t *m_replays, *m_events, *m_failed;
};

struct replay_t {
    dbjob_t job; /* first: the pool hands it back */
    replayer_t *rp;
    fanout_client_t *c; /* NULL once cancelled */
    replay_t **slot;
    filter_t filter;
    int64_t since; /* as the client asked */
    int64_t after; /* replayed up to here */
    int64_t upto;
    int64_t gap_first; /* > 0: a page began below the first kept id, this one (kept.h) */
    int64_t count;
    int in_flight; /* a page is being read */
    int waiting;   /* paused until the backlog drains */
    /* The page read by the worker. */
    frame_t *frames[REPLAY_PAGE];
    size_t n;
    int64_t last;
    int more;
    int rc;
    char err[256];
};

replayer_t *replayer_new(const replayer_options_t *o)
{
    replayer_t *rp = calloc(1, sizeof *rp);
    if (!rp)
        return NULL;
    rp->o = *o;
    if (o->metrics) {
        rp->m_replays = metrics_counter(o->metrics, "adw_gateway_replays_total", NULL,
                                        "Replays started (subscriptions with since)");
        rp->m_events = metrics_counter(o->metrics, "adw_gateway_replayed_events_total", NULL,
                                       "Events sent to clients from PostgreSQL by replays");
        rp->m_failed = metrics_counter(o->metrics, "adw_gateway_replay_failures_total", NULL,
                                       "Replays that failed (client closed with 1011)");
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

static void next_page(replay_t *r);

static void page_done(dbjob_t *job)
{
    replay_t *r = (replay_t *)job;
    r->in_flight = 0;
    if (!r->c) { /* cancelled meanwhile */
        replay_free(r);
        return;
    }
    if (r->c->close_code) {
        replay_finish(r);
        return;
    }
    if (job->failed || r->rc) {
        replay_fail(r, job->failed ? job->err : r->err);
        return;
    }
    fanout_t *f = r->rp->o.fanout;
    for (size_t i = 0; i < r->n; i++) {
        frame_t *fr = r->frames[i];
        r->frames[i] = NULL;
        fanout_replay_add(f, r->c, fr);
    }
    metric_add(r->rp->m_events, (int64_t)r->n);
    r->count += (int64_t)r->n;
    r->after = r->more ? r->last : r->upto;
    r->n = 0;
    if (r->c->close_code) {
        replay_finish(r);
        return;
    }
    next_page(r);
}

static void next_page(replay_t *r)
{
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
        fanout_replay_end(r->rp->o.fanout, r->c, fr);
        replay_finish(r);
        return;
    }
    if (r->c->bytes > r->rp->o.max_queue / 2) {
        r->waiting = 1;
        return;
    }
    r->waiting = 0;
    r->job.run = page_run;
    r->job.done = page_done;
    if (dbpool_submit(r->rp->o.pool, &r->job)) {
        replay_fail(r, "too many database requests waiting");
        return;
    }
    r->in_flight = 1;
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
    if (r->in_flight)
        dbpool_cancel(r->rp->o.pool, &r->job); /* page_done frees it, discarding the page */
    else
        replay_free(r);
}

void replay_pump(replay_t *r)
{
    if (r && r->c && r->waiting && !r->in_flight && r->c->bytes <= r->rp->o.max_queue / 2)
        next_page(r);
}
