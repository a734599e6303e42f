/* Unit tests for ingest/pgbin: the exact bytes of PostgreSQL's binary array format (array_recv:
 * ndim, has-null flag, element oid, size and lower bound per dimension, then length-prefixed
 * elements) and of a binary COPY stream (signature, flags, header extension, per-row field
 * count, -1 for NULL, trailer -1). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "pgbin.h"

/* Asserts that b holds exactly the n bytes of want. */
static void assert_bytes(const buf_t *b, const void *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static void test_int8_array(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    buf_append(&b, "junk", 4); /* begin starts afresh */
    assert_int_equal(pgbin_array_begin(&b, PGBIN_OID_INT8), 0);
    assert_int_equal(pgbin_int8(&b, 1), 0);
    assert_int_equal(pgbin_int8(&b, -2), 0);
    assert_int_equal(pgbin_int8(&b, INT64_MAX), 0);
    pgbin_array_end(&b, 3, 0);
    // clang-format off
    static const unsigned char want[] = {
        0, 0, 0, 1,  /* ndim */
        0, 0, 0, 0,  /* has no NULL */
        0, 0, 0, 20, /* int8 */
        0, 0, 0, 3,  /* size */
        0, 0, 0, 1,  /* lower bound */
        0, 0, 0, 8,  0,    0,    0,    0,    0,    0,    0,    1,
        0, 0, 0, 8,  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        0, 0, 0, 8,  0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    // clang-format on
    assert_bytes(&b, want, sizeof want);
    buf_free(&b);
}

static void test_text_array_with_null(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    int has_null = 0;
    assert_int_equal(pgbin_array_begin(&b, PGBIN_OID_TEXT), 0);
    assert_int_equal(pgbin_text(&b, "ab", &has_null), 0);
    assert_int_equal(has_null, 0);
    assert_int_equal(pgbin_text(&b, NULL, &has_null), 0);
    assert_int_equal(has_null, 1);
    assert_int_equal(pgbin_text(&b, "", &has_null), 0);
    pgbin_array_end(&b, 3, has_null);
    // clang-format off
    static const unsigned char want[] = {
        0, 0, 0, 1,             /* ndim */
        0, 0, 0, 1,             /* has a NULL */
        0, 0, 0, 25,            /* text */
        0, 0, 0, 3,             /* size */
        0, 0, 0, 1,             /* lower bound */
        0, 0, 0, 2, 'a', 'b',   /* "ab" */
        0xff, 0xff, 0xff, 0xff, /* NULL */
        0, 0, 0, 0,             /* "" */
    };
    // clang-format on
    assert_bytes(&b, want, sizeof want);
    buf_free(&b);
}

static void test_empty_array(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(pgbin_array_empty(&b, PGBIN_OID_JSONB), 0);
    /* No dimensions, no NULL, jsonb (3802). */
    static const unsigned char want[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0e, 0xda};
    assert_bytes(&b, want, sizeof want);
    buf_free(&b);
}

static void test_scalars(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    /* float8: the IEEE 754 bits, big-endian. */
    assert_int_equal(pgbin_float8(&b, 1.5), 0);
    assert_int_equal(pgbin_float8(&b, -0.0), 0);
    /* timestamptz: microseconds since 2000-01-01. */
    assert_int_equal(pgbin_timestamptz(&b, PGBIN_EPOCH_US), 0);
    assert_int_equal(pgbin_timestamptz(&b, PGBIN_EPOCH_US + 1000000), 0);
    assert_int_equal(pgbin_timestamptz(&b, 0), 0); /* 1970: before PostgreSQL's zero */
    assert_int_equal(pgbin_null(&b), 0);
    /* boolean: one byte, 1 or 0. */
    assert_int_equal(pgbin_bool(&b, 1), 0);
    assert_int_equal(pgbin_bool(&b, 0), 0);
    assert_int_equal(pgbin_bool(&b, 42), 0);
    // clang-format off
    static const unsigned char want[] = {
        0, 0, 0, 8,  0x3f, 0xf8, 0,    0,    0,    0,    0,    0,    /* 1.5 */
        0, 0, 0, 8,  0x80, 0,    0,    0,    0,    0,    0,    0,    /* -0.0 */
        0, 0, 0, 8,  0,    0,    0,    0,    0,    0,    0,    0,    /* 2000-01-01 */
        0, 0, 0, 8,  0,    0,    0,    0,    0,    0x0f, 0x42, 0x40, /* a second later */
        0, 0, 0, 8,  0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, /* -946684800000000 */
        0xff, 0xff, 0xff, 0xff,                                      /* NULL */
        0, 0, 0, 1,  1,                                              /* true */
        0, 0, 0, 1,  0,                                              /* false */
        0, 0, 0, 1,  1,                                              /* nonzero: true */
    };
    // clang-format on
    assert_bytes(&b, want, sizeof want);
    buf_free(&b);
}

static void test_jsonb(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    json_t *doc = json_pack("{s:s}", "a", "x");
    assert_non_null(doc);
    assert_int_equal(pgbin_jsonb(&b, doc, "\"id\":7"), 0);
    static const char body[] = "{\"id\":7,\"a\":\"x\"}";
    unsigned char want[4 + 1 + sizeof body - 1] = {0, 0, 0, (unsigned char)(sizeof body)};
    want[4] = 1; /* the jsonb version; the length counts it */
    memcpy(want + 5, body, sizeof body - 1);
    assert_bytes(&b, want, sizeof want);
    /* Not an object: refused. */
    json_t *arr = json_array();
    buf_reset(&b);
    assert_int_not_equal(pgbin_jsonb(&b, arr, NULL), 0);
    json_decref(arr);
    json_decref(doc);
    buf_free(&b);
}

static void test_copy_stream(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    int has_null = 0;
    buf_append(&b, "junk", 4); /* begin starts afresh */
    assert_int_equal(pgbin_copy_begin(&b), 0);
    assert_int_equal(b.len, PGBIN_COPY_HEADER_LEN);
    assert_int_equal(pgbin_copy_row(&b, 2), 0);
    assert_int_equal(pgbin_int8(&b, 5), 0);
    assert_int_equal(pgbin_text(&b, NULL, &has_null), 0);
    assert_int_equal(pgbin_copy_row(&b, 2), 0);
    assert_int_equal(pgbin_int8(&b, 6), 0);
    assert_int_equal(pgbin_text(&b, "z", &has_null), 0);
    assert_int_equal(pgbin_copy_end(&b), 0);
    // clang-format off
    static const unsigned char want[] = {
        'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, /* signature */
        0, 0, 0, 0,                                             /* flags */
        0, 0, 0, 0,                                             /* header extension */
        0, 2,                                                   /* a row of two fields */
        0, 0, 0, 8,  0, 0, 0, 0, 0, 0, 0, 5,
        0xff, 0xff, 0xff, 0xff,                                 /* NULL */
        0, 2,
        0, 0, 0, 8,  0, 0, 0, 0, 0, 0, 0, 6,
        0, 0, 0, 1,  'z',
        0xff, 0xff,                                             /* trailer */
    };
    // clang-format on
    assert_bytes(&b, want, sizeof want);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_array),  cmocka_unit_test(test_text_array_with_null),
        cmocka_unit_test(test_empty_array), cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_jsonb),       cmocka_unit_test(test_copy_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
