#include "routes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adw_limits.h"
#include "auth.h"
#include "buf.h"
#include "codec.h"
#include "err.h"
#include "event.h"
#include "hook.h"
#include "http1.h"
#include "jsonw.h"
#include "timefmt.h"

typedef enum route { ROUTE_EVENTS, ROUTE_HOOKS } route_t;

/* One of these per HTTP connection (the engine's session space): the request being handled. */
typedef struct session_t {
    route_t route;
    int ndjson; /* the answer lists "ids" (an array or NDJSON body), not one "id" */
    char adw_id[ADW_ADW_ID_MAX + 2];
    char step[ADW_STEP_MAX + 2];
    pipeline_entry_t *pending; /* the request waiting in the pipeline, or NULL */
    routes_t *routes;          /* the routes the connection belongs to */
} session_t;

struct routes_t {
    routes_options_t o;
    buf_t scratch;
};

routes_t *routes_new(const routes_options_t *o)
{
    routes_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = *o;
    buf_init(&r->scratch, 0);
    return r;
}

void routes_destroy(routes_t **rp)
{
    if (!rp || !*rp)
        return;
    buf_free(&(*rp)->scratch);
    free(*rp);
    *rp = NULL;
}

/* ---- the pipeline's answer ---- */

static void on_outcome(void *ctx, const pipeline_outcome_t *o)
{
    httpd_conn_t *c = ctx;
    session_t *ss = httpd_session(c);
    ss->pending = NULL;
    switch (o->status) {
    case PIPELINE_OK: {
        buf_t *b = &ss->routes->scratch;
        buf_reset(b);
        int bad = buf_puts(b, "{\"status\":\"broadcasted\",");
        if (ss->ndjson) { /* arrays and NDJSON answer "ids", single events "id" */
            bad |= buf_puts(b, "\"ids\":[");
            for (size_t i = 0; i < o->nids; i++)
                bad |= buf_printf(b, "%s%lld", i ? "," : "", (long long)o->ids[i]);
            bad |= buf_puts(b, "]}");
        } else {
            bad |= buf_printf(b, "\"id\":%lld}", (long long)o->ids[0]);
        }
        /* A body that could not be built is never sent cut short (httpd closes instead). */
        httpd_respond(c, 200, "application/json", bad ? NULL : b->data, b->len, NULL, 0);
        break;
    }
    case PIPELINE_INVALID:
        httpd_respond_error(c, 400, o->error ? o->error : "refused", o->index, NULL, 0);
        break;
    default:
        httpd_respond_error(c, 503, o->error ? o->error : "unavailable", -1, NULL, 0);
        break;
    }
}
/* ---- request handling ---- */

