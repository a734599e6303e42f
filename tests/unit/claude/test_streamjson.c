/* Unit tests for shared/streamjson.c: Claude Code stream-json lines -> ADW events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "adw_limits.h"
#include "streamjson.h"
#include "claudetest.h"

#define SID "5f0c8a1e-2b7d-4c11-9e3a-0d6f1b2c3d4e"
#define SID_PREFIX "5f0c8a1e"

static void check_event(const json_t *ev)
{
    assert_string_equal(str(ev, "type"), "adw_event");
    const char *id = str(ev, "adw_id");
    assert_non_null(id);
    assert_true(hook_adw_id_valid(id, strlen(id)));
    assert_non_null(str(ev, "event_type"));
    const json_t *sum = json_object_get(ev, "summary");
    assert_true(json_is_string(sum));
    assert_true(json_string_length(sum) > 0 && json_string_length(sum) <= ADW_SUMMARY_MAX);
    assert_null(memchr(json_string_value(sum), '\n', json_string_length(sum)));
    const json_t *payload = json_object_get(ev, "payload");
    assert_true(json_is_object(payload));
    assert_true(compact_size(payload) <= ADW_PAYLOAD_MAX);
}

/* Feeds every line of a fixture; returns all events in order, counts errors. */
static json_t *feed_file(streamjson_t *sj, const char *name, int *errors)
{
    char path[512];
    snprintf(path, sizeof path, "%s/streamjson/%s", ADW_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    *errors = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        json_t *events = NULL;
        char err[256] = "";
        int rc = streamjson_line(sj, line, (size_t)n, &events, err, sizeof err);
        if (rc < 0) {
            assert_int_equal(rc, -EINVAL);
            assert_null(events);
            assert_true(err[0] != '\0');
            (*errors)++;
            continue;
        }
        json_array_extend(all, events);
        json_decref(events);
    }
    free(line);
    fclose(f);
    return all;
}

/* Maps one line (a C string); returns the events, failing the test on error. */
static json_t *feed(streamjson_t *sj, const char *line)
{
    json_t *events = NULL;
    char err[256] = "";
    if (streamjson_line(sj, line, strlen(line), &events, err, sizeof err) != 0)
        fail_msg("streamjson_line: %s: %s", err, line);
    for (size_t i = 0; i < json_array_size(events); i++)
        check_event(json_array_get(events, i));
    return events;
}

static void expect(const json_t *ev, const char *event_type, const char *summary)
{
    check_event(ev);
    if (strcmp(str(ev, "event_type"), event_type) != 0 || strcmp(str(ev, "summary"), summary))
        fail_msg("got %s \"%s\", want %s \"%s\"", str(ev, "event_type"), str(ev, "summary"),
                 event_type, summary);
}

