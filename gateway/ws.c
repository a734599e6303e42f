#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adw_limits.h"
#include "api.h"
#include "auth.h"
#include "codec.h"
#include "db.h"
#include "fanout.h"
#include "filter.h"
#include "jsonw.h"
#include "log.h"
#include "replay.h"
#include "rxguard.h"
#include "timefmt.h"
#include "tls.h"
#include "tokens.h"
#include "utf8.h"
#include "webdir.h"

_Static_assert(LWS_PRE <= FRAME_HEADROOM, "frames need LWS_PRE bytes of headroom");
_Static_assert(10 <= FRAME_HEADROOM, "frames need room for the longest frame header");

#define WS_PATH "/ws/events"
#define WS_TICK_US 250000   /* timer resolution for heartbeats and timeouts */
#define WS_HTTP_CHUNK 32768 /* bytes of a response body per write */
#define WS_WRITE_MAX 65536  /* bytes of queued messages written at once to a client */
#define WS_ARGS_MAX 32      /* query parameters looked at */
#define WS_ARGBUF 16384     /* bytes of decoded query parameters */
#define WS_TOKEN_MAX 1024   /* longest token accepted */
#define WS_CLOSE_KILL_S 10  /* a client told to close is cut off after this */
#define WS_DRAIN_SLICE 64   /* events moved into the fanout per turn of the loop */
#define WS_FD_RESERVE 64    /* descriptors kept for ZeroMQ, PostgreSQL and the rest */
#define WS_BAD_BURST 30     /* client messages answered with an error, at once, before 1008 */
#define WS_BAD_PER_S 1      /* ... and the rate at which that allowance comes back */

/* One of these per connection: lws allocates it zeroed, and again when HTTP turns WebSocket. */
typedef struct ws_session_t {
    struct lws *wsi;
    /* WebSocket */
    int is_ws;
    fanout_client_t fc;         /* registered with the fanout while is_ws */
    filter_t qfilter;           /* the filter from the query string, until ESTABLISHED */
    const filter_list_t *scope; /* its read token's adw_id prefixes (NULL: every run) */
    int has_since;
    int64_t since;
    buf_t rx; /* the client message being received */
    int rx_binary;
    int64_t last_rx_us; /* when the client last sent anything */
    int ping_due;       /* a protocol ping is to be written */
    int kill_armed;     /* a hard timeout is set after a close was decided */
    int close_logged;
    int64_t bad_level; /* bad messages not yet forgiven, in millionths (WS_BAD_*) */
    int64_t bad_at_us; /* when bad_level was last brought up to date */
    replay_t *replay;  /* the replay running for it, if any */
    /* HTTP */
    int responding; /* a response is ready to write */
    int headers_sent;
    int head; /* a HEAD request: headers only */
    int status;
    const char *ctype;
    const char *extra_header; /* one more "Name:" header, or NULL */
    const char *extra_value;
    char *body; /* owned */
    size_t len, off;
    api_job_t *job; /* the API query in flight */
} ws_session_t;

struct ws_server_t {
    ws_options_t o;
    tokens_t *tokens;
    char *origins;
    char web_root[PATH_MAX];
    int have_web;
    struct lws_context *ctx;
    fanout_t *fanout;
    replayer_t *replayer;
    sub_t *sub;
    sub_item_t *inbox; /* taken from sub, not yet published */
    dbpool_t *pool;
    lws_sorted_usec_list_t tick;
    int64_t next_ping_us;
    int shutting_down;
    unsigned char *wbuf; /* LWS_PRE + WS_WRITE_MAX, for HTTP bodies and coalesced messages */
    char argbuf[WS_ARGBUF];
    api_param_t args[WS_ARGS_MAX];
    size_t nargs;
    metric_t *m_deliveries, *m_messages, *m_connections, *m_hb_timeouts, *m_too_big;
    metric_t *m_bad_messages, *m_unmasked;
    metric_t *m_rej_auth, *m_rej_origin, *m_rej_full, *m_rej_unready, *m_rej_bad;
    metric_t *m_http;
};

/* How many descriptors libwebsockets may use: max_clients plus room for HTTP, within the
 * process's descriptor limit (the soft limit raised toward the hard one first) less
 * WS_FD_RESERVE. libwebsockets stops accepting at this count
 * (its listener is left alone until a connection closes); without a bound below the real
 * limit, accept() fails with EMFILE and the listener, still readable, spins the loop. Lowers
 * s->o.max_clients so that the upgrades past it are answered 503 and closed while there are
 * descriptors to do so. */
