/* hook: a Claude Code hook's JSON, mapped to one ADW event.
 *
 * What `POST /api/hooks` and `adw-send --hook` store. Given the JSON that Claude Code hands a
 * hook (on stdin for command hooks, as the body for HTTP hooks), hook_to_event() builds
 *
 *   {"type":"adw_event","adw_id":A,"step":S,"event_type":<hook_event_name>,
 *    "summary":<one line>,"payload":<the hook JSON>}
 *
 * `step` only when given. The adw_id is the caller's, else the first 8 characters of the
 * hook's `session_id`. Hook event names this module does not know pass through unchanged.
 *
 * Summary: one line describing what happened, tool and target first:
 *   PreToolUse Write        "Write /src/auth.py"          (file_path; Read, Edit, MultiEdit too)
 *   NotebookEdit            "NotebookEdit /nb.ipynb"      (notebook_path)
 *   Bash                    "Bash: npm test"              (command)
 *   Grep, Glob              "Grep TODO in /src"           (pattern, and path when given)
 *   WebFetch, WebSearch     "WebFetch https://x.org", "WebSearch: jansson docs"
 *   Task, Agent             "Task: Find the auth code"    (description)
 *   mcp__server__tool       "mcp__github__get_issue: adw" (the first string argument)
 *   other tools             the name, then the first of file_path, notebook_path, path,
 *                           url, command, query, pattern, description that is a string
 *   PostToolUse             the tool part, then " (ok)" or " (failed)" when tool_response
 *                           tells (success, is_error, isError, error, interrupted, exit codes)
 *   PostToolUseFailure      the tool part, then " (failed: <error>)" or " (interrupted...)"
 *   PermissionRequest       "Permission for " and the tool part
 *   UserPromptSubmit        the prompt's first non-blank line
 *   Notification            the message (else the title)
 *   Stop, SubagentStop      "Stop", "Subagent stop (<agent_type>)"
 *   StopFailure             "Stop failure: <error>"
 *   SubagentStart           "Subagent start (<agent_type>)"
 *   SessionStart/End        "Session start (<source>)", "Session end (<reason>)"
 *   PreCompact              "Compact (<trigger>)"
 *   anything else, or an empty result: the event name.
 * Newlines, tabs, other control characters and U+0085/U+2028/U+2029 become spaces, runs of
 * them one space; a summary over ADW_SUMMARY_MAX bytes is cut on a UTF-8 boundary and ends
 * in "…".
 *
 * Payload limit: the contract caps `payload` at ADW_PAYLOAD_MAX bytes of compact JSON. Hook
 * bodies can be bigger (a Read's tool_response holds the whole file). Rather than reject the
 * event, hook_payload_fit() shortens it, in this order, until it fits:
 *   1. the longest strings anywhere in the payload are cut, all to one common length chosen
 *      so the total fits, on a UTF-8 boundary, each ending in "…[truncated N bytes]" (N raw
 *      bytes removed); strings shorter than that length are untouched;
 *   2. if strings alone cannot do it, the largest top-level values are replaced, largest
 *      first, by the string "…[truncated N bytes]" (N bytes of their compact JSON);
 *   3. if still too big (thousands of keys), the payload becomes
 *      {"adw_truncated":true,"adw_original_bytes":N}.
 * A shortened payload carries the top-level key "adw_truncated": true; a payload that fits
 * as it is stays untouched (equal to the hook JSON). Object keys are never cut. Sizes are
 * measured with jansson's serializer (JSON_COMPACT), the same bytes json_dumps() gives.
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

/* Shortens payload in place until its compact JSON is at most max bytes, as described at
 * the top of this file, adding "adw_truncated": true when it changed anything.
 * payload: borrowed, must be an object whose values are not shared with other documents
 * (a string shared elsewhere would be cut there too).
 * Returns 0 (it fits, shortened or not), -EINVAL (payload not an object), -E2BIG (max is
 * too small even for the step 3 stub) or -ENOMEM. On error the payload may be partly
 * shortened and should be discarded. */
