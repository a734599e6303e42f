/* Unit tests for gateway/tokspec: the text of a token specification (entries split at ';' and
 * newlines, blanks trimmed, '#' comments, the last '=', numbering from 1, '@file'), the comma
 * list of prefixes, and the checks of a token and a prefix. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokspec.h"

/* What the entries handed over said, one "num|token|prefix,prefix" line each. */
typedef struct seen_t {
    char text[1024];
    size_t stop_at; /* entry number whose add fails (0: none) */
} seen_t;

static int record(void *ctx, const tokspec_entry_t *e, char *err, size_t errlen)
{
    seen_t *s = ctx;
    if (e->num == s->stop_at) {
        snprintf(err, errlen, "stopped at %zu", e->num);
        return -EINVAL;
    }
    size_t n = strlen(s->text);
    n += (size_t)snprintf(s->text + n, sizeof s->text - n, "%zu|%.*s|", e->num, (int)e->token_len,
                          e->token);
    const char *p = e->prefixes, *item;
    size_t len;
    while (tokspec_next_prefix(&p, e->end, &item, &len))
        n += (size_t)snprintf(s->text + n, sizeof s->text - n, "[%.*s]", (int)len, item);
    snprintf(s->text + n, sizeof s->text - n, "\n");
    return 0;
}

static void test_entries(void **state)
{
    (void)state;
    seen_t s = {0};
    char err[256] = "";
    assert_int_equal(tokspec_parse(" a = p1 , p2 ;\n# c=x\n\t;b==c= q ,, ;  \r\n n:t=* ", "WHAT",
                                   "token=prefix", record, &s, err, sizeof err),
                     0);
    assert_string_equal(s.text, "1|a|[p1][p2]\n"
                                "2|b==c|[q][][]\n"
                                "3|n:t|[*]\n");

    /* An entry without '=' names its number and the shape. */
    memset(&s, 0, sizeof s);
    assert_int_equal(tokspec_parse("a=p;#x;b", "WHAT", "token=prefix", record, &s, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "WHAT entry 2: want token=prefix");

    /* Nothing but blanks and comments. */
    assert_int_equal(tokspec_parse(" ; \n# a=b\n", "WHAT", "x", record, &s, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "WHAT names no token");

    /* add's failure stops the parse, its reason kept. */
    memset(&s, 0, sizeof s);
    s.stop_at = 2;
    assert_int_equal(tokspec_parse("a=p;b=q;c=r", "WHAT", "x", record, &s, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "stopped at 2");
    assert_string_equal(s.text, "1|a|[p]\n");
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tokspec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# readers\nk1=p\n\nk2 = q,r\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char spec[64];
    snprintf(spec, sizeof spec, "@%s", path);
    seen_t s = {0};
    char err[256] = "";
    assert_int_equal(tokspec_parse(spec, "WHAT", "x", record, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "1|k1|[p]\n2|k2|[q][r]\n");

    /* Over TOKSPEC_FILE_MAX bytes. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i <= TOKSPEC_FILE_MAX / 8; i++)
        fputs("# 345678", f);
    fclose(f);
    assert_int_equal(tokspec_parse(spec, "WHAT", "x", record, &s, err, sizeof err), -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "WHAT file %s: larger than 64 KiB", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_int_equal(tokspec_parse(spec, "WHAT", "x", record, &s, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "WHAT file %s: No such file or directory", path);
    assert_string_equal(err, want);
}

static void test_checks(void **state)
{
    (void)state;
    assert_true(tokspec_token_valid("abc==", 5, 1024));
    assert_false(tokspec_token_valid("", 0, 1024));
    assert_false(tokspec_token_valid("abcd", 4, 3));
    assert_false(tokspec_token_valid("a b", 3, 1024));
    assert_false(tokspec_token_valid("a,b", 3, 1024));
    assert_false(tokspec_token_valid("a;b", 3, 1024));
    assert_false(tokspec_token_valid("a\x7f", 2, 1024));
    assert_true(tokspec_prefix_valid("team-a.run_1:x", 14));
    assert_false(tokspec_prefix_valid("", 0));
    assert_false(tokspec_prefix_valid("a/b", 3));
    assert_false(tokspec_prefix_valid("*", 1));
    char big[66];
    memset(big, 'a', sizeof big);
    assert_true(tokspec_prefix_valid(big, 64));
    assert_false(tokspec_prefix_valid(big, 65));
    const char *s = " \t x y\r ";
    size_t len = strlen(s);
    tokspec_trim(&s, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x y", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
