#include "routes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adw_limits.h"
#include "approval_event.h"
#include "auth.h"
#include "buf.h"
#include "budget_rule.h"
#include "codec.h"
#include "err.h"
#include "event.h"
#include "gunzip.h"
#include "hook.h"
#include "hook_answer.h"
#include "http1.h"
#include "jsonw.h"
#include "otlp.h"
#include "timefmt.h"
#include "utf8.h"

typedef enum route {
    ROUTE_EVENTS,
    ROUTE_HOOKS,
    ROUTE_OTLP_LOGS,
    ROUTE_OTLP_METRICS,
    ROUTE_DECIDE, /* POST /api/approvals/{id} */
} route_t;

/* What a connection's deferred request is to the approvals registry. */
enum { ROLE_NONE = 0, ROLE_HOOK, ROLE_DECIDER };

#define OTLP_PROTOBUF_REFUSAL                                                                      \
    "OTLP protobuf is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL=http/json"

/* One of these per HTTP connection (the engine's session space): the request being handled. */
typedef struct session_t {
    route_t route;
    int ndjson; /* the answer lists "ids" (an array or NDJSON body), not one "id" */
    char adw_id[ADW_ADW_ID_MAX + 2];
    char step[ADW_STEP_MAX + 2];
    int gzip;        /* OTLP: Content-Encoding: gzip */
    size_t rejected; /* OTLP: log records refused before the pipeline */
    char first_error[OTLP_ERR_LEN];
    pipeline_entry_t *pending; /* the request waiting in the pipeline, or NULL */
    routes_t *routes;          /* the routes the connection belongs to */
    json_t *hook;              /* a PreToolUse hook's body while it is stored, or NULL */
    int role;                  /* ROLE_*: the approval the deferred request holds or decides */
    char approval_id[APPROVAL_ID_LEN + 1];
    char decided_by[APPROVALS_NAME_MAX + 1]; /* a decision's X-ADW-Decided-By, or "" */
} session_t;

struct routes_t {
    routes_options_t o;
    buf_t scratch;
    buf_t inflated; /* a gzip body, inflated */
};

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

/* ---- the pipeline's answer ---- */

/* An OTLP receiver's 200: {} when every record was taken, else partialSuccess. */
static void otlp_respond_ok(httpd_conn_t *c, session_t *ss)
{
    buf_t *b = &ss->routes->scratch;
    buf_reset(b);
    int bad = 0;
    if (ss->rejected) {
        bad |= buf_printf(
            b,
            "{\"partialSuccess\":{\"rejectedLogRecords\":\"%zu\",\"errorMessage\":", ss->rejected);
        bad |= jsonw_string(b, ss->first_error, strlen(ss->first_error));
        bad |= buf_puts(b, "}}");
    } else {
        bad |= buf_puts(b, "{}");
    }
    httpd_respond(c, 200, "application/json", bad ? NULL : b->data, b->len, NULL, 0);
}

static void otlp_outcome(httpd_conn_t *c, session_t *ss, const pipeline_outcome_t *o)
{
    switch (o->status) {
    case PIPELINE_OK:
        otlp_respond_ok(c, ss);
        break;
    case PIPELINE_INVALID:
        httpd_respond_error(c, 400, o->error ? o->error : "refused", -1, NULL, 0);
        break;
    case PIPELINE_OVERLOADED:
        httpd_respond_error(c, 429, o->error ? o->error : "overloaded", -1, "Retry-After: 1\r\n",
                            0);
        break;
    default:
        httpd_respond_error(c, 503, o->error ? o->error : "unavailable", -1, "Retry-After: 1\r\n",
                            0);
        break;
    }
}

/* A hook stored: denied when the writer raised budget_denied after it (a PreToolUse of a run
 * over its budget, ADW_INGEST_ENFORCE_BUDGET: budget.h), else held for an approval when a rule
 * matches a PreToolUse hook (approvals.h), else answered {} (no decision). */
