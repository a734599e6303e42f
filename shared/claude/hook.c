#include "hook.h"
#include "err.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_ELLIPSIS "\xe2\x80\xa6" /* U+2026, 3 bytes */
#define HOOK_ELLIPSIS_LEN 3
/* "…[truncated " + digits + " bytes]": 3 + 11 + digits + 7 bytes, none escaped in JSON */
#define HOOK_MARK_FIXED 21
#define HOOK_FIT_ROUNDS 6   /* cut/replace rounds before the stub */
#define HOOK_WALK_DEPTH 256 /* strings deeper than this are left to the top-level pass */

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0 if broken. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (k > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return k;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Whether the k-byte sequence at p is blank for a one-line summary: ASCII space and control
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

/* ---- one-line summaries ------------------------------------------------------------- */

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
        size_t k = utf8_seq(p + i, n - i);
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

const char *hook_line_finish(hook_line_t *l, size_t *len)
{
    if (l->cut) {
        size_t n = l->len;
        if (n > ADW_SUMMARY_MAX - HOOK_ELLIPSIS_LEN) {
            n = ADW_SUMMARY_MAX - HOOK_ELLIPSIS_LEN;
            while (n > 0 && ((unsigned char)l->text[n] & 0xC0) == 0x80)
                n--;
        }
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

/* Appends sep and the string at key of obj when it is a non-empty string. */
static bool add_key(hook_line_t *l, const json_t *obj, const char *key, const char *sep)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    hook_line_puts(l, sep);
    hook_line_add_json(l, v);
    return true;
}

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
        if (!add_key(l, tool_input, r->key, r->sep) && r->alt)
            add_key(l, tool_input, r->alt, r->sep);
        if (r->path)
            add_key(l, tool_input, r->path, " in ");
        return;
    }
    for (size_t i = 0; i < sizeof TOOL_GENERIC / sizeof TOOL_GENERIC[0]; i++)
        if (add_key(l, tool_input, TOOL_GENERIC[i].key, TOOL_GENERIC[i].sep))
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

/* Writes the summary of hook event `name` into l (see the table in hook.h). */
static void describe(hook_line_t *l, const char *name, const json_t *hook)
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
        add_key(l, hook, "error", ": ");
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
    if (l->len == 0 && !l->cut)
        hook_line_puts(l, name);
}

/* ---- payload size ------------------------------------------------------------------- */

static int count_cb(const char *buffer, size_t size, void *data)
{
    (void)buffer;
    *(size_t *)data += size;
    return 0;
}

/* Bytes of j as compact JSON (json_dumps(JSON_COMPACT)), or SIZE_MAX if it cannot be
 * serialized. */
