/* libFuzzer driver for codec_msgpack_decode.
 *
 * Any input: no crash, no leak, no read outside the frame; a refusal leaves *out NULL and a
 * reason. An accepted frame must also be accepted by msgpack-c's own unpacker (when shallow
 * enough for its fixed stack) with every byte consumed, and must survive
 * msgpack -> json_t -> msgpack (canonical bytes, stable on a second pass) and
 * json_t -> JSON text -> json_t with the same value and the same text.
 */
#include <limits.h>
#include <msgpack.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "jsonw.h"

static int depth_of(const json_t *v)
{
    int d = 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int c = depth_of(json_array_get(v, i));
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            int c = depth_of(x);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = (json_t *)0x1;
    char err[128];
    err[0] = '\0';

    if (codec_msgpack_decode(data, size, &v, err, sizeof err)) {
        CHECK(v == NULL);
        CHECK(err[0] != '\0');
        return 0;
    }
    CHECK(v != NULL);

    /* msgpack-c agrees the bytes are one complete value (its stack holds 32 levels). */
    if (depth_of(v) < 32) {
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        CHECK(msgpack_unpack_next(&u, (const char *)data, size, &off) == MSGPACK_UNPACK_SUCCESS);
        CHECK(off == size);
        msgpack_unpacked_destroy(&u);
    }

    /* msgpack round trip: same value, and canonical bytes reproduce themselves. */
    buf_t mp1, mp2, t1, t2;
    buf_init(&mp1, 0);
    buf_init(&mp2, 0);
    buf_init(&t1, 0);
    buf_init(&t2, 0);
    CHECK(codec_msgpack_to_buf(&mp1, v) == 0);
    json_t *w = NULL;
    CHECK(codec_msgpack_decode(mp1.data, mp1.len, &w, err, sizeof err) == 0);
    CHECK(json_equal(v, w));
    CHECK(codec_msgpack_to_buf(&mp2, w) == 0);
    CHECK(mp2.len == mp1.len && memcmp(mp1.data, mp2.data, mp1.len) == 0);

    /* JSON text round trip: same value, same text, size agrees. */
    CHECK(jsonw_value(&t1, v) == 0);
    size_t n = 0;
    CHECK(jsonw_size(v, SIZE_MAX, &n) == 0 && n == t1.len);
    if (t1.len)
        CHECK(jsonw_size(v, t1.len - 1, &n) == -E2BIG);
    json_t *x = NULL;
    CHECK(codec_json_parse(t1.data, t1.len, &x, err, sizeof err) == 0);
    CHECK(json_equal(v, x));
    CHECK(jsonw_value(&t2, x) == 0);
    CHECK(t2.len == t1.len && memcmp(t1.data, t2.data, t1.len) == 0);

    json_decref(x);
    json_decref(w);
    json_decref(v);
    buf_free(&mp1);
    buf_free(&mp2);
    buf_free(&t1);
    buf_free(&t2);
    return 0;
}
