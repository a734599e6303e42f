/* fleet: what the fleet's two kinds of client share (fleet_epoll.c: adw-bench's own WebSocket
 * clients; fleet_lws.c: libwebsockets' client): the gateway URLs and source addresses, starting
 * and stopping the threads, recording what a client receives (counters, latency, the loss
 * bitsets, order) and the readers of those records (stats, loss, spread). */
#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fleet_client.h"
#include "fleet_epoll.h"
#include "fleet_lws.h"
#include "timefmt.h"

static int parse_url(const char *s, size_t n, url_t *u)
{
    char buf[700];
    if (n >= sizeof buf)
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *p = buf;
    if (!strncmp(p, "ws://", 5))
        p += 5;
    else if (!strncmp(p, "http://", 7))
        p += 7;
    const char *slash = strchr(p, '/');
    const char *colon = strchr(p, ':');
    size_t hlen =
        (size_t)((colon && (!slash || colon < slash)) ? colon - p
                                                      : (slash ? slash - p : (long)strlen(p)));
    if (hlen == 0 || hlen >= sizeof u->host)
        return -EINVAL;
    memcpy(u->host, p, hlen);
    u->host[hlen] = '\0';
    u->port = 80;
    if (colon && (!slash || colon < slash)) {
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || (*end && *end != '/') || port <= 0 || port > 65535)
            return -EINVAL;
        u->port = (int)port;
    }
    snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/ws/events");
    if (!strcmp(u->path, "/"))
        snprintf(u->path, sizeof u->path, "/ws/events");
    if (u->port <= 0 || u->port > 65535)
        return -EINVAL;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(u->host, NULL, &hints, &ai) || !ai)
        return -EINVAL;
    memcpy(&u->addr, ai->ai_addr, sizeof u->addr);
    u->addr.sin_port = htons((uint16_t)u->port);
    freeaddrinfo(ai);
    return 0;
}

/* Expands "a,b,c" or "127.0.0.2-127.0.0.9" into f->sources. */
static int parse_sources(fleet_t *f, const char *s)
{
    if (!s || !*s)
        return 0;
    const char *dash = strchr(s, '-');
    if (dash && !strchr(s, ',')) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%.*s", (int)(dash - s), s);
        snprintf(b, sizeof b, "%s", dash + 1);
        struct in_addr ia, ib;
        if (inet_pton(AF_INET, a, &ia) != 1 || inet_pton(AF_INET, b, &ib) != 1)
            return -EINVAL;
        for (uint32_t x = ntohl(ia.s_addr); x <= ntohl(ib.s_addr) && f->nsources < 64; x++) {
            struct in_addr ix = {.s_addr = htonl(x)};
            inet_ntop(AF_INET, &ix, f->sources[f->nsources++], 64);
        }
        return f->nsources ? 0 : -EINVAL;
    }
    const char *p = s;
    while (*p && f->nsources < 64) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        snprintf(f->sources[f->nsources++], 64, "%.*s", (int)n, p);
        p = c ? c + 1 : p + n;
    }
    return 0;
}

