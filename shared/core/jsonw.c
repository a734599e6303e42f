#include "jsonw.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where output goes: appended to a buffer, or only counted against a limit. */
typedef struct jsonw__sink_t {
    buf_t *buf;   /* NULL when only counting */
    size_t count; /* bytes counted (counting mode) */
    size_t limit; /* counting mode: -E2BIG once count passes this */
} jsonw__sink_t;

/* Bytes each input byte takes inside a JSON string: 1 as is, 2 for `\"` `\\` and \b \t \n \f \r,
 * 6 for the other control characters as \u00XX. */
static const unsigned char jsonw__esc_len[256] = {
    6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, /* 0x00 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x10 */
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x90 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xA0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xB0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xC0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xD0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xE0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xF0 */
};

static int jsonw__put(jsonw__sink_t *s, const char *p, size_t n)
{
    buf_t *b = s->buf;
    if (b) {
        /* Room already there (with the trailing NUL) and under the cap: copy in place. */
        if (b->cap - b->len > n && (!b->max || n <= b->max - b->len)) {
            memcpy(b->data + b->len, p, n);
            b->len += n;
            b->data[b->len] = '\0';
            return 0;
        }
        return buf_append(b, p, n);
    }
    if (n > s->limit - s->count)
        return -E2BIG;
    s->count += n;
    return 0;
}

static int jsonw__putc(jsonw__sink_t *s, char c)
{
    return jsonw__put(s, &c, 1);
}

#define JSONW_ONES 0x0101010101010101ULL
#define JSONW_HIGHS 0x8080808080808080ULL

/* Number of leading bytes of p that are copied as they are: eight at a time while no byte
 * is below 0x20, '"' or '\\'. */
static size_t jsonw__plain_prefix(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (len - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t quote = x ^ (JSONW_ONES * '"');
        uint64_t bslash = x ^ (JSONW_ONES * '\\');
        /* A byte below 0x20, or a zero byte in quote or bslash, sets its high bit. */
        uint64_t hit = ((x - JSONW_ONES * 0x20) & ~x) | ((quote - JSONW_ONES) & ~quote) |
                       ((bslash - JSONW_ONES) & ~bslash);
        if (hit & JSONW_HIGHS)
            break;
        i += 8;
    }
    while (i < len && jsonw__esc_len[p[i]] == 1)
        i++;
    return i;
}

static int jsonw__string(jsonw__sink_t *s, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    int rc;

    if (s->buf) {
        /* At least len + 2 bytes; reserving once makes the common case a single growth. */
        if (len < SIZE_MAX - 2 && (rc = buf_reserve(s->buf, len + 2)))
            return rc;
    } else if (s->limit - s->count < 2 || len > s->limit - s->count - 2) {
        /* Counting: every byte takes at least one, so a long string fails without a scan. */
        return -E2BIG;
    }
    if ((rc = jsonw__putc(s, '"')))
        return rc;
    size_t i = 0;
    for (;;) {
        size_t run = jsonw__plain_prefix(p + i, len - i);
        if (run && (rc = jsonw__put(s, str + i, run)))
            return rc;
        i += run;
        if (i == len)
            break;
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t n = 2;
        switch (p[i]) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        default:
            esc[1] = 'u';
            esc[4] = hex[p[i] >> 4];
            esc[5] = hex[p[i] & 0xF];
            n = 6;
            break;
        }
        if ((rc = jsonw__put(s, esc, n)))
            return rc;
        i++;
    }
    return jsonw__putc(s, '"');
}

static int jsonw__integer(jsonw__sink_t *s, json_int_t v)
{
    char tmp[24];
    char *end = tmp + sizeof tmp;
    char *p = end;
    /* Through unsigned so that the most negative value has a magnitude. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return jsonw__put(s, p, (size_t)(end - p));
}

static int jsonw__real(jsonw__sink_t *s, double d)
{
    char tmp[40];
    int n = 0;

    if (!isfinite(d))
        return -EINVAL;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp - 2, "%.*g", prec, d);
        double back = strtod(tmp, NULL);
        uint64_t a, b; /* bit for bit: -0.0 must not pass for 0.0 */
        memcpy(&a, &back, sizeof a);
        memcpy(&b, &d, sizeof b);
        if (a == b)
            break;
    }
    if (n <= 0 || (size_t)n >= sizeof tmp - 2)
        return -EINVAL;
    int real_looking = 0;
    for (int i = 0; i < n; i++) {
        if (tmp[i] == ',') /* a locale's decimal comma */
            tmp[i] = '.';
        if (tmp[i] == '.' || tmp[i] == 'e')
            real_looking = 1;
    }
    if (!real_looking) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    return jsonw__put(s, tmp, (size_t)n);
}

