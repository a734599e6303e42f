/* Unit tests for shared/http1.c: every framing rule accepted and refused, heads and chunked
 * bodies split at every byte, pipelining, the head limit, query and path decoding, the writer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http1.h"
#include "http1_chunked.h"
#include "http1_query.h"

/* ---- helpers ---- */

static int parse_req(const char *s, http1_request_t *r, http1_error_t *e)
{
    http1_request_init(r);
    memset(e, 0, sizeof *e);
    return http1_parse_request(r, s, strlen(s), 0, e);
}

/* Asserts that the request s is refused with status and a reason containing what. */
static void refuse(const char *s, int status, const char *what)
{
    http1_request_t r;
    http1_error_t e;
    int rc = parse_req(s, &r, &e);
    if (rc != -EBADMSG || e.status != status || !strstr(e.reason, what))
        fail_msg("request %s: rc %d status %d reason '%s', wanted %d '%s'", s, rc, e.status,
                 e.reason, status, what);
}

static void accept_req(const char *s, http1_request_t *r)
{
    http1_error_t e;
    int rc = parse_req(s, r, &e);
    if (rc != 0)
        fail_msg("request %s: rc %d status %d reason '%s'", s, rc, e.status, e.reason);
    assert_int_equal(r->head_len, strlen(s));
}

static void assert_str(http1_str_t s, const char *want)
{
    if (!http1_str_eq(s, want))
        fail_msg("got '%.*s', wanted '%s'", (int)s.len, s.p ? s.p : "", want);
}

static int parse_res(const char *s, http1_response_t *r, http1_error_t *e)
{
    http1_response_init(r);
    memset(e, 0, sizeof *e);
    return http1_parse_response(r, s, strlen(s), 0, e);
}

/* ---- request heads: what is accepted ---- */

static void test_request_basic(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("GET /api/events?adw_id=a1&step=build HTTP/1.1\r\n"
               "Host: localhost:8000\r\n"
               "X-ADW-Id: \t abc \t\r\n"
               "Empty:\r\n"
               "\r\n",
               &r);
    assert_str(r.method, "GET");
    assert_str(r.target, "/api/events?adw_id=a1&step=build");
    assert_str(r.path, "/api/events");
    assert_str(r.query, "adw_id=a1&step=build");
    assert_int_equal(r.version_minor, 1);
    assert_int_equal(r.headers.count, 3);
    assert_str(r.headers.items[0].name, "Host");
    assert_str(r.headers.items[0].value, "localhost:8000");
    assert_str(r.headers.items[1].value, "abc");
    assert_str(r.headers.items[2].value, "");
    assert_int_equal(r.content_length, -1);
    assert_int_equal(r.chunked, 0);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.expect_continue, 0);

    const http1_str_t *v = http1_header_get(&r.headers, "x-adw-ID");
    assert_non_null(v);
    assert_str(*v, "abc");
    assert_null(http1_header_get(&r.headers, "x-adw-step"));
    assert_null(http1_header_get(&r.headers, "Hos"));
}

static void test_request_query_absent_and_empty(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_str(r.path, "/healthz");
    assert_null(r.query.p);
    assert_int_equal(r.query.len, 0);

    accept_req("GET /healthz? HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_str(r.path, "/healthz");
    assert_non_null(r.query.p);
    assert_int_equal(r.query.len, 0);

    accept_req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_str(r.target, "*");
    accept_req("GET /a%2Fb%20c?x=%41 HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_str(r.path, "/a%2Fb%20c");
}

static void test_request_content_length(void **state)
{
    (void)state;
    http1_request_t r;
    const char *s = "POST /api/events HTTP/1.1\r\nHost: h\r\ncontent-LENGTH: 5\r\n\r\nhello";
    http1_error_t e;
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, strlen(s), 0, &e), 0);
    assert_int_equal(r.head_len, strlen(s) - 5);
    assert_int_equal(r.content_length, 5);

    accept_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(r.content_length, 0);
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n", &r);
    assert_int_equal(r.content_length, 7);
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", &r);
    assert_int_equal(r.content_length, INT64_MAX);
}

static void test_request_chunked(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &r);
    assert_int_equal(r.chunked, 1);
    assert_int_equal(r.content_length, -1);
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n", &r);
    assert_int_equal(r.chunked, 1);
}

static void test_request_keep_alive(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 1);
    accept_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 0);
    accept_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 0);
    accept_req("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 1);
    accept_req("GET / HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.version_minor, 0);
    assert_int_equal(r.keep_alive, 0);
    accept_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 1);
    accept_req("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.keep_alive, 0);
}

static void test_request_expect(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n",
               &r);
    assert_int_equal(r.expect_continue, 1);
    accept_req("POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", &r);
    assert_int_equal(r.expect_continue, 0);
    accept_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: other\r\n\r\n", &r);
    assert_int_equal(r.expect_continue, 0);
}

static void test_request_headers_max(void **state)
{
    (void)state;
    char s[4096];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP1_HEADERS_MAX - 1; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "H%d: %d\r\n", i, i);
    n += (size_t)snprintf(s + n, sizeof s - n, "Host: h\r\n\r\n");
    http1_request_t r;
    accept_req(s, &r);
    assert_int_equal(r.headers.count, HTTP1_HEADERS_MAX);

    snprintf(s + n - 2, sizeof s - (n - 2), "X: 1\r\n\r\n");
    refuse(s, 431, "too many headers");
}

