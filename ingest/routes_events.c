/* routes_events: POST /api/events, /api/events/broadcast and /api/hooks (routes_events.h): the
 * head's Content-Type and a hook's adw_id and step, the body (JSON, an array, NDJSON; a hook's
 * body mapped to an event, hook.h) handed to the pipeline, and the answer once committed.
 */
#include "routes_events.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adw_limits.h"
#include "budget_rule.h"
#include "codec.h"
#include "err.h"
#include "event.h"
#include "hook.h"
#include "hook_answer.h"
#include "http1_query.h"
#include "routes_approvals.h"
#include "routes_check.h"
#include "timefmt.h"

/* A hook stored: denied when the writer raised budget_denied after it (a PreToolUse of a run
 * over its budget, ADW_INGEST_ENFORCE_BUDGET: budget.h), else held for an approval when a rule
 * matches a PreToolUse hook (approvals.h), else answered {} (no decision). */
static void hook_outcome(httpd_conn_t *c, session_t *ss, const pipeline_outcome_t *o)
{
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
    int held = routes_approvals_hold(ss->routes, c, ss, o, hook);
    json_decref(hook);
    if (!held)
        hook_answer_none(c, o->ids[0]);
}

/* The pipeline's outcome of c's request: {"status":"broadcasted",...}, a hook's answer, or a
 * refusal. */
static void on_outcome(void *ctx, const pipeline_outcome_t *o)
{
    httpd_conn_t *c = ctx;
    session_t *ss = httpd_session(c);
    ss->pending = NULL;
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

httpd_next_t routes_events_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                                const http1_request_t *req)
{
    if (!routes_content_type_ok(ss, req)) {
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

void routes_events_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len)
{
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