static size_t json_size(const json_t *j)
{
    size_t n = 0;
    if (json_dump_callback(j, count_cb, &n, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return SIZE_MAX;
    return n;
}

/* Bytes of n raw string bytes once escaped by jansson (without the quotes). */
static size_t escaped_len(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t')
            c += 2;
        else if (b < 0x20)
            c += 6;
        else
            c += 1;
    }
    return c;
}

static size_t digits(size_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Whether j nests arrays/objects deeper than limit levels (a scalar is 0 deep). */
static bool depth_over(const json_t *j, int limit)
{
    size_t i;
    const char *key;
    json_t *v;
    if (!json_is_object(j) && !json_is_array(j))
        return false;
    if (limit <= 0)
        return true;
    /* jansson's iteration API is not const-qualified; nothing is modified here */
    if (json_is_array(j)) {
        json_array_foreach((json_t *)j, i, v)
        {
            if (depth_over(v, limit - 1))
                return true;
        }
    } else {
        json_object_foreach((json_t *)j, key, v)
        {
            if (depth_over(v, limit - 1))
                return true;
        }
    }
    return false;
}

/* One of these per string of the payload, while shortening. */
typedef struct fit_str_t {
    json_t *s;
    size_t esc;  /* escaped length, without quotes */
    size_t mark; /* upper bound of the marker's length when cut */
} fit_str_t;

typedef struct fit_vec_t {
    fit_str_t *v;
    size_t n, cap;
} fit_vec_t;

static int collect(json_t *j, fit_vec_t *vec, int depth)
{
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_string(j)) {
        if (vec->n == vec->cap) {
            size_t cap = vec->cap ? vec->cap * 2 : 64;
            fit_str_t *p = realloc(vec->v, cap * sizeof *p);
            if (!p)
                return -ENOMEM;
            vec->v = p;
            vec->cap = cap;
        }
        size_t raw = json_string_length(j);
        vec->v[vec->n].s = j;
        vec->v[vec->n].esc = escaped_len(json_string_value(j), raw);
        vec->v[vec->n].mark = HOOK_MARK_FIXED + digits(raw);
        vec->n++;
        return 0;
    }
    if (depth >= HOOK_WALK_DEPTH)
        return 0;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            int rc = collect(v, vec, depth + 1);
            if (rc < 0)
                return rc;
        }
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
        {
            int rc = collect(v, vec, depth + 1);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Bytes saved by cutting every string to an escaped prefix of at most cap bytes. */
static size_t saving_at(const fit_vec_t *vec, size_t cap)
{
    size_t total = 0;
    for (size_t i = 0; i < vec->n; i++)
        if (vec->v[i].esc > cap + vec->v[i].mark)
            total += vec->v[i].esc - cap - vec->v[i].mark;
    return total;
}

/* Replaces string s by its prefix of at most cap escaped bytes, cut on a UTF-8 boundary,
 * and the marker. Returns 0 or -ENOMEM. */
static int cut_string(json_t *s, size_t cap)
{
    const char *p = json_string_value(s);
    size_t raw = json_string_length(s);
    size_t i = 0, esc = 0;
    while (i < raw) {
        size_t k = utf8_seq((const unsigned char *)p + i, raw - i);
        if (k == 0)
            k = 1; /* cannot happen for a jansson string */
        size_t c = k == 1 ? escaped_len(p + i, 1) : k;
        if (esc + c > cap)
            break;
        esc += c;
        i += k;
    }
    size_t room = i + HOOK_MARK_FIXED + 24;
    char *buf = malloc(room);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, p, i);
    int n = snprintf(buf + i, room - i, HOOK_ELLIPSIS "[truncated %zu bytes]", raw - i);
    int rc = json_string_setn(s, buf, i + (size_t)n) == 0 ? 0 : -ENOMEM;
    free(buf);
    return rc;
}

/* Cuts the longest strings to one common length so that about `excess` bytes go.
 * Returns 1 when it cut, 0 when strings alone cannot save that much, or -ENOMEM. */
static int cut_strings(json_t *payload, size_t excess)
{
    fit_vec_t vec = {0};
    int rc = collect(payload, &vec, 0);
    if (rc < 0)
        goto fail;
    if (saving_at(&vec, 0) < excess) {
        rc = 0;
        goto fail;
    }
    /* the largest cap whose saving still covers the excess */
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < vec.n; i++)
        if (vec.v[i].esc > hi)
            hi = vec.v[i].esc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (saving_at(&vec, mid) >= excess)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (size_t i = 0; i < vec.n; i++) {
        if (vec.v[i].esc > lo + vec.v[i].mark) {
            rc = cut_string(vec.v[i].s, lo);
            if (rc < 0)
                goto fail;
        }
    }
    rc = 1;
fail:
    free(vec.v);
    return rc;
}

/* One of these per top-level value, while shortening. */
typedef struct fit_top_t {
    void *iter;
    size_t size;
} fit_top_t;

