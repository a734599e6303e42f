/* Unit tests for shared/claude/hook.c: Claude Code hook JSON -> ADW event. The summary line and
 * payload fitting on their own: test_summary.c, test_fit.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "adw_limits.h"
#include "event.h"
#include "jsonw.h"
#include "claudetest.h"

#define SESSION_PREFIX "abc12345"
static json_t *load_fixture(const char *name)
{
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/hooks/%s", ADW_TEST_DATA, name);
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    return j;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    return j;
}

/* Invariants every event must hold, whatever the input. */
static void check_event(const json_t *ev)
{
    assert_string_equal(str(ev, "type"), "adw_event");
    const char *id = str(ev, "adw_id");
    assert_non_null(id);
    assert_true(hook_adw_id_valid(id, strlen(id)));
    const char *et = str(ev, "event_type");
    assert_non_null(et);
    assert_true(strlen(et) >= 1 && strlen(et) <= ADW_EVENT_TYPE_MAX);
    const json_t *sum = json_object_get(ev, "summary");
    assert_true(json_is_string(sum));
    assert_true(json_string_length(sum) <= ADW_SUMMARY_MAX);
    for (size_t i = 0; i < json_string_length(sum); i++) {
        unsigned char c = (unsigned char)json_string_value(sum)[i];
        assert_true(c >= 0x20 && c != 0x7F);
    }
    const json_t *payload = json_object_get(ev, "payload");
    assert_true(json_is_object(payload));
    assert_true(compact_size(payload) <= ADW_PAYLOAD_MAX);
}

/* hook_to_event on text with adw_id NULL and step "build"; returns the summary (static). */
static const char *summary_of(const char *text)
{
    static char out[ADW_SUMMARY_MAX + 1];
    char err[128] = "";
    json_t *hook = parse(text);
    json_t *ev = hook_to_event(hook, NULL, "build", err, sizeof err);
    if (!ev)
        fail_msg("hook_to_event: %s", err);
    check_event(ev);
    snprintf(out, sizeof out, "%s", str(ev, "summary"));
    json_decref(ev);
    json_decref(hook);
    return out;
}

/* ---- one fixture per hook event ----------------------------------------------------- */

static const struct {
    const char *file;
    const char *event_type;
    const char *summary;
} FIXTURES[] = {
    {"session_start.json", "SessionStart", "Session start (startup)"},
    {"session_end.json", "SessionEnd", "Session end (prompt_input_exit)"},
    {"user_prompt_submit.json", "UserPromptSubmit", "Add a login endpoint with JWT"},
    {"pre_tool_use.json", "PreToolUse", "Write /src/auth.py"},
    {"post_tool_use.json", "PostToolUse", "Write /src/auth.py (ok)"},
    {"post_tool_use_mcp_failed.json", "PostToolUse", "mcp__github__get_issue: acme (failed)"},
    {"post_tool_use_failure.json", "PostToolUseFailure",
     "Bash: npm test (failed: Command failed with exit code 1 FAIL src/auth.test.js)"},
    {"notification.json", "Notification", "Claude needs your permission to use Bash"},
    {"stop.json", "Stop", "Stop"},
    {"subagent_start.json", "SubagentStart", "Subagent start (Explore)"},
    {"subagent_stop.json", "SubagentStop", "Subagent stop (Explore)"},
    {"pre_compact.json", "PreCompact", "Compact (manual)"},
    {"permission_request.json", "PermissionRequest", "Permission for Bash: rm -rf build"},
    {"stop_failure.json", "StopFailure", "Stop failure: overloaded"},
    {"unknown_event.json", "SomethingNew", "SomethingNew"},
};

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof FIXTURES / sizeof FIXTURES[0]; i++) {
        char err[128] = "";
        json_t *hook = load_fixture(FIXTURES[i].file);
        json_t *ev = hook_to_event(hook, NULL, "build", err, sizeof err);
        if (!ev)
            fail_msg("%s: %s", FIXTURES[i].file, err);
        check_event(ev);
        assert_string_equal(str(ev, "adw_id"), SESSION_PREFIX);
        assert_string_equal(str(ev, "step"), "build");
        assert_string_equal(str(ev, "event_type"), FIXTURES[i].event_type);
        if (strcmp(str(ev, "summary"), FIXTURES[i].summary) != 0)
            fail_msg("%s: summary \"%s\", want \"%s\"", FIXTURES[i].file, str(ev, "summary"),
                     FIXTURES[i].summary);
        assert_true(json_equal(json_object_get(ev, "payload"), hook));
        assert_null(json_object_get(json_object_get(ev, "payload"), "adw_truncated"));
        /* the subagent's own hooks carry agent_id and agent_type at the top */
        size_t agent_keys = 0;
        if (json_object_get(hook, "agent_id")) {
            assert_string_equal(str(ev, "agent_id"), str(hook, "agent_id"));
            assert_string_equal(str(ev, "agent_type"), str(hook, "agent_type"));
            agent_keys = 2;
        } else {
            assert_null(json_object_get(ev, "agent_id"));
            assert_null(json_object_get(ev, "agent_type"));
        }
        assert_int_equal(json_object_size(ev), 6 + agent_keys);
        json_decref(ev);
        json_decref(hook);
    }
}

