/* Unit tests for the pure piece of gateway/session: the bad-message allowance (SESSION_BAD_BURST
 * at once, then SESSION_BAD_PER_S a second; past it, every further message is over). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "session.h"

#define S INT64_C(1000000) /* microseconds in a second */

static void test_burst_then_over(void **state)
{
    (void)state;
    session_allowance_t a = {.at_us = 5 * S};
    for (int i = 0; i < SESSION_BAD_BURST; i++)
        assert_int_equal(session_allowance_charge(&a, 5 * S), 0);
    assert_int_equal(session_allowance_charge(&a, 5 * S), 1);
    assert_int_equal(session_allowance_charge(&a, 5 * S), 1); /* and stays over */
}

static void test_allowance_comes_back_at_the_rate(void **state)
{
    (void)state;
    session_allowance_t a = {.at_us = 0};
    for (int i = 0; i < SESSION_BAD_BURST; i++)
        assert_int_equal(session_allowance_charge(&a, 0), 0);
    assert_int_equal(session_allowance_charge(&a, S - 1), 1); /* not quite a second later */
    a = (session_allowance_t){.at_us = 0};
    for (int i = 0; i < SESSION_BAD_BURST; i++)
        assert_int_equal(session_allowance_charge(&a, 0), 0);
    int64_t t = 0;
    for (int i = 0; i < 100; i++) { /* one a second after that is forgiven as it comes */
        t += S / SESSION_BAD_PER_S;
        assert_int_equal(session_allowance_charge(&a, t), 0);
    }
}

static void test_long_quiet_forgives_everything_but_no_more(void **state)
{
    (void)state;
    session_allowance_t a = {.at_us = 0};
    for (int i = 0; i < SESSION_BAD_BURST; i++)
        assert_int_equal(session_allowance_charge(&a, 0), 0);
    int64_t t = 3600 * (int64_t)S; /* an hour later: the level is 0, not below */
    for (int i = 0; i < SESSION_BAD_BURST; i++)
        assert_int_equal(session_allowance_charge(&a, t), 0);
    assert_int_equal(session_allowance_charge(&a, t), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_over),
        cmocka_unit_test(test_allowance_comes_back_at_the_rate),
        cmocka_unit_test(test_long_quiet_forgives_everything_but_no_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