static int top_cmp(const void *a, const void *b)
{
    size_t x = ((const fit_top_t *)a)->size, y = ((const fit_top_t *)b)->size;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Replaces the largest top-level values by a marker until about `excess` bytes went.
 * Returns 1 when it replaced something, 0 when nothing could go, or -ENOMEM. */
static int replace_values(json_t *payload, size_t excess)
{
    size_t n = json_object_size(payload), k = 0, saved = 0;
    int rc = 0;
    fit_top_t *tops = calloc(n ? n : 1, sizeof *tops);
    if (!tops)
        return -ENOMEM;
    for (void *it = json_object_iter(payload); it && k < n;
         it = json_object_iter_next(payload, it)) {
        if (strcmp(json_object_iter_key(it), "adw_truncated") == 0)
            continue;
        size_t sz = json_size(json_object_iter_value(it));
        if (sz == SIZE_MAX) {
            rc = -ENOMEM;
            goto fail;
        }
        tops[k].iter = it;
        tops[k].size = sz;
        k++;
    }
    qsort(tops, k, sizeof *tops, top_cmp);
    for (size_t i = 0; i < k && saved < excess; i++) {
        size_t mark = HOOK_MARK_FIXED + digits(tops[i].size) + 2;
        if (tops[i].size <= mark)
            break;
        char text[64];
        snprintf(text, sizeof text, HOOK_ELLIPSIS "[truncated %zu bytes]", tops[i].size);
        if (json_object_iter_set_new(payload, tops[i].iter, json_string(text)) != 0) {
            rc = -ENOMEM;
            goto fail;
        }
        saved += tops[i].size - mark;
        rc = 1;
    }
fail:
    free(tops);
    return rc;
}

int hook_payload_fit(json_t *payload, size_t max)
{
    if (!json_is_object(payload))
        return -EINVAL;
    size_t size = json_size(payload);
    if (size == SIZE_MAX)
        return -ENOMEM;
    if (size <= max)
        return 0;
    size_t original = size;
    if (json_object_set_new(payload, "adw_truncated", json_true()) != 0)
        return -ENOMEM;
    size = json_size(payload);
    for (int round = 0; round < HOOK_FIT_ROUNDS && size != SIZE_MAX && size > max; round++) {
        int rc = cut_strings(payload, size - max);
        if (rc == 0)
            rc = replace_values(payload, size - max);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        size = json_size(payload);
    }
    if (size == SIZE_MAX)
        return -ENOMEM;
    if (size <= max)
        return 0;
    /* thousands of small keys: keep a stub that says what happened */
    json_object_clear(payload);
    if (json_object_set_new(payload, "adw_truncated", json_true()) != 0 ||
        json_object_set_new(payload, "adw_original_bytes", json_integer((json_int_t)original)) != 0)
        return -ENOMEM;
    size = json_size(payload);
    if (size == SIZE_MAX)
        return -ENOMEM;
    return size <= max ? 0 : -E2BIG;
}

/* ---- events ------------------------------------------------------------------------- */

bool hook_adw_id_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > ADW_ADW_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Checks a text part: at most max bytes of UTF-8 without NUL (the C string ends there). */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n <= max && utf8_valid(s, n);
}

