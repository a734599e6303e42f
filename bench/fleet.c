#include "fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

/* The clients speak WebSocket themselves over non-blocking sockets, one epoll set per thread:
 * a reader that costs little per message (one recv brings many frames; server frames are not
 * masked, so a payload is used where it lies), so that the load generator is not what limits
 * the gateway's figures. With `lws`, they are libwebsockets' client instead (one context per
 * thread; about ten times the CPU per message): a second, independent client to check the
 * figures against. */

#define FLEET_CONNECTS_IN_FLIGHT 256 /* handshakes under way per thread */
#define FLEET_MSG_MAX (1 << 20)
#define FLEET_RBUF (FLEET_MSG_MAX + (256 << 10)) /* a thread's read buffer */
#define FLEET_HEAD_MAX 8192                      /* the server's handshake answer */
#define FLEET_READS_PER_TURN 8                   /* reads per ready client per epoll turn */
/* A turn that found fewer ready clients than this naps FLEET_NAP_US before the next epoll_wait:
 * a fan-out writes to one client after the other, and readers that went back to epoll_wait
 * after every few of them (13,000 turns a second for 60,000 reads in the soak, each wake-up
 * paid for in the gateway's send) took CPU from the gateway they measure. The nap is part of
 * the latency they report. */
#define FLEET_NAP_BELOW 16
#define FLEET_NAP_US 200

typedef struct fleet_thread fleet_thread_t;

enum { FC_IDLE, FC_CONNECTING, FC_HANDSHAKE, FC_OPEN, FC_DONE };

/* One of these per client connection. */
typedef struct fclient {
    fleet_thread_t *th;
    struct lws *wsi; /* with libwebsockets' client */
    int pong_due;    /* the same: a pong to write when writable */
    int fd;
    int state;
    int half; /* uses half_query */
    int url;  /* index into the URL list */
    int connected;
    int ever;
    int64_t last_id;
    uint8_t *seen; /* bitset over bench_seq, or NULL */
    char *frag;    /* a message arriving in fragments */
    size_t frag_len;
    unsigned char *rest; /* bytes read but not yet a whole frame (or handshake) */
    size_t rest_len;
    unsigned char *out; /* bytes to send that the socket did not take yet */
    size_t out_len;
} fclient_t;

typedef struct url {
    char host[128];
    int port;
    char path[512];
    struct sockaddr_in addr;
} url_t;

