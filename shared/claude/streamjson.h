/* streamjson: `claude -p --output-format stream-json --verbose` output, mapped to ADW events.
 *
 * One of these per Claude Code run being watched. Feed it the run's stdout one line at a
 * time; each line gives zero or more events, built like hook.h's (same adw_id fallback, same
 * one-line summaries, same payload shortening to ADW_PAYLOAD_MAX with "adw_truncated").
 *
 *   line                                 event_type       summary / status / payload
 *   {"type":"system","subtype":"init"}   SystemInit       "Session init: <model> (N tools)";
 *                                                         payload: the message + tools_count
 *   {"type":"assistant"} content blocks, one event each, payload the block plus message_id,
 *   model, usage (nested: it does not feed the run's totals), session_id and
 *   parent_tool_use_id (inside a subagent), keys the block has not already:
 *     text                               TextBlock        the text's first non-blank line
 *     tool_use                           ToolUseBlock     the tool part of hook.h ("Bash: ls");
 *                                                         payload adds tool_name
 *     thinking, redacted_thinking        ThinkingBlock    first line, or "(redacted thinking)"
 *   {"type":"user"} tool_result blocks   ToolResultBlock  "<tool> result: <first line>" or
 *                                                         "<tool> error: ..." (the tool name
 *                                                         remembered from its tool_use, else
 *                                                         "Tool"); status "completed", or
 *                                                         "failed" when is_error; payload the
 *                                                         block plus tool_name, session_id
 *   {"type":"result"}                    ResultMessage    "Completed: 3 turns, 12.3 s, $0.0456"
 *                                                         or "Failed (<subtype>): ..."; status
 *                                                         "completed" (subtype success, not
 *                                                         is_error) or "failed"; duration_ms;
 *                                                         payload below
 *   anything else (other system subtypes, stream_event, user text, unknown block types,
 *   unknown message types)               StreamMessage    "<type>[: <subtype>]" or
 *                                                         "user: <first line>"; payload the
 *                                                         message (or the block)
 *
 * Subagents: Claude Code marks each message of a subagent with `parent_tool_use_id`, the id
 * of the Task (or Agent) tool_use that started it ({"type":"tool_use","id":"toolu_...",
 * "name":"Task","input":{"description":...,"prompt":...,"subagent_type":"Explore"}}). Every
 * event of such a message gets `agent_id` = parent_tool_use_id (when it is 1..ADW_AGENT_ID_MAX
 * bytes of UTF-8; else none) and `agent_type` = that tool_use's input.subagent_type when the
 * mapper has seen the tool_use (remembered with the tool names, as far back as they are) and
 * it is 1..ADW_AGENT_TYPE_MAX bytes; otherwise agent_id alone. Messages of the main agent
 * (parent_tool_use_id null or absent) get neither. ToolUseBlock payloads keep the block's
 * `id`, ToolResultBlock payloads its `tool_use_id`: the pair of one tool call.
 *
 * ResultMessage payload: cost_usd (total_cost_usd, else cost_usd), input_tokens,
 * output_tokens, cache_read_tokens, cache_creation_tokens (from usage's input_tokens,
 * output_tokens, cache_read_input_tokens, cache_creation_input_tokens), num_turns,
 * session_id, result, subtype, is_error, duration_api_ms, and errors / permission_denials
 * when present. Only this event carries the top-level token and cost keys, so a run's
 * totals count each once.
 *
 * Codec only: no I/O. Not thread-safe; one thread per streamjson_t.
 */
#ifndef ADW_STREAMJSON_H
#define ADW_STREAMJSON_H

#include <stddef.h>

#include <jansson.h>

typedef struct streamjson_t streamjson_t;

/* How many tool_use ids the mapper remembers to name later tool results and to give the
 * events of a subagent its agent_type. */
#define STREAMJSON_TOOL_MEMORY 256

/* Creates a mapper for one run.
 * adw_id: the run id (copied); NULL or "": the first 8 characters of the stream's session_id
 *   (each line's, else the last one seen).
 * step: optional (copied; NULL or "": none), at most ADW_STEP_MAX bytes of UTF-8.
 * Returns a new mapper the caller destroys with streamjson_destroy(), or NULL with errno
 * EINVAL (adw_id not 1-64 chars of [A-Za-z0-9._:-], step too long or not UTF-8) or ENOMEM. */
streamjson_t *streamjson_new(const char *adw_id, const char *step);

/* Frees the mapper and sets *sj to NULL. Accepts NULL and a pointer to NULL. */
void streamjson_destroy(streamjson_t **sj);

/* Maps one line of output (len bytes; a trailing "\n" or "\r\n" is allowed, no NUL needed).
 * On success stores a new JSON array of 0..n events in *events_out (the caller owns it) and
 * returns 0; a blank line gives an empty array. Otherwise *events_out is NULL and it returns
 * -EINVAL with the reason in err (NUL-terminated when errlen > 0): the line is not JSON, not
 * an object, has no adw_id to use, or an event breaks the contract (nesting too deep);
 * or -ENOMEM. Either way the mapper stays usable for the next line: the caller logs and goes
 * on. The mapper remembers each tool_use's id, name and (Task/Agent) subagent_type, the last
 * STREAMJSON_TOOL_MEMORY of them, to name tool results and type subagents, and the last
 * session_id. */
int streamjson_line(streamjson_t *sj, const char *line, size_t len, json_t **events_out, char *err,
                    size_t errlen);

#endif
