/* Unit tests for gateway/filter: matching (each key, lists, combinations, absent fields),
 * parsing from query strings and subscribe messages (types, limits, atomic failure), the
 * canonical echo, and the agent_ids key (its limits crossed on both parsers). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "filter.h"
#include "jsonw.h"

static filter_event_t ev(const char *adw_id, const char *step, const char *etype, const char *type)
{
    filter_event_t e = {{adw_id, step, etype, type}};
    return e;
}

static void set_csv(filter_t *f, filter_key_t k, const char *s)
{
    char err[128];
    assert_int_equal(filter_set_csv(f, k, s, strlen(s), err, sizeof err), 0);
}

static json_t *parse(const char *s)
{
    json_t *v = NULL;
    char err[128];
    assert_int_equal(codec_json_parse(s, strlen(s), &v, err, sizeof err), 0);
    return v;
}

/* Applies filter_set_json with the JSON text s; returns its result and the reason. */
static int set_json(filter_t *f, const char *s, char *err, size_t errlen)
{
    json_t *v = parse(s);
    int rc = filter_set_json(f, v, err, errlen);
    json_decref(v);
    return rc;
}

static void test_empty_matches_everything(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    assert_true(filter_is_empty(&f));
    filter_event_t a = ev("a1", "build", "ToolUseBlock", "adw_event");
    filter_event_t none = ev(NULL, NULL, NULL, NULL);
    assert_true(filter_match(&f, &a));
    assert_true(filter_match(&f, &none));
    filter_free(&f);
}

static void test_each_key(void **state)
{
    (void)state;
    filter_event_t e = ev("a1", "build", "ToolUseBlock", "adw_event");
    e.field[FILTER_AGENT_IDS] = "agent-7";
    for (int k = 0; k < FILTER_NKEYS; k++) {
        filter_t f;
        filter_init(&f);
        set_csv(&f, (filter_key_t)k, e.field[k]);
        assert_false(filter_is_empty(&f));
        assert_true(filter_match(&f, &e));
        filter_event_t other = e;
        other.field[k] = "zzz";
        assert_false(filter_match(&f, &other));
        other.field[k] = NULL; /* absent field never matches a constraint */
        assert_false(filter_match(&f, &other));
        filter_free(&f);
    }
}

static void test_or_within_and_across(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_STEPS, "plan,build");
    set_csv(&f, FILTER_ADW_ID, "a1");
    filter_event_t e1 = ev("a1", "plan", "TextBlock", "adw_event");
    filter_event_t e2 = ev("a1", "build", "TextBlock", "adw_event");
    filter_event_t e3 = ev("a1", "review", "TextBlock", "adw_event");
    filter_event_t e4 = ev("a2", "plan", "TextBlock", "adw_event");
    assert_true(filter_match(&f, &e1));
    assert_true(filter_match(&f, &e2));
    assert_false(filter_match(&f, &e3));
    assert_false(filter_match(&f, &e4));
    set_csv(&f, FILTER_TYPES, "system");
    assert_false(filter_match(&f, &e1));
    filter_event_t s = ev("a1", "plan", "step_start", "system");
    assert_true(filter_match(&f, &s));
    filter_free(&f);
}

static void test_event_types_uses_event_for_system(void **state)
{
    (void)state;
    json_t *sys = parse("{\"type\":\"system\",\"adw_id\":\"a\",\"event\":\"step_start\"}");
    json_t *adw = parse("{\"type\":\"adw_event\",\"adw_id\":\"a\",\"event_type\":\"TextBlock\","
                        "\"event\":\"ignored\"}");
    filter_event_t es, ea;
    filter_event_from_json(sys, &es);
    filter_event_from_json(adw, &ea);
    assert_string_equal(es.field[FILTER_EVENT_TYPES], "step_start");
    assert_string_equal(ea.field[FILTER_EVENT_TYPES], "TextBlock");
    assert_null(es.field[FILTER_STEPS]);
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_EVENT_TYPES, "step_start,TextBlock");
    assert_true(filter_match(&f, &es));
    assert_true(filter_match(&f, &ea));
    set_csv(&f, FILTER_EVENT_TYPES, "ignored");
    assert_false(filter_match(&f, &ea));
    filter_free(&f);
    json_decref(sys);
    json_decref(adw);
}

static void test_non_string_fields_are_absent(void **state)
{
    (void)state;
    json_t *doc = parse("{\"adw_id\":5,\"step\":null,\"event_type\":[\"x\"],\"type\":true}");
    filter_event_t e;
    filter_event_from_json(doc, &e);
    for (int k = 0; k < FILTER_NKEYS; k++)
        assert_null(e.field[k]);
    json_decref(doc);
}

