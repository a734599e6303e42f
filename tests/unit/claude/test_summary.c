/* Unit tests for shared/claude/summary.c: the one-line summary of an event. (Summaries of
 * whole hook bodies, through hook_to_event: test_hook.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "summary.h"

#define ELLIPSIS "\xe2\x80\xa6"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    return j;
}

static void test_line_helpers(void **state)
{
    (void)state;
    hook_line_t l;
    size_t n;
    hook_line_init(&l);
    assert_string_equal(hook_line_finish(&l, &n), "");
    assert_int_equal(n, 0);
    hook_line_init(&l);
    hook_line_add(&l,
                  "a\xff"
                  "b\xc3",
                  4); /* broken sequences are dropped */
    assert_string_equal(hook_line_finish(&l, NULL), "ab");
    hook_line_init(&l);
    hook_line_add_tool(&l, NULL, NULL);
    hook_line_add_tool(&l, "", NULL);
    assert_string_equal(hook_line_finish(&l, NULL), "");
}

static void test_add_key(void **state)
{
    (void)state;
    hook_line_t l;
    json_t *obj = parse("{\"a\":\"x y\",\"e\":\"\",\"n\":5,\"z\":null}");
    hook_line_init(&l);
    hook_line_puts(&l, "T");
    assert_false(hook_line_add_key(&l, obj, "e", ": "));
    assert_false(hook_line_add_key(&l, obj, "n", ": "));
    assert_false(hook_line_add_key(&l, obj, "z", ": "));
    assert_false(hook_line_add_key(&l, obj, "missing", ": "));
    assert_false(hook_line_add_key(&l, NULL, "a", ": "));
    assert_string_equal(hook_line_finish(&l, NULL), "T");
    hook_line_init(&l);
    hook_line_puts(&l, "T");
    assert_true(hook_line_add_key(&l, obj, "a", ": "));
    assert_string_equal(hook_line_finish(&l, NULL), "T: x y");
    json_decref(obj);
}

static void test_fallback(void **state)
{
    (void)state;
    hook_line_t l;
    hook_line_init(&l);
    hook_line_fallback(&l, "Stop");
    assert_string_equal(hook_line_finish(&l, NULL), "Stop");
    /* blanks alone keep nothing */
    hook_line_init(&l);
    hook_line_add(&l, " \n\t", 3);
    hook_line_fallback(&l, "Stop");
    assert_string_equal(hook_line_finish(&l, NULL), "Stop");
    hook_line_init(&l);
    hook_line_puts(&l, "x");
    hook_line_fallback(&l, "Stop");
    assert_string_equal(hook_line_finish(&l, NULL), "x");
}

static void test_describe(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *hook;
        const char *summary;
    } cases[] = {
        {"PreToolUse", "{\"tool_name\":\"Write\",\"tool_input\":{\"file_path\":\"/a.py\"}}",
         "Write /a.py"},
        {"PostToolUse",
         "{\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"ls\"},"
         "\"tool_response\":{\"exitCode\":1}}",
         "Bash: ls (failed)"},
        {"PostToolUse", "{}", "PostToolUse"},
        {"PermissionRequest", "{\"tool_name\":\"Grep\",\"tool_input\":{\"pattern\":\"x\"}}",
         "Permission for Grep x"},
        {"PermissionRequest", "{}", "PermissionRequest"},
        {"SessionEnd", "{\"reason\":\"logout\"}", "Session end (logout)"},
        {"StopFailure", "{\"error\":\"\"}", "Stop failure"},
        {"Notification", "{\"title\":\"T\"}", "T"},
        {"UserPromptSubmit", "{\"prompt\":\" \\n \"}", "UserPromptSubmit"},
        {"SomethingNew", "{\"tool_name\":\"Bash\"}", "SomethingNew"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hook_line_t l;
        json_t *hook = parse(cases[i].hook);
        hook_line_init(&l);
        hook_line_describe(&l, cases[i].name, hook);
        const char *got = hook_line_finish(&l, NULL);
        if (strcmp(got, cases[i].summary) != 0)
            fail_msg("%s %s: \"%s\", want \"%s\"", cases[i].name, cases[i].hook, got,
                     cases[i].summary);
        json_decref(hook);
    }
}

static void test_finish_at_limit(void **state)
{
    (void)state;
    hook_line_t l;
    size_t n;
    char *x = malloc(ADW_SUMMARY_MAX + 2);
    assert_non_null(x);
    memset(x, 'x', ADW_SUMMARY_MAX + 1);
    /* exactly the limit: kept whole, no ellipsis */
    hook_line_init(&l);
    hook_line_add(&l, x, ADW_SUMMARY_MAX);
    assert_int_equal(strlen(hook_line_finish(&l, &n)), ADW_SUMMARY_MAX);
    assert_int_equal(n, ADW_SUMMARY_MAX);
    /* one byte more: cut to make room for the ellipsis */
    hook_line_init(&l);
    hook_line_add(&l, x, ADW_SUMMARY_MAX + 1);
    const char *s = hook_line_finish(&l, &n);
    assert_int_equal(n, ADW_SUMMARY_MAX);
    assert_memory_equal(s, x, ADW_SUMMARY_MAX - 3);
    assert_string_equal(s + ADW_SUMMARY_MAX - 3, ELLIPSIS);
    /* a space where the cut falls is dropped before the ellipsis */
    hook_line_init(&l);
    hook_line_add(&l, x, ADW_SUMMARY_MAX - 4);
    hook_line_puts(&l, " abcd");
    s = hook_line_finish(&l, &n);
    assert_int_equal(n, ADW_SUMMARY_MAX - 4 + 3);
    assert_string_equal(s + ADW_SUMMARY_MAX - 4, ELLIPSIS);
    /* four-byte characters: the cut steps back to a whole one */
    hook_line_init(&l);
    for (int i = 0; i < ADW_SUMMARY_MAX / 4 + 1; i++)
        hook_line_puts(&l, "\xf0\x9f\x98\x80");
    s = hook_line_finish(&l, &n);
    assert_int_equal(n, ADW_SUMMARY_MAX - 4 + 3);
    assert_memory_equal(s + ADW_SUMMARY_MAX - 8, "\xf0\x9f\x98\x80" ELLIPSIS, 7);
    /* nothing is appended after a cut */
    hook_line_init(&l);
    hook_line_add(&l, x, ADW_SUMMARY_MAX + 1);
    hook_line_puts(&l, "more");
    assert_int_equal(strlen(hook_line_finish(&l, NULL)), ADW_SUMMARY_MAX);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_helpers),    cmocka_unit_test(test_add_key),
        cmocka_unit_test(test_fallback),        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_finish_at_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