static void test_session(void **state)
{
    (void)state;
    int errors;
    streamjson_t *sj = streamjson_new(NULL, "build");
    assert_non_null(sj);
    json_t *ev = feed_file(sj, "session.jsonl", &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(json_array_size(ev), 12);
    for (size_t i = 0; i < json_array_size(ev); i++) {
        assert_string_equal(str(json_array_get(ev, i), "adw_id"), SID_PREFIX);
        assert_string_equal(str(json_array_get(ev, i), "step"), "build");
        /* parent_tool_use_id null throughout: the main agent's events carry no agent keys */
        assert_null(json_object_get(json_array_get(ev, i), "agent_id"));
        assert_null(json_object_get(json_array_get(ev, i), "agent_type"));
    }

    json_t *e = json_array_get(ev, 0), *p;
    expect(e, "SystemInit", "Session init: claude-sonnet-4-5-20250929 (8 tools)");
    p = json_object_get(e, "payload");
    assert_int_equal(json_integer_value(json_object_get(p, "tools_count")), 8);
    assert_string_equal(str(p, "session_id"), SID);
    assert_string_equal(str(p, "model"), "claude-sonnet-4-5-20250929");
    assert_string_equal(str(p, "claude_code_version"), "2.0.14");

    e = json_array_get(ev, 1);
    expect(e, "ThinkingBlock", "The user wants the tests fixed.");
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "type"), "thinking");
    assert_string_equal(str(p, "thinking"), "\nThe user wants the tests fixed.\nFirst run them.");
    assert_string_equal(str(p, "message_id"), "msg_01THINK");
    assert_string_equal(str(p, "model"), "claude-sonnet-4-5-20250929");
    assert_string_equal(str(p, "session_id"), SID);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "usage"),
                                                        "cache_creation_input_tokens")),
                     3000);
    /* block events never carry the top-level keys that feed a run's totals */
    assert_null(json_object_get(p, "input_tokens"));
    assert_null(json_object_get(p, "cost_usd"));
    assert_null(json_object_get(p, "parent_tool_use_id"));

    expect(json_array_get(ev, 2), "TextBlock", "I'll run the tests first.");
    e = json_array_get(ev, 3);
    expect(e, "ToolUseBlock", "Bash: npm test");
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "tool_name"), "Bash");
    assert_string_equal(str(p, "id"), "toolu_01BASH");
    assert_string_equal(str(json_object_get(p, "input"), "command"), "npm test");

    e = json_array_get(ev, 4);
    expect(e, "ToolResultBlock", "Bash error: FAIL src/auth.test.js");
    assert_string_equal(str(e, "status"), "failed");
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "tool_use_id"), "toolu_01BASH");
    assert_string_equal(str(p, "tool_name"), "Bash");
    assert_true(json_is_true(json_object_get(p, "is_error")));
    assert_null(json_object_get(p, "tool_use_result"));

    expect(json_array_get(ev, 5), "ToolUseBlock", "Read /home/dev/app/src/auth.js");
    e = json_array_get(ev, 6);
    expect(e, "ToolResultBlock", "Read result: 1 const jwt = require('jsonwebtoken');");
    assert_string_equal(str(e, "status"), "completed");

    /* one assistant message with two blocks: two events, in order */
    expect(json_array_get(ev, 7), "TextBlock", "The export is missing.");
    expect(json_array_get(ev, 8), "ToolUseBlock", "Edit /home/dev/app/src/auth.js");
    expect(json_array_get(ev, 9), "ToolResultBlock",
           "Edit result: The file /home/dev/app/src/auth.js has been updated.");
    e = json_array_get(ev, 10);
    expect(e, "StreamMessage", "system: compact_boundary");
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(e, "payload"), "compact_metadata"), "pre_tokens")),
        150000);

    e = json_array_get(ev, 11);
    expect(e, "ResultMessage", "Completed: 4 turns, 12.3 s, $0.0456");
    assert_string_equal(str(e, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(e, "duration_ms")), 12345);
    p = json_object_get(e, "payload");
    assert_true(fabs(json_real_value(json_object_get(p, "cost_usd")) - 0.0456) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(p, "input_tokens")), 22);
    assert_int_equal(json_integer_value(json_object_get(p, "output_tokens")), 181);
    assert_int_equal(json_integer_value(json_object_get(p, "cache_read_tokens")), 57200);
    assert_int_equal(json_integer_value(json_object_get(p, "cache_creation_tokens")), 3200);
    assert_int_equal(json_integer_value(json_object_get(p, "num_turns")), 4);
    assert_int_equal(json_integer_value(json_object_get(p, "duration_api_ms")), 11020);
    assert_string_equal(str(p, "session_id"), SID);
    assert_string_equal(str(p, "result"), "Fixed the missing export.\nAll tests pass.");
    assert_string_equal(str(p, "subtype"), "success");
    assert_true(json_is_false(json_object_get(p, "is_error")));
    assert_null(json_object_get(p, "permission_denials")); /* empty: left out */

    json_decref(ev);
    streamjson_destroy(&sj);
    assert_null(sj);
}

