/* Unit tests for shared/claude/otlp.c: OTLP/HTTP JSON log records -> ADW events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "event.h"
#include "otlp.h"
#include "claudetest.h"

#define SID "4f9c2a1e-7b3d-4c8e-9a51-2d6e8f0b1c37"

static json_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/otlp/%s", ADW_TEST_DATA, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fail_msg("%s: %s", path, e.text);
    return j;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("%s: %s", text, e.text);
    return j;
}

/* Every event made must pass the event model's rules. */
static void check_valid(const json_t *ev)
{
    adw_event_t e = {0};
    char err[EVENT_ERR_LEN];
    if (event_from_json((json_t *)ev, 1, &e, err, sizeof err))
        fail_msg("invalid event: %s", err);
    event_clear(&e);
}

static void map_file(const char *name, otlp_logs_t *out)
{
    json_t *req = load(name);
    char err[OTLP_ERR_LEN];
    assert_int_equal(otlp_logs_map(req, ADW_BATCH_MAX, out, err, sizeof err), 0);
    json_decref(req);
    for (size_t i = 0; i < json_array_size(out->events); i++)
        check_valid(json_array_get(out->events, i));
}

/* One record in a request with the given resource attributes (JSON text of a KeyValue list). */
static json_t *one(const char *resource_attrs, const char *record)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"resourceLogs\":[{\"resource\":{\"attributes\":%s},\"scopeLogs\":[{\"scope\":"
             "{\"name\":\"com.anthropic.claude_code.events\"},\"logRecords\":[%s]}]}]}",
             resource_attrs, record);
    return parse(text);
}

static json_t *record_event(const char *resource_attrs, const char *record, char **session,
                            char *err)
{
    json_t *req = one(resource_attrs, record);
    json_t *rl = json_array_get(json_object_get(req, "resourceLogs"), 0);
    json_t *rec = json_array_get(
        json_object_get(json_array_get(json_object_get(rl, "scopeLogs"), 0), "logRecords"), 0);
    json_t *ev =
        otlp_record_to_event(json_object_get(rl, "resource"), rec, session, err, OTLP_ERR_LEN);
    json_decref(req);
    if (ev)
        check_valid(ev);
    return ev;
}

static void test_api_request_batch(void **state)
{
    (void)state;
    otlp_logs_t l;
    map_file("api_request.json", &l);
    assert_int_equal(l.records, 2);
    assert_int_equal(l.rejected, 0);
    assert_int_equal(json_array_size(l.events), 2);
    json_t *ev = json_array_get(l.events, 0);
    assert_string_equal(str(ev, "type"), "adw_event");
    assert_string_equal(str(ev, "adw_id"), "run-otel-1");
    assert_string_equal(str(ev, "step"), "build");
    assert_string_equal(str(ev, "event_type"), "api_request");
    assert_string_equal(str(ev, "timestamp"), "2026-12-07T15:04:05.123000Z");
    assert_string_equal(str(ev, "summary"),
                        "claude-sonnet-4-5-20250929 $0.0133 12/318 tok 2417 ms");
    assert_null(l.sessions[0]); /* adw.id given: nothing to re-file */
    json_t *p = json_object_get(ev, "payload");
    assert_true(json_is_real(json_object_get(p, "cost_usd")));
    assert_true(json_real_value(json_object_get(p, "cost_usd")) == 0.0132915);
    assert_int_equal(json_integer_value(json_object_get(p, "input_tokens")), 12);
    assert_int_equal(json_integer_value(json_object_get(p, "output_tokens")), 318);
    assert_int_equal(json_integer_value(json_object_get(p, "cache_read_tokens")), 14567);
    assert_int_equal(json_integer_value(json_object_get(p, "cache_creation_tokens")), 1021);
    assert_int_equal(json_integer_value(json_object_get(p, "duration_ms")), 2417);
    assert_int_equal(json_integer_value(json_object_get(p, "event.sequence")), 1);
    assert_string_equal(str(p, "session.id"), SID);
    assert_string_equal(str(p, "user.account_uuid"), "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f");
    assert_string_equal(str(p, "terminal.type"), "vscode");
    assert_string_equal(str(p, "speed"), "normal"); /* not a numeric key: stays a string */
    assert_null(json_object_get(p, "adw.id"));      /* resource attributes stay out */
    /* the run totals see the cost and tokens */
    adw_event_t e = {0};
    char err[EVENT_ERR_LEN];
    assert_int_equal(event_from_json(ev, 1, &e, err, sizeof err), 0);
    assert_true(e.has & EVENT_HAS_COST);
    assert_true(e.has & EVENT_HAS_TOKENS);
    assert_int_equal(e.tokens, 12 + 318 + 14567 + 1021);
    event_clear(&e);
    const char *id0 = str(ev, "event_id"), *id1 = str(json_array_get(l.events, 1), "event_id");
    assert_int_equal(strlen(id0), 5 + 32);
    assert_memory_equal(id0, "otel-", 5);
    assert_string_not_equal(id0, id1);
    otlp_logs_clear(&l);
}

