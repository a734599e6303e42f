/* routes_approvals: /api/approvals (routes_approvals.h): the list of held approvals, a
 * decision's head (X-ADW-Decided-By) and body ({"decision","reason"}), handed to the registry
 * (approvals.h), and the hold of a stored PreToolUse hook a rule matches.
 */
#include "routes_approvals.h"

#include <errno.h>
#include <string.h>

#include "approval_event.h"
#include "approvals.h"
#include "buf.h"
#include "codec.h"
#include "http1_query.h"
#include "routes_check.h"

/* X-ADW-Decided-By: 1..64 of [A-Za-z0-9._:@-] into ss->decided_by ("" when absent). Returns
 * 0, or -1 when malformed. */
static int decided_by(session_t *ss, const http1_request_t *req)
{
    ss->decided_by[0] = '\0';
    const http1_str_t *h = http1_header_get(&req->headers, "X-ADW-Decided-By");
    if (!h)
        return 0;
    if (h->len < 1 || h->len > APPROVALS_NAME_MAX)
        return -1;
    for (size_t i = 0; i < h->len; i++) {
        char ch = h->p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._:@-", ch)))
            return -1;
    }
    memcpy(ss->decided_by, h->p, h->len);
    ss->decided_by[h->len] = '\0';
    return 0;
}

/* GET /api/approvals (?status=pending|all: what this ingest holds) and
 * POST /api/approvals/{id}: both need the bearer token when one is set. */