static void test_key_order(void **state)
{
    (void)state;
    char err[128];
    json_t *hook = load_fixture("pre_tool_use.json");
    json_t *ev = hook_to_event(hook, NULL, "build", err, sizeof err);
    assert_non_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT);
    assert_non_null(s);
    const char *want = "{\"type\":\"adw_event\",\"adw_id\":\"abc12345\",\"step\":\"build\","
                       "\"event_type\":\"PreToolUse\",\"summary\":\"Write /src/auth.py\","
                       "\"payload\":{";
    assert_memory_equal(s, want, strlen(want));
    free(s);
    json_decref(ev);
    json_decref(hook);
}

/* ---- adw_id, step, event name ------------------------------------------------------- */

static void test_given_adw_id_wins(void **state)
{
    (void)state;
    char err[128];
    json_t *hook = load_fixture("stop.json");
    json_t *ev = hook_to_event(hook, "run-42:a.b_c", NULL, err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "adw_id"), "run-42:a.b_c");
    assert_null(json_object_get(ev, "step"));
    json_decref(ev);
    /* "" counts as not given, for both */
    ev = hook_to_event(hook, "", "", err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "adw_id"), SESSION_PREFIX);
    assert_null(json_object_get(ev, "step"));
    json_decref(ev);
    json_decref(hook);
}

static void test_no_adw_id(void **state)
{
    (void)state;
    char err[128] = "";
    json_t *hook = load_fixture("no_session_id.json");
    assert_null(hook_to_event(hook, NULL, NULL, err, sizeof err));
    assert_string_equal(err, "no adw_id: give ?adw_id=, X-ADW-Id, or a session_id");
    json_t *ev = hook_to_event(hook, "a1b2c3d4", NULL, err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "summary"), "Stop");
    json_decref(ev);
    /* a session_id that is not a string is no session_id */
    json_object_set_new(hook, "session_id", json_integer(7));
    assert_null(hook_to_event(hook, NULL, NULL, err, sizeof err));
    assert_string_equal(err, "no adw_id: give ?adw_id=, X-ADW-Id, or a session_id");
    json_decref(hook);
}

static void test_bad_adw_id(void **state)
{
    (void)state;
    char err[128];
    char long_id[ADW_ADW_ID_MAX + 2];
    json_t *hook = load_fixture("stop.json");
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_null(hook_to_event(hook, long_id, NULL, err, sizeof err));
    assert_non_null(strstr(err, "adw_id"));
    long_id[ADW_ADW_ID_MAX] = '\0'; /* exactly 64: fine */
    json_t *ev = hook_to_event(hook, long_id, NULL, err, sizeof err);
    assert_non_null(ev);
    json_decref(ev);
    assert_null(hook_to_event(hook, "has space", NULL, err, sizeof err));
    assert_null(hook_to_event(hook, "slash/no", NULL, err, sizeof err));
    assert_null(hook_to_event(hook, "caf\xc3\xa9", NULL, err, sizeof err));

    /* a session_id whose first 8 characters are not allowed */
    json_object_set_new(hook, "session_id", json_string("ab cd-efgh"));
    assert_null(hook_to_event(hook, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "session_id"));
    /* a short session_id serves whole */
    json_object_set_new(hook, "session_id", json_string("abc"));
    ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "adw_id"), "abc");
    json_decref(ev);
    json_decref(hook);

    assert_false(hook_adw_id_valid("", 0));
    assert_false(hook_adw_id_valid(NULL, 3));
    assert_true(hook_adw_id_valid("A-z_0.9:", 8));
}

static void test_bad_step(void **state)
{
    (void)state;
    char err[128];
    char step[ADW_STEP_MAX + 2];
    json_t *hook = load_fixture("stop.json");
    memset(step, 's', sizeof step - 1);
    step[sizeof step - 1] = '\0';
    assert_null(hook_to_event(hook, NULL, step, err, sizeof err));
    assert_non_null(strstr(err, "step"));
    assert_null(hook_to_event(hook, NULL, "bad\xff", err, sizeof err));
    step[ADW_STEP_MAX] = '\0';
    json_t *ev = hook_to_event(hook, NULL, step, err, sizeof err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "step"), step);
    json_decref(ev);
    json_decref(hook);
}

