/* fleet_epoll: the fleet's own WebSocket clients, over non-blocking sockets with one epoll set
 * per thread and the wsclient codec. A reader that costs little per message (one recv brings
 * many frames; server frames are not masked, so a payload is used where it lies), so that the
 * load generator is not what limits the gateway's figures. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fleet_epoll.h"
#include "fleet_query.h"
#include "timefmt.h"

#define FLEET_RBUF (FLEET_MSG_MAX + (256 << 10)) /* a thread's read buffer */
#define FLEET_READS_PER_TURN 8                   /* reads per ready client per epoll turn */
/* A turn that found fewer ready clients than this naps FLEET_NAP_US before the next epoll_wait:
 * a fan-out writes to one client after the other, and readers that went back to epoll_wait
 * after every few of them (13,000 turns a second for 60,000 reads in the soak, each wake-up
 * paid for in the gateway's send) took CPU from the gateway they measure. The nap is part of
 * the latency they report. */
#define FLEET_NAP_BELOW 16
#define FLEET_NAP_US 200

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

/* Sends one masked client frame of at most WSCLIENT_CONTROL_MAX payload bytes. Returns 0 or -1
 * (connection gone). */
static int send_frame(fclient_t *c, int opcode, const void *payload, size_t n)
{
    unsigned char f[WSCLIENT_FRAME_HEAD_MAX + WSCLIENT_CONTROL_MAX];
    ssize_t len =
        wsclient_frame_encode(f, sizeof f, opcode, payload, n, (uint32_t)next_rand(c->th));
    return len < 0 ? -1 : send_raw(c, f, (size_t)len);
}

/* 1 once c has no connection (done for good, or waiting to connect again). */
static int gone(const fclient_t *c)
{
    return c->state == FC_DONE || c->state == FC_IDLE;
}

/* With resume: puts c (no connection) at the end of its thread's reconnect line, for the next
 * gateway URL, due at once or, after a failed attempt, FLEET_RETRY_MS later. */
static void again(fclient_t *c, int failed)
{
    fleet_thread_t *th = c->th;
    c->state = FC_IDLE;
    c->url = (c->url + 1) % th->f->nurls; /* the next gateway, when they are listed */
    c->retry_at_us = timefmt_mono_us() + (failed ? FLEET_RETRY_MS * 1000 : 0);
    c->again = NULL;
    if (th->again_tail)
        th->again_tail->again = c;
    else
        th->again_head = c;
    th->again_tail = c;
}

/* Ends a client's connection (with resume, it connects again later); stats lock held. */
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
    if (th->f->o.resume && !atomic_load(&th->f->stop))
        again(c, failed);
}

/* Handles the frames in p[0..n); returns the bytes used (the rest is an incomplete frame), or
 * -1 when the connection ended. Stats lock held. */
static ssize_t on_frames(fclient_t *c, const unsigned char *p, size_t n)
{
    size_t used = 0;
    wsclient_frame_t fr;
    while (c->state == FC_OPEN) {
        int rc = wsclient_frame_decode(p + used, n - used, FLEET_MSG_MAX, &fr);
        if (rc == 0)
            break;
        if (rc < 0) { /* a frame the gateway does not send, or more than any message it sends */
            finish(c, 0);
            return -1;
        }
        used += fr.size;
        switch (fr.opcode) {
        case WSCLIENT_OP_TEXT:
        case WSCLIENT_OP_CONTINUATION:
            if (fleet_client_piece(c, (const char *)fr.payload, fr.len, fr.fin) &&
                send_frame(c, WSCLIENT_OP_TEXT, FLEET_PONG, FLEET_PONG_LEN))
                finish(c, 0);
            break;
        case WSCLIENT_OP_CLOSE:
            if (fr.len >= 2)
                c->th->st.last_close_code = (fr.payload[0] << 8) | fr.payload[1];
            send_frame(c, WSCLIENT_OP_CLOSE, fr.payload, fr.len >= 2 ? 2 : 0);
            finish(c, 0);
            return -1;
        case WSCLIENT_OP_PING:
            if (send_frame(c, WSCLIENT_OP_PONG, fr.payload, fr.len)) {
                finish(c, 0);
                return -1;
            }
            break;
        default: /* binary and pong frames: nothing to do */
            break;
        }
    }
    return c->state == FC_OPEN ? (ssize_t)used : -1;
}

/* The server's answer to the upgrade in p[0..n): returns the bytes it took, 0 when incomplete,
 * -1 when refused (the client is finished). Stats lock held. */
