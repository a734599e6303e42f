/* libFuzzer driver for the http1 heads and the chunked decoder.
 *
 * Input: one control byte, one split byte, then the message. The control byte picks the head
 * limit, the body cap and whether the bytes are read as a request or a response. Beyond memory
 * safety it checks properties: a head fed in two pieces, or one byte at a time, gets the answer
 * of a one-shot parse; a chunked body fed in two pieces or byte by byte decodes to the same
 * bytes; everything the parser points at lies inside the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "http1_chunked.h"
#include "http1_query.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_in(http1_str_t s, const char *data, size_t len)
{
    if (s.p == NULL) {
        CHECK(s.len == 0);
        return;
    }
    CHECK(s.p >= data && s.p + s.len <= data + len);
}

static void check_headers(const http1_headers_t *h, const char *data, size_t head_len)
{
    CHECK(h->count <= HTTP1_HEADERS_MAX);
    for (size_t i = 0; i < h->count; i++) {
        check_in(h->items[i].name, data, head_len);
        check_in(h->items[i].value, data, head_len);
        CHECK(h->items[i].name.len > 0);
    }
    const http1_str_t *v = http1_header_get(h, "content-length");
    CHECK(v == NULL || (v->p != NULL));
}

/* Decodes a chunked body three ways and checks they agree. */
static void check_chunked(const char *body, size_t len, size_t cut, size_t cap, size_t trailer_max)
{
    http1_chunked_t c;
    http1_error_t e1, e2;
    buf_t whole, split;
    size_t used = 0, u1 = 0, u2 = 0;

    buf_init(&whole, cap);
    http1_chunked_init(&c, trailer_max);
    int want = http1_chunked_feed(&c, body, len, &used, &whole, &e1);
    CHECK(used <= len);
    CHECK(want == 0 || want == -EAGAIN || want == -EBADMSG || want == -E2BIG);
    CHECK(want != -EAGAIN || used == len);
    CHECK(http1_chunked_done(&c) == (want == 0));
    CHECK(cap == 0 || whole.len <= cap);

    cut = len ? cut % (len + 1) : 0;
    buf_init(&split, cap);
    http1_chunked_init(&c, trailer_max);
    int rc = http1_chunked_feed(&c, body, cut, &u1, &split, &e2);
    if (rc == -EAGAIN) {
        CHECK(u1 == cut);
        rc = http1_chunked_feed(&c, body + cut, len - cut, &u2, &split, &e2);
    }
    CHECK(rc == want);
    if (want == 0) {
        CHECK(u1 + u2 == used);
        CHECK(split.len == whole.len);
        CHECK(whole.len == 0 || memcmp(split.data, whole.data, whole.len) == 0);
    } else if (want != -EAGAIN) {
        CHECK(e1.status == e2.status);
        CHECK(strcmp(e1.reason, e2.reason) == 0);
    }
    buf_free(&split);

    /* Byte by byte, bounded to keep the driver fast. */
    if (len <= 4096) {
        buf_init(&split, cap);
        http1_chunked_init(&c, trailer_max);
        size_t total = 0;
        rc = -EAGAIN;
        for (size_t i = 0; i < len && rc == -EAGAIN; i++) {
            size_t u = 0;
            rc = http1_chunked_feed(&c, body + i, 1, &u, &split, &e2);
            total += u;
        }
        CHECK(rc == want);
        if (want == 0) {
            CHECK(total == used);
            CHECK(split.len == whole.len);
        }
        buf_free(&split);
    }
    buf_free(&whole);
}