static void test_event_name_errors(void **state)
{
    (void)state;
    char err[128];
    static const struct {
        const char *json;
        const char *err;
    } cases[] = {
        {"{\"session_id\":\"abc12345\"}", "hook_event_name missing"},
        {"{\"session_id\":\"abc12345\",\"hook_event_name\":7}", "hook_event_name is not a string"},
        {"{\"session_id\":\"abc12345\",\"hook_event_name\":null}",
         "hook_event_name is not a string"},
        {"{\"session_id\":\"abc12345\",\"hook_event_name\":\"\"}", "hook_event_name must be"},
        {"{\"session_id\":\"abc12345\",\"hook_event_name\":\"a\\u0000b\"}",
         "hook_event_name must be"},
        {"{\"session_id\":\"abc12345\",\"hook_event_name\":"
         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
         "hook_event_name must be"},
        {"[\"PreToolUse\"]", "hook JSON is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *hook = parse(cases[i].json);
        err[0] = '\0';
        assert_null(hook_to_event(hook, NULL, NULL, err, sizeof err));
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("%s: error \"%s\", want \"%s\"", cases[i].json, err, cases[i].err);
        json_decref(hook);
    }
    /* a NULL error buffer is fine */
    json_t *hook = parse("{}");
    assert_null(hook_to_event(hook, NULL, NULL, NULL, 0));
    json_decref(hook);
}

static void test_missing_fields(void **state)
{
    (void)state;
    /* the bare minimum: every summary falls back to something sensible */
    static const struct {
        const char *name;
        const char *summary;
    } cases[] = {
        {"PreToolUse", "PreToolUse"},
        {"PostToolUse", "PostToolUse"},
        {"PostToolUseFailure", "PostToolUseFailure (failed)"},
        {"PermissionRequest", "PermissionRequest"},
        {"UserPromptSubmit", "UserPromptSubmit"},
        {"Notification", "Notification"},
        {"Stop", "Stop"},
        {"SubagentStop", "Subagent stop"},
        {"SubagentStart", "Subagent start"},
        {"SessionStart", "Session start"},
        {"SessionEnd", "Session end"},
        {"PreCompact", "Compact"},
        {"StopFailure", "Stop failure"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"session_id\":\"s1\",\"hook_event_name\":\"%s\"}",
                 cases[i].name);
        assert_string_equal(summary_of(text), cases[i].summary);
    }
    /* wrong types are ignored, not fatal */
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\","
                                   "\"tool_name\":5,\"tool_input\":\"x\"}"),
                        "PreToolUse");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\","
                                   "\"tool_name\":\"Bash\",\"tool_input\":[1]}"),
                        "Bash");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\","
                                   "\"tool_name\":\"Bash\",\"tool_input\":{\"command\":7}}"),
                        "Bash");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"Notification\","
                                   "\"message\":\"\",\"title\":\"Waiting\"}"),
                        "Waiting");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":"
                                   "\"UserPromptSubmit\",\"prompt\":\" \\n\\t\\n\"}"),
                        "UserPromptSubmit");
}

/* ---- summaries ---------------------------------------------------------------------- */

static void test_tool_summaries(void **state)
{
    (void)state;
    static const struct {
        const char *tool;
        const char *input;
        const char *summary;
    } cases[] = {
        {"Write", "{\"file_path\":\"/src/auth.py\",\"content\":\"x\"}", "Write /src/auth.py"},
        {"Bash", "{\"command\":\"npm test\",\"description\":\"Run\"}", "Bash: npm test"},
        {"Bash", "{\"command\":\"make \\\\\\n  all\\n\\techo ok\"}", "Bash: make \\ all echo ok"},
        {"Read", "{\"file_path\":\"/a/b.c\",\"offset\":10}", "Read /a/b.c"},
        {"Edit", "{\"file_path\":\"/a/b.c\",\"old_string\":\"x\",\"new_string\":\"y\"}",
         "Edit /a/b.c"},
        {"MultiEdit", "{\"file_path\":\"/a/b.c\",\"edits\":[]}", "MultiEdit /a/b.c"},
        {"NotebookEdit", "{\"notebook_path\":\"/n.ipynb\",\"new_source\":\"x\"}",
         "NotebookEdit /n.ipynb"},
        {"NotebookEdit", "{\"file_path\":\"/m.ipynb\"}", "NotebookEdit /m.ipynb"},
        {"Grep", "{\"pattern\":\"TODO\",\"path\":\"/src\",\"output_mode\":\"content\"}",
         "Grep TODO in /src"},
        {"Grep", "{\"pattern\":\"fn main\"}", "Grep fn main"},
        {"Glob", "{\"pattern\":\"**/*.py\",\"path\":\"/app\"}", "Glob **/*.py in /app"},
        {"WebFetch", "{\"url\":\"https://jansson.readthedocs.io\",\"prompt\":\"API?\"}",
         "WebFetch https://jansson.readthedocs.io"},
        {"WebSearch", "{\"query\":\"libwebsockets ring buffer\"}",
         "WebSearch: libwebsockets ring buffer"},
        {"Task",
         "{\"description\":\"Find auth code\",\"prompt\":\"Look...\","
         "\"subagent_type\":\"Explore\"}",
         "Task: Find auth code"},
        {"Agent", "{\"prompt\":\"Review the diff\\nCarefully\"}",
         "Agent: Review the diff Carefully"},
        {"mcp__github__create_issue", "{\"number\":1,\"title\":\"Crash on start\",\"body\":\"x\"}",
         "mcp__github__create_issue: Crash on start"},
        {"mcp__memory__list", "{\"limit\":3}", "mcp__memory__list"},
        {"TodoWrite", "{\"todos\":[{\"content\":\"a\",\"status\":\"pending\"}]}", "TodoWrite"},
        {"LS", "{\"path\":\"/tmp\"}", "LS /tmp"},
        {"SomeFutureTool", "{\"url\":\"https://x.org\"}", "SomeFutureTool https://x.org"},
        {"KillShell", "{\"shell_id\":\"7\",\"command\":\"sleep 9\"}", "KillShell: sleep 9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\","
                 "\"tool_name\":\"%s\",\"tool_input\":%s}",
                 cases[i].tool, cases[i].input);
        const char *got = summary_of(text);
        if (strcmp(got, cases[i].summary) != 0)
            fail_msg("%s: summary \"%s\", want \"%s\"", cases[i].tool, got, cases[i].summary);
    }
}

