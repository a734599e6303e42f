#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adw_limits.h"
#include "auth.h"
#include "buf.h"
#include "codec.h"
#include "event.h"
#include "hook.h"
#include "http1.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

#define HTTP_READ_CHUNK 65536

typedef enum conn_state {
    CONN_HEAD,    /* waiting for (the rest of) a request head */
    CONN_BODY,    /* reading a Content-Length body */
    CONN_CHUNKED, /* reading a chunked body */
    CONN_WAIT,    /* the request is with the pipeline */
    CONN_CLOSING, /* flushing the last response, then closing */
} conn_state_t;

typedef enum route { ROUTE_EVENTS, ROUTE_HOOKS } route_t;

/* One of these per client connection. */
typedef struct conn {
    struct conn *prev, *next;
    http_server_t *srv;
    int fd;
    conn_state_t state;
    buf_t in;       /* bytes received and not yet consumed */
    buf_t out;      /* bytes to send */
    size_t out_off; /* bytes of out already sent */
    buf_t body;     /* a decoded chunked body */
    http1_request_t req;
    http1_chunked_t chunked;
    size_t consumed; /* bytes of `in` the current request uses (head + raw body) */
    int keep_alive;
    route_t route;
    int ndjson;
    char adw_id[ADW_ADW_ID_MAX + 2];
    char step[ADW_STEP_MAX + 2];
    int64_t started_ms; /* first byte of the current request, or 0 when none yet */
    int64_t idle_since_ms;
    pipeline_entry_t *pending;
    int mask;        /* what the loop watches for: LOOP_READ | LOOP_WRITE */
    SSL *ssl;        /* the TLS session, or NULL on a plain listener */
    int handshaking; /* the TLS handshake is not done yet */
    int tls_rd_want; /* what the last SSL_read waits for (LOOP_READ | LOOP_WRITE), or 0 */
    int tls_wr_want; /* what the last SSL_write waits for, or 0 */
} conn_t;

struct http_server_t {
    http_options_t o;
    int lfd;
    int reserve_fd; /* spare descriptor, given up to refuse a connection on EMFILE */
    conn_t *conns;
    size_t nconns;
    int draining;
    buf_t scratch;
    metric_t *m_requests, *m_connections, *m_errors[6];
    metric_t *m_tls_failed, *m_tls_timeout;
};

static void conn_close(conn_t *c);
static void conn_process(conn_t *c);
static void conn_flush(conn_t *c);

/* ---- listening ---- */

int http_listen(const char *hostport, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "listen address '%s' must be host:port", hostport);
        return -EINVAL;
    }
    size_t hlen = (size_t)(colon - hostport);
    if (hlen >= sizeof host) {
        snprintf(err, errlen, "listen address '%s' is too long", hostport);
        return -EINVAL;
    }
    memcpy(host, hostport, hlen);
    host[hlen] = '\0';
    char *h = host;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h[hlen - 1] = '\0';
        h++;
    }
    if (!*h || !strcmp(h, "*"))
        h = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(h, colon + 1, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "listen address '%s': %s", hostport, gai_strerror(rc));
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
        snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(e));
        return -e;
    }
    return fd;
}

/* ---- responses ---- */

static const char *const ERROR_LABELS[] = {"400", "401", "404", "405", "413", "other"};

static void count_status(http_server_t *s, int status)
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