static void test_header_next(void **state)
{
    (void)state;
    http1_request_t r;
    accept_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-b: 2\r\nX-a: 3\r\n\r\n", &r);
    size_t pos = 0;
    const http1_str_t *v = http1_header_next(&r.headers, "x-a", &pos);
    assert_non_null(v);
    assert_str(*v, "1");
    v = http1_header_next(&r.headers, "x-a", &pos);
    assert_non_null(v);
    assert_str(*v, "3");
    assert_null(http1_header_next(&r.headers, "x-a", &pos));
    assert_null(http1_header_next(&r.headers, "x-a", &pos));
    assert_true(http1_str_eq_nocase(r.headers.items[2].name, "X-B"));
    assert_false(http1_str_eq_nocase(r.headers.items[2].name, "X-Bb"));
}

/* ---- request heads: what is refused ---- */

static void test_request_version(void **state)
{
    (void)state;
    refuse("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "version");
    refuse("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "version");
    refuse("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "version");
    refuse("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400, "malformed HTTP version");
    refuse("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "malformed HTTP version");
    refuse("GET / HTTP/1\r\nHost: h\r\n\r\n", 400, "malformed HTTP version");
    refuse("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "malformed HTTP version");
    refuse("GET /\r\nHost: h\r\n\r\n", 400, "without version");
}

static void test_request_line(void **state)
{
    (void)state;
    refuse("\r\n\r\n", 400, "empty request line");
    refuse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "empty request line");
    refuse("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    refuse(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    refuse("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
    refuse("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "empty request target");
    refuse("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "origin-form");
    refuse("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "origin-form");
    refuse("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "asterisk");
    refuse("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid character in request target");
    refuse("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid character in request target");
    refuse("GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "percent-escape");
    refuse("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, "percent-escape");
    refuse("GET /a?% HTTP/1.1\r\nHost: h\r\n\r\n", 400, "percent-escape");
}

static void test_request_line_endings_and_controls(void **state)
{
    (void)state;
    refuse("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bare LF");
    refuse("GET / HTTP/1.1\r\nHost: h\n\n", 400, "bare LF");
    refuse("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bare LF");
    refuse("\n", 400, "bare LF");
    refuse("GET / HTTP/1.1\rHost: h\r\n\r\n", 400, "CR not followed by LF");
    refuse("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400, "CR not followed by LF");
    refuse("GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n", 400, "control character");
    refuse("GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", 400, "control character");
    refuse("\x16\x03\x01\x02\x00", 400, "control character");

    /* A NUL cannot be written in a C string literal: build it. */
    char s[] = "GET / HTTP/1.1\r\nHost: hX\r\n\r\n";
    *strchr(s, 'X') = '\0';
    http1_request_t r;
    http1_error_t e;
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, sizeof s - 1, 0, &e), -EBADMSG);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.reason, "control character"));

    /* A tab inside a value is fine; obs-text too. */
    accept_req("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xc3\xa9\r\n\r\n", &r);
    assert_str(r.headers.items[1].value, "a\tb \xc3\xa9");
}

static void test_request_header_lines(void **state)
{
    (void)state;
    refuse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding");
    refuse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400, "obsolete line folding");
    refuse("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "obsolete line folding");
    refuse("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "whitespace between header name and colon");
    refuse("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, "whitespace between header name and colon");
    refuse("GET / HTTP/1.1\r\nHost: h\r\nX@Y: 1\r\n\r\n", 400, "invalid character in header name");
    refuse("GET / HTTP/1.1\r\nHost: h\r\nX\"Y: 1\r\n\r\n", 400, "invalid character in header name");
    refuse("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "without colon");
    refuse("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400, "empty header name");
}

static void test_request_host(void **state)
{
    (void)state;
    refuse("GET / HTTP/1.1\r\n\r\n", 400, "missing Host");
    refuse("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 400, "missing Host");
    refuse("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "more than one Host");
    refuse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host");
    http1_request_t r;
    accept_req("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r);
}

static void test_request_framing(void **state)
{
    (void)state;
    refuse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400,
           "more than one Content-Length");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
           "more than one Content-Length");
    const char *bad_cl[] = {"-1",
                            "abc",
                            "",
                            "1 2",
                            "+5",
                            "3,3",
                            "0x10",
                            "1.0",
                            "9223372036854775808",
                            "99999999999999999999999",
                            "\xd9\xa3"};
    for (size_t i = 0; i < sizeof bad_cl / sizeof *bad_cl; i++) {
        char s[256];
        snprintf(s, sizeof s, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n",
                 bad_cl[i]);
        refuse(s, 400, "invalid Content-Length");
    }
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
           "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
           "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501,
           "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           501, "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 501,
           "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501,
           "Transfer-Encoding other than chunked");
    refuse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
}

/* ---- the head limit ---- */

/* Builds a GET head of exactly n bytes (n >= 40) into s. */
static void head_of_size(char *s, size_t n)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    size_t p = strlen(pre);
    memcpy(s, pre, p);
    memset(s + p, 'a', n - p - 4);
    memcpy(s + n - 4, "\r\n\r\n", 4);
    s[n] = '\0';
}

static void test_head_limit(void **state)
{
    (void)state;
    static char s[3 * HTTP1_HEAD_MAX_DEFAULT];
    http1_request_t r;
    http1_error_t e;

    head_of_size(s, HTTP1_HEAD_MAX_DEFAULT);
    accept_req(s, &r);
    head_of_size(s, HTTP1_HEAD_MAX_DEFAULT + 1);
    refuse(s, 431, "head too large");

    /* No complete head yet: refused as soon as the buffered bytes reach the limit. */
    head_of_size(s, 2 * (size_t)HTTP1_HEAD_MAX_DEFAULT);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, HTTP1_HEAD_MAX_DEFAULT - 1, 0, &e), -EAGAIN);
    assert_int_equal(http1_parse_request(&r, s, HTTP1_HEAD_MAX_DEFAULT, 0, &e), -EBADMSG);
    assert_int_equal(e.status, 431);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 2 * (size_t)HTTP1_HEAD_MAX_DEFAULT, 0, &e),
                     -EBADMSG);
    assert_int_equal(e.status, 431);

    /* A caller-given limit. */
    head_of_size(s, 100);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 100, 100, &e), 0);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 100, 99, &e), -EBADMSG);
    assert_int_equal(e.status, 431);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 60, 99, &e), -EAGAIN);

    /* Bytes after a complete head do not count against it (a pipelined body). */
    head_of_size(s, 100);
    memset(s + 100, 'b', HTTP1_HEAD_MAX_DEFAULT);
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 100 + HTTP1_HEAD_MAX_DEFAULT, 0, &e), 0);
    assert_int_equal(r.head_len, 100);

    /* A control character before the limit is reported as such, not as the limit. */
    head_of_size(s, 2 * (size_t)HTTP1_HEAD_MAX_DEFAULT);
    s[200] = '\x01';
    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, 2 * (size_t)HTTP1_HEAD_MAX_DEFAULT, 0, &e),
                     -EBADMSG);
    assert_int_equal(e.status, 400);
}

