/* Unit tests for ingest/approval_rules: the rule file's keys, defaults and refusals (each
 * error names the rule and the problem), and matching a PreToolUse hook by tool name, by the
 * compact JSON text of its tool_input and by adw_id prefix, the first matching rule winning. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "approval_rules.h"

static approval_rules_t *parse(const char *text, char *err)
{
    return approval_rules_parse(text, strlen(text), err, APPROVAL_RULES_ERR_LEN);
}

/* The example, as a rule file holds it. */
static const char EXAMPLE[] =
    "[{\"name\":\"destructive shell\",\"tool\":\"^Bash$\",\"input\":\"rm -rf|push --force\","
    "\"timeout_s\":120,\"on_timeout\":\"deny\"},"
    "{\"name\":\"ci only\",\"adw_prefix\":\"ci-\",\"tool\":\"^Write$\",\"input\":\"\\\\.env\"},"
    "{\"name\":\"any web\",\"tool\":\"^Web\",\"timeout_s\":5,\"on_timeout\":\"allow\"}]";

static void test_parse_example(void **state)
{
    (void)state;
    char err[APPROVAL_RULES_ERR_LEN] = "";
    approval_rules_t *r = parse(EXAMPLE, err);
    assert_non_null(r);
    assert_int_equal(approval_rules_count(r), 3);
    assert_int_equal(approval_rules_max_timeout(r), 120);
    approval_rules_destroy(&r);
    assert_null(r);
    approval_rules_destroy(&r); /* NULL is fine */
    r = parse("[]", err);
    assert_non_null(r);
    assert_int_equal(approval_rules_count(r), 0);
    assert_int_equal(approval_rules_max_timeout(r), 0);
    approval_rules_destroy(&r);
}

static void test_match(void **state)
{
    (void)state;
    char err[APPROVAL_RULES_ERR_LEN] = "";
    approval_rules_t *r = parse(EXAMPLE, err);
    assert_non_null(r);
    json_t *rm = json_pack("{s:s, s:s}", "command", "rm -rf build/", "description", "clean");
    json_t *ls = json_pack("{s:s}", "command", "ls -la");
    json_t *env = json_pack("{s:s, s:s}", "file_path", "/src/.env", "content", "K=1");
    json_t *src = json_pack("{s:s}", "file_path", "/src/main.c");

    const approval_rule_t *m = approval_rules_match(r, "a1b2c3d4", "Bash", rm);
    assert_non_null(m);
    assert_string_equal(m->name, "destructive shell");
    assert_int_equal(m->timeout_s, 120);
    assert_false(m->allow_on_timeout);
    /* The tool regex is anchored by the rule, not by the matcher. */
    assert_null(approval_rules_match(r, "a1b2c3d4", "BashOutput", rm));
    assert_null(approval_rules_match(r, "a1b2c3d4", "Bash", ls));
    /* adw_prefix: only runs whose adw_id starts with it. */
    assert_null(approval_rules_match(r, "a1b2c3d4", "Write", env));
    m = approval_rules_match(r, "ci-42", "Write", env);
    assert_non_null(m);
    assert_string_equal(m->name, "ci only");
    assert_string_equal(m->adw_prefix, "ci-");
    assert_int_equal(m->timeout_s, APPROVAL_TIMEOUT_DEFAULT_S);
    assert_null(approval_rules_match(r, "ci-42", "Write", src));
    assert_null(approval_rules_match(r, NULL, "Write", env));
    /* No input regex: any tool_input, or none. */
    m = approval_rules_match(r, "x", "WebFetch", NULL);
    assert_non_null(m);
    assert_string_equal(m->name, "any web");
    assert_true(m->allow_on_timeout);
    assert_null(approval_rules_match(r, "x", NULL, NULL));
    assert_null(approval_rules_match(NULL, "x", "Bash", rm));

    json_decref(rm);
    json_decref(ls);
    json_decref(env);
    json_decref(src);
    approval_rules_destroy(&r);
}

