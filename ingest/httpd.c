#include "httpd.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "http1_chunked.h"
#include "http1_query.h"
#include "jsonw.h"
#include "listen.h"
#include "log.h"
#include "sock.h"

#define HTTP_READ_CHUNK 65536

typedef enum conn_state {
    CONN_HEAD,    /* waiting for (the rest of) a request head */
    CONN_BODY,    /* reading a Content-Length body */
    CONN_CHUNKED, /* reading a chunked body */
    CONN_WAIT,    /* the request waits for its deferred answer */
    CONN_CLOSING, /* flushing the last response, then closing */
} conn_state_t;

/* One of these per client connection. */
struct httpd_conn_t {
    httpd_conn_t *prev, *next;
    httpd_t *srv;
    sock_t sock; /* the socket, plain or TLS */
    conn_state_t state;
    buf_t in;       /* bytes received and not yet consumed */
    buf_t out;      /* bytes to send */
    size_t out_off; /* bytes of out already sent */
    buf_t body;     /* a decoded chunked body */
    http1_request_t req;
    http1_chunked_t chunked;
    size_t consumed; /* bytes of `in` the current request uses (head + raw body) */
    int keep_alive;
    int answered;       /* the current request has its answer queued */
    int64_t started_ms; /* first byte of the current request, or 0 when none yet */
    int64_t idle_since_ms;
    int mask;              /* what the loop watches for: LOOP_READ | LOOP_WRITE */
    int held;              /* the deferred request is held (httpd_hold): the peer is watched */
    max_align_t session[]; /* the handler's handler.session_size bytes */
};

/* One of these per server. */
struct httpd_t {
    httpd_options_t o;
    int lfd;
    int reserve_fd; /* spare descriptor, given up to refuse a connection on EMFILE */
    httpd_conn_t *conns;
    size_t nconns;
    int draining;
    buf_t scratch;
    char busy[256]; /* the whole 503 answer to a connection over max_connections */
    size_t busy_len;
    metric_t *m_requests, *m_connections, *m_errors[6];
    metric_t *m_tls_failed, *m_tls_timeout;
};

static void conn_close(httpd_conn_t *c);
static void conn_process(httpd_conn_t *c);
static void conn_flush(httpd_conn_t *c);
static void conn_rearm(httpd_conn_t *c);

/* ---- listening ---- */

