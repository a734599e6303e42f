/* routes_otlp: POST /v1/logs and /v1/metrics, OTLP/HTTP JSON (Claude Code's telemetry, otlp.h),
 * plain or gzip (up to the body limit once inflated). Each log record becomes an event; the
 * answer is an OTLP receiver's: {} or {"partialSuccess":...} once committed. Metrics are
 * checked and answered {}, nothing kept. Private to the route files (routes_internal.h).
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_OTLP_H
#define ADW_ROUTES_OTLP_H

#include <stddef.h>

#include "http1.h"
#include "httpd.h"
#include "routes_internal.h"

/* The rest of a checked head (token and body length done) of ROUTE_OTLP_LOGS or
 * ROUTE_OTLP_METRICS: Content-Type and Content-Encoding into ss. Returns HTTPD_READ_BODY, or
 * HTTPD_ANSWERED when refused (415, counted). */
httpd_next_t routes_otlp_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                              const http1_request_t *req);

/* The whole body (borrowed): inflated when gzip, decoded, its log records handed to the
 * pipeline (c deferred until the outcome answers it), or answered now (counted when refused). */
void routes_otlp_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len);

#endif
