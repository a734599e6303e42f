#include "pipeline.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "log.h"
#include "stall.h"
#include <stdio.h>

/* One of these per submission, in submission order. */
struct pipeline_entry_t {
    pipeline_entry_t *next;
    uint64_t channel;      /* the submitter's; its entries are answered in order */
    store_req_t *req;      /* NULL for refusals */
    pipeline_done_fn done; /* NULL once cancelled */
    void *ctx;
    int finished; /* outcome known */
    pipeline_status_t status;
    long index;
    char error[160];
};

/* The label of each pipeline_reject_t, indexed by it. */
static const char *const REJECT_NAMES[PIPELINE_REJECT_COUNT] = {
    [PIPELINE_REJECT_BAD_JSON] = "bad_json",         [PIPELINE_REJECT_SCHEMA] = "schema",
    [PIPELINE_REJECT_TOO_LARGE] = "too_large",       [PIPELINE_REJECT_BATCH_SIZE] = "batch_size",
    [PIPELINE_REJECT_UNAUTHORIZED] = "unauthorized", [PIPELINE_REJECT_BAD_REQUEST] = "bad_request",
    [PIPELINE_REJECT_DATABASE] = "database",         [PIPELINE_REJECT_UNAVAILABLE] = "unavailable",
    [PIPELINE_REJECT_OVERLOADED] = "overloaded",
};

struct pipeline_t {
    pipeline_options_t o;
    pipeline_entry_t *head, *tail;
    size_t waiting;
    size_t finished;   /* entries whose outcome is known, not yet answered */
    uint64_t *blocked; /* release(): channels with an earlier unanswered entry (hash set) */
    size_t blocked_cap;
    int stopping;
    int synced; /* the publisher's last id was read from the store since it became ready */
    metric_t *m_rejected[PIPELINE_REJECT_COUNT];
    metric_t *m_received_http, *m_received_zmq, *m_pending;
    metric_t *m_stalls;
    int scanning; /* a stall scan is in the store */
};

/* The channel of stall scans (submitters' channels are connection or peer keys). */
#define PIPELINE_STALL_CHANNEL UINT64_MAX

static void on_store(loop_t *loop, int fd, int mask, void *arg);
static int pipeline_hook(loop_t *loop, void *arg);
static void on_stall_timer(loop_t *loop, void *arg);

pipeline_t *pipeline_new(const pipeline_options_t *o)
{
    pipeline_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->o = *o;
    if (loop_watch(o->loop, store_fd(o->store), LOOP_READ, on_store, p) ||
        loop_hook(o->loop, pipeline_hook, p) ||
        (o->stall_s > 0 &&
         loop_timer(o->loop, stall_scan_period_ms(o->stall_s), on_stall_timer, p) < 0)) {
        free(p);
        return NULL;
    }
    if (o->metrics) {
        for (size_t i = 0; i < PIPELINE_REJECT_COUNT; i++) {
            char label[64];
            snprintf(label, sizeof label, "reason=\"%s\"", REJECT_NAMES[i]);
            p->m_rejected[i] = metrics_counter(o->metrics, "adw_ingest_rejected_total", label,
                                               "Events or requests refused, by reason");
        }
        p->m_received_http = metrics_counter(o->metrics, "adw_ingest_received_total",
                                             "transport=\"http\"", "Events received");
        p->m_received_zmq = metrics_counter(o->metrics, "adw_ingest_received_total",
                                            "transport=\"zmq\"", "Events received");
        p->m_pending = metrics_gauge(o->metrics, "adw_ingest_pending_events", NULL,
                                     "Events waiting for their commit");
        p->m_stalls = metrics_counter(o->metrics, "adw_ingest_stalls_raised_total", NULL,
                                      "run_stalled events stored and published");
    }
    return p;
}

void pipeline_destroy(pipeline_t **pp)
{
    if (!pp || !*pp)
        return;
    pipeline_t *p = *pp;
    loop_unwatch(p->o.loop, store_fd(p->o.store));
    pipeline_entry_t *e = p->head;
    while (e) {
        pipeline_entry_t *next = e->next;
        /* Requests still inside the store are freed by the store. */
        if (e->finished)
            store_req_destroy(&e->req);
        free(e);
        e = next;
    }
    free(p->blocked);
    free(p);
    *pp = NULL;
}

