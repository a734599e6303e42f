/* libFuzzer driver for codec_json_parse, jsonw and utf8.
 *
 * Any input: no crash, no leak; a refusal leaves *out NULL and a reason. An accepted text
 * must survive json_t -> JSON text -> json_t (same value; the second text identical to the
 * first), json_t -> msgpack -> json_t (same value, same text), jsonw_size must agree with
 * the text and stop at a smaller limit, and jsonw_object_with must produce the object with
 * the prefix member first. The raw input also checks utf8_validate against a slow
 * reference decoder and utf8_truncate's promise at every cut.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "jsonw.h"
#include "utf8.h"

/* Decode each scalar value and judge it by its value: the slow, obvious way. */
static int ref_utf8_validate(const unsigned char *p, size_t len)
{
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return -EILSEQ;
        }
        if (len - i < n)
            return -EILSEQ;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return -EILSEQ;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -EILSEQ;
        i += n;
    }
    return 0;
}

static void check_utf8(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int valid = utf8_validate(s, size);
    CHECK(valid == ref_utf8_validate(data, size));
    for (size_t max = 0; max <= size; max++) {
        size_t n = utf8_truncate(s, size, max);
        CHECK(n <= max);
        if (n < size)
            CHECK(max - n <= 3);
        if (valid == 0) {
            CHECK(utf8_validate(s, n) == 0);
            CHECK(n == size || (data[n] & 0xC0) != 0x80);
        }
    }
}

static void check_object_with(const json_t *v, size_t len)
{
    static const char prefix[] = "\"__id\":1";
    buf_t b;
    buf_init(&b, 0);
    CHECK(jsonw_object_with(&b, v, prefix) == 0);
    CHECK(b.len == len + sizeof prefix - 1 + (json_object_size(v) ? 1 : 0));
    CHECK(memcmp(b.data + 1, prefix, sizeof prefix - 1) == 0);
    json_t *o = NULL;
    char err[200];
    int rc = codec_json_parse(b.data, b.len, &o, err, sizeof err);
    if (json_object_get(v, "__id")) {
        CHECK(rc == -EINVAL); /* a duplicate, as the caller was warned */
    } else {
        CHECK(rc == 0); /* the prefix adds no depth */
        CHECK(json_object_size(o) == json_object_size(v) + 1);
        json_object_del(o, "__id");
        CHECK(json_equal(o, v));
        json_decref(o);
    }
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_utf8(data, size);

    json_t *v = (json_t *)0x1;
    char err[200];
    err[0] = '\0';
    if (codec_json_parse((const char *)data, size, &v, err, sizeof err)) {
        CHECK(v == NULL);
        CHECK(err[0] != '\0');
        return 0;
    }
    CHECK(v != NULL);
    /* Whatever was accepted is valid UTF-8 as a whole. */
    CHECK(utf8_validate((const char *)data, size) == 0);

    buf_t t1, t2, mp;
    buf_init(&t1, 0);
    buf_init(&t2, 0);
    buf_init(&mp, 0);

    /* JSON text round trip. */
    CHECK(jsonw_value(&t1, v) == 0);
    json_t *x = NULL;
    CHECK(codec_json_parse(t1.data, t1.len, &x, err, sizeof err) == 0);
    CHECK(json_equal(v, x));
    CHECK(jsonw_value(&t2, x) == 0);
    CHECK(t2.len == t1.len && memcmp(t1.data, t2.data, t1.len) == 0);

    /* Size, exact and stopped early. */
    size_t n = 0;
    CHECK(jsonw_size(v, SIZE_MAX, &n) == 0 && n == t1.len);
    CHECK(jsonw_size(v, t1.len, &n) == 0 && n == t1.len);
    CHECK(jsonw_size(v, t1.len - 1, &n) == -E2BIG);

    /* msgpack round trip. */
    CHECK(codec_msgpack_to_buf(&mp, v) == 0);
    json_t *w = NULL;
    CHECK(codec_msgpack_decode(mp.data, mp.len, &w, err, sizeof err) == 0);
    CHECK(json_equal(v, w));
    buf_reset(&t2);
    CHECK(jsonw_value(&t2, w) == 0);
    CHECK(t2.len == t1.len && memcmp(t1.data, t2.data, t1.len) == 0);

    if (json_is_object(v))
        check_object_with(v, t1.len);

    json_decref(w);
    json_decref(x);
    json_decref(v);
    buf_free(&t1);
    buf_free(&t2);
    buf_free(&mp);
    return 0;
}
