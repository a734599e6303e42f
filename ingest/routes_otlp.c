/* routes_otlp: POST /v1/logs and /v1/metrics (routes_otlp.h): the head's Content-Type and
 * Content-Encoding, the body inflated when gzip and mapped to events (otlp.h), handed to the
 * pipeline, and an OTLP receiver's answer once committed.
 */
#include "routes_otlp.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adw_limits.h"
#include "buf.h"
#include "codec.h"
#include "err.h"
#include "event.h"
#include "gunzip.h"
#include "jsonw.h"
#include "otlp.h"
#include "timefmt.h"

#define OTLP_PROTOBUF_REFUSAL                                                                      \
    "OTLP protobuf is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL=http/json"

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

/* The pipeline's outcome of c's request. */
static void otlp_on_outcome(void *ctx, const pipeline_outcome_t *o)
{
    httpd_conn_t *c = ctx;
    session_t *ss = httpd_session(c);
    ss->pending = NULL;
    otlp_outcome(c, ss, o);
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

httpd_next_t routes_otlp_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                              const http1_request_t *req)
{
    if (otlp_content_ok(c, ss, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_BAD_REQUEST);
        return HTTPD_ANSWERED;
    }
    return HTTPD_READ_BODY;
}

/* Each log record becomes an event (otlp.h), the ones refused are counted in the partialSuccess
 * answer. */
void routes_otlp_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len)
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
    ss->pending = pipeline_submit(p, (uint64_t)(uintptr_t)c, r, otlp_on_outcome, c);
    if (!ss->pending) {
        httpd_respond_error(c, 503, "out of memory", -1, "Retry-After: 1\r\n", 1);
        return;
    }
    httpd_defer(c);
}
