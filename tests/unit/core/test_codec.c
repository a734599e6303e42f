/* Unit tests for shared/codec: JSON -> msgpack -> JSON round trips, the exact msgpack forms
 * produced, every refusal of the msgpack decoder (with its offset), allocation-free refusal
 * of length bombs, and the JSON parser's limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <msgpack.h>

#include "codec.h"
#include "jsonw.h"
#include "adw_limits.h"

/* ---- helpers ---- */

static json_t *parse_ok(const char *text)
{
    json_t *v = NULL;
    char err[160];
    int rc = codec_json_parse(text, strlen(text), &v, err, sizeof err);
    if (rc)
        fail_msg("parse failed: %s: %s", text, err);
    return v;
}

static char *to_json(const json_t *v)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_value(&b, v), 0);
    return buf_steal(&b, NULL);
}

/* Decodes the n bytes and expects failure with a reason containing want. */
static void decode_fails(const void *p, size_t n, const char *want)
{
    json_t *v = (json_t *)0x1;
    char err[160] = "";
    int rc = codec_msgpack_decode(p, n, &v, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("want -EINVAL with \"%s\", got %d \"%s\"", want, rc, err);
    assert_null(v);
}

#define DECODE_FAILS(lit, want) decode_fails(lit, sizeof(lit) - 1, want)

static json_t *decode_ok(const void *p, size_t n)
{
    json_t *v = NULL;
    char err[160] = "";
    int rc = codec_msgpack_decode(p, n, &v, err, sizeof err);
    if (rc)
        fail_msg("decode failed: %d %s", rc, err);
    return v;
}

#define DECODE_OK(lit) decode_ok(lit, sizeof(lit) - 1)

static void encode_is(json_t *v, const char *want, size_t wantlen)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(codec_msgpack_to_buf(&b, v), 0);
    assert_int_equal(b.len, wantlen);
    assert_memory_equal(b.data, want, wantlen);
    buf_free(&b);
    json_decref(v);
}

#define ENCODE_IS(v, lit) encode_is(v, lit, sizeof(lit) - 1)

/* ---- round trips ---- */

static const char *round_trip_docs[] = {
    "null",
    "true",
    "false",
    "0",
    "-1",
    "127",
    "128",
    "255",
    "256",
    "-32",
    "-33",
    "-128",
    "-129",
    "32767",
    "32768",
    "-32768",
    "-32769",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "0.1",
    "1.0",
    "-0.0",
    "1e300",
    "-1e-300",
    "5e-324",
    "1.7976931348623157e308",
    "0.30000000000000004",
    "\"\"",
    "\"plain\"",
    "\"h\\u00e9llo \\u20ac \\ud83d\\ude00 \xe4\xb8\xad\xe6\x96\x87\"",
    "\"quote \\\" backslash \\\\ slash / controls \\n\\t\\r\\b\\f\\u0001\\u001f\"",
    "[]",
    "{}",
    "[[[]]]",
    "[1,\"a\",null,true,false,1.5,{},[]]",
    ("{\"id\":1042,\"type\":\"adw_event\",\"adw_id\":\"a1b2c3d4\",\"step\":\"build\","
     "\"event_type\":\"ToolUseBlock\",\"timestamp\":\"2026-01-01T14:30:00Z\","
     "\"received_at\":\"2026-11-26T06:00:00.123456Z\",\"summary\":\"Writing auth middleware\","
     "\"payload\":{\"tool_name\":\"Write\",\"file_path\":\"/src/middleware/auth.py\","
     "\"duration_ms\":45,\"cost_usd\":0.0123,\"tokens\":[1,2,3]}}"),
    "{\"z\":1,\"a\":2,\"m\":3,\"\":4,\"\xc3\xa9\":5}",
    "{\"nested\":{\"deeper\":{\"deepest\":[{\"k\":[null]}]}}}",
};

