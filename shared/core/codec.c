#include "codec.h"
#include "err.h"

#include <limits.h>
#include <msgpack.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "adw_limits.h" /* ADW_JSON_DEPTH_MAX */
#include "utf8.h"

#define CODEC__STR(x) #x
#define CODEC__XSTR(x) CODEC__STR(x)

/* One of these per msgpack frame being decoded. */
typedef struct codec__reader_t {
    const unsigned char *p; /* the frame, borrowed */
    size_t len;             /* its length */
    size_t pos;             /* next byte to read */
    char *err;              /* caller's reason buffer */
    size_t errlen;
} codec__reader_t;

/* Records "<what> at byte <at>" and returns rc. */
static int codec__fail(codec__reader_t *r, int rc, size_t at, const char *what)
{
    set_err(r->err, r->errlen, "%s at byte %zu", what, at);
    return rc;
}

static uint64_t codec__be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads an n-byte big-endian unsigned integer following the type byte at `at`. */
static int codec__uint(codec__reader_t *r, size_t at, size_t n, uint64_t *v)
{
    if (r->len - r->pos < n)
        return codec__fail(r, -EINVAL, at, "truncated value");
    *v = codec__be(r->p + r->pos, n);
    r->pos += n;
    return 0;
}

/* Reads n bytes of string body for the str header at `at`; the body must be valid UTF-8
 * without NUL. Sets *s to the bytes inside the frame. */
static int codec__str_body(codec__reader_t *r, size_t at, uint64_t n, const char **s)
{
    if (n > r->len - r->pos)
        return codec__fail(r, -EINVAL, at, "string longer than the frame");
    const char *b = (const char *)r->p + r->pos;
    if (utf8_validate(b, (size_t)n))
        return codec__fail(r, -EINVAL, at, "invalid UTF-8 in string");
    if (memchr(b, '\0', (size_t)n))
        return codec__fail(r, -EINVAL, at, "NUL byte in string");
    r->pos += (size_t)n;
    *s = b;
    return 0;
}

/* If the byte at r->pos starts a str, reads its header; returns 1 and sets *n, else 0. */
static int codec__str_header(codec__reader_t *r, size_t at, uint64_t *n, int *rc)
{
    unsigned char c = r->p[r->pos];
    *rc = 0;
    if (c >= 0xa0 && c <= 0xbf) {
        r->pos++;
        *n = c & 0x1f;
        return 1;
    }
    if (c < 0xd9 || c > 0xdb)
        return 0;
    r->pos++;
    *rc = codec__uint(r, at, (size_t)1 << (c - 0xd9), n);
    return 1;
}

static int codec__value(codec__reader_t *r, json_t **out, int depth);

// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past ADW_JSON_DEPTH_MAX
static int codec__array(codec__reader_t *r, size_t at, uint64_t n, int depth, json_t **out)
{
    json_t *arr = NULL;
    int rc;

    if (depth >= ADW_JSON_DEPTH_MAX)
        return codec__fail(r, -EINVAL, at, "nesting deeper than " CODEC__XSTR(ADW_JSON_DEPTH_MAX));
    /* Each element takes at least one byte. */
    if (n > r->len - r->pos)
        return codec__fail(r, -EINVAL, at, "array longer than the frame");
    arr = json_array();
    if (!arr)
        return codec__fail(r, -ENOMEM, at, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        json_t *item;
        if ((rc = codec__value(r, &item, depth + 1)))
            goto fail;
        if (json_array_append_new(arr, item)) {
            rc = codec__fail(r, -ENOMEM, at, "out of memory");
            goto fail;
        }
    }
    *out = arr;
    return 0;
fail:
    json_decref(arr);
    return rc;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past ADW_JSON_DEPTH_MAX
static int codec__map(codec__reader_t *r, size_t at, uint64_t n, int depth, json_t **out)
{
    json_t *obj = NULL;
    int rc;

    if (depth >= ADW_JSON_DEPTH_MAX)
        return codec__fail(r, -EINVAL, at, "nesting deeper than " CODEC__XSTR(ADW_JSON_DEPTH_MAX));
    /* Each key and each value takes at least one byte. */
    if (n > (r->len - r->pos) / 2)
        return codec__fail(r, -EINVAL, at, "map longer than the frame");
    obj = json_object();
    if (!obj)
        return codec__fail(r, -ENOMEM, at, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        size_t kat = r->pos;
        uint64_t klen;
        const char *key;
        json_t *val;
        if (kat >= r->len) {
            rc = codec__fail(r, -EINVAL, kat, "truncated value");
            goto fail;
        }
        if (!codec__str_header(r, kat, &klen, &rc)) {
            rc = codec__fail(r, -EINVAL, kat, "map key is not a string");
            goto fail;
        }
        if (rc || (rc = codec__str_body(r, kat, klen, &key)))
            goto fail;
        if (json_object_getn(obj, key, (size_t)klen)) {
            int shown = (int)utf8_truncate(key, (size_t)klen, 40);
            set_err(r->err, r->errlen, "duplicate key \"%.*s\" at byte %zu", shown, key, kat);
            rc = -EINVAL;
            goto fail;
        }
        if ((rc = codec__value(r, &val, depth + 1)))
            goto fail;
        if (json_object_setn_new_nocheck(obj, key, (size_t)klen, val)) {
            rc = codec__fail(r, -ENOMEM, kat, "out of memory");
            goto fail;
        }
    }
    *out = obj;
    return 0;
fail:
    json_decref(obj);
    return rc;
}

static int codec__real(codec__reader_t *r, size_t at, double d, json_t **out)
{
    if (!isfinite(d))
        return codec__fail(r, -EINVAL, at, "NaN or infinite real");
    *out = json_real(d);
    return *out ? 0 : codec__fail(r, -ENOMEM, at, "out of memory");
}

static int codec__int(codec__reader_t *r, size_t at, json_int_t v, json_t **out)
{
    *out = json_integer(v);
    return *out ? 0 : codec__fail(r, -ENOMEM, at, "out of memory");
}

/* Decodes the value at r->pos into *out (a new reference); depth is the nesting of the
 * containers around it. On error *out is untouched. */
// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past ADW_JSON_DEPTH_MAX
static int codec__value(codec__reader_t *r, json_t **out, int depth)
{
    size_t at = r->pos;
    uint64_t u;
    int rc;

    if (at >= r->len)
        return codec__fail(r, -EINVAL, at, "truncated value");
    unsigned char c = r->p[at];

    if (c <= 0x7f) {
        r->pos++;
        return codec__int(r, at, c, out);
    }
    if (c >= 0xe0) {
        r->pos++;
        return codec__int(r, at, (json_int_t)(int8_t)c, out);
    }
    if (c >= 0x80 && c <= 0x8f) {
        r->pos++;
        return codec__map(r, at, c & 0x0f, depth, out);
    }
    if (c >= 0x90 && c <= 0x9f) {
        r->pos++;
        return codec__array(r, at, c & 0x0f, depth, out);
    }
    if (codec__str_header(r, at, &u, &rc)) {
        const char *s;
        if (rc || (rc = codec__str_body(r, at, u, &s)))
            return rc;
        *out = json_stringn_nocheck(s, (size_t)u);
        return *out ? 0 : codec__fail(r, -ENOMEM, at, "out of memory");
    }
    r->pos++;
    switch (c) {
    case 0xc0:
        *out = json_null();
        return 0;
    case 0xc2:
        *out = json_false();
        return 0;
    case 0xc3:
        *out = json_true();
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return codec__fail(r, -EINVAL, at, "binary not supported");
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
        /* The ext type byte follows the length (ext8/16/32) or the type byte (fixext). */
        size_t tpos = r->pos + (c <= 0xc9 ? (size_t)1 << (c - 0xc7) : 0);
        if (tpos < r->len && r->p[tpos] == 0xff)
            return codec__fail(r, -EINVAL, at, "timestamp extension not supported");
        return codec__fail(r, -EINVAL, at, "extension type not supported");
    }
    case 0xca: {
        if ((rc = codec__uint(r, at, 4, &u)))
            return rc;
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        return codec__real(r, at, (double)f, out);
    }
    case 0xcb: {
        if ((rc = codec__uint(r, at, 8, &u)))
            return rc;
        double d;
        memcpy(&d, &u, sizeof d);
        return codec__real(r, at, d, out);
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if ((rc = codec__uint(r, at, (size_t)1 << (c - 0xcc), &u)))
            return rc;
        if (u > INT64_MAX)
            return codec__fail(r, -EINVAL, at, "integer out of range");
        return codec__int(r, at, (json_int_t)u, out);
    case 0xd0:
        if ((rc = codec__uint(r, at, 1, &u)))
            return rc;
        return codec__int(r, at, (int8_t)(uint8_t)u, out);
    case 0xd1:
        if ((rc = codec__uint(r, at, 2, &u)))
            return rc;
        return codec__int(r, at, (int16_t)(uint16_t)u, out);
    case 0xd2:
        if ((rc = codec__uint(r, at, 4, &u)))
            return rc;
        return codec__int(r, at, (int32_t)(uint32_t)u, out);
    case 0xd3:
        if ((rc = codec__uint(r, at, 8, &u)))
            return rc;
        return codec__int(r, at, (json_int_t)(int64_t)u, out);
    case 0xdc:
    case 0xdd:
        if ((rc = codec__uint(r, at, c == 0xdc ? 2 : 4, &u)))
            return rc;
        return codec__array(r, at, u, depth, out);
    case 0xde:
    case 0xdf:
        if ((rc = codec__uint(r, at, c == 0xde ? 2 : 4, &u)))
            return rc;
        return codec__map(r, at, u, depth, out);
    default: /* 0xc1 */
        return codec__fail(r, -EINVAL, at, "invalid type byte 0xc1");
    }
}

int codec_msgpack_decode(const void *buf, size_t len, json_t **out, char *err, size_t errlen)
{
    codec__reader_t r = {.p = buf, .len = len, .pos = 0, .err = err, .errlen = errlen};
    json_t *v = NULL;
    int rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    if (len == 0) {
        set_err(err, errlen, "empty frame");
        return -EINVAL;
    }
    if ((rc = codec__value(&r, &v, 0)))
        return rc;
    if (r.pos != len) {
        json_decref(v);
        return codec__fail(&r, -EINVAL, r.pos, "trailing bytes after the value");
    }
    *out = v;
    return 0;
}

/* Maps a packer call's result: the write callback's failure is the only one. */
static int codec__pk(int rc)
{
    return rc ? -ENOMEM : 0;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past JSONW_DEPTH_MAX
static int codec__pack(msgpack_packer *pk, const json_t *v, int depth)
{
    int rc;

    if (!v)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return codec__pk(msgpack_pack_nil(pk));
    case JSON_TRUE:
        return codec__pk(msgpack_pack_true(pk));
    case JSON_FALSE:
        return codec__pk(msgpack_pack_false(pk));
    case JSON_INTEGER:
        return codec__pk(msgpack_pack_int64(pk, json_integer_value(v)));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (!isfinite(d))
            return -EINVAL;
        return codec__pk(msgpack_pack_double(pk, d));
    }
    case JSON_STRING: {
        size_t n = json_string_length(v);
        if (n > UINT32_MAX)
            return -EINVAL;
        if ((rc = codec__pk(msgpack_pack_str(pk, n))))
            return rc;
        return codec__pk(msgpack_pack_str_body(pk, json_string_value(v), n));
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (depth >= JSONW_DEPTH_MAX || n > UINT32_MAX)
            return -EINVAL;
        if ((rc = codec__pk(msgpack_pack_array(pk, n))))
            return rc;
        for (size_t i = 0; i < n; i++)
            if ((rc = codec__pack(pk, json_array_get(v, i), depth + 1)))
                return rc;
        return 0;
    }
    case JSON_OBJECT: {
        json_t *o = (json_t *)v; /* jansson's iterator API is not const-correct */
        size_t n = json_object_size(o);
        if (depth >= JSONW_DEPTH_MAX || n > UINT32_MAX)
            return -EINVAL;
        if ((rc = codec__pk(msgpack_pack_map(pk, n))))
            return rc;
        for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
            size_t klen = json_object_iter_key_len(it);
            if (klen > UINT32_MAX)
                return -EINVAL;
            if ((rc = codec__pk(msgpack_pack_str(pk, klen))))
                return rc;
            if ((rc = codec__pk(msgpack_pack_str_body(pk, json_object_iter_key(it), klen))))
                return rc;
            if ((rc = codec__pack(pk, json_object_iter_value(it), depth + 1)))
                return rc;
        }
        return 0;
    }
    }
    return -EINVAL;
}