static void test_mixed_batch(void **state)
{
    (void)state;
    otlp_logs_t l;
    map_file("mixed.json", &l);
    assert_int_equal(l.records, 6);
    assert_int_equal(l.rejected, 0);
    static const char *const types[] = {"user_prompt", "tool_decision", "tool_result",
                                        "tool_result", "api_error",     "mcp_server_connection"};
    static const char *const sums[] = {"Prompt (42 chars)",
                                       "Bash: accept",
                                       "Bash ok (873 ms)",
                                       "Edit failed (12 ms)",
                                       "claude-sonnet-4-5-20250929 error 529: Overloaded",
                                       "mcp_server_connection"};
    for (size_t i = 0; i < 6; i++) {
        json_t *ev = json_array_get(l.events, i);
        assert_string_equal(str(ev, "event_type"), types[i]);
        assert_string_equal(str(ev, "summary"), sums[i]);
        assert_string_equal(str(ev, "adw_id"), "run-otel-2");
        assert_null(json_object_get(ev, "step"));
    }
    json_t *p = json_object_get(json_array_get(l.events, 2), "payload");
    assert_int_equal(json_integer_value(json_object_get(p, "tool_result_size_bytes")), 2048);
    assert_string_equal(str(p, "success"), "true");
    assert_true(json_is_string(json_object_get(p, "tool_parameters")));
    p = json_object_get(json_array_get(l.events, 4), "payload");
    assert_int_equal(json_integer_value(json_object_get(p, "status_code")), 529);
    assert_int_equal(json_integer_value(json_object_get(p, "attempt")), 2);
    p = json_object_get(json_array_get(l.events, 0), "payload");
    assert_int_equal(json_integer_value(json_object_get(p, "prompt_length")), 42);
    otlp_logs_clear(&l);
}

static void test_session_only(void **state)
{
    (void)state;
    otlp_logs_t l;
    map_file("session_only.json", &l);
    assert_int_equal(json_array_size(l.events), 1);
    json_t *ev = json_array_get(l.events, 0);
    assert_string_equal(str(ev, "adw_id"), "a1b2c3d4");
    assert_non_null(l.sessions[0]);
    assert_string_equal(l.sessions[0], "a1b2c3d4-0000-4111-8222-933344445555");
    otlp_logs_clear(&l);
}

static void test_typed_values(void **state)
{
    (void)state;
    otlp_logs_t l;
    map_file("typed.json", &l);
    json_t *ev = json_array_get(l.events, 0);
    assert_string_equal(str(ev, "event_type"), "api_request"); /* from eventName */
    assert_string_equal(str(ev, "step"), "plan");
    json_t *p = json_object_get(ev, "payload");
    /* intValue strings above 2^53 are exact */
    assert_int_equal(json_integer_value(json_object_get(p, "event.sequence")), 9007199254740993LL);
    assert_int_equal(json_integer_value(json_object_get(p, "offset")), -42);
    assert_int_equal(json_integer_value(json_object_get(p, "input_tokens")), 1200);
    assert_int_equal(json_integer_value(json_object_get(p, "output_tokens")), 3400);
    assert_true(json_real_value(json_object_get(p, "cost_usd")) == 0.75);
    assert_true(json_is_false(json_object_get(p, "fast")));
    json_t *tags = json_object_get(p, "tags");
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "a");
    assert_int_equal(json_integer_value(json_array_get(tags, 1)), 2);
    assert_true(json_is_true(json_array_get(tags, 2)));
    json_t *ctx = json_object_get(p, "ctx");
    assert_string_equal(str(ctx, "k"), "v");
    assert_true(json_real_value(json_object_get(ctx, "n")) == 1.5);
    assert_string_equal(str(p, "blob"), "AAEC");
    assert_true(json_is_null(json_object_get(p, "none")));
    assert_string_equal(str(ev, "summary"),
                        "claude-opus-4-1-20250805 $0.7500 1200/3400 tok 5120 ms");
    otlp_logs_clear(&l);
}

