#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

#define FLEET_CONNECTS_IN_FLIGHT 256 /* handshakes under way per thread */
#define FLEET_MSG_MAX (1 << 20)

typedef struct fleet_thread fleet_thread_t;

/* One of these per client connection. */
typedef struct fclient {
    fleet_thread_t *th;
    struct lws *wsi;
    int half; /* uses half_query */
    int url;  /* index into the URL list */
    int connecting;
    int connected;
    int ever;
    int pong_due;
    int64_t last_id;
    uint8_t *seen; /* bitset over bench_seq, or NULL */
    char *frag;    /* a message arriving in fragments */
    size_t frag_len;
} fclient_t;

typedef struct url {
    char host[128];
    int port;
    char path[512];
} url_t;

/* One of these per client thread (one libwebsockets context). */
struct fleet_thread {
    fleet_t *f;
    pthread_t tid;
    struct lws_context *ctx;
    fclient_t *clients;
    size_t nclients;
    size_t next_connect; /* clients below this have been started */
    int in_flight;
    pthread_mutex_t mu; /* guards stats */
    fleet_stats_t st;
};

struct fleet_t {
    fleet_options_t o;
    url_t urls[32];
    int nurls;
    char sources[64][64];
    int nsources;
    fleet_thread_t *threads;
    int nthreads;
    _Atomic int stop;
};

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
    u->port = (colon && (!slash || colon < slash)) ? atoi(colon + 1) : 80;
    snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/ws/events");
    if (!strcmp(u->path, "/"))
        snprintf(u->path, sizeof u->path, "/ws/events");
    return u->port > 0 ? 0 : -EINVAL;
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

/* Finds `"key":` in the message and parses the integer after it. */
static int find_int(const char *m, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *p = memmem(m, n, key, kl);
    if (!p)
        return -1;
    p += kl;
    const char *end = m + n;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *out = neg ? -v : v;
    return 0;
}