int codec_msgpack_encode(msgpack_packer *pk, const json_t *v)
{
    return codec__pack(pk, v, 0);
}

/* The write callback's context for codec_msgpack_to_buf. */
typedef struct codec__bufw_t {
    buf_t *buf;
    int rc; /* the buffer's first error */
} codec__bufw_t;

static int codec__buf_write(void *data, const char *p, size_t n)
{
    codec__bufw_t *w = data;
    int rc = buf_append(w->buf, p, n);
    if (rc && !w->rc)
        w->rc = rc;
    return rc;
}

int codec_msgpack_to_buf(buf_t *out, const json_t *v)
{
    codec__bufw_t w = {.buf = out, .rc = 0};
    msgpack_packer pk;
    size_t len = out->len;

    msgpack_packer_init(&pk, &w, codec__buf_write);
    int rc = codec__pack(&pk, v, 0);
    if (rc) {
        if (w.rc)
            rc = w.rc;
        if (out->data) {
            out->len = len;
            out->data[len] = '\0';
        }
    }
    return rc;
}

int codec_msgpack_event(buf_t *out, const json_t *doc, int64_t id, const char *received_at)
{
    codec__bufw_t w = {.buf = out, .rc = 0};
    msgpack_packer pk;
    size_t len = out->len;
    const char *key;
    json_t *value;
    int rc = 0;

    msgpack_packer_init(&pk, &w, codec__buf_write);
    msgpack_pack_map(&pk, json_object_size(doc) + 2);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int64(&pk, id);
    msgpack_pack_str_with_body(&pk, "received_at", 11);
    msgpack_pack_str_with_body(&pk, received_at, strlen(received_at));
    json_object_foreach((json_t *)doc, key, value)
    {
        msgpack_pack_str_with_body(&pk, key, strlen(key));
        rc = codec__pack(&pk, value, 1);
        if (rc)
            break;
    }
    if (w.rc)
        rc = w.rc;
    if (rc && out->data) {
        out->len = len;
        out->data[len] = '\0';
    }
    return rc;
}