/* Queues a response. close_after forces the connection to close once it is written. */
static void respond(conn_t *c, int status, const char *ctype, const char *body, size_t len,
                    const char *extra, int close_after)
{
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

static void respond_json(conn_t *c, int status, const char *json, const char *extra,
                         int close_after)
{
    respond(c, status, "application/json", json, strlen(json), extra, close_after);
}

/* {"error":"...","index":i}; extra is header lines to add (NULL: those the status implies). */
static void respond_error_with(conn_t *c, int status, const char *error, long index,
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
    respond(c, status, "application/json", bad ? NULL : b->data, b->len, extra, close_after);
}

static void respond_error(conn_t *c, int status, const char *error, long index, int close_after)
{
    respond_error_with(c, status, error, index, NULL, close_after);
}

/* ---- the pipeline's answer ---- */

static void on_outcome(void *ctx, const pipeline_outcome_t *o)
{
    conn_t *c = ctx;
    c->pending = NULL;
    c->state = CONN_HEAD;
    switch (o->status) {
    case PIPELINE_OK: {
        buf_t *b = &c->srv->scratch;
        buf_reset(b);
        int bad = buf_puts(b, "{\"status\":\"broadcasted\",");
        if (c->ndjson) { /* arrays and NDJSON answer "ids", single events "id" */
            bad |= buf_puts(b, "\"ids\":[");
            for (size_t i = 0; i < o->nids; i++)
                bad |= buf_printf(b, "%s%lld", i ? "," : "", (long long)o->ids[i]);
            bad |= buf_puts(b, "]}");
        } else {
            bad |= buf_printf(b, "\"id\":%lld}", (long long)o->ids[0]);
        }
        /* A body that could not be built is never sent cut short (respond closes instead). */
        respond(c, 200, "application/json", bad ? NULL : b->data, b->len, NULL, 0);
        break;
    }
    case PIPELINE_INVALID:
        respond_error(c, 400, o->error ? o->error : "refused", o->index, 0);
        break;
    default:
        respond_error(c, 503, o->error ? o->error : "unavailable", -1, 0);
        break;
    }
    /* The request's bytes can go now; pipelined ones follow. */
    buf_consume(&c->in, c->consumed);
    c->consumed = 0;
    c->started_ms = 0;
    c->idle_since_ms = loop_now_ms(c->srv->o.loop);
    conn_flush(c);
}

/* ---- request handling ---- */

static int token_ok(http_server_t *s, const http1_request_t *req)
{
    const char *tok = s->o.token;
    if (!tok || !*tok)
        return 1;
    const http1_str_t *h = http1_header_get(&req->headers, "Authorization");
    const char *given;
    size_t glen;
    if (!h || auth_bearer(h->p, h->len, &given, &glen))
        return 0;
    return auth_token_equal(given, glen, tok);
}

/* Splits an NDJSON body into an array of values. Returns 0 or -EINVAL with err and *index. */
static int parse_ndjson(const char *p, size_t len, json_t **out, char *err, size_t errlen,
                        long *index)
{
    json_t *arr = json_array();
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t pos = 0;
    long n = 0;
    while (pos < len) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - p) : len;
        size_t l = end - pos;
        if (l && p[pos + l - 1] == '\r')
            l--;
        size_t k = 0;
        while (k < l && (p[pos + k] == ' ' || p[pos + k] == '\t'))
            k++;
        if (k < l) {
            if (n >= ADW_BATCH_MAX) {
                snprintf(err, errlen, "more than %d events in one NDJSON body", ADW_BATCH_MAX);
                *index = n;
                json_decref(arr);
                return -E2BIG;
            }
            json_t *v = NULL;
            char why[200];
            if (codec_json_parse(p + pos, l, &v, why, sizeof why)) {
                snprintf(err, errlen, "line of event %ld: %s", n, why);
                *index = n;
                json_decref(arr);
                return -EINVAL;
            }
            json_array_append_new(arr, v);
            n++;
        }
        pos = end + 1;
    }
    *out = arr;
    return 0;
}

static void handle_body(conn_t *c, const char *body, size_t len)
{
    http_server_t *s = c->srv;
    pipeline_t *p = s->o.pipeline;
    char err[256];
    long index = -1;
    json_t *value = NULL;
    int64_t now = timefmt_now_us();
    if (len == 0) {
        pipeline_count_rejected(p, "bad_json");
        respond_error(c, 400, "empty body: send an event as JSON", -1, 0);
        goto answered;
    }
    if (c->ndjson) {
        int rc = parse_ndjson(body, len, &value, err, sizeof err, &index);
        if (rc) {
            pipeline_count_rejected(p, rc == -E2BIG ? "batch_size" : "bad_json");
            respond_error(c, 400, err, index, 0);
            goto answered;
        }
        if (json_array_size(value) == 0) {
            json_decref(value);
            pipeline_count_rejected(p, "bad_json");
            respond_error(c, 400, "empty body: no event in the NDJSON", -1, 0);
            goto answered;
        }
    } else if (codec_json_parse(body, len, &value, err, sizeof err)) {
        pipeline_count_rejected(p, "bad_json");
        respond_error(c, 400, err, -1, 0);
        goto answered;
    }
    if (c->route == ROUTE_HOOKS) {
        if (!json_is_object(value)) {
            json_decref(value);
            pipeline_count_rejected(p, "schema");
            respond_error(c, 400, "a hook body must be a JSON object", -1, 0);
            goto answered;
        }
        json_t *ev = hook_to_event(value, c->adw_id[0] ? c->adw_id : NULL,
                                   c->step[0] ? c->step : NULL, err, sizeof err);
        json_decref(value);
        if (!ev) {
            pipeline_count_rejected(p, "schema");
            respond_error(c, 400, err, -1, 0);
            goto answered;
        }
        value = ev;
    }
    store_req_t *r = NULL;
    int is_batch = 0;
    int rc = pipeline_build(value, now, &r, &is_batch, err, sizeof err, &index);
    pipeline_count_received(p, "http", json_is_array(value) ? (int64_t)json_array_size(value) : 1);
    json_decref(value);
    if (rc) {
        pipeline_count_rejected(p, rc == -E2BIG ? "batch_size" : "schema");
        respond_error(c, 400, err, index, 0);
        goto answered;
    }
    if (is_batch)
        c->ndjson = 1; /* from here on: answer with "ids" */
    c->state = CONN_WAIT;
    c->pending = pipeline_submit(p, (uint64_t)(uintptr_t)c, r, on_outcome, c);
    if (!c->pending) {
        c->state = CONN_HEAD;
        respond_error(c, 503, "out of memory", -1, 1);
        goto answered;
    }
    return;
answered:
    buf_consume(&c->in, c->consumed);
    c->consumed = 0;
    c->started_ms = 0;
    c->idle_since_ms = loop_now_ms(s->o.loop);
}