static void test_post_tool_use_status(void **state)
{
    (void)state;
    static const struct {
        const char *response;
        const char *summary;
    } cases[] = {
        {"{\"success\":true}", "Bash: ls (ok)"},
        {"{\"success\":false}", "Bash: ls (failed)"},
        {"{\"is_error\":true}", "Bash: ls (failed)"},
        {"{\"isError\":false}", "Bash: ls (ok)"},
        {"{\"error\":\"boom\"}", "Bash: ls (failed)"},
        {"{\"error\":\"\"}", "Bash: ls"},
        {"{\"stdout\":\"a\",\"stderr\":\"\",\"interrupted\":false,\"isImage\":false}", "Bash: ls"},
        {"{\"stdout\":\"\",\"interrupted\":true}", "Bash: ls (failed)"},
        {"{\"exitCode\":0}", "Bash: ls (ok)"},
        {"{\"exit_code\":2}", "Bash: ls (failed)"},
        {"\"plain text\"", "Bash: ls"},
        {"[{\"type\":\"text\",\"text\":\"x\"}]", "Bash: ls"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"session_id\":\"s1\",\"hook_event_name\":\"PostToolUse\","
                 "\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"ls\"},"
                 "\"tool_response\":%s}",
                 cases[i].response);
        const char *got = summary_of(text);
        if (strcmp(got, cases[i].summary) != 0)
            fail_msg("%s: summary \"%s\", want \"%s\"", cases[i].response, got, cases[i].summary);
    }
}

static void test_failure_summaries(void **state)
{
    (void)state;
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":"
                                   "\"PostToolUseFailure\",\"tool_name\":\"Bash\","
                                   "\"tool_input\":{\"command\":\"sleep 99\"},"
                                   "\"is_interrupt\":true}"),
                        "Bash: sleep 99 (interrupted)");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":"
                                   "\"PostToolUseFailure\",\"tool_name\":\"Read\","
                                   "\"tool_input\":{\"file_path\":\"/x\"},"
                                   "\"error\":\"File does not exist.\",\"is_interrupt\":true}"),
                        "Read /x (interrupted: File does not exist.)");
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"StopFailure\","
                                   "\"error\":\"rate_limit\"}"),
                        "Stop failure: rate_limit");
}

static void test_summary_one_line(void **state)
{
    (void)state;
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"Notification\","
                                   "\"message\":\"  a\\tb\\r\\n\\n c\\u0007d\\u2028e\\u0085f \"}"),
                        "a b c d e f");
    /* NUL inside a string (a loader with JSON_ALLOW_NUL) is a space too */
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":\"Notification\","
                                   "\"message\":\"x\\u0000y\"}"),
                        "x y");
    /* the prompt's first non-blank line */
    assert_string_equal(summary_of("{\"session_id\":\"s1\",\"hook_event_name\":"
                                   "\"UserPromptSubmit\",\"prompt\":\"\\r\\n\\n  Fix it\\r\\n"
                                   "Second\"}"),
                        "Fix it");
}

/* Notification with a message of n copies of unit; returns the event. */
static json_t *notification_of(const char *unit, size_t n)
{
    char *msg = repeat(unit, n);
    json_t *hook = json_pack("{s:s,s:s,s:s}", "session_id", "s1", "hook_event_name", "Notification",
                             "message", msg);
    free(msg);
    assert_non_null(hook);
    char err[128];
    json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    assert_non_null(ev);
    check_event(ev);
    json_decref(hook);
    return ev;
}

