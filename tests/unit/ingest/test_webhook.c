/* Unit tests for ingest/webhook's pure parts: URL checks (http(s) with a host, a port in
 * range, no blanks; the length limit crossed), the comma-separated lists (blanks trimmed,
 * empty items and the count limit refused), event names, the backoff (1 s doubling to 60 s),
 * and the one-line text (per event, Slack's & < > escaped, the link kept while the summary is
 * cut at 300 bytes on a character boundary), and the host of a URL for log lines (no
 * credentials, no path). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "utf8.h"
#include "webhook_text.h"

static int url_ok(const char *u)
{
    char err[256];
    return webhook_url_check(u, strlen(u), err, sizeof err) == 0;
}

static void test_url_check(void **state)
{
    (void)state;
    assert_true(url_ok("http://h"));
    assert_true(url_ok("https://hooks.slack.com/services/T0/B0/x"));
    assert_true(url_ok("HTTPS://H.example:8443/a?b=c#d"));
    assert_true(url_ok("http://user:pw@h.example/x"));
    assert_true(url_ok("http://[::1]:8080/x"));
    assert_true(url_ok("http://127.0.0.1:65535"));
    assert_false(url_ok(""));
    assert_false(url_ok("ftp://x"));
    assert_false(url_ok("localhost:80"));
    assert_false(url_ok("http://"));
    assert_false(url_ok("https://"));
    assert_false(url_ok("http:///x"));
    assert_false(url_ok("http://:80/x"));
    assert_false(url_ok("http://user@/x"));
    assert_false(url_ok("http://h:0/"));
    assert_false(url_ok("http://h:65536/"));
    assert_false(url_ok("http://h:80x/"));
    assert_false(url_ok("http://h:/"));
    assert_false(url_ok("http://[]/"));
    assert_false(url_ok("http://[::1/"));
    assert_false(url_ok("http://a b/"));
    assert_false(url_ok("http://a/\n"));
    assert_false(url_ok("javascript://h/"));
    char err[256];
    assert_int_equal(webhook_url_check("ftp://x", 7, err, sizeof err), -EINVAL);
    assert_string_equal(err, "webhook URL 'ftp://x' is not http:// or https://");
    /* The length limit: at it accepted, one over refused. */
    char *u = malloc(WEBHOOK_URL_MAX + 2);
    assert_non_null(u);
    memcpy(u, "http://h/", 9);
    memset(u + 9, 'a', WEBHOOK_URL_MAX - 9);
    u[WEBHOOK_URL_MAX] = '\0';
    assert_true(url_ok(u));
    u[WEBHOOK_URL_MAX] = 'a';
    u[WEBHOOK_URL_MAX + 1] = '\0';
    assert_false(url_ok(u));
    free(u);
}