static void check_round_trip(const char *text)
{
    json_t *a = parse_ok(text);
    buf_t mp;
    buf_init(&mp, 0);
    assert_int_equal(codec_msgpack_to_buf(&mp, a), 0);
    json_t *b = decode_ok(mp.data, mp.len);
    if (!json_equal(a, b))
        fail_msg("round trip changed %s", text);
    /* Same text, same bytes: key order and real forms survive. */
    char *ja = to_json(a), *jb = to_json(b);
    assert_string_equal(ja, jb);
    buf_t mp2;
    buf_init(&mp2, 0);
    assert_int_equal(codec_msgpack_to_buf(&mp2, b), 0);
    assert_int_equal(mp2.len, mp.len);
    assert_memory_equal(mp2.data, mp.data, mp.len);
    /* The JSON text parses back to the same value. */
    json_t *c = parse_ok(ja);
    assert_true(json_equal(a, c));
    free(ja);
    free(jb);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    buf_free(&mp);
    buf_free(&mp2);
}

static void test_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof round_trip_docs / sizeof round_trip_docs[0]; i++)
        check_round_trip(round_trip_docs[i]);
}

/* Reals survive bit for bit (json_equal cannot tell -0.0 from 0.0). */
static void test_reals_bit_exact(void **state)
{
    (void)state;
    static const double reals[] = {0.1,
                                   -0.0,
                                   0.0,
                                   1e300,
                                   5e-324,
                                   -5e-324,
                                   1.0,
                                   1.0 / 3.0,
                                   2.2250738585072014e-308,
                                   1.7976931348623157e308};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *r = json_real(reals[i]);
        buf_t mp;
        buf_init(&mp, 0);
        assert_int_equal(codec_msgpack_to_buf(&mp, r), 0);
        json_t *back = decode_ok(mp.data, mp.len);
        assert_true(json_is_real(back));
        double d = json_real_value(back);
        assert_memory_equal(&d, &reals[i], sizeof d);
        /* And through JSON text. */
        char *text = to_json(r);
        json_t *back2 = parse_ok(text);
        assert_true(json_is_real(back2));
        d = json_real_value(back2);
        assert_memory_equal(&d, &reals[i], sizeof d);
        free(text);
        json_decref(back2);
        json_decref(back);
        json_decref(r);
        buf_free(&mp);
    }
}

/* ---- exact encodings ---- */

static void test_encode_forms(void **state)
{
    (void)state;
    ENCODE_IS(json_null(), "\xc0");
    ENCODE_IS(json_false(), "\xc2");
    ENCODE_IS(json_true(), "\xc3");
    ENCODE_IS(json_integer(0), "\x00");
    ENCODE_IS(json_integer(127), "\x7f");
    ENCODE_IS(json_integer(128), "\xcc\x80");
    ENCODE_IS(json_integer(256), "\xcd\x01\x00");
    ENCODE_IS(json_integer(65536), "\xce\x00\x01\x00\x00");
    ENCODE_IS(json_integer(4294967296LL), "\xcf\x00\x00\x00\x01\x00\x00\x00\x00");
    ENCODE_IS(json_integer(INT64_MAX), "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff");
    ENCODE_IS(json_integer(-1), "\xff");
    ENCODE_IS(json_integer(-32), "\xe0");
    ENCODE_IS(json_integer(-33), "\xd0\xdf");
    ENCODE_IS(json_integer(-129), "\xd1\xff\x7f");
    ENCODE_IS(json_integer(-32769), "\xd2\xff\xff\x7f\xff");
    ENCODE_IS(json_integer(INT64_MIN), "\xd3\x80\x00\x00\x00\x00\x00\x00\x00");
    ENCODE_IS(json_real(0.1), "\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a");
    ENCODE_IS(json_real(-0.0), "\xcb\x80\x00\x00\x00\x00\x00\x00\x00");
    ENCODE_IS(json_real(1.0), "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00");
    ENCODE_IS(json_string(""), "\xa0");
    ENCODE_IS(json_string("a"), "\xa1\x61");
    ENCODE_IS(json_string("0123456789abcdef0123456789abcdef"), "\xd9\x20"
                                                               "0123456789abcdef0123456789abcdef");
    ENCODE_IS(json_array(), "\x90");
    ENCODE_IS(json_object(), "\x80");
    ENCODE_IS(json_pack("{s:i,s:[n]}", "b", 1, "a"), "\x82\xa1\x62\x01\xa1\x61\x91\xc0");

    /* Sizes switching to the 16-bit forms. */
    json_t *arr = json_array();
    for (int i = 0; i < 16; i++)
        json_array_append_new(arr, json_integer(i));
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(codec_msgpack_to_buf(&b, arr), 0);
    assert_int_equal(b.len, 3 + 16);
    assert_memory_equal(b.data, "\xdc\x00\x10", 3);
    json_decref(arr);
    char s256[257];
    memset(s256, 'x', 256);
    s256[256] = '\0';
    json_t *str = json_string(s256);
    buf_reset(&b);
    assert_int_equal(codec_msgpack_to_buf(&b, str), 0);
    assert_int_equal(b.len, 3 + 256);
    assert_memory_equal(b.data, "\xda\x01\x00", 3);
    json_decref(str);
    buf_free(&b);
}