/* Parses the integer at p (the first byte after a key's colon); -1 when there is none. */
fleet_t *fleet_new(const fleet_options_t *o, char *err, size_t errlen)
{
    fleet_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->o = *o;
    if (f->o.threads < 1)
        f->o.threads = 1;
    const char *p = o->urls;
    while (p && *p && f->nurls < 32) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (parse_url(p, n, &f->urls[f->nurls++])) {
            snprintf(err, errlen, "bad gateway URL '%.*s' (ws://host:port[/path])", (int)n, p);
            goto fail;
        }
        p = c ? c + 1 : p + n;
    }
    if (!f->nurls) {
        snprintf(err, errlen, "no gateway URL");
        goto fail;
    }
    if (o->resume && o->lws) {
        snprintf(err, errlen, "resuming clients need the built-in client, not libwebsockets'");
        goto fail;
    }
    if (parse_sources(f, o->sources)) {
        snprintf(err, errlen, "bad source addresses '%s'", o->sources);
        goto fail;
    }
    f->nthreads = f->o.threads;
    f->threads = calloc((size_t)f->nthreads, sizeof *f->threads);
    if (!f->threads)
        goto oom;
    for (int t = 0; t < f->nthreads; t++)
        f->threads[t].ep = -1; /* what fleet_destroy may meet before the thread is prepared */
    size_t per = (o->clients + (size_t)f->nthreads - 1) / (size_t)f->nthreads;
    size_t assigned = 0;
    for (int t = 0; t < f->nthreads; t++) {
        fleet_thread_t *th = &f->threads[t];
        th->f = f;
        th->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)timefmt_now_us() << 8) ^ (uint64_t)t;
        pthread_mutex_init(&th->mu, NULL);
        hist_init(&th->st.latency);
        hist_init(&th->st.arrival);
        th->nclients = assigned + per <= o->clients ? per : o->clients - assigned;
        assigned += th->nclients;
        th->clients = calloc(th->nclients ? th->nclients : 1, sizeof *th->clients);
        if (!th->clients)
            goto oom;
        for (size_t i = 0; i < th->nclients; i++)
            th->clients[i].fd = -1;
        for (size_t i = 0; i < th->nclients; i++) {
            fclient_t *c = &th->clients[i];
            size_t gi = i * (size_t)f->nthreads + (size_t)t; /* the client's global index */
            c->th = th;
            if (o->half_query) { /* `filtered` of the clients, spread evenly */
                size_t nf = o->filtered ? o->filtered : o->clients / 2;
                c->half = (gi + 1) * nf / o->clients != gi * nf / o->clients;
            }
            c->url = (int)(gi % (size_t)f->nurls);
            if (o->max_seq > 0) {
                c->seen = calloc((size_t)(o->max_seq + 7) / 8, 1);
                if (!c->seen)
                    goto oom;
            }
        }
        if (o->max_seq > 0) {
            th->first = calloc((size_t)o->max_seq, sizeof *th->first);
            th->last = calloc((size_t)o->max_seq, sizeof *th->last);
            if (!th->first || !th->last)
                goto oom;
        }
        if (o->lws && fleet_lws_init(th)) {
            snprintf(err, errlen, "cannot create a libwebsockets context");
            goto fail;
        }
        if (!o->lws && fleet_epoll_init(th)) {
            snprintf(err, errlen, "cannot make a client thread's epoll set or buffer");
            goto fail;
        }
    }
    for (int t = 0; t < f->nthreads; t++)
        if (pthread_create(&f->threads[t].tid, NULL, o->lws ? fleet_lws_run : fleet_epoll_run,
                           &f->threads[t])) {
            snprintf(err, errlen, "cannot start a client thread");
            f->nthreads = t;
            goto fail;
        }
    return f;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    fleet_destroy(&f);
    return NULL;
}

void fleet_destroy(fleet_t **fp)
{
    if (!fp || !*fp)
        return;
    fleet_t *f = *fp;
    atomic_store(&f->stop, 1);
    for (int t = 0; f->threads && t < f->o.threads; t++)
        if (f->o.lws)
            fleet_lws_wake(&f->threads[t]);
    for (int t = 0; f->threads && t < f->nthreads; t++)
        if (f->threads[t].tid)
            pthread_join(f->threads[t].tid, NULL);
    for (int t = 0; f->threads && t < f->o.threads; t++) {
        fleet_thread_t *th = &f->threads[t];
        if (f->o.lws)
            fleet_lws_fini(th);
        else
            fleet_epoll_fini(th);
        for (size_t i = 0; th->clients && i < th->nclients; i++) {
            free(th->clients[i].seen);
            free(th->clients[i].frag);
        }
        free(th->first);
        free(th->last);
        free(th->clients);
        pthread_mutex_destroy(&th->mu);
    }
    free(f->threads);
    free(f);
    *fp = NULL;
}