/* One of these per client thread. */
struct fleet_thread {
    fleet_t *f;
    pthread_t tid;
    int ep;                  /* epoll */
    struct lws_context *ctx; /* instead, with libwebsockets' client */
    fclient_t *clients;
    size_t nclients;
    size_t next_connect; /* clients below this have been started */
    int in_flight;
    uint64_t rng;
    unsigned char *rbuf; /* FLEET_RBUF bytes */
    int64_t now_us;      /* wall clock of the last recv: the receipt time of what it brought */
    int64_t arrived_us;  /* when the kernel received the last of it (SO_TIMESTAMP), or 0 */
    pthread_mutex_t mu;  /* guards stats, first and last */
    fleet_stats_t st;
    int32_t *first, *last; /* per bench_seq: the least and greatest latency (us) seen here */
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
static int parse_int(const char *p, const char *end, int64_t *out)
{
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

/* Finds `"key":` in the message and parses the integer after it. */
static int find_int(const char *m, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *p = memmem(m, n, key, kl);
    if (!p)
        return -1;
    return parse_int(p + kl, m + n, out);
}

/* Parses the integer after the last `"key":` in the message, looking from its end: bench events
 * end with "bench_seq" and "bench_t", and memmem costs more to set up per call than this scan of
 * their last bytes (three memmem calls a message were a fifth of the fleet's CPU). */
static int find_int_last(const char *m, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    if (n < kl)
        return -1;
    for (size_t i = n - kl + 1; i-- > 0;)
        if (m[i] == key[0] && !memcmp(m + i, key, kl))
            return parse_int(m + i + kl, m + n, out);
    return -1;
}

static uint64_t next_rand(fleet_thread_t *th)
{
    th->rng ^= th->rng << 13;
    th->rng ^= th->rng >> 7;
    th->rng ^= th->rng << 17;
    return th->rng;
}

static void want_events(fclient_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->th->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends data (or queues what the socket does not take). Returns 0 or -1 (connection gone). */
static int send_raw(fclient_t *c, const void *data, size_t n)
{
    if (!c->out_len) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (w > 0) {
            data = (const char *)data + w;
            n -= (size_t)w;
        }
        if (!n)
            return 0;
    }
    unsigned char *nb = realloc(c->out, c->out_len + n);
    if (!nb)
        return -1;
    memcpy(nb + c->out_len, data, n);
    c->out = nb;
    c->out_len += n;
    want_events(c);
    return 0;
}

/* Sends one masked client frame (RFC 6455 5.3) of at most 125 payload bytes. */
static int send_frame(fclient_t *c, int opcode, const void *payload, size_t n)
{
    unsigned char f[2 + 4 + 125];
    if (n > 125)
        n = 125;
    uint32_t key = (uint32_t)next_rand(c->th);
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | n);
    memcpy(f + 2, &key, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = ((const unsigned char *)payload)[i] ^ f[2 + (i & 3)];
    return send_raw(c, f, 6 + n);
}

/* Ends a client's connection (no reconnecting); stats lock held. */
static void finish(fclient_t *c, int failed)
{
    fleet_thread_t *th = c->th;
    if (c->state == FC_CONNECTING || c->state == FC_HANDSHAKE)
        th->in_flight--;
    if (failed)
        th->st.failed++;
    if (c->connected) {
        th->st.connected--;
        th->st.closed++;
    }
    c->connected = 0;
    if (c->fd >= 0) {
        epoll_ctl(th->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = FC_DONE;
    free(c->rest);
    free(c->out);
    free(c->frag);
    c->rest = c->out = NULL;
    c->frag = NULL;
    c->rest_len = c->out_len = c->frag_len = 0;
}

static const char PONG[] = "{\"action\":\"pong\"}";

/* One whole text message; stats lock held. */
static void on_message(fclient_t *c, const char *m, size_t n)
{
    fleet_thread_t *th = c->th;
    int64_t seq = 0, t = 0, id;
    th->st.messages++;
    if (!find_int_last(m, n, "\"bench_t\":", &t) && !find_int_last(m, n, "\"bench_seq\":", &seq)) {
        int64_t lat = th->now_us - t;
        th->st.deliveries++;
        hist_add(&th->st.latency, lat);
        if (th->arrived_us)
            hist_add(&th->st.arrival, th->arrived_us - t);
        if (th->first && seq >= 0 && seq < th->f->o.max_seq) {
            int32_t l = lat < 0 ? 0 : lat > INT32_MAX ? INT32_MAX : (int32_t)lat;
            if (!th->first[seq] || l < th->first[seq])
                th->first[seq] = l ? l : 1;
            if (l > th->last[seq])
                th->last[seq] = l;
        }
        if (c->seen && seq >= 0 && seq < th->f->o.max_seq) {
            uint8_t bit = (uint8_t)(1u << (seq & 7));
            if (c->seen[seq >> 3] & bit)
                th->st.duplicates++;
            c->seen[seq >> 3] |= bit;
        }
        if (n > 6 && !memcmp(m, "{\"id\":", 6) ? !parse_int(m + 6, m + n, &id)
                                               : !find_int(m, n, "{\"id\":", &id)) {
            if (id <= c->last_id)
                th->st.out_of_order++;
            c->last_id = id;
        }
    } else if (memmem(m, n, "\"type\":\"replayed\"", 17)) {
        th->st.replayed++;
        th->st.last_replayed_us = timefmt_now_us();
        find_int(m, n, "\"count\":", &th->st.replayed_events);
    } else if (memmem(m, n, "\"type\":\"ping\"", 13)) {
        th->st.pings++;
        if (c->wsi) {
            c->pong_due = 1;
            lws_callback_on_writable(c->wsi);
        } else if (send_frame(c, 1, PONG, sizeof PONG - 1)) {
            finish(c, 0);
        }
    }
}

/* Handles the frames in p[0..n); returns the bytes used (the rest is an incomplete frame), or
 * -1 when the connection ended. Stats lock held. */
static ssize_t on_frames(fclient_t *c, unsigned char *p, size_t n)
{
    size_t used = 0;
    while (n - used >= 2 && c->state == FC_OPEN) {
        unsigned char *h = p + used;
        size_t avail = n - used, hlen = 2;
        int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
        uint64_t len = h[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hlen = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hlen = 10;
        }
        if (masked)
            hlen += 4;
        if (len > FLEET_MSG_MAX) { /* more than any message the gateway sends */
            finish(c, 0);
            return -1;
        }
        if (avail < hlen + len)
            break;
        unsigned char *pl = h + hlen;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                pl[i] ^= h[hlen - 4 + (i & 3)];
        used += hlen + (size_t)len;
        if (op == 1 || op == 0) {
            if (!c->frag_len && fin && op == 1) {
                on_message(c, (const char *)pl, (size_t)len);
            } else {
                if (c->frag_len + len <= FLEET_MSG_MAX) {
                    char *nb = realloc(c->frag, c->frag_len + (size_t)len + 1);
                    if (nb) {
                        memcpy(nb + c->frag_len, pl, (size_t)len);
                        c->frag = nb;
                        c->frag_len += (size_t)len;
                    }
                }
                if (fin) {
                    on_message(c, c->frag, c->frag_len);
                    c->frag_len = 0;
                }
            }
        } else if (op == 8) {
            if (len >= 2)
                c->th->st.last_close_code = (pl[0] << 8) | pl[1];
            send_frame(c, 8, pl, len >= 2 ? 2 : 0);
            finish(c, 0);
            return -1;
        } else if (op == 9) {
            if (send_frame(c, 10, pl, (size_t)len)) {
                finish(c, 0);
                return -1;
            }
        }
    }
    return c->state == FC_OPEN ? (ssize_t)used : -1;
}

/* The server's answer to the upgrade in p[0..n): returns the bytes it took, 0 when incomplete,
 * -1 when refused (the client is finished). Stats lock held. */
static ssize_t on_handshake(fclient_t *c, const unsigned char *p, size_t n)
{
    const unsigned char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        if (n >= FLEET_HEAD_MAX) {
            finish(c, 1);
            return -1;
        }
        return 0;
    }
    if (n < 12 || memcmp(p, "HTTP/1.1 101", 12)) {
        finish(c, 1);
        return -1;
    }
    fleet_thread_t *th = c->th;
    c->state = FC_OPEN;
    c->connected = 1;
    c->ever = 1;
    th->in_flight--;
    th->st.connected++;
    th->st.ever_connected++;
    if (!th->st.first_connect_us)
        th->st.first_connect_us = timefmt_now_us();
    return (ssize_t)(end + 4 - p);
}

/* Reads what the socket has and handles it. */
static void on_readable(fclient_t *c)
{
    fleet_thread_t *th = c->th;
    unsigned char *b = th->rbuf;
    for (int turn = 0; turn < FLEET_READS_PER_TURN && c->state != FC_DONE; turn++) {
        size_t have = c->rest_len;
        if (have)
            memcpy(b, c->rest, have);
        struct iovec iov = {.iov_base = b + have, .iov_len = FLEET_RBUF - have};
        union {
            char buf[CMSG_SPACE(sizeof(struct timeval))];
            struct cmsghdr align;
        } ctl;
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl};
        ssize_t r = recvmsg(c->fd, &mh, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        th->now_us = timefmt_now_us();
        th->arrived_us = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); r > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMP) {
                struct timeval tv;
                memcpy(&tv, CMSG_DATA(cm), sizeof tv);
                th->arrived_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
            }
        pthread_mutex_lock(&th->mu);
        if (r <= 0) {
            finish(c, c->state != FC_OPEN);
            pthread_mutex_unlock(&th->mu);
            return;
        }
        size_t n = have + (size_t)r, used = 0;
        if (c->state == FC_HANDSHAKE) {
            ssize_t k = on_handshake(c, b, n);
            if (k > 0)
                used = (size_t)k;
        }
        if (c->state == FC_OPEN) {
            ssize_t k = on_frames(c, b + used, n - used);
            if (k >= 0)
                used += (size_t)k;
        }
        pthread_mutex_unlock(&th->mu);
        if (c->state == FC_DONE)
            return;
        size_t left = n - used;
        if (left != c->rest_len) {
            unsigned char *nr = left ? realloc(c->rest, left) : NULL;
            if (left && !nr) {
                pthread_mutex_lock(&th->mu);
                finish(c, 0);
                pthread_mutex_unlock(&th->mu);
                return;
            }
            if (!left)
                free(c->rest);
            c->rest = nr;
        }
        if (left)
            memcpy(c->rest, b + used, left);
        c->rest_len = left;
        if ((size_t)r < FLEET_RBUF - have)
            return; /* the socket had no more */
    }
}

/* The socket can take more: the connection completed, or queued bytes can go. */
static void on_writable(fclient_t *c)
{
    fleet_thread_t *th = c->th;
    if (c->state == FC_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
            pthread_mutex_lock(&th->mu);
            finish(c, 1);
            pthread_mutex_unlock(&th->mu);
            return;
        }
        fleet_t *f = th->f;
        url_t *u = &f->urls[c->url];
        const char *q = c->half && f->o.half_query ? f->o.half_query : f->o.query;
        unsigned char key[16];
        for (int i = 0; i < 16; i += 8) {
            uint64_t r = next_rand(th);
            memcpy(key + i, &r, 8);
        }
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char k64[25];
        for (int i = 0, o = 0; i < 16; i += 3) {
            uint32_t v = (uint32_t)key[i] << 16 | (i + 1 < 16 ? (uint32_t)key[i + 1] << 8 : 0) |
                         (i + 2 < 16 ? key[i + 2] : 0);
            k64[o++] = b64[(v >> 18) & 63];
            k64[o++] = b64[(v >> 12) & 63];
            k64[o++] = i + 1 < 16 ? b64[(v >> 6) & 63] : '=';
            k64[o++] = i + 2 < 16 ? b64[v & 63] : '=';
            k64[o] = '\0';
        }
        char req[2048];
        int n = snprintf(req, sizeof req,
                         "GET %s%s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n\r\n",
                         u->path, q && *q ? (strchr(u->path, '?') ? "&" : "?") : "",
                         q && *q ? q : "", u->host, u->port, k64, u->host, u->port);
        c->state = FC_HANDSHAKE;
        if (n < 0 || (size_t)n >= sizeof req || send_raw(c, req, (size_t)n)) {
            pthread_mutex_lock(&th->mu);
            finish(c, 1);
            pthread_mutex_unlock(&th->mu);
            return;
        }
        want_events(c);
        return;
    }
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            pthread_mutex_lock(&th->mu);
            finish(c, 0);
            pthread_mutex_unlock(&th->mu);
            return;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    want_events(c);
}

