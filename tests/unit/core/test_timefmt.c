/* Unit tests for shared/timefmt: known instants both ways, parse(format(x)) == x across the
 * whole range, every offset form, leap years and seconds, and the refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

static int64_t parse(const char *s)
{
    int64_t us = 0x7777;
    int rc = timefmt_parse(s, strlen(s), &us);
    if (rc)
        fail_msg("timefmt_parse refused %s", s);
    return us;
}

static void refused(const char *s)
{
    int64_t us = 0x7777;
    if (timefmt_parse(s, strlen(s), &us) != -EINVAL)
        fail_msg("timefmt_parse accepted %s", s);
    assert_int_equal(us, 0x7777);
}

static void test_known(void **state)
{
    (void)state;
    static const struct {
        int64_t us;
        const char *text;
    } known[] = {
        {0, "1970-01-01T00:00:00.000000Z"},
        {1, "1970-01-01T00:00:00.000001Z"},
        {-1, "1969-12-31T23:59:59.999999Z"},
        {-1000000, "1969-12-31T23:59:59.000000Z"},
        {951782400000000LL, "2000-02-29T00:00:00.000000Z"},
        {1767277800123456LL, "2026-01-01T14:30:00.123456Z"},
        {1798761599999999LL, "2026-12-31T23:59:59.999999Z"},
        {TIMEFMT_MIN_US, "0001-01-01T00:00:00.000000Z"},
        {TIMEFMT_MAX_US, "9999-12-31T23:59:59.999999Z"},
        {-2208988800000000LL, "1900-01-01T00:00:00.000000Z"},
        {4107542400000000LL, "2100-03-01T00:00:00.000000Z"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char out[TIMEFMT_LEN];
        memset(out, 'x', sizeof out);
        assert_int_equal(timefmt_format(known[i].us, out), 27);
        assert_string_equal(out, known[i].text);
        assert_int_equal(parse(known[i].text), known[i].us);
    }
}

/* parse(format(us)) == us for instants spread over the whole range, and format is always
 * 27 bytes in it. */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    const uint64_t span = (uint64_t)(TIMEFMT_MAX_US - TIMEFMT_MIN_US);
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = TIMEFMT_MIN_US + (int64_t)(x % (span + 1));
        char out[TIMEFMT_LEN];
        size_t n = timefmt_format(us, out);
        assert_int_equal(n, 27);
        assert_int_equal(strlen(out), 27);
        int64_t back = 0;
        if (timefmt_parse(out, n, &back) || back != us)
            fail_msg("%lld -> %s -> %lld", (long long)us, out, (long long)back);
    }
    /* Every day boundary of four years around a leap day and a century. */
    for (int64_t day = -800; day < 800; day++) {
        int64_t us = (951782400LL + day * 86400) * 1000000;
        char out[TIMEFMT_LEN];
        timefmt_format(us, out);
        assert_int_equal(parse(out), us);
        assert_string_equal(out + 10, "T00:00:00.000000Z");
    }
}

