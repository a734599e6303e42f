/* approve: POST /api/approvals/{approval_id} at the gateway (proto/websocket.md, "Approvals"):
 * a person's decision on an approval that ingest holds, checked here and handed to ingest.
 *
 * Checks, in this order: X-ADW-Forwarded present (508: a decision routed back to a gateway);
 * the Origin allow-list (403); decide tokens configured (else 403); the token, from the
 * Authorization Bearer header only (none or wrong: 401; a read or full token that is not a
 * decide token: 403); the body's size (over APPROVE_BODY_MAX: 413; no Content-Length on
 * HTTP/1.1: 411); the approval_id's shape (else 404); then, once the body is in, the body (not
 * JSON, decision neither allow nor deny, a reason that is not a string of at most
 * APPROVE_REASON_MAX bytes: 400); then the approval in adw_approvals, read on the database
 * workers (unknown: 404; a run the decide token does not cover: 403; no longer pending: 409);
 * then the decision goes to ingest (forward.h) and ingest's answer is relayed (ingest
 * unreachable: 502; the forwarding queue full: 503). Each decision attempt is logged with its
 * decider's name, the approval and the status, never the token.
 *
 * Threads: the loop thread only.
 */
#ifndef ADW_GATEWAY_APPROVE_H
#define ADW_GATEWAY_APPROVE_H

#include <stddef.h>

#include "wsstate.h"

#define APPROVE_PATH "/api/approvals/"
#define APPROVE_BODY_MAX 4096
#define APPROVE_REASON_MAX 1000
#define APPROVE_ID_LEN 32

/* Returns 1 when path (borrowed) is a decision's path, /api/approvals/<something>. */
int approve_match(const char *path);

/* LWS_CALLBACK_HTTP for a POST on approve_match's path: runs the checks that need no body;
 * refuses at once (a whole response, connection closed) or sets ss->approve to wait for the
 * body. Returns 0, or -1 to close the connection. */
int approve_start(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const char *path);

/* LWS_CALLBACK_HTTP_BODY: takes in[0..len) of the body. Returns 0, or -1 to close. */
int approve_body(ws_server_t *s, struct lws *wsi, ws_session_t *ss, const void *in, size_t len);

/* LWS_CALLBACK_HTTP_BODY_COMPLETION: checks the body and goes on with the lookup. Returns 0,
 * or -1 to close. */
int approve_body_done(ws_server_t *s, struct lws *wsi, ws_session_t *ss);

/* Drops *a: its lookup and forwarded request, if any, will not call back. Accepts NULL; nulls
 * *a. */
void approve_destroy(approve_t **a);

#endif