static void on_message(fclient_t *c, const char *m, size_t n)
{
    fleet_thread_t *th = c->th;
    int64_t seq, t, id;
    int64_t now = timefmt_now_us();
    pthread_mutex_lock(&th->mu);
    th->st.messages++;
    if (!find_int(m, n, "\"bench_seq\":", &seq) && !find_int(m, n, "\"bench_t\":", &t)) {
        th->st.deliveries++;
        hist_add(&th->st.latency, now - t);
        if (c->seen && seq >= 0 && seq < th->f->o.max_seq) {
            uint8_t bit = (uint8_t)(1u << (seq & 7));
            if (c->seen[seq >> 3] & bit)
                th->st.duplicates++;
            c->seen[seq >> 3] |= bit;
        }
        if (!find_int(m, n, "{\"id\":", &id)) {
            if (id <= c->last_id)
                th->st.out_of_order++;
            c->last_id = id;
        }
    } else if (memmem(m, n, "\"type\":\"replayed\"", 17)) {
        th->st.replayed++;
        th->st.last_replayed_us = now;
        find_int(m, n, "\"count\":", &th->st.replayed_events);
    } else if (memmem(m, n, "\"type\":\"ping\"", 13)) {
        th->st.pings++;
        c->pong_due = 1;
        lws_callback_on_writable(c->wsi);
    }
    pthread_mutex_unlock(&th->mu);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    fclient_t *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->connected = 1;
        c->connecting = 0;
        c->th->in_flight--;
        pthread_mutex_lock(&c->th->mu);
        c->th->st.connected++;
        if (!c->th->st.first_connect_us)
            c->th->st.first_connect_us = timefmt_now_us();
        if (!c->ever)
            c->th->st.ever_connected++;
        pthread_mutex_unlock(&c->th->mu);
        c->ever = 1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            if (c->connecting)
                c->th->in_flight--;
            c->connecting = 0;
            c->wsi = NULL;
            pthread_mutex_lock(&c->th->mu);
            c->th->st.failed++;
            pthread_mutex_unlock(&c->th->mu);
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        int final = lws_is_final_fragment(wsi);
        if (!c->frag_len && final) {
            on_message(c, in, len);
            break;
        }
        if (c->frag_len + len <= FLEET_MSG_MAX) {
            char *nb = realloc(c->frag, c->frag_len + len);
            if (nb) {
                memcpy(nb + c->frag_len, in, len);
                c->frag = nb;
                c->frag_len += len;
            }
        }
        if (final) {
            on_message(c, c->frag, c->frag_len);
            c->frag_len = 0;
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->pong_due) {
            unsigned char buf[LWS_PRE + 32];
            static const char pong[] = "{\"action\":\"pong\"}";
            memcpy(buf + LWS_PRE, pong, sizeof pong - 1);
            c->pong_due = 0;
            if (lws_write(wsi, buf + LWS_PRE, sizeof pong - 1, LWS_WRITE_TEXT) < 0)
                return -1;
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2) {
            const unsigned char *p = in;
            pthread_mutex_lock(&c->th->mu);
            c->th->st.last_close_code = (p[0] << 8) | p[1];
            pthread_mutex_unlock(&c->th->mu);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            pthread_mutex_lock(&c->th->mu);
            if (c->connected) {
                c->th->st.connected--;
                c->th->st.closed++;
            }
            pthread_mutex_unlock(&c->th->mu);
            c->connected = 0;
            c->wsi = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols PROTOCOLS[] = {
    {"adw-bench", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_more(fleet_thread_t *th)
{
    fleet_t *f = th->f;
    while (th->next_connect < th->nclients && th->in_flight < FLEET_CONNECTS_IN_FLIGHT) {
        fclient_t *c = &th->clients[th->next_connect++];
        url_t *u = &f->urls[c->url];
        char path[1024];
        const char *q = c->half && f->o.half_query ? f->o.half_query : f->o.query;
        snprintf(path, sizeof path, "%s%s%s", u->path,
                 q && *q ? (strchr(u->path, '?') ? "&" : "?") : "", q && *q ? q : "");
        char origin[160]; /* libwebsockets writes "Origin: http://" before it */
        snprintf(origin, sizeof origin, "%s:%d", u->host, u->port);
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = th->ctx;
        ci.address = u->host;
        ci.port = u->port;
        ci.path = path;
        ci.host = origin;
        ci.origin = origin;
        ci.ietf_version_or_minus_one = -1;
        ci.userdata = c;
        ci.local_protocol_name = "adw-bench";
        ci.pwsi = &c->wsi;
        size_t idx = (size_t)(c - th->clients) * (size_t)f->nthreads + (size_t)(th - f->threads);
        if (f->nsources)
            ci.iface = f->sources[idx % (size_t)f->nsources];
        c->connecting = 1;
        th->in_flight++;
        if (!lws_client_connect_via_info(&ci) && c->connecting) {
            c->connecting = 0;
            th->in_flight--;
            pthread_mutex_lock(&th->mu);
            th->st.failed++;
            pthread_mutex_unlock(&th->mu);
        }
    }
}

static void *thread_main(void *arg)
{
    fleet_thread_t *th = arg;
    while (!atomic_load(&th->f->stop)) {
        connect_more(th);
        lws_service(th->ctx, 50);
    }
    return NULL;
}

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
    if (parse_sources(f, o->sources)) {
        snprintf(err, errlen, "bad source addresses '%s'", o->sources);
        goto fail;
    }
    lws_set_log_level(getenv("ADW_BENCH_LWS_DEBUG")
                          ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO | LLL_CLIENT
                          : LLL_ERR,
                      NULL);
    f->nthreads = f->o.threads;
    f->threads = calloc((size_t)f->nthreads, sizeof *f->threads);
    if (!f->threads)
        goto oom;
    size_t per = (o->clients + (size_t)f->nthreads - 1) / (size_t)f->nthreads;
    size_t assigned = 0;
    for (int t = 0; t < f->nthreads; t++) {
        fleet_thread_t *th = &f->threads[t];
        th->f = f;
        pthread_mutex_init(&th->mu, NULL);
        hist_init(&th->st.latency);
        th->nclients = assigned + per <= o->clients ? per : o->clients - assigned;
        assigned += th->nclients;
        th->clients = calloc(th->nclients ? th->nclients : 1, sizeof *th->clients);
        if (!th->clients)
            goto oom;
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
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof info);
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = PROTOCOLS;
        info.gid = -1;
        info.uid = -1;
        info.fd_limit_per_thread = (unsigned int)(th->nclients + 64);
        th->ctx = lws_create_context(&info);
        if (!th->ctx) {
            snprintf(err, errlen, "cannot create a libwebsockets context");
            goto fail;
        }
    }
    for (int t = 0; t < f->nthreads; t++)
        if (pthread_create(&f->threads[t].tid, NULL, thread_main, &f->threads[t])) {
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
    for (int t = 0; f->threads && t < f->o.threads; t++) {
        fleet_thread_t *th = &f->threads[t];
        if (th->ctx)
            lws_cancel_service(th->ctx);
    }
    for (int t = 0; f->threads && t < f->nthreads; t++)
        if (f->threads[t].tid)
            pthread_join(f->threads[t].tid, NULL);
    for (int t = 0; f->threads && t < f->o.threads; t++) {
        fleet_thread_t *th = &f->threads[t];
        if (th->ctx)
            lws_context_destroy(th->ctx);
        for (size_t i = 0; th->clients && i < th->nclients; i++) {
            free(th->clients[i].seen);
            free(th->clients[i].frag);
        }
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
        hist_merge(&st->latency, &th->st.latency);
        pthread_mutex_unlock(&th->mu);
    }
}

void fleet_reset_latency(fleet_t *f)
{
    for (int t = 0; t < f->nthreads; t++) {
        pthread_mutex_lock(&f->threads[t].mu);
        hist_init(&f->threads[t].st.latency);
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
