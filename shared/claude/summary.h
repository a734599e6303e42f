/* summary: the one-line `summary` of an ADW event, built from a Claude Code hook body (or, by
 * streamjson, from a stream-json message).
 *
 * A line is built by appending text to a hook_line_t and finished by hook_line_finish().
 * Newlines, tabs, other control characters and U+0085/U+2028/U+2029 become spaces, runs of
 * them one space; a summary over ADW_SUMMARY_MAX bytes is cut on a UTF-8 boundary and ends
 * in "…".
 *
 * hook_line_describe() writes the summary of a hook body, tool and target first:
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
 *   StopFailure             "Stop failure: <error>" (error: rate_limit, overloaded,
 *                           billing_error, authentication_failed, server_error, ...; the
 *                           body's error_details and last_assistant_message stay in the
 *                           payload)
 *   SubagentStart           "Subagent start (<agent_type>)"
 *   SessionStart/End        "Session start (<source>)", "Session end (<reason>)"
 *   PreCompact              "Compact (<trigger>)"
 *   anything else, or an empty result: the event name.
 *
 * The names keep the hook_ prefix of hook.h, which includes this header.
 * Pure: no I/O, no global state; safe to call from any thread.
 */
#ifndef ADW_SUMMARY_H
#define ADW_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "adw_limits.h"

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

/* Appends sep, then the string at key of obj (borrowed), when that is a non-empty string;
 * else appends nothing. Returns whether it appended. */
bool hook_line_add_key(hook_line_t *l, const json_t *obj, const char *key, const char *sep);

/* Appends the tool part described at the top of this file for tool_name (NULL: nothing)
 * called with tool_input (borrowed; may be NULL or not an object). */
void hook_line_add_tool(hook_line_t *l, const char *tool_name, const json_t *tool_input);

/* Appends the summary of hook body `hook` (borrowed) for hook event `name`, as in the table
 * at the top of this file; the name itself when the table gives nothing. */
void hook_line_describe(hook_line_t *l, const char *name, const json_t *hook);

/* Appends s when the line is still empty: nothing kept (blanks alone keep nothing) and
 * nothing cut. */
void hook_line_fallback(hook_line_t *l, const char *s);

/* Terminates the line and returns it (pointing into l): trailing space removed, "…"
 * appended if anything was cut. At most ADW_SUMMARY_MAX bytes, valid UTF-8 given UTF-8
 * input. Sets *len when len is not NULL. */
const char *hook_line_finish(hook_line_t *l, size_t *len);

#endif
