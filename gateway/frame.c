#include "frame.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

/* Allocates a frame with room for len payload bytes and extra bytes of field strings. */
static frame_t *frame_alloc(size_t len, size_t extra)
{
    if (len > SIZE_MAX / 2 || extra > SIZE_MAX / 4)
        return NULL;
    frame_t *f = malloc(sizeof *f + FRAME_HEADROOM + len + 1 + extra);
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    f->id = 0;
    f->len = len;
    memset(&f->fields, 0, sizeof f->fields);
    f->payload = f->mem + FRAME_HEADROOM;
    f->payload[len] = '\0';
    /* RFC 6455 5.2: FIN and opcode 1 (text), then the length in 7, 7+16 or 7+64 bits. */
    size_t hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    unsigned char *h = f->payload - hlen;
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    f->wire = h;
    f->wire_len = hlen + len;
    return f;
}

/* The bytes the strings of fields (may be NULL) take, each with its terminator. */
static size_t fields_size(const filter_event_t *fields)
{
    size_t n = 0;
    for (int k = 0; k < FILTER_NKEYS; k++)
        if (fields && fields->field[k])
            n += strlen(fields->field[k]) + 1;
    return n;
}

/* Copies the strings of fields (may be NULL) after f's payload and points f's fields at them. */
static void copy_fields(frame_t *f, const filter_event_t *fields)
{
    char *p = (char *)f->payload + f->len + 1;
    for (int k = 0; k < FILTER_NKEYS; k++) {
        if (!fields || !fields->field[k])
            continue;
        size_t n = strlen(fields->field[k]) + 1;
        memcpy(p, fields->field[k], n);
        f->fields.field[k] = p;
        p += n;
    }
}

frame_t *frame_new_text(const char *text, size_t len)
{
    frame_t *f = frame_alloc(len, 0);
    if (f)
        memcpy(f->payload, text, len);
    return f;
}

frame_t *frame_new_event_raw(int64_t id, const char *json, size_t len, const filter_event_t *fields)
{
    frame_t *f = frame_alloc(len, fields_size(fields));
    if (!f)
        return NULL;
    f->id = id;
    memcpy(f->payload, json, len);
    copy_fields(f, fields);
    return f;
}

/* Returns the index just past the JSON string that starts with '"' at t[i], or 0. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (t[i] == '\\')
            i++;
        else if (t[i] == '"')
            return i + 1;
    }
    return 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Returns the index just past the JSON value that starts at t[i] (no leading whitespace), or 0
 * when the text ends first. Scalars end at the first ',', '}', ']' or whitespace. */
static size_t skip_value(const char *t, size_t len, size_t i)
{
    size_t depth = 0;
    while (i < len) {
        char c = t[i];
        if (c == '"') {
            i = skip_string(t, len, i);
            if (!i)
                return 0;
            if (!depth)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (!depth)
                return i;
            if (!--depth)
                return i + 1;
        } else if (!depth && (c == ',' || is_ws(c))) {
            return i;
        }
        i++;
    }
    return depth ? 0 : i;
}

/* Appends t[a..b) without whitespace outside strings at *o, or, with o NULL, only counts;
 * returns the bytes. */
static size_t put_compact(unsigned char *o, const char *t, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t i = a; i < b;) {
        if (t[i] == '"') {
            size_t e = skip_string(t, b, i);
            if (!e)
                e = b;
            if (o)
                memcpy(o + n, t + i, e - i);
            n += e - i;
            i = e;
        } else {
            if (!is_ws(t[i])) {
                if (o)
                    o[n] = (unsigned char)t[i];
                n++;
            }
            i++;
        }
    }
    return n;
}

/* Writes the object t[body-1..end] (end: its closing brace) compact at o (NULL: only counts),
 * with the members whose keys start at first[0] and first[1] (spans [key, value end)) first.
 * Returns the bytes. */
static size_t put_object(unsigned char *o, const char *t, size_t body, size_t end,
                         const size_t first[2][2])
{
    size_t n = 0;
#define PUT(c) (o ? (void)(o[n++] = (c)) : (void)n++)
    PUT('{');
    n += put_compact(o ? o + n : NULL, t, first[0][0], first[0][1]);
    PUT(',');
    n += put_compact(o ? o + n : NULL, t, first[1][0], first[1][1]);
    for (size_t a = body; a < end;) {
        while (a < end && (is_ws(t[a]) || t[a] == ','))
            a++;
        if (a >= end)
            break;
        size_t v = skip_string(t, end, a);
        while (v && v < end && (is_ws(t[v]) || t[v] == ':'))
            v++;
        size_t ve = v ? skip_value(t, end, v) : 0;
        if (!ve)
            ve = end;
        if (a != first[0][0] && a != first[1][0]) {
            PUT(',');
            n += put_compact(o ? o + n : NULL, t, a, ve);
        }
        a = ve;
    }
    PUT('}');
#undef PUT
    return n;
}