static int content_type_ok(conn_t *c, const http1_request_t *req)
{
    const http1_str_t *ct = http1_header_get(&req->headers, "Content-Type");
    c->ndjson = 0;
    if (!ct || ct->len == 0)
        return 1; /* taken as JSON */
    size_t n = 0;
    while (n < ct->len && ct->p[n] != ';' && ct->p[n] != ' ')
        n++;
    http1_str_t mt = {ct->p, n};
    if (http1_str_eq_nocase(mt, "application/json") || http1_str_eq_nocase(mt, "text/json"))
        return 1;
    if (n > 5 && !strncasecmp(mt.p + n - 5, "+json", 5))
        return 1;
    if (c->route == ROUTE_EVENTS && (http1_str_eq_nocase(mt, "application/x-ndjson") ||
                                     http1_str_eq_nocase(mt, "application/ndjson") ||
                                     http1_str_eq_nocase(mt, "application/jsonl") ||
                                     http1_str_eq_nocase(mt, "application/x-jsonlines"))) {
        c->ndjson = 1;
        return 1;
    }
    return 0;
}

/* Reads ?adw_id=&step= or the X-ADW-Id and X-ADW-Step headers. Returns 0 or -1 (answered). */
static int hook_params(conn_t *c, const http1_request_t *req)
{
    c->adw_id[0] = c->step[0] = '\0';
    size_t n;
    if (req->query.p) {
        int rc = http1_query_get(req->query, "adw_id", c->adw_id, sizeof c->adw_id, &n);
        if (rc == -ENOENT || (rc == 0 && n == 0))
            c->adw_id[0] = '\0';
        else if (rc || !event_adw_id_valid(c->adw_id, n)) {
            respond_error(c, 400, "adw_id must be 1-64 characters of [A-Za-z0-9._:-]", -1, 1);
            return -1;
        }
        rc = http1_query_get(req->query, "step", c->step, sizeof c->step, &n);
        if (rc == -ENOENT || (rc == 0 && n == 0))
            c->step[0] = '\0';
        else if (rc || n > ADW_STEP_MAX) {
            respond_error(c, 400, "step must be at most 64 bytes", -1, 1);
            return -1;
        }
    }
    const http1_str_t *h = http1_header_get(&req->headers, "X-ADW-Id");
    if (h && h->len && !c->adw_id[0]) { /* empty: absent (an unset variable in a hook) */
        if (!event_adw_id_valid(h->p, h->len)) {
            respond_error(c, 400, "X-ADW-Id must be 1-64 characters of [A-Za-z0-9._:-]", -1, 1);
            return -1;
        }
        memcpy(c->adw_id, h->p, h->len);
        c->adw_id[h->len] = '\0';
    }
    h = http1_header_get(&req->headers, "X-ADW-Step");
    if (h && h->len && !c->step[0]) {
        if (h->len > ADW_STEP_MAX) {
            respond_error(c, 400, "X-ADW-Step must be at most 64 bytes", -1, 1);
            return -1;
        }
        memcpy(c->step, h->p, h->len);
        c->step[h->len] = '\0';
    }
    return 0;
}