static void hook_outcome(httpd_conn_t *c, session_t *ss, const pipeline_outcome_t *o)
{
    routes_t *rt = ss->routes;
    json_t *hook = ss->hook;
    ss->hook = NULL;
    if (o->status != PIPELINE_OK) {
        json_decref(hook);
        if (o->status == PIPELINE_INVALID)
            httpd_respond_error(c, 400, o->error ? o->error : "refused", o->index, NULL, 0);
        else
            httpd_respond_error(c, 503, o->error ? o->error : "unavailable", -1, NULL, 0);
        return;
    }
    if (o->denied) { /* over budget: no approval is asked for */
        char why[200];
        json_decref(hook);
        budget_denied_reason(o->denied, why, sizeof why);
        hook_answer_decision(c, "deny", why, o->ids[0]);
        return;
    }
    const adw_event_t *ev = &o->events[0];
    const approval_rule_t *rule =
        hook && o->nids == 1
            ? approvals_match(rt->o.approvals, ev->adw_id,
                              json_string_value(json_object_get(hook, "tool_name")),
                              json_object_get(hook, "tool_input"))
            : NULL;
    if (rule) {
        int rc = approvals_request(rt->o.approvals, c, rule, ev, o->ids[0], hook, ss->approval_id);
        json_decref(hook);
        if (rc == 0) {
            ss->role = ROLE_HOOK;
            return;
        }
        httpd_respond_error(c, 503,
                            rc == -EAGAIN      ? "too many approvals waiting, retry later "
                                                 "(ADW_INGEST_APPROVALS_MAX)"
                            : rc == -ESHUTDOWN ? "shutting down: no approval can be asked"
                                               : "out of memory",
                            -1, NULL, 0);
        return;
    }
    json_decref(hook);
    hook_answer_none(c, o->ids[0]);
}