static void test_value_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"stringValue\":\"x\"}", "\"x\""},
        {"{\"boolValue\":true}", "true"},
        {"{\"intValue\":\"-9223372036854775808\"}", "-9223372036854775808"},
        {"{\"intValue\":\"9223372036854775807\"}", "9223372036854775807"},
        {"{\"intValue\":\"99999999999999999999\"}", "\"99999999999999999999\""}, /* too big */
        {"{\"intValue\":7}", "7"},
        {"{\"doubleValue\":2.5}", "2.5"},
        {"{\"doubleValue\":3}", "3.0"},
        {"{\"doubleValue\":\"NaN\"}", "\"NaN\""},
        {"{\"doubleValue\":\"1e3\"}", "1000.0"},
        {"{\"arrayValue\":{}}", "[]"},
        {"{\"arrayValue\":{\"values\":[{},{\"stringValue\":\"a\"}]}}", "[null,\"a\"]"},
        {"{\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}},"
         "{\"key\":\"a\",\"value\":{\"intValue\":\"2\"}}]}}",
         "{\"a\":2}"},
        {"{\"bytesValue\":\"AA==\"}", "\"AA==\""},
        {"{}", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *in = parse(cases[i].in);
        json_t *out = otlp_value_to_json(in);
        assert_non_null(out);
        char *t = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
        if (strcmp(t, cases[i].out))
            fail_msg("%s -> %s, want %s", cases[i].in, t, cases[i].out);
        free(t);
        json_decref(out);
        json_decref(in);
    }
    static const char *const bad[] = {"[]",
                                      "\"x\"",
                                      "{\"stringValue\":1}",
                                      "{\"boolValue\":\"t\"}",
                                      "{\"intValue\":true}",
                                      "{\"other\":1}",
                                      "{\"arrayValue\":[1]}",
                                      "{\"kvlistValue\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = parse(bad[i]);
        json_t *out = otlp_value_to_json(in);
        if (out)
            fail_msg("%s should not be an AnyValue", bad[i]);
        json_decref(in);
    }
}

static void test_numeric_strings(void **state)
{
    (void)state;
    json_t *kv = parse("[{\"key\":\"cost_usd\",\"value\":{\"stringValue\":\"0.5\"}},"
                       "{\"key\":\"input_tokens\",\"value\":{\"stringValue\":\"12\"}},"
                       "{\"key\":\"duration_ms\",\"value\":{\"stringValue\":\"1e2\"}},"
                       "{\"key\":\"status_code\",\"value\":{\"stringValue\":\"n/a\"}},"
                       "{\"key\":\"attempt\",\"value\":{\"stringValue\":\" 3\"}},"
                       "{\"key\":\"output_tokens\",\"value\":{\"stringValue\":\"0x10\"}},"
                       "{\"key\":\"model\",\"value\":{\"stringValue\":\"12\"}},"
                       "{\"key\":1,\"value\":{\"stringValue\":\"no key\"}},"
                       "{\"key\":\"novalue\"}]");
    json_t *o = otlp_attributes_to_json(kv, 1);
    assert_true(json_real_value(json_object_get(o, "cost_usd")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(o, "input_tokens")), 12);
    assert_true(json_real_value(json_object_get(o, "duration_ms")) == 100.0);
    assert_string_equal(str(o, "status_code"), "n/a");
    assert_string_equal(str(o, "attempt"), " 3");
    assert_string_equal(str(o, "output_tokens"), "0x10");
    assert_string_equal(str(o, "model"), "12"); /* not a numeric key */
    assert_int_equal(json_object_size(o), 7);
    json_decref(o);
    o = otlp_attributes_to_json(kv, 0); /* resource attributes: no conversion */
    assert_string_equal(str(o, "cost_usd"), "0.5");
    json_decref(o);
    json_decref(kv);
}

