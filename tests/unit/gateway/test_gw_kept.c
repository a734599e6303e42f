/* Unit tests for gateway/kept: when a read after `since` is complete given the first kept id,
 * and the JSON members that say so. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "kept.h"

static void test_complete(void **state)
{
    (void)state;
    assert_true(kept_complete(0, 1));       /* nothing ever dropped */
    assert_true(kept_complete(1000, 1001)); /* resumes right at the first kept id */
    assert_true(kept_complete(5000, 1001));
    assert_false(kept_complete(999, 1001)); /* id 1000 was dropped */
    assert_false(kept_complete(0, 2));
}

static void test_json(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(kept_json(1000, 1001, out, sizeof out), (int)strlen(",\"complete\":true"));
    assert_string_equal(out, ",\"complete\":true");
    kept_json(10, 4000001, out, sizeof out);
    assert_string_equal(out, ",\"complete\":false,\"first_id\":4000001");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