static unsigned ws_fd_budget(ws_server_t *s)
{
    unsigned want = (unsigned)s->o.max_clients + 1024;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return want;
    if (rl.rlim_cur < want + WS_FD_RESERVE && rl.rlim_max > rl.rlim_cur) {
        /* The soft limit is often far below the hard one (1024 and 524288 under systemd). */
        rlim_t goal = want + WS_FD_RESERVE;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > goal ? goal : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t cur = rl.rlim_cur;
    unsigned avail =
        cur > 4 * WS_FD_RESERVE ? (unsigned)(cur - WS_FD_RESERVE) : (unsigned)(cur / 2);
    if (want <= avail)
        return want;
    unsigned spare = avail / 8 > 16 ? avail / 8 : 16; /* requests and upgrades being answered */
    int clients = avail > spare ? (int)(avail - spare) : 1;
    if (clients < s->o.max_clients) {
        log_warn("descriptor limit %llu: at most %d WebSocket clients (ADW_GATEWAY_MAX_CLIENTS "
                 "is %d)",
                 (unsigned long long)cur, clients, s->o.max_clients);
        s->o.max_clients = clients;
    }
    return avail;
}

static ws_server_t *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static ws_session_t *session_of_client(fanout_client_t *c)
{
    return (ws_session_t *)((char *)c - offsetof(ws_session_t, fc));
}

static void now_ts(char out[TIMEFMT_LEN])
{
    timefmt_format(timefmt_now_us(), out);
}

/* ------------------------------------------------------------------------------------------ */
/* Request inspection */

/* Copies the decoded query parameters into s->args. Returns 0, or -E2BIG when they do not fit. */
static int read_args(ws_server_t *s, struct lws *wsi)
{
    s->nargs = 0;
    size_t used = 0;
    for (int i = 0; i < 256; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen < 0 || used + (size_t)flen + 1 > sizeof s->argbuf)
            return -E2BIG;
        char *p = s->argbuf + used;
        int n = lws_hdr_copy_fragment(wsi, p, (int)(sizeof s->argbuf - used),
                                      WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        used += (size_t)n + 1;
        if (!n)
            continue;
        if (s->nargs == WS_ARGS_MAX)
            return -E2BIG;
        char *eq = strchr(p, '=');
        s->args[s->nargs].name = p;
        s->args[s->nargs].value = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        s->nargs++;
    }
    return 0;
}

static const char *arg(const ws_server_t *s, const char *name)
{
    for (size_t i = 0; i < s->nargs; i++)
        if (!strcmp(s->args[i].name, name))
            return s->args[i].value;
    return NULL;
}

/* What the request's token grants: the query parameter token, else an Authorization Bearer
 * header. On TOKENS_SCOPED sets *scope (owned by the server). */
static tokens_access_t authorize(ws_server_t *s, struct lws *wsi, const filter_list_t **scope)
{
    *scope = NULL;
    if (!tokens_required(s->tokens))
        return TOKENS_FULL;
    const char *q = arg(s, "token");
    if (q) {
        tokens_access_t a = tokens_check(s->tokens, q, strlen(q), scope);
        if (a != TOKENS_REFUSED)
            return a;
    }
    char h[WS_TOKEN_MAX + 16];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    const char *t;
    size_t tl;
    if (n <= 0 || n >= (int)sizeof h ||
        lws_hdr_copy(wsi, h, sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
        auth_bearer(h, strlen(h), &t, &tl))
        return tokens_check(s->tokens, NULL, 0, scope);
    tokens_access_t a = tokens_check(s->tokens, t, tl, scope);
    explicit_bzero(h, sizeof h);
    return a;
}

/* Splits an origin "scheme://host[:port]" into its host (without brackets or port). */
static int origin_host(const char *origin, char *host, size_t hostlen, char *scheme, size_t slen)
{
    const char *sep = strstr(origin, "://");
    if (!sep || (size_t)(sep - origin) >= slen)
        return -1;
    memcpy(scheme, origin, (size_t)(sep - origin));
    scheme[sep - origin] = '\0';
    const char *h = sep + 3, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end)
            return -1;
        h++;
    } else {
        end = h + strcspn(h, ":/");
    }
    if ((size_t)(end - h) >= hostlen)
        return -1;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    return 0;
}

/* The Origin policy (see ws.h). Requests without an Origin header (not from a browser) pass. */
static int origin_allowed(ws_server_t *s, struct lws *wsi)
{
    char origin[512], hosthdr[300];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return 1;
    if (n >= (int)sizeof origin || lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return 0;
    size_t ol = strlen(origin);
    while (ol && origin[ol - 1] == '/')
        origin[--ol] = '\0';
    char scheme[16], host[256];
    if (origin_host(origin, host, sizeof host, scheme, sizeof scheme))
        return 0;
    int http = !strcasecmp(scheme, "http") || !strcasecmp(scheme, "https");
    /* Same origin: the authority after the scheme equals the Host header. */
    if (http && lws_hdr_copy(wsi, hosthdr, sizeof hosthdr, WSI_TOKEN_HOST) > 0 &&
        !strcasecmp(strstr(origin, "://") + 3, hosthdr))
        return 1;
    if (!s->origins) {
        return http && (!strcasecmp(host, "localhost") || !strcmp(host, "127.0.0.1") ||
                        !strcmp(host, "::1"));
    }
    if (!strcmp(s->origins, "*"))
        return 1;
    const char *p = s->origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t l = len;
        while (l && (p[l - 1] == ' ' || p[l - 1] == '/'))
            l--;
        if (l && l == ol && !strncasecmp(p, origin, l))
            return 1;
        p += len;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP responses */

/* Prepares a response for the HTTP writeable callback; takes body (malloc'd or NULL). */
static void respond(struct lws *wsi, ws_session_t *ss, int status, const char *ctype, char *body,
                    size_t len)
{
    free(ss->body);
    ss->responding = 1;
    ss->headers_sent = 0;
    ss->status = status;
    ss->ctype = ctype;
    ss->body = body;
    ss->len = body ? len : 0;
    ss->off = 0;
    lws_callback_on_writable(wsi);
}

static void respond_error(struct lws *wsi, ws_session_t *ss, int status, const char *msg)
{
    size_t len = 0;
    char *body = api_error_body(msg, &len);
    respond(wsi, ss, body ? status : 500, "application/json", body, len);
}

static void respond_text(struct lws *wsi, ws_session_t *ss, int status, const char *ctype,
                         const char *text)
{
    char *body = strdup(text);
    respond(wsi, ss, status, ctype, body, body ? strlen(text) : 0);
}

/* Writes a whole response with "connection: close" in one write, for refusals that cannot wait
 * for a writeable callback: during the upgrade (lws has not taken the request's HTTP version
 * yet, so the status line is written here) and for requests with a body we will not read.
 * Returns 1 (the transaction is complete) or -1 to hang up. */
static int reply_whole(struct lws *wsi, int status, const char *msg, const char *hname,
                       const char *hvalue)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {{400, "Bad Request"},        {401, "Unauthorized"}, {403, "Forbidden"},
                   {405, "Method Not Allowed"}, {404, "Not Found"},    {414, "URI Too Long"},
                   {503, "Service Unavailable"}};
    const char *text = "Error";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == status)
            text = reasons[i].text;
    size_t blen = 0;
    char *body = api_error_body(msg, &blen);
    unsigned char buf[LWS_PRE + 1024];
    char *start = (char *)buf + LWS_PRE;
    int n =
        body
            ? snprintf(start, sizeof buf - LWS_PRE,
                       "HTTP/1.1 %d %s\r\nserver: adw-gateway\r\ncontent-type: application/json\r\n"
                       "content-length: %zu\r\ncache-control: no-store\r\n"
                       "connection: close\r\n%s%s%s%s\r\n%s",
                       status, text, blen, hname ? hname : "", hname ? " " : "",
                       hname ? hvalue : "", hname ? "\r\n" : "", body)
            : -1;
    free(body);
    if (n < 0 || (size_t)n >= sizeof buf - LWS_PRE)
        return -1;
    if (lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP) != n)
        return -1;
    return 1;
}

