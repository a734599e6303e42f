#include "fanout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fanout_t {
    fanout_options_t o;
    fanout_client_t *clients;
    size_t nclients;
    int initialized;
    int64_t last_id;
    int64_t epoch;
    metric_t *m_clients, *m_slow, *m_published;
};

fanout_t *fanout_new(const fanout_options_t *o)
{
    fanout_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->o = *o;
    if (o->metrics) {
        f->m_clients =
            metrics_gauge(o->metrics, "adw_gateway_clients", NULL, "WebSocket clients connected");
        f->m_slow =
            metrics_counter(o->metrics, "adw_gateway_drops_total", "reason=\"slow_consumer\"",
                            "Clients closed by the gateway, by reason");
        f->m_published = metrics_counter(o->metrics, "adw_gateway_events_total", NULL,
                                         "Events handed to the fanout in id order");
    }
    return f;
}

void fanout_destroy(fanout_t **pf)
{
    if (!pf || !*pf)
        return;
    free(*pf);
    *pf = NULL;
}

static void drop_backlog(fanout_client_t *c)
{
    while (c->count) {
        frame_unref(&c->ring[c->head]);
        c->head = (c->head + 1) % c->cap;
        c->count--;
    }
    c->head = 0;
    for (size_t i = 0; i < c->npend; i++)
        frame_unref(&c->pend[i]);
    c->npend = 0;
    c->bytes = 0;
}

void fanout_add(fanout_t *f, fanout_client_t *c, void *user)
{
    memset(c, 0, sizeof *c);
    filter_init(&c->filter);
    c->user = user;
    c->cursor = f->last_id;
    c->next = f->clients;
    if (f->clients)
        f->clients->prev = c;
    f->clients = c;
    f->nclients++;
    metric_set(f->m_clients, (int64_t)f->nclients);
}

void fanout_remove(fanout_t *f, fanout_client_t *c)
{
    if (c->prev || c->next || f->clients == c) {
        if (c->prev)
            c->prev->next = c->next;
        else
            f->clients = c->next;
        if (c->next)
            c->next->prev = c->prev;
        f->nclients--;
        metric_set(f->m_clients, (int64_t)f->nclients);
    }
    c->prev = c->next = NULL;
    drop_backlog(c);
    if (c->ring != c->small)
        free(c->ring);
    free(c->pend);
    free(c->close_reason);
    c->close_reason = NULL;
    c->ring = c->pend = NULL;
    c->cap = c->pcap = 0;
    filter_free(&c->filter);
}

void fanout_position(fanout_t *f, int64_t last_id, int64_t epoch)
{
    if (!f->initialized) {
        f->initialized = 1;
        f->last_id = last_id;
        for (fanout_client_t *c = f->clients; c; c = c->next)
            if (c->cursor < last_id && !c->replaying)
                c->cursor = last_id;
    }
    if (epoch)
        f->epoch = epoch;
}

void fanout_reset(fanout_t *f, int64_t epoch)
{
    f->initialized = 1;
    f->last_id = 0;
    f->epoch = epoch;
    for (fanout_client_t *c = f->clients; c; c = c->next) {
        c->cursor = 0;
        c->last_sent = 0;
        c->replay_upto = 0;
    }
}

fanout_client_t *fanout_clients(fanout_t *f)
{
    return f->clients;
}

int fanout_initialized(const fanout_t *f)
{
    return f->initialized;
}

int64_t fanout_last_id(const fanout_t *f)
{
    return f->last_id;
}

int64_t fanout_epoch(const fanout_t *f)
{
    return f->epoch;
}

size_t fanout_count(const fanout_t *f)
{
    return f->nclients;
}

/* Appends to the ring, growing it: the inline slots first, then twice the size each time.
 * Returns 0 or -1 when out of memory (reference kept). */
static int ring_push(fanout_client_t *c, frame_t *frame)
{
    if (!c->cap) {
        c->ring = c->small;
        c->cap = FANOUT_RING_INLINE;
        c->head = 0;
    }
    if (c->count == c->cap) {
        size_t ncap = c->cap * 2;
        // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof *p is a pointer
        frame_t **r = malloc(ncap * sizeof *r);
        if (!r)
            return -1;
        for (size_t i = 0; i < c->count; i++)
            r[i] = c->ring[(c->head + i) % c->cap];
        if (c->ring != c->small)
            free(c->ring);
        c->ring = r;
        c->head = 0;
        c->cap = ncap;
    }
    c->ring[(c->head + c->count) % c->cap] = frame;
    c->count++;
    c->bytes += frame->len;
    return 0;
}

static int pend_push(fanout_client_t *c, frame_t *frame)
{
    if (c->npend == c->pcap) {
        size_t ncap = c->pcap ? c->pcap * 2 : 16;
        // NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers: sizeof *p is a pointer
        frame_t **p = realloc(c->pend, ncap * sizeof *p);
        if (!p)
            return -1;
        c->pend = p;
        c->pcap = ncap;
    }
    c->pend[c->npend++] = frame;
    c->bytes += frame->len;
    return 0;
}

