/* http1_query: query strings and paths of a request-target, decoded (http1_query.h). */
#include "http1_query.h"

#include <errno.h>
#include <string.h>

#include "http1_internal.h"

/* Decodes the next byte of s[*i..len): returns 1 with *out, 0 at the end, -EINVAL on a
 * malformed or %00 escape or a raw byte a request-target cannot hold. */
static int pct_next(const char *s, size_t len, size_t *i, int plus_is_space, unsigned char *out)
{
    if (*i >= len)
        return 0;
    unsigned char c = (unsigned char)s[*i];
    if (c == '%') {
        if (len - *i < 3)
            return -EINVAL;
        int hi = http1__hex_value((unsigned char)s[*i + 1]),
            lo = http1__hex_value((unsigned char)s[*i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -EINVAL;
        *out = (unsigned char)(hi * 16 + lo);
        *i += 3;
        return 1;
    }
    if (!http1__is_target_char(c))
        return -EINVAL;
    *out = (plus_is_space && c == '+') ? ' ' : c;
    *i += 1;
    return 1;
}

/* Decodes s[0..len) into out (NUL-terminated). With out == NULL it writes nothing (validation
 * with size SIZE_MAX). Returns 0, -EINVAL or -ENOSPC (a malformed escape anywhere wins over
 * truncation). */
static int decode_into(const char *s, size_t len, int plus_is_space, char *out, size_t size,
                       size_t *out_len)
{
    size_t i = 0, n = 0;
    unsigned char ch;
    int rc;
    while ((rc = pct_next(s, len, &i, plus_is_space, &ch)) > 0) {
        if (out && n + 1 < size)
            out[n] = (char)ch;
        n++;
    }
    if (rc < 0)
        return rc;
    if (n >= size) {
        if (out && size)
            out[size - 1] = '\0';
        return -ENOSPC;
    }
    if (out)
        out[n] = '\0';
    if (out_len)
        *out_len = n;
    return 0;
}

void http1_query_iter_init(http1_query_iter_t *it, http1_str_t query)
{
    it->query = query;
    it->pos = 0;
}

/* Moves past the next non-empty pair; returns 1 with its key and value ranges, or 0. */
static int next_pair(http1_query_iter_t *it, http1_str_t *k, http1_str_t *v)
{
    const char *q = it->query.p;
    size_t len = it->query.len;

    while (it->pos < len) {
        size_t s = it->pos;
        const char *amp = memchr(q + s, '&', len - s);
        size_t e = amp ? (size_t)(amp - q) : len;
        it->pos = amp ? e + 1 : len;
        if (e == s)
            continue;
        const char *eq = memchr(q + s, '=', e - s);
        if (eq) {
            *k = (http1_str_t){q + s, (size_t)(eq - (q + s))};
            *v = (http1_str_t){eq + 1, (size_t)(q + e - (eq + 1))};
        } else {
            *k = (http1_str_t){q + s, e - s};
            *v = (http1_str_t){q + e, 0};
        }
        return 1;
    }
    return 0;
}

int http1_query_next(http1_query_iter_t *it, char *key, size_t key_size, size_t *key_len, char *val,
                     size_t val_size, size_t *val_len)
{
    http1_str_t k, v;
    if (!next_pair(it, &k, &v))
        return -ENOENT;
    int rk = decode_into(k.p, k.len, 1, key, key_size, key_len);
    int rv = decode_into(v.p, v.len, 1, val, val_size, val_len);
    if (rk == -EINVAL || rv == -EINVAL)
        return -EINVAL;
    return rk ? rk : rv;
}

/* Returns 1 when the decoded k equals key, 0 when not, -EINVAL on a malformed escape in k. */
static int key_matches(http1_str_t k, const char *key)
{
    size_t i = 0, n = 0, klen = strlen(key);
    int match = 1, rc;
    unsigned char ch;
    while ((rc = pct_next(k.p, k.len, &i, 1, &ch)) > 0) {
        if (n >= klen || (unsigned char)key[n] != ch)
            match = 0;
        n++;
    }
    if (rc < 0)
        return rc;
    return match && n == klen;
}

int http1_query_get(http1_str_t query, const char *key, char *val, size_t val_size, size_t *val_len)
{
    http1_query_iter_t it;
    http1_str_t k, v;
    http1_query_iter_init(&it, query);
    while (next_pair(&it, &k, &v)) {
        int m = key_matches(k, key);
        if (m < 0)
            return m;
        if (m)
            return decode_into(v.p, v.len, 1, val, val_size, val_len);
        int rc = decode_into(v.p, v.len, 1, NULL, SIZE_MAX, NULL);
        if (rc)
            return rc;
    }
    return -ENOENT;
}

int http1_path_decode(http1_str_t path, char *out, size_t out_size, size_t *out_len)
{
    return decode_into(path.p, path.len, 0, out, out_size, out_len);
}