const char *pipeline_reject_name(pipeline_reject_t reason)
{
    return (unsigned)reason < PIPELINE_REJECT_COUNT ? REJECT_NAMES[reason] : NULL;
}

void pipeline_count_rejected(pipeline_t *p, pipeline_reject_t reason)
{
    assert((unsigned)reason < PIPELINE_REJECT_COUNT);
    metric_add(p->m_rejected[reason], 1);
}

void pipeline_count_received(pipeline_t *p, pipeline_transport_t transport, int64_t n)
{
    metric_add(transport == PIPELINE_ZMQ ? p->m_received_zmq : p->m_received_http, n);
}

static void append(pipeline_t *p, pipeline_entry_t *e)
{
    if (p->tail)
        p->tail->next = e;
    else
        p->head = e;
    p->tail = e;
    p->waiting++;
}

/* The budget_denied the writer raised after committed request r's hook (r->hook), or NULL.
 * Borrowed from r. */
static const adw_event_t *denied_of(const store_req_t *r)
{
    for (size_t i = 0; i < r->nraised; i++)
        if (r->raised[i].ev.event && !strcmp(r->raised[i].ev.event, "budget_denied"))
            return &r->raised[i].ev;
    return NULL;
}

static void answer(pipeline_t *p, pipeline_entry_t *e)
{
    p->waiting--;
    p->finished--;
    if (e->done) {
        pipeline_outcome_t o = {
            .status = e->status,
            .error = e->error[0] ? e->error : NULL,
            .index = e->index,
            .ids = e->req && e->status == PIPELINE_OK ? e->req->ids : NULL,
            .nids = e->req ? e->req->nevents : 0,
            .events = e->req && e->status == PIPELINE_OK ? e->req->events : NULL,
            .ended = e->req && e->status == PIPELINE_OK ? e->req->ended : NULL,
            .denied = e->req && e->status == PIPELINE_OK ? denied_of(e->req) : NULL};
        e->done(e->ctx, &o);
    }
    store_req_destroy(&e->req);
    free(e);
}

/* Inserts channel into the blocked set; returns 1 when it was there already. Channel 0 stands
 * for an empty slot, so it is stored as 1 (a collision only orders more than needed). */
static int blocked_add(pipeline_t *p, uint64_t channel, int insert)
{
    uint64_t key = channel ? channel : 1;
    size_t mask = p->blocked_cap - 1;
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & mask;
    while (p->blocked[i]) {
        if (p->blocked[i] == key)
            return 1;
        i = (i + 1) & mask;
    }
    if (insert)
        p->blocked[i] = key;
    return 0;
}

/* Answers every finished entry with no unanswered entry before it on its channel. */
static void release(pipeline_t *p)
{
    /* The common case: finished entries at the head. */
    while (p->head && p->head->finished) {
        pipeline_entry_t *e = p->head;
        p->head = e->next;
        if (!p->head)
            p->tail = NULL;
        answer(p, e);
    }
    if (!p->finished)
        return;
    size_t need = 16;
    while (need < p->waiting * 2) /* at most half full */
        need *= 2;
    if (need > p->blocked_cap) {
        uint64_t *b = realloc(p->blocked, need * sizeof *b);
        if (!b)
            return; /* answered later, once memory allows or the head finishes */
        p->blocked = b;
        p->blocked_cap = need;
    }
    memset(p->blocked, 0, p->blocked_cap * sizeof *p->blocked);
    /* Entries that callbacks append meanwhile wait for the next turn: the set was sized for
     * the entries present now, and must never fill up. */
    pipeline_entry_t **link = &p->head, *prev = NULL, *last = p->tail;
    int more = last != NULL;
    while (more && *link) {
        pipeline_entry_t *e = *link;
        more = e != last;
        if (!e->finished) {
            blocked_add(p, e->channel, 1);
        } else if (!blocked_add(p, e->channel, 0)) {
            *link = e->next;
            if (p->tail == e)
                p->tail = prev;
            answer(p, e);
            continue;
        }
        prev = e;
        link = &e->next;
    }
}

