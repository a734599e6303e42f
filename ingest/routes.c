/* routes: the handler of adw-ingest's HTTP engine (routes.h): a request's path and method, the
 * bearer token and the body's length are checked here, then the route's own file takes over:
 * routes_events.c (POST /api/events, /api/hooks), routes_otlp.c (POST /v1/logs, /v1/metrics),
 * routes_approvals.c (/api/approvals). GET /healthz, /readyz and /metrics are answered here.
 */
#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "buf.h"
#include "http1.h"
#include "jsonw.h"
#include "routes_approvals.h"
#include "routes_check.h"
#include "routes_events.h"
#include "routes_internal.h"
#include "routes_otlp.h"

routes_t *routes_new(const routes_options_t *o)
{
    routes_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = *o;
    if (r->o.max_body <= 0)
        r->o.max_body = ADW_BODY_MAX_DEFAULT;
    buf_init(&r->scratch, 0);
    buf_init(&r->inflated, 0);
    return r;
}

void routes_destroy(routes_t **rp)
{
    if (!rp || !*rp)
        return;
    buf_free(&(*rp)->scratch);
    buf_free(&(*rp)->inflated);
    free(*rp);
    *rp = NULL;
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

/* The whole body of a POST: the route's file decodes and checks it, and hands it to the
 * pipeline or the approvals, or refuses it. */
static void on_body(void *arg, httpd_conn_t *c, const char *body, size_t len)
{
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    if (ss->route == ROUTE_OTLP_LOGS || ss->route == ROUTE_OTLP_METRICS)
        routes_otlp_body(rt, c, ss, body, len);
    else if (ss->route == ROUTE_DECIDE)
        routes_approvals_body(rt, c, ss, body, len);
    else
        routes_events_body(rt, c, ss, body, len);
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
                     !strcmp(path, "/api/hooks") || !strcmp(path, "/v1/logs") ||
                     !strcmp(path, "/v1/metrics");
    int has_body = req->content_length > 0 || req->chunked;
    json_decref(ss->hook);
    ss->hook = NULL;
    ss->role = ROLE_NONE;
    if (!strcmp(path, "/api/approvals") || !strncmp(path, "/api/approvals/", 15))
        return routes_approvals_head(rt, c, ss, req, path, is_get, is_post);
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
    ss->route = !strcmp(path, "/api/hooks")    ? ROUTE_HOOKS
                : !strcmp(path, "/v1/logs")    ? ROUTE_OTLP_LOGS
                : !strcmp(path, "/v1/metrics") ? ROUTE_OTLP_METRICS
                                               : ROUTE_EVENTS;
    if (!routes_token_ok(rt, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_UNAUTHORIZED);
        httpd_respond_error(c, 401, "missing or wrong bearer token", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (httpd_check_body(c)) /* 411 or 413, counted by on_refused */
        return HTTPD_ANSWERED;
    if (ss->route == ROUTE_OTLP_LOGS || ss->route == ROUTE_OTLP_METRICS)
        return routes_otlp_head(rt, c, ss, req);
    return routes_events_head(rt, c, ss, req);
}

/* A deferred request's connection closed: its outcome still happens, unanswered. */
static void on_closed(void *arg, httpd_conn_t *c)
{
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    pipeline_cancel(ss->pending);
    ss->pending = NULL;
    json_decref(ss->hook);
    ss->hook = NULL;
    routes_approvals_closed(rt, c, ss);
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