/* ---- incremental feeding and pipelining ---- */

/* Feeds s one more byte at a time into one request struct: every proper prefix must answer
 * -EAGAIN or the same refusal as the whole; the whole must match a one-shot parse. */
static void feed_every_byte(const char *s, size_t n)
{
    http1_request_t whole, r;
    http1_error_t ew, e;
    http1_request_init(&whole);
    memset(&ew, 0, sizeof ew);
    int want = http1_parse_request(&whole, s, n, 0, &ew);

    http1_request_init(&r);
    int rc = -EAGAIN;
    size_t k;
    for (k = 1; k <= n && rc == -EAGAIN; k++)
        rc = http1_parse_request(&r, s, k, 0, &e);
    assert_int_equal(rc, want);
    if (want == 0) {
        assert_int_equal(k - 1, whole.head_len);
        assert_int_equal(r.head_len, whole.head_len);
        assert_int_equal(r.headers.count, whole.headers.count);
        assert_int_equal(r.content_length, whole.content_length);
        assert_int_equal(r.chunked, whole.chunked);
        assert_int_equal(r.keep_alive, whole.keep_alive);
        assert_true(r.method.p == whole.method.p && r.method.len == whole.method.len);
        assert_true(r.query.p == whole.query.p && r.query.len == whole.query.len);
    } else if (want == -EBADMSG) {
        assert_int_equal(e.status, ew.status);
        assert_string_equal(e.reason, ew.reason);
    }

    /* Also two pieces split at every position, with a fresh struct per split. */
    for (size_t cut = 0; cut <= n; cut++) {
        http1_request_init(&r);
        rc = http1_parse_request(&r, s, cut, 0, &e);
        if (rc == -EAGAIN)
            rc = http1_parse_request(&r, s, n, 0, &e);
        assert_int_equal(rc, want);
        if (want == 0)
            assert_int_equal(r.head_len, whole.head_len);
        else if (want == -EBADMSG)
            assert_int_equal(e.status, ew.status);
    }
}