httpd_next_t routes_approvals_head(routes_t *rt, httpd_conn_t *c, session_t *ss,
                                   const http1_request_t *req, const char *path, int is_get,
                                   int is_post)
{
    int has_body = req->content_length > 0 || req->chunked;
    int list = !strcmp(path, "/api/approvals");
    if ((list && !is_get) || (!list && !is_post)) {
        httpd_respond_error(c, 405,
                            list ? "method not allowed: use GET" : "method not allowed: use POST",
                            -1, list ? "Allow: GET, HEAD\r\n" : "Allow: POST\r\n", has_body);
        return HTTPD_ANSWERED;
    }
    if (!routes_token_ok(rt, req)) {
        pipeline_count_rejected(rt->o.pipeline, PIPELINE_REJECT_UNAUTHORIZED);
        httpd_respond_error(c, 401, "missing or wrong bearer token", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    if (list) {
        char status[16] = "";
        size_t n = 0;
        int rc = req->query.p ? http1_query_get(req->query, "status", status, sizeof status, &n)
                              : -ENOENT;
        if (rc == 0 && n && strcmp(status, "pending") && strcmp(status, "all") &&
            strcmp(status, "allowed") && strcmp(status, "denied") && strcmp(status, "expired"))
            rc = -EINVAL;
        if (rc && rc != -ENOENT) {
            httpd_respond_error(c, 400, "status must be pending, allowed, denied, expired or all",
                                -1, NULL, has_body);
            return HTTPD_ANSWERED;
        }
        buf_t *b = &rt->scratch;
        buf_reset(b);
        /* Ingest holds only pending approvals; ended ones are in adw_approvals. */
        int held = rc == -ENOENT || !n || !strcmp(status, "pending") || !strcmp(status, "all");
        int bad = held ? approvals_list(rt->o.approvals, b) : buf_puts(b, "{\"approvals\":[]}");
        httpd_respond(c, 200, "application/json", bad ? NULL : b->data, b->len, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    const char *id = path + 15;
    if (!approval_event_id_valid(id, strlen(id))) {
        httpd_respond_error(c, 404, "no approval: an approval_id is 32 lowercase hex characters",
                            -1, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    memcpy(ss->approval_id, id, APPROVAL_ID_LEN + 1);
    if (decided_by(ss, req)) {
        httpd_respond_error(c, 400, "X-ADW-Decided-By must be 1-64 characters of [A-Za-z0-9._:@-]",
                            -1, NULL, has_body);
        return HTTPD_ANSWERED;
    }
    if (httpd_check_body(c))
        return HTTPD_ANSWERED;
    ss->route = ROUTE_DECIDE;
    ss->ndjson = 0;
    if (!routes_content_type_ok(ss, req) || ss->ndjson) {
        httpd_respond_error(c, 415, "unsupported Content-Type: use application/json", -1, NULL, 1);
        return HTTPD_ANSWERED;
    }
    return HTTPD_READ_BODY;
}

/* POST /api/approvals/{id}: {"decision":"allow"|"deny","reason":"..."} (reason optional). */
void routes_approvals_body(routes_t *rt, httpd_conn_t *c, session_t *ss, const char *body,
                           size_t len)
{
    char err[256];
    json_t *v = NULL;
    if (!len || codec_json_parse(body, len, &v, err, sizeof err)) {
        httpd_respond_error(
            c, 400, len ? err : "empty body: send {\"decision\":\"allow\"|\"deny\"}", -1, NULL, 0);
        return;
    }
    const char *decision = json_string_value(json_object_get(v, "decision"));
    json_t *reason = json_object_get(v, "reason");
    const char *why = NULL;
    if (!json_is_object(v))
        why =
            "the body must be a JSON object: {\"decision\":\"allow\"|\"deny\",\"reason\":\"...\"}";
    else if (!decision || (strcmp(decision, "allow") && strcmp(decision, "deny")))
        why = "\"decision\" must be \"allow\" or \"deny\"";
    else if (reason && !json_is_null(reason) &&
             (!json_is_string(reason) || json_string_length(reason) > APPROVALS_REASON_MAX ||
              memchr(json_string_value(reason), '\0', json_string_length(reason))))
        why = "\"reason\" must be a string of at most 1000 bytes of UTF-8";
    if (why) {
        json_decref(v);
        httpd_respond_error(c, 400, why, -1, NULL, 0);
        return;
    }
    if (!rt->o.approvals) {
        json_decref(v);
        httpd_respond_error(c, 404, "no approval: this ingest holds none", -1, NULL, 0);
        return;
    }
    ss->role = ROLE_DECIDER;
    const char *text = json_string_value(reason);
    approvals_decide(rt->o.approvals, c, ss->approval_id, !strcmp(decision, "allow"),
                     text && *text ? text : NULL, ss->decided_by[0] ? ss->decided_by : "ingest");
    json_decref(v);
}

int routes_approvals_hold(routes_t *rt, httpd_conn_t *c, session_t *ss, const pipeline_outcome_t *o,
                          const json_t *hook)
{
    const adw_event_t *ev = &o->events[0];
    const approval_rule_t *rule =
        hook && o->nids == 1
            ? approvals_match(rt->o.approvals, ev->adw_id,
                              json_string_value(json_object_get(hook, "tool_name")),
                              json_object_get(hook, "tool_input"))
            : NULL;
    if (!rule)
        return 0;
    int rc = approvals_request(rt->o.approvals, c, rule, ev, o->ids[0], hook, ss->approval_id);
    if (rc == 0) {
        ss->role = ROLE_HOOK;
        return 1;
    }
    httpd_respond_error(c, 503,
                        rc == -EAGAIN      ? "too many approvals waiting, retry later "
                                             "(ADW_INGEST_APPROVALS_MAX)"
                        : rc == -ESHUTDOWN ? "shutting down: no approval can be asked"
                                           : "out of memory",
                        -1, NULL, 0);
    return 1;
}

void routes_approvals_closed(routes_t *rt, httpd_conn_t *c, session_t *ss)
{
    if (ss->role == ROLE_HOOK)
        approvals_hook_closed(rt->o.approvals, ss->approval_id, c);
    else if (ss->role == ROLE_DECIDER)
        approvals_decider_closed(rt->o.approvals, ss->approval_id, c);
    ss->role = ROLE_NONE;
}
