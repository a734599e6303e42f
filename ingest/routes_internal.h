/* routes_internal: what ingest's route files share: a connection's session and the routes'
 * state. The files are routes.c (the handler: paths, methods, the bearer token, GET /healthz,
 * /readyz, /metrics), routes_check.c (checks of a head more than one route makes),
 * routes_events.c (POST /api/events, /api/hooks), routes_otlp.c (POST /v1/logs, /v1/metrics)
 * and routes_approvals.c (/api/approvals); only they include it and their headers. Everyone
 * else sees routes.h.
 *
 * Loop thread only.
 */
#ifndef ADW_ROUTES_INTERNAL_H
#define ADW_ROUTES_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "adw_limits.h"
#include "approval_event.h"
#include "approvals.h"
#include "buf.h"
#include "http1.h"
#include "otlp.h"
#include "pipeline.h"
#include "routes.h"

typedef enum route {
    ROUTE_EVENTS,
    ROUTE_HOOKS,
    ROUTE_OTLP_LOGS,
    ROUTE_OTLP_METRICS,
    ROUTE_DECIDE, /* POST /api/approvals/{id} */
} route_t;

/* What a connection's deferred request is to the approvals registry. */
enum { ROLE_NONE = 0, ROLE_HOOK, ROLE_DECIDER };

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

/* One of these per ingest (routes_new): the options and the buffers every answer reuses. */
struct routes_t {
    routes_options_t o;
    buf_t scratch;
    buf_t inflated; /* a gzip body, inflated */
};

#endif
