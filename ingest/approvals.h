/* approvals: the registry of held PreToolUse hooks (proto/http.md, "Approvals").
 *
 * A hook matching a rule (approval_rules.h), once stored, gets an approval: ingest submits
 * approval_requested and, once that is committed, holds the hook's HTTP answer until a
 * decision (approvals_decide: POST /api/approvals/{id}), the rule's timeout (its on_timeout
 * taken as a decision by "timeout"), the hook's connection closing (approval_expired "hook
 * connection closed") or shutdown (approval_expired "ingest stopping"). An approval moves
 * requesting -> pending -> deciding (or expiring) -> ended, in the loop thread only, so one
 * decision wins: a decision is taken only from pending, and a failed commit puts it back.
 * Ended approvals' outcomes are kept (the last APPROVALS_ENDED_MAX) so a late decision gets
 * 409. At start (and whenever the store becomes ready again) an expire scan ends every row
 * still pending in adw_approvals that this ingest does not hold ("ingest restarted").
 *
 * Loop thread only.
 */
#ifndef ADW_APPROVALS_H
#define ADW_APPROVALS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "approval_rules.h"
#include "buf.h"
#include "httpd.h"
#include "loop.h"
#include "metrics.h"
#include "pipeline.h"

#define APPROVALS_ENDED_MAX 10000 /* ended approvals whose outcome is remembered */
#define APPROVALS_REASON_MAX 1000 /* bytes of a decision's reason */
#define APPROVALS_NAME_MAX 64     /* bytes of X-ADW-Decided-By */

typedef struct approvals_t approvals_t;

typedef struct approvals_options_t {
    loop_t *loop;
    pipeline_t *pipeline;    /* borrowed; where approval events go */
    approval_rules_t *rules; /* taken (freed by approvals_destroy); NULL or none: no approvals */
    int64_t max_pending;     /* approvals held at once; over it a matching hook is answered 503 */
    metrics_t *metrics;      /* borrowed; may be NULL */
} approvals_options_t;

/* Reads the rules of spec: "@FILE" (the file's text) or the JSON itself; NULL or "": none
 * (returns NULL with err ""). Returns the rules (the caller's), or NULL with one line in err. */
approval_rules_t *approvals_load_rules(const char *spec, char *err, size_t errlen);

/* Returns the registry (its expire-scan timer on the loop), or NULL when out of memory (the
 * rules are then freed). */
approvals_t *approvals_new(const approvals_options_t *o);

/* Frees the registry; held hooks are not answered (their connections are the engine's).
 * Accepts NULL and sets *a to NULL. */
void approvals_destroy(approvals_t **a);

/* The rule a PreToolUse hook of run adw_id, tool tool_name, with tool_input (all borrowed)
 * matches, or NULL (no rules, no match). */
const approval_rule_t *approvals_match(const approvals_t *a, const char *adw_id,
                                       const char *tool_name, const json_t *tool_input);

/* Starts an approval for the committed PreToolUse hook event hook_ev (id hook_id; borrowed)
 * whose body is hook (borrowed), on the deferred request c, under rule (borrowed from the
 * rules). From here on the registry answers c: the decision, or 503 when the approval cannot
 * be stored. Writes the approval_id (APPROVAL_ID_LEN + 1 bytes) into id_out, for
 * approvals_hook_closed. Returns 0, or -ENOMEM / -EAGAIN (too many held; c not answered). */
int approvals_request(approvals_t *a, httpd_conn_t *c, const approval_rule_t *rule,
                      const adw_event_t *hook_ev, int64_t hook_id, const json_t *hook,
                      char *id_out);

/* The connection c of approval id's hook closed (c is not used). */
void approvals_hook_closed(approvals_t *a, const char *id, httpd_conn_t *c);

/* POST /api/approvals/{id}: decides approval id (allow or deny) with reason (borrowed, NULL:
 * none) on behalf of decided_by (borrowed). Answers c now (404, 409, 503) or, deferred, once
 * approval_decided is committed (200 {"approval_id","decision","id","waited_ms"}) or refused
 * (503). */
void approvals_decide(approvals_t *a, httpd_conn_t *c, const char *id, int allow,
                      const char *reason, const char *decided_by);

/* The connection c of a deferred decision on approval id closed (c is not used). */
void approvals_decider_closed(approvals_t *a, const char *id, httpd_conn_t *c);

/* Appends {"approvals":[...]} to out: the approvals this ingest holds, newest first (rows as
 * adw_approvals', proto/http.md). Returns 0 or -ENOMEM. */
int approvals_list(const approvals_t *a, buf_t *out);

/* Shutdown: every pending approval is expired ("ingest stopping"), its hook answered 503 once
 * that is committed (or refused); no new approval starts. Call before pipeline_stop. */
void approvals_stop(approvals_t *a);

/* Approvals held (any state before ended). */
size_t approvals_held(const approvals_t *a);

#endif
