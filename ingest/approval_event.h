/* approval_event: the system events of an approval (proto/http.md, "Approvals"), built and
 * validated as a submitted event is: approval_requested, approval_decided, approval_expired.
 * Each carries the run's adw_id and the step of the hook it is about (may be NULL), and no
 * status (so neither the run's status nor its stalled flag changes, rollup.h).
 * Pure: no I/O, no clock (the caller passes the times).
 */
#ifndef ADW_APPROVAL_EVENT_H
#define ADW_APPROVAL_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event.h"

#define APPROVAL_ID_LEN 32 /* lowercase hex characters of an approval_id */

/* What an approval_requested says. Plain data; every pointer is borrowed. */
typedef struct approval_request_info_t {
    const char *approval_id;
    const char *adw_id;
    const char *step;         /* NULL: none */
    const char *tool_name;    /* NULL: none */
    const char *tool_use_id;  /* NULL: none */
    const char *session_id;   /* NULL: none */
    const json_t *tool_input; /* NULL: none (copied, shortened to fit the payload limit) */
    const char *summary;      /* the hook's one-line summary ("Bash: rm -rf build/") */
    const char *rule;
    int timeout_s;
    int allow_on_timeout;
    int64_t expires_us;    /* Unix microseconds */
    int64_t hook_event_id; /* the stored PreToolUse event */
} approval_request_info_t;

/* Builds approval_requested:
 *   {"type":"system","event":"approval_requested","adw_id":A,"step":S,"summary":<summary>,
 *    "payload":{"approval_id","tool_name","tool_input","tool_use_id","session_id","rule",
 *    "timeout_s","on_timeout","expires_at","hook_event_id"}}
 * received at received_us. Returns 0 with ev filled (release with event_clear), or -EINVAL /
 * -ENOMEM with the reason in err (ev untouched). */
int approval_event_requested(const approval_request_info_t *a, int64_t received_us, adw_event_t *ev,
                             char *err, size_t errlen);

/* Builds approval_decided of approval_id (run adw_id, step may be NULL): payload
 * {"approval_id","decision":"allow"|"deny","reason":<reason or null>,"decided_by","waited_ms"},
 * summary "Allowed by <decided_by>: <tool_summary>" / "Denied by ...". Same returns. */
int approval_event_decided(const char *approval_id, const char *adw_id, const char *step, int allow,
                           const char *reason, const char *decided_by, int64_t waited_ms,
                           const char *tool_summary, int64_t received_us, adw_event_t *ev,
                           char *err, size_t errlen);

/* Builds approval_expired: payload {"approval_id","reason","waited_ms"}, summary
 * "Approval expired (<reason>): <tool_summary>". Same returns. */
int approval_event_expired(const char *approval_id, const char *adw_id, const char *step,
                           const char *reason, int64_t waited_ms, const char *tool_summary,
                           int64_t received_us, adw_event_t *ev, char *err, size_t errlen);

/* Writes us as RFC 3339 UTC with milliseconds ("2026-12-07T18:00:00.123Z") into out (at least
 * 25 bytes). */
void approval_event_time(int64_t us, char *out);

/* Whether s is an approval_id: APPROVAL_ID_LEN characters of [0-9a-f], then the string ends. */
int approval_event_id_valid(const char *s, size_t len);

#endif