static int token_ok(const routes_t *r, const http1_request_t *req)
{
    const char *tok = r->o.token;
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
        set_err(err, errlen, "out of memory");
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

/* The whole body of a POST: decoded, checked, and handed to the pipeline, or refused. */
static void on_body(void *arg, httpd_conn_t *c, const char *body, size_t len)
{
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    pipeline_t *p = rt->o.pipeline;
    char err[256];
    long index = -1;
    json_t *value = NULL;
    int64_t now = timefmt_now_us();
    if (len == 0) {
        pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
        httpd_respond_error(c, 400, "empty body: send an event as JSON", -1, NULL, 0);
        return;
    }
    if (ss->ndjson) {
        int rc = parse_ndjson(body, len, &value, err, sizeof err, &index);
        if (rc) {
            pipeline_count_rejected(p, rc == -E2BIG ? PIPELINE_REJECT_BATCH_SIZE
                                                    : PIPELINE_REJECT_BAD_JSON);
            httpd_respond_error(c, 400, err, index, NULL, 0);
            return;
        }
        if (json_array_size(value) == 0) {
            json_decref(value);
            pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
            httpd_respond_error(c, 400, "empty body: no event in the NDJSON", -1, NULL, 0);
            return;
        }
    } else if (codec_json_parse(body, len, &value, err, sizeof err)) {
        pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
        httpd_respond_error(c, 400, err, -1, NULL, 0);
        return;
    }
    if (ss->route == ROUTE_HOOKS) {
        if (!json_is_object(value)) {
            json_decref(value);
            pipeline_count_rejected(p, PIPELINE_REJECT_SCHEMA);
            httpd_respond_error(c, 400, "a hook body must be a JSON object", -1, NULL, 0);
            return;
        }
        json_t *ev = hook_to_event(value, ss->adw_id[0] ? ss->adw_id : NULL,
                                   ss->step[0] ? ss->step : NULL, err, sizeof err);
        json_decref(value);
        if (!ev) {
            pipeline_count_rejected(p, PIPELINE_REJECT_SCHEMA);
            httpd_respond_error(c, 400, err, -1, NULL, 0);
            return;
        }
        value = ev;
    }
    store_req_t *r = NULL;
    int is_batch = 0;
    int rc = pipeline_build(value, now, &r, &is_batch, err, sizeof err, &index);
    pipeline_count_received(p, PIPELINE_HTTP,
                            json_is_array(value) ? (int64_t)json_array_size(value) : 1);
    json_decref(value);
    if (rc) {
        pipeline_count_rejected(p,
                                rc == -E2BIG ? PIPELINE_REJECT_BATCH_SIZE : PIPELINE_REJECT_SCHEMA);
        httpd_respond_error(c, 400, err, index, NULL, 0);
        return;
    }
    if (is_batch)
        ss->ndjson = 1; /* from here on: answer with "ids" */
    /* The connection is the channel: its answers keep its request order. */
    ss->pending = pipeline_submit(p, (uint64_t)(uintptr_t)c, r, on_outcome, c);
    if (!ss->pending) {
        httpd_respond_error(c, 503, "out of memory", -1, NULL, 1);
        return;
    }
    httpd_defer(c);
}

/* Whether the Content-Type is one the route takes; sets ss->ndjson. */
static int content_type_ok(session_t *ss, const http1_request_t *req)
{
    const http1_str_t *ct = http1_header_get(&req->headers, "Content-Type");
    ss->ndjson = 0;
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
    if (ss->route == ROUTE_EVENTS && (http1_str_eq_nocase(mt, "application/x-ndjson") ||
                                      http1_str_eq_nocase(mt, "application/ndjson") ||
                                      http1_str_eq_nocase(mt, "application/jsonl") ||
                                      http1_str_eq_nocase(mt, "application/x-jsonlines"))) {
        ss->ndjson = 1;
        return 1;
    }
    return 0;
}

/* Reads ?adw_id=&step= or the X-ADW-Id and X-ADW-Step headers. Returns 0 or -1 (answered). */
static int hook_params(httpd_conn_t *c, session_t *ss, const http1_request_t *req)
{
    ss->adw_id[0] = ss->step[0] = '\0';
    size_t n;
    if (req->query.p) {
        int rc = http1_query_get(req->query, "adw_id", ss->adw_id, sizeof ss->adw_id, &n);
        if (rc == -ENOENT || (rc == 0 && n == 0))
            ss->adw_id[0] = '\0';
        else if (rc || !event_adw_id_valid(ss->adw_id, n)) {
            httpd_respond_error(c, 400, "adw_id must be 1-64 characters of [A-Za-z0-9._:-]", -1,
                                NULL, 1);
            return -1;
        }
        rc = http1_query_get(req->query, "step", ss->step, sizeof ss->step, &n);
        if (rc == -ENOENT || (rc == 0 && n == 0))
            ss->step[0] = '\0';
        else if (rc || n > ADW_STEP_MAX) {
            httpd_respond_error(c, 400, "step must be at most 64 bytes", -1, NULL, 1);
            return -1;
        }
    }
    const http1_str_t *h = http1_header_get(&req->headers, "X-ADW-Id");
    if (h && h->len && !ss->adw_id[0]) { /* empty: absent (an unset variable in a hook) */
        if (!event_adw_id_valid(h->p, h->len)) {
            httpd_respond_error(c, 400, "X-ADW-Id must be 1-64 characters of [A-Za-z0-9._:-]", -1,
                                NULL, 1);
            return -1;
        }
        memcpy(ss->adw_id, h->p, h->len);
        ss->adw_id[h->len] = '\0';
    }
    h = http1_header_get(&req->headers, "X-ADW-Step");
    if (h && h->len && !ss->step[0]) {
        if (h->len > ADW_STEP_MAX) {
            httpd_respond_error(c, 400, "X-ADW-Step must be at most 64 bytes", -1, NULL, 1);
            return -1;
        }
        memcpy(ss->step, h->p, h->len);
        ss->step[h->len] = '\0';
    }
    return 0;
}

/* GET /healthz, /readyz, /metrics. */
static void handle_get(routes_t *rt, httpd_conn_t *c, const http1_request_t *req, const char *path)
{
    int has_body = req->content_length > 0 || req->chunked;
    if (!strcmp(path, "/healthz")) {
        static const char ok[] = "{\"status\":\"ok\"}";
        httpd_respond(c, 200, "application/json", ok, sizeof ok - 1, NULL, has_body);
    } else if (!strcmp(path, "/readyz")) {
        char why[200] = "";
        int ready = rt->o.ready ? rt->o.ready(rt->o.ready_arg, why, sizeof why) : 1;
        buf_t *b = &rt->scratch;
        buf_reset(b);
        buf_printf(b, "{\"status\":\"%s\"", ready ? "ready" : "unavailable");
        if (!ready) {
            buf_puts(b, ",\"reason\":");
            jsonw_string(b, why, strlen(why));
        }
        buf_putc(b, '}');
        httpd_respond(c, ready ? 200 : 503, "application/json", b->data, b->len,
                      ready ? NULL : "Retry-After: 1\r\n", has_body);
    } else if (!strcmp(path, "/metrics")) {
        buf_t *b = &rt->scratch;
        buf_reset(b);
        metrics_render(rt->o.metrics, b);
        httpd_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b->data, b->len, NULL,
                      has_body);
    }
}

