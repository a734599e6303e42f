/* api: the REST read API, answered from PostgreSQL on the dbpool's workers.
 *
 *   GET /api/adws?status=&limit=      {"adws":[run,...]}, most recently active first
 *   GET /api/adws/{adw_id}            run with "steps":[step,...] in the order steps began,
 *                                     "agents":[agent,...] in the order agents began,
 *                                     "tool_calls":N, "tool_failures":M; 404
 *   GET /api/events?adw_id=&steps=&event_types=&types=&agent_ids=&since=&limit=
 *                                     {"events":[...],"next_since":N}, id order
 *   GET /api/search?q=&adw_id=&limit=&before=
 *                                     {"events":[...],"next_before":N|null}, newest first
 *                                     (search.h)
 *   GET /api/approvals?status=&adw_id=&limit=
 *                                     {"approvals":[...]}, newest first (approvals.h)
 *
 * limit: 1..API_LIMIT_MAX (default API_LIMIT_DEFAULT); status and the filter keys are
 * comma-separated lists; since an id >= 0 (default 0). next_since is the id of the last event
 * returned (since when none): pass it as since for the next page. A database that ingest has
 * not created yet answers as an empty one.
 *
 * Run JSON: adw_id, status, current_step, event_count, cost_usd, tokens, input_tokens,
 * output_tokens, cache_read_tokens, cache_creation_tokens, first_ts, last_ts, duration_ms
 * (last_ts - first_ts), first_id, last_id, updated_at, stalled (adw_runs.stalled),
 * pending_approvals (the run's approvals still pending, approvals.h),
 * failed_steps (the steps whose status is failed, in the order they began), stop_failure
 * ({"reason","id"} from adw_runs.stop_failure and stop_failure_id, or null). Step JSON: step,
 * status, event_count, cost_usd, tokens, first_ts, last_ts, duration_ms (reported by the step's
 * completion event, else last_ts - first_ts), first_id, last_id. Agent JSON (adw_agents):
 * agent_id, agent_type, status, event_count, cost_usd, tokens, first_ts, last_ts. tool_calls
 * counts the run's rows of adw_tool_calls, tool_failures those whose status is failed.
 * Timestamps are RFC 3339 UTC with microseconds.
 */
#ifndef ADW_GATEWAY_API_H
#define ADW_GATEWAY_API_H

#include <stddef.h>
#include <stdint.h>

#include "adw_limits.h"
#include "dbpool.h"
#include "filter.h"
#include "search.h"

#define API_LIMIT_DEFAULT 100
#define API_LIMIT_MAX 1000
#define API_STATUS_VALUES_MAX 16

typedef enum api_kind {
    API_RUNS,      /* /api/adws */
    API_RUN,       /* /api/adws/{adw_id} */
    API_EVENTS,    /* /api/events */
    API_SEARCH,    /* /api/search (search.h) */
    API_APPROVALS, /* /api/approvals (approvals.h) */
} api_kind_t;

/* A parsed request. Plain data; api_query_free releases the filter and status list. */
typedef struct api_query_t {
    api_kind_t kind;
    char adw_id[ADW_ADW_ID_MAX + 1]; /* API_RUN */
    filter_list_t status;  /* API_RUNS, API_APPROVALS: wanted statuses (empty: any; approvals:
                              pending) */
    filter_t filter;       /* API_EVENTS, API_APPROVALS (adw_id); its scope (tokens.h) bounds every
                              kind */
    int64_t since;         /* API_EVENTS */
    int limit;             /* API_RUNS, API_EVENTS */
    search_query_t search; /* API_SEARCH (its adw_id list: filter's) */
} api_query_t;

/* Parses path (borrowed, percent-decoded, without the query) and params[0..n) into q. Returns 0,
 * or an HTTP status (400 bad parameter, 404 unknown path or invalid adw_id) with the reason in
 * err; q needs api_query_free either way. Unknown parameters are ignored. */
int api_parse(const char *path, const param_t *params, size_t n, api_query_t *q, char *err,
              size_t errlen);

/* Frees what q holds. */
void api_query_free(api_query_t *q);

/* Called on the loop thread with the answer: status and a JSON body (owned by the callee,
 * free()). */
typedef void (*api_reply_fn)(void *user, int status, char *body, size_t len);

typedef struct api_job_t api_job_t;

/* Queues q (moved into the job; q is left empty) on pool. reply is called once, later, from
 * dbpool_complete, unless api_cancel is called first. Returns the job, or NULL when the pool's
 * queue is full or memory runs out (then reply is never called). */
api_job_t *api_submit(dbpool_t *pool, api_query_t *q, api_reply_fn reply, void *user);

/* Stops reply from being called for job (the requester went away). Accepts NULL. */
void api_cancel(api_job_t *job);

/* Writes {"error":msg} to a new malloc'd string (length in *len); NULL when out of memory. */
char *api_error_body(const char *msg, size_t *len);

#endif
