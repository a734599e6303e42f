/* approvals: the REST view of adw_approvals (written by ingest's writer; proto/schema.sql).
 *
 *   GET /api/approvals?status=&adw_id=&limit=
 *       {"approvals":[approval,...]}, newest first (requested_id descending)
 *
 * status: pending (default), allowed, denied, expired, or all; a comma-separated list of them
 * is allowed. adw_id: a run or a comma list (a filter key as for /api/events: a read token's
 * scope applies as there). limit: 1..API_LIMIT_MAX (default API_LIMIT_DEFAULT).
 *
 * Approval JSON: approval_id, adw_id, step, tool_name, tool_use_id, summary, tool_input (the
 * JSON value), rule, status, requested_id, requested_at, expires_at, decided_id, decided_at,
 * decision, reason, decided_by, waited_ms (null where unset). Timestamps are RFC 3339 UTC with
 * microseconds. A database without the table (ingest older than schema version 5) answers
 * as one without approvals.
 *
 * Threads: a dbpool worker's (the connection is the caller's).
 */
#ifndef ADW_GATEWAY_APPROVALS_H
#define ADW_GATEWAY_APPROVALS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "filter.h"

#define APPROVALS_STATUS_ALL "all"

/* Checks a status value of the query (borrowed). Returns 1 for pending, allowed, denied,
 * expired or all, else 0. */
int approvals_status_ok(const char *v);

/* Runs the listing on conn for the statuses in status (borrowed; empty or holding "all": every
 * status), bounded by f's adw_id key and scope (borrowed), newest first, at most limit rows;
 * writes the JSON body to body. Returns the HTTP status: 200, 503 (the query failed: body holds
 * the reason for the client, the log the database's) or 500 (out of memory). */
int approvals_run(PGconn *conn, const filter_list_t *status, const filter_t *f, int limit,
                  buf_t *body);

/* Sets "pending_approvals" (the run's approvals whose status is pending) on the run object run,
 * or on each run object of the array run (borrowed, changed in place). A database without the
 * table counts 0. Returns 0, -EIO (the query failed; logged) or -ENOMEM. */
int approvals_pending_counts(PGconn *conn, json_t *run);

#endif