static void test_summary_cap(void **state)
{
    (void)state;
    /* exactly the limit: untouched */
    json_t *ev = notification_of("x", ADW_SUMMARY_MAX);
    assert_int_equal(json_string_length(json_object_get(ev, "summary")), ADW_SUMMARY_MAX);
    assert_null(strstr(str(ev, "summary"), "\xe2\x80\xa6"));
    json_decref(ev);
    /* one more: cut, with the ellipsis, 4096 bytes in all */
    ev = notification_of("x", ADW_SUMMARY_MAX + 1);
    const char *s = str(ev, "summary");
    size_t n = strlen(s);
    assert_int_equal(n, ADW_SUMMARY_MAX);
    assert_string_equal(s + n - 3, "\xe2\x80\xa6");
    assert_int_equal(s[n - 4], 'x');
    json_decref(ev);
    /* two-, three- and four-byte characters are never split */
    static const char *const units[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "ab\xe2\x82\xac"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        ev = notification_of(units[i], 5000);
        s = str(ev, "summary");
        n = strlen(s);
        assert_true(n <= ADW_SUMMARY_MAX && n > ADW_SUMMARY_MAX - 8);
        assert_string_equal(s + n - 3, "\xe2\x80\xa6");
        /* json_string() checked the UTF-8 when the event was built; check the seam too */
        json_t *probe = json_stringn(s, n - 3);
        assert_non_null(probe);
        json_decref(probe);
        json_decref(ev);
    }
    /* a long run of blanks collapses before the cap applies */
    ev = notification_of("a \n\t ", 3000);
    s = str(ev, "summary");
    assert_int_equal(strlen(s), 2 * 2048 - 2 - 1 + 3);
    json_decref(ev);
}

/* ---- payload size ------------------------------------------------------------------- */

static void test_huge_tool_response(void **state)
{
    (void)state;
    char err[128];
    /* a Read of a 300 KB file, with multi-byte characters and characters JSON escapes */
    char *content = repeat("line \xc3\xa9t\xc3\xa9 \"quoted\"\ttab\n", 12000);
    size_t content_len = strlen(content);
    json_t *hook =
        json_pack("{s:s,s:s,s:s,s:s,s:{s:s},s:{s:s,s:{s:s,s:s,s:i}},s:s}", "session_id",
                  "abc12345-6789", "transcript_path", "/t.jsonl", "hook_event_name", "PostToolUse",
                  "tool_name", "Read", "tool_input", "file_path", "/src/big.txt", "tool_response",
                  "type", "text", "file", "filePath", "/src/big.txt", "content", content,
                  "numLines", 12000, "tool_use_id", "toolu_01BIG");
    assert_non_null(hook);
    assert_true(compact_size(hook) > 3 * (size_t)ADW_PAYLOAD_MAX);

    json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    assert_non_null(ev);
    check_event(ev);
    assert_string_equal(str(ev, "summary"), "Read /src/big.txt");
    json_t *payload = json_object_get(ev, "payload");
    size_t size = compact_size(payload);
    assert_true(size <= ADW_PAYLOAD_MAX);
    assert_true(size > ADW_PAYLOAD_MAX - 64); /* cut to fit, not far below */
    assert_true(json_is_true(json_object_get(payload, "adw_truncated")));
    /* everything but the long string is intact */
    assert_string_equal(str(payload, "hook_event_name"), "PostToolUse");
    assert_string_equal(str(payload, "tool_use_id"), "toolu_01BIG");
    assert_true(
        json_equal(json_object_get(payload, "tool_input"), json_object_get(hook, "tool_input")));
    json_t *file = json_object_get(json_object_get(payload, "tool_response"), "file");
    assert_string_equal(str(file, "filePath"), "/src/big.txt");
    assert_int_equal(json_integer_value(json_object_get(file, "numLines")), 12000);
    /* the cut content: a prefix of the original, then the marker with the bytes removed */
    const char *cut = str(file, "content");
    const char *m = strstr(cut, MARK);
    assert_non_null(m);
    size_t prefix = (size_t)(m - cut);
    assert_memory_equal(cut, content, prefix);
    assert_int_equal(marker_bytes(cut), (long)(content_len - prefix));
    assert_true((unsigned char)content[prefix] < 0x80 ||
                ((unsigned char)content[prefix] & 0xC0) == 0xC0);
    /* the hook itself was not touched */
    assert_int_equal(
        strlen(str(json_object_get(json_object_get(hook, "tool_response"), "file"), "content")),
        content_len);
    free(content);
    json_decref(ev);
    json_decref(hook);
}

/* The payload is fitted by the measure event_from_json checks the limit with (jsonw_size), so
 * the event a hook gives is accepted, reals included: jsonw writes 12345678901234560.0 as
 * 1.234567890123456e+16, two bytes longer than jansson's dump. */
