/* routes_check: the checks of a request's head that more than one route makes: the bearer token
 * (every POST and GET /api/approvals) and a JSON Content-Type (POST /api/events, /api/hooks,
 * /api/approvals/{id}). Private to the route files (routes_internal.h).
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_CHECK_H
#define ADW_ROUTES_CHECK_H

#include "http1.h"
#include "routes_internal.h"

/* Whether req carries the bearer token rt->o.token (1), or none is set; else 0. */
int routes_token_ok(const routes_t *rt, const http1_request_t *req);

/* Whether req's Content-Type is one ss->route takes: JSON, or none (taken as JSON), returns 1;
 * NDJSON on ROUTE_EVENTS returns 1 and sets ss->ndjson (else it is set to 0); else 0. */
int routes_content_type_ok(session_t *ss, const http1_request_t *req);

#endif