static void test_csv_parsing(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_STEPS, ",build,,plan,build,");
    assert_int_equal(f.key[FILTER_STEPS].n, 2);
    assert_string_equal(f.key[FILTER_STEPS].v[0], "build");
    assert_string_equal(f.key[FILTER_STEPS].v[1], "plan");
    set_csv(&f, FILTER_STEPS, "");
    assert_int_equal(f.key[FILTER_STEPS].n, 0);
    assert_true(filter_is_empty(&f));
    filter_free(&f);
}

static void test_csv_limits_leave_filter_unchanged(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_STEPS, "keep");
    char err[128], s[80 * 70];
    memset(s, 'x', 65);
    assert_int_equal(filter_set_csv(&f, FILTER_STEPS, s, 65, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "steps"));
    assert_int_equal(filter_set_csv(&f, FILTER_STEPS, s, 64, err, sizeof err), 0);
    assert_int_equal(strlen(f.key[FILTER_STEPS].v[0]), 64);
    set_csv(&f, FILTER_STEPS, "keep");

    size_t n = 0;
    for (int i = 0; i < FILTER_VALUES_MAX + 1; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "v%d,", i);
    assert_int_equal(filter_set_csv(&f, FILTER_STEPS, s, n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "at most"));
    assert_string_equal(f.key[FILTER_STEPS].v[0], "keep");
    assert_int_equal(f.key[FILTER_STEPS].n, 1);

    const char bad[] = "a,\xff\xfe";
    assert_int_equal(filter_set_csv(&f, FILTER_STEPS, bad, sizeof bad - 1, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "UTF-8"));
    const char nul[] = "a\0b";
    assert_int_equal(filter_set_csv(&f, FILTER_STEPS, nul, 3, err, sizeof err), -EINVAL);
    assert_int_equal(f.key[FILTER_STEPS].n, 1);
    filter_free(&f);
}

static void test_json_parsing(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    char err[160];
    assert_int_equal(set_json(&f,
                              "{\"adw_id\":\"a1\",\"steps\":[\"build\",\"plan\"],"
                              "\"event_types\":null,\"types\":[]}",
                              err, sizeof err),
                     0);
    assert_int_equal(f.key[FILTER_ADW_ID].n, 1);
    assert_int_equal(f.key[FILTER_STEPS].n, 2);
    assert_int_equal(f.key[FILTER_EVENT_TYPES].n, 0);
    assert_int_equal(f.key[FILTER_TYPES].n, 0);
    /* A new subscription replaces the whole filter. */
    assert_int_equal(set_json(&f, "{\"types\":\"system\"}", err, sizeof err), 0);
    assert_int_equal(f.key[FILTER_ADW_ID].n, 0);
    assert_int_equal(f.key[FILTER_STEPS].n, 0);
    assert_string_equal(f.key[FILTER_TYPES].v[0], "system");
    assert_int_equal(set_json(&f, "null", err, sizeof err), 0);
    assert_true(filter_is_empty(&f));
    assert_int_equal(filter_set_json(&f, NULL, err, sizeof err), 0);
    assert_int_equal(set_json(&f, "{}", err, sizeof err), 0);
    assert_true(filter_is_empty(&f));
    filter_free(&f);
}

static void test_json_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *reason;
    } cases[] = {
        {"[]", "filters must be an object"},
        {"\"a1\"", "filters must be an object"},
        {"{\"adw_id\":5}", "filters.adw_id must be"},
        {"{\"steps\":[\"a\",1]}", "filters.steps must be"},
        {"{\"steps\":{\"a\":1}}", "filters.steps must be"},
        {"{\"event_types\":true}", "filters.event_types must be"},
        {"{\"types\":[null]}", "filters.types must be"},
        {"{\"step\":[\"build\"]}", "unknown filter key \"step\""},
        {"{\"adw_id\":\"\"}", "adw_id: each value must be"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filter_t f;
        filter_init(&f);
        set_csv(&f, FILTER_ADW_ID, "keep");
        char err[160] = "";
        assert_int_equal(set_json(&f, cases[i].json, err, sizeof err), -EINVAL);
        if (!strstr(err, cases[i].reason))
            fail_msg("%s: reason \"%s\" lacks \"%s\"", cases[i].json, err, cases[i].reason);
        assert_int_equal(f.key[FILTER_ADW_ID].n, 1);
        assert_string_equal(f.key[FILTER_ADW_ID].v[0], "keep");
        filter_free(&f);
    }
}

static void test_json_too_many_values(void **state)
{
    (void)state;
    json_t *arr = json_array();
    for (int i = 0; i <= FILTER_VALUES_MAX; i++) {
        char v[16];
        snprintf(v, sizeof v, "s%d", i);
        json_array_append_new(arr, json_string(v));
    }
    json_t *obj = json_pack("{sO}", "steps", arr);
    filter_t f;
    filter_init(&f);
    char err[128];
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "at most"));
    json_array_remove(arr, 0);
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), 0);
    assert_int_equal(f.key[FILTER_STEPS].n, FILTER_VALUES_MAX);
    filter_free(&f);
    json_decref(obj);
    json_decref(arr);
}

