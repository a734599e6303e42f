/* Unit tests for gateway/search's pure part: q split into words, each escaped into an ILIKE
 * pattern, and the parameters of /api/search with their limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "api.h"
#include "search.h"

static search_query_t s; /* large: not on the stack */

static int words(const char *q, char *err)
{
    return search_parse_words(q, &s, err, 200);
}

static void test_pattern_escapes(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(search_pattern("auth", 4, out, sizeof out), 6);
    assert_string_equal(out, "%auth%");
    assert_int_equal(search_pattern("100%", 4, out, sizeof out), 7);
    assert_string_equal(out, "%100\\%%");
    assert_int_equal(search_pattern("a_b", 3, out, sizeof out), 6);
    assert_string_equal(out, "%a\\_b%");
    assert_int_equal(search_pattern("C:\\t", 4, out, sizeof out), 7);
    assert_string_equal(out, "%C:\\\\t%");
    assert_int_equal(search_pattern("%_\\", 3, out, sizeof out), 8);
    assert_string_equal(out, "%\\%\\_\\\\%");
    /* quotes and the rest are data: passed as a parameter, never spliced into SQL */
    assert_int_equal(search_pattern("'\";--", 5, out, sizeof out), 7);
    assert_string_equal(out, "%'\";--%");
    assert_int_equal(search_pattern("日本", 6, out, sizeof out), 8);
    assert_string_equal(out, "%日本%");
    /* room: 2 * n + 3 */
    assert_int_equal(search_pattern("%%", 2, out, 6), -ENOSPC);
    assert_int_equal(search_pattern("%%", 2, out, 7), 6);
    assert_string_equal(out, "%\\%\\%%");
    assert_int_equal(search_pattern("", 0, out, 3), 2);
    assert_string_equal(out, "%%");
}

static void test_words(void **state)
{
    (void)state;
    char err[200];
    assert_int_equal(words("auth", err), 0);
    assert_int_equal(s.nwords, 1);
    assert_string_equal(s.pattern[0], "%auth%");
    assert_int_equal(words(" \t write  src/auth.py\n", err), 0);
    assert_int_equal(s.nwords, 2);
    assert_string_equal(s.pattern[0], "%write%");
    assert_string_equal(s.pattern[1], "%src/auth.py%");
    assert_int_equal(words("' OR 1=1 --", err), 0);
    assert_int_equal(s.nwords, 4);
    assert_string_equal(s.pattern[0], "%'%");
    assert_string_equal(s.pattern[1], "%OR%");
    assert_string_equal(s.pattern[2], "%1=1%");
    assert_string_equal(s.pattern[3], "%--%");
    assert_int_equal(words("naïve 🚀", err), 0);
    assert_int_equal(s.nwords, 2);
    assert_string_equal(s.pattern[1], "%🚀%");
    assert_int_equal(s.indexed[0], 1);
    assert_int_equal(s.indexed[1], 0);

    /* which words the trigram index serves: three word characters in a row */
    assert_int_equal(words("src zq % 1=1 a_b_c ab1 日本語 x.y.z", err), 0);
    static const unsigned char indexed[] = {1, 0, 0, 0, 0, 1, 1, 0};
    assert_int_equal(s.nwords, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(s.indexed[i], indexed[i]);

    /* empty */
    assert_int_equal(words("", err), -EINVAL);
    assert_non_null(strstr(err, "at least one word"));
    assert_int_equal(words(" \t\r\n\v\f", err), -EINVAL);
    assert_non_null(strstr(err, "at least one word"));

    /* 256 bytes once trimmed: accepted; 257: refused */
    char q[SEARCH_Q_MAX + 8];
    memset(q, ' ', 2);
    memset(q + 2, '%', SEARCH_Q_MAX);
    strcpy(q + 2 + SEARCH_Q_MAX, "  ");
    assert_int_equal(words(q, err), 0);
    assert_int_equal(s.nwords, 1);
    assert_int_equal(strlen(s.pattern[0]), 2 * SEARCH_Q_MAX + 2); /* every byte escaped */
    q[2 + SEARCH_Q_MAX] = 'x';
    assert_int_equal(words(q, err), -EINVAL);
    assert_non_null(strstr(err, "at most 256 bytes"));

    /* 8 words: accepted; 9: refused */
    assert_int_equal(words("a b c d e f g h", err), 0);
    assert_int_equal(s.nwords, 8);
    assert_string_equal(s.pattern[7], "%h%");
    assert_int_equal(words("a b c d e f g h i", err), -EINVAL);
    assert_non_null(strstr(err, "at most 8 words"));
    assert_int_equal(s.nwords, 0);

    /* not UTF-8 */
    assert_int_equal(words("ok \xff\xfe", err), -EINVAL);
    assert_non_null(strstr(err, "UTF-8"));
    assert_int_equal(words("\xed\xa0\x80", err), -EINVAL); /* a surrogate */
}

static int parse(const param_t *p, size_t n, api_query_t *q, char *err)
{
    return api_parse("/api/search", p, n, q, err, 200);
}

static void test_params(void **state)
{
    (void)state;
    api_query_t q;
    char err[200];
    param_t p[4] = {{"q", "edit  src"}, {"adw_id", "r1,r2"}, {"limit", "200"}, {"before", "12345"}};
    assert_int_equal(parse(p, 4, &q, err), 0);
    assert_int_equal(q.kind, API_SEARCH);
    assert_int_equal(q.search.nwords, 2);
    assert_string_equal(q.search.pattern[1], "%src%");
    assert_int_equal(q.search.limit, 200);
    assert_int_equal(q.search.before, 12345);
    assert_int_equal(q.filter.key[FILTER_ADW_ID].n, 2);
    assert_string_equal(q.filter.key[FILTER_ADW_ID].v[1], "r2");
    api_query_free(&q);

    assert_int_equal(parse(p, 1, &q, err), 0); /* defaults */
    assert_int_equal(q.search.limit, SEARCH_LIMIT_DEFAULT);
    assert_int_equal(q.search.before, 0);
    assert_int_equal(q.filter.key[FILTER_ADW_ID].n, 0);
    api_query_free(&q);

    assert_int_equal(parse(p + 1, 3, &q, err), 400); /* no q */
    assert_non_null(strstr(err, "q"));
    api_query_free(&q);

    static const char *const bad_limits[] = {
        "0", "201", "-1", "x", "", "1e2", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        param_t b[2] = {{"q", "a"}, {"limit", bad_limits[i]}};
        assert_int_equal(parse(b, 2, &q, err), 400);
        assert_non_null(strstr(err, "limit must be an integer from 1 to 200"));
        api_query_free(&q);
    }
    static const char *const bad_before[] = {"0", "-3", "x", ""};
    for (size_t i = 0; i < sizeof bad_before / sizeof bad_before[0]; i++) {
        param_t b[2] = {{"q", "a"}, {"before", bad_before[i]}};
        assert_int_equal(parse(b, 2, &q, err), 400);
        assert_non_null(strstr(err, "before"));
        api_query_free(&q);
    }
    param_t one[2] = {{"q", "a"}, {"limit", "1"}};
    assert_int_equal(parse(one, 2, &q, err), 0);
    assert_int_equal(q.search.limit, 1);
    api_query_free(&q);
    param_t nine[1] = {{"q", "1 2 3 4 5 6 7 8 9"}};
    assert_int_equal(parse(nine, 1, &q, err), 400);
    api_query_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_escapes),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