static void handle_get(conn_t *c, const char *path)
{
    http_server_t *s = c->srv;
    int has_body = c->req.content_length > 0 || c->req.chunked;
    if (!strcmp(path, "/healthz")) {
        respond_json(c, 200, "{\"status\":\"ok\"}", NULL, has_body);
    } else if (!strcmp(path, "/readyz")) {
        char why[200] = "";
        int ready = s->o.ready ? s->o.ready(s->o.ready_arg, why, sizeof why) : 1;
        buf_t *b = &s->scratch;
        buf_reset(b);
        buf_printf(b, "{\"status\":\"%s\"", ready ? "ready" : "unavailable");
        if (!ready) {
            buf_puts(b, ",\"reason\":");
            jsonw_string(b, why, strlen(why));
        }
        buf_putc(b, '}');
        respond(c, ready ? 200 : 503, "application/json", b->data, b->len,
                ready ? NULL : "Retry-After: 1\r\n", has_body);
    } else if (!strcmp(path, "/metrics")) {
        buf_t *b = &s->scratch;
        buf_reset(b);
        metric_set(s->m_connections, (int64_t)s->nconns);
        metrics_render(s->o.metrics, b);
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b->data, b->len, NULL,
                has_body);
    }
    buf_consume(&c->in, c->consumed);
    c->consumed = 0;
    c->started_ms = 0;
}

/* Routes a complete head. Returns 1 when the body is to be read, 0 when answered. */
static int route(conn_t *c)
{
    http_server_t *s = c->srv;
    http1_request_t *req = &c->req;
    char path[1024];
    metric_add(s->m_requests, 1);
    c->keep_alive = req->keep_alive;
    c->consumed = req->head_len;
    if (http1_path_decode(req->path, path, sizeof path, NULL)) {
        respond_error(c, 400, "malformed request path", -1, 1);
        return 0;
    }
    int is_get = http1_str_eq(req->method, "GET") || http1_str_eq(req->method, "HEAD");
    int is_post = http1_str_eq(req->method, "POST");
    int get_route =
        !strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics");
    int post_route = !strcmp(path, "/api/events") || !strcmp(path, "/api/events/broadcast") ||
                     !strcmp(path, "/api/hooks");
    int has_body = req->content_length > 0 || req->chunked;
    if (get_route) {
        if (!is_get) {
            respond_error_with(c, 405, "method not allowed: use GET", -1, "Allow: GET, HEAD\r\n",
                               has_body);
            return 0;
        }
        handle_get(c, path);
        return 0;
    }
    if (!post_route) {
        respond_error(c, 404, "not found", -1, has_body);
        return 0;
    }
    if (!is_post) {
        respond_error_with(c, 405, "method not allowed: use POST", -1, "Allow: POST\r\n", has_body);
        return 0;
    }
    c->route = !strcmp(path, "/api/hooks") ? ROUTE_HOOKS : ROUTE_EVENTS;
    if (!token_ok(s, req)) {
        pipeline_count_rejected(s->o.pipeline, "unauthorized");
        respond_error(c, 401, "missing or wrong bearer token", -1, 1);
        return 0;
    }
    if (req->content_length < 0 && !req->chunked) {
        pipeline_count_rejected(s->o.pipeline, "bad_request");
        respond_error(c, 411, "a POST needs Content-Length or chunked transfer encoding", -1, 1);
        return 0;
    }
    if (req->content_length > s->o.max_body) {
        pipeline_count_rejected(s->o.pipeline, "too_large");
        char msg[128];
        snprintf(msg, sizeof msg, "body of %lld bytes is over the limit of %lld",
                 (long long)req->content_length, (long long)s->o.max_body);
        respond_error(c, 413, msg, -1, 1);
        return 0;
    }
    if (!content_type_ok(c, req)) {
        pipeline_count_rejected(s->o.pipeline, "bad_request");
        respond_error(c, 415,
                      "unsupported Content-Type: use application/json or application/x-ndjson", -1,
                      1);
        return 0;
    }
    if (c->route == ROUTE_HOOKS && hook_params(c, req))
        return 0;
    if (req->expect_continue)
        buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
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

/* Works through the bytes received: heads, bodies, pipelined requests. */
static void conn_process(conn_t *c)
{
    http_server_t *s = c->srv;
    for (;;) {
        if (c->state == CONN_WAIT || c->state == CONN_CLOSING)
            return;
        if (c->state == CONN_HEAD) {
            if (c->in.len == 0)
                return;
            if (s->draining) {
                c->keep_alive = 0;
                respond_error(c, 503, "shutting down, retry later", -1, 1);
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
                pipeline_count_rejected(s->o.pipeline, "bad_request");
                respond_error(c, herr.status, herr.reason, -1, 1);
                return;
            }
            if (!route(c)) {
                /* Answered from the head alone: drop the request's bytes (unless closing). */
                if (c->state == CONN_HEAD) {
                    buf_consume(&c->in, c->consumed);
                    c->consumed = 0;
                    c->started_ms = 0;
                    c->idle_since_ms = loop_now_ms(s->o.loop);
                }
                continue;
            }
        }
        if (c->state == CONN_BODY) {
            size_t need = c->req.head_len + (size_t)c->req.content_length;
            if (c->in.len < need)
                return;
            c->consumed = need;
            handle_body(c, c->in.data + c->req.head_len, (size_t)c->req.content_length);
            if (c->state != CONN_WAIT && c->state != CONN_CLOSING)
                c->state = CONN_HEAD;
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
                    pipeline_count_rejected(s->o.pipeline, "too_large");
                respond_error(c, herr.status, herr.reason, -1, 1);
                return;
            }
            handle_body(c, c->body.data ? c->body.data : "", c->body.len);
            if (c->state != CONN_WAIT && c->state != CONN_CLOSING)
                c->state = CONN_HEAD;
            continue;
        }
    }
}

