/* Unit tests for ingest/budget_rule: the default budget's parsing, which adw_start gives a
 * budget, the spend rule (OTel's sums when the run has any, else the others'), the crossing
 * rule (80 % and 100 %, once each, both at once), the budget events as built (keys in the
 * contract's order, no status, no spend of their own), and the deny reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget_rule.h"
#include "rollup.h"

/* The event of JSON text (validated; released with event_clear). */
static adw_event_t ev_of(const char *text, int otel)
{
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    adw_event_t e;
    char err[EVENT_ERR_LEN];
    assert_int_equal(event_from_json(doc, 1, &e, err, sizeof err), 0);
    json_decref(doc);
    e.otel = otel;
    return e;
}

static void add(budget_run_t *r, const char *text, int otel)
{
    adw_event_t e = ev_of(text, otel);
    budget_add(r, &e);
    event_clear(&e);
}

static void test_parse_usd(void **state)
{
    (void)state;
    double v = 0;
    char err[160];
    assert_int_equal(budget_parse_usd("5", &v, err, sizeof err), 0);
    assert_true(v == 5.0);
    assert_int_equal(budget_parse_usd("2.50", &v, err, sizeof err), 0);
    assert_true(v == 2.5);
    assert_int_equal(budget_parse_usd("0.01", &v, err, sizeof err), 0);
    assert_true(v == 0.01);
    static const char *const bad[] = {"",     "0",  "0.0", "-5", "+5",    "inf", "nan", "1e3",
                                      "0x10", " 5", "5 ",  "5$", "1.2.3", ".",   "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        assert_int_equal(budget_parse_usd(bad[i], &v, err, sizeof err), -EINVAL);
        assert_true(v == 7);
        assert_non_null(strstr(err, "is not a budget"));
    }
    assert_int_equal(budget_parse_usd(NULL, &v, err, sizeof err), -EINVAL);
}

static void test_of_start(void **state)
{
    (void)state;
    double usd = 0;
    adw_event_t e = ev_of("{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\","
                          "\"payload\":{\"budget_usd\":4.5}}",
                          0);
    assert_int_equal(budget_of_start(&e, &usd), 1);
    assert_true(usd == 4.5);
    event_clear(&e);
    static const char *const none[] = {
        /* not a positive finite number */
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\",\"payload\":{\"budget_usd\":"
        "0}}",
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\",\"payload\":{\"budget_usd\":"
        "-1}}",
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\","
        "\"payload\":{\"budget_usd\":\"5\"}}",
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\",\"payload\":{}}",
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\"}",
        /* not an adw_start */
        "{\"type\":\"system\",\"event\":\"step_start\",\"adw_id\":\"r\",\"step\":\"s\","
        "\"payload\":{\"budget_usd\":5}}",
        "{\"type\":\"adw_event\",\"event_type\":\"adw_start\",\"adw_id\":\"r\","
        "\"payload\":{\"budget_usd\":5}}",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        e = ev_of(none[i], 0);
        usd = 9;
        assert_int_equal(budget_of_start(&e, &usd), 0);
        assert_true(usd == 9);
        event_clear(&e);
    }
}

static void test_spend_rule(void **state)
{
    (void)state;
    budget_run_t r = {0};
    add(&r,
        "{\"type\":\"adw_event\",\"adw_id\":\"r\",\"event_type\":\"Stop\",\"payload\":{\"cost_"
        "usd\":3.9}}",
        0);
    assert_true(budget_spend(&r) == 3.9);
    /* OTel's spend, once there is any, is the one counted. */
    add(&r,
        "{\"type\":\"adw_event\",\"adw_id\":\"r\",\"event_type\":\"Stop\",\"payload\":{\"cost_"
        "usd\":1.0}}",
        1);
    assert_true(budget_spend(&r) == 1.0);
    add(&r,
        "{\"type\":\"adw_event\",\"adw_id\":\"r\",\"event_type\":\"Stop\",\"payload\":{\"cost_"
        "usd\":0.5}}",
        0);
    assert_true(budget_spend(&r) == 1.0);
    assert_float_equal(r.rep_cost, 4.4, 1e-9);
    /* Tokens alone make OTel's spend the one counted, as rollup's rule. */
    budget_run_t t = {.rep_cost = 2.0};
    add(&t,
        "{\"type\":\"adw_event\",\"adw_id\":\"r\",\"event_type\":\"Stop\",\"payload\":{\"tokens\":"
        "10}}",
        1);
    assert_true(budget_spend(&t) == 0.0);
    rollup_agg_t agg = {.otel = {.tokens = 10}, .rep = {.cost = 2.0}};
    assert_true(rollup_spend_shown(&agg)->cost == budget_spend(&t));
    /* The latest adw_start giving a budget sets it; one without leaves it. */
    add(&r,
        "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\","
        "\"payload\":{\"budget_usd\":3}}",
        0);
    assert_true(r.budget_usd == 3.0);
    add(&r, "{\"type\":\"system\",\"event\":\"adw_start\",\"adw_id\":\"r\"}", 0);
    assert_true(r.budget_usd == 3.0);
}

