#include "summary.h"
#include "claude_internal.h"

#include <string.h>

#include "utf8.h"

/* Whether the k-byte character at p is blank for a one-line summary: ASCII space and control
 * characters, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR. */
static bool is_blank(const unsigned char *p, size_t k)
{
    if (k == 1)
        return p[0] <= 0x20 || p[0] == 0x7F;
    if (k == 2)
        return p[0] == 0xC2 && p[1] == 0x85;
    if (k == 3)
        return p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9);
    return false;
}

/* ---- the line ----------------------------------------------------------------------- */

void hook_line_init(hook_line_t *l)
{
    l->len = 0;
    l->space = false;
    l->cut = false;
    l->text[0] = '\0';
}

void hook_line_add(hook_line_t *l, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n && !l->cut;) {
        size_t k = utf8_char_len(s + i, n - i);
        if (k == 0) {
            i++;
            continue;
        }
        if (is_blank(p + i, k)) {
            if (l->len > 0)
                l->space = true;
            i += k;
            continue;
        }
        size_t need = k + (l->space ? 1 : 0);
        if (l->len + need > ADW_SUMMARY_MAX) {
            l->cut = true;
            break;
        }
        if (l->space) {
            l->text[l->len++] = ' ';
            l->space = false;
        }
        memcpy(l->text + l->len, p + i, k);
        l->len += k;
        i += k;
    }
}

void hook_line_puts(hook_line_t *l, const char *s)
{
    hook_line_add(l, s, strlen(s));
}

void hook_line_add_first_line(hook_line_t *l, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && ((unsigned char)s[i] <= 0x20 || s[i] == 0x7F))
        i++;
    size_t e = i;
    while (e < n && s[e] != '\n' && s[e] != '\r')
        e++;
    hook_line_add(l, s + i, e - i);
}

bool hook_line_add_json(hook_line_t *l, const json_t *j)
{
    if (!json_is_string(j) || json_string_length(j) == 0)
        return false;
    hook_line_add(l, json_string_value(j), json_string_length(j));
    return true;
}

bool hook_line_add_key(hook_line_t *l, const json_t *obj, const char *key, const char *sep)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    hook_line_puts(l, sep);
    hook_line_add_json(l, v);
    return true;
}

void hook_line_fallback(hook_line_t *l, const char *s)
{
    if (l->len == 0 && !l->cut)
        hook_line_puts(l, s);
}

const char *hook_line_finish(hook_line_t *l, size_t *len)
{
    if (l->cut) {
        /* text holds whole characters only, so the cut never steps back more than 3 bytes */
        size_t n = utf8_truncate(l->text, l->len, ADW_SUMMARY_MAX - HOOK_ELLIPSIS_LEN);
        while (n > 0 && l->text[n - 1] == ' ')
            n--;
        memcpy(l->text + n, HOOK_ELLIPSIS, HOOK_ELLIPSIS_LEN);
        l->len = n + HOOK_ELLIPSIS_LEN;
        l->cut = false;
    }
    l->space = false;
    l->text[l->len] = '\0';
    if (len)
        *len = l->len;
    return l->text;
}

/* ---- hook bodies -------------------------------------------------------------------- */

/* Appends " (<value>)" when key of obj is a non-empty string. */
static void add_paren(hook_line_t *l, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return;
    hook_line_puts(l, " (");
    hook_line_add_json(l, v);
    hook_line_puts(l, ")");
}

/* One of these per tool with a known target. */
typedef struct tool_rule_t {
    const char *name;
    const char *key;  /* the target */
    const char *alt;  /* a second choice of target, or NULL */
    const char *sep;  /* between name and target: " " for paths, ": " for free text */
    const char *path; /* a key appended as " in <path>", or NULL */
} tool_rule_t;

static const tool_rule_t TOOL_RULES[] = {
    {"Bash", "command", NULL, ": ", NULL},
    {"Write", "file_path", NULL, " ", NULL},
    {"Read", "file_path", NULL, " ", NULL},
    {"Edit", "file_path", NULL, " ", NULL},
    {"MultiEdit", "file_path", NULL, " ", NULL},
    {"NotebookEdit", "notebook_path", "file_path", " ", NULL},
    {"NotebookRead", "notebook_path", "file_path", " ", NULL},
    {"Grep", "pattern", NULL, " ", "path"},
    {"Glob", "pattern", NULL, " ", "path"},
    {"LS", "path", NULL, " ", NULL},
    {"WebFetch", "url", NULL, " ", NULL},
    {"WebSearch", "query", NULL, ": ", NULL},
    {"Task", "description", "prompt", ": ", NULL},
    {"Agent", "description", "prompt", ": ", NULL},
};

/* Targets tried, in order, for a tool without a rule. */
static const struct {
    const char *key;
    const char *sep;
} TOOL_GENERIC[] = {
    {"file_path", " "}, {"notebook_path", " "}, {"path", " "},    {"url", " "},
    {"command", ": "},  {"query", ": "},        {"pattern", " "}, {"description", ": "},
};

