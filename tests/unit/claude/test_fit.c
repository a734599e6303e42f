/* Unit tests for shared/claude/fit.c: shortening a payload until jsonw_size() measures it
 * within a limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "fit.h"
#include "jsonw.h"
#include "claudetest.h"

/* Bytes of j as the contract counts them. */
static size_t wsize(const json_t *j)
{
    size_t n = 0;
    assert_int_equal(jsonw_size(j, SIZE_MAX, &n), 0);
    return n;
}

static void test_fit_common_length(void **state)
{
    (void)state;
    char *a = repeat("a", 50000), *b = repeat("b", 40000), *c = repeat("c", 100);
    json_t *p = json_pack("{s:s,s:[s,s],s:i}", "first", a, "list", b, c, "n", 1);
    assert_non_null(p);
    assert_int_equal(hook_payload_fit(p, 20000), 0);
    assert_true(compact_size(p) <= 20000);
    const char *fa = str(p, "first");
    const char *fb = json_string_value(json_array_get(json_object_get(p, "list"), 0));
    const char *fc = json_string_value(json_array_get(json_object_get(p, "list"), 1));
    /* both long strings keep the same prefix length; the short one is untouched */
    size_t pa = (size_t)(strstr(fa, MARK) - fa), pb = (size_t)(strstr(fb, MARK) - fb);
    assert_int_equal(pa, pb);
    assert_true(pa > 9000);
    assert_int_equal(marker_bytes(fa), 50000 - (long)pa);
    assert_int_equal(marker_bytes(fb), 40000 - (long)pb);
    assert_string_equal(fc, c);
    assert_int_equal(json_integer_value(json_object_get(p, "n")), 1);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    free(a);
    free(b);
    free(c);
    json_decref(p);
}

static void test_fit_untouched(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s}", "k", "v");
    json_t *copy = json_deep_copy(p);
    assert_int_equal(hook_payload_fit(p, compact_size(p)), 0);
    assert_true(json_equal(p, copy));
    json_decref(copy);
    json_decref(p);
    json_t *arr = json_array();
    assert_int_equal(hook_payload_fit(arr, 100), -EINVAL);
    json_decref(arr);
    assert_int_equal(hook_payload_fit(NULL, 100), -EINVAL);
}

static void test_fit_containers(void **state)
{
    (void)state;
    /* bulk that is not strings: a top-level value goes, a marker stands in */
    json_t *p = json_pack("{s:s,s:{s:s},s:[]}", "hook_event_name", "PostToolUse", "tool_input",
                          "pattern", "*.c", "tool_response");
    json_t *arr = json_object_get(p, "tool_response");
    for (int i = 0; i < 30000; i++)
        json_array_append_new(arr, json_integer(i));
    size_t arr_size = compact_size(arr);
    assert_int_equal(hook_payload_fit(p, ADW_PAYLOAD_MAX), 0);
    assert_true(compact_size(p) <= ADW_PAYLOAD_MAX);
    assert_string_equal(str(p, "hook_event_name"), "PostToolUse");
    assert_string_equal(str(json_object_get(p, "tool_input"), "pattern"), "*.c");
    assert_int_equal(marker_bytes(str(p, "tool_response")), (long)arr_size);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    json_decref(p);
}

static void test_fit_mixed(void **state)
{
    (void)state;
    /* strings cannot do it alone: the big array goes, the long string stays whole */
    char *s = repeat("x", 30000);
    json_t *p = json_pack("{s:{s:s},s:[]}", "tool_input", "content", s, "tool_response");
    json_t *arr = json_object_get(p, "tool_response");
    for (int i = 0; i < 20000; i++)
        json_array_append_new(arr, json_integer(100000 + i));
    assert_int_equal(hook_payload_fit(p, ADW_PAYLOAD_MAX), 0);
    assert_true(compact_size(p) <= ADW_PAYLOAD_MAX);
    assert_string_equal(str(json_object_get(p, "tool_input"), "content"), s);
    assert_true(json_is_string(json_object_get(p, "tool_response")));
    free(s);
    json_decref(p);
}

static void test_fit_many_keys(void **state)
{
    (void)state;
    json_t *p = json_object();
    for (int i = 0; i < 10000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key_%05d", i);
        json_object_set_new(p, key, json_integer(i));
    }
    size_t before = compact_size(p);
    assert_int_equal(hook_payload_fit(p, ADW_PAYLOAD_MAX), 0);
    assert_int_equal(json_object_size(p), 2);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    assert_int_equal(json_integer_value(json_object_get(p, "adw_original_bytes")),
                     (json_int_t)before);
    /* a limit too small even for that */
    assert_int_equal(hook_payload_fit(p, 10), -E2BIG);
    json_decref(p);
}

static void test_fit_escapes_property(void **state)
{
    (void)state;
    /* strings heavy in escapes (\u0001 is 6 bytes, \n 2): every limit is met exactly */
    char *ctl = repeat("\x01\n\"\\\xe2\x82\xac", 3000);
    char *plain = repeat("p", 5000);
    for (size_t max = 120; max < 40000; max = max * 3 / 2) {
        json_t *p =
            json_pack("{s:s,s:s,s:[s,s],s:b}", "a", ctl, "b", plain, "c", ctl, "short", "d", true);
        assert_non_null(p);
        assert_int_equal(hook_payload_fit(p, max), 0);
        size_t size = compact_size(p);
        if (size > max)
            fail_msg("max %zu: size %zu", max, size);
        json_decref(p);
    }
    free(ctl);
    free(plain);
}