/* codec_msgpack_encode with msgpack's own sbuffer gives the same bytes as the buf_t form. */
static void test_encode_sbuffer(void **state)
{
    (void)state;
    json_t *v = parse_ok(round_trip_docs[43]);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(codec_msgpack_encode(&pk, v), 0);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(codec_msgpack_to_buf(&b, v), 0);
    assert_int_equal(sb.size, b.len);
    assert_memory_equal(sb.data, b.data, b.len);
    msgpack_sbuffer_destroy(&sb);
    buf_free(&b);
    json_decref(v);
}

static void test_encode_cap(void **state)
{
    (void)state;
    json_t *v = parse_ok("{\"a\":[1,2,3,\"four\"],\"b\":0.5}");
    buf_t full;
    buf_init(&full, 0);
    assert_int_equal(codec_msgpack_to_buf(&full, v), 0);
    for (size_t cap = 2; cap < full.len + 2; cap++) {
        buf_t b;
        buf_init(&b, cap);
        assert_int_equal(buf_puts(&b, "XY"), 0);
        assert_int_equal(codec_msgpack_to_buf(&b, v), -E2BIG);
        assert_int_equal(b.len, 2);
        buf_free(&b);
    }
    buf_free(&full);
    json_decref(v);
}

/* ---- decoding ---- */

static void test_decode_forms(void **state)
{
    (void)state;
    json_t *v;

    /* Non-canonical but valid forms are accepted. */
    v = DECODE_OK("\xcc\x05");
    assert_int_equal(json_integer_value(v), 5);
    json_decref(v);
    v = DECODE_OK("\xd0\x80");
    assert_int_equal(json_integer_value(v), -128);
    json_decref(v);
    v = DECODE_OK("\xd1\x80\x00");
    assert_int_equal(json_integer_value(v), -32768);
    json_decref(v);
    v = DECODE_OK("\xd2\x80\x00\x00\x00");
    assert_int_equal(json_integer_value(v), INT32_MIN);
    json_decref(v);
    v = DECODE_OK("\xd3\x80\x00\x00\x00\x00\x00\x00\x00");
    assert_true(json_integer_value(v) == INT64_MIN);
    json_decref(v);
    v = DECODE_OK("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff");
    assert_true(json_integer_value(v) == INT64_MAX);
    json_decref(v);
    v = DECODE_OK("\xce\xff\xff\xff\xff");
    assert_true(json_integer_value(v) == 4294967295LL);
    json_decref(v);
    v = DECODE_OK("\xca\x3f\xc0\x00\x00"); /* float32 1.5 */
    assert_true(json_is_real(v) && json_real_value(v) == 1.5);
    json_decref(v);
    v = DECODE_OK("\xd9\x01x");
    assert_string_equal(json_string_value(v), "x");
    json_decref(v);
    v = DECODE_OK("\xda\x00\x01x");
    assert_string_equal(json_string_value(v), "x");
    json_decref(v);
    v = DECODE_OK("\xdb\x00\x00\x00\x01x");
    assert_string_equal(json_string_value(v), "x");
    json_decref(v);
    v = DECODE_OK("\xdc\x00\x01\xc3");
    assert_true(json_is_array(v) && json_array_size(v) == 1);
    json_decref(v);
    v = DECODE_OK("\xdd\x00\x00\x00\x00");
    assert_true(json_is_array(v) && json_array_size(v) == 0);
    json_decref(v);
    v = DECODE_OK("\xde\x00\x01\xa1k\xc0");
    assert_true(json_is_null(json_object_get(v, "k")));
    json_decref(v);
    v = DECODE_OK("\xdf\x00\x00\x00\x01\xd9\x01k\x01");
    assert_int_equal(json_integer_value(json_object_get(v, "k")), 1);
    json_decref(v);
    /* Map keys in wire order. */
    v = DECODE_OK("\x83\xa1z\x01\xa1\x61\x02\xa1m\x03");
    char *t = to_json(v);
    assert_string_equal(t, "{\"z\":1,\"a\":2,\"m\":3}");
    free(t);
    json_decref(v);
}