static void test_to_json(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_TYPES, "system");
    set_csv(&f, FILTER_ADW_ID, "a1,a2");
    json_t *o = filter_to_json(&f);
    assert_non_null(o);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_value(&b, o), 0);
    assert_string_equal(b.data, "{\"adw_id\":[\"a1\",\"a2\"],\"types\":[\"system\"]}");
    buf_free(&b);
    json_decref(o);
    filter_free(&f);
    filter_init(&f);
    o = filter_to_json(&f);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

static void test_key_names(void **state)
{
    (void)state;
    assert_int_equal(filter_key_from_name("adw_id"), FILTER_ADW_ID);
    assert_int_equal(filter_key_from_name("steps"), FILTER_STEPS);
    assert_int_equal(filter_key_from_name("event_types"), FILTER_EVENT_TYPES);
    assert_int_equal(filter_key_from_name("types"), FILTER_TYPES);
    assert_int_equal(filter_key_from_name("agent_ids"), FILTER_AGENT_IDS);
    assert_int_equal(filter_key_from_name("agent_id"), -1);
    assert_int_equal(filter_key_from_name("step"), -1);
    assert_int_equal(filter_key_from_name(""), -1);
}

static void test_move(void **state)
{
    (void)state;
    filter_t a, b;
    filter_init(&a);
    filter_init(&b);
    set_csv(&a, FILTER_STEPS, "x");
    set_csv(&b, FILTER_TYPES, "y");
    filter_move(&b, &a);
    assert_true(filter_is_empty(&a));
    assert_int_equal(b.key[FILTER_STEPS].n, 1);
    assert_int_equal(b.key[FILTER_TYPES].n, 0);
    filter_free(&a);
    filter_free(&b);
}

static void test_agent_ids_match(void **state)
{
    (void)state;
    json_t *sub = parse("{\"type\":\"adw_event\",\"adw_id\":\"a1\",\"step\":\"build\","
                        "\"event_type\":\"PreToolUse\",\"agent_id\":\"agent-1\","
                        "\"agent_type\":\"Explore\"}");
    json_t *main_agent = parse("{\"type\":\"adw_event\",\"adw_id\":\"a1\",\"step\":\"build\","
                               "\"event_type\":\"PreToolUse\"}");
    json_t *null_agent = parse("{\"type\":\"adw_event\",\"adw_id\":\"a1\",\"agent_id\":null}");
    filter_event_t es, em, en;
    filter_event_from_json(sub, &es);
    filter_event_from_json(main_agent, &em);
    filter_event_from_json(null_agent, &en);
    assert_string_equal(es.field[FILTER_AGENT_IDS], "agent-1");
    assert_null(em.field[FILTER_AGENT_IDS]);
    assert_null(en.field[FILTER_AGENT_IDS]);

    filter_t f;
    filter_init(&f);
    char err[160];
    /* An empty list, in either form, is no constraint. */
    set_csv(&f, FILTER_AGENT_IDS, "");
    assert_true(filter_is_empty(&f));
    assert_true(filter_match(&f, &em));
    assert_int_equal(set_json(&f, "{\"agent_ids\":[]}", err, sizeof err), 0);
    assert_true(filter_is_empty(&f));
    assert_int_equal(set_json(&f, "{\"agent_ids\":null}", err, sizeof err), 0);
    assert_true(filter_is_empty(&f));
    assert_true(filter_match(&f, &es) && filter_match(&f, &em) && filter_match(&f, &en));

    /* A list: only events of those agents; the main agent's (no agent_id) never match. */
    set_csv(&f, FILTER_AGENT_IDS, "agent-0,agent-1");
    assert_true(filter_match(&f, &es));
    assert_false(filter_match(&f, &em));
    assert_false(filter_match(&f, &en));
    assert_int_equal(set_json(&f, "{\"agent_ids\":\"agent-2\"}", err, sizeof err), 0);
    assert_false(filter_match(&f, &es));
    /* AND with the other keys. */
    assert_int_equal(
        set_json(&f, "{\"agent_ids\":[\"agent-1\"],\"steps\":\"build\"}", err, sizeof err), 0);
    assert_true(filter_match(&f, &es));
    assert_int_equal(
        set_json(&f, "{\"agent_ids\":[\"agent-1\"],\"steps\":\"plan\"}", err, sizeof err), 0);
    assert_false(filter_match(&f, &es));
    filter_free(&f);
    json_decref(sub);
    json_decref(main_agent);
    json_decref(null_agent);
}

