#include "fit.h"
#include "claude_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "utf8.h"

/* "…[truncated " + digits + " bytes]": 3 + 11 + digits + 7 bytes, none escaped in JSON */
#define FIT_MARK_FIXED 21
#define FIT_ROUNDS 6       /* cut/replace rounds before the stub */
#define FIT_WALK_DEPTH 256 /* strings deeper than this are left to the top-level pass */

/* Bytes of j as compact JSON, counted by jsonw_size() as the contract's limit is checked.
 * Returns 0 and sets *size, or -EINVAL (nested deeper than JSONW_DEPTH_MAX). */
static int measure(const json_t *j, size_t *size)
{
    return jsonw_size(j, SIZE_MAX, size);
}

/* Bytes of n raw string bytes once escaped in JSON (without the quotes), as jsonw writes
 * them: 2 for `"`, `\` and \b \f \n \r \t, 6 for the other control characters. */
static size_t escaped_len(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t')
            c += 2;
        else if (b < 0x20)
            c += 6;
        else
            c += 1;
    }
    return c;
}

/* Decimal digits of v. */
static size_t digits(size_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* One of these per string of the payload, while shortening. */
typedef struct fit_str_t {
    json_t *s;
    size_t esc;  /* escaped length, without quotes */
    size_t mark; /* upper bound of the marker's length when cut */
} fit_str_t;

/* The strings of one payload. */
typedef struct fit_vec_t {
    fit_str_t *v;
    size_t n, cap;
} fit_vec_t;

/* Adds every string of j, down to FIT_WALK_DEPTH levels, to vec. Returns 0 or -ENOMEM. */
// NOLINTNEXTLINE(misc-no-recursion): bounded, FIT_WALK_DEPTH levels at most
static int collect(json_t *j, fit_vec_t *vec, int depth)
{
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_string(j)) {
        if (vec->n == vec->cap) {
            size_t cap = vec->cap ? vec->cap * 2 : 64;
            fit_str_t *p = realloc(vec->v, cap * sizeof *p);
            if (!p)
                return -ENOMEM;
            vec->v = p;
            vec->cap = cap;
        }
        size_t raw = json_string_length(j);
        vec->v[vec->n].s = j;
        vec->v[vec->n].esc = escaped_len(json_string_value(j), raw);
        vec->v[vec->n].mark = FIT_MARK_FIXED + digits(raw);
        vec->n++;
        return 0;
    }
    if (depth >= FIT_WALK_DEPTH)
        return 0;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            int rc = collect(v, vec, depth + 1);
            if (rc < 0)
                return rc;
        }
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
        {
            int rc = collect(v, vec, depth + 1);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Bytes saved by cutting every string to an escaped prefix of at most cap bytes. */
static size_t saving_at(const fit_vec_t *vec, size_t cap)
{
    size_t total = 0;
    for (size_t i = 0; i < vec->n; i++)
        if (vec->v[i].esc > cap + vec->v[i].mark)
            total += vec->v[i].esc - cap - vec->v[i].mark;
    return total;
}

/* Replaces string s by its prefix of at most cap escaped bytes, cut on a UTF-8 boundary,
 * and the marker. Returns 0 or -ENOMEM. */
static int cut_string(json_t *s, size_t cap)
{
    const char *p = json_string_value(s);
    size_t raw = json_string_length(s);
    size_t i = 0, esc = 0;
    while (i < raw) {
        size_t k = utf8_char_len(p + i, raw - i);
        if (k == 0)
            k = 1; /* cannot happen for a jansson string */
        size_t c = k == 1 ? escaped_len(p + i, 1) : k;
        if (esc + c > cap)
            break;
        esc += c;
        i += k;
    }
    size_t room = i + FIT_MARK_FIXED + 24;
    char *buf = malloc(room);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, p, i);
    int n = snprintf(buf + i, room - i, HOOK_ELLIPSIS "[truncated %zu bytes]", raw - i);
    int rc = json_string_setn(s, buf, i + (size_t)n) == 0 ? 0 : -ENOMEM;
    free(buf);
    return rc;
}