void hook_line_add_tool(hook_line_t *l, const char *tool_name, const json_t *tool_input)
{
    if (!tool_name || !*tool_name)
        return;
    hook_line_puts(l, tool_name);
    if (!json_is_object(tool_input))
        return;
    if (strncmp(tool_name, "mcp__", 5) == 0) {
        const char *key;
        json_t *v;
        /* jansson's iteration API is not const-qualified; nothing is modified here */
        json_object_foreach((json_t *)tool_input, key, v)
        {
            if (json_is_string(v) && json_string_length(v) > 0) {
                hook_line_puts(l, ": ");
                hook_line_add_json(l, v);
                return;
            }
        }
        return;
    }
    for (size_t i = 0; i < sizeof TOOL_RULES / sizeof TOOL_RULES[0]; i++) {
        const tool_rule_t *r = &TOOL_RULES[i];
        if (strcmp(tool_name, r->name) != 0)
            continue;
        if (!hook_line_add_key(l, tool_input, r->key, r->sep) && r->alt)
            hook_line_add_key(l, tool_input, r->alt, r->sep);
        if (r->path)
            hook_line_add_key(l, tool_input, r->path, " in ");
        return;
    }
    for (size_t i = 0; i < sizeof TOOL_GENERIC / sizeof TOOL_GENERIC[0]; i++)
        if (hook_line_add_key(l, tool_input, TOOL_GENERIC[i].key, TOOL_GENERIC[i].sep))
            return;
}

/* What a PostToolUse's tool_response says: 1 ok, -1 failed, 0 it does not tell. */
static int response_status(const json_t *r)
{
    static const char *const exit_keys[] = {"exit_code", "exitCode", "returnCode"};
    const json_t *v;
    if (!json_is_object(r))
        return 0;
    v = json_object_get(r, "success");
    if (json_is_boolean(v))
        return json_is_true(v) ? 1 : -1;
    v = json_object_get(r, "is_error");
    if (!json_is_boolean(v))
        v = json_object_get(r, "isError");
    if (json_is_boolean(v))
        return json_is_true(v) ? -1 : 1;
    v = json_object_get(r, "error");
    if ((json_is_string(v) && json_string_length(v) > 0) || json_is_object(v))
        return -1;
    if (json_is_true(json_object_get(r, "interrupted")))
        return -1;
    for (size_t i = 0; i < sizeof exit_keys / sizeof exit_keys[0]; i++) {
        v = json_object_get(r, exit_keys[i]);
        if (json_is_integer(v))
            return json_integer_value(v) == 0 ? 1 : -1;
    }
    return 0;
}

void hook_line_describe(hook_line_t *l, const char *name, const json_t *hook)
{
    const char *tool = json_string_value(json_object_get(hook, "tool_name"));
    const json_t *input = json_object_get(hook, "tool_input");

    if (strcmp(name, "PreToolUse") == 0) {
        hook_line_add_tool(l, tool, input);
    } else if (strcmp(name, "PostToolUse") == 0) {
        if (tool && *tool)
            hook_line_add_tool(l, tool, input);
        else
            hook_line_puts(l, name);
        int st = response_status(json_object_get(hook, "tool_response"));
        if (st)
            hook_line_puts(l, st > 0 ? " (ok)" : " (failed)");
    } else if (strcmp(name, "PostToolUseFailure") == 0) {
        if (tool && *tool)
            hook_line_add_tool(l, tool, input);
        else
            hook_line_puts(l, name);
        const json_t *e = json_object_get(hook, "error");
        bool has_error = json_is_string(e) && json_string_length(e) > 0;
        hook_line_puts(l, json_is_true(json_object_get(hook, "is_interrupt")) ? " (interrupted"
                                                                              : " (failed");
        if (has_error) {
            hook_line_puts(l, ": ");
            hook_line_add_json(l, e);
        }
        hook_line_puts(l, ")");
    } else if (strcmp(name, "PermissionRequest") == 0) {
        if (tool && *tool) {
            hook_line_puts(l, "Permission for ");
            hook_line_add_tool(l, tool, input);
        }
    } else if (strcmp(name, "UserPromptSubmit") == 0) {
        const json_t *p = json_object_get(hook, "prompt");
        if (json_is_string(p))
            hook_line_add_first_line(l, json_string_value(p), json_string_length(p));
    } else if (strcmp(name, "Notification") == 0) {
        if (!hook_line_add_json(l, json_object_get(hook, "message")))
            hook_line_add_json(l, json_object_get(hook, "title"));
    } else if (strcmp(name, "Stop") == 0) {
        hook_line_puts(l, "Stop");
    } else if (strcmp(name, "SubagentStop") == 0) {
        hook_line_puts(l, "Subagent stop");
        add_paren(l, hook, "agent_type");
    } else if (strcmp(name, "SubagentStart") == 0) {
        hook_line_puts(l, "Subagent start");
        add_paren(l, hook, "agent_type");
    } else if (strcmp(name, "StopFailure") == 0) {
        hook_line_puts(l, "Stop failure");
        hook_line_add_key(l, hook, "error", ": ");
    } else if (strcmp(name, "SessionStart") == 0) {
        hook_line_puts(l, "Session start");
        add_paren(l, hook, "source");
    } else if (strcmp(name, "SessionEnd") == 0) {
        hook_line_puts(l, "Session end");
        add_paren(l, hook, "reason");
    } else if (strcmp(name, "PreCompact") == 0) {
        hook_line_puts(l, "Compact");
        add_paren(l, hook, "trigger");
    }
    hook_line_fallback(l, name);
}