static void test_agent_ids_limits(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    set_csv(&f, FILTER_AGENT_IDS, "keep");
    char err[160], s[80 * 70];

    /* One value: 64 bytes pass, 65 are refused (query string and subscribe message). */
    memset(s, 'a', 65);
    s[65] = '\0';
    assert_int_equal(filter_set_csv(&f, FILTER_AGENT_IDS, s, 65, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "agent_ids: each value must be 1 to 64 bytes"));
    assert_string_equal(f.key[FILTER_AGENT_IDS].v[0], "keep");
    json_t *obj = json_pack("{s[s]}", "agent_ids", s);
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "agent_ids: each value must be 1 to 64 bytes"));
    assert_string_equal(f.key[FILTER_AGENT_IDS].v[0], "keep");
    json_decref(obj);
    s[64] = '\0';
    obj = json_pack("{ss}", "agent_ids", s);
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), 0);
    assert_int_equal(strlen(f.key[FILTER_AGENT_IDS].v[0]), 64);
    json_decref(obj);
    assert_int_equal(filter_set_csv(&f, FILTER_AGENT_IDS, s, 64, err, sizeof err), 0);
    assert_int_equal(strlen(f.key[FILTER_AGENT_IDS].v[0]), 64);
    assert_int_equal(set_json(&f, "{\"agent_ids\":[\"\"]}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "agent_ids: each value must be"));
    assert_int_equal(set_json(&f, "{\"agent_ids\":[7]}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "filters.agent_ids must be"));

    /* The list: 64 values pass, 65 are refused. */
    set_csv(&f, FILTER_AGENT_IDS, "keep");
    size_t n = 0;
    json_t *arr = json_array();
    for (int i = 0; i < FILTER_VALUES_MAX; i++) {
        n += (size_t)snprintf(s + n, sizeof s - n, "agent-%d,", i);
        char v[16];
        snprintf(v, sizeof v, "agent-%d", i);
        json_array_append_new(arr, json_string(v));
    }
    size_t n64 = n;
    n += (size_t)snprintf(s + n, sizeof s - n, "agent-%d", FILTER_VALUES_MAX);
    assert_int_equal(filter_set_csv(&f, FILTER_AGENT_IDS, s, n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "agent_ids: at most 64 values"));
    assert_int_equal(f.key[FILTER_AGENT_IDS].n, 1);
    obj = json_pack("{sO}", "agent_ids", arr);
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), 0);
    assert_int_equal(f.key[FILTER_AGENT_IDS].n, FILTER_VALUES_MAX);
    json_array_append_new(arr, json_string("agent-64"));
    set_csv(&f, FILTER_AGENT_IDS, "keep");
    assert_int_equal(filter_set_json(&f, obj, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "agent_ids: at most 64 values"));
    assert_int_equal(f.key[FILTER_AGENT_IDS].n, 1);
    assert_int_equal(filter_set_csv(&f, FILTER_AGENT_IDS, s, n64, err, sizeof err), 0);
    assert_int_equal(f.key[FILTER_AGENT_IDS].n, FILTER_VALUES_MAX);
    json_decref(obj);
    json_decref(arr);
    filter_free(&f);
}

static void test_agent_ids_echo(void **state)
{
    (void)state;
    filter_t f;
    filter_init(&f);
    char err[160];
    assert_int_equal(
        set_json(&f, "{\"agent_ids\":\"agent-1\",\"adw_id\":[\"a1\"]}", err, sizeof err), 0);
    json_t *o = filter_to_json(&f);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_value(&b, o), 0);
    assert_string_equal(b.data, "{\"adw_id\":[\"a1\"],\"agent_ids\":[\"agent-1\"]}");
    buf_free(&b);
    json_decref(o);
    /* A copy keeps the key. */
    filter_t g;
    filter_init(&g);
    assert_int_equal(filter_copy(&g, &f), 0);
    assert_string_equal(g.key[FILTER_AGENT_IDS].v[0], "agent-1");
    filter_free(&g);
    filter_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_matches_everything),
        cmocka_unit_test(test_each_key),
        cmocka_unit_test(test_or_within_and_across),
        cmocka_unit_test(test_event_types_uses_event_for_system),
        cmocka_unit_test(test_non_string_fields_are_absent),
        cmocka_unit_test(test_csv_parsing),
        cmocka_unit_test(test_csv_limits_leave_filter_unchanged),
        cmocka_unit_test(test_json_parsing),
        cmocka_unit_test(test_json_wrong_types),
        cmocka_unit_test(test_json_too_many_values),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_agent_ids_match),
        cmocka_unit_test(test_agent_ids_limits),
        cmocka_unit_test(test_agent_ids_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