/* ---- socket I/O ---- */

static void on_conn(loop_t *loop, int fd, int mask, void *arg);

/* Turns a failed SSL call's result into the socket convention: -1 with errno EAGAIN (and
 * *want set to what it waits for), 0 at a clean end, or -1 with another errno. */
static ssize_t tls_result(conn_t *c, int rc, int *want)
{
    int e = SSL_get_error(c->ssl, rc);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = LOOP_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = LOOP_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (!errno)
            errno = ECONNRESET;
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}

/* recv(2) for plain and TLS connections alike. */
static ssize_t conn_recv(conn_t *c, char *p, size_t len)
{
    if (!c->ssl)
        return recv(c->fd, p, len, 0);
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    c->tls_rd_want = 0;
    return n > 0 ? n : tls_result(c, n, &c->tls_rd_want);
}

/* send(2) for plain and TLS connections alike. */
static ssize_t conn_send(conn_t *c, const char *p, size_t len)
{
    if (!c->ssl)
        return send(c->fd, p, len, MSG_NOSIGNAL);
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
    c->tls_wr_want = 0;
    return n > 0 ? n : tls_result(c, n, &c->tls_wr_want);
}

/* Moves the TLS handshake on. Returns 1 when it is done, 0 while it waits (the connection is
 * watched for what it needs), -1 when it failed and the connection was closed. */
static int conn_handshake(conn_t *c)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_accept(c->ssl);
    if (rc == 1) {
        c->handshaking = 0;
        c->started_ms = 0;
        c->idle_since_ms = loop_now_ms(c->srv->o.loop);
        return 1;
    }
    int want = 0;
    if (tls_result(c, rc, &want) < 0 && errno == EAGAIN) {
        if (want != c->mask) {
            c->mask = want;
            loop_watch(c->srv->o.loop, c->fd, want, on_conn, c);
        }
        return 0;
    }
    log_debug("http: TLS handshake failed (%s); connection closed", strerror(errno));
    metric_add(c->srv->m_tls_failed, 1);
    conn_close(c);
    return -1;
}

/* Watches for what the connection needs now: input unless its request is with the pipeline
 * (so a pipelining client cannot make it buffer without bound), output while any is queued. */
static void conn_rearm(conn_t *c)
{
    int mask = (c->state == CONN_WAIT || c->state == CONN_CLOSING) ? 0 : LOOP_READ;
    if (c->out.len > c->out_off)
        mask |= LOOP_WRITE;
    /* TLS: a read may wait for the socket to take bytes, a write for bytes to come. */
    mask |= (c->tls_rd_want & LOOP_WRITE) | (c->tls_wr_want & LOOP_READ);
    if (mask != c->mask) {
        c->mask = mask;
        loop_watch(c->srv->o.loop, c->fd, mask, on_conn, c);
    }
}