static void test_failed_run(void **state)
{
    (void)state;
    int errors;
    streamjson_t *sj = streamjson_new("run-7", NULL);
    json_t *ev = feed_file(sj, "failed.jsonl", &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(json_array_size(ev), 2);
    json_t *e = json_array_get(ev, 0);
    expect(e, "ThinkingBlock", "(redacted thinking)");
    assert_string_equal(str(e, "adw_id"), "run-7");
    assert_null(json_object_get(e, "step"));
    assert_string_equal(str(json_object_get(e, "payload"), "parent_tool_use_id"), "toolu_01TASK");
    /* a subagent's message whose Task call was never seen: agent_id alone */
    assert_string_equal(str(e, "agent_id"), "toolu_01TASK");
    assert_null(json_object_get(e, "agent_type"));
    e = json_array_get(ev, 1);
    assert_null(json_object_get(e, "agent_id"));
    expect(e, "ResultMessage", "Failed (error_max_turns): 30 turns, 600.0 s, $1.2500");
    assert_string_equal(str(e, "status"), "failed");
    assert_int_equal(json_integer_value(json_object_get(e, "duration_ms")), 600000);
    json_t *p = json_object_get(e, "payload");
    assert_int_equal(json_array_size(json_object_get(p, "permission_denials")), 1);
    assert_int_equal(json_integer_value(json_object_get(p, "cache_read_tokens")), 0);
    assert_null(json_object_get(p, "result"));
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_garbage(void **state)
{
    (void)state;
    int errors;
    /* with an adw_id: every JSON object maps, the rest are errors, nothing stops */
    streamjson_t *sj = streamjson_new("run-1", NULL);
    json_t *ev = feed_file(sj, "garbage.jsonl", &errors);
    assert_int_equal(errors, 5);
    assert_int_equal(json_array_size(ev), 4);
    expect(json_array_get(ev, 0), "StreamMessage", "assistant");
    expect(json_array_get(ev, 1), "StreamMessage", "rate_limit_event");
    expect(json_array_get(ev, 2), "StreamMessage", "stream_event: content_block_delta");
    expect(json_array_get(ev, 3), "StreamMessage", "user: Fix the tests");
    assert_string_equal(str(json_object_get(json_array_get(ev, 1), "payload"), "type"),
                        "rate_limit_event");
    json_decref(ev);
    streamjson_destroy(&sj);

    /* without one: the line before any session_id has no adw_id */
    sj = streamjson_new(NULL, NULL);
    ev = feed_file(sj, "garbage.jsonl", &errors);
    assert_int_equal(errors, 6);
    assert_int_equal(json_array_size(ev), 3);
    assert_string_equal(str(json_array_get(ev, 0), "adw_id"), SID_PREFIX);
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256];
    json_t *events = (json_t *)1;
    streamjson_t *sj = streamjson_new(NULL, NULL);
    assert_int_equal(streamjson_line(sj, "{\"type\":\"result\"}", 17, &events, err, sizeof err),
                     -EINVAL);
    assert_null(events);
    assert_string_equal(err, "no adw_id: give ?adw_id=, X-ADW-Id, or a session_id");
    assert_int_equal(streamjson_line(sj, "nope", 4, &events, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(streamjson_line(sj, "\"s\"", 3, &events, NULL, 0), -EINVAL);
    /* blank lines, with or without line ends */
    static const char *const blanks[] = {"", "\n", "\r\n", " \t \r\n"};
    for (size_t i = 0; i < sizeof blanks / sizeof blanks[0]; i++) {
        assert_int_equal(
            streamjson_line(sj, blanks[i], strlen(blanks[i]), &events, err, sizeof err), 0);
        assert_int_equal(json_array_size(events), 0);
        json_decref(events);
    }
    assert_int_equal(streamjson_line(sj, NULL, 0, &events, err, sizeof err), 0);
    json_decref(events);
    streamjson_destroy(&sj);
    streamjson_destroy(&sj); /* twice is fine */
    streamjson_destroy(NULL);
}

static void test_new_validates(void **state)
{
    (void)state;
    char step[ADW_STEP_MAX + 2];
    errno = 0;
    assert_null(streamjson_new("bad id", NULL));
    assert_int_equal(errno, EINVAL);
    memset(step, 's', sizeof step - 1);
    step[sizeof step - 1] = '\0';
    errno = 0;
    assert_null(streamjson_new("ok", step));
    assert_int_equal(errno, EINVAL);
    assert_null(streamjson_new("ok", "\xc3("));
    step[ADW_STEP_MAX] = '\0';
    streamjson_t *sj = streamjson_new("", step);
    assert_non_null(sj);
    streamjson_destroy(&sj);
}

/* The step is strict UTF-8 (as the event's own check): surrogates, overlong forms, values
 * above U+10FFFF and cut characters are refused; the limit is in bytes. */
static void test_new_step_strict(void **state)
{
    (void)state;
    static const char *const bad[] = {"\xed\xa0\x80", "\xc0\xaf", "a\xf0\x9f\x98",
                                      "\xf4\x90\x80\x80", "\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(streamjson_new("r", bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    char step[ADW_STEP_MAX + 3];
    for (size_t i = 0; i < ADW_STEP_MAX; i += 2)
        memcpy(step + i, "\xc3\xa9", 2);
    step[ADW_STEP_MAX] = '\0';
    streamjson_t *sj = streamjson_new("r", step);
    assert_non_null(sj);
    json_t *ev = feed(sj, "{\"type\":\"result\"}");
    assert_string_equal(str(json_array_get(ev, 0), "step"), step);
    json_decref(ev);
    streamjson_destroy(&sj);
    memcpy(step + ADW_STEP_MAX, "\xc3\xa9", 3); /* 66 bytes */
    assert_null(streamjson_new("r", step));
    sj = streamjson_new("r", "\xf4\x8f\xbf\xbf");
    assert_non_null(sj);
    streamjson_destroy(&sj);
}

/* Keys that are empty or not strings add nothing to a summary. */
static void test_summary_keys(void **state)
{
    (void)state;
    streamjson_t *sj = streamjson_new("r", NULL);
    static const struct {
        const char *line;
        const char *event_type;
        const char *summary;
    } cases[] = {
        {"{\"type\":\"system\",\"subtype\":\"\"}", "StreamMessage", "system"},
        {"{\"type\":\"system\",\"subtype\":3}", "StreamMessage", "system"},
        {"{\"type\":\"system\",\"subtype\":\"compact_boundary\"}", "StreamMessage",
         "system: compact_boundary"},
        {"{\"type\":\"stream_event\",\"subtype\":\"\",\"event\":{\"type\":\"message_stop\"}}",
         "StreamMessage", "stream_event: message_stop"},
        {"{\"type\":\"stream_event\",\"subtype\":\"s\",\"event\":{\"type\":\"message_stop\"}}",
         "StreamMessage", "stream_event: s"},
        {"{\"type\":\"system\",\"subtype\":\"init\",\"model\":\"\"}", "SystemInit", "Session init"},
        {"{\"type\":\"system\",\"subtype\":\"init\",\"model\":7,\"tools\":[]}", "SystemInit",
         "Session init (0 tools)"},
        {"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"thinking\","
         "\"thinking\":\" \\n\"}]}}",
         "ThinkingBlock", "(thinking)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ev = feed(sj, cases[i].line);
        assert_int_equal(json_array_size(ev), 1);
        expect(json_array_get(ev, 0), cases[i].event_type, cases[i].summary);
        json_decref(ev);
    }
    streamjson_destroy(&sj);
}

static void test_line_ends_and_length(void **state)
{
    (void)state;
    char err[256];
    json_t *events;
    streamjson_t *sj = streamjson_new("r", NULL);
    /* only len bytes count: what follows is not read */
    const char *buf = "{\"type\":\"x\"}\r\nGARBAGE";
    assert_int_equal(streamjson_line(sj, buf, 14, &events, err, sizeof err), 0);
    assert_int_equal(json_array_size(events), 1);
    expect(json_array_get(events, 0), "StreamMessage", "x");
    json_decref(events);
    streamjson_destroy(&sj);
}

static void test_session_fallback(void **state)
{
    (void)state;
    streamjson_t *sj = streamjson_new(NULL, NULL);
    json_t *ev =
        feed(sj, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"aaaabbbbcccc\"}");
    assert_string_equal(str(json_array_get(ev, 0), "adw_id"), "aaaabbbb");
    expect(json_array_get(ev, 0), "SystemInit", "Session init");
    json_decref(ev);
    /* a line without session_id uses the last one seen */
    ev = feed(sj, "{\"type\":\"keep_alive\"}");
    assert_string_equal(str(json_array_get(ev, 0), "adw_id"), "aaaabbbb");
    json_decref(ev);
    /* a new session_id takes over */
    ev = feed(sj, "{\"type\":\"keep_alive\",\"session_id\":\"ddddeeee-1\"}");
    assert_string_equal(str(json_array_get(ev, 0), "adw_id"), "ddddeeee");
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_blocks_odd_shapes(void **state)
{
    (void)state;
    streamjson_t *sj = streamjson_new("r", NULL);
    json_t *ev;
    /* content that is not an array: the whole message */
    ev = feed(sj, "{\"type\":\"assistant\",\"message\":{\"content\":\"hi\"}}");
    assert_int_equal(json_array_size(ev), 1);
    expect(json_array_get(ev, 0), "StreamMessage", "assistant");
    json_decref(ev);
    /* empty content: nothing */
    ev = feed(sj, "{\"type\":\"assistant\",\"message\":{\"content\":[]}}");
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
    /* unknown and odd blocks */
    ev = feed(sj, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":"
                  "\"server_tool_use\",\"id\":\"s1\",\"name\":\"web_search\"},7,{\"text\":\"x\"},"
                  "{\"type\":\"text\",\"text\":\"\"},{\"type\":\"thinking\"}]}}");
    assert_int_equal(json_array_size(ev), 5);
    expect(json_array_get(ev, 0), "StreamMessage", "assistant: server_tool_use block");
    expect(json_array_get(ev, 1), "StreamMessage", "assistant");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(ev, 1), "payload"), "block")),
                     7);
    expect(json_array_get(ev, 2), "StreamMessage", "assistant");
    expect(json_array_get(ev, 3), "TextBlock", "TextBlock");
    expect(json_array_get(ev, 4), "ThinkingBlock", "(thinking)");
    json_decref(ev);
    /* a tool_use without a name or input */
    ev = feed(sj, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\"}]}}");
    expect(json_array_get(ev, 0), "ToolUseBlock", "ToolUseBlock");
    json_decref(ev);
    /* user content: text and image blocks, tool results of forgotten ids, image results */
    ev = feed(sj, "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
                  "\"\\n  Continue\\nplease\"},{\"type\":\"tool_result\",\"tool_use_id\":\"t9\","
                  "\"content\":[{\"type\":\"image\",\"source\":{}}]},{\"type\":\"tool_result\","
                  "\"content\":\"  \"},{\"type\":\"tool_result\",\"content\":[{\"type\":\"x\"},"
                  "{\"type\":\"text\",\"text\":\"second\"}]}]}}");
    assert_int_equal(json_array_size(ev), 4);
    expect(json_array_get(ev, 0), "StreamMessage", "user: Continue");
    expect(json_array_get(ev, 1), "ToolResultBlock", "Tool result: [image]");
    expect(json_array_get(ev, 2), "ToolResultBlock", "Tool result");
    expect(json_array_get(ev, 3), "ToolResultBlock", "Tool result: second");
    json_decref(ev);
    /* a message without a type */
    ev = feed(sj, "{\"session_id\":\"x\"}");
    expect(json_array_get(ev, 0), "StreamMessage", "message");
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_tool_memory(void **state)
{
    (void)state;
    char line[512];
    streamjson_t *sj = streamjson_new("r", NULL);
    json_t *ev;
    for (int i = 0; i < STREAMJSON_TOOL_MEMORY + 10; i++) {
        snprintf(line, sizeof line,
                 "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\","
                 "\"id\":\"t%d\",\"name\":\"Tool%d\",\"input\":{}}]}}",
                 i, i);
        json_decref(feed(sj, line));
    }
    /* the newest are remembered, the oldest forgotten */
    ev = feed(sj, "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\","
                  "\"tool_use_id\":\"t265\",\"content\":\"ok\"},{\"type\":\"tool_result\","
                  "\"tool_use_id\":\"t10\",\"content\":\"ok\"},{\"type\":\"tool_result\","
                  "\"tool_use_id\":\"t9\",\"content\":\"ok\"}]}}");
    expect(json_array_get(ev, 0), "ToolResultBlock", "Tool265 result: ok");
    expect(json_array_get(ev, 1), "ToolResultBlock", "Tool10 result: ok");
    expect(json_array_get(ev, 2), "ToolResultBlock", "Tool result: ok");
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_result_variants(void **state)
{
    (void)state;
    streamjson_t *sj = streamjson_new("r", NULL);
    json_t *ev, *e, *p;
    /* is_error with subtype success: failed, no subtype shown */
    ev = feed(sj, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,"
                  "\"num_turns\":1,\"result\":\"API Error: 500\"}");
    e = json_array_get(ev, 0);
    expect(e, "ResultMessage", "Failed: 1 turn");
    assert_string_equal(str(e, "status"), "failed");
    assert_null(json_object_get(e, "duration_ms"));
    json_decref(ev);
    /* nothing but the type */
    ev = feed(sj, "{\"type\":\"result\"}");
    e = json_array_get(ev, 0);
    expect(e, "ResultMessage", "Completed");
    assert_int_equal(json_object_size(json_object_get(e, "payload")), 0);
    json_decref(ev);
    /* wrong types are skipped; a real duration is rounded; older cost_usd is read */
    ev = feed(sj, "{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"duration_ms\":"
                  "1500.6,\"cost_usd\":2,\"usage\":{\"input_tokens\":-1,\"output_tokens\":1.5,"
                  "\"cache_read_input_tokens\":\"9\"},\"num_turns\":\"3\",\"errors\":[\"boom\"]}");
    e = json_array_get(ev, 0);
    expect(e, "ResultMessage", "Failed (error_during_execution): 1.5 s, $2.0000");
    assert_int_equal(json_integer_value(json_object_get(e, "duration_ms")), 1501);
    p = json_object_get(e, "payload");
    assert_true(json_is_real(json_object_get(p, "cost_usd")));
    assert_null(json_object_get(p, "input_tokens"));
    assert_null(json_object_get(p, "output_tokens"));
    assert_null(json_object_get(p, "cache_read_tokens"));
    assert_int_equal(json_array_size(json_object_get(p, "errors")), 1);
    json_decref(ev);
    /* a negative duration is left out */
    ev = feed(sj, "{\"type\":\"result\",\"duration_ms\":-5}");
    assert_null(json_object_get(json_array_get(ev, 0), "duration_ms"));
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_huge_tool_result(void **state)
{
    (void)state;
    size_t n = 200000;
    char *text = malloc(n + 1);
    memset(text, 'r', n);
    text[n] = '\0';
    json_t *msg = json_pack("{s:s,s:{s:s,s:[{s:s,s:s,s:s}]},s:s}", "type", "user", "message",
                            "role", "user", "content", "type", "tool_result", "tool_use_id",
                            "toolu_1", "content", text, "session_id", SID);
    char *line = json_dumps(msg, JSON_COMPACT);
    streamjson_t *sj = streamjson_new(NULL, NULL);
    json_t *ev = feed(sj, line);
    assert_int_equal(json_array_size(ev), 1);
    json_t *p = json_object_get(json_array_get(ev, 0), "payload");
    assert_true(compact_size(p) <= ADW_PAYLOAD_MAX);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    assert_non_null(strstr(str(p, "content"), "\xe2\x80\xa6[truncated "));
    assert_string_equal(str(p, "tool_use_id"), "toolu_1");
    json_decref(ev);
    free(line);
    free(text);
    json_decref(msg);
    streamjson_destroy(&sj);
}

static void test_too_deep(void **state)
{
    (void)state;
    char line[4096];
    char err[256];
    json_t *events;
    size_t n = 0;
    n += (size_t)snprintf(line, sizeof line,
                          "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":"
                          "\"tool_use\",\"name\":\"X\",\"input\":");
    for (int i = 0; i < ADW_JSON_DEPTH_MAX; i++)
        line[n++] = '[';
    for (int i = 0; i < ADW_JSON_DEPTH_MAX; i++)
        line[n++] = ']';
    n += (size_t)snprintf(line + n, sizeof line - n, "}]}}");
    streamjson_t *sj = streamjson_new("r", NULL);
    assert_int_equal(streamjson_line(sj, line, n, &events, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "deeper"));
    /* and the next line is fine */
    json_decref(feed(sj, "{\"type\":\"x\"}"));
    streamjson_destroy(&sj);
}

/* ---- subagents ---------------------------------------------------------------------- */

#define SUB_SID_PREFIX "9e4b2c7d"
#define TASK_ID "toolu_01Vq8TaskXk3Ld9Pz7Rw2Mn4"

static void expect_agent(const json_t *ev, const char *agent_id, const char *agent_type)
{
    if (agent_id)
        assert_string_equal(str(ev, "agent_id"), agent_id);
    else
        assert_null(json_object_get(ev, "agent_id"));
    if (agent_type)
        assert_string_equal(str(ev, "agent_type"), agent_type);
    else
        assert_null(json_object_get(ev, "agent_type"));
}

static void test_subagent_transcript(void **state)
{
    (void)state;
    int errors;
    streamjson_t *sj = streamjson_new(NULL, NULL);
    json_t *ev = feed_file(sj, "subagent.jsonl", &errors), *e, *p;
    assert_int_equal(errors, 0);
    assert_int_equal(json_array_size(ev), 12);
    for (size_t i = 0; i < json_array_size(ev); i++)
        assert_string_equal(str(json_array_get(ev, i), "adw_id"), SUB_SID_PREFIX);

    expect(json_array_get(ev, 0), "SystemInit",
           "Session init: claude-sonnet-4-5-20250929 (8 tools)");
    expect_agent(json_array_get(ev, 0), NULL, NULL);
    expect(json_array_get(ev, 1), "TextBlock", "I'll have an Explore agent find the token code.");
    expect_agent(json_array_get(ev, 1), NULL, NULL);
    /* the Task call itself belongs to the main agent; its payload keeps the block's id */
    e = json_array_get(ev, 2);
    expect(e, "ToolUseBlock", "Task: Find the token code");
    expect_agent(e, NULL, NULL);
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "id"), TASK_ID);
    assert_string_equal(str(p, "tool_name"), "Task");
    assert_string_equal(str(json_object_get(p, "input"), "subagent_type"), "Explore");

    /* the subagent's messages: parent_tool_use_id = the Task call's id */
    e = json_array_get(ev, 3);
    expect(e, "StreamMessage",
           "user: Find where login tokens are issued and verified. List the files and functions.");
    expect_agent(e, TASK_ID, "Explore");
    e = json_array_get(ev, 4);
    expect(e, "ToolUseBlock", "Grep jwt\\.(encode|decode) in /home/dev/app/src");
    expect_agent(e, TASK_ID, "Explore");
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "id"), "toolu_01GrepH5s2Wq9Lk4Vb7Nc3Xz");
    assert_string_equal(str(p, "parent_tool_use_id"), TASK_ID);
    assert_string_equal(str(p, "model"), "claude-haiku-4-5-20251001");
    e = json_array_get(ev, 5);
    expect(e, "ToolResultBlock", "Grep result: Found 2 files");
    expect_agent(e, TASK_ID, "Explore");
    assert_string_equal(str(e, "status"), "completed");
    assert_string_equal(str(json_object_get(e, "payload"), "tool_use_id"),
                        "toolu_01GrepH5s2Wq9Lk4Vb7Nc3Xz");
    e = json_array_get(ev, 6);
    expect(e, "ToolUseBlock", "Bash: python -m pytest tests/test_auth.py -q");
    expect_agent(e, TASK_ID, "Explore");
    assert_string_equal(str(json_object_get(e, "payload"), "id"), "toolu_01BashR8m3Tj6Qp1Yd4Fh9Ks");
    e = json_array_get(ev, 7);
    expect(e, "ToolResultBlock", "Bash error: Exit code 1");
    expect_agent(e, TASK_ID, "Explore");
    assert_string_equal(str(e, "status"), "failed");
    p = json_object_get(e, "payload");
    assert_string_equal(str(p, "tool_use_id"), "toolu_01BashR8m3Tj6Qp1Yd4Fh9Ks");
    assert_true(json_is_true(json_object_get(p, "is_error")));
    e = json_array_get(ev, 8);
    expect(e, "TextBlock", "Tokens are issued in src/auth.py:issue_token with exp = 900 s.");
    expect_agent(e, TASK_ID, "Explore");

    /* back in the main agent: the Task's result, then the answer */
    e = json_array_get(ev, 9);
    expect(e, "ToolResultBlock",
           "Task result: Tokens are issued in src/auth.py:issue_token with exp = 900 s.");
    expect_agent(e, NULL, NULL);
    assert_string_equal(str(json_object_get(e, "payload"), "tool_use_id"), TASK_ID);
    expect_agent(json_array_get(ev, 10), NULL, NULL);
    e = json_array_get(ev, 11);
    expect(e, "ResultMessage", "Completed: 3 turns, 31.2 s, $0.0712");
    expect_agent(e, NULL, NULL);
    json_decref(ev);
    streamjson_destroy(&sj);
}

/* A one-block assistant message: a tool_use of tool `name` with id `id` and input `input`,
 * in the subagent of `parent` (a JSON value: "null" or a string). */
static json_t *tool_use(streamjson_t *sj, const char *id, const char *name, const char *input,
                        const char *parent)
{
    char line[1024];
    snprintf(line, sizeof line,
             "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\","
             "\"id\":\"%s\",\"name\":\"%s\",\"input\":%s}]},\"parent_tool_use_id\":%s}",
             id, name, input, parent);
    return feed(sj, line);
}

/* A text message of the subagent `parent` (JSON value); returns its one event. */
static json_t *text_in(streamjson_t *sj, const char *parent)
{
    char line[512];
    snprintf(line, sizeof line,
             "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\","
             "\"text\":\"hi\"}]},\"parent_tool_use_id\":%s}",
             parent);
    json_t *ev = feed(sj, line);
    assert_int_equal(json_array_size(ev), 1);
    json_t *e = json_incref(json_array_get(ev, 0));
    json_decref(ev);
    return e;
}

static void test_subagent_types(void **state)
{
    (void)state;
    streamjson_t *sj = streamjson_new("r", NULL);
    json_t *e;
    /* the Agent tool (the Task tool's newer name) starts subagents too */
    json_decref(tool_use(sj, "t-agent", "Agent",
                         "{\"description\":\"Review\",\"prompt\":\"Review the diff\","
                         "\"subagent_type\":\"code-reviewer\"}",
                         "null"));
    e = text_in(sj, "\"t-agent\"");
    expect_agent(e, "t-agent", "code-reviewer");
    json_decref(e);
    /* Task without a subagent_type, or with one that is no valid agent_type: agent_id only */
    static const char *const inputs[] = {
        "{\"description\":\"d\",\"prompt\":\"p\"}",
        "{\"subagent_type\":\"\"}",
        "{\"subagent_type\":7}",
        "{\"subagent_type\":null}",
        "{\"subagent_type\":\"a\\u0000b\"}",
        "{\"subagent_type\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "\"not an object\"",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "t-bad-%zu", i);
        json_decref(tool_use(sj, id, "Task", inputs[i], "null"));
        char parent[40];
        snprintf(parent, sizeof parent, "\"%s\"", id);
        e = text_in(sj, parent);
        expect_agent(e, id, NULL);
        json_decref(e);
    }
    /* exactly 64 bytes is a valid agent_type */
    json_decref(tool_use(sj, "t-64", "Task",
                         "{\"subagent_type\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxx\"}",
                         "null"));
    e = text_in(sj, "\"t-64\"");
    assert_int_equal(strlen(str(e, "agent_type")), ADW_AGENT_TYPE_MAX);
    json_decref(e);
    /* another tool's subagent_type means nothing */
    json_decref(tool_use(sj, "t-bash", "Bash", "{\"subagent_type\":\"Explore\"}", "null"));
    e = text_in(sj, "\"t-bash\"");
    expect_agent(e, "t-bash", NULL);
    json_decref(e);
    /* a parent_tool_use_id never seen: agent_id alone */
    e = text_in(sj, "\"toolu_unseen\"");
    expect_agent(e, "toolu_unseen", NULL);
    json_decref(e);
    /* a parent_tool_use_id that is no valid agent_id: neither key (the payload keeps it) */
    e = text_in(sj, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"");
    expect_agent(e, NULL, NULL);
    assert_int_equal(strlen(str(json_object_get(e, "payload"), "parent_tool_use_id")),
                     ADW_AGENT_ID_MAX + 1);
    json_decref(e);
    static const char *const no_parent[] = {"null", "\"\"", "5", "[\"t-agent\"]"};
    for (size_t i = 0; i < sizeof no_parent / sizeof no_parent[0]; i++) {
        e = text_in(sj, no_parent[i]);
        expect_agent(e, NULL, NULL);
        json_decref(e);
    }
    /* every event of a subagent's message gets the keys: a user message, an odd block, other
     * message types */
    json_t *ev = feed(sj, "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\","
                          "\"tool_use_id\":\"t-bash\",\"content\":\"ok\"},{\"type\":\"image\"}]},"
                          "\"parent_tool_use_id\":\"t-agent\"}");
    assert_int_equal(json_array_size(ev), 2);
    expect(json_array_get(ev, 0), "ToolResultBlock", "Bash result: ok");
    expect_agent(json_array_get(ev, 0), "t-agent", "code-reviewer");
    expect(json_array_get(ev, 1), "StreamMessage", "user: image block");
    expect_agent(json_array_get(ev, 1), "t-agent", "code-reviewer");
    json_decref(ev);
    ev = feed(sj, "{\"type\":\"stream_event\",\"event\":{\"type\":\"message_start\"},"
                  "\"parent_tool_use_id\":\"t-agent\"}");
    expect_agent(json_array_get(ev, 0), "t-agent", "code-reviewer");
    json_decref(ev);
    ev = feed(sj, "{\"type\":\"user\",\"message\":{\"content\":\"Review the diff\"},"
                  "\"parent_tool_use_id\":\"t-agent\"}");
    expect(json_array_get(ev, 0), "StreamMessage", "user: Review the diff");
    expect_agent(json_array_get(ev, 0), "t-agent", "code-reviewer");
    json_decref(ev);
    streamjson_destroy(&sj);
}