pipeline_status_t pipeline_admission(const pipeline_t *p)
{
    if (p->stopping)
        return PIPELINE_STOPPING;
    if (store_state(p->o.store) != STORE_READY || !p->synced)
        return PIPELINE_UNAVAILABLE;
    if (store_pending_events(p->o.store) >= p->o.max_pending)
        return PIPELINE_OVERLOADED;
    return PIPELINE_OK;
}

static const char *admission_error(pipeline_status_t st)
{
    switch (st) {
    case PIPELINE_UNAVAILABLE:
        return "database unavailable, retry later";
    case PIPELINE_OVERLOADED:
        return "overloaded: too many events waiting for commit, retry later";
    case PIPELINE_STOPPING:
        return "shutting down, retry later";
    default:
        return "refused";
    }
}

pipeline_entry_t *pipeline_refuse(pipeline_t *p, uint64_t channel, pipeline_status_t status,
                                  const char *error, long index, pipeline_done_fn done, void *ctx)
{
    pipeline_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->channel = channel;
    e->done = done;
    e->ctx = ctx;
    e->finished = 1;
    e->status = status;
    e->index = index;
    snprintf(e->error, sizeof e->error, "%s", error ? error : admission_error(status));
    if (status == PIPELINE_UNAVAILABLE)
        pipeline_count_rejected(p, PIPELINE_REJECT_UNAVAILABLE);
    else if (status == PIPELINE_OVERLOADED || status == PIPELINE_STOPPING)
        pipeline_count_rejected(p, PIPELINE_REJECT_OVERLOADED);
    append(p, e);
    p->finished++;
    /* Refusals are answered on the next turn, so a callback never runs inside submit. */
    loop_wake(p->o.loop);
    return e;
}

pipeline_entry_t *pipeline_submit(pipeline_t *p, uint64_t channel, store_req_t *r,
                                  pipeline_done_fn done, void *ctx)
{
    pipeline_status_t adm = pipeline_admission(p);
    if (adm != PIPELINE_OK) {
        store_req_destroy(&r);
        return pipeline_refuse(p, channel, adm, NULL, -1, done, ctx);
    }
    pipeline_entry_t *e = calloc(1, sizeof *e);
    if (!e) {
        store_req_destroy(&r);
        return NULL;
    }
    e->channel = channel;
    e->req = r;
    e->done = done;
    e->ctx = ctx;
    e->index = -1;
    r->ctx = e;
    append(p, e);
    store_submit(p->o.store, r);
    metric_set(p->m_pending, store_pending_events(p->o.store));
    return e;
}

void pipeline_cancel(pipeline_entry_t *e)
{
    if (e)
        e->done = NULL;
}

void pipeline_stop(pipeline_t *p)
{
    p->stopping = 1;
}

int pipeline_synced(const pipeline_t *p)
{
    return p->synced;
}

size_t pipeline_waiting(const pipeline_t *p)
{
    return p->waiting;
}

/* Publishes e, one of r's committed events, with id id, whose map ends at end in r's frames
 * (*start: where it begins, moved past it), and offers it to the webhooks. */
static void publish_one(pipeline_t *p, store_req_t *r, const adw_event_t *e, int64_t id, size_t end,
                        size_t *start)
{
    if (end > *start)
        publish_event(p->o.publish, e->adw_id, id, r->frames.data + *start, end - *start);
    *start = end;
    webhook_enqueue(p->o.webhook, e);
}

/* Publishes a committed request's fresh events, each followed by the events the writer raised
 * after it (store_raised_t), in id order, and offers each to the webhooks. An empty frame was
 * not encoded (out of memory): the gateways read that event from PostgreSQL. */
static void publish_req(pipeline_t *p, store_req_t *r)
{
    size_t start = 0, k = 0;
    for (size_t i = 0; i < r->nevents; i++) {
        if (r->fresh[i])
            publish_one(p, r, &r->events[i], r->ids[i], r->frame_end[i], &start);
        for (; k < r->nraised && r->raised[k].after == i; k++)
            publish_one(p, r, &r->raised[k].ev, r->raised[k].ev.id, r->raised[k].frame_end, &start);
    }
}