/* Returns 1 if no array or object inside v (at nesting `depth`) is deeper than the limit. */
// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past ADW_JSON_DEPTH_MAX
static int codec__depth_ok(const json_t *v, int depth)
{
    if (json_is_array(v)) {
        if (depth >= ADW_JSON_DEPTH_MAX)
            return 0;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            if (!codec__depth_ok(json_array_get(v, i), depth + 1))
                return 0;
    } else if (json_is_object(v)) {
        if (depth >= ADW_JSON_DEPTH_MAX)
            return 0;
        json_t *o = (json_t *)v;
        for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
            if (!codec__depth_ok(json_object_iter_value(it), depth + 1))
                return 0;
    }
    return 1;
}

int codec_json_parse(const char *buf, size_t len, json_t **out, char *err, size_t errlen)
{
    json_error_t jerr;
    size_t i = 0;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i == len) {
        set_err(err, errlen, "empty body");
        return -EINVAL;
    }
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!v) {
        enum json_error_code code = json_error_code(&jerr);
        if (code == json_error_null_character || code == json_error_null_byte_in_key)
            set_err(err, errlen,
                    "\\u0000 (NUL) is not accepted: PostgreSQL's jsonb cannot store it; "
                    "at line %d column %d",
                    jerr.line, jerr.column);
        else
            set_err(err, errlen, "%s%s at line %d column %d",
                    code == json_error_invalid_utf8 ? "invalid UTF-8: " : "", jerr.text, jerr.line,
                    jerr.column);
        return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
    }
    if (!codec__depth_ok(v, 0)) {
        json_decref(v);
        set_err(err, errlen, "nesting deeper than %d", ADW_JSON_DEPTH_MAX);
        return -EINVAL;
    }
    *out = v;
    return 0;
}