static void test_subagent_memory(void **state)
{
    (void)state;
    char id[32];
    streamjson_t *sj = streamjson_new("r", NULL);
    json_decref(tool_use(sj, "t-task", "Task", "{\"subagent_type\":\"Explore\"}", "null"));
    /* the subagent's own tool calls are remembered too; the Task stays known while it is
     * among the last STREAMJSON_TOOL_MEMORY tool_use blocks */
    for (int i = 0; i < STREAMJSON_TOOL_MEMORY - 1; i++) {
        snprintf(id, sizeof id, "t%d", i);
        json_t *ev = tool_use(sj, id, "Read", "{\"file_path\":\"/a\"}", "\"t-task\"");
        expect_agent(json_array_get(ev, 0), "t-task", "Explore");
        json_decref(ev);
    }
    json_t *e = text_in(sj, "\"t-task\"");
    expect_agent(e, "t-task", "Explore");
    json_decref(e);
    /* one more and it is forgotten: agent_id alone */
    json_decref(tool_use(sj, "t-last", "Read", "{\"file_path\":\"/a\"}", "\"t-task\""));
    e = text_in(sj, "\"t-task\"");
    expect_agent(e, "t-task", NULL);
    json_decref(e);
    /* a slot reused by a plain tool forgets its subagent_type */
    json_decref(tool_use(sj, "t-task", "Read", "{}", "null"));
    e = text_in(sj, "\"t-task\"");
    expect_agent(e, "t-task", NULL);
    json_decref(e);
    streamjson_destroy(&sj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_failed_run),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_new_validates),
        cmocka_unit_test(test_line_ends_and_length),
        cmocka_unit_test(test_session_fallback),
        cmocka_unit_test(test_blocks_odd_shapes),
        cmocka_unit_test(test_tool_memory),
        cmocka_unit_test(test_result_variants),
        cmocka_unit_test(test_huge_tool_result),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_new_step_strict),
        cmocka_unit_test(test_summary_keys),
        cmocka_unit_test(test_subagent_transcript),
        cmocka_unit_test(test_subagent_types),
        cmocka_unit_test(test_subagent_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