int hook_payload_fit(json_t *payload, size_t max);

/* The parts of one ADW event, for hook_event_new(). Plain data; every pointer is borrowed. */
typedef struct hook_event_parts_t {
    const char *adw_id;     /* the run id; NULL or "": session_id's first 8 characters */
    const char *session_id; /* Claude Code's session id, the fallback for adw_id; may be NULL */
    const char *step;       /* optional (NULL or ""), at most ADW_STEP_MAX bytes of UTF-8 */
    const char *event_type; /* required, 1..ADW_EVENT_TYPE_MAX bytes of UTF-8 */
    const char *summary;    /* optional one-line text, normally hook_line_finish()'s */
    const char *status;     /* optional, at most ADW_STATUS_MAX bytes */
    bool has_duration;      /* add duration_ms */
    json_int_t duration_ms; /* >= 0, used when has_duration */
} hook_event_parts_t;

/* Builds an ADW event: the one place hook and streamjson make events. Keys in this order:
 * type ("adw_event"), adw_id, step, event_type, status, duration_ms, summary, payload.
 * parts: borrowed. payload: optional object; its reference is always taken, also on error.
 *   It is checked for depth (at most ADW_JSON_DEPTH_MAX - 1) and passed through
 *   hook_payload_fit(payload, ADW_PAYLOAD_MAX).
 * On success stores a new event in *event_out (the caller owns it) and returns 0; else
 * returns -EINVAL (a part breaks the contract; reason in err, NUL-terminated when errlen > 0)
 * or -ENOMEM, with *event_out NULL. */
int hook_event_new(const hook_event_parts_t *parts, json_t *payload, json_t **event_out, char *err,
                   size_t errlen);

/* True when s (len bytes) is a valid adw_id: 1..ADW_ADW_ID_MAX chars of [A-Za-z0-9._:-]. */
bool hook_adw_id_valid(const char *s, size_t len);

/* A one-line summary under construction. One of these per summary; plain data, usually on
 * the stack. Appends never fail: control characters and line breaks become one space,
 * leading and trailing space is dropped, and text past ADW_SUMMARY_MAX bytes is cut on a
 * UTF-8 boundary (hook_line_finish then adds "…"). Inputs are expected to be UTF-8 (as
 * jansson strings are); stray bytes of a broken sequence are dropped. */
typedef struct hook_line_t {
    char text[ADW_SUMMARY_MAX + 1]; /* NUL-terminated after hook_line_finish */
    size_t len;                     /* bytes in text */
    bool space;                     /* a space is pending before the next character */
    bool cut;                       /* text was dropped for lack of room */
} hook_line_t;

/* Empties l. */
void hook_line_init(hook_line_t *l);

/* Appends n bytes of s (NUL bytes included, as spaces). */
void hook_line_add(hook_line_t *l, const char *s, size_t n);

/* Appends a NUL-terminated string. */
void hook_line_puts(hook_line_t *l, const char *s);

/* Appends the first non-blank line of n bytes of s. */
void hook_line_add_first_line(hook_line_t *l, const char *s, size_t n);

/* Appends jansson string j (length-aware); anything else appends nothing. Returns whether
 * j was a non-empty string. */
bool hook_line_add_json(hook_line_t *l, const json_t *j);

/* Appends the tool part described at the top of this file for tool_name (NULL: nothing)
 * called with tool_input (borrowed; may be NULL or not an object). */
void hook_line_add_tool(hook_line_t *l, const char *tool_name, const json_t *tool_input);

/* Terminates the line and returns it (pointing into l): trailing space removed, "…"
 * appended if anything was cut. At most ADW_SUMMARY_MAX bytes, valid UTF-8 given UTF-8
 * input. Sets *len when len is not NULL. */
const char *hook_line_finish(hook_line_t *l, size_t *len);

#endif
