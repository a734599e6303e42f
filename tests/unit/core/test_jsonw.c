/* Unit tests for shared/jsonw: compact output, shortest reals, escaping, the prefixed object,
 * size computation with an early stop, buffer caps and the depth guard. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* Serializes v and compares with want; also checks jsonw_size agrees. */
static void want_json(const json_t *v, const char *want)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_value(&b, v), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    size_t n = 0;
    assert_int_equal(jsonw_size(v, SIZE_MAX, &n), 0);
    assert_int_equal(n, b.len);
    buf_free(&b);
}

/* Same, taking ownership of v. */
static void want_json_new(json_t *v, const char *want)
{
    assert_non_null(v);
    want_json(v, want);
    json_decref(v);
}

static void test_scalars(void **state)
{
    (void)state;
    want_json_new(json_null(), "null");
    want_json_new(json_true(), "true");
    want_json_new(json_false(), "false");
    want_json_new(json_integer(0), "0");
    want_json_new(json_integer(-1), "-1");
    want_json_new(json_integer(42), "42");
    want_json_new(json_integer(INT64_MAX), "9223372036854775807");
    want_json_new(json_integer(INT64_MIN), "-9223372036854775808");
}

static void test_reals_shortest(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {0.5, "0.5"},
        {1.0, "1.0"},
        {-1.0, "-1.0"},
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {2.5, "2.5"},
        {123.456, "123.456"},
        {100000.0, "100000.0"},
        {1e15, "1e+15"},
        {1e16, "1e+16"},
        {1e300, "1e+300"},
        {-1e-300, "-1e-300"},
        {5e-324, "4.94065645841247e-324"}, /* the smallest subnormal; %.15g reads back */
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {9007199254740993.0, "9007199254740992.0"}, /* 2^53 + 1 is not a double */
        {123456789012.0, "123456789012.0"},
        {1.5e-7, "1.5e-07"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = json_real(cases[i].d);
        want_json(r, cases[i].text);
        /* It reads back as the very same double, sign of zero included. */
        double back = strtod(cases[i].text, NULL);
        assert_memory_equal(&back, &cases[i].d, sizeof back);
        json_decref(r);
    }
}

/* Many doubles: the text reads back bit-exactly, is real-looking, and no shorter %g
 * precision among 15..17 would have read back. */
static void test_reals_round_trip(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        json_t *r = json_real(d);
        buf_reset(&b);
        assert_int_equal(jsonw_value(&b, r), 0);
        double back = strtod(b.data, NULL);
        assert_memory_equal(&back, &d, sizeof d);
        assert_true(strpbrk(b.data, ".e") != NULL);
        json_decref(r);
    }
    buf_free(&b);
}

static void want_string(const char *s, size_t len, const char *want)
{
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_string(&b, s, len), 0);
    assert_string_equal(b.data, want);
    buf_free(&b);
    json_t *v = json_stringn_nocheck(s, len);
    want_json(v, want);
    json_decref(v);
}