#define REC(name, attrs)                                                                           \
    "{\"timeUnixNano\":\"1796655845123456789\",\"body\":{\"stringValue\":\"" name                  \
    "\"},\"attributes\":[" attrs "]}"
#define SATTR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
#define RUN "[" SATTR("adw.id", "r1") "]"

static void test_names(void **state)
{
    (void)state;
    char err[OTLP_ERR_LEN];
    char *sess;
    json_t *ev = record_event(RUN, REC("claude_code.some_new_event", ""), &sess, err);
    assert_non_null(ev);
    assert_string_equal(str(ev, "event_type"), "some_new_event");
    assert_string_equal(str(ev, "summary"), "some_new_event");
    assert_string_equal(str(ev, "timestamp"), "2026-12-07T15:04:05.123456Z");
    json_decref(ev);
    /* no prefix: kept as it is; event.name wins over the body */
    ev = record_event(RUN, REC("other.thing", SATTR("event.name", "tool_result")), &sess, err);
    assert_string_equal(str(ev, "event_type"), "tool_result");
    json_decref(ev);
    ev = record_event(RUN, REC("other.thing", ""), &sess, err);
    assert_string_equal(str(ev, "event_type"), "other.thing");
    json_decref(ev);
    /* the prefix alone is a name */
    ev = record_event(RUN, REC("claude_code.", ""), &sess, err);
    assert_string_equal(str(ev, "event_type"), "claude_code.");
    json_decref(ev);
    /* no name at all */
    ev = record_event(RUN, "{\"timeUnixNano\":\"1\",\"attributes\":[]}", &sess, err);
    assert_null(ev);
    assert_non_null(strstr(err, "no event name"));
    ev = record_event(RUN, "{\"body\":{\"intValue\":\"1\"}}", &sess, err);
    assert_null(ev);
    /* a name over the limit */
    ev =
        record_event(RUN,
                     REC("claude_code.a123456789012345678901234567890123456789012345678901234567890"
                         "1234567890",
                         ""),
                     &sess, err);
    assert_null(ev);
    assert_non_null(strstr(err, "over 64"));
}

static void test_times(void **state)
{
    (void)state;
    char err[OTLP_ERR_LEN];
    char *sess;
    json_t *ev = record_event(
        RUN,
        "{\"timeUnixNano\":\"0\",\"observedTimeUnixNano\":\"1796655845000001000\",\"body\":"
        "{\"stringValue\":\"x\"}}",
        &sess, err);
    assert_string_equal(str(ev, "timestamp"), "2026-12-07T15:04:05.000001Z");
    json_decref(ev);
    ev = record_event(
        RUN, "{\"timeUnixNano\":1796655845000000000,\"body\":{\"stringValue\":\"x\"}}", &sess, err);
    assert_string_equal(str(ev, "timestamp"), "2026-12-07T15:04:05.000000Z");
    json_decref(ev);
    ev = record_event(RUN, "{\"body\":{\"stringValue\":\"x\"}}", &sess, err);
    assert_null(json_object_get(ev, "timestamp"));
    json_decref(ev);
    ev =
        record_event(RUN, "{\"timeUnixNano\":\"-5\",\"body\":{\"stringValue\":\"x\"}}", &sess, err);
    assert_null(ev);
    assert_non_null(strstr(err, "timeUnixNano"));
    ev = record_event(
        RUN, "{\"timeUnixNano\":\"18446744073709551615\",\"body\":{\"stringValue\":\"x\"}}", &sess,
        err);
    assert_non_null(ev); /* the largest fixed64: year 2554 */
    assert_memory_equal(str(ev, "timestamp"), "2554-", 5);
    json_decref(ev);
    ev = record_event(
        RUN, "{\"timeUnixNano\":\"18446744073709551616\",\"body\":{\"stringValue\":\"x\"}}", &sess,
        err);
    assert_null(ev); /* over 64 bits */
}