static void on_outcome(void *ctx, const pipeline_outcome_t *o)
{
    httpd_conn_t *c = ctx;
    session_t *ss = httpd_session(c);
    ss->pending = NULL;
    if (ss->route == ROUTE_OTLP_LOGS) {
        otlp_outcome(c, ss, o);
        return;
    }
    if (ss->route == ROUTE_HOOKS) {
        hook_outcome(c, ss, o);
        return;
    }
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

/* POST /v1/logs, /v1/metrics: an OTLP/HTTP JSON body, inflated when gzip; each log record
 * becomes an event (otlp.h), the ones refused are counted in the partialSuccess answer. */
static void otlp_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len)
{
    pipeline_t *p = rt->o.pipeline;
    char err[256];
    if (ss->gzip) {
        int rc = gunzip_body(body, len, (size_t)rt->o.max_body, &rt->inflated, err, sizeof err);
        if (rc == -EFBIG) {
            buf_reset(&rt->inflated);
            pipeline_count_rejected(p, PIPELINE_REJECT_TOO_LARGE);
            snprintf(err, sizeof err,
                     "the gzip body inflates past the body limit of %lld bytes "
                     "(ADW_INGEST_MAX_BODY)",
                     (long long)rt->o.max_body);
            httpd_respond_error(c, 413, err, -1, NULL, 1);
            return;
        }
        if (rc) {
            buf_reset(&rt->inflated);
            pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
            httpd_respond_error(c, rc == -ENOMEM ? 503 : 400, err, -1, NULL, 0);
            return;
        }
        body = rt->inflated.data;
        len = rt->inflated.len;
    }
    json_t *value = NULL;
    int rc = len ? codec_json_parse(body, len, &value, err, sizeof err) : -EINVAL;
    if (!len)
        set_err(err, sizeof err, "empty body: send an OTLP/HTTP JSON request");
    if (ss->gzip && rt->inflated.cap > (1u << 20))
        buf_free(&rt->inflated); /* keep no large buffer between requests */
    if (rc) {
        pipeline_count_rejected(p, PIPELINE_REJECT_BAD_JSON);
        httpd_respond_error(c, 400, err, -1, NULL, 0);
        return;
    }
    if (ss->route == ROUTE_OTLP_METRICS) { /* accepted, nothing kept */
        int ok = json_is_object(value) && json_is_array(json_object_get(value, "resourceMetrics"));
        json_decref(value);
        if (!ok) {
            pipeline_count_rejected(p, PIPELINE_REJECT_SCHEMA);
            httpd_respond_error(c, 400, "not OTLP metrics: \"resourceMetrics\" must be an array",
                                -1, NULL, 0);
            return;
        }
        httpd_respond(c, 200, "application/json", "{}", 2, NULL, 0);
        return;
    }
    otlp_logs_t logs;
    rc = otlp_logs_map(value, ADW_BATCH_MAX, &logs, err, sizeof err);
    json_decref(value);
    if (rc) {
        pipeline_count_rejected(p, PIPELINE_REJECT_SCHEMA);
        httpd_respond_error(c, rc == -ENOMEM ? 503 : 400, err, -1, NULL, 0);
        return;
    }
    pipeline_count_received(p, PIPELINE_HTTP, (int64_t)logs.records);
    ss->rejected = logs.rejected;
    memcpy(ss->first_error, logs.first_error, sizeof ss->first_error);
    size_t n = json_array_size(logs.events), k = 0;
    store_req_t *r = n ? store_req_new(n) : NULL;
    if (n && !r) {
        otlp_logs_clear(&logs);
        httpd_respond_error(c, 503, "out of memory", -1, "Retry-After: 1\r\n", 1);
        return;
    }
    int64_t now = timefmt_now_us();
    size_t first_at = logs.rejected ? logs.first_at : SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        char why[EVENT_ERR_LEN];
        adw_event_t *ev = &r->events[k];
        if (event_from_json(json_array_get(logs.events, i), now, ev, why, sizeof why)) {
            ss->rejected++;
            if (logs.at[i] < first_at) { /* the answer names the request's first refusal */
                first_at = logs.at[i];
                set_err(ss->first_error, sizeof ss->first_error, "log record %zu: %s", first_at,
                        why);
            }
            continue;
        }
        ev->otel = 1;
        ev->attr_session = logs.sessions[i];
        logs.sessions[i] = NULL;
        k++;
    }
    otlp_logs_clear(&logs);
    for (size_t i = 0; i < ss->rejected; i++)
        pipeline_count_rejected(p, PIPELINE_REJECT_SCHEMA);
    if (k == 0) { /* nothing to store: answered now */
        store_req_destroy(&r);
        otlp_respond_ok(c, ss);
        return;
    }
    r->nevents = k;
    ss->pending = pipeline_submit(p, (uint64_t)(uintptr_t)c, r, on_outcome, c);
    if (!ss->pending) {
        httpd_respond_error(c, 503, "out of memory", -1, "Retry-After: 1\r\n", 1);
        return;
    }
    httpd_defer(c);
}

/* POST /api/approvals/{id}: {"decision":"allow"|"deny","reason":"..."} (reason optional). */
static void decide_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len)
{
    char err[256];
    json_t *v = NULL;
    if (!len || codec_json_parse(body, len, &v, err, sizeof err)) {
        httpd_respond_error(
            c, 400, len ? err : "empty body: send {\"decision\":\"allow\"|\"deny\"}", -1, NULL, 0);
        return;
    }
    const char *decision = json_string_value(json_object_get(v, "decision"));
    json_t *reason = json_object_get(v, "reason");
    const char *why = NULL;
    if (!json_is_object(v))
        why =
            "the body must be a JSON object: {\"decision\":\"allow\"|\"deny\",\"reason\":\"...\"}";
    else if (!decision || (strcmp(decision, "allow") && strcmp(decision, "deny")))
        why = "\"decision\" must be \"allow\" or \"deny\"";
    else if (reason && !json_is_null(reason) &&
             (!json_is_string(reason) || json_string_length(reason) > APPROVALS_REASON_MAX ||
              memchr(json_string_value(reason), '\0', json_string_length(reason))))
        why = "\"reason\" must be a string of at most 1000 bytes of UTF-8";
    if (why) {
        json_decref(v);
        httpd_respond_error(c, 400, why, -1, NULL, 0);
        return;
    }
    if (!rt->o.approvals) {
        json_decref(v);
        httpd_respond_error(c, 404, "no approval: this ingest holds none", -1, NULL, 0);
        return;
    }
    ss->role = ROLE_DECIDER;
    const char *text = json_string_value(reason);
    approvals_decide(rt->o.approvals, c, ss->approval_id, !strcmp(decision, "allow"),
                     text && *text ? text : NULL, ss->decided_by[0] ? ss->decided_by : "ingest");
    json_decref(v);
}