static void test_payload_passes_event_check(void **state)
{
    (void)state;
    char err[EVENT_ERR_LEN];
    json_t *hook = json_pack("{s:s,s:s,s:f,s:s}", "session_id", "s1", "hook_event_name",
                             "Notification", "big", 12345678901234560.0, "message", "");
    assert_non_null(hook);
    /* grow the message until jansson's dump is exactly at the limit */
    size_t base = compact_size(hook);
    char *msg = repeat("m", ADW_PAYLOAD_MAX - base);
    json_object_set_new(hook, "message", json_string(msg));
    assert_int_equal(compact_size(hook), ADW_PAYLOAD_MAX);
    size_t size = 0;
    assert_int_equal(jsonw_size(hook, SIZE_MAX, &size), 0);
    assert_int_equal(size, ADW_PAYLOAD_MAX + 2);

    json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    assert_non_null(ev);
    json_t *payload = json_object_get(ev, "payload");
    assert_true(json_is_true(json_object_get(payload, "adw_truncated")));
    assert_int_equal(jsonw_size(payload, SIZE_MAX, &size), 0);
    assert_true(size <= ADW_PAYLOAD_MAX);
    adw_event_t e;
    if (event_from_json(ev, 0, &e, err, sizeof err) != 0)
        fail_msg("event_from_json: %s", err);
    event_clear(&e);
    json_decref(ev);
    free(msg);
    json_decref(hook);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char err[128];
    /* the event adds one level: the hook may nest ADW_JSON_DEPTH_MAX - 1 levels */
    json_t *hook = json_pack("{s:s,s:s,s:o}", "session_id", "s1", "hook_event_name", "X", "deep",
                             nest(ADW_JSON_DEPTH_MAX - 2));
    json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    if (!ev)
        fail_msg("%s", err);
    json_decref(ev);
    json_object_set_new(hook, "deep", nest(ADW_JSON_DEPTH_MAX - 1));
    assert_null(hook_to_event(hook, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "deeper"));
    json_decref(hook);
}

static void test_event_new_parts(void **state)
{
    (void)state;
    char err[128];
    json_t *ev = NULL;
    hook_event_parts_t parts = {
        .adw_id = "a1",
        .event_type = "ResultMessage",
        .status = "completed",
        .has_duration = true,
        .duration_ms = 1234,
        .summary = "Done",
    };
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), 0);
    char *s = json_dumps(ev, JSON_COMPACT);
    assert_string_equal(s, "{\"type\":\"adw_event\",\"adw_id\":\"a1\",\"event_type\":"
                           "\"ResultMessage\",\"status\":\"completed\",\"duration_ms\":1234,"
                           "\"summary\":\"Done\"}");
    free(s);
    json_decref(ev);
    parts.duration_ms = -1;
    assert_int_equal(hook_event_new(&parts, json_object(), &ev, err, sizeof err), -EINVAL);
    assert_null(ev);
    parts.duration_ms = 0;
    parts.event_type = NULL;
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), -EINVAL);
    parts.event_type = "X";
    parts.status = "a status that is far too long for the contract";
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), -EINVAL);
    parts.status = NULL;
    assert_int_equal(hook_event_new(&parts, json_array(), &ev, err, sizeof err), -EINVAL);
    assert_string_equal(err, "payload is not an object");
}

/* ---- subagents ---------------------------------------------------------------------- */

/* The hook files of tests/data/hooks/subagent_run, in order, with what their events carry. */
static const struct {
    const char *file;
    const char *event_type;
    const char *summary;
    bool in_subagent; /* agent_id "ab41e9d07c2f5a38", agent_type "Explore" */
} SUBAGENT_RUN[] = {
    {"01_session_start.json", "SessionStart", "Session start (startup)", false},
    {"02_user_prompt_submit.json", "UserPromptSubmit", "Why do login tokens expire early?", false},
    {"03_pre_tool_use_task.json", "PreToolUse", "Task: Find the token code", false},
    {"04_subagent_start.json", "SubagentStart", "Subagent start (Explore)", true},
    {"05_pre_tool_use_grep.json", "PreToolUse", "Grep jwt\\.(encode|decode) in /home/dev/app/src",
     true},
    {"06_post_tool_use_grep.json", "PostToolUse", "Grep jwt\\.(encode|decode) in /home/dev/app/src",
     true},
    {"07_pre_tool_use_bash.json", "PreToolUse", "Bash: python -m pytest tests/test_auth.py -q",
     true},
    {"08_post_tool_use_failure_bash.json", "PostToolUseFailure",
     "Bash: python -m pytest tests/test_auth.py -q (failed: Exit code 1 FAILED "
     "tests/test_auth.py::test_expiry - AssertionError: 900 != 3600)",
     true},
    {"09_subagent_stop.json", "SubagentStop", "Subagent stop (Explore)", true},
    {"10_post_tool_use_task.json", "PostToolUse", "Task: Find the token code", false},
    {"11_stop.json", "Stop", "Stop", false},
    {"12_user_prompt_submit.json", "UserPromptSubmit", "Make the expiry come from the settings.",
     false},
    {"13_stop_failure.json", "StopFailure", "Stop failure: rate_limit", false},
};