int httpd_listen(const char *hostport, char *err, size_t errlen)
{
    listen_addr_t la;
    int rc = listen_parse(hostport, &la, err, errlen);
    if (rc)
        return rc;
    char port[8];
    snprintf(port, sizeof port, "%d", la.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    rc = getaddrinfo(la.host[0] ? la.host : NULL, port, &hints, &ai);
    if (rc) {
        set_err(err, errlen, "listen address '%s': %s", hostport, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        set_err(err, errlen, "cannot listen on %s: %s", hostport, strerror(e));
        return -e;
    }
    return fd;
}

/* ---- responses ---- */

static const char *const ERROR_LABELS[] = {"400", "401", "404", "405", "413", "other"};

static void count_status(httpd_t *s, int status)
{
    int i = status == 400   ? 0
            : status == 401 ? 1
            : status == 404 ? 2
            : status == 405 ? 3
            : status == 413 ? 4
                            : 5;
    if (status >= 400)
        metric_add(s->m_errors[i], 1);
}

/* The current request is answered: its bytes can go; pipelined ones follow. */
static void request_done(httpd_conn_t *c)
{
    buf_consume(&c->in, c->consumed);
    c->consumed = 0;
    c->started_ms = 0;
    c->idle_since_ms = loop_now_ms(c->srv->o.loop);
}

/* Queues a response. close_after forces the connection to close once it is written. */
static void respond(httpd_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                    const char *extra, int close_after)
{
    c->answered = 1;
    if (close_after || c->srv->draining)
        c->keep_alive = 0;
    count_status(c->srv, status);
    size_t before = c->out.len;
    if (!body || http1_write_response_head(&c->out, status, ctype, len, c->keep_alive, extra) ||
        buf_append(&c->out, body, len)) {
        /* Out of memory: no half-written response; the connection just closes, which tells the
         * client nothing about the request (it retries with its event_id). */
        c->out.len = before;
        c->keep_alive = 0;
    }
    if (!c->keep_alive)
        c->state = CONN_CLOSING;
}

/* The cycle httpd_respond -> conn_flush -> conn_process -> conn_route -> httpd_respond_error
 * -> httpd_respond closes only through a deferred answer (a connection in CONN_WAIT): that
 * flushes and serves the pipelined requests, which are answered at once, never deferred, so
 * they do not flush again; conn_flush calls itself once at most for what they wrote. */
// NOLINTNEXTLINE(misc-no-recursion): two levels at most, see above
void httpd_respond(httpd_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                   const char *extra, int close_after)
{
    int deferred = c->state == CONN_WAIT;
    c->held = 0;
    if (deferred)
        c->state = CONN_HEAD;
    respond(c, status, ctype, body, len, extra, close_after);
    if (deferred) {
        request_done(c);
        conn_flush(c);
    }
}

// NOLINTNEXTLINE(misc-no-recursion): two levels at most, see httpd_respond
void httpd_respond_error(httpd_conn_t *c, int status, const char *error, long index,
                         const char *extra, int close_after)
{
    buf_t *b = &c->srv->scratch;
    buf_reset(b);
    int bad = buf_puts(b, "{\"error\":");
    bad |= jsonw_string(b, error, strlen(error));
    if (index >= 0)
        bad |= buf_printf(b, ",\"index\":%ld", index);
    bad |= buf_putc(b, '}');
    if (!extra && status == 503)
        extra = "Retry-After: 1\r\n";
    else if (!extra && status == 401)
        extra = "WWW-Authenticate: Bearer\r\n";
    httpd_respond(c, status, "application/json", bad ? NULL : b->data, b->len, extra, close_after);
}

void *httpd_session(httpd_conn_t *c)
{
    return c->session;
}

void httpd_defer(httpd_conn_t *c)
{
    assert(c->state == CONN_BODY || c->state == CONN_CHUNKED);
    c->state = CONN_WAIT;
}

void httpd_hold(httpd_conn_t *c)
{
    assert(c->state == CONN_WAIT);
    c->held = 1;
    conn_rearm(c);
}

static void refused(httpd_t *s, httpd_refusal_t why)
{
    if (s->o.handler.refused)
        s->o.handler.refused(s->o.handler.arg, why);
}

int httpd_check_body(httpd_conn_t *c)
{
    httpd_t *s = c->srv;
    const http1_request_t *req = &c->req;
    if (req->content_length < 0 && !req->chunked) {
        refused(s, HTTPD_REFUSED_NO_LENGTH);
        httpd_respond_error(c, 411, "a POST needs Content-Length or chunked transfer encoding", -1,
                            NULL, 1);
        return -1;
    }
    if (req->content_length > s->o.max_body) {
        refused(s, HTTPD_REFUSED_TOO_LARGE);
        char msg[128];
        snprintf(msg, sizeof msg, "body of %lld bytes is over the limit of %lld",
                 (long long)req->content_length, (long long)s->o.max_body);
        httpd_respond_error(c, 413, msg, -1, NULL, 1);
        return -1;
    }
    return 0;
}

/* ---- request handling ---- */

/* Hands a complete head to the handler. Returns 1 when the body is to be read, 0 when
 * answered. */
// NOLINTNEXTLINE(misc-no-recursion): two levels at most, see httpd_respond
static int conn_route(httpd_conn_t *c)
{
    httpd_t *s = c->srv;
    http1_request_t *req = &c->req;
    char path[1024];
    metric_add(s->m_requests, 1);
    c->keep_alive = req->keep_alive;
    c->consumed = req->head_len;
    c->answered = 0;
    if (http1_path_decode(req->path, path, sizeof path, NULL)) {
        httpd_respond_error(c, 400, "malformed request path", -1, NULL, 1);
        return 0;
    }
    if (s->o.handler.head(s->o.handler.arg, c, req, path) == HTTPD_ANSWERED) {
        assert(c->answered);
        return 0;
    }
    if (req->expect_continue)
        buf_printf(&c->out, "HTTP/1.1 100 %s\r\n\r\n", http1_status_reason(100));
    if (req->chunked) {
        http1_chunked_init(&c->chunked, (size_t)s->o.head_max);
        buf_reset(&c->body);
        c->body.max = (size_t)s->o.max_body;
        c->state = CONN_CHUNKED;
    } else {
        c->state = CONN_BODY;
    }
    return 1;
}

/* Hands a whole body to the handler; unless the answer is deferred, the request is done. */
static void conn_body(httpd_conn_t *c, const char *body, size_t len)
{
    httpd_t *s = c->srv;
    s->o.handler.body(s->o.handler.arg, c, body, len);
    if (c->state == CONN_WAIT)
        return;
    assert(c->answered);
    request_done(c);
    if (c->state != CONN_CLOSING)
        c->state = CONN_HEAD;
}

/* Works through the bytes received: heads, bodies, pipelined requests. */
// NOLINTNEXTLINE(misc-no-recursion): two levels at most, see httpd_respond
static void conn_process(httpd_conn_t *c)
{
    httpd_t *s = c->srv;
    for (;;) {
        if (c->state == CONN_WAIT || c->state == CONN_CLOSING)
            return;
        if (c->state == CONN_HEAD) {
            if (c->in.len == 0)
                return;
            if (s->draining) {
                c->keep_alive = 0;
                httpd_respond_error(c, 503, "shutting down, retry later", -1, NULL, 1);
                return;
            }
            if (!c->started_ms)
                c->started_ms = loop_now_ms(s->o.loop);
            http1_error_t herr;
            int rc =
                http1_parse_request(&c->req, c->in.data, c->in.len, (size_t)s->o.head_max, &herr);
            if (rc == -EAGAIN)
                return;
            if (rc) {
                refused(s, HTTPD_REFUSED_HEAD);
                httpd_respond_error(c, herr.status, herr.reason, -1, NULL, 1);
                return;
            }
            if (!conn_route(c)) {
                /* Answered from the head alone: drop the request's bytes (unless closing). */
                if (c->state == CONN_HEAD)
                    request_done(c);
                continue;
            }
        }
        if (c->state == CONN_BODY) {
            size_t need = c->req.head_len + (size_t)c->req.content_length;
            if (c->in.len < need)
                return;
            c->consumed = need;
            conn_body(c, c->in.data + c->req.head_len, (size_t)c->req.content_length);
            continue;
        }
        if (c->state == CONN_CHUNKED) {
            size_t used = 0;
            http1_error_t herr;
            int rc = http1_chunked_feed(&c->chunked, c->in.data + c->consumed,
                                        c->in.len - c->consumed, &used, &c->body, &herr);
            c->consumed += used;
            if (rc == -EAGAIN) {
                /* Keep only what is still needed: drop decoded input. */
                buf_consume(&c->in, c->consumed);
                c->consumed = 0;
                return;
            }
            if (rc) {
                if (rc == -E2BIG)
                    refused(s, HTTPD_REFUSED_TOO_LARGE);
                httpd_respond_error(c, herr.status, herr.reason, -1, NULL, 1);
                return;
            }
            conn_body(c, c->body.data ? c->body.data : "", c->body.len);
            continue;
        }
    }
}

/* ---- socket I/O ---- */

static void on_conn(loop_t *loop, int fd, int mask, void *arg);

/* Moves the TLS handshake on. Returns 1 when it is done, 0 while it waits (the connection is
 * watched for what it needs), -1 when it failed and the connection was closed. */
static int conn_handshake(httpd_conn_t *c)
{
    int want = 0;
    int rc = sock_handshake(&c->sock, &want);
    if (rc == 1) {
        c->started_ms = 0;
        c->idle_since_ms = loop_now_ms(c->srv->o.loop);
        return 1;
    }
    if (rc == 0) {
        if (want != c->mask) {
            c->mask = want;
            loop_watch(c->srv->o.loop, c->sock.fd, want, on_conn, c);
        }
        return 0;
    }
    log_debug("http: TLS handshake failed (%s); connection closed", strerror(errno));
    metric_add(c->srv->m_tls_failed, 1);
    conn_close(c);
    return -1;
}

/* Watches for what the connection needs now: input unless its request waits for a deferred
 * answer (so a pipelining client cannot make it buffer without bound), output while any is
 * queued. */
static void conn_rearm(httpd_conn_t *c)
{
    int mask = (c->state == CONN_WAIT || c->state == CONN_CLOSING) ? 0 : LOOP_READ;
    /* A held request: input is read (within the connection's bound) to see the peer go. */
    if (c->state == CONN_WAIT && c->held &&
        c->in.len < (size_t)c->srv->o.head_max + (size_t)c->srv->o.max_body + 65536)
        mask |= LOOP_READ;
    if (c->out.len > c->out_off)
        mask |= LOOP_WRITE;
    /* TLS: a read may wait for the socket to take bytes, a write for bytes to come. */
    mask |= sock_wants(&c->sock);
    if (mask != c->mask) {
        c->mask = mask;
        loop_watch(c->srv->o.loop, c->sock.fd, mask, on_conn, c);
    }
}

// NOLINTNEXTLINE(misc-no-recursion): two levels at most, see httpd_respond
static void conn_flush(httpd_conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = sock_send(&c->sock, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_rearm(c);
            return;
        }
        conn_close(c);
        return;
    }
    buf_reset(&c->out);
    c->out_off = 0;
    if (c->state == CONN_CLOSING) {
        conn_close(c);
        return;
    }
    /* Pipelined requests waiting behind the one just answered. */
    if (c->state == CONN_HEAD && c->in.len)
        conn_process(c);
    if (c->out.len > c->out_off) {
        conn_flush(c);
        return;
    }
    conn_rearm(c);
}

static void on_conn(loop_t *loop, int fd, int mask, void *arg)
{
    (void)loop;
    (void)fd;
    httpd_conn_t *c = arg;
    httpd_t *s = c->srv;
    if (c->sock.handshaking) {
        if (conn_handshake(c) <= 0)
            return;
        mask = LOOP_READ; /* the first request may have come with the handshake's end */
    }
    if (c->sock.ssl && (mask & LOOP_WRITE) && (c->sock.rd_want & LOOP_WRITE))
        mask |= LOOP_READ;
    if (mask & LOOP_READ) {
        /* Bound what one connection may buffer: a head, a body, and a little slack. */
        size_t cap = (size_t)s->o.head_max + (size_t)s->o.max_body + 65536;
        int eof = 0;
        while (c->in.len < cap) {
            if (buf_reserve(&c->in, HTTP_READ_CHUNK)) {
                conn_close(c);
                return;
            }
            ssize_t n = sock_recv(&c->sock, c->in.data + c->in.len, HTTP_READ_CHUNK);
            if (n > 0) {
                c->in.len += (size_t)n;
                c->in.data[c->in.len] = '\0';
                /* TLS hands out one record at a time: read on until it would block. */
                if ((size_t)n < HTTP_READ_CHUNK && !c->sock.ssl)
                    break;
                continue;
            }
            if (n == 0) {
                eof = 1;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                eof = 1;
            break;
        }
        if (eof) {
            /* The peer is gone (or half-closed): nothing more can be answered reliably. */
            conn_close(c);
            return;
        }
        conn_process(c);
        if (c->out.len > c->out_off || c->state == CONN_CLOSING)
            conn_flush(c);
        else
            conn_rearm(c);
        return;
    }
    if (mask & LOOP_WRITE)
        conn_flush(c);
}

static void conn_close(httpd_conn_t *c)
{
    httpd_t *s = c->srv;
    if (c->state == CONN_WAIT && s->o.handler.closed)
        s->o.handler.closed(s->o.handler.arg, c);
    loop_unwatch(s->o.loop, c->sock.fd);
    sock_close(&c->sock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    metric_set(s->m_connections, (int64_t)s->nconns);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->body);
    free(c);
}

static void on_accept(loop_t *loop, int fd, int mask, void *arg)
{
    (void)mask;
    httpd_t *s = arg;
    for (int i = 0; i < 64; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: refuse one waiting client rather than spin. */
                if (s->reserve_fd >= 0) {
                    close(s->reserve_fd);
                    s->reserve_fd = -1;
                    int x = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                    if (x >= 0)
                        close(x);
                    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
                log_warn("http: out of file descriptors; refusing a connection");
            }
            return;
        }
        if ((s->draining || (int64_t)s->nconns >= s->o.max_connections) && s->o.tls) {
            close(cfd); /* no plain-text answer on a TLS port */
            continue;
        }
        if (s->draining || (int64_t)s->nconns >= s->o.max_connections) {
            ssize_t rc = send(cfd, s->busy, s->busy_len, MSG_NOSIGNAL);
            (void)rc;
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        httpd_conn_t *c = calloc(1, sizeof *c + s->o.handler.session_size);
        if (!c) {
            close(cfd);
            continue;
        }
        c->srv = s;
        c->state = CONN_HEAD;
        c->idle_since_ms = loop_now_ms(loop);
        buf_init(&c->in, 0);
        buf_init(&c->out, 0);
        buf_init(&c->body, (size_t)s->o.max_body);
        http1_request_init(&c->req);
        c->mask = LOOP_READ;
        if (sock_init(&c->sock, cfd, s->o.tls)) {
            close(cfd);
            free(c);
            continue;
        }
        if (s->o.tls) /* the handshake runs on the request's clock */
            c->started_ms = loop_now_ms(loop);
        if (loop_watch(loop, cfd, LOOP_READ, on_conn, c)) {
            sock_close(&c->sock);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        metric_set(s->m_connections, (int64_t)s->nconns);
    }
}

/* Every half second: requests that take too long get 408; idle connections are closed. */
static void on_tick(loop_t *loop, void *arg)
{
    httpd_t *s = arg;
    int64_t now = loop_now_ms(loop);
    httpd_conn_t *c = s->conns;
    while (c) {
        httpd_conn_t *next = c->next;
        if (c->sock.handshaking) {
            if (now - c->started_ms > s->o.request_timeout_ms) {
                log_debug("http: TLS handshake not done in time; connection closed");
                metric_add(s->m_tls_timeout, 1);
                conn_close(c);
            }
        } else if (c->state == CONN_HEAD || c->state == CONN_BODY || c->state == CONN_CHUNKED) {
            if (c->started_ms && now - c->started_ms > s->o.request_timeout_ms) {
                httpd_respond_error(c, 408, "request not received in time", -1, NULL, 1);
                conn_flush(c);
            } else if (!c->started_ms && c->in.len == 0 && c->out.len == 0 &&
                       now - c->idle_since_ms > s->o.idle_timeout_ms) {
                conn_close(c);
            }
        }
        c = next;
    }
}

httpd_t *httpd_new(const httpd_options_t *o, char *err, size_t errlen)
{
    httpd_t *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    buf_init(&s->scratch, 0);
    static const char busy_body[] = "{\"error\":\"too many connections, retry\"}";
    s->busy_len = (size_t)snprintf(s->busy, sizeof s->busy,
                                   "HTTP/1.1 503 %s\r\nContent-Type: application/json\r\n"
                                   "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: "
                                   "close\r\n\r\n%s",
                                   http1_status_reason(503), sizeof busy_body - 1, busy_body);
    s->lfd = httpd_listen(o->listen, err, errlen);
    if (s->lfd < 0)
        goto fail;
    if (loop_watch(o->loop, s->lfd, LOOP_READ, on_accept, s) ||
        loop_timer(o->loop, 500, on_tick, s) < 0) {
        set_err(err, errlen, "cannot watch the HTTP listener");
        goto fail;
    }
    if (o->metrics) {
        s->m_requests = metrics_counter(o->metrics, "adw_ingest_http_requests_total", NULL,
                                        "HTTP requests received");
        s->m_connections =
            metrics_gauge(o->metrics, "adw_ingest_http_connections", NULL, "Open HTTP connections");
        s->m_tls_failed =
            metrics_counter(o->metrics, "adw_ingest_tls_handshake_failures_total",
                            "reason=\"error\"", "TLS handshakes that failed, by reason");
        s->m_tls_timeout =
            metrics_counter(o->metrics, "adw_ingest_tls_handshake_failures_total",
                            "reason=\"timeout\"", "TLS handshakes that failed, by reason");
        for (int i = 0; i < 6; i++) {
            char label[32];
            snprintf(label, sizeof label, "status=\"%s\"", ERROR_LABELS[i]);
            s->m_errors[i] = metrics_counter(o->metrics, "adw_ingest_http_errors_total", label,
                                             "HTTP error responses, by status");
        }
    }
    return s;
fail:
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    buf_free(&s->scratch);
    free(s);
    return NULL;
}

void httpd_drain(httpd_t *s)
{
    if (s->draining)
        return;
    s->draining = 1;
    loop_unwatch(s->o.loop, s->lfd);
    close(s->lfd);
    s->lfd = -1;
    /* Idle connections go now; busy ones close after their answer. */
    httpd_conn_t *c = s->conns;
    while (c) {
        httpd_conn_t *next = c->next;
        if (c->state == CONN_HEAD && c->in.len == 0 && c->out.len == 0)
            conn_close(c);
        else
            c->keep_alive = 0;
        c = next;
    }
}

size_t httpd_busy(const httpd_t *s)
{
    size_t n = 0;
    for (httpd_conn_t *c = s->conns; c; c = c->next)
        if (c->state == CONN_WAIT || c->out.len > c->out_off)
            n++;
    return n;
}

void httpd_destroy(httpd_t **sp)
{
    if (!sp || !*sp)
        return;
    httpd_t *s = *sp;
    /* conn_close unlinks the connection from s->conns before freeing it; the analyzer forgets
     * the unlinking across the calls that follow it (metric_set, buf_free). */
    while (s->conns)
        conn_close(s->conns); // NOLINT(clang-analyzer-unix.Malloc): the head is a live conn
    if (s->lfd >= 0) {
        loop_unwatch(s->o.loop, s->lfd);
        close(s->lfd);
    }
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    buf_free(&s->scratch);
    free(s);
    *sp = NULL;
}