/* The whole body of a POST: decoded, checked, and handed to the pipeline, or refused. */
static void on_body(void *arg, httpd_conn_t *c, const char *body, size_t len)
{
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    if (ss->route == ROUTE_OTLP_LOGS || ss->route == ROUTE_OTLP_METRICS) {
        otlp_body(rt, c, ss, body, len);
        return;
    }
    if (ss->route == ROUTE_DECIDE) {
        decide_body(rt, c, ss, body, len);
        return;
    }
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
        const char *name = json_string_value(json_object_get(value, "hook_event_name"));
        json_decref(ss->hook);
        ss->hook = NULL;
        if (ev && rt->o.approvals && name && !strcmp(name, "PreToolUse"))
            ss->hook = json_incref(value); /* kept for approvals (hook_outcome) */
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
    r->hook = ss->route == ROUTE_HOOKS;
    /* The connection is the channel: its answers keep its request order. */
    ss->pending = pipeline_submit(p, (uint64_t)(uintptr_t)c, r, on_outcome, c);
    if (!ss->pending) {
        json_decref(ss->hook);
        ss->hook = NULL;
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

/* OTLP's Content-Type and Content-Encoding: JSON only, plain or gzip. Sets ss->gzip.
 * Returns 0, or -1 when answered (415). */
static int otlp_content_ok(httpd_conn_t *c, session_t *ss, const http1_request_t *req)
{
    const http1_str_t *ct = http1_header_get(&req->headers, "Content-Type");
    ss->gzip = 0;
    ss->rejected = 0;
    ss->first_error[0] = '\0';
    if (ct && ct->len) {
        size_t n = 0;
        while (n < ct->len && ct->p[n] != ';' && ct->p[n] != ' ')
            n++;
        http1_str_t mt = {ct->p, n};
        if (http1_str_eq_nocase(mt, "application/x-protobuf") ||
            http1_str_eq_nocase(mt, "application/protobuf")) {
            httpd_respond_error(c, 415, OTLP_PROTOBUF_REFUSAL, -1, NULL, 1);
            return -1;
        }
        if (!http1_str_eq_nocase(mt, "application/json")) {
            httpd_respond_error(c, 415,
                                "unsupported Content-Type: OTLP/HTTP takes application/json "
                                "(OTEL_EXPORTER_OTLP_PROTOCOL=http/json)",
                                -1, NULL, 1);
            return -1;
        }
    }
    const http1_str_t *ce = http1_header_get(&req->headers, "Content-Encoding");
    if (ce && ce->len) {
        if (http1_str_eq_nocase(*ce, "gzip") || http1_str_eq_nocase(*ce, "x-gzip"))
            ss->gzip = 1;
        else if (!http1_str_eq_nocase(*ce, "identity")) {
            httpd_respond_error(c, 415, "unsupported Content-Encoding: use gzip or none", -1, NULL,
                                1);
            return -1;
        }
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

/* X-ADW-Decided-By: 1..64 of [A-Za-z0-9._:@-] into ss->decided_by ("" when absent). Returns
 * 0, or -1 when malformed. */
static int decided_by(session_t *ss, const http1_request_t *req)
{
    ss->decided_by[0] = '\0';
    const http1_str_t *h = http1_header_get(&req->headers, "X-ADW-Decided-By");
    if (!h)
        return 0;
    if (h->len < 1 || h->len > APPROVALS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < h->len; i++) {
        char ch = h->p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._:@-", ch)))
            return -1;
    }
    memcpy(ss->decided_by, h->p, h->len);
    ss->decided_by[h->len] = '\0';
    return 0;
}

/* GET /api/approvals (?status=pending|all: what this ingest holds) and
 * POST /api/approvals/{id}: both need the bearer token when one is set. */
static httpd_next_t approvals_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                                   const http1_request_t *req, const char *path, int is_get,
                                   int is_post)
{
    int has_body = req->content_length > 0 || req->chunked;
    int list = !strcmp(path, "/api/approvals");
    if ((list && !is_get) || (!list && !is_post)) {
        httpd_respond_error(c, 405,
                            list ? "method not allowed: use GET" : "method not allowed: use POST",
                            -1, list ? "Allow: GET, HEAD\r\n" : "Allow: POST\r\n", has_body);
        return HTTPD_ANSWERED;
    }
    if (!token_ok(rt, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_UNAUTHORIZED);
        httpd_respond_error(c, 401, "missing or wrong bearer token", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (list) {
        char status[16] = "";
        size_t n = 0;
        int rc = req->query.p ? http1_query_get(req->query, "status", status, sizeof status, &n)
                              : -ENOENT;
        if (rc == 0 && n && strcmp(status, "pending") && strcmp(status, "all") &&
            strcmp(status, "allowed") && strcmp(status, "denied") && strcmp(status, "expired"))
            rc = -EINVAL;
        if (rc && rc != -ENOENT) {
            httpd_respond_error(c, 400, "status must be pending, allowed, denied, expired or all",
                                -1, NULL, has_body);
            return HTTPD_ANSWERED;
        }
        buf_t *b = &rt->scratch;
        buf_reset(b);
        /* Ingest holds only pending approvals; ended ones are in adw_approvals. */
        int held = rc == -ENOENT || !n || !strcmp(status, "pending") || !strcmp(status, "all");
        int bad = held ? approvals_list(rt->o.approvals, b) : buf_puts(b, "{\"approvals\":[]}");
        httpd_respond(c, 200, "application/json", bad ? NULL : b->data, b->len, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    const char *id = path + 15;
    if (!approval_event_id_valid(id, strlen(id))) {
        httpd_respond_error(c, 404, "no approval: an approval_id is 32 lowercase hex characters",
                            -1, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    memcpy(ss->approval_id, id, APPROVAL_ID_LEN + 1);
    if (decided_by(ss, req)) {
        httpd_respond_error(c, 400, "X-ADW-Decided-By must be 1-64 characters of [A-Za-z0-9._:@-]",
                            -1, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    if (httpd_check_body(c))
        return HTTPD_ANSWERED;
    ss->route = ROUTE_DECIDE;
    ss->ndjson = 0;
    if (!content_type_ok(ss, req) || ss->ndjson) {
        httpd_respond_error(c, 415, "unsupported Content-Type: use application/json", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    return HTTPD_READ_BODY;
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
        return approvals_head(rt, c, ss, req, path, is_get, is_post);
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
    if (!token_ok(rt, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_UNAUTHORIZED);
        httpd_respond_error(c, 401, "missing or wrong bearer token", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (httpd_check_body(c)) /* 411 or 413, counted by on_refused */
        return HTTPD_ANSWERED;
    if (ss->route == ROUTE_OTLP_LOGS || ss->route == ROUTE_OTLP_METRICS) {
        if (otlp_content_ok(c, ss, req)) {
            pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_BAD_REQUEST);
            return HTTPD_ANSWERED;
        }
        return HTTPD_READ_BODY;
    }
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
    routes_t *rt = arg;
    session_t *ss = httpd_session(c);
    pipeline_cancel(ss->pending);
    ss->pending = NULL;
    json_decref(ss->hook);
    ss->hook = NULL;
    if (ss->role == ROLE_HOOK)
        approvals_hook_closed(rt->o.approvals, ss->approval_id, c);
    else if (ss->role == ROLE_DECIDER)
        approvals_decider_closed(rt->o.approvals, ss->approval_id, c);
    ss->role = ROLE_NONE;
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