/* HTTP writeable: headers first, then the body in chunks, one write per callback. */
static int http_writeable(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    if (!ss->responding)
        return 0;
    if (!ss->headers_sent) {
        unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                           *end = buf + sizeof buf - 1;
        if (lws_add_http_common_headers(wsi, (unsigned)ss->status, ss->ctype, ss->len, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            (ss->extra_header &&
             lws_add_http_header_by_name(wsi, (const unsigned char *)ss->extra_header,
                                         (const unsigned char *)ss->extra_value,
                                         (int)strlen(ss->extra_value), &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        ss->headers_sent = 1;
        if (ss->len && !ss->head) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        size_t n = ss->len - ss->off;
        if (n > WS_HTTP_CHUNK)
            n = WS_HTTP_CHUNK;
        memcpy(s->wbuf + LWS_PRE, ss->body + ss->off, n);
        int final = ss->off + n == ss->len;
        if (lws_write(wsi, s->wbuf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n)
            return -1;
        ss->off += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    ss->responding = 0;
    free(ss->body);
    ss->body = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void api_reply(void *user, int status, char *body, size_t len)
{
    ws_session_t *ss = user;
    ss->job = NULL;
    respond(ss->wsi, ss, status, "application/json", body, len);
}

static void serve_readyz(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    int receiving = s->sub && sub_receiving(s->sub);
    int db = s->sub && sub_db_ok(s->sub);
    int init = fanout_initialized(s->fanout);
    if (receiving && db && init && !s->shutting_down) {
        respond_text(wsi, ss, 200, "application/json", "{\"status\":\"ready\"}");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "not ready:%s%s%s%s", s->shutting_down ? " shutting down;" : "",
             receiving ? "" : " no messages from ingest;", db ? "" : " database unreachable;",
             init ? "" : " position unknown;");
    msg[strlen(msg) - 1] = '\0';
    respond_error(wsi, ss, 503, msg);
}

static int serve_http(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path)
{
    char *uri = NULL;
    int ulen = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    api_job_t *stale = ss->job;
    ss->job = NULL;
    api_cancel(stale);
    ss->wsi = wsi;
    ss->extra_header = NULL;
    metric_add(s->m_http, 1);
    ss->head = method == LWSHUMETH_HEAD;
    if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD) {
        /* lws would wait for the body before a writeable callback: answer now, then close. */
        if (reply_whole(wsi, 405, "method not allowed", "allow:", "GET") < 0)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (read_args(s, wsi)) {
        respond_error(wsi, ss, 414, "query string too long");
        return 0;
    }
    if (!strcmp(path, "/healthz")) {
        respond_text(wsi, ss, 200, "application/json", "{\"status\":\"ok\"}");
    } else if (!strcmp(path, "/readyz")) {
        serve_readyz(s, wsi, ss);
    } else if (!strcmp(path, "/metrics")) {
        buf_t b;
        buf_init(&b, 0);
        if (metrics_render(s->o.metrics, &b)) {
            buf_free(&b);
            respond_error(wsi, ss, 500, "out of memory");
        } else {
            size_t len = 0;
            char *body = buf_steal(&b, &len);
            respond(wsi, ss, 200, "text/plain; version=0.0.4", body, len);
        }
    } else if (!strcmp(path, WS_PATH)) {
        ss->extra_header = "upgrade:";
        ss->extra_value = "websocket";
        respond_error(wsi, ss, 426, "this endpoint speaks WebSocket only");
    } else if (!strncmp(path, "/api/", 5) || !strcmp(path, "/api")) {
        const filter_list_t *scope;
        if (authorize(s, wsi, &scope) == TOKENS_REFUSED) {
            ss->extra_header = "www-authenticate:";
            ss->extra_value = "Bearer";
            respond_error(wsi, ss, 401, "missing or wrong token");
            return 0;
        }
        api_query_t q;
        char err[256];
        int st = api_parse(path, s->args, s->nargs, &q, err, sizeof err);
        q.filter.scope = scope;
        if (!st && filter_check_scope(&q.filter, err, sizeof err))
            st = 403;
        if (st) {
            api_query_free(&q);
            respond_error(wsi, ss, st, err);
            return 0;
        }
        ss->job = s->shutting_down ? NULL : api_submit(s->pool, &q, api_reply, ss);
        api_query_free(&q);
        if (!ss->job) {
            ss->extra_header = "retry-after:";
            ss->extra_value = "1";
            respond_error(wsi, ss, 503, "too busy; try again");
            return 0;
        }
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, DB_STATEMENT_TIMEOUT_MS / 1000 + 10);
    } else {
        char file[PATH_MAX];
        if (!s->have_web || webdir_resolve(s->web_root, path, file, sizeof file)) {
            respond_error(wsi, ss, 404, "not found");
            return 0;
        }
        int n = lws_serve_http_file(wsi, file, webdir_mime(file), NULL, 0);
        if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* WebSocket */

static void send_text(ws_server_t *s, ws_session_t *ss, const char *text, size_t len)
{
    frame_t *f = frame_new_text(text, len);
    if (!f) {
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
        return;
    }
    fanout_send(s->fanout, &ss->fc, f);
}

/* Counts a client message answered with an error against the client's allowance: WS_BAD_BURST
 * at once, coming back at WS_BAD_PER_S a second. A client over it is closed with 1008. */
static void count_bad_message(ws_server_t *s, ws_session_t *ss)
{
    int64_t now = timefmt_mono_us();
    ss->bad_level -= (now - ss->bad_at_us) * WS_BAD_PER_S;
    if (ss->bad_level < 0)
        ss->bad_level = 0;
    ss->bad_at_us = now;
    ss->bad_level += 1000000;
    if (ss->bad_level > (int64_t)WS_BAD_BURST * 1000000) {
        metric_add(s->m_bad_messages, 1);
        fanout_close(s->fanout, &ss->fc, WS_CLOSE_POLICY, "too many bad messages");
    }
}

/* Sends {"type":"error","error":msg} for a client message it could not take. */
static void send_error(ws_server_t *s, ws_session_t *ss, const char *msg)
{
    buf_t b;
    buf_init(&b, 0);
    if (buf_puts(&b, "{\"type\":\"error\",\"error\":") || jsonw_string(&b, msg, strlen(msg)) ||
        buf_putc(&b, '}'))
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
    else
        send_text(s, ss, b.data, b.len);
    buf_free(&b);
    count_bad_message(s, ss);
}

static void send_hello(ws_server_t *s, ws_session_t *ss)
{
    char msg[256];
    int n =
        snprintf(msg, sizeof msg,
                 "{\"type\":\"hello\",\"version\":\"%s\",\"last_id\":%" PRId64 ",\"epoch\":%" PRId64
                 ",\"heartbeat_s\":%d}",
                 ADW_VERSION, fanout_last_id(s->fanout), fanout_epoch(s->fanout), s->o.heartbeat_s);
    send_text(s, ss, msg, (size_t)n);
}

/* Parses the query string's filter and since into dst/since. Returns 0 or -EINVAL (reason in
 * err). */
static int query_filter(ws_server_t *s, filter_t *dst, int *has_since, int64_t *since, char *err,
                        size_t errlen)
{
    filter_t f;
    filter_init(&f);
    *has_since = 0;
    for (size_t i = 0; i < s->nargs; i++) {
        int k = filter_key_from_name(s->args[i].name);
        const char *v = s->args[i].value;
        if (k >= 0) {
            if (filter_set_csv(&f, (filter_key_t)k, v, strlen(v), err, errlen))
                goto fail;
        } else if (!strcmp(s->args[i].name, "since")) {
            char *end;
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (*v < '0' || *v > '9' || *end || errno || x < 0) {
                snprintf(err, errlen, "since must be an event id (an integer >= 0)");
                goto fail;
            }
            *has_since = 1;
            *since = x;
        }
    }
    filter_move(dst, &f);
    return 0;
fail:
    filter_free(&f);
    return -EINVAL;
}

static void handle_subscribe(ws_server_t *s, ws_session_t *ss, json_t *msg)
{
    json_t *filters = json_object_get(msg, "filters");
    json_t *since = json_object_get(msg, "since");
    if (since && !json_is_null(since) &&
        (!json_is_integer(since) || json_integer_value(since) < 0)) {
        send_error(s, ss, "since must be an event id (an integer >= 0)");
        return;
    }
    filter_t f;
    filter_init(&f);
    f.scope = ss->scope;
    char err[200];
    if (filter_set_json(&f, filters, err, sizeof err) || filter_check_scope(&f, err, sizeof err)) {
        filter_free(&f);
        send_error(s, ss, err);
        return;
    }
    int has_since = since && json_is_integer(since);
    json_t *echo = filter_to_json(&f);
    json_t *reply =
        echo ? json_pack("{sssOso}", "type", "subscribed", "filters", echo, "since",
                         has_since ? json_integer(json_integer_value(since)) : json_null())
             : NULL;
    buf_t b;
    buf_init(&b, 0);
    if (!reply || jsonw_value(&b, reply)) {
        fanout_close(s->fanout, &ss->fc, 1011, "out of memory");
    } else {
        filter_move(&ss->fc.filter, &f);
        send_text(s, ss, b.data, b.len);
        if (has_since)
            replay_start(s->replayer, &ss->fc, &ss->fc.filter, json_integer_value(since),
                         &ss->replay);
    }
    buf_free(&b);
    json_decref(reply);
    json_decref(echo);
    filter_free(&f);
}

static void handle_message(ws_server_t *s, ws_session_t *ss, const char *data, size_t len)
{
    if (ss->rx_binary) {
        send_error(s, ss, "binary messages are not accepted; send JSON text");
        return;
    }
    json_t *msg = NULL;
    char err[200], why[256];
    if (codec_json_parse(data, len, &msg, err, sizeof err)) {
        snprintf(why, sizeof why, "invalid JSON: %s", err);
        send_error(s, ss, why);
        return;
    }
    if (!json_is_object(msg)) {
        send_error(s, ss, "a message must be a JSON object with an action");
        json_decref(msg);
        return;
    }
    json_t *a = json_object_get(msg, "action");
    if (!a)
        a = json_object_get(msg, "type");
    if (!json_is_string(a)) {
        send_error(s, ss, a ? "action must be a string" : "missing action");
        json_decref(msg);
        return;
    }
    const char *action = json_string_value(a);
    if (!strcmp(action, "subscribe")) {
        handle_subscribe(s, ss, msg);
    } else if (!strcmp(action, "ping")) {
        char ts[TIMEFMT_LEN], reply[96];
        now_ts(ts);
        int n = snprintf(reply, sizeof reply, "{\"type\":\"pong\",\"ts\":\"%s\"}", ts);
        send_text(s, ss, reply, (size_t)n);
    } else if (!strcmp(action, "pong")) {
        /* liveness only */
    } else {
        buf_t b;
        buf_init(&b, 0);
        buf_puts(&b, "unknown action ");
        jsonw_string(&b, action, strlen(action) > 64 ? 64 : strlen(action));
        buf_puts(&b, " (known: subscribe, ping, pong)");
        send_error(s, ss, b.data ? b.data : "unknown action");
        buf_free(&b);
    }
    json_decref(msg);
}

/* Receives a piece of a client message. Returns -1 to close the connection. */
static int ws_receive(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const void *in, size_t len)
{
    ss->last_rx_us = timefmt_mono_us();
    if (lws_is_first_fragment(wsi)) {
        buf_reset(&ss->rx);
        ss->rx_binary = lws_frame_is_binary(wsi);
    }
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (ss->rx.len + len + remaining > ADW_CLIENT_FRAME_MAX) {
        static const char reason[] = "message too big (limit 65536 bytes)";
        metric_add(s->m_too_big, 1);
        lws_close_reason(wsi, WS_CLOSE_TOO_BIG, (unsigned char *)reason, sizeof reason - 1);
        return -1;
    }
    if (buf_append(&ss->rx, in, len)) {
        lws_close_reason(wsi, 1011, (unsigned char *)"out of memory", 13);
        return -1;
    }
    if (!remaining && lws_is_final_fragment(wsi)) {
        if (!ss->rx_binary && utf8_validate(ss->rx.data, ss->rx.len)) {
            /* RFC 6455: a text message that is not UTF-8 fails the connection with 1007. */
            static const char bad[] = "text message is not valid UTF-8";
            lws_close_reason(wsi, WS_CLOSE_INVALID_UTF8, (unsigned char *)bad, sizeof bad - 1);
            return -1;
        }
        handle_message(s, ss, ss->rx.data ? ss->rx.data : "", ss->rx.len);
        buf_reset(&ss->rx);
        if (ss->rx.cap > 4 * 4096) /* don't keep a big buffer per idle client */
            buf_free(&ss->rx);
    }
    return 0;
}

/* Writes what is queued for c with one lws_write: a lone frame as it is (lws frames it), or
 * several whole frames, already framed, copied into one buffer of at most WS_WRITE_MAX bytes.
 * Returns 0, or -1 when the connection failed. */
static int ws_write_frames(ws_server_t *s, struct lws *wsi, fanout_client_t *c)
{
    frame_t *f = fanout_peek(c);
    if (!f)
        return 0;
    size_t total = 0, nmsg = 0, nev = 0;
    frame_t *next;
    if (c->count > 1 && f->wire_len <= WS_WRITE_MAX) {
        unsigned char *out = s->wbuf + LWS_PRE;
        while ((next = fanout_peek(c)) && total + next->wire_len <= WS_WRITE_MAX) {
            next = fanout_pop(c);
            memcpy(out + total, next->wire, next->wire_len);
            total += next->wire_len;
            nmsg++;
            nev += next->id != 0;
            frame_unref(&next);
        }
        metric_add(s->m_messages, (int64_t)nmsg);
        metric_add(s->m_deliveries, (int64_t)nev);
        return lws_write(wsi, out, total, LWS_WRITE_RAW) < (int)total ? -1 : 0;
    }
    f = fanout_pop(c);
    int n = lws_write(wsi, f->payload, f->len, LWS_WRITE_TEXT);
    metric_add(s->m_messages, 1);
    if (f->id)
        metric_add(s->m_deliveries, 1);
    size_t len = f->len;
    frame_unref(&f);
    return n < (int)len ? -1 : 0;
}

static int ws_writeable(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    fanout_client_t *c = &ss->fc;
    if (c->close_code) {
        if (!ss->close_logged) {
            char peer[64] = "";
            lws_get_peer_simple(wsi, peer, sizeof peer);
            log_write(c->close_code == WS_CLOSE_GOING_AWAY ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
                      "closing client %s: %d %s", peer, c->close_code, c->close_reason);
            ss->close_logged = 1;
        }
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    if (ss->ping_due) {
        ss->ping_due = 0;
        /* libwebsockets 4.1 reports no RECEIVE_PONG for an empty pong, so the ping carries a
         * payload for the client to echo. */
        unsigned char ping[LWS_PRE + 8] = {0};
        memcpy(ping + LWS_PRE, "adw", 3);
        if (lws_write(wsi, ping + LWS_PRE, 3, LWS_WRITE_PING) < 0)
            return -1;
    } else if (ws_write_frames(s, wsi, c) < 0) {
        return -1;
    } else {
        replay_pump(ss->replay);
    }
    if (ss->ping_due || fanout_pending(c) || c->close_code)
        lws_callback_on_writable(wsi);
    return 0;
}

/* rxguard saw a frame from this client without the mask bit (RFC 6455 5.1): 1002. */
static void on_unmasked(void *user)
{
    ws_session_t *ss = user;
    if (!ss->is_ws)
        return;
    ws_server_t *s = server_of(ss->wsi);
    metric_add(s->m_unmasked, 1);
    fanout_close(s->fanout, &ss->fc, WS_CLOSE_PROTOCOL, "client frame not masked");
}

static void ws_established(ws_server_t *s, struct lws *wsi, ws_session_t *ss)
{
    ss->wsi = wsi;
    ss->is_ws = 1;
    ss->last_rx_us = timefmt_mono_us();
    ss->bad_at_us = ss->last_rx_us;
    buf_init(&ss->rx, ADW_CLIENT_FRAME_MAX + 1);
    fanout_add(s->fanout, &ss->fc, wsi);
    filter_move(&ss->fc.filter, &ss->qfilter);
    metric_add(s->m_connections, 1);
    send_hello(s, ss);
    if (ss->has_since)
        replay_start(s->replayer, &ss->fc, &ss->fc.filter, ss->since, &ss->replay);
    if (rxguard_attach(lws_get_socket_fd(wsi), ss)) /* frames sent along with the upgrade */
        on_unmasked(ss);
    if (s->shutting_down)
        fanout_close(s->fanout, &ss->fc, WS_CLOSE_GOING_AWAY, "server shutting down");
}

static void ws_closed(ws_server_t *s, ws_session_t *ss)
{
    if (ss->is_ws)
        rxguard_attach(lws_get_socket_fd(ss->wsi), NULL);
    replay_cancel(&ss->replay);
    if (ss->is_ws)
        fanout_remove(s->fanout, &ss->fc);
    ss->is_ws = 0;
    buf_free(&ss->rx);
    filter_free(&ss->qfilter);
}

/* Decides whether an upgrade may proceed. Returns 0 to accept, 1 after writing a refusal, -1
 * to hang up. */
static int confirm_upgrade(ws_server_t *s, struct lws *wsi, const char *upgrade)
{
    char path[256];
    if (strcasecmp(upgrade ? upgrade : "", "websocket")) {
        metric_add(s->m_rej_bad, 1);
        return reply_whole(wsi, 400, "only WebSocket upgrades are supported", NULL, NULL);
    }
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 || strcmp(path, WS_PATH)) {
        metric_add(s->m_rej_bad, 1);
        return reply_whole(wsi, 404, "WebSocket endpoint is " WS_PATH, NULL, NULL);
    }
    if (read_args(s, wsi)) {
        metric_add(s->m_rej_bad, 1);
        return reply_whole(wsi, 414, "query string too long", NULL, NULL);
    }
    const filter_list_t *scope;
    if (authorize(s, wsi, &scope) == TOKENS_REFUSED) {
        metric_add(s->m_rej_auth, 1);
        return reply_whole(wsi, 401, "missing or wrong token", "www-authenticate:", "Bearer");
    }
    if (!origin_allowed(s, wsi)) {
        metric_add(s->m_rej_origin, 1);
        return reply_whole(wsi, 403, "origin not allowed", NULL, NULL);
    }
    filter_t f;
    filter_init(&f);
    int has_since;
    int64_t since;
    char err[200];
    if (query_filter(s, &f, &has_since, &since, err, sizeof err)) {
        metric_add(s->m_rej_bad, 1);
        return reply_whole(wsi, 400, err, NULL, NULL);
    }
    f.scope = scope;
    int out_of_scope = filter_check_scope(&f, err, sizeof err);
    filter_free(&f);
    if (out_of_scope) {
        metric_add(s->m_rej_auth, 1);
        return reply_whole(wsi, 403, err, NULL, NULL);
    }
    if (s->shutting_down || !fanout_initialized(s->fanout)) {
        metric_add(s->m_rej_unready, 1);
        return reply_whole(wsi, 503, s->shutting_down ? "shutting down" : "not ready yet",
                           "retry-after:", "1");
    }
    if (fanout_count(s->fanout) >= (size_t)s->o.max_clients) {
        metric_add(s->m_rej_full, 1);
        return reply_whole(wsi, 503, "too many clients", "retry-after:", "5");
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop's own work */

/* The database was replaced: a replay running reads ids of the old epoch's range from the new
 * database, so it is abandoned (its query cancelled, its rows discarded) and its client closed
 * with 1012, to reconnect and learn the new epoch from the hello. */
static void reset_replays(ws_server_t *s)
{
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        ws_session_t *ss = session_of_client(c);
        if (!ss->replay && !c->replaying)
            continue;
        replay_cancel(&ss->replay);
        fanout_close(s->fanout, c, WS_CLOSE_DB_REPLACED, "database replaced; reconnect");
    }
}

/* Hands the events gathered in batch (frames: their frames) to the fanout and frees them. */
static void publish_batch(ws_server_t *s, sub_item_t **batch, frame_t **frames, size_t *nb)
{
    fanout_publish_batch(s->fanout, frames, *nb);
    for (size_t i = 0; i < *nb; i++)
        sub_item_free(batch[i]);
    *nb = 0;
}

/* Moves what the subscriber and the database workers produced into the fanout, at most
 * WS_DRAIN_SLICE events per turn of the loop so that clients write between slices of a burst;
 * the rest waits in s->inbox and the loop is woken again for it. */
static void drain(ws_server_t *s)
{
    if (s->sub && !s->inbox)
        s->inbox = sub_take(s->sub);
    sub_item_t *batch[WS_DRAIN_SLICE];
    frame_t *frames[WS_DRAIN_SLICE];
    size_t nb = 0;
    int64_t last = fanout_last_id(s->fanout);
    for (int n = 0; s->inbox && n < WS_DRAIN_SLICE; n++) {
        sub_item_t *it = s->inbox;
        s->inbox = it->next;
        if (it->kind == SUB_ITEM_EVENT) { /* consecutive events go to the fanout together */
            if (it->frame->id > last) {
                last = it->frame->id;
                frames[nb] = it->frame;
                batch[nb++] = it;
            } else {
                sub_item_free(it);
            }
            continue;
        }
        publish_batch(s, batch, frames, &nb);
        if (it->kind == SUB_ITEM_POSITION) {
            fanout_position(s->fanout, it->last_id, it->epoch);
        } else {
            reset_replays(s);
            fanout_reset(s->fanout, it->epoch);
        }
        last = fanout_last_id(s->fanout);
        sub_item_free(it);
    }
    publish_batch(s, batch, frames, &nb);
    if (s->inbox)
        lws_cancel_service(s->ctx);
    if (s->pool)
        dbpool_complete(s->pool);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    ws_server_t *s = lws_container_of(sul, ws_server_t, tick);
    drain(s);
    int64_t now = timefmt_mono_us();
    int64_t silent_max = 3 * (int64_t)s->o.heartbeat_s * 1000000;
    char msg[96];
    int mlen = 0;
    if (now >= s->next_ping_us) {
        s->next_ping_us = now + (int64_t)s->o.heartbeat_s * 1000000;
        char ts[TIMEFMT_LEN];
        now_ts(ts);
        mlen = snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"ts\":\"%s\"}", ts);
    }
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        ws_session_t *ss = session_of_client(c);
        if (!c->close_code && now - ss->last_rx_us > silent_max) {
            metric_add(s->m_hb_timeouts, 1);
            fanout_close(s->fanout, c, WS_CLOSE_HEARTBEAT, "heartbeat timeout");
        }
        if (c->close_code) {
            if (!ss->kill_armed) { /* a peer that never reads must not linger */
                ss->kill_armed = 1;
                lws_set_timeout(ss->wsi, PENDING_TIMEOUT_USER_OK, WS_CLOSE_KILL_S);
            }
            continue;
        }
        if (mlen) {
            send_text(s, ss, msg, (size_t)mlen);
            ss->ping_due = 1;
            lws_callback_on_writable(ss->wsi);
        }
    }
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, WS_TICK_US);
}

static void wake_client(void *user)
{
    lws_callback_on_writable(user);
}

/* The one protocol callback, for HTTP and WebSocket alike. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    ws_session_t *ss = user;
    ws_server_t *s = server_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s)
            drain(s);
        return 0;

    /* HTTP */
    case LWS_CALLBACK_HTTP:
        return serve_http(s, wsi, ss, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writeable(s, wsi, ss);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ss) {
            api_cancel(ss->job);
            ss->job = NULL;
            free(ss->body);
            ss->body = NULL;
            ss->responding = 0;
        }
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(s, wsi, in);

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        rxguard_watch(lws_get_socket_fd(wsi));
        break;

    /* WebSocket */
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char err[200];
        const filter_list_t *scope;
        if (read_args(s, wsi) || authorize(s, wsi, &scope) == TOKENS_REFUSED ||
            query_filter(s, &ss->qfilter, &ss->has_since, &ss->since, err, sizeof err))
            return -1;
        ss->scope = scope;
        ss->qfilter.scope = scope;
        if (filter_check_scope(&ss->qfilter, err, sizeof err))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        ws_established(s, wsi, ss);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(s, wsi, ss, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        ss->last_rx_us = timefmt_mono_us();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(s, wsi, ss);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return 0;
    case LWS_CALLBACK_CLOSED:
        ws_closed(s, ss);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols PROTOCOLS[] = {
    /* tx_packet_size: lws writes at most this much per send() (the rest on later turns). */
    {"adw-events", ws_callback, sizeof(ws_session_t), 4096, 0, NULL, WS_WRITE_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ------------------------------------------------------------------------------------------ */
/* Life cycle */

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_write(level == LLL_ERR ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, "lws: %.*s", (int)n, line);
}

/* Splits "host:port" or "[v6]:port"; an empty host or 0.0.0.0 means every interface. */
static int parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= hostlen)
            return -EINVAL;
        memcpy(host, listen + 1, (size_t)(end - listen - 1));
        host[end - listen - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= hostlen)
            return -EINVAL;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 1 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

/* Binds and releases the address once, so that "address in use" is reported plainly. */
static int probe_bind(const char *host, int port, char *err, size_t errlen, const char *listen)
{
    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    int v6 = strchr(host, ':') != NULL;
    if (v6) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a6.sin6_addr) != 1) {
            snprintf(err, errlen, "cannot listen on %s: not an IP address", listen);
            return -EINVAL;
        }
    } else {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        if (!*host)
            a4.sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &a4.sin_addr) != 1) {
            snprintf(err, errlen, "cannot listen on %s: not an IP address", listen);
            return -EINVAL;
        }
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = v6 ? bind(fd, (struct sockaddr *)&a6, sizeof a6)
                : bind(fd, (struct sockaddr *)&a4, sizeof a4);
    int e = errno;
    close(fd);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen,
                 e == EADDRINUSE ? "address already in use" : strerror(e));
        return -e;
    }
    return 0;
}

ws_server_t *ws_new(const ws_options_t *o, char *err, size_t errlen)
{
    char host[128];
    int port;
    if (parse_listen(o->listen, host, sizeof host, &port)) {
        snprintf(err, errlen, "bad listen address \"%s\" (want host:port)", o->listen);
        return NULL;
    }
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "*"))
        host[0] = '\0';
    if (probe_bind(host, port, err, errlen, o->listen))
        return NULL;
    ws_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->tokens = tokens_new(o->token, o->read_tokens, err, errlen);
    if (!s->tokens)
        goto fail;
    int tls = o->tls_cert && *o->tls_cert;
    if (!tls_pair_ok(o->tls_cert, o->tls_key, "ADW_GATEWAY_TLS_CERT", "ADW_GATEWAY_TLS_KEY", err,
                     errlen))
        goto fail;
    if (tls) { /* lws's own failure says little: check the files here first */
        SSL_CTX *check = tls_server_new(o->tls_cert, o->tls_key, err, errlen);
        if (!check)
            goto fail;
        tls_server_destroy(&check);
    }
    s->origins = o->origins && *o->origins ? strdup(o->origins) : NULL;
    s->wbuf = malloc(LWS_PRE + WS_WRITE_MAX);
    fanout_options_t fo = {.max_queue = o->max_queue, .wake = wake_client, .metrics = o->metrics};
    s->fanout = fanout_new(&fo);
    if (!s->wbuf || !s->fanout || (o->origins && *o->origins && !s->origins)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (o->web_dir && *o->web_dir) {
        int rc = webdir_root(o->web_dir, s->web_root, sizeof s->web_root);
        if (rc)
            log_warn("not serving %s: %s", o->web_dir, strerror(-rc));
        s->have_web = !rc;
    }
    metrics_t *m = o->metrics;
    if (m) {
        s->m_deliveries = metrics_counter(m, "adw_gateway_deliveries_total", NULL,
                                          "Events written to WebSocket clients");
        s->m_messages = metrics_counter(m, "adw_gateway_messages_total", NULL,
                                        "Messages of any kind written to WebSocket clients");
        s->m_connections = metrics_counter(m, "adw_gateway_connections_total", NULL,
                                           "WebSocket connections accepted");
        s->m_hb_timeouts =
            metrics_counter(m, "adw_gateway_drops_total", "reason=\"heartbeat_timeout\"",
                            "Clients closed by the gateway, by reason");
        s->m_too_big = metrics_counter(m, "adw_gateway_drops_total", "reason=\"message_too_big\"",
                                       "Clients closed by the gateway, by reason");
        s->m_bad_messages = metrics_counter(m, "adw_gateway_drops_total", "reason=\"bad_messages\"",
                                            "Clients closed by the gateway, by reason");
        s->m_unmasked = metrics_counter(m, "adw_gateway_drops_total", "reason=\"unmasked_frame\"",
                                        "Clients closed by the gateway, by reason");
        const char *help = "WebSocket upgrades refused, by reason";
        s->m_rej_auth = metrics_counter(m, "adw_gateway_rejected_total", "reason=\"token\"", help);
        s->m_rej_origin =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"origin\"", help);
        s->m_rej_full = metrics_counter(m, "adw_gateway_rejected_total", "reason=\"full\"", help);
        s->m_rej_unready =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"not_ready\"", help);
        s->m_rej_bad =
            metrics_counter(m, "adw_gateway_rejected_total", "reason=\"bad_request\"", help);
        s->m_http = metrics_counter(m, "adw_gateway_http_requests_total", NULL,
                                    "HTTP requests other than WebSocket upgrades");
    }

    lws_set_log_level(LLL_ERR | (log_enabled(LOG_LEVEL_DEBUG) ? LLL_WARN : 0), lws_log);
    static const lws_retry_bo_t retry = {.secs_since_valid_ping = 65000,
                                         .secs_since_valid_hangup = 65535};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = *host ? host : NULL;
    info.protocols = PROTOCOLS;
    info.user = s;
    info.gid = -1;
    info.uid = -1;
    info.options = strchr(host, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = o->tls_cert;
        info.ssl_private_key_filepath = o->tls_key;
    }
    info.max_http_header_data = 16384;
    info.max_http_header_pool = 256;
    info.pt_serv_buf_size = 32768;
    info.keepalive_timeout = 30;
    info.timeout_secs = 20;
    info.fd_limit_per_thread = ws_fd_budget(s);
    info.retry_and_idle_policy = &retry;
    info.vhost_name = "adw-gateway";
    info.server_string = "adw-gateway";
    int grc = rxguard_init(on_unmasked);
    if (grc)
        log_warn("cannot check that client frames are masked: %s",
                 grc == -ENOTSUP ? "recv or SSL_read is not interposed" : strerror(-grc));
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        snprintf(err, errlen, "cannot listen on %s (libwebsockets could not start)", o->listen);
        goto fail;
    }
    s->next_ping_us = timefmt_mono_us() + (int64_t)o->heartbeat_s * 1000000;
    lws_sul_schedule(s->ctx, 0, &s->tick, on_tick, WS_TICK_US);
    return s;