static void test_crossed(void **state)
{
    (void)state;
    budget_run_t r = {.budget_usd = 5.0, .rep_cost = 3.99};
    assert_int_equal(budget_crossed(&r), 0);
    assert_false(budget_over(&r));
    r.rep_cost = 4.0; /* exactly 80 % */
    assert_int_equal(budget_crossed(&r), BUDGET_WARNING);
    r.warning_id = 10;
    assert_int_equal(budget_crossed(&r), 0); /* once */
    r.rep_cost = 5.0;                        /* exactly 100 % */
    assert_int_equal(budget_crossed(&r), BUDGET_EXCEEDED);
    assert_true(budget_over(&r));
    r.exceeded_id = 11;
    assert_int_equal(budget_crossed(&r), 0);
    assert_true(budget_over(&r));
    /* Both at once. */
    budget_run_t both = {.budget_usd = 2.0, .rep_cost = 7.7};
    assert_int_equal(budget_crossed(&both), BUDGET_WARNING | BUDGET_EXCEEDED);
    /* No budget: nothing, ever. */
    budget_run_t none = {.rep_cost = 1e9};
    assert_int_equal(budget_crossed(&none), 0);
    assert_false(budget_over(&none));
    /* A budget raised above the spend: no longer over, and nothing raised again. */
    r.budget_usd = 10;
    assert_false(budget_over(&r));
    assert_int_equal(budget_crossed(&r), 0);
}

static void test_events(void **state)
{
    (void)state;
    budget_run_t r = {.budget_usd = 5.0, .rep_cost = 4.02};
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    assert_int_equal(budget_event_build(BUDGET_WARNING, "run-1", "build", &r, 41, 1700000000000000,
                                        &ev, err, sizeof err),
                     0);
    char *text = json_dumps(ev.doc, JSON_COMPACT | JSON_REAL_PRECISION(6));
    assert_string_equal(text, "{\"type\":\"system\",\"event\":\"budget_warning\",\"adw_id\":"
                              "\"run-1\",\"step\":\"build\",\"summary\":\"Budget 80% used: "
                              "$4.02 of $5.00\",\"payload\":{\"budget_usd\":5.0,\"spend_usd\":"
                              "4.02,\"percent\":80,\"crossed_by_id\":41}}");
    free(text);
    assert_null(ev.status);
    assert_true(ev.cost_usd == 0 && ev.tokens == 0); /* no spend of its own */
    assert_int_equal(ev.received_us, 1700000000000000);
    /* Neither the run's status nor its step's, nor its stalled flag, changes. */
    assert_null(rollup_run_status(&ev));
    assert_null(rollup_step_status(&ev));
    assert_false(rollup_run_stalled(&ev));
    event_clear(&ev);

    r.rep_cost = 5.123;
    assert_int_equal(
        budget_event_build(BUDGET_EXCEEDED, "run-1", NULL, &r, 42, 1, &ev, err, sizeof err), 0);
    assert_string_equal(ev.event, "budget_exceeded");
    assert_null(ev.step);
    assert_null(json_object_get(ev.doc, "step"));
    assert_string_equal(ev.summary, "Budget 100% used: $5.12 of $5.00");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ev.doc, "payload"), "percent")), 100);
    assert_null(rollup_run_status(&ev));
    event_clear(&ev);
}

static void test_denied(void **state)
{
    (void)state;
    budget_run_t r = {.budget_usd = 5.0, .rep_cost = 5.12};
    adw_event_t hook = ev_of("{\"type\":\"adw_event\",\"adw_id\":\"run-7\",\"step\":\"build\","
                             "\"event_type\":\"PreToolUse\",\"summary\":\"Bash: ls\","
                             "\"payload\":{\"tool_name\":\"Bash\",\"tool_use_id\":\"toolu_1\","
                             "\"tool_input\":{\"command\":\"ls\"}}}",
                             0);
    hook.id = 99;
    assert_true(budget_is_pre_tool_use(&hook));
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    assert_int_equal(budget_denied_build(&hook, &r, 5, &ev, err, sizeof err), 0);
    char *text = json_dumps(ev.doc, JSON_COMPACT | JSON_REAL_PRECISION(6));
    assert_string_equal(text, "{\"type\":\"system\",\"event\":\"budget_denied\",\"adw_id\":"
                              "\"run-7\",\"step\":\"build\",\"summary\":\"Denied Bash: over "
                              "budget ($5.12 of $5.00)\",\"payload\":{\"tool_name\":\"Bash\","
                              "\"tool_use_id\":\"toolu_1\",\"budget_usd\":5.0,\"spend_usd\":"
                              "5.12,\"hook_event_id\":99}}");
    free(text);
    assert_null(rollup_run_status(&ev));
    assert_false(budget_is_pre_tool_use(&ev));

    char reason[200];
    budget_deny_reason("run-7", 5.0, 5.12, reason, sizeof reason);
    assert_string_equal(reason, "Run run-7 is over its budget: $5.12 spent of $5.00");
    reason[0] = '\0';
    budget_denied_reason(&ev, reason, sizeof reason);
    assert_string_equal(reason, "Run run-7 is over its budget: $5.12 spent of $5.00");
    event_clear(&ev);
    event_clear(&hook);

    /* A hook without a tool name or id: nulls, and a generic summary. */
    hook = ev_of("{\"type\":\"adw_event\",\"adw_id\":\"run-7\",\"event_type\":\"PreToolUse\"}", 0);
    assert_int_equal(budget_denied_build(&hook, &r, 5, &ev, err, sizeof err), 0);
    const json_t *p = json_object_get(ev.doc, "payload");
    assert_true(json_is_null(json_object_get(p, "tool_name")));
    assert_true(json_is_null(json_object_get(p, "tool_use_id")));
    assert_string_equal(ev.summary, "Denied tool call: over budget ($5.12 of $5.00)");
    event_clear(&ev);
    event_clear(&hook);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_usd),  cmocka_unit_test(test_of_start),
        cmocka_unit_test(test_spend_rule), cmocka_unit_test(test_crossed),
        cmocka_unit_test(test_events),     cmocka_unit_test(test_denied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
