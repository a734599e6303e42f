/* hook: a Claude Code hook's JSON, mapped to one ADW event.
 *
 * What `POST /api/hooks` and `adw-send --hook` store. Given the JSON that Claude Code hands a
 * hook (on stdin for command hooks, as the body for HTTP hooks), hook_to_event() builds
 *
 *   {"type":"adw_event","adw_id":A,"step":S,"agent_id":I,"agent_type":T,
 *    "event_type":<hook_event_name>,"summary":<one line>,"payload":<the hook JSON>}
 *
 * `step` only when given. The adw_id is the caller's, else the first 8 characters of the
 * hook's `session_id`. Hook event names this module does not know pass through unchanged.
 *
 * Subagents: Claude Code puts `agent_id` and `agent_type` at the top of every hook body sent
 * from inside a subagent (SubagentStart, SubagentStop, and each tool hook the subagent runs:
 * PreToolUse, PostToolUse, PostToolUseFailure, PermissionRequest...); a session started with
 * --agent carries `agent_type` alone. The event's `agent_id` / `agent_type` are those, each
 * when it is a string of 1..ADW_AGENT_ID_MAX (ADW_AGENT_TYPE_MAX) bytes of UTF-8 without NUL
 * (hook_agent_text); any other value (missing, empty, too long, not a string) leaves the key
 * out and is no error. The body stays in the payload either way.
 *
 * Summary: the one line of summary.h (hook_line_describe). Payload: the hook JSON, shortened
 * by fit.h (hook_payload_fit) when it is over ADW_PAYLOAD_MAX bytes of compact JSON; a
 * payload that fits as it is stays equal to the hook JSON. This header includes both, so
 * that it stays the one header of the hook API.
 *
 * Tokens and cost: a hook payload is the hook JSON as sent, so only whatever top-level
 * `cost_usd`/`*_tokens` keys Claude Code put there feed a run's totals.
 *
 * Pure: no I/O, no global state; safe to call from any thread.
 */
#ifndef ADW_HOOK_H
#define ADW_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "adw_limits.h"
#include "fit.h"
#include "summary.h"

/* How many characters of session_id stand in for a missing adw_id. */
#define HOOK_SESSION_ID_PREFIX 8

/* Maps one hook JSON object to a new ADW event.
 * hook: borrowed, not modified (the payload is a deep copy).
 * adw_id: the run id (from ?adw_id= or X-ADW-Id); NULL or "" falls back to the first
 *   HOOK_SESSION_ID_PREFIX characters of the hook's `session_id`.
 * step: optional (NULL or "": no `step` key); at most ADW_STEP_MAX bytes of UTF-8.
 * Returns a new event (the caller owns the reference), or NULL with the reason in err
 * (always NUL-terminated when errlen > 0): hook not an object; hook_event_name missing, not
 * a string, empty or over ADW_EVENT_TYPE_MAX bytes; "no adw_id: give ?adw_id=, X-ADW-Id, or a
 * session_id"; adw_id not 1-64 chars of [A-Za-z0-9._:-]; step too long or not UTF-8; hook
 * nested deeper than ADW_JSON_DEPTH_MAX - 1 (the event adds one level); out of memory. */
json_t *hook_to_event(const json_t *hook, const char *adw_id, const char *step, char *err,
                      size_t errlen);

/* The parts of one ADW event, for hook_event_new(). Plain data; every pointer is borrowed. */
typedef struct hook_event_parts_t {
    const char *adw_id;     /* the run id; NULL or "": session_id's first 8 characters */
    const char *session_id; /* Claude Code's session id, the fallback for adw_id; may be NULL */
    const char *step;       /* optional (NULL or ""), at most ADW_STEP_MAX bytes of UTF-8 */
    const char *agent_id;   /* optional (NULL or ""), at most ADW_AGENT_ID_MAX bytes of UTF-8 */
    const char *agent_type; /* optional (NULL or ""), at most ADW_AGENT_TYPE_MAX bytes */
    const char *event_type; /* required, 1..ADW_EVENT_TYPE_MAX bytes of UTF-8 */
    const char *summary;    /* optional one-line text, normally hook_line_finish()'s */
    const char *status;     /* optional, at most ADW_STATUS_MAX bytes */
    bool has_duration;      /* add duration_ms */
    json_int_t duration_ms; /* >= 0, used when has_duration */
} hook_event_parts_t;

/* Builds an ADW event: the one place hook and streamjson make events. Keys in this order:
 * type ("adw_event"), adw_id, step, agent_id, agent_type, event_type, status, duration_ms,
 * summary, payload.
 * parts: borrowed. payload: optional object; its reference is always taken, also on error.
 *   It is checked for depth (at most ADW_JSON_DEPTH_MAX - 1) and passed through
 *   hook_payload_fit(payload, ADW_PAYLOAD_MAX).
 * On success stores a new event in *event_out (the caller owns it) and returns 0; else
 * returns -EINVAL (a part breaks the contract; reason in err, NUL-terminated when errlen > 0)
 * or -ENOMEM, with *event_out NULL. */
int hook_event_new(const hook_event_parts_t *parts, json_t *payload, json_t **event_out, char *err,
                   size_t errlen);

/* The string value of j (borrowed) when it is a valid agent key value: a JSON string of
 * 1..max bytes of UTF-8 without NUL (max: ADW_AGENT_ID_MAX or ADW_AGENT_TYPE_MAX). NULL for
 * anything else (NULL, not a string, empty, too long, NUL inside). Points into j. */
const char *hook_agent_text(const json_t *j, size_t max);

/* True when s (len bytes; borrowed, may be NULL) is a valid adw_id: 1..ADW_ADW_ID_MAX chars
 * of [A-Za-z0-9._:-]: event_adw_id_valid() (event.h), with NULL invalid. */
bool hook_adw_id_valid(const char *s, size_t len);

#endif
