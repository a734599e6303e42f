/* Unit tests for shared/core/listen: every form the header accepts, and every refusal with its
 * reason and an untouched output. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "listen.h"

static void accepted(const char *text, const char *host, int port)
{
    listen_addr_t a;
    memset(&a, 'x', sizeof a);
    char err[200] = "";
    if (listen_parse(text, &a, err, sizeof err))
        fail_msg("listen_parse refused '%s': %s", text, err);
    assert_string_equal(a.host, host);
    assert_int_equal(a.port, port);
}

static void refused(const char *text, const char *reason)
{
    listen_addr_t a;
    memset(&a, 'x', sizeof a);
    char err[400] = "";
    if (listen_parse(text, &a, err, sizeof err) != -EINVAL)
        fail_msg("listen_parse accepted '%s'", text);
    char want[400];
    snprintf(want, sizeof want, "listen address '%s' %s", text, reason);
    assert_string_equal(err, want);
    for (size_t i = 0; i < sizeof a.host; i++)
        assert_int_equal(a.host[i], 'x');
}

static void test_host_port(void **state)
{
    (void)state;
    accepted("127.0.0.1:8000", "127.0.0.1", 8000);
    accepted("0.0.0.0:8000", "0.0.0.0", 8000); /* stays as written: the caller's choice */
    accepted("localhost:80", "localhost", 80); /* a name is the caller's to resolve */
    accepted("127.0.0.1:0", "127.0.0.1", 0);   /* the kernel chooses */
    accepted("127.0.0.1:65535", "127.0.0.1", 65535);
    accepted("127.0.0.1:00080", "127.0.0.1", 80);
}

static void test_every_interface(void **state)
{
    (void)state;
    accepted(":8000", "", 8000);
    accepted("*:8000", "", 8000);
    accepted("[]:8000", "", 8000);
    accepted("[*]:8000", "", 8000);
}

static void test_ipv6(void **state)
{
    (void)state;
    accepted("[::1]:8000", "::1", 8000);
    accepted("[::]:1", "::", 1);
    accepted("[fe80::1%lo]:9", "fe80::1%lo", 9);
    /* Unbracketed: the host is everything before the last ':'. */
    accepted("::1:8000", "::1", 8000);
    accepted(":::8000", "::", 8000);
}

static void test_refused(void **state)
{
    (void)state;
    refused("", "must be host:port");
    refused("8000", "must be host:port");
    refused("127.0.0.1", "must be host:port");
    refused("127.0.0.1:", "must be host:port");
    refused("[::1]", "must be [IPv6 address]:port");
    refused("[::1]:", "must be host:port");
    refused("[::1:8000", "must be [IPv6 address]:port");
    refused("[::1]x:8000", "must be [IPv6 address]:port");
    refused("[a]b]:80", "must be [IPv6 address]:port");
    refused("a]:80", "must be host:port");
    refused("a[b:80", "must be host:port");
    refused("[a[b]:80", "must be host:port");
    const char *port = "must be host:port with a port of 0-65535";
    refused("127.0.0.1:65536", port);
    refused("127.0.0.1:100000", port);
    refused("127.0.0.1:000080", port); /* at most 5 digits */
    refused("127.0.0.1:http", port);
    refused("127.0.0.1:+80", port);
    refused("127.0.0.1:-1", port);
    refused("127.0.0.1: 80", port);
    refused("127.0.0.1:80 ", port);
    refused("[::1]:8000:9000", port);
}

static void test_host_length(void **state)
{
    (void)state;
    char text[LISTEN_HOST_MAX + 16], host[LISTEN_HOST_MAX];
    memset(host, 'h', LISTEN_HOST_MAX - 1);
    host[LISTEN_HOST_MAX - 1] = '\0';
    snprintf(text, sizeof text, "%s:1", host);
    accepted(text, host, 1);
    snprintf(text, sizeof text, "[%s]:1", host);
    accepted(text, host, 1);
    snprintf(text, sizeof text, "%sh:1", host);
    refused(text, "is too long");
    snprintf(text, sizeof text, "[%sh]:1", host);
    refused(text, "is too long");
}

static void test_reason_buffer(void **state)
{
    (void)state;
    listen_addr_t a;
    assert_int_equal(listen_parse("x", &a, NULL, 0), -EINVAL);
    char small[8];
    assert_int_equal(listen_parse("x", &a, small, sizeof small), -EINVAL);
    assert_string_equal(small, "listen ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_port),   cmocka_unit_test(test_every_interface),
        cmocka_unit_test(test_ipv6),        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_host_length), cmocka_unit_test(test_reason_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