static void test_forms(void **state)
{
    (void)state;
    const int64_t base = 1767277800000000LL; /* 2026-01-01T14:30:00Z */
    assert_int_equal(parse("2026-01-01T14:30:00Z"), base);
    assert_int_equal(parse("2026-01-01t14:30:00z"), base);
    assert_int_equal(parse("2026-01-01 14:30:00Z"), base);
    assert_int_equal(parse("2026-01-01T14:30:00+00:00"), base);
    assert_int_equal(parse("2026-01-01T14:30:00-00:00"), base);
    assert_int_equal(parse("2026-01-01T15:30:00+01:00"), base);
    assert_int_equal(parse("2026-01-01T13:30:00-01:00"), base);
    assert_int_equal(parse("2026-01-02T00:15:00+09:45"), base);
    assert_int_equal(parse("2025-12-31T22:31:00-15:59"), base);
    assert_int_equal(parse("2026-01-01T14:30:00.1Z"), base + 100000);
    assert_int_equal(parse("2026-01-01T14:30:00.000001Z"), base + 1);
    assert_int_equal(parse("2026-01-01T14:30:00.9999999999Z"), base + 999999); /* truncated */
    assert_int_equal(parse("2026-01-01T14:30:00.5+01:00"), base - 3600000000LL + 500000);
    /* A leap second is the last microsecond of its minute. */
    assert_int_equal(parse("2016-12-31T23:59:60Z"), parse("2016-12-31T23:59:59.999999Z"));
    assert_int_equal(parse("2016-12-31T23:59:60.5Z"), parse("2016-12-31T23:59:59.999999Z"));
    /* Only len bytes are read. */
    int64_t us = 0;
    assert_int_equal(timefmt_parse("2026-01-01T14:30:00Zjunk", 20, &us), 0);
    assert_int_equal(us, base);
    assert_int_equal(timefmt_parse("2026-01-01T14:30:00Z", 19, &us), -EINVAL);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"2026-02-30T00:00:00Z",
                                      "2026-02-29T00:00:00Z",
                                      "1900-02-29T00:00:00Z",
                                      "2026-04-31T00:00:00Z",
                                      "2026-06-31T00:00:00Z",
                                      "2026-09-31T00:00:00Z",
                                      "2026-11-31T00:00:00Z",
                                      "2026-13-01T00:00:00Z",
                                      "2026-00-10T00:00:00Z",
                                      "2026-01-00T00:00:00Z",
                                      "2026-01-32T00:00:00Z",
                                      "2026-01-01T24:00:00Z",
                                      "2026-01-01T23:60:00Z",
                                      "2026-01-01T23:59:61Z",
                                      "2026-01-01T14:30:00",
                                      "2026-01-01T14:30:00+0100",
                                      "2026-01-01T14:30:00+01",
                                      "2026-01-01T14:30:00+01:0",
                                      "2026-01-01T14:30:00+24:00",
                                      "2026-01-01T14:30:00+01:60",
                                      "2026-01-01T14:30:00 Z",
                                      "2026-01-01T14:30:00Z ",
                                      "2026-01-01T14:30:00.Z",
                                      "2026-01-01T14:30:00,5Z",
                                      "2026-01-01T14:30Z",
                                      "2026-01-01",
                                      "+2026-01-01T14:30:00Z",
                                      "2026-01-01T1:30:00Z",
                                      "2026-01-01T14:30:00UTC",
                                      "2026-01-01T14:30:00+01:00:00",
                                      "２０２６-01-01T14:30:00Z",
                                      "0000-01-01T00:00:00Z",
                                      "0001-01-01T00:00:00+00:01", /* before year 1 in UTC */
                                      "9999-12-31T23:59:59-00:01", /* after year 9999 in UTC */
                                      "",
                                      "Z",
                                      "2026-01-01T14:30:00\0Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(bad[i]);
    int64_t us = 0;
    assert_int_equal(timefmt_parse("2026-01-01T14:30:00\0Z", 21, &us), -EINVAL);
    /* The ends of the range themselves are taken. */
    assert_int_equal(parse("0001-01-01T00:00:00Z"), TIMEFMT_MIN_US);
    assert_int_equal(parse("0001-01-01T01:00:00+01:00"), TIMEFMT_MIN_US);
    assert_int_equal(parse("9999-12-31T23:59:59.999999Z"), TIMEFMT_MAX_US);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = timefmt_now_us();
    assert_true(now > 1735689600000000LL); /* after 2025-01-01 */
    int64_t a = timefmt_mono_us(), b = timefmt_mono_us();
    assert_true(b >= a);
    char out[TIMEFMT_LEN];
    assert_int_equal(timefmt_format(now, out), 27);
    assert_int_equal(parse(out), now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),  cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_forms),  cmocka_unit_test(test_refused),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