static void test_escaping(void **state)
{
    (void)state;
    want_string("", 0, "\"\"");
    want_string("plain", 5, "\"plain\"");
    want_string("a\"b", 3, "\"a\\\"b\"");
    want_string("a\\b", 3, "\"a\\\\b\"");
    want_string("/path/to", 8, "\"/path/to\"");
    want_string("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
    want_string("\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\"");
    want_string("a\0b", 3, "\"a\\u0000b\"");
    want_string("\x7f", 1, "\"\x7f\"");
    want_string("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 12,
                "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
    want_string("\xE2\x80\xA8", 3, "\"\xE2\x80\xA8\""); /* U+2028 as is */
    want_string("\"\"", 2, "\"\\\"\\\"\"");
    /* Every control character, against its expected escape. */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        char want[16];
        const char *shortform = NULL;
        switch (c) {
        case '\b':
            shortform = "\"\\b\"";
            break;
        case '\t':
            shortform = "\"\\t\"";
            break;
        case '\n':
            shortform = "\"\\n\"";
            break;
        case '\f':
            shortform = "\"\\f\"";
            break;
        case '\r':
            shortform = "\"\\r\"";
            break;
        }
        if (shortform)
            strcpy(want, shortform);
        else
            snprintf(want, sizeof want, "\"\\u%04x\"", c);
        want_string(&in, 1, want);
    }
}

/* The slow reference escaper, byte by byte. */
static void ref_escape(const unsigned char *s, size_t len, char *out)
{
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c == '\n') {
            o += sprintf(o, "\\n");
        } else if (c == '\t') {
            o += sprintf(o, "\\t");
        } else if (c == '\r') {
            o += sprintf(o, "\\r");
        } else if (c == '\b') {
            o += sprintf(o, "\\b");
        } else if (c == '\f') {
            o += sprintf(o, "\\f");
        } else if (c < 0x20) {
            o += sprintf(o, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
}

/* Each byte value at each position of a 40-byte string, so that every lane of the
 * eight-at-a-time scan meets every special byte, next to bytes that must pass as they are. */
static void test_escaping_every_position(void **state)
{
    (void)state;
    unsigned char s[40];
    char want[40 * 6 + 3];
    buf_t b;
    buf_init(&b, 0);
    for (unsigned c = 0; c < 256; c++) {
        for (size_t at = 0; at < sizeof s; at++) {
            /* Filler that passes as is: printable ASCII short of '"' and '\\', and high bytes. */
            for (size_t i = 0; i < sizeof s; i++)
                s[i] = (unsigned char)(i % 3 ? 0x23 + i * 7 % 0x39 : 0x80 + i);
            s[at] = (unsigned char)c;
            ref_escape(s, sizeof s, want);
            buf_reset(&b);
            assert_int_equal(jsonw_string(&b, (const char *)s, sizeof s), 0);
            assert_string_equal(b.data, want);
            size_t n = 0;
            json_t *v = json_stringn_nocheck((const char *)s, sizeof s);
            assert_int_equal(jsonw_size(v, SIZE_MAX, &n), 0);
            assert_int_equal(n, strlen(want));
            json_decref(v);
        }
    }
    buf_free(&b);
}

static void test_containers(void **state)
{
    (void)state;
    want_json_new(json_array(), "[]");
    want_json_new(json_object(), "{}");
    want_json_new(json_pack("[i,s,n,b,f]", 1, "two", 0, 3.5), "[1,\"two\",null,false,3.5]");
    /* Insertion order is kept. */
    json_t *o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    json_object_set_new(o, "m", json_pack("{s:[],s:{}}", "x", "y"));
    want_json(o, "{\"z\":1,\"a\":2,\"m\":{\"x\":[],\"y\":{}}}");
    /* Keys are escaped like strings. */
    json_object_set_new(o, "q\"\n", json_true());
    want_json(o, "{\"z\":1,\"a\":2,\"m\":{\"x\":[],\"y\":{}},\"q\\\"\\n\":true}");
    json_decref(o);
    /* A key holding NUL, set by length. */
    o = json_object();
    json_object_setn_new_nocheck(o, "k\0k", 3, json_null());
    want_json(o, "{\"k\\u0000k\":null}");
    json_decref(o);
}

/* The same text as jansson's compact dump, for documents without reals or control bytes. */
static void test_matches_jansson(void **state)
{
    (void)state;
    static const char *docs[] = {
        ("{\"id\":1042,\"type\":\"adw_event\",\"adw_id\":\"a1b2c3d4\",\"step\":\"build\","
         "\"payload\":{\"tool_name\":\"Write\",\"file_path\":\"/src/auth.py\",\"n\":[1,2,[]]}}"),
        "[\"\xC3\xA9\\\"\\\\\",{},[],null,true,false,-9223372036854775808]",
        "\"just a string\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t e;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &e);
        assert_non_null(v);
        char *ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        want_json(v, ref);
        free(ref);
        json_decref(v);
    }
}

static void test_object_with(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    json_t *empty = json_object();
    json_t *ev = json_pack("{s:s,s:s}", "type", "adw_event", "adw_id", "a1");

    assert_int_equal(jsonw_object_with(&b, empty, NULL), 0);
    assert_string_equal(b.data, "{}");
    buf_reset(&b);
    assert_int_equal(jsonw_object_with(&b, empty, ""), 0);
    assert_string_equal(b.data, "{}");
    buf_reset(&b);
    assert_int_equal(jsonw_object_with(&b, empty, "\"id\":42"), 0);
    assert_string_equal(b.data, "{\"id\":42}");
    buf_reset(&b);
    assert_int_equal(jsonw_object_with(&b, ev, NULL), 0);
    assert_string_equal(b.data, "{\"type\":\"adw_event\",\"adw_id\":\"a1\"}");
    buf_reset(&b);
    assert_int_equal(
        jsonw_object_with(&b, ev, "\"id\":42,\"received_at\":\"2026-11-26T06:00:00.123456Z\""), 0);
    assert_string_equal(b.data, "{\"id\":42,\"received_at\":\"2026-11-26T06:00:00.123456Z\","
                                "\"type\":\"adw_event\",\"adw_id\":\"a1\"}");
    /* It appends after what is there. */
    assert_int_equal(jsonw_object_with(&b, empty, "\"x\":1"), 0);
    assert_string_equal(b.data, "{\"id\":42,\"received_at\":\"2026-11-26T06:00:00.123456Z\","
                                "\"type\":\"adw_event\",\"adw_id\":\"a1\"}{\"x\":1}");
    /* Not an object. */
    size_t len = b.len;
    json_t *arr = json_array();
    assert_int_equal(jsonw_object_with(&b, arr, "\"id\":1"), -EINVAL);
    assert_int_equal(jsonw_object_with(&b, NULL, "\"id\":1"), -EINVAL);
    assert_int_equal(b.len, len);
    json_decref(arr);
    json_decref(ev);
    json_decref(empty);
    buf_free(&b);
}

/* Over the buffer's cap: -E2BIG and the buffer as it was, at every cap. */
static void test_cap_rolls_back(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s,s:[i,f,s#]}", "k", "value\n", "a", 7, 0.25, "x\0y", (size_t)3);
    buf_t full;
    buf_init(&full, 0);
    assert_int_equal(jsonw_value(&full, v), 0);
    const char *pre = "PRE";
    for (size_t cap = 3; cap < full.len + 3; cap++) {
        buf_t b;
        buf_init(&b, cap);
        assert_int_equal(buf_puts(&b, pre), 0);
        assert_int_equal(jsonw_value(&b, v), -E2BIG);
        assert_int_equal(b.len, 3);
        assert_string_equal(b.data, pre);
        assert_int_equal(jsonw_object_with(&b, v, "\"id\":1"), -E2BIG);
        assert_string_equal(b.data, pre);
        assert_int_equal(jsonw_string(&b, "0123456789abcdef", 16), cap >= 21 ? 0 : -E2BIG);
        buf_free(&b);
    }
    buf_t b;
    buf_init(&b, full.len + 3);
    assert_int_equal(buf_puts(&b, pre), 0);
    assert_int_equal(jsonw_value(&b, v), 0);
    assert_string_equal(b.data + 3, full.data);
    buf_free(&b);
    buf_free(&full);
    json_decref(v);
}

static void test_size_limit(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s,s:[i,i,f]}", "summary", "tab\there", "n", 1, -20, 0.5);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(jsonw_value(&b, v), 0);
    size_t n = 0;
    assert_int_equal(jsonw_size(v, b.len, &n), 0);
    assert_int_equal(n, b.len);
    n = 12345;
    assert_int_equal(jsonw_size(v, b.len - 1, &n), -E2BIG);
    assert_int_equal(n, 12345); /* untouched */
    assert_int_equal(jsonw_size(v, 0, &n), -E2BIG);
    json_decref(v);
    buf_free(&b);

    /* A large payload is refused without being scanned to the end: 16 MiB of string
     * against a 64 KiB limit. */
    size_t big = 16u << 20;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, 'a', big);
    json_t *p = json_pack("{s:s#}", "blob", s, big);
    assert_int_equal(jsonw_size(p, 65536, &n), -E2BIG);
    assert_int_equal(jsonw_size(p, SIZE_MAX, &n), 0);
    assert_int_equal(n, big + 11); /* {"blob":"..."} */
    /* Escapes count at their written size. */
    memset(s, '\n', 10);
    json_t *q = json_stringn(s, 10);
    assert_int_equal(jsonw_size(q, SIZE_MAX, &n), 0);
    assert_int_equal(n, 22);
    assert_int_equal(jsonw_size(q, 21, &n), -E2BIG);
    json_decref(q);
    json_decref(p);
    free(s);
}

static json_t *nested_arrays(int depth)
{
    json_t *v = json_array();
    for (int i = 1; i < depth; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    return v;
}

static void test_depth_guard(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b, 0);
    size_t n;
    json_t *ok = nested_arrays(JSONW_DEPTH_MAX);
    assert_int_equal(jsonw_value(&b, ok), 0);
    assert_int_equal(b.len, 2 * JSONW_DEPTH_MAX);
    json_t *deep = nested_arrays(JSONW_DEPTH_MAX + 1);
    buf_reset(&b);
    assert_int_equal(jsonw_value(&b, deep), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(jsonw_size(deep, SIZE_MAX, &n), -EINVAL);
    json_decref(deep);
    json_decref(ok);

    /* A cycle, which jansson does not prevent, ends in -EINVAL rather than a crash. */
    json_t *a = json_array();
    json_t *o = json_object();
    json_array_append(a, o);
    json_object_set(o, "loop", a);
    assert_int_equal(jsonw_value(&b, a), -EINVAL);
    assert_int_equal(jsonw_size(a, SIZE_MAX, &n), -EINVAL);
    json_object_clear(o);
    json_decref(o);
    json_decref(a);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_reals_shortest),
        cmocka_unit_test(test_reals_round_trip),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_escaping_every_position),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_matches_jansson),
        cmocka_unit_test(test_object_with),
        cmocka_unit_test(test_cap_rolls_back),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_depth_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