/* A complete head: GET routes are answered here; a POST is checked and its body read. */
static httpd_next_t on_head(void *arg, httpd_conn_t *c, const http1_request_t *req,
                            const char *path)
{
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    ss->routes = rt;
    int is_get = http1_str_eq(req->method, "GET") || http1_str_eq(req->method, "HEAD");
    int is_post = http1_str_eq(req->method, "POST");
    int get_route =
        !strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics");
    int post_route = !strcmp(path, "/api/events") || !strcmp(path, "/api/events/broadcast") ||
                     !strcmp(path, "/api/hooks");
    int has_body = req->content_length > 0 || req->chunked;
    if (get_route) {
        if (!is_get) {
            httpd_respond_error(c, 405, "method not allowed: use GET", -1, "Allow: GET, HEAD\r\n",
                                has_body);
            return HTTPD_ANSWERED;
        }
        handle_get(rt, c, req, path);
        return HTTPD_ANSWERED;
    }
    if (!post_route) {
        httpd_respond_error(c, 404, "not found", -1, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    if (!is_post) {
        httpd_respond_error(c, 405, "method not allowed: use POST", -1, "Allow: POST\r\n",
                            has_body);
        return HTTPD_ANSWERED;
    }
    ss->route = !strcmp(path, "/api/hooks") ? ROUTE_HOOKS : ROUTE_EVENTS;
    if (!token_ok(rt, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_UNAUTHORIZED);
        httpd_respond_error(c, 401, "missing or wrong bearer token", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (httpd_check_body(c)) /* 411 or 413, counted by on_refused */
        return HTTPD_ANSWERED;
    if (!content_type_ok(ss, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_BAD_REQUEST);
        httpd_respond_error(c, 415,
                            "unsupported Content-Type: use application/json or "
                            "application/x-ndjson",
                            -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (ss->route == ROUTE_HOOKS && hook_params(c, ss, req))
        return HTTPD_ANSWERED;
    return HTTPD_READ_BODY;
}

/* A deferred request's connection closed: its outcome still happens, unanswered. */
static void on_closed(void *arg, httpd_conn_t *c)
{
    (void)arg;
    session_t *ss = httpd_session(c);
    pipeline_cancel(ss->pending);
    ss->pending = NULL;
}

/* Requests the engine refused by itself count as the pipeline's refusals. */
static void on_refused(void *arg, httpd_refusal_t why)
{
    routes_t *rt = arg;
    pipeline_count_rejected(rt->o.pipeline, why == HTTPD_REFUSED_TOO_LARGE
                                                ? PIPELINE_REJECT_TOO_LARGE
                                                : PIPELINE_REJECT_BAD_REQUEST);
}

httpd_handler_t routes_handler(routes_t *r)
{
    return (httpd_handler_t){.head = on_head,
                             .body = on_body,
                             .closed = on_closed,
                             .refused = on_refused,
                             .session_size = sizeof(session_t),
                             .arg = r};
}