static void test_fit_exact_limit(void **state)
{
    (void)state;
    /* {"s":"x…x"} of exactly ADW_PAYLOAD_MAX bytes stays as it is */
    char *s = repeat("x", ADW_PAYLOAD_MAX - 8);
    json_t *p = json_pack("{s:s}", "s", s);
    assert_int_equal(wsize(p), ADW_PAYLOAD_MAX);
    json_t *copy = json_deep_copy(p);
    assert_int_equal(hook_payload_fit(p, ADW_PAYLOAD_MAX), 0);
    assert_true(json_equal(p, copy));
    assert_null(json_object_get(p, "adw_truncated"));
    /* one byte more is shortened, to within a marker's length of the limit */
    assert_int_equal(hook_payload_fit(p, ADW_PAYLOAD_MAX - 1), 0);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    assert_true(wsize(p) <= ADW_PAYLOAD_MAX - 1);
    assert_true(wsize(p) > ADW_PAYLOAD_MAX - 64);
    assert_int_equal(marker_bytes(str(p, "s")),
                     (long)(ADW_PAYLOAD_MAX - 8 - (strstr(str(p, "s"), MARK) - str(p, "s"))));
    json_decref(copy);
    json_decref(p);
    free(s);

    /* every limit around a payload's size: untouched at or above it, met exactly below */
    char *t = repeat("y\xc3\xa9\n", 300);
    json_t *orig = json_pack("{s:s,s:i,s:[s,b]}", "t", t, "n", 7, "a", t, true);
    size_t size = wsize(orig);
    for (size_t max = size - 200; max <= size + 2; max++) {
        p = json_deep_copy(orig);
        assert_int_equal(hook_payload_fit(p, max), 0);
        if (max >= size) {
            assert_true(json_equal(p, orig));
        } else {
            assert_true(json_is_true(json_object_get(p, "adw_truncated")));
            if (wsize(p) > max)
                fail_msg("max %zu: size %zu", max, wsize(p));
        }
        json_decref(p);
    }
    json_decref(orig);
    free(t);
}

static void test_fit_measure_is_jsonw(void **state)
{
    (void)state;
    char *s = repeat("x", 100);
    /* 0.1: jansson dumps 0.10000000000000001, jsonw writes 0.1; at jsonw's size it fits */
    json_t *p = json_pack("{s:f,s:s}", "r", 0.1, "s", s);
    assert_int_equal(compact_size(p), wsize(p) + 16);
    json_t *copy = json_deep_copy(p);
    assert_int_equal(hook_payload_fit(p, wsize(p)), 0);
    assert_true(json_equal(p, copy));
    json_decref(copy);
    json_decref(p);
    /* 12345678901234560.0: jsonw writes 1.234567890123456e+16, two bytes more than jansson's
     * dump; at jansson's size it must be shortened */
    p = json_pack("{s:f,s:s}", "r", 12345678901234560.0, "s", s);
    size_t dumped = compact_size(p);
    assert_int_equal(wsize(p), dumped + 2);
    assert_int_equal(hook_payload_fit(p, dumped), 0);
    assert_true(json_is_true(json_object_get(p, "adw_truncated")));
    assert_true(wsize(p) <= dumped);
    assert_non_null(strstr(str(p, "s"), MARK));
    json_decref(p);
    free(s);
}

static void test_fit_stub_exact(void **state)
{
    (void)state;
    json_t *orig = json_object();
    for (int i = 0; i < 3000; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%04d", i);
        json_object_set_new(orig, key, json_integer(i));
    }
    char stub[96];
    int n = snprintf(stub, sizeof stub, "{\"adw_truncated\":true,\"adw_original_bytes\":%zu}",
                     wsize(orig));
    json_t *p = json_deep_copy(orig);
    assert_int_equal(hook_payload_fit(p, (size_t)n), 0);
    char *text = json_dumps(p, JSON_COMPACT);
    assert_string_equal(text, stub);
    free(text);
    json_decref(p);
    p = json_deep_copy(orig);
    assert_int_equal(hook_payload_fit(p, (size_t)n - 1), -E2BIG);
    json_decref(p);
    json_decref(orig);
}

static void test_fit_too_deep_to_measure(void **state)
{
    (void)state;
    /* deeper than the writer follows: it cannot be measured, so it is refused */
    json_t *p = json_pack("{s:o}", "d", nest(JSONW_DEPTH_MAX));
    assert_int_equal(hook_payload_fit(p, 100), -EINVAL);
    json_decref(p);
    /* one level less is measured and shortened */
    p = json_pack("{s:o}", "d", nest(JSONW_DEPTH_MAX - 1));
    assert_int_equal(hook_payload_fit(p, 100), 0);
    assert_true(wsize(p) <= 100);
    assert_true(json_is_string(json_object_get(p, "d")));
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_common_length), cmocka_unit_test(test_fit_untouched),
        cmocka_unit_test(test_fit_containers),    cmocka_unit_test(test_fit_mixed),
        cmocka_unit_test(test_fit_many_keys),     cmocka_unit_test(test_fit_escapes_property),
        cmocka_unit_test(test_fit_exact_limit),   cmocka_unit_test(test_fit_measure_is_jsonw),
        cmocka_unit_test(test_fit_stub_exact),    cmocka_unit_test(test_fit_too_deep_to_measure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