fail:
    ws_destroy(&s);
    return NULL;
}

int ws_attach(ws_server_t *s, sub_t *sub, dbpool_t *pool)
{
    replayer_options_t ro = {
        .fanout = s->fanout, .pool = pool, .max_queue = s->o.max_queue, .metrics = s->o.metrics};
    s->replayer = replayer_new(&ro);
    if (!s->replayer)
        return -ENOMEM;
    s->sub = sub;
    s->pool = pool;
    return 0;
}

void ws_service(ws_server_t *s)
{
    lws_service(s->ctx, 0);
}

void ws_wake(void *arg)
{
    ws_server_t *s = arg;
    if (s && s->ctx)
        lws_cancel_service(s->ctx);
}

void ws_shutdown(ws_server_t *s)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    for (fanout_client_t *c = fanout_clients(s->fanout), *next; c; c = next) {
        next = c->next;
        fanout_close(s->fanout, c, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

size_t ws_clients(const ws_server_t *s)
{
    return fanout_count(s->fanout);
}

void ws_destroy(ws_server_t **ps)
{
    if (!ps || !*ps)
        return;
    ws_server_t *s = *ps;
    *ps = NULL;
    if (s->ctx) {
        lws_sul_cancel(&s->tick);
        lws_context_destroy(s->ctx);
        rxguard_shutdown();
    }
    for (sub_item_t *it = s->inbox, *next; it; it = next) {
        next = it->next;
        sub_item_free(it);
    }
    replayer_destroy(&s->replayer);
    fanout_destroy(&s->fanout);
    free(s->wbuf);
    tokens_destroy(&s->tokens);
    free(s->origins);
    free(s);
}