int hook_event_new(const hook_event_parts_t *parts, json_t *payload, json_t **event_out, char *err,
                   size_t errlen)
{
    json_t *ev = NULL;
    char prefix[HOOK_SESSION_ID_PREFIX + 1];
    const char *id = parts->adw_id;
    size_t idlen;
    int rc = -EINVAL;

    *event_out = NULL;
    if (id && *id) {
        idlen = strnlen(id, ADW_ADW_ID_MAX + 1);
        if (!hook_adw_id_valid(id, idlen)) {
            set_err(err, errlen, "adw_id must be 1-%d chars of [A-Za-z0-9._:-]", ADW_ADW_ID_MAX);
            goto fail;
        }
    } else if (parts->session_id && *parts->session_id) {
        idlen = strnlen(parts->session_id, HOOK_SESSION_ID_PREFIX);
        memcpy(prefix, parts->session_id, idlen);
        prefix[idlen] = '\0';
        id = prefix;
        if (!hook_adw_id_valid(id, idlen)) {
            set_err(err, errlen,
                    "adw_id from session_id must be 1-%d chars of [A-Za-z0-9._:-]; give "
                    "?adw_id= or X-ADW-Id",
                    ADW_ADW_ID_MAX);
            goto fail;
        }
    } else {
        set_err(err, errlen, "no adw_id: give ?adw_id=, X-ADW-Id, or a session_id");
        goto fail;
    }
    if (parts->step && *parts->step && !text_ok(parts->step, ADW_STEP_MAX)) {
        set_err(err, errlen, "step must be at most %d bytes of UTF-8", ADW_STEP_MAX);
        goto fail;
    }
    if (!parts->event_type || !*parts->event_type ||
        !text_ok(parts->event_type, ADW_EVENT_TYPE_MAX)) {
        set_err(err, errlen, "event_type must be 1-%d bytes of UTF-8", ADW_EVENT_TYPE_MAX);
        goto fail;
    }
    if (parts->status && *parts->status && !text_ok(parts->status, ADW_STATUS_MAX)) {
        set_err(err, errlen, "status must be at most %d bytes of UTF-8", ADW_STATUS_MAX);
        goto fail;
    }
    if (parts->summary && !text_ok(parts->summary, ADW_SUMMARY_MAX)) {
        set_err(err, errlen, "summary must be at most %d bytes of UTF-8", ADW_SUMMARY_MAX);
        goto fail;
    }
    if (parts->has_duration && parts->duration_ms < 0) {
        set_err(err, errlen, "duration_ms must be >= 0");
        goto fail;
    }
    if (payload) {
        if (!json_is_object(payload)) {
            set_err(err, errlen, "payload is not an object");
            goto fail;
        }
        if (depth_over(payload, ADW_JSON_DEPTH_MAX - 1)) {
            set_err(err, errlen, "payload nests deeper than %d levels", ADW_JSON_DEPTH_MAX - 1);
            goto fail;
        }
        rc = hook_payload_fit(payload, ADW_PAYLOAD_MAX);
        if (rc < 0) {
            set_err(err, errlen, "payload: %s", rc == -ENOMEM ? "out of memory" : strerror(-rc));
            goto fail;
        }
    }

    ev = json_object();
    if (!ev)
        goto nomem;
    if (json_object_set_new(ev, "type", json_string("adw_event")) != 0 ||
        json_object_set_new(ev, "adw_id", json_stringn(id, idlen)) != 0)
        goto nomem;
    if (parts->step && *parts->step &&
        json_object_set_new(ev, "step", json_string(parts->step)) != 0)
        goto nomem;
    if (json_object_set_new(ev, "event_type", json_string(parts->event_type)) != 0)
        goto nomem;
    if (parts->status && *parts->status &&
        json_object_set_new(ev, "status", json_string(parts->status)) != 0)
        goto nomem;
    if (parts->has_duration &&
        json_object_set_new(ev, "duration_ms", json_integer(parts->duration_ms)) != 0)
        goto nomem;
    if (parts->summary && json_object_set_new(ev, "summary", json_string(parts->summary)) != 0)
        goto nomem;
    if (payload) {
        int set = json_object_set_new(ev, "payload", payload);
        payload = NULL; /* taken, also on failure */
        if (set != 0)
            goto nomem;
    }
    *event_out = ev;
    return 0;

nomem:
    set_err(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    json_decref(ev);
    json_decref(payload);
    return rc;
}

json_t *hook_to_event(const json_t *hook, const char *adw_id, const char *step, char *err,
                      size_t errlen)
{
    hook_line_t line;
    json_t *ev = NULL;

    if (!json_is_object(hook)) {
        set_err(err, errlen, "hook JSON is not an object");
        return NULL;
    }
    const json_t *name = json_object_get(hook, "hook_event_name");
    if (!name) {
        set_err(err, errlen, "hook_event_name missing");
        return NULL;
    }
    if (!json_is_string(name)) {
        set_err(err, errlen, "hook_event_name is not a string");
        return NULL;
    }
    size_t nlen = json_string_length(name);
    if (nlen == 0 || nlen > ADW_EVENT_TYPE_MAX ||
        memchr(json_string_value(name), '\0', nlen) != NULL) {
        set_err(err, errlen, "hook_event_name must be 1-%d bytes without NUL", ADW_EVENT_TYPE_MAX);
        return NULL;
    }
    hook_line_init(&line);
    describe(&line, json_string_value(name), hook);
    json_t *payload = json_deep_copy(hook);
    if (!payload) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    hook_event_parts_t parts = {
        .adw_id = adw_id,
        .session_id = json_string_value(json_object_get(hook, "session_id")),
        .step = step,
        .event_type = json_string_value(name),
        .summary = hook_line_finish(&line, NULL),
    };
    if (hook_event_new(&parts, payload, &ev, err, errlen) < 0)
        return NULL;
    return ev;
}
