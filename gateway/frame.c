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

frame_t *frame_new_text(const char *text, size_t len)
{
    frame_t *f = frame_alloc(len, 0);
    if (f)
        memcpy(f->payload, text, len);
    return f;
}

frame_t *frame_new_event_raw(int64_t id, const char *json, size_t len, const filter_event_t *fields)
{
    size_t extra = 0;
    for (int k = 0; k < FILTER_NKEYS; k++)
        if (fields && fields->field[k])
            extra += strlen(fields->field[k]) + 1;
    frame_t *f = frame_alloc(len, extra);
    if (!f)
        return NULL;
    f->id = id;
    memcpy(f->payload, json, len);
    char *p = (char *)f->payload + len + 1;
    for (int k = 0; k < FILTER_NKEYS; k++) {
        if (!fields || !fields->field[k])
            continue;
        size_t n = strlen(fields->field[k]) + 1;
        memcpy(p, fields->field[k], n);
        f->fields.field[k] = p;
        p += n;
    }
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
