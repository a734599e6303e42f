/* Unit tests for fleet_resume_query, the query a resuming adw-bench client sends: the other
 * parameters kept in order, any since parameter replaced (first, middle, last, bare), an empty or
 * absent query, and a buffer too small refused with an empty string. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "fleet_query.h"

static void expect(const char *query, int64_t since, const char *want)
{
    char out[256];
    int n = fleet_resume_query(out, sizeof out, query, since);
    assert_string_equal(out, want);
    assert_int_equal(n, (int)strlen(want));
}

static void test_since_is_replaced_wherever_it_is(void **state)
{
    (void)state;
    expect("since=0&types=adw_event", 42, "types=adw_event&since=42");
    expect("adw_id=bench-0&since=7&types=x", 9, "adw_id=bench-0&types=x&since=9");
    expect("types=adw_event&since=3", 1234567890123, "types=adw_event&since=1234567890123");
    expect("since&adw_id=a", 5, "adw_id=a&since=5");
    expect("?since=1", 2, "since=2");
}

static void test_other_parameters_kept(void **state)
{
    (void)state;
    expect("sinceX=1&adw_id=a", 3, "sinceX=1&adw_id=a&since=3");
    expect("a=1&&b=2", 4, "a=1&b=2&since=4");
    expect("", 8, "since=8");
    expect(NULL, 8, "since=8");
}

static void test_too_small_is_refused(void **state)
{
    (void)state;
    char out[12];
    assert_int_equal(fleet_resume_query(out, sizeof out, "adw_id=bench-0", 1), -ENOSPC);
    assert_string_equal(out, "");
    assert_int_equal(fleet_resume_query(out, sizeof out, "", 12345678901), -ENOSPC);
    assert_string_equal(out, "");
    assert_int_equal(fleet_resume_query(out, sizeof out, "", 1234), 10); /* "since=1234" fits */
    assert_string_equal(out, "since=1234");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_since_is_replaced_wherever_it_is),
        cmocka_unit_test(test_other_parameters_kept),
        cmocka_unit_test(test_too_small_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