static void cull(fanout_t *f, fanout_client_t *c)
{
    char reason[FANOUT_REASON_MAX + 1];
    snprintf(reason, sizeof reason, "slow consumer; last_id=%" PRId64, c->last_sent);
    metric_add(f->m_slow, 1);
    fanout_close(f, c, FANOUT_CLOSE_SLOW, reason);
}

/* Queues frame (taking the reference) to c's ring or held list, culling c past the bound.
 * Returns 1 when it went to the ring (c has something new to write), else 0. */
static int queue(fanout_t *f, fanout_client_t *c, frame_t *frame, int held)
{
    if (c->close_code) {
        frame_unref(&frame);
        return 0;
    }
    if ((held ? pend_push(c, frame) : ring_push(c, frame)) < 0) {
        frame_unref(&frame);
        cull(f, c);
        return 0;
    }
    if (c->bytes > f->o.max_queue) {
        cull(f, c);
        return 0;
    }
    return !held;
}

/* queue, then wakes c when it has something new to write. */
static void enqueue(fanout_t *f, fanout_client_t *c, frame_t *frame, int held)
{
    if (queue(f, c, frame, held) && f->o.wake)
        f->o.wake(c->user);
}

void fanout_publish(fanout_t *f, frame_t *frame)
{
    fanout_publish_batch(f, &frame, 1);
}

void fanout_publish_batch(fanout_t *f, frame_t *const *frames, size_t n)
{
    if (!n)
        return;
    f->last_id = frames[n - 1]->id;
    metric_add(f->m_published, (int64_t)n);
    for (fanout_client_t *c = f->clients, *next; c; c = next) {
        next = c->next;
        int woken = 0;
        for (size_t i = 0; i < n && !c->close_code; i++) {
            frame_t *fr = frames[i];
            if (fr->id <= c->cursor || !filter_match(&c->filter, &fr->fields))
                continue;
            woken |= queue(f, c, frame_ref(fr), c->replaying);
        }
        if (woken && !c->close_code && f->o.wake)
            f->o.wake(c->user);
    }
}

void fanout_send(fanout_t *f, fanout_client_t *c, frame_t *frame)
{
    enqueue(f, c, frame, 0);
}

frame_t *fanout_pop(fanout_client_t *c)
{
    if (!c->count)
        return NULL;
    frame_t *fr = c->ring[c->head];
    c->ring[c->head] = NULL;
    c->head = (c->head + 1) % c->cap;
    c->count--;
    c->bytes -= fr->len;
    if (fr->id)
        c->last_sent = fr->id;
    if (!c->count && c->cap > FANOUT_RING_KEEP) { /* a burst's ring is not kept while idle */
        free(c->ring);
        c->ring = c->small;
        c->cap = FANOUT_RING_INLINE;
        c->head = 0;
    }
    return fr;
}

frame_t *fanout_peek(const fanout_client_t *c)
{
    return c->count ? c->ring[c->head] : NULL;
}

int fanout_pending(const fanout_client_t *c)
{
    return c->count > 0;
}

void fanout_close(fanout_t *f, fanout_client_t *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    c->close_reason = strndup(reason ? reason : "", FANOUT_REASON_MAX); /* only once closing */
    c->replaying = 0;
    drop_backlog(c);
    if (f->o.wake)
        f->o.wake(c->user);
}

const char *fanout_close_reason(const fanout_client_t *c)
{
    return c->close_reason ? c->close_reason : "";
}

int64_t fanout_replay_begin(fanout_t *f, fanout_client_t *c, int64_t since)
{
    for (size_t i = 0; i < c->npend; i++) {
        c->bytes -= c->pend[i]->len;
        frame_unref(&c->pend[i]);
    }
    c->npend = 0;
    int64_t upto = since > f->last_id ? since : f->last_id;
    c->replaying = 1;
    c->replay_upto = upto;
    c->cursor = upto;
    return upto;
}

void fanout_replay_add(fanout_t *f, fanout_client_t *c, frame_t *frame)
{
    enqueue(f, c, frame, 0);
}

void fanout_replay_end(fanout_t *f, fanout_client_t *c, frame_t *msg)
{
    c->replaying = 0;
    enqueue(f, c, msg, 0);
    size_t n = c->npend;
    c->npend = 0;
    for (size_t i = 0; i < n; i++) {
        frame_t *fr = c->pend[i];
        c->pend[i] = NULL;
        if (c->close_code) { /* culled meanwhile: its counts were reset */
            frame_unref(&fr);
            continue;
        }
        c->bytes -= fr->len; /* moves from the held list to the ring */
        enqueue(f, c, fr, 0);
    }
    free(c->pend); /* held only during a replay */
    c->pend = NULL;
    c->pcap = 0;
}