void fleet_stats(fleet_t *f, fleet_stats_t *st)
{
    memset(st, 0, sizeof *st);
    hist_init(&st->latency);
    hist_init(&st->arrival);
    for (int t = 0; t < f->nthreads; t++) {
        fleet_thread_t *th = &f->threads[t];
        pthread_mutex_lock(&th->mu);
        st->connected += th->st.connected;
        st->ever_connected += th->st.ever_connected;
        st->failed += th->st.failed;
        st->closed += th->st.closed;
        if (th->st.last_close_code)
            st->last_close_code = th->st.last_close_code;
        st->messages += th->st.messages;
        st->deliveries += th->st.deliveries;
        st->duplicates += th->st.duplicates;
        st->out_of_order += th->st.out_of_order;
        st->pings += th->st.pings;
        st->replayed += th->st.replayed;
        if (th->st.replayed_events)
            st->replayed_events = th->st.replayed_events;
        if (th->st.first_connect_us &&
            (!st->first_connect_us || th->st.first_connect_us < st->first_connect_us))
            st->first_connect_us = th->st.first_connect_us;
        if (th->st.last_replayed_us > st->last_replayed_us)
            st->last_replayed_us = th->st.last_replayed_us;
        st->reconnects += th->st.reconnects;
        if (th->st.first_reconnect_us &&
            (!st->first_reconnect_us || th->st.first_reconnect_us < st->first_reconnect_us))
            st->first_reconnect_us = th->st.first_reconnect_us;
        hist_merge(&st->latency, &th->st.latency);
        hist_merge(&st->arrival, &th->st.arrival);
        pthread_mutex_unlock(&th->mu);
    }
}

void fleet_reset_latency(fleet_t *f)
{
    for (int t = 0; t < f->nthreads; t++) {
        pthread_mutex_lock(&f->threads[t].mu);
        hist_init(&f->threads[t].st.latency);
        hist_init(&f->threads[t].st.arrival);
        pthread_mutex_unlock(&f->threads[t].mu);
    }
}

uint64_t fleet_lost(fleet_t *f, int half, const uint8_t *want, int64_t n)
{
    uint64_t lost = 0;
    if (f->o.max_seq <= 0)
        return 0;
    if (n > f->o.max_seq)
        n = f->o.max_seq;
    for (int t = 0; t < f->nthreads; t++) {
        fleet_thread_t *th = &f->threads[t];
        pthread_mutex_lock(&th->mu);
        for (size_t i = 0; i < th->nclients; i++) {
            fclient_t *c = &th->clients[i];
            if (c->half != half || !c->ever)
                continue;
            for (int64_t s = 0; s < n; s++) {
                int wanted = !want || (want[s >> 3] & (1u << (s & 7)));
                if (wanted && !(c->seen[s >> 3] & (1u << (s & 7))))
                    lost++;
            }
        }
        pthread_mutex_unlock(&th->mu);
    }
    return lost;
}

void fleet_spread(fleet_t *f, int64_t from, int64_t to, hist_t *first, hist_t *last)
{
    hist_init(first);
    hist_init(last);
    if (f->o.max_seq <= 0)
        return;
    if (to > f->o.max_seq)
        to = f->o.max_seq;
    for (int t = 0; t < f->nthreads; t++)
        pthread_mutex_lock(&f->threads[t].mu);
    for (int64_t s = from < 0 ? 0 : from; s < to; s++) {
        int32_t lo = 0, hi = 0;
        for (int t = 0; t < f->nthreads; t++) {
            const fleet_thread_t *th = &f->threads[t];
            if (th->first[s] && (!lo || th->first[s] < lo))
                lo = th->first[s];
            if (th->last[s] > hi)
                hi = th->last[s];
        }
        if (lo) {
            hist_add(first, lo);
            hist_add(last, hi);
        }
    }
    for (int t = f->nthreads - 1; t >= 0; t--)
        pthread_mutex_unlock(&f->threads[t].mu);
}
