/* hook_answer: what /api/hooks answers Claude Code (proto/http.md, "Hook answers"): with no
 * decision, 200 and the body {} (nothing Claude Code could read as one); with a decision on a
 * PreToolUse hook (an approval, a budget), 200 and Claude Code's PreToolUse output
 *   {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"|"deny",
 *    "permissionDecisionReason":"..."}}
 * Either way the header X-ADW-Event-Id names the stored hook event.
 *
 * Loop thread only (it writes through httpd_respond).
 */
#ifndef ADW_HOOK_ANSWER_H
#define ADW_HOOK_ANSWER_H

#include <stdint.h>

#include "httpd.h"

/* Answers c's request 200 {} with X-ADW-Event-Id: event_id. c may be gone when this returns. */
void hook_answer_none(httpd_conn_t *c, int64_t event_id);

/* Answers c's request with a PreToolUse decision: decision "allow" or "deny" (borrowed),
 * reason (borrowed, UTF-8; NULL: none), and X-ADW-Event-Id: event_id (<= 0: no header).
 * c may be gone when this returns. */
void hook_answer_decision(httpd_conn_t *c, const char *decision, const char *reason,
                          int64_t event_id);

#endif