static void on_store(loop_t *loop, int fd, int mask, void *arg)
{
    (void)loop;
    (void)fd;
    (void)mask;
    pipeline_t *p = arg;
    store_req_t *r = store_completed(p->o.store);
    int published = 0;
    while (r) {
        store_req_t *next = r->next;
        pipeline_entry_t *e = r->ctx;
        e->finished = 1;
        p->finished++;
        /* A scan is nobody's submission: nothing of it counts as refused. */
        int counted = !r->stall_s && !r->approval_scan;
        switch (r->status) {
        case STORE_STATUS_OK:
            e->status = PIPELINE_OK;
            publish_req(p, r);
            published = 1;
            if (r->stall_s)
                metric_add(p->m_stalls, (int64_t)r->nevents);
            break;
        case STORE_STATUS_UNAVAILABLE:
            e->status = PIPELINE_UNAVAILABLE;
            snprintf(e->error, sizeof e->error, "%s", r->err);
            if (counted)
                pipeline_count_rejected(p, PIPELINE_REJECT_UNAVAILABLE);
            break;
        case STORE_STATUS_REJECTED:
            e->status = PIPELINE_INVALID;
            snprintf(e->error, sizeof e->error, "%s", r->err);
            if (counted)
                pipeline_count_rejected(p, PIPELINE_REJECT_DATABASE);
            else
                log_warn("%s scan refused by the database: %s", r->stall_s ? "stall" : "approval",
                         r->err);
            break;
        }
        r = next;
    }
    if (published && store_pending_events(p->o.store) == 0)
        publish_heartbeat(p->o.publish, store_epoch(p->o.store));
    metric_set(p->m_pending, store_pending_events(p->o.store));
    release(p);
}

int pipeline_build(json_t *value, int64_t received_us, store_req_t **out, int *is_batch, char *err,
                   size_t errlen, long *index)
{
    *index = -1;
    *is_batch = json_is_array(value);
    if (!json_is_object(value) && !json_is_array(value)) {
        snprintf(err, errlen, "expected an event object or an array of events");
        return -EINVAL;
    }
    size_t n = *is_batch ? json_array_size(value) : 1;
    if (n == 0) {
        snprintf(err, errlen, "empty batch: send at least one event");
        return -EINVAL;
    }
    if (n > ADW_BATCH_MAX) {
        snprintf(err, errlen, "batch of %zu events is over the limit of %d", n, ADW_BATCH_MAX);
        return -E2BIG;
    }
    store_req_t *r = store_req_new(n);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *doc = *is_batch ? json_array_get(value, i) : value;
        char why[EVENT_ERR_LEN];
        if (event_from_json(doc, received_us, &r->events[i], why, sizeof why)) {
            if (*is_batch) {
                snprintf(err, errlen, "event %zu: %s", i, why);
                *index = (long)i;
            } else {
                snprintf(err, errlen, "%s", why);
            }
            store_req_destroy(&r);
            return -EINVAL;
        }
    }
    *out = r;
    return 0;
}

/* Before each wait: answers refusals queued since the last turn. */
static int pipeline_hook(loop_t *loop, void *arg)
{
    (void)loop;
    pipeline_t *p = arg;
    if (store_state(p->o.store) == STORE_READY) {
        if (!p->synced) {
            publish_set_last(p->o.publish, store_last_id(p->o.store));
            p->synced = 1;
        }
    } else {
        p->synced = 0;
    }
    if (p->finished)
        release(p);
    return 0;
}

/* A stall scan came back (its events, if any, are published already). */
static void on_stall_done(void *ctx, const pipeline_outcome_t *o)
{
    pipeline_t *p = ctx;
    p->scanning = 0;
    if (o->status == PIPELINE_OK && o->nids)
        log_info("stalls: %zu run_stalled raised", o->nids);
}

/* Every scan period: one stall scan at a time, only while submissions are admitted (the store
 * READY and followed, not stopping, the queue below its bound). */
static void on_stall_timer(loop_t *loop, void *arg)
{
    (void)loop;
    pipeline_t *p = arg;
    if (p->scanning || pipeline_admission(p) != PIPELINE_OK)
        return;
    store_req_t *r = store_req_new(0);
    if (!r)
        return;
    r->stall_s = p->o.stall_s;
    p->scanning = 1;
    if (!pipeline_submit(p, PIPELINE_STALL_CHANNEL, r, on_stall_done, p))
        p->scanning = 0;
}