/* The input regex sees the compact JSON text: keys, quotes and escapes as JSON writes them. */
static void test_match_json_text(void **state)
{
    (void)state;
    char err[APPROVAL_RULES_ERR_LEN] = "";
    approval_rules_t *r =
        parse("[{\"name\":\"push\",\"tool\":\".*\",\"input\":\"\\\"command\\\":\\\"git push\"},"
              "{\"name\":\"second\",\"tool\":\"^Bash$\"}]",
              err);
    assert_non_null(r);
    json_t *push = json_pack("{s:s}", "command", "git push origin main");
    json_t *other = json_pack("{s:s}", "cmd", "git push origin main");
    assert_string_equal(approval_rules_match(r, "a", "Bash", push)->name, "push");
    /* First match wins; the second rule takes what the first does not. */
    assert_string_equal(approval_rules_match(r, "a", "Bash", other)->name, "second");
    assert_null(approval_rules_match(r, "a", "Read", other));
    json_decref(push);
    json_decref(other);
    approval_rules_destroy(&r);
}

static void refused(const char *text, const char *want)
{
    char err[APPROVAL_RULES_ERR_LEN] = "";
    approval_rules_t *r = parse(text, err);
    if (r || !strstr(err, want))
        fail_msg("%s: got \"%s\", want \"%s\"", text, err, want);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("[{\"name\":\"a\",\"tool\":\"^Bash$\"", "not JSON");
    refused("{\"name\":\"a\"}", "expected a JSON array of rules");
    refused("[1]", "rule 0: not a JSON object");
    refused("[{\"tool\":\"x\"}]", "rule 0: \"name\" must be a string");
    refused("[{\"name\":\"\",\"tool\":\"x\"}]", "rule 0: \"name\" must be a string");
    refused("[{\"name\":\"a\",\"tool\":\"x\"},{\"name\":\"b\"}]",
            "rule \"b\": \"tool\" must be a regular expression");
    refused("[{\"name\":\"bad\",\"tool\":\"(Bash\"}]", "rule \"bad\": \"tool\" does not compile");
    refused("[{\"name\":\"bad\",\"tool\":\"x\",\"input\":\"[a-\"}]",
            "rule \"bad\": \"input\" does not compile");
    refused("[{\"name\":\"bad\",\"tool\":\"x\",\"input\":5}]", "\"input\" must be");
    refused("[{\"name\":\"k\",\"tool\":\"x\",\"timeout\":5}]",
            "rule \"k\": unknown key \"timeout\"");
    refused("[{\"name\":\"t\",\"tool\":\"x\",\"timeout_s\":0}]",
            "\"timeout_s\" must be an integer");
    refused("[{\"name\":\"t\",\"tool\":\"x\",\"timeout_s\":3601}]", "from 1 to 3600");
    refused("[{\"name\":\"t\",\"tool\":\"x\",\"timeout_s\":\"5\"}]", "\"timeout_s\"");
    refused("[{\"name\":\"o\",\"tool\":\"x\",\"on_timeout\":\"ask\"}]",
            "rule \"o\": \"on_timeout\" must be \"deny\" or \"allow\"");
    refused("[{\"name\":\"p\",\"tool\":\"x\",\"adw_prefix\":\"\"}]", "\"adw_prefix\" must be");
    refused("[{\"name\":\"d\",\"name\":\"e\",\"tool\":\"x\"}]", "not JSON");
    /* At the bounds: accepted. */
    char err[APPROVAL_RULES_ERR_LEN];
    approval_rules_t *r =
        parse("[{\"name\":\"t\",\"tool\":\"x\",\"timeout_s\":3600},"
              "{\"name\":\"u\",\"tool\":\"x\",\"timeout_s\":1,\"on_timeout\":\"deny\"}]",
              err);
    assert_non_null(r);
    assert_int_equal(approval_rules_max_timeout(r), 3600);
    approval_rules_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_example),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_json_text),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