static void connect_more(fleet_thread_t *th)
{
    fleet_t *f = th->f;
    while (th->next_connect < th->nclients && th->in_flight < FLEET_CONNECTS_IN_FLIGHT) {
        fclient_t *c = &th->clients[th->next_connect++];
        url_t *u = &f->urls[c->url];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int ok = fd >= 0;
        size_t idx = (size_t)(c - th->clients) * (size_t)f->nthreads + (size_t)(th - f->threads);
        if (ok && f->nsources) {
            struct sockaddr_in src = {.sin_family = AF_INET};
            ok = inet_pton(AF_INET, f->sources[idx % (size_t)f->nsources], &src.sin_addr) == 1 &&
                 !bind(fd, (struct sockaddr *)&src, sizeof src);
        }
        int one = 1; /* the kernel's receipt time of what each recv brings */
        if (ok)
            setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one);
        if (ok && connect(fd, (struct sockaddr *)&u->addr, sizeof u->addr) && errno != EINPROGRESS)
            ok = 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (ok && epoll_ctl(th->ep, EPOLL_CTL_ADD, fd, &ev))
            ok = 0;
        if (!ok) {
            if (fd >= 0)
                close(fd);
            c->state = FC_DONE;
            pthread_mutex_lock(&th->mu);
            th->st.failed++;
            pthread_mutex_unlock(&th->mu);
            continue;
        }
        c->fd = fd;
        c->state = FC_CONNECTING;
        th->in_flight++;
    }
}