static void test_event_id(void **state)
{
    (void)state;
    char err[OTLP_ERR_LEN];
    char *sess;
    const char *rec =
        REC("claude_code.api_request",
            SATTR("session.id", SID) "," SATTR(
                "prompt.id", "p1") ",{\"key\":\"event.sequence\",\"value\":{\"intValue\":\"7\"}}");
    json_t *a = record_event(RUN, rec, &sess, err);
    json_t *b = record_event(RUN, rec, &sess, err);
    assert_string_equal(str(a, "event_id"), str(b, "event_id"));
    json_decref(b);
    /* another sequence number, another id */
    b = record_event(RUN,
                     REC("claude_code.api_request",
                         SATTR("session.id", SID) "," SATTR(
                             "prompt.id", "p1") ",{\"key\":\"event."
                                                "sequence\",\"value\":{\"intValue\":\"8\"}}"),
                     &sess, err);
    assert_string_not_equal(str(a, "event_id"), str(b, "event_id"));
    json_decref(b);
    /* the run does not change the record's id */
    b = record_event("[" SATTR("adw.id", "r2") "]", rec, &sess, err);
    assert_string_equal(str(a, "event_id"), str(b, "event_id"));
    json_decref(b);
    json_decref(a);
    /* no sequence: the attributes tell records apart */
    a = record_event(RUN, REC("x", SATTR("session.id", SID) "," SATTR("tool_name", "Bash")), &sess,
                     err);
    b = record_event(RUN, REC("x", SATTR("session.id", SID) "," SATTR("tool_name", "Read")), &sess,
                     err);
    assert_string_not_equal(str(a, "event_id"), str(b, "event_id"));
    json_decref(b);
    b = record_event(RUN, REC("x", SATTR("session.id", SID) "," SATTR("tool_name", "Bash")), &sess,
                     err);
    assert_string_equal(str(a, "event_id"), str(b, "event_id"));
    json_decref(b);
    json_decref(a);
}

