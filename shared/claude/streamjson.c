#include "streamjson.h"
#include "err.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "event.h"
#include "hook.h"
#include "utf8.h"

/* One of these per run being watched. */
struct streamjson_t {
    char *adw_id;     /* owned; NULL: taken from session_id */
    char *step;       /* owned; NULL: none */
    char *session_id; /* owned; the last one seen, or NULL */
    struct {
        char *id;                    /* owned tool_use id */
        char *name;                  /* owned tool name */
        char *agent_type;            /* owned subagent_type of a Task/Agent call, or NULL */
    } tools[STREAMJSON_TOOL_MEMORY]; /* a ring; the oldest entry is overwritten */
    size_t tool_next;                /* the ring slot written next */
};

streamjson_t *streamjson_new(const char *adw_id, const char *step)
{
    streamjson_t *sj = NULL;
    if (adw_id && *adw_id && !event_adw_id_valid(adw_id, strnlen(adw_id, ADW_ADW_ID_MAX + 1))) {
        errno = EINVAL;
        return NULL;
    }
    if (step && *step) {
        size_t n = strnlen(step, ADW_STEP_MAX + 1);
        if (n > ADW_STEP_MAX || utf8_validate(step, n) != 0) {
            errno = EINVAL;
            return NULL;
        }
    }
    sj = calloc(1, sizeof *sj);
    if (!sj)
        goto fail;
    if (adw_id && *adw_id && !(sj->adw_id = strdup(adw_id)))
        goto fail;
    if (step && *step && !(sj->step = strdup(step)))
        goto fail;
    return sj;
fail:
    streamjson_destroy(&sj);
    errno = ENOMEM;
    return NULL;
}

void streamjson_destroy(streamjson_t **sjp)
{
    if (!sjp || !*sjp)
        return;
    streamjson_t *sj = *sjp;
    for (size_t i = 0; i < STREAMJSON_TOOL_MEMORY; i++) {
        free(sj->tools[i].id);
        free(sj->tools[i].name);
        free(sj->tools[i].agent_type);
    }
    free(sj->session_id);
    free(sj->step);
    free(sj->adw_id);
    free(sj);
    *sjp = NULL;
}

/* ---- memory of the run -------------------------------------------------------------- */

static int remember_session(streamjson_t *sj, const json_t *msg)
{
    const char *sid = json_string_value(json_object_get(msg, "session_id"));
    if (!sid || !*sid || (sj->session_id && strcmp(sj->session_id, sid) == 0))
        return 0;
    char *copy = strdup(sid);
    if (!copy)
        return -ENOMEM;
    free(sj->session_id);
    sj->session_id = copy;
    return 0;
}

/* The subagent_type a tool_use block starts a subagent of: its input's `subagent_type` when
 * the tool is Task or Agent and that is a valid agent_type; else NULL. Points into block. */
static const char *subagent_type_of(const char *name, const json_t *block)
{
    if (!name || (strcmp(name, "Task") != 0 && strcmp(name, "Agent") != 0))
        return NULL;
    return hook_agent_text(json_object_get(json_object_get(block, "input"), "subagent_type"),
                           ADW_AGENT_TYPE_MAX);
}

/* Remembers a tool_use: its id, tool name and the subagent_type it starts (may be NULL). */
static int remember_tool(streamjson_t *sj, const char *id, const char *name, const char *agent_type)
{
    if (!id || !*id || !name || !*name)
        return 0;
    char *id_copy = strdup(id), *name_copy = strdup(name);
    char *type_copy = agent_type ? strdup(agent_type) : NULL;
    if (!id_copy || !name_copy || (agent_type && !type_copy)) {
        free(id_copy);
        free(name_copy);
        free(type_copy);
        return -ENOMEM;
    }
    size_t slot = sj->tool_next;
    free(sj->tools[slot].id);
    free(sj->tools[slot].name);
    free(sj->tools[slot].agent_type);
    sj->tools[slot].id = id_copy;
    sj->tools[slot].name = name_copy;
    sj->tools[slot].agent_type = type_copy;
    sj->tool_next = (slot + 1) % STREAMJSON_TOOL_MEMORY;
    return 0;
}

/* The ring slot of the tool_use with this id, newest first; -1 if forgotten. */
static int tool_slot_of(const streamjson_t *sj, const char *id)
{
    if (!id)
        return -1;
    for (size_t k = 1; k <= STREAMJSON_TOOL_MEMORY; k++) {
        size_t slot = (sj->tool_next + STREAMJSON_TOOL_MEMORY - k) % STREAMJSON_TOOL_MEMORY;
        if (!sj->tools[slot].id)
            return -1;
        if (strcmp(sj->tools[slot].id, id) == 0)
            return (int)slot;
    }
    return -1;
}