static void test_subagent_run(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SUBAGENT_RUN / sizeof SUBAGENT_RUN[0]; i++) {
        char name[128], err[128] = "";
        snprintf(name, sizeof name, "subagent_run/%s", SUBAGENT_RUN[i].file);
        json_t *hook = load_fixture(name);
        json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
        if (!ev)
            fail_msg("%s: %s", name, err);
        check_event(ev);
        assert_string_equal(str(ev, "adw_id"), "7c2e4b1a");
        assert_string_equal(str(ev, "event_type"), SUBAGENT_RUN[i].event_type);
        if (strcmp(str(ev, "summary"), SUBAGENT_RUN[i].summary) != 0)
            fail_msg("%s: summary \"%s\", want \"%s\"", name, str(ev, "summary"),
                     SUBAGENT_RUN[i].summary);
        if (SUBAGENT_RUN[i].in_subagent) {
            assert_string_equal(str(ev, "agent_id"), "ab41e9d07c2f5a38");
            assert_string_equal(str(ev, "agent_type"), "Explore");
        } else {
            assert_null(json_object_get(ev, "agent_id"));
            assert_null(json_object_get(ev, "agent_type"));
        }
        /* the body stays the payload, agent keys included */
        assert_true(json_equal(json_object_get(ev, "payload"), hook));
        /* the tool hooks pair by payload.tool_use_id */
        if (strstr(SUBAGENT_RUN[i].file, "tool_use"))
            assert_non_null(str(json_object_get(ev, "payload"), "tool_use_id"));
        json_decref(ev);
        json_decref(hook);
    }
}

static void test_agent_key_order(void **state)
{
    (void)state;
    char err[128];
    json_t *hook = load_fixture("subagent_run/05_pre_tool_use_grep.json");
    json_t *ev = hook_to_event(hook, "run-1", "build", err, sizeof err);
    assert_non_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT);
    assert_non_null(s);
    const char *want = "{\"type\":\"adw_event\",\"adw_id\":\"run-1\",\"step\":\"build\","
                       "\"agent_id\":\"ab41e9d07c2f5a38\",\"agent_type\":\"Explore\","
                       "\"event_type\":\"PreToolUse\",\"summary\":";
    assert_memory_equal(s, want, strlen(want));
    free(s);
    json_decref(ev);
    json_decref(hook);
}

/* The event hook_to_event makes of a PreToolUse whose body has agent_id = id_json and
 * agent_type = type_json (JSON texts; NULL: key absent). */
static json_t *agent_event(const char *id_json, const char *type_json)
{
    char text[1024], err[128] = "";
    int n = snprintf(text, sizeof text,
                     "{\"session_id\":\"s1\",\"hook_event_name\":\"PreToolUse\","
                     "\"tool_name\":\"Read\",\"tool_input\":{\"file_path\":\"/a\"},"
                     "\"tool_use_id\":\"toolu_1\"%s%s%s%s}",
                     id_json ? ",\"agent_id\":" : "", id_json ? id_json : "",
                     type_json ? ",\"agent_type\":" : "", type_json ? type_json : "");
    assert_true(n > 0 && (size_t)n < sizeof text);
    json_t *hook = parse(text);
    json_t *ev = hook_to_event(hook, NULL, NULL, err, sizeof err);
    if (!ev)
        fail_msg("hook_to_event: %s: %s", err, text);
    check_event(ev);
    /* whatever the agent keys, the body is the payload and the summary is the tool's */
    assert_true(json_equal(json_object_get(ev, "payload"), hook));
    assert_string_equal(str(ev, "summary"), "Read /a");
    json_decref(hook);
    return ev;
}

/* A JSON string of n bytes: n ASCII letters, or n / 2 two-byte characters when wide. */
static const char *json_text_of(size_t n, bool wide)
{
    static char buf[512];
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < (wide ? n / 2 : n); i++) {
        if (wide) {
            buf[k++] = '\xc3';
            buf[k++] = '\xa9'; /* é */
        } else {
            buf[k++] = (char)('a' + i % 26);
        }
    }
    buf[k++] = '"';
    buf[k] = '\0';
    return buf;
}