static void test_attribution(void **state)
{
    (void)state;
    char err[OTLP_ERR_LEN];
    char *sess = NULL;
    /* the record's session.id, adw.id absent */
    json_t *ev = record_event("[]", REC("x", SATTR("session.id", SID)), &sess, err);
    assert_string_equal(str(ev, "adw_id"), "4f9c2a1e");
    assert_string_equal(sess, SID);
    free(sess);
    json_decref(ev);
    /* the resource's session.id */
    ev = record_event("[" SATTR("session.id", "abc") "," SATTR("adw.step", "s1") "]", REC("x", ""),
                      &sess, err);
    assert_string_equal(str(ev, "adw_id"), "abc");
    assert_string_equal(str(ev, "step"), "s1");
    assert_string_equal(sess, "abc");
    free(sess);
    json_decref(ev);
    /* adw.id wins over session.id; no re-filing */
    ev = record_event(RUN, REC("x", SATTR("session.id", SID)), &sess, err);
    assert_string_equal(str(ev, "adw_id"), "r1");
    assert_null(sess);
    json_decref(ev);
    /* an empty adw.id is absent */
    ev = record_event("[" SATTR("adw.id", "") "]", REC("x", SATTR("session.id", SID)), &sess, err);
    assert_string_equal(str(ev, "adw_id"), "4f9c2a1e");
    free(sess);
    json_decref(ev);
    /* neither: refused */
    ev = record_event("[]", REC("x", ""), &sess, err);
    assert_null(ev);
    assert_null(sess);
    assert_non_null(strstr(err, "adw.id"));
    /* invalid adw.id: refused */
    ev = record_event("[" SATTR("adw.id", "bad id!") "]", REC("x", SATTR("session.id", SID)), &sess,
                      err);
    assert_null(ev);
    assert_non_null(strstr(err, "adw.id must be"));
    ev = record_event("[{\"key\":\"adw.id\",\"value\":{\"intValue\":\"5\"}}]", REC("x", ""), &sess,
                      err);
    assert_null(ev);
    /* a session id that cannot stand for a run */
    ev = record_event("[]", REC("x", SATTR("session.id", "a b c")), &sess, err);
    assert_null(ev);
    assert_null(sess);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    static const char *const not_otlp[] = {
        "[]",
        "{}",
        "{\"resourceLogs\":{}}",
        "{\"resourceLogs\":[1]}",
        "{\"resourceLogs\":[{\"scopeLogs\":{}}]}",
        "{\"resourceLogs\":[{\"scopeLogs\":[1]}]}",
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":{}}]}]}",
        "{\"resourceMetrics\":[]}",
    };
    otlp_logs_t l;
    char err[OTLP_ERR_LEN];
    for (size_t i = 0; i < sizeof not_otlp / sizeof not_otlp[0]; i++) {
        json_t *j = parse(not_otlp[i]);
        assert_int_equal(otlp_logs_map(j, ADW_BATCH_MAX, &l, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "not OTLP"));
        assert_null(l.events);
        json_decref(j);
    }
    /* empty is OTLP: nothing to take */
    json_t *j = parse("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[]}]},{}]}");
    assert_int_equal(otlp_logs_map(j, ADW_BATCH_MAX, &l, err, sizeof err), 0);
    assert_int_equal(l.records, 0);
    assert_int_equal(json_array_size(l.events), 0);
    otlp_logs_clear(&l);
    json_decref(j);
    /* bad records are refused one by one, the rest taken */
    j = one(RUN, "1," REC("ok", "") ",{\"attributes\":{}}," REC("", ""));
    assert_int_equal(otlp_logs_map(j, ADW_BATCH_MAX, &l, err, sizeof err), 0);
    assert_int_equal(l.records, 4);
    assert_int_equal(l.rejected, 3);
    assert_int_equal(json_array_size(l.events), 1);
    assert_string_equal(l.first_error, "log record 0: a log record must be an object");
    assert_int_equal(l.first_at, 0);
    assert_int_equal(l.at[0], 1); /* the event is the second record's */
    otlp_logs_clear(&l);
    /* over max_events */
    assert_int_equal(otlp_logs_map(j, 0, &l, err, sizeof err), 0);
    assert_int_equal(l.rejected, 4);
    otlp_logs_clear(&l);
    json_decref(j);
    j = one(RUN, REC("a", "") "," REC("b", "") "," REC("c", ""));
    assert_int_equal(otlp_logs_map(j, 2, &l, err, sizeof err), 0);
    assert_int_equal(json_array_size(l.events), 2);
    assert_int_equal(l.rejected, 1);
    assert_non_null(strstr(l.first_error, "more than 2 records"));
    otlp_logs_clear(&l);
    otlp_logs_clear(&l); /* twice is fine */
    json_decref(j);
}

static void test_big_payload(void **state)
{
    (void)state;
    size_t n = ADW_PAYLOAD_MAX + 1000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    json_t *req = one(RUN, REC("claude_code.user_prompt", ""));
    json_t *rec = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(req, "resourceLogs"), 0),
                                           "scopeLogs"),
                           0),
            "logRecords"),
        0);
    json_array_append_new(json_object_get(rec, "attributes"),
                          json_pack("{s:s,s:{s:s}}", "key", "prompt", "value", "stringValue", big));
    otlp_logs_t l;
    char err[OTLP_ERR_LEN];
    assert_int_equal(otlp_logs_map(req, ADW_BATCH_MAX, &l, err, sizeof err), 0);
    assert_int_equal(json_array_size(l.events), 1);
    json_t *p = json_object_get(json_array_get(l.events, 0), "payload");
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    check_valid(json_array_get(l.events, 0));
    otlp_logs_clear(&l);
    json_decref(req);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_request_batch),
        cmocka_unit_test(test_mixed_batch),
        cmocka_unit_test(test_session_only),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_value_kinds),
        cmocka_unit_test(test_numeric_strings),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_event_id),
        cmocka_unit_test(test_attribution),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_big_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
