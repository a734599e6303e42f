/* Unit tests for shared/auth (the constant-time comparison and the Bearer parser),
 * gateway/tokens (read-token syntax, refusals, lookups) and the scope in gateway/filter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "filter.h"
#include "tokens.h"

static void test_token_equal(void **state)
{
    (void)state;
    assert_true(auth_token_equal("s3cret", 6, "s3cret"));
    assert_false(auth_token_equal("s3cret", 5, "s3cret"));  /* a prefix */
    assert_false(auth_token_equal("s3cretX", 7, "s3cret")); /* longer */
    assert_false(auth_token_equal("s3creT", 6, "s3cret"));  /* last byte */
    assert_false(auth_token_equal("", 0, "s3cret"));
    assert_false(auth_token_equal("s3cret\0", 7, "s3cret")); /* NUL is a byte like another */
    assert_true(auth_token_equal("abc-not-nul-terminated", 3, "abc"));
}

static void test_bearer(void **state)
{
    (void)state;
    const char *t;
    size_t n;
    const char *h = "bearer   tok-1  ";
    assert_int_equal(auth_bearer(h, strlen(h), &t, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(t, "tok-1", 5);
    h = "Basic dG9rOg==";
    assert_int_equal(auth_bearer(h, strlen(h), &t, &n), -1);
    assert_int_equal(auth_bearer("Bearer", 6, &t, &n), -1);
}

static tokens_t *mk(const char *full, const char *spec, char *err)
{
    return tokens_new(full, spec, err, 256);
}

static void test_read_token_syntax(void **state)
{
    (void)state;
    char err[256];
    tokens_t *t = mk("FULL", " tokA== = team-a-, team-b- ;tokB=ci-\n\n", err);
    assert_non_null(t);
    assert_int_equal(tokens_scoped_count(t), 2);
    const filter_list_t *scope;
    assert_int_equal(tokens_check(t, "tokA==", 6, &scope), TOKENS_SCOPED);
    assert_int_equal(scope->n, 2);
    assert_string_equal(scope->v[0], "team-a-");
    assert_string_equal(scope->v[1], "team-b-");
    assert_int_equal(tokens_check(t, "tokB", 4, &scope), TOKENS_SCOPED);
    assert_string_equal(scope->v[0], "ci-");
    assert_int_equal(tokens_check(t, "FULL", 4, &scope), TOKENS_FULL);
    assert_null(scope);
    assert_int_equal(tokens_check(t, "tokA=", 5, &scope), TOKENS_REFUSED);
    assert_int_equal(tokens_check(t, NULL, 0, &scope), TOKENS_REFUSED);
    assert_int_equal(tokens_check(t, "", 0, &scope), TOKENS_REFUSED);
    tokens_destroy(&t);
    assert_null(t);

    /* no token at all: everyone reads everything */
    t = mk(NULL, "", err);
    assert_non_null(t);
    assert_false(tokens_required(t));
    assert_int_equal(tokens_check(t, NULL, 0, &scope), TOKENS_FULL);
    tokens_destroy(&t);

    static const struct {
        const char *spec, *why;
    } bad[] = {
        {"tok=", "at least one adw_id prefix"},  {"tok", "want token=prefix"},
        {"=a-", "printable characters"},         {"to k=a-", "printable characters"},
        {"tok=a b", "must be 1 to 64"},          {"tok=a-;tok=b-", "the same token twice"},
        {"FULL=a-", "equals ADW_GATEWAY_TOKEN"}, {";;", "names no token"},
        {"@/nonexistent/x", "No such file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        t = mk("FULL", bad[i].spec, err);
        if (t || !strstr(err, bad[i].why))
            fail_msg("%s: got \"%s\"", bad[i].spec, err);
        assert_null(strstr(err, "FULL")); /* reasons never hold a token */
    }
}

static void test_scope_in_filter(void **state)
{
    (void)state;
    char err[256];
    tokens_t *t = mk(NULL, "tokA=team-a-,team-b-", err);
    const filter_list_t *scope;
    assert_int_equal(tokens_check(t, "tokA", 4, &scope), TOKENS_SCOPED);
    filter_t f;
    filter_init(&f);
    f.scope = scope;
    filter_event_t in = {{"team-a-1", "build", "TextBlock", "adw_event"}};
    filter_event_t out = {{"team-c-1", "build", "TextBlock", "adw_event"}};
    filter_event_t near = {{"team-a", "build", "TextBlock", "adw_event"}};
    filter_event_t none = {{NULL, "build", "TextBlock", "adw_event"}};
    assert_true(filter_match(&f, &in));
    assert_false(filter_match(&f, &out));
    assert_false(filter_match(&f, &near));
    assert_false(filter_match(&f, &none));
    assert_false(filter_is_empty(&f));
    /* a subscribe replaces the keys, not the scope */
    assert_int_equal(filter_set_csv(&f, FILTER_ADW_ID, "team-c-1", 8, err, sizeof err), 0);
    assert_int_equal(filter_check_scope(&f, err, sizeof err), -EACCES);
    assert_non_null(strstr(err, "team-c-1 is outside"));
    assert_false(filter_match(&f, &out));
    filter_t g;
    filter_init(&g);
    assert_int_equal(filter_copy(&g, &f), 0);
    assert_ptr_equal(g.scope, scope);
    filter_free(&g);
    assert_null(g.scope);
    filter_free(&f);
    tokens_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_read_token_syntax),
        cmocka_unit_test(test_scope_in_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
