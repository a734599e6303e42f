/* Unit tests for gateway/decide: the syntax of ADW_GATEWAY_DECIDE_TOKENS (names, scopes, '*',
 * files), its refusals (never naming a token), lookups and the decider names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decide.h"

static const decide_entry_t *check(const decide_t *d, const char *tok)
{
    return decide_check(d, tok, strlen(tok));
}

static void test_named_and_unnamed(void **state)
{
    (void)state;
    char err[256] = "";
    decide_t *d = decide_new(" alice:al-Tok3n== = team-a-, ci- ; tokB=*\n"
                             "# a comment;\n  ops.team@x:pa:ss:word=prod-",
                             err, sizeof err);
    assert_non_null(d);
    assert_int_equal(decide_count(d), 3);
    const decide_entry_t *e = check(d, "al-Tok3n==");
    assert_non_null(e);
    assert_string_equal(e->name, "alice");
    assert_false(e->all);
    assert_int_equal(e->scope.n, 2);
    assert_string_equal(e->scope.v[0], "team-a-");
    assert_string_equal(e->scope.v[1], "ci-");
    assert_true(decide_covers(e, "team-a-1"));
    assert_true(decide_covers(e, "ci-9"));
    assert_false(decide_covers(e, "team-b-1"));
    assert_false(decide_covers(e, "team-a"));

    e = check(d, "tokB");
    assert_non_null(e);
    assert_true(e->all);
    assert_int_equal(e->scope.n, 0);
    assert_true(decide_covers(e, "anything"));
    char want[32];
    decide_hash_name("tokB", 4, want, sizeof want);
    assert_string_equal(e->name, want);
    /* SHA-256("tokB") starts 1b0c6a...: the name is "token-" and 12 hex digits. */
    assert_int_equal(strlen(e->name), 18);
    assert_memory_equal(e->name, "token-", 6);
    assert_null(strstr(e->name, "tokB"));

    /* A named token may hold ':' (split at the first one). */
    e = check(d, "pa:ss:word");
    assert_non_null(e);
    assert_string_equal(e->name, "ops.team@x");

    assert_null(check(d, "al-Tok3n="));
    assert_null(check(d, "alice"));
    assert_null(check(d, "alice:al-Tok3n=="));
    assert_null(decide_check(d, NULL, 0));
    assert_true(decide_has(d, "tokB"));
    assert_false(decide_has(d, "tokb"));
    decide_destroy(&d);
    assert_null(d);
    decide_destroy(&d);
}

static void test_hash_name(void **state)
{
    (void)state;
    char out[32];
    /* sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad */
    decide_hash_name("abc", 3, out, sizeof out);
    assert_string_equal(out, "token-ba7816bf8f01");
}

static void test_empty(void **state)
{
    (void)state;
    char err[128];
    decide_t *d = decide_new(NULL, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(decide_count(d), 0);
    assert_null(check(d, "x"));
    decide_destroy(&d);
    d = decide_new("", err, sizeof err);
    assert_non_null(d);
    decide_destroy(&d);
    assert_int_equal(decide_count(NULL), 0);
}

/* Each bad spec is refused with a reason holding want and never the secret "S3cr". */
static void refused(const char *spec, const char *want)
{
    char err[256] = "";
    decide_t *d = decide_new(spec, err, sizeof err);
    if (d)
        fail_msg("accepted: %s", spec);
    if (!strstr(err, want))
        fail_msg("%s: reason \"%s\" lacks \"%s\"", spec, err, want);
    assert_null(strstr(err, "S3cr"));
    assert_non_null(strstr(err, "ADW_GATEWAY_DECIDE_TOKENS"));
}

static void test_refusals(void **state)
{
    (void)state;
    refused("S3cr", "entry 1: want [name:]token=prefix");
    refused("a=*;S3cr=", "entry 2: a decide token needs at least one adw_id prefix");
    refused("S3cr=team a", "entry 1: prefix");
    refused("S3cr=te/am", "entry 1: prefix");
    refused("S3cr=**", "entry 1: prefix");
    refused("=*", "entry 1: a token is 1 to");
    refused("alice:=*", "entry 1: a token is 1 to");
    refused("S3 cr=*", "entry 1: a token is 1 to");
    refused("S3,cr=*", "entry 1: a token is 1 to");
    refused("bad name:S3cr=*", "entry 1: a name is 1 to 64");
    refused(":S3cr=*", "entry 1: a name is 1 to 64");
    refused("al/ice:S3cr=*", "a token containing ':' must be named");
    refused("S3cr=*;S3cr=ci-", "entry 2: the same token twice");
    refused("bob:S3cr=*;bob:S3cr2=ci-", "entry 2: the name bob twice");
    refused(" ; \n# only a comment", "names no token");
    refused("@/nonexistent/decide-tokens", "file /nonexistent/decide-tokens");
    char longname[80];
    memset(longname, 'n', 65);
    snprintf(longname + 65, sizeof longname - 65, ":S3cr=*");
    refused(longname, "a name is 1 to 64");
    char *longtok = malloc(DECIDE_LEN_MAX + 16);
    assert_non_null(longtok);
    memset(longtok, 'S', DECIDE_LEN_MAX + 1);
    strcpy(longtok + DECIDE_LEN_MAX + 1, "=*");
    refused(longtok, "a token is 1 to 1024");
    free(longtok);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/adw-decide-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# deciders\nalice:tA=team-a-\n\n  tB = *  \n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char spec[64], err[256];
    snprintf(spec, sizeof spec, "@%s", path);
    decide_t *d = decide_new(spec, err, sizeof err);
    unlink(path);
    assert_non_null(d);
    assert_int_equal(decide_count(d), 2);
    assert_string_equal(check(d, "tA")->name, "alice");
    assert_true(check(d, "tB")->all);
    decide_destroy(&d);
}

static void test_many(void **state)
{
    (void)state;
    size_t cap = (size_t)(DECIDE_MAX + 1) * 24;
    char *spec = malloc(cap), err[256];
    assert_non_null(spec);
    size_t off = 0;
    for (int i = 0; i < DECIDE_MAX; i++)
        off += (size_t)snprintf(spec + off, cap - off, "t%d=r%d-;", i, i);
    decide_t *d = decide_new(spec, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(decide_count(d), DECIDE_MAX);
    assert_true(decide_covers(check(d, "t1023"), "r1023-x"));
    decide_destroy(&d);
    snprintf(spec + off, cap - off, "one-more=x");
    refused(spec, "at most 1024 tokens");
    free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_and_unnamed),
        cmocka_unit_test(test_hash_name),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