/* The name of the tool whose tool_use had this id; NULL if forgotten. */
static const char *tool_name_of(const streamjson_t *sj, const char *id)
{
    int slot = tool_slot_of(sj, id);
    return slot < 0 ? NULL : sj->tools[slot].name;
}

/* ---- building events ---------------------------------------------------------------- */

/* Adds a deep copy of val under key unless obj has key already or val is NULL.
 * Returns 0 or -ENOMEM. */
static int put_absent(json_t *obj, const char *key, const json_t *val)
{
    if (!val || json_object_get(obj, key))
        return 0;
    return json_object_set_new(obj, key, json_deep_copy(val)) == 0 ? 0 : -ENOMEM;
}

/* Adds msg's session_id and a string parent_tool_use_id to payload. */
static int put_context(json_t *payload, const json_t *msg)
{
    const json_t *sid = json_object_get(msg, "session_id");
    const json_t *parent = json_object_get(msg, "parent_tool_use_id");
    if (json_is_string(sid) && put_absent(payload, "session_id", sid) < 0)
        return -ENOMEM;
    if (json_is_string(parent) && put_absent(payload, "parent_tool_use_id", parent) < 0)
        return -ENOMEM;
    return 0;
}

/* Builds one event of message msg from parts (event_type, status, duration) and the line,
 * appends it to events. A msg with a parent_tool_use_id (a subagent's message) gives the
 * event agent_id = that id and agent_type = the subagent_type of the Task/Agent tool_use with
 * that id, when remembered. payload: always taken. Returns 0, -EINVAL or -ENOMEM (reason in
 * err). */
static int emit(streamjson_t *sj, const json_t *msg, json_t *events, hook_event_parts_t *parts,
                hook_line_t *line, json_t *payload, char *err, size_t errlen)
{
    json_t *ev = NULL;
    hook_line_fallback(line, parts->event_type);
    parts->adw_id = sj->adw_id;
    parts->session_id = sj->session_id;
    parts->step = sj->step;
    parts->agent_id = hook_agent_text(json_object_get(msg, "parent_tool_use_id"), ADW_AGENT_ID_MAX);
    if (parts->agent_id) {
        int slot = tool_slot_of(sj, parts->agent_id);
        parts->agent_type = slot < 0 ? NULL : sj->tools[slot].agent_type;
    }
    parts->summary = hook_line_finish(line, NULL);
    int rc = hook_event_new(parts, payload, &ev, err, errlen);
    if (rc < 0)
        return rc;
    if (json_array_append_new(events, ev) != 0) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int nomem(json_t *payload, char *err, size_t errlen)
{
    json_decref(payload);
    set_err(err, errlen, "out of memory");
    return -ENOMEM;
}

/* Whether n bytes of s hold anything but blanks. */
static bool has_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] > 0x20 && s[i] != 0x7F)
            return true;
    return false;
}

/* Appends ": " and the first line of string j when it has text. */
static void add_first_line_of(hook_line_t *l, const json_t *j)
{
    if (!json_is_string(j) || !has_text(json_string_value(j), json_string_length(j)))
        return;
    hook_line_puts(l, ": ");
    hook_line_add_first_line(l, json_string_value(j), json_string_length(j));
}

/* Anything without a mapping of its own: the message (or block) as payload. */
static int map_other(streamjson_t *sj, const json_t *msg, json_t *events, char *err, size_t errlen)
{
    hook_line_t line;
    hook_event_parts_t parts = {.event_type = "StreamMessage"};
    const json_t *type = json_object_get(msg, "type");
    hook_line_init(&line);
    if (!hook_line_add_json(&line, type))
        hook_line_puts(&line, "message");
    if (!hook_line_add_key(&line, msg, "subtype", ": ") && json_is_string(type) &&
        strcmp(json_string_value(type), "stream_event") == 0) {
        const json_t *et = json_object_get(json_object_get(msg, "event"), "type");
        if (json_is_string(et)) {
            hook_line_puts(&line, ": ");
            hook_line_add_json(&line, et);
        }
    }
    json_t *payload = json_deep_copy(msg);
    if (!payload)
        return nomem(NULL, err, errlen);
    return emit(sj, msg, events, &parts, &line, payload, err, errlen);
}

/* One content block that no mapping knows (or a user's text): StreamMessage, the block as
 * payload (wrapped as {"block":...} when it is not an object). */
