/* Unit tests for shared/log: levels and formats accepted and refused, and log_every's one line
 * a period with the count of what it held back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <time.h>

#include "log.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
}

static void test_init(void **state)
{
    (void)state;
    assert_int_equal(log_init("t", "warning", "json"), 0);
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    assert_int_equal(log_init("t", "loud", "text"), -EINVAL);
    assert_int_equal(log_init("t", "info", "xml"), -EINVAL);
    assert_false(log_enabled(LOG_LEVEL_INFO)); /* refused settings change nothing */
    assert_int_equal(log_init("t", "debug", "text"), 0);
    assert_true(log_enabled(LOG_LEVEL_DEBUG));
}

static void test_every(void **state)
{
    (void)state;
    log_every_t e = {.period_ms = 200};
    unsigned long long held = 99;
    assert_int_equal(log_every(&e, &held), 1); /* the first is written */
    assert_int_equal(held, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(log_every(&e, &held), 0);
    sleep_ms(250);
    assert_int_equal(log_every(&e, &held), 1);
    assert_int_equal(held, 1000);
    assert_int_equal(log_every(&e, &held), 0);
    sleep_ms(250);
    assert_int_equal(log_every(&e, &held), 1);
    assert_int_equal(held, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_every),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