static void test_agent_key_limits(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        bool wide, kept;
    } sizes[] = {
        {1, false, true},    {ADW_AGENT_ID_MAX, false, true}, {ADW_AGENT_ID_MAX + 1, false, false},
        {2, true, true},     {ADW_AGENT_ID_MAX, true, true},  {ADW_AGENT_ID_MAX + 2, true, false},
        {300, false, false},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "%s", json_text_of(sizes[i].len, sizes[i].wide));
        /* as agent_id, with a good agent_type */
        json_t *ev = agent_event(text, "\"Plan\"");
        const char *got = str(ev, "agent_id");
        if (sizes[i].kept) {
            assert_non_null(got);
            assert_int_equal(strlen(got), sizes[i].len);
            assert_memory_equal(got, text + 1, sizes[i].len);
        } else {
            assert_null(json_object_get(ev, "agent_id"));
        }
        assert_string_equal(str(ev, "agent_type"), "Plan");
        json_decref(ev);
        /* as agent_type, with a good agent_id */
        ev = agent_event("\"ag-1\"", text);
        got = str(ev, "agent_type");
        if (sizes[i].kept) {
            assert_non_null(got);
            assert_int_equal(strlen(got), sizes[i].len);
        } else {
            assert_null(json_object_get(ev, "agent_type"));
        }
        assert_string_equal(str(ev, "agent_id"), "ag-1");
        json_decref(ev);
    }
    /* empty, not a string, a NUL inside: left out, not an error */
    static const char *const bad[] = {
        "\"\"", "null", "7", "1.5", "true", "[\"a\"]", "{\"id\":\"a\"}", "\"a\\u0000b\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *ev = agent_event(bad[i], bad[i]);
        assert_null(json_object_get(ev, "agent_id"));
        assert_null(json_object_get(ev, "agent_type"));
        assert_int_equal(json_object_size(ev), 5);
        json_decref(ev);
    }
    /* each key on its own: agent_type alone is the main thread of a session run with --agent */
    json_t *ev = agent_event(NULL, "\"code-reviewer\"");
    assert_null(json_object_get(ev, "agent_id"));
    assert_string_equal(str(ev, "agent_type"), "code-reviewer");
    json_decref(ev);
    ev = agent_event("\"ag-2\"", NULL);
    assert_string_equal(str(ev, "agent_id"), "ag-2");
    assert_null(json_object_get(ev, "agent_type"));
    json_decref(ev);
}

static void test_agent_text(void **state)
{
    (void)state;
    json_t *j = json_string("Explore");
    assert_string_equal(hook_agent_text(j, ADW_AGENT_TYPE_MAX), "Explore");
    assert_null(hook_agent_text(j, 6));
    assert_non_null(hook_agent_text(j, 7));
    json_decref(j);
    j = json_stringn("a\0b", 3);
    assert_null(hook_agent_text(j, ADW_AGENT_ID_MAX));
    json_decref(j);
    j = json_string("");
    assert_null(hook_agent_text(j, ADW_AGENT_ID_MAX));
    json_decref(j);
    j = json_integer(1);
    assert_null(hook_agent_text(j, ADW_AGENT_ID_MAX));
    json_decref(j);
    assert_null(hook_agent_text(NULL, ADW_AGENT_ID_MAX));
}

static void test_event_new_agent_parts(void **state)
{
    (void)state;
    char err[128] = "", long_id[ADW_AGENT_ID_MAX + 2];
    json_t *ev = NULL;
    hook_event_parts_t parts = {
        .adw_id = "a1", .agent_id = "toolu_01X", .agent_type = "Plan", .event_type = "TextBlock"};
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), 0);
    char *s = json_dumps(ev, JSON_COMPACT);
    assert_string_equal(s, "{\"type\":\"adw_event\",\"adw_id\":\"a1\",\"agent_id\":\"toolu_01X\","
                           "\"agent_type\":\"Plan\",\"event_type\":\"TextBlock\"}");
    free(s);
    json_decref(ev);
    /* "" is none */
    parts.agent_id = "";
    parts.agent_type = "";
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), 0);
    assert_int_equal(json_object_size(ev), 3);
    json_decref(ev);
    /* too long: the builder refuses (callers drop such values before) */
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    parts.agent_id = long_id;
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), -EINVAL);
    assert_null(ev);
    assert_string_equal(err, "agent_id must be 1-64 bytes of UTF-8");
    parts.agent_id = NULL;
    parts.agent_type = long_id;
    assert_int_equal(hook_event_new(&parts, json_object(), &ev, err, sizeof err), -EINVAL);
    assert_string_equal(err, "agent_type must be 1-64 bytes of UTF-8");
    parts.agent_type = "\xff";
    assert_int_equal(hook_event_new(&parts, NULL, &ev, err, sizeof err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_given_adw_id_wins),
        cmocka_unit_test(test_no_adw_id),
        cmocka_unit_test(test_bad_adw_id),
        cmocka_unit_test(test_bad_step),
        cmocka_unit_test(test_event_name_errors),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_tool_summaries),
        cmocka_unit_test(test_post_tool_use_status),
        cmocka_unit_test(test_failure_summaries),
        cmocka_unit_test(test_summary_one_line),
        cmocka_unit_test(test_summary_cap),
        cmocka_unit_test(test_huge_tool_response),
        cmocka_unit_test(test_payload_passes_event_check),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_event_new_parts),
        cmocka_unit_test(test_subagent_run),
        cmocka_unit_test(test_agent_key_order),
        cmocka_unit_test(test_agent_key_limits),
        cmocka_unit_test(test_agent_text),
        cmocka_unit_test(test_event_new_agent_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
