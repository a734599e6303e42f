/* Unit tests for ingest/stall: the summary text of a spell ("No event for N s" under a minute,
 * "M min" from one), the idle seconds, the scan period, and the run_stalled event as built
 * (its keys in the contract's order, validated, no status so no step's status changes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "rollup.h"
#include "stall.h"

static void test_summary(void **state)
{
    (void)state;
    char out[64];
    stall_summary(0, out, sizeof out);
    assert_string_equal(out, "No event for 0 s");
    stall_summary(1, out, sizeof out);
    assert_string_equal(out, "No event for 1 s");
    stall_summary(59, out, sizeof out);
    assert_string_equal(out, "No event for 59 s");
    /* From a minute on, whole minutes, rounded down. */
    stall_summary(60, out, sizeof out);
    assert_string_equal(out, "No event for 1 min");
    stall_summary(119, out, sizeof out);
    assert_string_equal(out, "No event for 1 min");
    stall_summary(600, out, sizeof out);
    assert_string_equal(out, "No event for 10 min");
    stall_summary(3599, out, sizeof out);
    assert_string_equal(out, "No event for 59 min");
    stall_summary(86400, out, sizeof out);
    assert_string_equal(out, "No event for 1440 min");
    /* A small buffer is cut, and the length needed is returned. */
    char small[8];
    assert_int_equal(stall_summary(5, small, sizeof small), (int)strlen("No event for 5 s"));
    assert_string_equal(small, "No even");
}

static void test_idle_s(void **state)
{
    (void)state;
    assert_int_equal(stall_idle_s(10999999, 10000000), 0);
    assert_int_equal(stall_idle_s(11000000, 10000000), 1);
    assert_int_equal(stall_idle_s(11999999, 10000000), 1);
    assert_int_equal(stall_idle_s(610000000, 10000000), 600);
    /* A clock that went back: not idle. */
    assert_int_equal(stall_idle_s(5000000, 10000000), 0);
}

static void test_scan_period(void **state)
{
    (void)state;
    assert_int_equal(stall_scan_period_ms(0), 0);
    assert_int_equal(stall_scan_period_ms(-1), 0);
    assert_int_equal(stall_scan_period_ms(1), 500);
    assert_int_equal(stall_scan_period_ms(2), 1000);
    assert_int_equal(stall_scan_period_ms(19), 9500);
    assert_int_equal(stall_scan_period_ms(20), 10000);
    assert_int_equal(stall_scan_period_ms(21), 10000);
    assert_int_equal(stall_scan_period_ms(600), 10000);
}

static void test_event(void **state)
{
    (void)state;
    adw_event_t ev;
    char err[EVENT_ERR_LEN];
    assert_int_equal(
        stall_event_build("run-1", "build", 754, 42, 1700000000000000, &ev, err, sizeof err), 0);
    char *text = json_dumps(ev.doc, JSON_COMPACT);
    assert_string_equal(text, "{\"type\":\"system\",\"event\":\"run_stalled\",\"adw_id\":\"run-1\","
                              "\"step\":\"build\",\"summary\":\"No event for 12 min\","
                              "\"payload\":{\"idle_s\":754,\"last_id\":42}}");
    free(text);
    assert_true(ev.is_system);
    assert_string_equal(ev.event, "run_stalled");
    assert_string_equal(ev.step, "build");
    assert_null(ev.status);
    assert_int_equal(ev.received_us, 1700000000000000);
    /* It marks its run stalled, and neither the run's status nor its step's changes. */
    assert_true(rollup_run_stalled(&ev));
    assert_null(rollup_run_status(&ev));
    assert_null(rollup_step_status(&ev));
    event_clear(&ev);

    /* No current step: no step key. */
    assert_int_equal(stall_event_build("run-2", NULL, 3, 7, 1, &ev, err, sizeof err), 0);
    text = json_dumps(ev.doc, JSON_COMPACT);
    assert_string_equal(text, "{\"type\":\"system\",\"event\":\"run_stalled\",\"adw_id\":\"run-2\","
                              "\"summary\":\"No event for 3 s\","
                              "\"payload\":{\"idle_s\":3,\"last_id\":7}}");
    free(text);
    assert_null(ev.step);
    event_clear(&ev);

    /* What the contract refuses is refused (a stored run never has such an id). */
    assert_int_equal(stall_event_build("bad id", NULL, 3, 7, 1, &ev, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "adw_id"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_idle_s),
        cmocka_unit_test(test_scan_period),
        cmocka_unit_test(test_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