static int map_stray_block(streamjson_t *sj, const json_t *msg, const json_t *block,
                           const char *role, json_t *events, char *err, size_t errlen)
{
    hook_line_t line;
    hook_event_parts_t parts = {.event_type = "StreamMessage"};
    json_t *payload;
    const json_t *btype = json_object_get(block, "type");
    hook_line_init(&line);
    hook_line_puts(&line, role);
    if (json_is_string(btype) && strcmp(json_string_value(btype), "text") == 0 &&
        json_is_string(json_object_get(block, "text"))) {
        add_first_line_of(&line, json_object_get(block, "text"));
    } else if (json_is_string(btype)) {
        hook_line_puts(&line, ": ");
        hook_line_add_json(&line, btype);
        hook_line_puts(&line, " block");
    }
    if (json_is_object(block)) {
        payload = json_deep_copy(block);
    } else {
        payload = json_object();
        if (payload && json_object_set_new(payload, "block", json_deep_copy(block)) != 0)
            return nomem(payload, err, errlen);
    }
    if (!payload || put_context(payload, msg) < 0)
        return nomem(payload, err, errlen);
    return emit(sj, msg, events, &parts, &line, payload, err, errlen);
}

static int map_assistant(streamjson_t *sj, const json_t *msg, json_t *events, char *err,
                         size_t errlen)
{
    const json_t *m = json_object_get(msg, "message");
    const json_t *content = json_object_get(m, "content");
    const json_t *block;
    size_t i;
    if (!json_is_array(content))
        return map_other(sj, msg, events, err, errlen);

    json_array_foreach(content, i, block)
    {
        const char *btype = json_string_value(json_object_get(block, "type"));
        hook_line_t line;
        hook_event_parts_t parts = {0};
        const char *name = NULL;
        int rc;
        hook_line_init(&line);
        if (!btype) {
            parts.event_type = NULL;
        } else if (strcmp(btype, "text") == 0) {
            parts.event_type = "TextBlock";
            const json_t *t = json_object_get(block, "text");
            if (json_is_string(t))
                hook_line_add_first_line(&line, json_string_value(t), json_string_length(t));
        } else if (strcmp(btype, "tool_use") == 0) {
            parts.event_type = "ToolUseBlock";
            name = json_string_value(json_object_get(block, "name"));
            hook_line_add_tool(&line, name, json_object_get(block, "input"));
            rc = remember_tool(sj, json_string_value(json_object_get(block, "id")), name,
                               subagent_type_of(name, block));
            if (rc < 0)
                return nomem(NULL, err, errlen);
        } else if (strcmp(btype, "thinking") == 0) {
            parts.event_type = "ThinkingBlock";
            const json_t *t = json_object_get(block, "thinking");
            if (json_is_string(t))
                hook_line_add_first_line(&line, json_string_value(t), json_string_length(t));
            hook_line_fallback(&line, "(thinking)");
        } else if (strcmp(btype, "redacted_thinking") == 0) {
            parts.event_type = "ThinkingBlock";
            hook_line_puts(&line, "(redacted thinking)");
        }
        if (!parts.event_type) {
            rc = map_stray_block(sj, msg, block, "assistant", events, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        json_t *payload = json_deep_copy(block);
        if (!payload)
            return nomem(NULL, err, errlen);
        if ((json_is_string(json_object_get(m, "id")) &&
             put_absent(payload, "message_id", json_object_get(m, "id")) < 0) ||
            (json_is_string(json_object_get(m, "model")) &&
             put_absent(payload, "model", json_object_get(m, "model")) < 0) ||
            (json_is_object(json_object_get(m, "usage")) &&
             put_absent(payload, "usage", json_object_get(m, "usage")) < 0) ||
            put_context(payload, msg) < 0)
            return nomem(payload, err, errlen);
        if (name && !json_object_get(payload, "tool_name") &&
            json_object_set_new(payload, "tool_name", json_string(name)) != 0)
            return nomem(payload, err, errlen);
        rc = emit(sj, msg, events, &parts, &line, payload, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Appends ": <first line>" of a tool_result's content (a string, or blocks). */
static void add_result_text(hook_line_t *l, const json_t *content)
{
    const json_t *item;
    size_t i;
    if (json_is_string(content)) {
        add_first_line_of(l, content);
        return;
    }
    json_array_foreach(content, i, item)
    {
        const char *t = json_string_value(json_object_get(item, "type"));
        if (!t)
            continue;
        if (strcmp(t, "text") == 0) {
            add_first_line_of(l, json_object_get(item, "text"));
            return;
        }
        if (strcmp(t, "image") == 0) {
            hook_line_puts(l, ": [image]");
            return;
        }
    }
}

static int map_user(streamjson_t *sj, const json_t *msg, json_t *events, char *err, size_t errlen)
{
    const json_t *content = json_object_get(json_object_get(msg, "message"), "content");
    const json_t *block;
    size_t i;
    if (json_is_string(content)) {
        hook_line_t line;
        hook_event_parts_t parts = {.event_type = "StreamMessage"};
        hook_line_init(&line);
        hook_line_puts(&line, "user");
        add_first_line_of(&line, content);
        json_t *payload = json_deep_copy(msg);
        if (!payload)
            return nomem(NULL, err, errlen);
        return emit(sj, msg, events, &parts, &line, payload, err, errlen);
    }
    if (!json_is_array(content))
        return map_other(sj, msg, events, err, errlen);

    json_array_foreach(content, i, block)
    {
        const char *btype = json_string_value(json_object_get(block, "type"));
        int rc;
        if (!btype || strcmp(btype, "tool_result") != 0) {
            rc = map_stray_block(sj, msg, block, "user", events, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        bool failed = json_is_true(json_object_get(block, "is_error"));
        const char *name =
            tool_name_of(sj, json_string_value(json_object_get(block, "tool_use_id")));
        hook_line_t line;
        hook_event_parts_t parts = {
            .event_type = "ToolResultBlock",
            .status = failed ? "failed" : "completed",
        };
        hook_line_init(&line);
        hook_line_puts(&line, name ? name : "Tool");
        hook_line_puts(&line, failed ? " error" : " result");
        add_result_text(&line, json_object_get(block, "content"));
        json_t *payload = json_deep_copy(block);
        if (!payload)
            return nomem(NULL, err, errlen);
        if (name && !json_object_get(payload, "tool_name") &&
            json_object_set_new(payload, "tool_name", json_string(name)) != 0)
            return nomem(payload, err, errlen);
        if (put_context(payload, msg) < 0)
            return nomem(payload, err, errlen);
        rc = emit(sj, msg, events, &parts, &line, payload, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int map_init(streamjson_t *sj, const json_t *msg, json_t *events, char *err, size_t errlen)
{
    hook_line_t line;
    hook_event_parts_t parts = {.event_type = "SystemInit"};
    const json_t *tools = json_object_get(msg, "tools");
    char text[48];
    hook_line_init(&line);
    hook_line_puts(&line, "Session init");
    hook_line_add_key(&line, msg, "model", ": ");
    if (json_is_array(tools)) {
        size_t n = json_array_size(tools);
        snprintf(text, sizeof text, " (%zu tool%s)", n, n == 1 ? "" : "s");
        hook_line_puts(&line, text);
    }
    json_t *payload = json_deep_copy(msg);
    if (!payload)
        return nomem(NULL, err, errlen);
    if (json_is_array(tools) && !json_object_get(payload, "tools_count") &&
        json_object_set_new(payload, "tools_count",
                            json_integer((json_int_t)json_array_size(tools))) != 0)
        return nomem(payload, err, errlen);
    return emit(sj, msg, events, &parts, &line, payload, err, errlen);
}

/* Copies the integer usage[from] to payload[to] when it is >= 0. */
static int put_tokens(json_t *payload, const json_t *usage, const char *from, const char *to)
{
    const json_t *v = json_object_get(usage, from);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    return json_object_set_new(payload, to, json_integer(json_integer_value(v))) == 0 ? 0 : -ENOMEM;
}

static int map_result(streamjson_t *sj, const json_t *msg, json_t *events, char *err, size_t errlen)
{
    static const char *const copied[] = {"num_turns", "session_id", "result",
                                         "subtype",   "is_error",   "duration_api_ms"};
    hook_line_t line;
    hook_event_parts_t parts = {.event_type = "ResultMessage"};
    const char *subtype = json_string_value(json_object_get(msg, "subtype"));
    bool ok = !json_is_true(json_object_get(msg, "is_error")) &&
              (!subtype || strcmp(subtype, "success") == 0);
    const json_t *usage = json_object_get(msg, "usage");
    const json_t *cost = json_object_get(msg, "total_cost_usd");
    const json_t *dur = json_object_get(msg, "duration_ms");
    const json_t *turns = json_object_get(msg, "num_turns");
    char text[64];
    const char *sep = ": ";

    if (!json_is_number(cost))
        cost = json_object_get(msg, "cost_usd");
    parts.status = ok ? "completed" : "failed";
    if (json_is_integer(dur) && json_integer_value(dur) >= 0) {
        parts.has_duration = true;
        parts.duration_ms = json_integer_value(dur);
    } else if (json_is_real(dur) && json_real_value(dur) >= 0 && json_real_value(dur) < 9e15) {
        parts.has_duration = true;
        parts.duration_ms = (json_int_t)llround(json_real_value(dur));
    }

    hook_line_init(&line);
    hook_line_puts(&line, ok ? "Completed" : "Failed");
    if (!ok && subtype && *subtype && strcmp(subtype, "success") != 0) {
        hook_line_puts(&line, " (");
        hook_line_puts(&line, subtype);
        hook_line_puts(&line, ")");
    }
    if (json_is_integer(turns)) {
        snprintf(text, sizeof text, "%s%lld turn%s", sep, (long long)json_integer_value(turns),
                 json_integer_value(turns) == 1 ? "" : "s");
        hook_line_puts(&line, text);
        sep = ", ";
    }
    if (parts.has_duration) {
        snprintf(text, sizeof text, "%s%.1f s", sep, (double)parts.duration_ms / 1000.0);
        hook_line_puts(&line, text);
        sep = ", ";
    }
    if (json_is_number(cost)) {
        snprintf(text, sizeof text, "%s$%.4f", sep, json_number_value(cost));
        hook_line_puts(&line, text);
    }

    json_t *payload = json_object();
    if (!payload)
        return nomem(NULL, err, errlen);
    if (json_is_number(cost) &&
        json_object_set_new(payload, "cost_usd", json_real(json_number_value(cost))) != 0)
        return nomem(payload, err, errlen);
    if (put_tokens(payload, usage, "input_tokens", "input_tokens") < 0 ||
        put_tokens(payload, usage, "output_tokens", "output_tokens") < 0 ||
        put_tokens(payload, usage, "cache_read_input_tokens", "cache_read_tokens") < 0 ||
        put_tokens(payload, usage, "cache_creation_input_tokens", "cache_creation_tokens") < 0)
        return nomem(payload, err, errlen);
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        if (put_absent(payload, copied[i], json_object_get(msg, copied[i])) < 0)
            return nomem(payload, err, errlen);
    const json_t *errors = json_object_get(msg, "errors");
    const json_t *denials = json_object_get(msg, "permission_denials");
    if ((errors && !json_is_null(errors) && put_absent(payload, "errors", errors) < 0) ||
        (json_array_size(denials) > 0 && put_absent(payload, "permission_denials", denials) < 0))
        return nomem(payload, err, errlen);
    return emit(sj, msg, events, &parts, &line, payload, err, errlen);
}

/* ---- lines -------------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int streamjson_line(streamjson_t *sj, const char *line, size_t len, json_t **events_out, char *err,
                    size_t errlen)
{
    json_t *msg = NULL, *events = NULL;
    json_error_t jerr;
    int rc;

    assert(sj && events_out && (line || len == 0));
    *events_out = NULL;
    while (len > 0 && is_ws(line[len - 1]))
        len--;
    size_t start = 0;
    while (start < len && is_ws(line[start]))
        start++;

    events = json_array();
    if (!events) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (start == len) {
        *events_out = events;
        return 0;
    }
    msg = json_loadb(line + start, len - start, JSON_ALLOW_NUL, &jerr);
    if (!msg) {
        set_err(err, errlen, "not JSON: %s at column %d", jerr.text, jerr.column);
        rc = -EINVAL;
        goto fail;
    }
    if (!json_is_object(msg)) {
        set_err(err, errlen, "line is not a JSON object");
        rc = -EINVAL;
        goto fail;
    }
    rc = remember_session(sj, msg);
    if (rc < 0) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }

    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *subtype = json_string_value(json_object_get(msg, "subtype"));
    if (type && strcmp(type, "assistant") == 0)
        rc = map_assistant(sj, msg, events, err, errlen);
    else if (type && strcmp(type, "user") == 0)
        rc = map_user(sj, msg, events, err, errlen);
    else if (type && strcmp(type, "system") == 0 && subtype && strcmp(subtype, "init") == 0)
        rc = map_init(sj, msg, events, err, errlen);
    else if (type && strcmp(type, "result") == 0)
        rc = map_result(sj, msg, events, err, errlen);
    else
        rc = map_other(sj, msg, events, err, errlen);
    if (rc < 0)
        goto fail;

    json_decref(msg);
    *events_out = events;
    return 0;
fail:
    json_decref(msg);
    json_decref(events);
    return rc;
}
