/* Unit tests for ingest/gunzip.c: gzip bodies inflated under a cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST /* next_in is const: the input is never written */
#include <zlib.h>

#include "buf.h"
#include "gunzip.h"

/* gzip of n bytes at p, into a new buffer (*outlen bytes). */
static unsigned char *gz(const void *p, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (const Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void test_roundtrip(void **state)
{
    (void)state;
    const char text[] = "{\"resourceLogs\":[]}";
    size_t n;
    unsigned char *g = gz(text, sizeof text - 1, &n);
    buf_t b;
    buf_init(&b, 0);
    char err[128];
    assert_int_equal(gunzip_body((char *)g, n, 1 << 20, &b, err, sizeof err), 0);
    assert_int_equal(b.len, sizeof text - 1);
    assert_memory_equal(b.data, text, b.len);
    /* exactly at the cap is fine, one byte under it is not */
    assert_int_equal(gunzip_body((char *)g, n, sizeof text - 1, &b, err, sizeof err), 0);
    assert_int_equal(gunzip_body((char *)g, n, sizeof text - 2, &b, err, sizeof err), -EFBIG);
    /* two members back to back: one body */
    unsigned char *two = malloc(2 * n);
    memcpy(two, g, n);
    memcpy(two + n, g, n);
    assert_int_equal(gunzip_body((char *)two, 2 * n, 1 << 20, &b, err, sizeof err), 0);
    assert_int_equal(b.len, 2 * (sizeof text - 1));
    free(two);
    free(g);
    buf_free(&b);
}

static void test_bomb(void **state)
{
    (void)state;
    size_t big = 16u << 20; /* 16 MiB of zeros */
    char *zeros = calloc(1, big);
    size_t n;
    unsigned char *g = gz(zeros, big, &n);
    free(zeros);
    assert_true(n < 40000);
    buf_t b;
    buf_init(&b, 0);
    char err[128];
    assert_int_equal(gunzip_body((char *)g, n, 1 << 20, &b, err, sizeof err), -EFBIG);
    assert_true(b.len <= 1 << 20);
    assert_true(b.cap <= 2u << 20); /* the buffer grows no further than the cap needs */
    free(g);
    buf_free(&b);
}

static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    char text[3000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + (i * 7919) % 26);
    size_t n;
    unsigned char *g = gz(text, sizeof text, &n);
    buf_t b;
    buf_init(&b, 0);
    char err[128];
    for (size_t cut = 0; cut < n; cut++) {
        int rc = gunzip_body((char *)g, cut, 1 << 20, &b, err, sizeof err);
        if (rc != -EINVAL)
            fail_msg("cut at %zu of %zu: %d", cut, n, rc);
    }
    assert_int_equal(gunzip_body((char *)g, n - 1, 1 << 20, &b, err, sizeof err), -EINVAL);
    assert_string_equal(err, "truncated gzip body");
    /* a flipped byte in the deflate data or the CRC */
    g[n / 2] ^= 0x55;
    assert_int_equal(gunzip_body((char *)g, n, 1 << 20, &b, err, sizeof err), -EINVAL);
    g[n / 2] ^= 0x55;
    g[n - 6] ^= 1;
    assert_int_equal(gunzip_body((char *)g, n, 1 << 20, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "corrupt"));
    g[n - 6] ^= 1;
    /* garbage after a member */
    unsigned char *tail = malloc(n + 4);
    memcpy(tail, g, n);
    memcpy(tail + n, "junk", 4);
    assert_int_equal(gunzip_body((char *)tail, n + 4, 1 << 20, &b, err, sizeof err), -EINVAL);
    free(tail);
    assert_int_equal(gunzip_body("{\"a\":1}", 7, 1 << 20, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "corrupt"));
    free(g);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_truncated_and_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