static void check_request(const char *data, size_t len, size_t cut, size_t head_max, size_t cap)
{
    http1_request_t r, r2;
    http1_error_t e, e2;

    http1_request_init(&r);
    int want = http1_parse_request(&r, data, len, head_max, &e);
    CHECK(want == 0 || want == -EAGAIN || want == -EBADMSG);
    if (want == -EBADMSG)
        CHECK(e.status == 400 || e.status == 431 || e.status == 501 || e.status == 505);

    /* Two pieces. */
    cut = len ? cut % (len + 1) : 0;
    http1_request_init(&r2);
    int rc = http1_parse_request(&r2, data, cut, head_max, &e2);
    if (rc == -EAGAIN)
        rc = http1_parse_request(&r2, data, len, head_max, &e2);
    CHECK(rc == want);
    if (want == -EBADMSG)
        CHECK(e.status == e2.status && strcmp(e.reason, e2.reason) == 0);

    /* One byte at a time over the head (resumed scanning). */
    if (len <= 2048) {
        http1_request_init(&r2);
        rc = -EAGAIN;
        for (size_t k = 1; k <= len && rc == -EAGAIN; k++)
            rc = http1_parse_request(&r2, data, k, head_max, &e2);
        CHECK(rc == want);
        if (want == 0)
            CHECK(r2.head_len == r.head_len);
        if (want == -EBADMSG)
            CHECK(e.status == e2.status && strcmp(e.reason, e2.reason) == 0);
    }
    if (want != 0)
        return;

    size_t hm = head_max ? head_max : HTTP1_HEAD_MAX_DEFAULT;
    CHECK(r.head_len >= 4 && r.head_len <= len && r.head_len <= hm);
    CHECK(memcmp(data + r.head_len - 4, "\r\n\r\n", 4) == 0);
    check_in(r.method, data, r.head_len);
    check_in(r.target, data, r.head_len);
    check_in(r.path, data, r.head_len);
    check_in(r.query, data, r.head_len);
    CHECK(r.method.len > 0 && r.target.len > 0);
    CHECK(r.version_minor == 0 || r.version_minor == 1);
    CHECK(!(r.chunked && r.content_length >= 0));
    CHECK(r.content_length >= -1);
    check_headers(&r.headers, data, r.head_len);

    char out[256];
    (void)http1_path_decode(r.path, out, sizeof out, NULL);
    if (r.query.p) {
        char v[64];
        (void)http1_query_get(r.query, "adw_id", v, sizeof v, NULL);
    }

    const char *body = data + r.head_len;
    size_t blen = len - r.head_len;
    if (r.chunked)
        check_chunked(body, blen, cut, cap, hm);
    else if (r.content_length >= 0 && (uint64_t)r.content_length < blen)
        /* The next pipelined request. */
        check_request(body + r.content_length, blen - (size_t)r.content_length, cut, head_max, cap);
}

static void check_response(const char *data, size_t len, size_t cut, size_t head_max, size_t cap)
{
    http1_response_t r, r2;
    http1_error_t e, e2;

    http1_response_init(&r);
    int want = http1_parse_response(&r, data, len, head_max, &e);
    CHECK(want == 0 || want == -EAGAIN || want == -EBADMSG);

    cut = len ? cut % (len + 1) : 0;
    http1_response_init(&r2);
    int rc = http1_parse_response(&r2, data, cut, head_max, &e2);
    if (rc == -EAGAIN)
        rc = http1_parse_response(&r2, data, len, head_max, &e2);
    CHECK(rc == want);
    if (want == -EBADMSG)
        CHECK(e.status == e2.status);
    if (want != 0)
        return;

    CHECK(r.head_len <= len);
    CHECK(r.status >= 100 && r.status <= 599);
    check_in(r.reason, data, r.head_len);
    check_headers(&r.headers, data, r.head_len);
    CHECK(!(r.chunked && r.content_length >= 0));
    if (r.chunked)
        check_chunked(data + r.head_len, len - r.head_len, cut, cap, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t ctl = data[0];
    size_t cut = data[1] * 7u;
    const char *msg = (const char *)data + 2;
    size_t len = size - 2;

    /* Bits 0-1: head limit; bit 2: body cap; bit 3: a response; bit 4: a chunked body alone. */
    static const size_t head_limits[] = {0, 64, 256, 1024};
    size_t head_max = head_limits[ctl & 3];
    size_t cap = (ctl & 4) ? 32 : 0;

    if (ctl & 16)
        check_chunked(msg, len, cut, cap, head_max);
    else if (ctl & 8)
        check_response(msg, len, cut, head_max, cap);
    else
        check_request(msg, len, cut, head_max, cap);
    return 0;
}
