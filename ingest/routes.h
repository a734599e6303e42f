/* routes: what adw-ingest's HTTP requests mean, as the handler of its HTTP engine (httpd.h).
 *   POST /api/events, /api/events/broadcast   one event, an array, or NDJSON (one per line)
 *   POST /api/hooks                           a Claude Code hook body (?adw_id=&step= or the
 *                                             X-ADW-Id and X-ADW-Step headers)
 *   POST /v1/logs                             OTLP/HTTP JSON logs (Claude Code's telemetry,
 *                                             otlp.h), plain or gzip; answers as an OTLP
 *                                             receiver: {} or {"partialSuccess":...}
 *   POST /v1/metrics                          OTLP/HTTP JSON metrics: checked, answered {},
 *                                             nothing kept
 *   POST /api/approvals/{id}                  a decision on a held hook (approvals.h)
 *   GET  /api/approvals                       the approvals this ingest holds
 *   GET  /healthz, /readyz, /metrics
 * Every POST, and GET /api/approvals, needs the bearer token when one is set. An accepted body
 * goes to the pipeline, and its answer ({"status":"broadcasted","id":N} or "ids":[...]; for a
 * hook {} or a decision, hook_answer.h, with X-ADW-Event-Id) is written once the events are
 * committed; refusals count in adw_ingest_rejected_total.
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_H
#define ADW_ROUTES_H

#include <stddef.h>

#include "httpd.h"
#include "approvals.h"
#include "metrics.h"
#include "pipeline.h"

typedef struct routes_t routes_t;

/* Answers /readyz: returns 1 when ready, else 0 with a reason in why. */
typedef int (*routes_ready_fn)(void *arg, char *why, size_t whylen);

typedef struct routes_options_t {
    pipeline_t *pipeline; /* borrowed; where accepted events go */
    const char *token;    /* bearer token every POST needs (borrowed); NULL or "" for none */
    metrics_t *metrics;   /* borrowed; what /metrics renders */
    int64_t max_body;     /* bytes a gzip body may inflate to (ADW_INGEST_MAX_BODY); 0: the
                             default */
    routes_ready_fn ready;
    void *ready_arg;
    approvals_t *approvals; /* borrowed; PreToolUse hooks matching its rules are held; NULL:
                               none (POST /api/approvals/{id} then answers 404) */
} routes_options_t;

/* Returns the routes, or NULL when out of memory. */
routes_t *routes_new(const routes_options_t *o);

/* Frees the routes; call after the server using them is destroyed. Accepts NULL and sets *r
 * to NULL. */
void routes_destroy(routes_t **r);

/* The handler to put in httpd_options_t: it borrows r, which must outlive the server. */
httpd_handler_t routes_handler(routes_t *r);

#endif
