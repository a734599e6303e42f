/* routes_events: POST /api/events, /api/events/broadcast (one event, an array, or NDJSON) and
 * POST /api/hooks (a Claude Code hook body, ?adw_id=&step= or X-ADW-Id and X-ADW-Step): checked,
 * handed to the pipeline, and answered once committed: {"status":"broadcasted","id":N} or
 * "ids":[...]; a hook {} or a decision (hook_answer.h: a budget's deny, or an approval's,
 * routes_approvals.h). Private to the route files (routes_internal.h).
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_EVENTS_H
#define ADW_ROUTES_EVENTS_H

#include <stddef.h>

#include "http1.h"
#include "httpd.h"
#include "routes_internal.h"

/* The rest of a checked head (token and body length done) of ROUTE_EVENTS or ROUTE_HOOKS: the
 * Content-Type and, for a hook, its adw_id and step into ss. Returns HTTPD_READ_BODY, or
 * HTTPD_ANSWERED when refused (415 counted, 400). */
httpd_next_t routes_events_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                                const http1_request_t *req);

/* The whole body (borrowed): decoded, checked and handed to the pipeline (c deferred until the
 * outcome answers it), or refused (answered and counted). */
void routes_events_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body, size_t len);

#endif