static int jsonw__value(jsonw__sink_t *s, const json_t *v, int depth);

/* Writes obj's members, each preceded by a comma if `comma` or if not the first. */
// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past JSONW_DEPTH_MAX
static int jsonw__members(jsonw__sink_t *s, const json_t *obj, int comma, int depth)
{
    json_t *o = (json_t *)obj; /* jansson's iterator API is not const-correct */
    int rc;

    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
        if (comma && (rc = jsonw__putc(s, ',')))
            return rc;
        comma = 1;
        if ((rc = jsonw__string(s, json_object_iter_key(it), json_object_iter_key_len(it))))
            return rc;
        if ((rc = jsonw__putc(s, ':')))
            return rc;
        if ((rc = jsonw__value(s, json_object_iter_value(it), depth)))
            return rc;
    }
    return 0;
}

// NOLINTNEXTLINE(misc-no-recursion): nesting is refused past JSONW_DEPTH_MAX
static int jsonw__value(jsonw__sink_t *s, const json_t *v, int depth)
{
    int rc;

    if (!v)
        return -EINVAL;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return jsonw__put(s, "null", 4);
    case JSON_TRUE:
        return jsonw__put(s, "true", 4);
    case JSON_FALSE:
        return jsonw__put(s, "false", 5);
    case JSON_INTEGER:
        return jsonw__integer(s, json_integer_value(v));
    case JSON_REAL:
        return jsonw__real(s, json_real_value(v));
    case JSON_STRING:
        return jsonw__string(s, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        if (depth >= JSONW_DEPTH_MAX)
            return -EINVAL;
        if ((rc = jsonw__putc(s, '[')))
            return rc;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i && (rc = jsonw__putc(s, ',')))
                return rc;
            if ((rc = jsonw__value(s, json_array_get(v, i), depth + 1)))
                return rc;
        }
        return jsonw__putc(s, ']');
    }
    case JSON_OBJECT:
        if (depth >= JSONW_DEPTH_MAX)
            return -EINVAL;
        if ((rc = jsonw__putc(s, '{')))
            return rc;
        if ((rc = jsonw__members(s, v, 0, depth + 1)))
            return rc;
        return jsonw__putc(s, '}');
    }
    return -EINVAL;
}

/* Cuts out back to len after a failed write. */
static int jsonw__undo(buf_t *out, size_t len, int rc)
{
    if (rc && out->data) {
        out->len = len;
        out->data[len] = '\0';
    }
    return rc;
}

int jsonw_value(buf_t *out, const json_t *v)
{
    jsonw__sink_t s = {.buf = out};
    size_t len = out->len;
    return jsonw__undo(out, len, jsonw__value(&s, v, 0));
}

int jsonw_string(buf_t *out, const char *str, size_t len)
{
    jsonw__sink_t s = {.buf = out};
    size_t start = out->len;
    return jsonw__undo(out, start, jsonw__string(&s, str, len));
}

int jsonw_object_with(buf_t *out, const json_t *obj, const char *prefix_members)
{
    jsonw__sink_t s = {.buf = out};
    size_t len = out->len;
    size_t plen = prefix_members ? strlen(prefix_members) : 0;
    int rc;

    if (!json_is_object(obj))
        return -EINVAL;
    if ((rc = jsonw__putc(&s, '{')))
        goto fail;
    if (plen && (rc = jsonw__put(&s, prefix_members, plen)))
        goto fail;
    if ((rc = jsonw__members(&s, obj, plen > 0, 1)))
        goto fail;
    if ((rc = jsonw__putc(&s, '}')))
        goto fail;
    return 0;
fail:
    return jsonw__undo(out, len, rc);
}

int jsonw_size(const json_t *v, size_t limit, size_t *out)
{
    jsonw__sink_t s = {.buf = NULL, .count = 0, .limit = limit};
    int rc = jsonw__value(&s, v, 0);
    if (rc)
        return rc;
    *out = s.count;
    return 0;
}
