/* Unit tests for the pure pieces of gateway/admit: the Origin policy (no Origin, the default of
 * http or https on localhost, same origin, "*", a configured list) and the query's filter and
 * since (keys, since's syntax, a refusal leaving the filter as it was), the descriptors kept for
 * HTTP beside the clients. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "admit.h"

static void test_origin_absent_passes(void **state)
{
    (void)state;
    assert_int_equal(admit_origin_allowed(NULL, NULL, NULL), 1);
    assert_int_equal(admit_origin_allowed("https://a.example", NULL, "gw:8080"), 1);
}

static void test_origin_default_is_localhost_over_http(void **state)
{
    (void)state;
    assert_int_equal(admit_origin_allowed(NULL, "http://localhost:3000", NULL), 1);
    assert_int_equal(admit_origin_allowed(NULL, "HTTPS://LocalHost", NULL), 1);
    assert_int_equal(admit_origin_allowed(NULL, "http://127.0.0.1:8080/", NULL), 1);
    assert_int_equal(admit_origin_allowed(NULL, "http://[::1]:8080", NULL), 1);
    assert_int_equal(admit_origin_allowed(NULL, "http://localhost.evil.example", NULL), 0);
    assert_int_equal(admit_origin_allowed(NULL, "http://127.0.0.2", NULL), 0);
    assert_int_equal(admit_origin_allowed(NULL, "ftp://localhost", NULL), 0);
    assert_int_equal(admit_origin_allowed(NULL, "null", NULL), 0);
    assert_int_equal(admit_origin_allowed(NULL, "http://[::1", NULL), 0);
    assert_int_equal(admit_origin_allowed(NULL, "http://evil.example", "gw.example"), 0);
}

static void test_same_origin_always_passes(void **state)
{
    (void)state;
    const char *list = "https://a.example";
    assert_int_equal(admit_origin_allowed(list, "http://gw.example:8080", "gw.example:8080"), 1);
    assert_int_equal(admit_origin_allowed(list, "https://GW.example:8080/", "gw.example:8080"), 1);
    assert_int_equal(admit_origin_allowed(NULL, "http://gw.example", "gw.example"), 1);
    assert_int_equal(admit_origin_allowed(list, "http://gw.example:8081", "gw.example:8080"), 0);
    assert_int_equal(admit_origin_allowed(list, "ws://gw.example:8080", "gw.example:8080"), 0);
    assert_int_equal(admit_origin_allowed(list, "http://gw.example:8080", NULL), 0);
}

static void test_origin_star_and_lists(void **state)
{
    (void)state;
    assert_int_equal(admit_origin_allowed("*", "https://anything.example", NULL), 1);
    assert_int_equal(admit_origin_allowed("*", "null", NULL), 0); /* not an origin */
    const char *list = " https://a.example/ , http://b.example:81,,";
    assert_int_equal(admit_origin_allowed(list, "https://a.example", NULL), 1);
    assert_int_equal(admit_origin_allowed(list, "https://a.example/", NULL), 1);
    assert_int_equal(admit_origin_allowed(list, "HTTP://B.EXAMPLE:81", NULL), 1);
    assert_int_equal(admit_origin_allowed(list, "http://b.example", NULL), 0);
    assert_int_equal(admit_origin_allowed(list, "https://a.example.evil", NULL), 0);
    assert_int_equal(admit_origin_allowed(list, "https://a.exampl", NULL), 0);
    assert_int_equal(admit_origin_allowed(list, "http://localhost", NULL), 0); /* list only */
    char longer[600];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "https://", 8);
    assert_int_equal(admit_origin_allowed("*", longer, NULL), 0);
}

static void test_query_filter_keys_and_since(void **state)
{
    (void)state;
    param_t args[] = {{"adw_id", "r1,r2"},
                      {"token", "x"},
                      {"since", "42"},
                      {"steps", ""},
                      {"types", "adw_event"}};
    filter_t f;
    filter_init(&f);
    int has_since = -1;
    int64_t since = -1;
    char err[200];
    assert_int_equal(admit_query_filter(args, 5, &f, &has_since, &since, err, sizeof err), 0);
    assert_int_equal(has_since, 1);
    assert_int_equal(since, 42);
    assert_int_equal(f.key[FILTER_ADW_ID].n, 2);
    assert_string_equal(f.key[FILTER_ADW_ID].v[1], "r2");
    assert_int_equal(f.key[FILTER_STEPS].n, 0);
    assert_int_equal(f.key[FILTER_TYPES].n, 1);
    assert_null(f.scope);
    filter_free(&f);

    assert_int_equal(admit_query_filter(args, 1, &f, &has_since, &since, err, sizeof err), 0);
    assert_int_equal(has_since, 0);
    filter_free(&f);
    assert_int_equal(admit_query_filter(NULL, 0, &f, &has_since, &since, err, sizeof err), 0);
    assert_int_equal(filter_is_empty(&f), 1);
}

static void test_query_filter_refusals_leave_the_filter(void **state)
{
    (void)state;
    const char *bad_since[] = {"-1", "", "1x", " 1", "+1", "99999999999999999999"};
    filter_t f;
    filter_init(&f);
    param_t keep = {"steps", "build"};
    int has_since;
    int64_t since;
    char err[200];
    assert_int_equal(admit_query_filter(&keep, 1, &f, &has_since, &since, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad_since / sizeof bad_since[0]; i++) {
        param_t args[] = {{"adw_id", "r1"}, {"since", bad_since[i]}};
        err[0] = '\0';
        assert_int_equal(admit_query_filter(args, 2, &f, &has_since, &since, err, sizeof err),
                         -EINVAL);
        assert_string_equal(err, "since must be an event id (an integer >= 0)");
    }
    char big[FILTER_VALUE_MAX + 2];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    param_t toolong = {"adw_id", big};
    err[0] = '\0';
    assert_int_equal(admit_query_filter(&toolong, 1, &f, &has_since, &since, err, sizeof err),
                     -EINVAL);
    assert_true(err[0] != '\0');
    assert_int_equal(f.key[FILTER_ADW_ID].n, 0); /* unchanged: still steps=build only */
    assert_int_equal(f.key[FILTER_STEPS].n, 1);
    assert_string_equal(f.key[FILTER_STEPS].v[0], "build");
    filter_free(&f);
}

/* The descriptors kept for HTTP beside the clients: 19,000 clients fit a limit of 20,000. */
static void test_http_spare_bounds(void **state)
{
    (void)state;
    assert_int_equal(admit_http_spare(128), 16);    /* a limit of 256: 256 / 2 */
    assert_int_equal(admit_http_spare(19936), 623); /* 20,000 less the reserve of 64 */
    assert_true(19936 - admit_http_spare(19936) >= 19000);
    assert_int_equal(admit_http_spare(1000000), 1024); /* at most what a large limit gets */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_absent_passes),
        cmocka_unit_test(test_origin_default_is_localhost_over_http),
        cmocka_unit_test(test_same_origin_always_passes),
        cmocka_unit_test(test_origin_star_and_lists),
        cmocka_unit_test(test_query_filter_keys_and_since),
        cmocka_unit_test(test_query_filter_refusals_leave_the_filter),
        cmocka_unit_test(test_http_spare_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