static void test_decode_errors(void **state)
{
    (void)state;
    DECODE_FAILS("", "empty frame");
    DECODE_FAILS("\xc0\xc0", "trailing bytes after the value at byte 1");
    DECODE_FAILS("\x91\xc0\x00", "trailing bytes after the value at byte 2");
    DECODE_FAILS("\xc1", "invalid type byte 0xc1 at byte 0");
    DECODE_FAILS("\x91\xc1", "invalid type byte 0xc1 at byte 1");
    /* Integers. */
    DECODE_FAILS("\xcf\x80\x00\x00\x00\x00\x00\x00\x00", "integer out of range at byte 0");
    DECODE_FAILS("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "integer out of range at byte 0");
    DECODE_FAILS("\x92\x01\xcf\x80\x00\x00\x00\x00\x00\x00\x00", "integer out of range at byte 2");
    /* Reals. */
    DECODE_FAILS("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", "NaN or infinite real at byte 0");
    DECODE_FAILS("\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", "NaN or infinite real");
    DECODE_FAILS("\xcb\xff\xf0\x00\x00\x00\x00\x00\x00", "NaN or infinite real");
    DECODE_FAILS("\xca\x7f\xc0\x00\x00", "NaN or infinite real");
    DECODE_FAILS("\xca\xff\x80\x00\x00", "NaN or infinite real");
    /* Strings. */
    DECODE_FAILS("\xa2\xc3\x28", "invalid UTF-8 in string at byte 0");
    DECODE_FAILS("\xa2\xc0\x80", "invalid UTF-8 in string");         /* overlong NUL */
    DECODE_FAILS("\xa3\xed\xa0\x80", "invalid UTF-8 in string");     /* surrogate */
    DECODE_FAILS("\xa4\xf4\x90\x80\x80", "invalid UTF-8 in string"); /* > U+10FFFF */
    DECODE_FAILS("\xa1\xff", "invalid UTF-8 in string");
    DECODE_FAILS("\xa3\x61\x00\x62", "NUL byte in string at byte 0");
    DECODE_FAILS("\x81\xa3k\x00k\x01", "NUL byte in string at byte 1");
    DECODE_FAILS("\x81\xa1\xff\x01", "invalid UTF-8 in string at byte 1");
    /* bin and ext. */
    DECODE_FAILS("\xc4\x01\x00", "binary not supported at byte 0");
    DECODE_FAILS("\xc5\x00\x01\x00", "binary not supported");
    DECODE_FAILS("\xc6\x00\x00\x00\x01\x00", "binary not supported");
    DECODE_FAILS("\xd4\x01\x00", "extension type not supported at byte 0");
    DECODE_FAILS("\xd5\x01\x00\x00", "extension type not supported");
    DECODE_FAILS("\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00", "extension type not supported");
    DECODE_FAILS("\xd8\x01", "extension type not supported");
    DECODE_FAILS("\xc7\x01\x05\x00", "extension type not supported");
    DECODE_FAILS("\xc8\x00\x01\x05\x00", "extension type not supported");
    DECODE_FAILS("\xc9\x00\x00\x00\x01\x05\x00", "extension type not supported");
    DECODE_FAILS("\xd6\xff\x00\x00\x00\x00", "timestamp extension not supported at byte 0");
    DECODE_FAILS("\xd7\xff\x00\x00\x00\x00\x00\x00\x00\x00", "timestamp extension not supported");
    DECODE_FAILS("\xc7\x0c\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                 "timestamp extension not supported");
    /* Maps. */
    DECODE_FAILS("\x82\xa1\x61\x01\xa1\x61\x02", "duplicate key \"a\" at byte 4");
    DECODE_FAILS("\x81\x01\x02", "map key is not a string at byte 1");
    DECODE_FAILS("\x81\xc0\x02", "map key is not a string at byte 1");
    DECODE_FAILS("\x81\x91\xa0\x02", "map key is not a string at byte 1");
    DECODE_FAILS("\x81\xc4\x01k\x02", "map key is not a string at byte 1");
}

/* Every prefix of a valid frame is refused cleanly, without leaks. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    json_t *v = parse_ok(round_trip_docs[43]);
    json_array_append_new(json_object_get(json_object_get(v, "payload"), "tokens"),
                          json_real(0.25));
    json_object_set_new(v, "big", json_integer(INT64_MIN));
    json_object_set_new(v, "f", json_pack("[i,i,i,i]", 200, 70000, -200, -70000));
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(codec_msgpack_to_buf(&b, v), 0);
    for (size_t n = 0; n < b.len; n++) {
        json_t *out = (json_t *)0x1;
        char err[160] = "";
        assert_int_equal(codec_msgpack_decode(b.data, n, &out, err, sizeof err), -EINVAL);
        assert_null(out);
        assert_true(strlen(err) > 0);
    }
    json_t *whole = decode_ok(b.data, b.len);
    assert_true(json_equal(whole, v));
    json_decref(whole);
    buf_free(&b);
    json_decref(v);

    /* Each long form cut short. */
    static const struct {
        const char *frame;
        size_t len;
    } forms[] = {
        {"\xd9\x03\x61\x62\x63", 5},
        {"\xda\x00\x03\x61\x62\x63", 6},
        {"\xdb\x00\x00\x00\x03\x61\x62\x63", 8},
        {"\xdc\x00\x02\xc0\xc0", 5},
        {"\xdd\x00\x00\x00\x02\xc0\xc0", 7},
        {"\xde\x00\x01\xa1k\xc0", 6},
        {"\xdf\x00\x00\x00\x01\xa1k\xc0", 8},
        {"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9},
        {"\xca\x3f\xc0\x00\x00", 5},
        {"\xcd\x01\x00", 3},
        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        json_t *ok = decode_ok(forms[i].frame, forms[i].len);
        json_decref(ok);
        for (size_t n = 0; n < forms[i].len; n++)
            decode_fails(forms[i].frame, n, n ? "at byte " : "empty frame");
    }
}

/* Allocation counting through jansson's allocator hooks. */
static size_t alloc_count;

static void *counting_malloc(size_t n)
{
    alloc_count++;
    return malloc(n);
}

static void test_bombs_refused_without_allocating(void **state)
{
    (void)state;
    static const struct {
        const char *frame;
        size_t len;
        const char *want;
    } bombs[] = {
        {"\xdc\xff\xff", 3, "array longer than the frame at byte 0"},
        {"\xdd\xff\xff\xff\xff", 5, "array longer than the frame at byte 0"},
        {"\xde\xff\xff", 3, "map longer than the frame at byte 0"},
        {"\xdf\xff\xff\xff\xff", 5, "map longer than the frame at byte 0"},
        {"\xd9\xff", 2, "string longer than the frame at byte 0"},
        {"\xda\xff\xff", 3, "string longer than the frame at byte 0"},
        {"\xdb\xff\xff\xff\xff", 5, "string longer than the frame at byte 0"},
        {"\xc4\xff", 2, "binary not supported at byte 0"},
        {"\xc5\xff\xff", 3, "binary not supported at byte 0"},
        {"\xc6\xff\xff\xff\xff", 5, "binary not supported at byte 0"},
        {"\xc9\xff\xff\xff\xff\x01", 6, "extension type not supported at byte 0"},
        /* A map of N needs 2N bytes: N bytes are not enough. */
        {"\x82\xa1k\xc0", 4, "map longer than the frame at byte 0"},
        {"\xde\x00\x03\xa1k\xc0\xa1j", 8, "map longer than the frame at byte 0"},
        /* An array one element short of its claim. */
        {"\xdc\x00\x03\xc0\xc0", 5, "array longer than the frame at byte 0"},
        /* str claiming one byte more than is left. */
        {"\xa3\x61\x62", 3, "string longer than the frame at byte 0"},
    };
    json_set_alloc_funcs(counting_malloc, free);
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        alloc_count = 0;
        decode_fails(bombs[i].frame, bombs[i].len, bombs[i].want);
        assert_int_equal(alloc_count, 0);
    }
    /* Nested: the inner claim is checked against what is left, not the outer one. */
    alloc_count = 0;
    json_decref(json_array());
    size_t one_array = alloc_count;
    alloc_count = 0;
    decode_fails("\x91\xdd\xff\xff\xff\xff", 6, "array longer than the frame at byte 1");
    assert_int_equal(alloc_count, one_array); /* the outer, empty array only */
    json_set_alloc_funcs(malloc, free);
}

static void test_depth(void **state)
{
    (void)state;
    unsigned char f[2 * ADW_JSON_DEPTH_MAX + 8];
    /* Arrays: 64 deep is fine, 65 is not. */
    memset(f, 0x91, ADW_JSON_DEPTH_MAX);
    f[ADW_JSON_DEPTH_MAX] = 0xc0;
    json_decref(decode_ok(f, ADW_JSON_DEPTH_MAX + 1));
    memset(f, 0x91, ADW_JSON_DEPTH_MAX + 1);
    f[ADW_JSON_DEPTH_MAX + 1] = 0xc0;
    decode_fails(f, ADW_JSON_DEPTH_MAX + 2, "nesting deeper than 64 at byte 64");
    /* Maps {"k":{"k":...}}. */
    size_t n = 0;
    for (int i = 0; i < ADW_JSON_DEPTH_MAX; i++) {
        f[n++] = 0x81;
        f[n++] = 0xa0; /* key "" */
    }
    f[n++] = 0xc0;
    json_decref(decode_ok(f, n));
    n = 0;
    for (int i = 0; i < ADW_JSON_DEPTH_MAX + 1; i++) {
        f[n++] = 0x81;
        f[n++] = 0xa0;
    }
    f[n++] = 0xc0;
    decode_fails(f, n, "nesting deeper than 64 at byte 128");
    /* A deep bomb: 100,000 nested arrays stop at 65 without recursing further. */
    size_t big = 100000;
    unsigned char *deep = malloc(big + 1);
    memset(deep, 0x91, big);
    deep[big] = 0xc0;
    decode_fails(deep, big + 1, "nesting deeper than 64");
    memset(deep, 0xdc, big); /* array16 headers claiming 0xdcdc elements */
    decode_fails(deep, big + 1, "nesting deeper than 64");
    free(deep);
}

/* ---- JSON text ---- */

static void json_fails(const char *text, size_t len, const char *want)
{
    json_t *v = (json_t *)0x1;
    char err[200] = "";
    int rc = codec_json_parse(text, len, &v, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, want))
        fail_msg("want -EINVAL with \"%s\", got %d \"%s\"", want, rc, err);
    assert_null(v);
}