static void test_request_split_every_byte(void **state)
{
    (void)state;
    const char *heads[] = {
        "GET /api/events?adw_id=a&step=s HTTP/1.1\r\nHost: h\r\nX-A:  1 \r\n\r\n",
        // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one head in two literals
        "POST /api/hooks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX : 1\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\rX: 1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
        feed_every_byte(heads[i], strlen(heads[i]));

    static char big[HTTP1_HEAD_MAX_DEFAULT + 1];
    head_of_size(big, HTTP1_HEAD_MAX_DEFAULT);
    feed_every_byte(big, HTTP1_HEAD_MAX_DEFAULT);
}

static void test_request_pipelined(void **state)
{
    (void)state;
    const char *s = "POST /api/events HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
                    "GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    "GET /next";
    size_t len = strlen(s), off = 0;
    http1_request_t r;
    http1_error_t e;

    http1_request_init(&r);
    assert_int_equal(http1_parse_request(&r, s, len, 0, &e), 0);
    assert_str(r.method, "POST");
    assert_int_equal(r.content_length, 4);
    assert_memory_equal(s + r.head_len, "body", 4);
    off = r.head_len + 4;

    /* The same struct, without init: a completed parse leaves it ready for the next. */
    assert_int_equal(http1_parse_request(&r, s + off, len - off, 0, &e), 0);
    assert_str(r.path, "/healthz");
    assert_int_equal(r.keep_alive, 0);
    off += r.head_len;
    assert_int_equal(http1_parse_request(&r, s + off, len - off, 0, &e), -EAGAIN);
    assert_true(r.scanned > 0);

    /* A stale progress larger than the buffer restarts the scan instead of overrunning. */
    assert_int_equal(http1_parse_request(&r, "GET", 3, 0, &e), -EAGAIN);
}

/* ---- responses ---- */

static void test_response(void **state)
{
    (void)state;
    http1_response_t r;
    http1_error_t e;
    assert_int_equal(parse_res("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.status, 200);
    assert_str(r.reason, "OK");
    assert_int_equal(r.content_length, 12);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.version_minor, 1);

    assert_int_equal(
        parse_res("HTTP/1.1 413 Payload Too Large\r\nTransfer-Encoding: chunked\r\n\r\n", &r, &e),
        0);
    assert_int_equal(r.status, 413);
    assert_str(r.reason, "Payload Too Large");
    assert_int_equal(r.chunked, 1);
    assert_int_equal(r.keep_alive, 1);

    /* Delimited by close. */
    assert_int_equal(parse_res("HTTP/1.1 200 OK\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.content_length, -1);
    assert_int_equal(r.keep_alive, 0);
    /* Bodyless statuses keep the connection. */
    assert_int_equal(parse_res("HTTP/1.1 204 No Content\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(parse_res("HTTP/1.1 100 Continue\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.status, 100);
    assert_int_equal(r.keep_alive, 1);
    /* Empty reasons, with and without the SP. */
    assert_int_equal(parse_res("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.reason.len, 0);
    assert_int_equal(parse_res("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.reason.len, 0);
    /* HTTP/1.0 */
    assert_int_equal(parse_res("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.keep_alive, 0);
    assert_int_equal(
        parse_res("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", &r, &e),
        0);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(
        parse_res("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", &r, &e), 0);
    assert_int_equal(r.keep_alive, 0);
    /* Incremental. */
    http1_response_init(&r);
    assert_int_equal(http1_parse_response(&r, "HTTP/1.1 200 OK\r\n", 17, 0, &e), -EAGAIN);

    struct {
        const char *s;
        int status;
        const char *what;
    } bad[] = {
        {"HTTP/1.1 99 OK\r\n\r\n", 400, "malformed status"},
        {"HTTP/1.1 099 OK\r\n\r\n", 400, "out of range"},
        {"HTTP/1.1 600 OK\r\n\r\n", 400, "out of range"},
        {"HTTP/1.1 2x0 OK\r\n\r\n", 400, "malformed status code"},
        {"HTTP/1.1 2000 OK\r\n\r\n", 400, "malformed status line"},
        {"HTTP/1.1  200 OK\r\n\r\n", 400, "malformed status code"},
        {"HTTP/2.0 200 OK\r\n\r\n", 505, "version"},
        {"HTTP/1.x 200 OK\r\n\r\n", 400, "malformed HTTP version"},
        {"ICY 200 OK\r\n\r\n", 400, "malformed"},
        {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 400, "bare LF"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400,
         "more than one Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "other than chunked"},
        {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding"},
        {"HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 400, "whitespace between"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse_res(bad[i].s, &r, &e);
        if (rc != -EBADMSG || e.status != bad[i].status || !strstr(e.reason, bad[i].what))
            fail_msg("response %s: rc %d status %d '%s'", bad[i].s, rc, e.status, e.reason);
    }
}

/* ---- chunked bodies ---- */

/* Decodes s in one call; returns the feed's answer, the decoded text in out. */
static int dechunk(const char *s, size_t len, buf_t *out, size_t *consumed, http1_error_t *e)
{
    http1_chunked_t c;
    http1_chunked_init(&c, 0);
    return http1_chunked_feed(&c, s, len, consumed, out, e);
}

static void test_chunked_basic(void **state)
{
    (void)state;
    const char *s = "5\r\nhello\r\n"
                    "1;name=value;x=\"q\"\r\n \r\n"
                    "000A ; ext\r\n0123456789\r\n"
                    "0\r\n"
                    "X-Trailer: yes\r\n"
                    "Another:\r\n"
                    "\r\n"
                    "GET / HTTP/1.1";
    buf_t out;
    buf_init(&out, 0);
    size_t used = 0;
    http1_error_t e;
    assert_int_equal(dechunk(s, strlen(s), &out, &used, &e), 0);
    assert_string_equal(out.data, "hello 0123456789");
    assert_int_equal(used, strlen(s) - strlen("GET / HTTP/1.1"));

    /* Empty body, upper-case hex. */
    buf_reset(&out);
    assert_int_equal(dechunk("0\r\n\r\n", 5, &out, &used, &e), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(
        dechunk("1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n", 42, &out, &used, &e), 0);
    assert_int_equal(out.len, 31);
    buf_free(&out);
}

static void test_chunked_after_done_and_error(void **state)
{
    (void)state;
    http1_chunked_t c;
    buf_t out;
    buf_init(&out, 0);
    size_t used = 99;
    http1_error_t e;

    http1_chunked_init(&c, 0);
    assert_int_equal(http1_chunked_done(&c), 0);
    assert_int_equal(http1_chunked_feed(&c, "0\r\n\r\nXYZ", 8, &used, &out, &e), 0);
    assert_int_equal(used, 5);
    assert_int_equal(http1_chunked_done(&c), 1);
    assert_int_equal(http1_chunked_feed(&c, "XYZ", 3, &used, &out, &e), 0);
    assert_int_equal(used, 0);

    http1_chunked_init(&c, 0);
    assert_int_equal(http1_chunked_feed(&c, "3\r\nab", 5, &used, &out, &e), -EAGAIN);
    assert_int_equal(used, 5);
    assert_int_equal(http1_chunked_feed(&c, "", 0, &used, &out, &e), -EAGAIN);
    assert_int_equal(used, 0);
    assert_int_equal(http1_chunked_feed(&c, "cX", 2, &used, &out, &e), -EBADMSG);
    assert_int_equal(used, 1);
    assert_int_equal(e.status, 400);
    assert_int_equal(http1_chunked_feed(&c, "\r\n0\r\n\r\n", 7, &used, &out, &e), -EBADMSG);
    assert_int_equal(used, 0);
    assert_int_equal(http1_chunked_done(&c), 0);
    buf_free(&out);
}

static void chunk_refuse(const char *s, int want_rc, int status, const char *what)
{
    buf_t out;
    buf_init(&out, 0);
    size_t used;
    http1_error_t e = {0};
    int rc = dechunk(s, strlen(s), &out, &used, &e);
    buf_free(&out);
    if (rc != want_rc || e.status != status || !strstr(e.reason, what))
        fail_msg("chunked '%s': rc %d status %d '%s', wanted %d '%s'", s, rc, e.status, e.reason,
                 status, what);
}

static void test_chunked_refused(void **state)
{
    (void)state;
    chunk_refuse("x\r\n", -EBADMSG, 400, "not hex");
    chunk_refuse("\r\n", -EBADMSG, 400, "not hex");
    chunk_refuse(";a\r\n", -EBADMSG, 400, "not hex");
    chunk_refuse("-1\r\n", -EBADMSG, 400, "not hex");
    chunk_refuse("0x5\r\n", -EBADMSG, 400, "invalid character after chunk size");
    chunk_refuse("5 \r\nhello\r\n0\r\n\r\n", -EBADMSG, 400, "invalid character after");
    chunk_refuse("5 x\r\n", -EBADMSG, 400, "invalid character after");
    chunk_refuse("5\nhello", -EBADMSG, 400, "invalid character after");
    chunk_refuse("5\rhello", -EBADMSG, 400, "not ended by CRLF");
    chunk_refuse("5;a\x01\r\n", -EBADMSG, 400, "control character in chunk extension");
    chunk_refuse("5;a\n", -EBADMSG, 400, "control character in chunk extension");
    chunk_refuse("8000000000000000\r\n", -EBADMSG, 400, "overflows");
    chunk_refuse("ffffffffffffffffff\r\n", -EBADMSG, 400, "overflows");
    chunk_refuse("5\r\nhelloX\r\n", -EBADMSG, 400, "not followed by CRLF");
    chunk_refuse("5\r\nhello\rX", -EBADMSG, 400, "not followed by CRLF");
    chunk_refuse("5\r\nhello\n0\r\n\r\n", -EBADMSG, 400, "not followed by CRLF");
    chunk_refuse("0\r\nX: 1\r\n\n", -EBADMSG, 400, "bare LF in trailers");
    chunk_refuse("0\r\n\n", -EBADMSG, 400, "bare LF in trailers");
    chunk_refuse("0\r\n\rX", -EBADMSG, 400, "not ended by CRLF");
    chunk_refuse("0\r\nX: 1\rY", -EBADMSG, 400, "trailer line not ended by CRLF");
    chunk_refuse("0\r\n X: 1\r\n\r\n", -EBADMSG, 400, "obsolete line folding");
    chunk_refuse("0\r\nX : 1\r\n\r\n", -EBADMSG, 400, "whitespace between trailer name");
    chunk_refuse("0\r\nX\r\n\r\n", -EBADMSG, 400, "without colon");
    chunk_refuse("0\r\nX@: 1\r\n\r\n", -EBADMSG, 400, "invalid character in trailer name");
    chunk_refuse("0\r\nX: \x01\r\n\r\n", -EBADMSG, 400, "control character in trailer");

    /* Leading zeros are not an overflow; the size line has its own bound. */
    static char s[HTTP1_CHUNK_LINE_MAX + 64];
    memset(s, '0', 40);
    strcpy(s + 40, "5\r\nhello\r\n0\r\n\r\n");
    buf_t out;
    buf_init(&out, 0);
    size_t used;
    http1_error_t e;
    assert_int_equal(dechunk(s, strlen(s), &out, &used, &e), 0);
    assert_string_equal(out.data, "hello");
    buf_free(&out);
    strcpy(s, "5;");
    memset(s + 2, 'x', HTTP1_CHUNK_LINE_MAX - 2);
    strcpy(s + HTTP1_CHUNK_LINE_MAX, "\r\n");
    chunk_refuse(s, -EBADMSG, 400, "chunk-size line too long");
    s[HTTP1_CHUNK_LINE_MAX - 1] = '\0';
    strcat(s, "\r\nhello\r\n0\r\n\r\n");
    buf_init(&out, 0);
    assert_int_equal(dechunk(s, strlen(s), &out, &used, &e), 0);
    buf_free(&out);
}

static void test_chunked_trailer_limit(void **state)
{
    (void)state;
    char s[256];
    buf_t out;
    buf_init(&out, 0);
    size_t used;
    http1_error_t e;
    http1_chunked_t c;

    /* Trailer section "X: 12345\r\n\r\n" is 12 bytes. */
    strcpy(s, "0\r\nX: 12345\r\n\r\n");
    http1_chunked_init(&c, 12);
    assert_int_equal(http1_chunked_feed(&c, s, strlen(s), &used, &out, &e), 0);
    http1_chunked_init(&c, 11);
    assert_int_equal(http1_chunked_feed(&c, s, strlen(s), &used, &out, &e), -EBADMSG);
    assert_int_equal(e.status, 431);
    assert_int_equal(used, strlen(s) - 1);

    /* The default bound is the default head limit. */
    static char big[2 * HTTP1_HEAD_MAX_DEFAULT];
    strcpy(big, "0\r\nX: ");
    size_t n = strlen(big);
    memset(big + n, 'a', HTTP1_HEAD_MAX_DEFAULT);
    strcpy(big + n + HTTP1_HEAD_MAX_DEFAULT, "\r\n\r\n");
    chunk_refuse(big, -EBADMSG, 431, "trailers too large");
    buf_free(&out);
}

static void test_chunked_body_cap(void **state)
{
    (void)state;
    buf_t out;
    size_t used;
    http1_error_t e;

    /* Exactly at the cap. */
    buf_init(&out, 10);
    assert_int_equal(dechunk("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 27, &out, &used, &e), 0);
    assert_string_equal(out.data, "helloworld");
    buf_free(&out);

    /* A size past the cap is refused when announced, before its data. */
    buf_init(&out, 10);
    assert_int_equal(dechunk("b\r\n", 3, &out, &used, &e), -E2BIG);
    assert_int_equal(e.status, 413);
    assert_int_equal(used, 2);
    buf_free(&out);

    /* Cumulative. */
    buf_init(&out, 10);
    assert_int_equal(dechunk("6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 28, &out, &used, &e),
                     -E2BIG);
    assert_int_equal(e.status, 413);
    assert_int_equal(out.len, 6);
    buf_free(&out);

    /* A huge announced size with a cap. */
    buf_init(&out, 1 << 20);
    assert_int_equal(dechunk("7fffffffffffffff\r\n", 18, &out, &used, &e), -E2BIG);
    buf_free(&out);
}

/* Feeds s to a decoder in two pieces at every cut, and one byte at a time; each must give the
 * one-shot answer and output. */
static void dechunk_split(const char *s)
{
    size_t n = strlen(s);
    buf_t whole, out;
    buf_init(&whole, 0);
    size_t used_whole;
    http1_error_t e;
    int want = dechunk(s, n, &whole, &used_whole, &e);
    int want_status = want ? e.status : 0;

    for (size_t cut = 0; cut <= n; cut++) {
        http1_chunked_t c;
        size_t u1 = 0, u2 = 0;
        buf_init(&out, 0);
        http1_chunked_init(&c, 0);
        int rc = http1_chunked_feed(&c, s, cut, &u1, &out, &e);
        if (rc == -EAGAIN) {
            assert_int_equal(u1, cut);
            rc = http1_chunked_feed(&c, s + cut, n - cut, &u2, &out, &e);
        }
        assert_int_equal(rc, want);
        if (want == 0) {
            assert_int_equal(u1 + u2, used_whole);
            assert_int_equal(out.len, whole.len);
            assert_memory_equal(out.data ? out.data : "", whole.data ? whole.data : "", whole.len);
        } else {
            assert_int_equal(e.status, want_status);
        }
        buf_free(&out);
    }

    http1_chunked_t c;
    http1_chunked_init(&c, 0);
    buf_init(&out, 0);
    int rc = -EAGAIN;
    size_t total = 0, u;
    for (size_t i = 0; i < n && rc == -EAGAIN; i++) {
        rc = http1_chunked_feed(&c, s + i, 1, &u, &out, &e);
        total += u;
    }
    assert_int_equal(rc, want);
    if (want == 0) {
        assert_int_equal(total, used_whole);
        assert_int_equal(out.len, whole.len);
    }
    buf_free(&out);
    buf_free(&whole);
}

static void test_chunked_split_every_byte(void **state)
{
    (void)state;
    dechunk_split("5\r\nhello\r\n1;a=b\r\n,\r\n6 ;x\r\n world\r\n0\r\nT: v\r\nU:\r\n\r\nNEXT");
    dechunk_split("0\r\n\r\n");
    dechunk_split("3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n");
    dechunk_split("3\r\nabcd\r\n0\r\n\r\n");
    dechunk_split("fffffffffffffffff\r\n");
}

/* ---- query strings and paths ---- */

static http1_str_t S(const char *s)
{
    return (http1_str_t){s, strlen(s)};
}

static void test_query_iterate(void **state)
{
    (void)state;
    http1_query_iter_t it;
    char k[32], v[32];
    size_t kl, vl;

    http1_query_iter_init(&it, S("adw_id=a%2Fb&&step=build+1&flag&=x&a=b=c&sp=%20+%2B&"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(k, "adw_id");
    assert_string_equal(v, "a/b");
    assert_int_equal(kl, 6);
    assert_int_equal(vl, 3);
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), 0);
    assert_string_equal(k, "step");
    assert_string_equal(v, "build 1");
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(k, "flag");
    assert_string_equal(v, "");
    assert_int_equal(vl, 0);
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(k, "");
    assert_int_equal(kl, 0);
    assert_string_equal(v, "x");
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(k, "a");
    assert_string_equal(v, "b=c");
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(k, "sp");
    assert_string_equal(v, "  +");
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), -ENOENT);
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), -ENOENT);

    http1_query_iter_init(&it, (http1_str_t){NULL, 0});
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), -ENOENT);
    http1_query_iter_init(&it, S("&&&"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), -ENOENT);

    /* Bytes decoded as they are: %C3%A9 is two bytes of UTF-8. */
    http1_query_iter_init(&it, S("e=%C3%a9"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, &kl, v, sizeof v, &vl), 0);
    assert_string_equal(v, "\xc3\xa9");
}

static void test_query_errors(void **state)
{
    (void)state;
    const char *bad[] = {"a=%",   "a=%4",   "a=%4g",  "a=%g4",      "%=1",
                         "a%0=1", "a=%00",  "a%00=1", "a=x%",       "a=b c",
                         "a=b#c", "a=\x01", "a=\x7f", "a=\xc3\xa9", "a\t=1"};
    char k[16], v[16];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        http1_query_iter_t it;
        http1_query_iter_init(&it, S(bad[i]));
        if (http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL) != -EINVAL)
            fail_msg("query '%s' accepted", bad[i]);
    }

    /* Truncation: a value of size-1 bytes fits, size bytes do not. */
    http1_query_iter_t it;
    http1_query_iter_init(&it, S("k=123456789012345&k=1234567890123456&kkkkkkkkkkkkkkkk=1&x=2"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), 0);
    assert_string_equal(v, "123456789012345");
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), -ENOSPC);
    assert_int_equal(strlen(v), sizeof v - 1); /* still terminated */
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), -ENOSPC);
    /* The iterator moved past the refused pairs. */
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), 0);
    assert_string_equal(k, "x");
    /* %XX counts as one byte. */
    http1_query_iter_init(&it, S("k=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), 0);
    assert_string_equal(v, "AAAAAAAAAAAAAAA");
    /* A malformed escape wins over truncation. */
    http1_query_iter_init(&it, S("k=12345678901234567890%zz"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, v, sizeof v, NULL), -EINVAL);
    /* Size 0. */
    http1_query_iter_init(&it, S("k=v"));
    assert_int_equal(http1_query_next(&it, k, sizeof k, NULL, NULL, 0, NULL), -ENOSPC);
}

static void test_query_get(void **state)
{
    (void)state;
    char v[16];
    size_t vl = 0;
    http1_str_t q = S("step=x&adw_id=first&adw_id=second&a%62=enc&c+d=sp");
    assert_int_equal(http1_query_get(q, "adw_id", v, sizeof v, &vl), 0);
    assert_string_equal(v, "first");
    assert_int_equal(vl, 5);
    assert_int_equal(http1_query_get(q, "ab", v, sizeof v, NULL), 0);
    assert_string_equal(v, "enc");
    assert_int_equal(http1_query_get(q, "c d", v, sizeof v, NULL), 0);
    assert_string_equal(v, "sp");
    assert_int_equal(http1_query_get(q, "adw", v, sizeof v, NULL), -ENOENT);
    assert_int_equal(http1_query_get(q, "adw_id_", v, sizeof v, NULL), -ENOENT);
    assert_int_equal(http1_query_get(q, "", v, sizeof v, NULL), -ENOENT);
    assert_int_equal(http1_query_get((http1_str_t){NULL, 0}, "a", v, sizeof v, NULL), -ENOENT);
    assert_int_equal(http1_query_get(S("=e"), "", v, sizeof v, NULL), 0);
    assert_string_equal(v, "e");

    assert_int_equal(http1_query_get(S("a=1&b=%zz&c=3"), "c", v, sizeof v, NULL), -EINVAL);
    assert_int_equal(http1_query_get(S("a=1&b%=1&c=3"), "c", v, sizeof v, NULL), -EINVAL);
    assert_int_equal(http1_query_get(S("a=1&b=%zz&c=3"), "a", v, sizeof v, NULL), 0);
    assert_int_equal(http1_query_get(S("a=%00"), "a", v, sizeof v, NULL), -EINVAL);
    assert_int_equal(http1_query_get(S("a=1234567890123456"), "a", v, sizeof v, NULL), -ENOSPC);
    assert_int_equal(http1_query_get(S("a=123456789012345"), "a", v, sizeof v, NULL), 0);
}

static void test_path_decode(void **state)
{
    (void)state;
    char out[8];
    size_t n = 0;
    assert_int_equal(http1_path_decode(S("/a%2Fb+"), out, sizeof out, &n), 0);
    assert_string_equal(out, "/a/b+");
    assert_int_equal(n, 5);
    assert_int_equal(http1_path_decode(S("/%7e"), out, sizeof out, NULL), 0);
    assert_string_equal(out, "/~");
    assert_int_equal(http1_path_decode(S("/abcdef"), out, sizeof out, NULL), 0);
    assert_int_equal(http1_path_decode(S("/abcdefg"), out, sizeof out, NULL), -ENOSPC);
    assert_int_equal(http1_path_decode(S("/%00"), out, sizeof out, NULL), -EINVAL);
    assert_int_equal(http1_path_decode(S("/%0"), out, sizeof out, NULL), -EINVAL);
    assert_int_equal(http1_path_decode(S("/%"), out, sizeof out, NULL), -EINVAL);
    assert_int_equal(http1_path_decode(S("/%-1"), out, sizeof out, NULL), -EINVAL);
    assert_int_equal(http1_path_decode(S(""), out, sizeof out, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    assert_int_equal(http1_path_decode(S(""), out, 0, NULL), -ENOSPC);
    assert_int_equal(http1_path_decode(S("/a b"), out, sizeof out, NULL), -EINVAL);
    assert_int_equal(http1_path_decode((http1_str_t){"/a\0b", 4}, out, sizeof out, NULL), -EINVAL);
}

/* ---- the writer ---- */

static void test_write_response_head(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(http1_write_response_head(&b, 200, "application/json", 27, 1, NULL), 0);
    assert_string_equal(b.data, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 27\r\nConnection: keep-alive\r\n\r\n");
    buf_reset(&b);
    assert_int_equal(
        http1_write_response_head(&b, 503, "application/json", 0, 0, "Retry-After: 1\r\nX:\r\n"),
        0);
    assert_string_equal(b.data, "HTTP/1.1 503 Service Unavailable\r\n"
                                "Content-Type: application/json\r\nContent-Length: 0\r\n"
                                "Connection: close\r\nRetry-After: 1\r\nX:\r\n\r\n");
    buf_reset(&b);
    assert_int_equal(http1_write_response_head(&b, 204, NULL, 0, 1, ""), 0);
    assert_string_equal(b.data, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n");

    /* What the writer writes, the parser reads. */
    http1_response_t r;
    http1_error_t e;
    buf_reset(&b);
    assert_int_equal(http1_write_response_head(&b, 431, "text/plain", 5, 0, NULL), 0);
    http1_response_init(&r);
    assert_int_equal(http1_parse_response(&r, b.data, b.len, 0, &e), 0);
    assert_int_equal(r.status, 431);
    assert_str(r.reason, "Request Header Fields Too Large");
    assert_int_equal(r.content_length, 5);
    assert_int_equal(r.keep_alive, 0);

    /* Refusals leave the buffer unchanged. */
    buf_reset(&b);
    buf_puts(&b, "keep");
    assert_int_equal(http1_write_response_head(&b, 99, NULL, 0, 1, NULL), -EINVAL);
    assert_int_equal(http1_write_response_head(&b, 600, NULL, 0, 1, NULL), -EINVAL);
    assert_int_equal(http1_write_response_head(&b, 204, NULL, 1, 1, NULL), -EINVAL);
    assert_int_equal(http1_write_response_head(&b, 100, NULL, 1, 1, NULL), -EINVAL);
    assert_int_equal(http1_write_response_head(&b, 200, "a\r\nX: y", 0, 1, NULL), -EINVAL);
    assert_int_equal(http1_write_response_head(&b, 200, "", 0, 1, NULL), -EINVAL);
    const char *bad_extra[] = {
        "Retry-After: 1", "Retry-After: 1\n", "X: a\r\nY",   "X: a\r\n\r\nbody",
        ": v\r\n",        "X y: 1\r\n",       "X: a\rb\r\n", "\r\n"};
    for (size_t i = 0; i < sizeof bad_extra / sizeof *bad_extra; i++)
        assert_int_equal(http1_write_response_head(&b, 200, NULL, 0, 1, bad_extra[i]), -EINVAL);
    assert_string_equal(b.data, "keep");
    buf_free(&b);

    buf_init(&b, 40);
    buf_puts(&b, "keep");
    assert_int_equal(http1_write_response_head(&b, 200, "application/json", 1, 1, NULL), -E2BIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    buf_free(&b);

    /* Every status the project uses has its phrase; others write an empty one. */
    const int used[] = {100, 200, 204, 400, 401, 403, 404, 405, 408, 411,
                        413, 414, 415, 429, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < sizeof used / sizeof *used; i++)
        assert_true(strlen(http1_status_reason(used[i])) > 0);
    assert_string_equal(http1_status_reason(418), "");
    assert_string_equal(http1_status_reason(100), "Continue");
    assert_string_equal(http1_status_reason(414), "URI Too Long");
    assert_string_equal(http1_status_reason(503), "Service Unavailable");
    assert_string_equal(http1_status_reason(0), "");
    buf_init(&b, 0);
    assert_int_equal(http1_write_response_head(&b, 418, NULL, 0, 1, NULL), 0);
    assert_true(strncmp(b.data, "HTTP/1.1 418 \r\n", 15) == 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_basic),
        cmocka_unit_test(test_request_query_absent_and_empty),
        cmocka_unit_test(test_request_content_length),
        cmocka_unit_test(test_request_chunked),
        cmocka_unit_test(test_request_keep_alive),
        cmocka_unit_test(test_request_expect),
        cmocka_unit_test(test_request_headers_max),
        cmocka_unit_test(test_header_next),
        cmocka_unit_test(test_request_version),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_request_line_endings_and_controls),
        cmocka_unit_test(test_request_header_lines),
        cmocka_unit_test(test_request_host),
        cmocka_unit_test(test_request_framing),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_request_split_every_byte),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_chunked_basic),
        cmocka_unit_test(test_chunked_after_done_and_error),
        cmocka_unit_test(test_chunked_refused),
        cmocka_unit_test(test_chunked_trailer_limit),
        cmocka_unit_test(test_chunked_body_cap),
        cmocka_unit_test(test_chunked_split_every_byte),
        cmocka_unit_test(test_query_iterate),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_path_decode),
        cmocka_unit_test(test_write_response_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