static void conn_flush(conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = conn_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
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
    conn_t *c = arg;
    http_server_t *s = c->srv;
    if (c->handshaking) {
        if (conn_handshake(c) <= 0)
            return;
        mask = LOOP_READ; /* the first request may have come with the handshake's end */
    }
    if (c->ssl && (mask & LOOP_WRITE) && (c->tls_rd_want & LOOP_WRITE))
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
            ssize_t n = conn_recv(c, c->in.data + c->in.len, HTTP_READ_CHUNK);
            if (n > 0) {
                c->in.len += (size_t)n;
                c->in.data[c->in.len] = '\0';
                /* TLS hands out one record at a time: read on until it would block. */
                if ((size_t)n < HTTP_READ_CHUNK && !c->ssl)
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

static void conn_close(conn_t *c)
{
    http_server_t *s = c->srv;
    if (c->pending)
        pipeline_cancel(c->pending);
    loop_unwatch(s->o.loop, c->fd);
    if (c->ssl) {
        if (!c->handshaking) { /* a close_notify if the socket takes it; never waits */
            ERR_clear_error();
            SSL_shutdown(c->ssl);
        }
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->body);
    free(c);
}

static void on_accept(loop_t *loop, int fd, int mask, void *arg)
{
    (void)mask;
    http_server_t *s = arg;
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
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                       "application/json\r\nContent-Length: 43\r\nRetry-After: "
                                       "1\r\nConnection: close\r\n\r\n{\"error\":\"too many "
                                       "connections, retry\"}";
            ssize_t rc = send(cfd, busy, sizeof busy - 1, MSG_NOSIGNAL);
            (void)rc;
            close(cfd);
            continue;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(cfd);
            continue;
        }
        c->srv = s;
        c->fd = cfd;
        c->state = CONN_HEAD;
        c->idle_since_ms = loop_now_ms(loop);
        buf_init(&c->in, 0);
        buf_init(&c->out, 0);
        buf_init(&c->body, (size_t)s->o.max_body);
        http1_request_init(&c->req);
        c->mask = LOOP_READ;
        if (s->o.tls) {
            c->ssl = SSL_new(s->o.tls);
            if (!c->ssl || !SSL_set_fd(c->ssl, cfd)) {
                ERR_clear_error();
                SSL_free(c->ssl);
                close(cfd);
                free(c);
                continue;
            }
            c->handshaking = 1;
            c->started_ms = loop_now_ms(loop); /* the handshake runs on the request's clock */
        }
        if (loop_watch(loop, cfd, LOOP_READ, on_conn, c)) {
            SSL_free(c->ssl);
            close(cfd);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
    }
}

/* Every half second: requests that take too long get 408; idle connections are closed. */
static void on_tick(loop_t *loop, void *arg)
{
    http_server_t *s = arg;
    int64_t now = loop_now_ms(loop);
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        if (c->handshaking) {
            if (now - c->started_ms > s->o.request_timeout_ms) {
                log_debug("http: TLS handshake not done in time; connection closed");
                metric_add(s->m_tls_timeout, 1);
                conn_close(c);
            }
        } else if (c->state == CONN_HEAD || c->state == CONN_BODY || c->state == CONN_CHUNKED) {
            if (c->started_ms && now - c->started_ms > s->o.request_timeout_ms) {
                respond_error(c, 408, "request not received in time", -1, 1);
                conn_flush(c);
            } else if (!c->started_ms && c->in.len == 0 && c->out.len == 0 &&
                       now - c->idle_since_ms > s->o.idle_timeout_ms) {
                conn_close(c);
            }
        }
        c = next;
    }
}

http_server_t *http_new(const http_options_t *o, char *err, size_t errlen)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    buf_init(&s->scratch, 0);
    s->lfd = http_listen(o->listen, err, errlen);
    if (s->lfd < 0)
        goto fail;
    if (loop_watch(o->loop, s->lfd, LOOP_READ, on_accept, s) ||
        loop_timer(o->loop, 500, on_tick, s) < 0) {
        snprintf(err, errlen, "cannot watch the HTTP listener");
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

void http_drain(http_server_t *s)
{
    if (s->draining)
        return;
    s->draining = 1;
    loop_unwatch(s->o.loop, s->lfd);
    close(s->lfd);
    s->lfd = -1;
    /* Idle connections go now; busy ones close after their answer. */
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        if (c->state == CONN_HEAD && c->in.len == 0 && c->out.len == 0)
            conn_close(c);
        else
            c->keep_alive = 0;
        c = next;
    }
}

size_t http_busy(const http_server_t *s)
{
    size_t n = 0;
    for (conn_t *c = s->conns; c; c = c->next)
        if (c->state == CONN_WAIT || c->out.len > c->out_off)
            n++;
    return n;
}

void http_destroy(http_server_t **sp)
{
    if (!sp || !*sp)
        return;
    http_server_t *s = *sp;
    while (s->conns)
        conn_close(s->conns);
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