static ssize_t on_handshake(fclient_t *c, const unsigned char *p, size_t n)
{
    int rc = wsclient_handshake((const char *)p, n, c->key, NULL, 0);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0) {
        finish(c, 1);
        return -1;
    }
    fleet_thread_t *th = c->th;
    c->state = FC_OPEN;
    c->connected = 1;
    if (c->ever && !th->st.reconnects++)
        th->st.first_reconnect_us = timefmt_now_us();
    c->ever = 1;
    th->in_flight--;
    th->st.connected++;
    th->st.ever_connected++;
    if (!th->st.first_connect_us)
        th->st.first_connect_us = timefmt_now_us();
    return rc;
}

/* Reads what the socket has and handles it. */
static void on_readable(fclient_t *c)
{
    fleet_thread_t *th = c->th;
    unsigned char *b = th->rbuf;
    for (int turn = 0; turn < FLEET_READS_PER_TURN && !gone(c); turn++) {
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
        if (gone(c))
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
        url_t *u = &th->f->urls[c->url];
        unsigned char nonce[WSCLIENT_NONCE_LEN];
        for (int i = 0; i < WSCLIENT_NONCE_LEN; i += 8) {
            uint64_t r = next_rand(th);
            memcpy(nonce + i, &r, 8);
        }
        wsclient_key(nonce, c->key);
        char req[2048], q[1024];
        const char *query = fleet_client_query(c);
        if (th->f->o.resume && c->last_id > 0 &&
            fleet_resume_query(q, sizeof q, query, c->last_id) >= 0)
            query = q;
        int n = wsclient_request(req, sizeof req, u->host, u->port, u->path, query, c->key);
        c->state = FC_HANDSHAKE;
        if (n < 0 || send_raw(c, req, (size_t)n)) {
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

/* Opens c's connection (non-blocking); on failure it is finished as a failed attempt. */
static void open_conn(fleet_thread_t *th, fclient_t *c)
{
    fleet_t *f = th->f;
    url_t *u = &f->urls[c->url];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ok = fd >= 0;
    const char *source = fleet_client_source(c);
    if (ok && source) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        ok = inet_pton(AF_INET, source, &src.sin_addr) == 1 &&
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
        c->state = FC_IDLE;
        pthread_mutex_lock(&th->mu);
        finish(c, 1);
        pthread_mutex_unlock(&th->mu);
        return;
    }
    c->fd = fd;
    c->state = FC_CONNECTING;
    th->in_flight++;
}

/* Starts connections until FLEET_CONNECTS_IN_FLIGHT handshakes are under way: first those in the
 * reconnect line that are due, then new ones. */
static void connect_more(fleet_thread_t *th)
{
    int64_t now = th->again_head ? timefmt_mono_us() : 0;
    while (th->again_head && th->in_flight < FLEET_CONNECTS_IN_FLIGHT &&
           th->again_head->retry_at_us <= now) {
        fclient_t *c = th->again_head;
        th->again_head = c->again;
        if (!th->again_head)
            th->again_tail = NULL;
        c->again = NULL;
        open_conn(th, c);
    }
    while (th->next_connect < th->nclients && th->in_flight < FLEET_CONNECTS_IN_FLIGHT)
        open_conn(th, &th->clients[th->next_connect++]);
}

int fleet_epoll_init(fleet_thread_t *th)
{
    th->ep = epoll_create1(EPOLL_CLOEXEC);
    th->rbuf = malloc(FLEET_RBUF);
    return th->ep < 0 || !th->rbuf ? -1 : 0;
}

void *fleet_epoll_run(void *arg)
{
    fleet_thread_t *th = arg;
    struct epoll_event evs[256];
    while (!atomic_load(&th->f->stop)) {
        connect_more(th);
        int n = epoll_wait(th->ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            fclient_t *c = evs[i].data.ptr;
            if (gone(c))
                continue;
            if (evs[i].events & (EPOLLOUT | EPOLLERR) && (c->state == FC_CONNECTING || c->out_len))
                on_writable(c);
            if (!gone(c) && c->state != FC_CONNECTING &&
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

void fleet_epoll_fini(fleet_thread_t *th)
{
    for (size_t i = 0; th->clients && i < th->nclients; i++) {
        fclient_t *c = &th->clients[i];
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        free(c->rest);
        free(c->out);
        c->rest = c->out = NULL;
    }
    if (th->ep >= 0)
        close(th->ep);
    th->ep = -1;
    free(th->rbuf);
    th->rbuf = NULL;
}