/* Cuts the longest strings to one common length so that about `excess` bytes go.
 * Returns 1 when it cut, 0 when strings alone cannot save that much, or -ENOMEM. */
static int cut_strings(json_t *payload, size_t excess)
{
    fit_vec_t vec = {0};
    int rc = collect(payload, &vec, 0);
    if (rc < 0)
        goto fail;
    if (saving_at(&vec, 0) < excess) {
        rc = 0;
        goto fail;
    }
    /* the largest cap whose saving still covers the excess */
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < vec.n; i++)
        if (vec.v[i].esc > hi)
            hi = vec.v[i].esc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (saving_at(&vec, mid) >= excess)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (size_t i = 0; i < vec.n; i++) {
        if (vec.v[i].esc > lo + vec.v[i].mark) {
            rc = cut_string(vec.v[i].s, lo);
            if (rc < 0)
                goto fail;
        }
    }
    rc = 1;
fail:
    free(vec.v);
    return rc;
}

/* One of these per top-level value, while shortening. */
typedef struct fit_top_t {
    void *iter;
    size_t size;
} fit_top_t;

static int top_cmp(const void *a, const void *b)
{
    size_t x = ((const fit_top_t *)a)->size, y = ((const fit_top_t *)b)->size;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Replaces the largest top-level values by a marker until about `excess` bytes went.
 * Returns 1 when it replaced something, 0 when nothing could go, -EINVAL (a value cannot be
 * measured) or -ENOMEM. */
static int replace_values(json_t *payload, size_t excess)
{
    size_t n = json_object_size(payload), k = 0, saved = 0;
    int rc = 0;
    fit_top_t *tops = calloc(n ? n : 1, sizeof *tops);
    if (!tops)
        return -ENOMEM;
    for (void *it = json_object_iter(payload); it && k < n;
         it = json_object_iter_next(payload, it)) {
        if (strcmp(json_object_iter_key(it), "adw_truncated") == 0)
            continue;
        size_t sz;
        rc = measure(json_object_iter_value(it), &sz);
        if (rc < 0)
            goto fail;
        tops[k].iter = it;
        tops[k].size = sz;
        k++;
    }
    qsort(tops, k, sizeof *tops, top_cmp);
    for (size_t i = 0; i < k && saved < excess; i++) {
        size_t mark = FIT_MARK_FIXED + digits(tops[i].size) + 2;
        if (tops[i].size <= mark)
            break;
        char text[64];
        snprintf(text, sizeof text, HOOK_ELLIPSIS "[truncated %zu bytes]", tops[i].size);
        if (json_object_iter_set_new(payload, tops[i].iter, json_string(text)) != 0) {
            rc = -ENOMEM;
            goto fail;
        }
        saved += tops[i].size - mark;
        rc = 1;
    }
fail:
    free(tops);
    return rc;
}

int hook_payload_fit(json_t *payload, size_t max)
{
    size_t size, original;
    int rc;

    if (!json_is_object(payload))
        return -EINVAL;
    if ((rc = measure(payload, &size)) < 0)
        return rc;
    if (size <= max)
        return 0;
    original = size;
    if (json_object_set_new(payload, "adw_truncated", json_true()) != 0)
        return -ENOMEM;
    if ((rc = measure(payload, &size)) < 0)
        return rc;
    for (int round = 0; round < FIT_ROUNDS && size > max; round++) {
        rc = cut_strings(payload, size - max);
        if (rc == 0)
            rc = replace_values(payload, size - max);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if ((rc = measure(payload, &size)) < 0)
            return rc;
    }
    if (size <= max)
        return 0;
    /* thousands of small keys: keep a stub that says what happened */
    json_object_clear(payload);
    if (json_object_set_new(payload, "adw_truncated", json_true()) != 0 ||
        json_object_set_new(payload, "adw_original_bytes", json_integer((json_int_t)original)) != 0)
        return -ENOMEM;
    if ((rc = measure(payload, &size)) < 0)
        return rc;
    return size <= max ? 0 : -E2BIG;
}
