/* Unit tests for gateway/api's request parsing and gateway/webdir's path mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "webdir.h"

static int parse(const char *path, const param_t *p, size_t n, api_query_t *q, char *err)
{
    return api_parse(path, p, n, q, err, 200);
}

static void test_paths(void **state)
{
    (void)state;
    api_query_t q;
    char err[200];
    assert_int_equal(parse("/api/adws", NULL, 0, &q, err), 0);
    assert_int_equal(q.kind, API_RUNS);
    assert_int_equal(q.limit, API_LIMIT_DEFAULT);
    api_query_free(&q);
    assert_int_equal(parse("/api/adws/a1.b-c:d_e", NULL, 0, &q, err), 0);
    assert_int_equal(q.kind, API_RUN);
    assert_string_equal(q.adw_id, "a1.b-c:d_e");
    api_query_free(&q);
    assert_int_equal(parse("/api/events", NULL, 0, &q, err), 0);
    assert_int_equal(q.kind, API_EVENTS);
    assert_int_equal(q.since, 0);
    api_query_free(&q);
    const char *bad[] = {"/api/adws/",   "/api/adws/a b", "/api/adws/a/b",    "/api/event",
                         "/api/eventsx", "/api",          "/api/adws/x/steps"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = parse(bad[i], NULL, 0, &q, err);
        if (!strcmp(bad[i], "/api/adws/")) {
            assert_int_equal(st, 0); /* the list, with a trailing slash */
        } else if (st != 404) {
            fail_msg("%s: %d", bad[i], st);
        }
        api_query_free(&q);
    }
    char longid[80];
    memset(longid, 'x', sizeof longid);
    memcpy(longid, "/api/adws/", 10);
    longid[10 + 65] = '\0';
    assert_int_equal(parse(longid, NULL, 0, &q, err), 404);
    api_query_free(&q);
    longid[10 + 64] = '\0';
    assert_int_equal(parse(longid, NULL, 0, &q, err), 0);
    api_query_free(&q);
}

static void test_params(void **state)
{
    (void)state;
    api_query_t q;
    char err[200];
    param_t p[] = {{"since", "42"},        {"limit", "1000"},   {"adw_id", "a,b"},
                   {"steps", "build"},     {"event_types", ""}, {"types", "system"},
                   {"unknown", "ignored"}, {"status", "x"}};
    assert_int_equal(parse("/api/events", p, 8, &q, err), 0);
    assert_int_equal(q.since, 42);
    assert_int_equal(q.limit, 1000);
    assert_int_equal(q.filter.key[FILTER_ADW_ID].n, 2);
    assert_int_equal(q.filter.key[FILTER_STEPS].n, 1);
    assert_int_equal(q.filter.key[FILTER_EVENT_TYPES].n, 0);
    assert_int_equal(q.filter.key[FILTER_TYPES].n, 1);
    assert_int_equal(q.status.n, 0); /* not a parameter of /api/events */
    api_query_free(&q);

    param_t top = {"since", "9223372036854775807"}; /* INT64_MAX */
    assert_int_equal(parse("/api/events", &top, 1, &q, err), 0);
    assert_true(q.since == INT64_MAX);
    api_query_free(&q);

    param_t s[] = {{"status", "running,failed"}, {"limit", "5"}};
    assert_int_equal(parse("/api/adws", s, 2, &q, err), 0);
    assert_int_equal(q.status.n, 2);
    assert_string_equal(q.status.v[1], "failed");
    assert_int_equal(q.limit, 5);
    api_query_free(&q);

    static const struct {
        const char *path, *name, *value, *reason;
    } bad[] = {
        {"/api/events", "limit", "0", "limit"},
        {"/api/events", "limit", "1001", "limit"},
        {"/api/events", "limit", "", "limit"},
        {"/api/events", "limit", "+5", "limit"},
        {"/api/adws", "limit", "99999999999999999999", "limit"},
        {"/api/events", "since", "-1", "since"},
        {"/api/events", "since", "1.5", "since"},
        {"/api/events", "since", "99999999999999999999", "since"},
        {"/api/events", "since", "9223372036854775808", "since"}, /* INT64_MAX + 1 */
        {"/api/events", "since", "9999999999999999999", "since"},
        {"/api/events", "steps", "a,\xff", "UTF-8"},
        {"/api/adws", "status", "", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        param_t one = {bad[i].name, bad[i].value};
        int st = parse(bad[i].path, &one, 1, &q, err);
        if (!bad[i].reason) {
            assert_int_equal(st, 0);
        } else if (st != 400 || !strstr(err, bad[i].reason)) {
            fail_msg("%s=%s: %d %s", bad[i].name, bad[i].value, st, err);
        }
        api_query_free(&q);
    }
}

static void test_error_body(void **state)
{
    (void)state;
    size_t len;
    char *b = api_error_body("bad \"x\"\n", &len);
    assert_string_equal(b, "{\"error\":\"bad \\\"x\\\"\\n\"}");
    assert_int_equal(len, strlen(b));
    free(b);
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void test_webdir(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/adw-webdir-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char root[PATH_MAX], p[PATH_MAX + 64], out[PATH_MAX];
    assert_int_equal(webdir_root(tmpl, root, sizeof root), 0);
    snprintf(p, sizeof p, "%s/index.html", root);
    touch(p);
    snprintf(p, sizeof p, "%s/app.js", root);
    touch(p);
    snprintf(p, sizeof p, "%s/sub", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/index.html", root);
    touch(p);
    snprintf(p, sizeof p, "%s/.secret", root);
    touch(p);
    snprintf(p, sizeof p, "%s/escape", root);
    assert_int_equal(symlink("/etc/passwd", p), 0);

    assert_int_equal(webdir_resolve(root, "/", out, sizeof out), 0);
    snprintf(p, sizeof p, "%s/index.html", root);
    assert_string_equal(out, p);
    assert_int_equal(webdir_resolve(root, "/app.js", out, sizeof out), 0);
    assert_int_equal(webdir_resolve(root, "/sub", out, sizeof out), 0);
    assert_int_equal(webdir_resolve(root, "/sub/", out, sizeof out), 0);
    assert_int_equal(webdir_resolve(root, "//app.js", out, sizeof out), 0);
    const char *refused[] = {"/missing",         "/../etc/passwd", "/sub/../app.js",
                             "/.secret",         "/escape",        "app.js",
                             "/sub\\..\\app.js", "/./app.js",      "/app.js/"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (webdir_resolve(root, refused[i], out, sizeof out) != -ENOENT)
            fail_msg("%s was served", refused[i]);
    assert_int_not_equal(webdir_root("/nonexistent-adw", out, sizeof out), 0);
    snprintf(p, sizeof p, "%s/app.js", root);
    assert_int_not_equal(webdir_root(p, out, sizeof out), 0);

    assert_string_equal(webdir_mime("a/index.html"), "text/html; charset=utf-8");
    assert_string_equal(webdir_mime("x.JS"), "text/javascript; charset=utf-8");
    assert_string_equal(webdir_mime("x.css"), "text/css; charset=utf-8");
    assert_string_equal(webdir_mime("x.svg"), "image/svg+xml");
    assert_string_equal(webdir_mime("x.json"), "application/json");
    assert_string_equal(webdir_mime("noext"), "application/octet-stream");
    assert_string_equal(webdir_mime("dir.d/noext"), "application/octet-stream");

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_webdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