static void test_lists(void **state)
{
    (void)state;
    char *out[WEBHOOK_MAX + 1];
    char err[256];
    int n = webhook_parse_urls(" http://a/x , https://b:1/ ", out, WEBHOOK_MAX, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "http://a/x");
    assert_string_equal(out[1], "https://b:1/");
    free(out[0]);
    free(out[1]);
    assert_int_equal(webhook_parse_urls("http://a/,", out, WEBHOOK_MAX, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "empty item"));
    assert_int_equal(webhook_parse_urls("", out, WEBHOOK_MAX, err, sizeof err), -EINVAL);
    assert_int_equal(webhook_parse_urls("http://a/,ftp://b", out, WEBHOOK_MAX, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "ftp://b"));
    /* The count limit: 16 accepted, 17 refused. */
    char list[17 * 16 + 1] = "";
    for (int i = 0; i < 17; i++) {
        char one[16];
        snprintf(one, sizeof one, "%shttp://h%d", i ? "," : "", i);
        strcat(list, one);
        n = webhook_parse_urls(list, out, WEBHOOK_MAX, err, sizeof err);
        if (i < WEBHOOK_MAX) {
            assert_int_equal(n, i + 1);
            while (n)
                free(out[--n]);
        } else {
            assert_int_equal(n, -EINVAL);
            assert_string_equal(err, "more than 16 webhooks");
        }
    }
    n = webhook_parse_events("adw_failed,run_stalled", out, WEBHOOK_EVENTS_MAX, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(out[1], "run_stalled");
    free(out[0]);
    free(out[1]);
    assert_int_equal(webhook_parse_events("Adw", out, WEBHOOK_EVENTS_MAX, err, sizeof err),
                     -EINVAL);
    assert_int_equal(webhook_parse_events("a;b", out, WEBHOOK_EVENTS_MAX, err, sizeof err),
                     -EINVAL);
    char longname[WEBHOOK_EVENT_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[WEBHOOK_EVENT_NAME_MAX] = '\0';
    assert_int_equal(webhook_parse_events(longname, out, 1, err, sizeof err), 1);
    free(out[0]);
    longname[WEBHOOK_EVENT_NAME_MAX] = 'a';
    longname[WEBHOOK_EVENT_NAME_MAX + 1] = '\0';
    assert_int_equal(webhook_parse_events(longname, out, 1, err, sizeof err), -EINVAL);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(webhook_backoff_ms(0), 1000);
    assert_int_equal(webhook_backoff_ms(1), 1000);
    assert_int_equal(webhook_backoff_ms(2), 2000);
    assert_int_equal(webhook_backoff_ms(3), 4000);
    assert_int_equal(webhook_backoff_ms(6), 32000);
    assert_int_equal(webhook_backoff_ms(7), 60000);
    assert_int_equal(webhook_backoff_ms(1000000), 60000);
}

static adw_event_t sys(const char *event, const char *adw_id, const char *step, const char *summary)
{
    adw_event_t e;
    memset(&e, 0, sizeof e);
    e.is_system = 1;
    e.type = "system";
    e.event = event;
    e.adw_id = adw_id;
    e.step = step;
    e.summary = summary;
    return e;
}

static void test_text(void **state)
{
    (void)state;
    char out[512];
    adw_event_t e = sys("adw_failed", "abc123", "build", "exit 1");
    webhook_text(&e, "https://d.example/", out, sizeof out);
    assert_string_equal(
        out, ":x: Run `abc123` failed at step build: exit 1 — https://d.example/#/runs/abc123");
    webhook_text(&e, NULL, out, sizeof out);
    assert_string_equal(out, ":x: Run `abc123` failed at step build: exit 1");
    e = sys("run_stalled", "r", NULL, "No event for 10 min");
    webhook_text(&e, "", out, sizeof out);
    assert_string_equal(out, ":hourglass: Run `r` stalled: No event for 10 min");
    e = sys("budget_exceeded", "r", NULL, NULL);
    webhook_text(&e, NULL, out, sizeof out);
    assert_string_equal(out, ":money_with_wings: Run `r` went over its budget");
    e = sys("approval_requested", "r", "deploy", "Bash: rm -rf x");
    webhook_text(&e, NULL, out, sizeof out);
    assert_string_equal(out, ":raised_hand: Run `r` waits for an approval at step deploy: Bash: "
                             "rm -rf x");
    e = sys("adw_complete", "r", NULL, NULL);
    webhook_text(&e, NULL, out, sizeof out);
    assert_string_equal(out, ":bell: Run `r`: adw_complete");
    /* Slack's control characters escaped; control characters as blanks. */
    e = sys("adw_failed", "r", "a<b", "<!channel> & <http://x|y>\nz");
    webhook_text(&e, NULL, out, sizeof out);
    assert_string_equal(out, ":x: Run `r` failed at step a&lt;b: &lt;!channel&gt; &amp; "
                             "&lt;http://x|y&gt; z");
    /* A long summary is cut on a character boundary; the link is kept whole. */
    char big[2000] = "";
    for (int i = 0; i < 600; i++)
        strcat(big, "é");
    e = sys("adw_failed", "abc", NULL, big);
    size_t n = webhook_text(&e, "https://d.example", out, sizeof out);
    assert_true(n <= WEBHOOK_TEXT_MAX && n > WEBHOOK_TEXT_MAX - 8);
    assert_int_equal(strlen(out), n);
    assert_int_equal(utf8_validate(out, n), 0);
    const char *tail = " — https://d.example/#/runs/abc";
    assert_string_equal(out + n - strlen(tail), tail);
    /* An entity is never cut in half. */
    memset(big, '&', 400);
    big[400] = '\0';
    e = sys("adw_failed", "abc", NULL, big);
    n = webhook_text(&e, NULL, out, sizeof out);
    assert_true(n <= WEBHOOK_TEXT_MAX);
    const char *amp = strstr(out, ": &amp;");
    assert_non_null(amp);
    assert_int_equal((n - (size_t)(amp + 2 - out)) % 5, 0);
    /* A small buffer: NUL-terminated within it. */
    char small[10];
    n = webhook_text(&e, NULL, small, sizeof small);
    assert_int_equal(n, 9);
    assert_string_equal(small, ":x: Run `");
}

static void test_host(void **state)
{
    (void)state;
    char h[128];
    webhook_host("https://hooks.slack.com/services/T0/B0/secret", h, sizeof h);
    assert_string_equal(h, "hooks.slack.com");
    webhook_host("http://user:pw@a@127.0.0.1:8080/p?q#f", h, sizeof h);
    assert_string_equal(h, "127.0.0.1:8080");
    webhook_host("HTTP://[::1]:9?x", h, sizeof h);
    assert_string_equal(h, "[::1]:9");
    webhook_host("h#frag", h, sizeof h);
    assert_string_equal(h, "h");
    char small[5];
    webhook_host("http://example.org/", small, sizeof small);
    assert_string_equal(small, "exam");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_check), cmocka_unit_test(test_lists),
        cmocka_unit_test(test_backoff),   cmocka_unit_test(test_text),
        cmocka_unit_test(test_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
