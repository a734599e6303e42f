/* routes_approvals: GET /api/approvals (?status=: the approvals this ingest holds), POST
 * /api/approvals/{id} ({"decision":"allow"|"deny","reason":"..."}, X-ADW-Decided-By), and the
 * approval a stored PreToolUse hook is held for when a rule matches it (approvals.h answers it
 * then). Private to the route files (routes_internal.h).
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_APPROVALS_H
#define ADW_ROUTES_APPROVALS_H

#include <stddef.h>

#include <jansson.h>

#include "http1.h"
#include "httpd.h"
#include "pipeline.h"
#include "routes_internal.h"

/* A head whose path is /api/approvals or starts with /api/approvals/ (path borrowed; is_get:
 * GET or HEAD, is_post: POST): answered here (the list, or a refusal: HTTPD_ANSWERED), or a
 * decision whose body is to be read (HTTPD_READ_BODY, ss->route ROUTE_DECIDE). */
httpd_next_t routes_approvals_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                                   const http1_request_t *req, const char *path, int is_get,
                                   int is_post);

/* A decision's whole body (borrowed): checked and handed to the registry, which answers c;
 * or refused (400, or 404 when this ingest holds no approvals). */
void routes_approvals_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body,
                           size_t len);

/* The committed hook of outcome o (o->status PIPELINE_OK, not denied; hook its body, borrowed;
 * NULL: no PreToolUse hook to hold) when a rule matches it: held for an approval (the registry
 * answers c from here on) or answered 503. Returns 1 then, or 0 when no rule matches (nothing
 * done, c not answered). */
int routes_approvals_hold(routes_t *rt, httpd_conn_t *c, session_t *ss, const pipeline_outcome_t *o,
                          const json_t *hook);

/* c closed while its deferred request holds or decides an approval: tells the registry, and
 * leaves ss->role ROLE_NONE. */
void routes_approvals_closed(routes_t *rt, httpd_conn_t *c, session_t *ss);

#endif