static void lwsc_connect_more(fleet_thread_t *th);

static void *thread_main(void *arg)
{
    fleet_thread_t *th = arg;
    struct epoll_event evs[256];
    while (th->ctx && !atomic_load(&th->f->stop)) {
        lwsc_connect_more(th);
        lws_service(th->ctx, 50);
    }
    while (!th->ctx && !atomic_load(&th->f->stop)) {
        connect_more(th);
        int n = epoll_wait(th->ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            fclient_t *c = evs[i].data.ptr;
            if (c->state == FC_DONE)
                continue;
            if (evs[i].events & (EPOLLOUT | EPOLLERR) && (c->state == FC_CONNECTING || c->out_len))
                on_writable(c);
            if (c->state != FC_DONE && c->state != FC_CONNECTING &&
                evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
        if (n > 0 && n < FLEET_NAP_BELOW) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = FLEET_NAP_US * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* ---- libwebsockets' client ---- */

/* Appends a fragment to c's message; whole messages go to on_message. Stats lock held. */
static void lwsc_piece(fclient_t *c, const char *in, size_t len, int final)
{
    if (!c->frag_len && final) {
        on_message(c, in, len);
        return;
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
}

static int lwsc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    fclient_t *c = user;
    fleet_thread_t *th = c ? c->th : NULL;
    if (th)
        pthread_mutex_lock(&th->mu);
    int rc = 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = FC_OPEN;
        c->connected = 1;
        th->in_flight--;
        th->st.connected++;
        if (!th->st.first_connect_us)
            th->st.first_connect_us = timefmt_now_us();
        if (!c->ever)
            th->st.ever_connected++;
        c->ever = 1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            if (c->state == FC_CONNECTING)
                th->in_flight--;
            c->state = FC_DONE;
            c->wsi = NULL;
            th->st.failed++;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        th->now_us = timefmt_now_us();
        th->arrived_us = 0; /* no kernel timestamp through libwebsockets */
        lwsc_piece(c, in, len, lws_is_final_fragment(wsi));
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c->pong_due) {
            unsigned char buf[LWS_PRE + sizeof PONG];
            memcpy(buf + LWS_PRE, PONG, sizeof PONG - 1);
            c->pong_due = 0;
            if (lws_write(wsi, buf + LWS_PRE, sizeof PONG - 1, LWS_WRITE_TEXT) < 0)
                rc = -1;
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2)
            th->st.last_close_code =
                (((const unsigned char *)in)[0] << 8) | ((const unsigned char *)in)[1];
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            if (c->connected) {
                th->st.connected--;
                th->st.closed++;
            }
            c->connected = 0;
            c->state = FC_DONE;
            c->wsi = NULL;
        }
        break;
    default:
        break;
    }
    if (th)
        pthread_mutex_unlock(&th->mu);
    return rc;
}

static const struct lws_protocols LWSC_PROTOCOLS[] = {
    {"adw-bench", lwsc_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lwsc_connect_more(fleet_thread_t *th)
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
        pthread_mutex_lock(&th->mu);
        c->state = FC_CONNECTING;
        th->in_flight++;
        pthread_mutex_unlock(&th->mu);
        if (!lws_client_connect_via_info(&ci)) {
            pthread_mutex_lock(&th->mu);
            if (c->state == FC_CONNECTING) { /* no error callback came */
                c->state = FC_DONE;
                th->in_flight--;
                th->st.failed++;
            }
            pthread_mutex_unlock(&th->mu);
        }
    }
}

static int lwsc_thread_start(fleet_thread_t *th)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = LWSC_PROTOCOLS;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = (unsigned int)(th->nclients + 64);
    th->ctx = lws_create_context(&info);
    return th->ctx ? 0 : -1;
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
    if (o->lws)
        lws_set_log_level(LLL_ERR, NULL);
    f->nthreads = f->o.threads;
    f->threads = calloc((size_t)f->nthreads, sizeof *f->threads);
    if (!f->threads)
        goto oom;
    size_t per = (o->clients + (size_t)f->nthreads - 1) / (size_t)f->nthreads;
    size_t assigned = 0;
    for (int t = 0; t < f->nthreads; t++) {
        fleet_thread_t *th = &f->threads[t];
        th->f = f;
        th->ep = -1;
        th->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)timefmt_now_us() << 8) ^ (uint64_t)t;
        pthread_mutex_init(&th->mu, NULL);
        hist_init(&th->st.latency);
        hist_init(&th->st.arrival);
        th->nclients = assigned + per <= o->clients ? per : o->clients - assigned;
        assigned += th->nclients;
        th->clients = calloc(th->nclients ? th->nclients : 1, sizeof *th->clients);
        if (!th->clients)
            goto oom;
        for (size_t i = 0; i < th->nclients; i++) {
            fclient_t *c = &th->clients[i];
            size_t gi = i * (size_t)f->nthreads + (size_t)t; /* the client's global index */
            c->th = th;
            c->fd = -1;
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
        if (o->lws) {
            if (lwsc_thread_start(th)) {
                snprintf(err, errlen, "cannot create a libwebsockets context");
                goto fail;
            }
            continue;
        }
        th->ep = epoll_create1(EPOLL_CLOEXEC);
        th->rbuf = malloc(FLEET_RBUF);
        if (th->ep < 0 || !th->rbuf) {
            snprintf(err, errlen, "cannot make a client thread's epoll set or buffer");
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
    for (int t = 0; f->threads && t < f->o.threads; t++)
        if (f->threads[t].ctx)
            lws_cancel_service(f->threads[t].ctx);
    for (int t = 0; f->threads && t < f->nthreads; t++)
        if (f->threads[t].tid)
            pthread_join(f->threads[t].tid, NULL);
    for (int t = 0; f->threads && t < f->o.threads; t++) {
        fleet_thread_t *th = &f->threads[t];
        if (th->ctx)
            lws_context_destroy(th->ctx);
        for (size_t i = 0; th->clients && i < th->nclients; i++) {
            fclient_t *c = &th->clients[i];
            if (c->fd >= 0)
                close(c->fd);
            free(c->seen);
            free(c->frag);
            free(c->rest);
            free(c->out);
        }
        if (th->ep >= 0)
            close(th->ep);
        free(th->rbuf);
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
