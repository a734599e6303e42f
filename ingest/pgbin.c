#include "pgbin.h"

#include <errno.h>
#include <string.h>

#include "jsonw.h"

static int put32(buf_t *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return buf_append(b, x, 4);
}

static int put16(buf_t *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    return buf_append(b, x, 2);
}

static void patch32(buf_t *b, size_t at, uint32_t v)
{
    unsigned char *p = (unsigned char *)b->data + at;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int pgbin_array_begin(buf_t *b, uint32_t oid)
{
    buf_reset(b);
    return put32(b, 1) || put32(b, 0) || put32(b, oid) || put32(b, 0) || put32(b, 1);
}

void pgbin_array_end(buf_t *b, uint32_t n, int has_null)
{
    patch32(b, 4, has_null ? 1 : 0);
    patch32(b, 12, n);
}

int pgbin_array_empty(buf_t *b, uint32_t oid)
{
    buf_reset(b);
    const uint32_t ndim = 0, has_nulls = 0;
    return put32(b, ndim) || put32(b, has_nulls) || put32(b, oid);
}

int pgbin_null(buf_t *b)
{
    return put32(b, 0xffffffffu);
}

int pgbin_text(buf_t *b, const char *s, int *has_null)
{
    if (!s) {
        *has_null = 1;
        return pgbin_null(b);
    }
    size_t len = strlen(s);
    return put32(b, (uint32_t)len) || buf_append(b, s, len);
}

int pgbin_int8(buf_t *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    return put32(b, 8) || put32(b, (uint32_t)(u >> 32)) || put32(b, (uint32_t)u);
}

int pgbin_bool(buf_t *b, int v)
{
    return put32(b, 1) || buf_putc(b, v ? 1 : 0);
}

int pgbin_float8(buf_t *b, double d)
{
    int64_t bits; /* float8send: the IEEE 754 bits, big-endian, as an int8 is sent */
    memcpy(&bits, &d, sizeof bits);
    return pgbin_int8(b, bits);
}

int pgbin_timestamptz(buf_t *b, int64_t unix_us)
{
    return pgbin_int8(b, unix_us - PGBIN_EPOCH_US);
}

int pgbin_jsonb(buf_t *b, const json_t *doc, const char *prefix_members)
{
    size_t at = b->len;
    if (put32(b, 0) || buf_putc(b, 1))
        return -ENOMEM;
    int rc = jsonw_object_with(b, doc, prefix_members);
    if (rc)
        return rc;
    patch32(b, at, (uint32_t)(b->len - at - 4));
    return 0;
}

int pgbin_copy_begin(buf_t *b)
{
    static const char SIGNATURE[11] = "PGCOPY\n\377\r\n";
    buf_reset(b);
    return buf_append(b, SIGNATURE, sizeof SIGNATURE) || put32(b, 0) || put32(b, 0);
}

int pgbin_copy_row(buf_t *b, uint16_t nfields)
{
    return put16(b, nfields);
}

int pgbin_copy_end(buf_t *b)
{
    return put16(b, 0xffff);
}