frame_t *frame_from_stored(int64_t id, const char *t, size_t len, const filter_event_t *fields)
{
    /* Find the top-level members "id" and "received_at": [key start, value end). */
    size_t span[2][2] = {{0, 0}, {0, 0}};
    size_t i = 0;
    while (i < len && is_ws(t[i]))
        i++;
    if (i >= len || t[i] != '{')
        return NULL;
    size_t body = ++i;
    for (int first = 1;; first = 0) {
        while (i < len && is_ws(t[i]))
            i++;
        if (first && i < len && t[i] == '}')
            break;
        if (i >= len || t[i] != '"')
            return NULL;
        size_t k = i, ke = skip_string(t, len, i);
        if (!ke)
            return NULL;
        i = ke;
        while (i < len && is_ws(t[i]))
            i++;
        if (i >= len || t[i] != ':')
            return NULL;
        i++;
        while (i < len && is_ws(t[i]))
            i++;
        size_t ve = skip_value(t, len, i);
        if (!ve || ve == i)
            return NULL;
        size_t klen = ke - k;
        int which = klen == 4 && !memcmp(t + k, "\"id\"", 4)              ? 0
                    : klen == 13 && !memcmp(t + k, "\"received_at\"", 13) ? 1
                                                                          : -1;
        if (which >= 0 && !span[which][1]) {
            span[which][0] = k;
            span[which][1] = ve;
        }
        i = ve;
        while (i < len && is_ws(t[i]))
            i++;
        if (i < len && t[i] == ',') {
            i++;
            continue;
        }
        if (i < len && t[i] == '}')
            break;
        return NULL;
    }
    if (!span[0][1] || !span[1][1])
        return NULL;

    size_t n = put_object(NULL, t, body, i, (const size_t(*)[2])span);
    frame_t *f = frame_alloc(n, fields_size(fields));
    if (!f)
        return NULL;
    put_object(f->payload, t, body, i, (const size_t(*)[2])span);
    f->id = id;
    copy_fields(f, fields);
    return f;
}

int frame_write_event(buf_t *out, const json_t *doc, char *err, size_t errlen)
{
    const json_t *id = json_object_get(doc, "id");
    const json_t *rat = json_object_get(doc, "received_at");
    if (!json_is_object(doc) || !json_is_integer(id) || json_integer_value(id) <= 0) {
        snprintf(err, errlen, "event without a positive integer id");
        return -EINVAL;
    }
    if (!json_is_string(rat)) {
        snprintf(err, errlen, "event %" PRId64 " without received_at",
                 (int64_t)json_integer_value(id));
        return -EINVAL;
    }
    size_t start = out->len;
    int rc =
        buf_printf(out, "{\"id\":%" PRId64 ",\"received_at\":", (int64_t)json_integer_value(id));
    if (!rc)
        rc = jsonw_string(out, json_string_value(rat), json_string_length(rat));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (rc)
            break;
        if (!strcmp(key, "id") || !strcmp(key, "received_at"))
            continue;
        rc = buf_putc(out, ',');
        if (!rc)
            rc = jsonw_string(out, key, strlen(key));
        if (!rc)
            rc = buf_putc(out, ':');
        if (!rc)
            rc = jsonw_value(out, v);
    }
    if (!rc)
        rc = buf_putc(out, '}');
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        snprintf(err, errlen, "cannot serialize event: %s", strerror(-rc));
    }
    return rc;
}

frame_t *frame_from_event(const json_t *doc, char *err, size_t errlen)
{
    buf_t b;
    buf_init(&b, 0);
    if (frame_write_event(&b, doc, err, errlen))
        return NULL;
    filter_event_t fields;
    filter_event_from_json(doc, &fields);
    frame_t *f =
        frame_new_event_raw(json_integer_value(json_object_get(doc, "id")), b.data, b.len, &fields);
    buf_free(&b);
    if (!f)
        snprintf(err, errlen, "out of memory");
    return f;
}

frame_t *frame_ref(frame_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void frame_unref(frame_t **pf)
{
    if (!pf || !*pf)
        return;
    frame_t *f = *pf;
    *pf = NULL;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}