#define JSON_FAILS(lit, want) json_fails(lit, sizeof(lit) - 1, want)

static char *nested_text(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_json_parse(void **state)
{
    (void)state;
    JSON_FAILS("", "empty body");
    JSON_FAILS(" \r\n\t ", "empty body");
    JSON_FAILS("{\"a\":1,\"a\":2}", "duplicate object key");
    JSON_FAILS("\"a\\u0000b\"", "\\u0000 (NUL) is not accepted");
    JSON_FAILS("{\"a\\u0000\":1}", "(NUL) is not accepted: PostgreSQL");
    JSON_FAILS("\"\xc3\x28\"", "unable to decode byte 0xc3");
    JSON_FAILS("\"\xed\xa0\x80\"", "unable to decode byte 0xed");
    JSON_FAILS("\"a\0b\"", "control character");
    JSON_FAILS("{\"a\":1} x", "end of file expected");
    JSON_FAILS("{\"a\":", "line 1 column 5");
    JSON_FAILS("{\n\"a\" 1}", "line 2 column 5");
    JSON_FAILS("9223372036854775808", "too big integer");
    JSON_FAILS("-9223372036854775809", "too big negative integer");
    JSON_FAILS("[99999999999999999999999]", "too big integer");
    JSON_FAILS("1e400", "real number overflow");
    JSON_FAILS("NaN", "invalid token");
    JSON_FAILS("[1,]", "unexpected token");

    json_t *v = parse_ok("9223372036854775807");
    assert_true(json_integer_value(v) == INT64_MAX);
    json_decref(v);
    v = parse_ok("-9223372036854775808");
    assert_true(json_integer_value(v) == INT64_MIN);
    json_decref(v);
    v = parse_ok(" 42 ");
    assert_int_equal(json_integer_value(v), 42);
    json_decref(v);
    v = parse_ok("\"x\"");
    assert_string_equal(json_string_value(v), "x");
    json_decref(v);
    v = parse_ok("1.0");
    assert_true(json_is_real(v));
    json_decref(v);
    /* Not NUL-terminated: only len bytes are read. */
    json_t *w = NULL;
    char err[160];
    assert_int_equal(codec_json_parse("[1]garbage", 3, &w, err, sizeof err), 0);
    assert_int_equal(json_array_size(w), 1);
    json_decref(w);
    /* err may be absent. */
    assert_int_equal(codec_json_parse("", 0, &w, NULL, 0), -EINVAL);
    assert_int_equal(codec_msgpack_decode("", 0, &w, NULL, 0), -EINVAL);
    assert_int_equal(codec_msgpack_decode("\xc1", 1, &w, NULL, 0), -EINVAL);
    /* A short err buffer is filled and terminated. */
    char tiny[8];
    assert_int_equal(codec_json_parse("{", 1, &w, tiny, sizeof tiny), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_json_depth(void **state)
{
    (void)state;
    char *s = nested_text(ADW_JSON_DEPTH_MAX);
    json_decref(parse_ok(s));
    free(s);
    s = nested_text(ADW_JSON_DEPTH_MAX + 1);
    json_fails(s, strlen(s), "nesting deeper than 64");
    free(s);
    s = nested_text(1000);
    json_fails(s, strlen(s), "nesting deeper than 64");
    free(s);
    s = nested_text(100000); /* past jansson's own limit */
    json_fails(s, strlen(s), "maximum parsing depth reached");
    free(s);
    /* Objects count as well as arrays. */
    char obj[16 * 70] = "";
    for (int i = 0; i < ADW_JSON_DEPTH_MAX + 1; i++)
        strcat(obj, "{\"k\":");
    strcat(obj, "1");
    for (int i = 0; i < ADW_JSON_DEPTH_MAX + 1; i++)
        strcat(obj, "}");
    json_fails(obj, strlen(obj), "nesting deeper than 64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_reals_bit_exact),
        cmocka_unit_test(test_encode_forms),
        cmocka_unit_test(test_encode_sbuffer),
        cmocka_unit_test(test_encode_cap),
        cmocka_unit_test(test_decode_forms),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bombs_refused_without_allocating),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_json_parse),
        cmocka_unit_test(test_json_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
