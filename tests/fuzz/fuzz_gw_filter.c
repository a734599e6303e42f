/* libFuzzer driver for the gateway's input parsers: filters from subscribe messages and query
 * strings (gateway/filter), REST request parsing (gateway/api), and event serialization
 * (gateway/frame).
 *
 * The first byte picks the target; the rest is the input. Any input: no crash, no leak. A
 * refused filter leaves the previous one unchanged; an accepted one echoes (filter_to_json)
 * into a filter that parses back to the same echo and matches the same probe events. An event
 * object that serializes must parse back with "id" and "received_at" first and the same value,
 * and so must its text copied compact as a stored document (frame_from_stored).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "api.h"
#include "codec.h"
#include "filter.h"
#include "frame.h"
#include "jsonw.h"

static const filter_event_t PROBES[] = {
    {{"a1", "build", "TextBlock", "adw_event"}},
    {{"a2", NULL, "step_start", "system"}},
    {{"x", "plan", NULL, NULL}},
    {{NULL, NULL, NULL, NULL}},
};

static char *echo_text(const filter_t *f)
{
    json_t *o = filter_to_json(f);
    CHECK(o);
    buf_t b;
    buf_init(&b, 0);
    CHECK(jsonw_value(&b, o) == 0);
    json_decref(o);
    size_t len;
    return buf_steal(&b, &len);
}

/* An accepted filter survives its own echo. */
static void check_roundtrip(const filter_t *f)
{
    char *t1 = echo_text(f);
    json_t *v = NULL;
    char err[200];
    CHECK(codec_json_parse(t1, strlen(t1), &v, err, sizeof err) == 0);
    filter_t g;
    filter_init(&g);
    CHECK(filter_set_json(&g, v, err, sizeof err) == 0);
    json_decref(v);
    char *t2 = echo_text(&g);
    CHECK(!strcmp(t1, t2));
    for (size_t i = 0; i < sizeof PROBES / sizeof PROBES[0]; i++)
        CHECK(filter_match(f, &PROBES[i]) == filter_match(&g, &PROBES[i]));
    filter_t h;
    filter_init(&h);
    CHECK(filter_copy(&h, f) == 0);
    char *t3 = echo_text(&h);
    CHECK(!strcmp(t1, t3));
    filter_free(&g);
    filter_free(&h);
    free(t1);
    free(t2);
    free(t3);
}

static void fuzz_json_filter(const char *data, size_t size)
{
    json_t *v = NULL;
    char err[200];
    /* Any text as a stored document: no crash; taken or not. */
    frame_t *stored = frame_from_stored(1, data, size, NULL);
    if (codec_json_parse(data, size, &v, err, sizeof err)) {
        frame_unref(&stored);
        return;
    }
    filter_t f;
    filter_init(&f);
    char keep[] = "keep";
    CHECK(filter_set_csv(&f, FILTER_TYPES, keep, 4, err, sizeof err) == 0);
    if (filter_set_json(&f, v, err, sizeof err)) {
        CHECK(f.key[FILTER_TYPES].n == 1 && !strcmp(f.key[FILTER_TYPES].v[0], "keep"));
        CHECK(err[0]);
    } else {
        check_roundtrip(&f);
    }
    /* Whatever it is, try it as an event too. */
    buf_t b;
    buf_init(&b, 0);
    if (!frame_write_event(&b, v, err, sizeof err)) {
        json_t *back = NULL;
        CHECK(codec_json_parse(b.data, b.len, &back, err, sizeof err) == 0);
        void *it = json_object_iter(back);
        CHECK(it && !strcmp(json_object_iter_key(it), "id"));
        it = json_object_iter_next(back, it);
        CHECK(it && !strcmp(json_object_iter_key(it), "received_at"));
        CHECK(json_equal(back, v));
        json_decref(back);
        frame_t *fr = frame_from_event(v, err, sizeof err);
        CHECK(fr && fr->len == b.len && !memcmp(fr->payload, b.data, b.len));
        frame_unref(&fr);
        /* The same document as text, copied compact instead of decoded: the same value, with
         * "id" and "received_at" first. */
        CHECK(stored);
        CHECK(codec_json_parse((const char *)stored->payload, stored->len, &back, err,
                               sizeof err) == 0);
        it = json_object_iter(back);
        CHECK(it && !strcmp(json_object_iter_key(it), "id"));
        it = json_object_iter_next(back, it);
        CHECK(it && !strcmp(json_object_iter_key(it), "received_at"));
        CHECK(json_equal(back, v));
        json_decref(back);
    } else {
        CHECK(b.len == 0);
    }
    frame_unref(&stored);
    buf_free(&b);
    filter_free(&f);
    json_decref(v);
}

static void fuzz_csv(const char *data, size_t size)
{
    if (!size)
        return;
    filter_key_t k = (filter_key_t)((unsigned char)data[0] % FILTER_NKEYS);
    filter_t f;
    filter_init(&f);
    char err[200];
    if (!filter_set_csv(&f, k, data + 1, size - 1, err, sizeof err)) {
        for (size_t i = 0; i < f.key[k].n; i++)
            CHECK(strlen(f.key[k].v[i]) >= 1 && strlen(f.key[k].v[i]) <= FILTER_VALUE_MAX);
        CHECK(f.key[k].n <= FILTER_VALUES_MAX);
        check_roundtrip(&f);
    } else {
        CHECK(f.key[k].n == 0);
    }
    filter_free(&f);
}

static void fuzz_api(const char *data, size_t size)
{
    /* path \n name=value \n name=value ... (NULs end strings early, like lws's decoding) */
    char *copy = malloc(size + 1);
    CHECK(copy);
    memcpy(copy, data, size);
    copy[size] = '\0';
    param_t params[16];
    size_t n = 0;
    char *line = strchr(copy, '\n');
    if (line)
        *line++ = '\0';
    while (line && n < 16) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        params[n].name = line;
        params[n].value = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        n++;
        line = next;
    }
    api_query_t q;
    char err[200];
    int st = api_parse(copy, params, n, &q, err, sizeof err);
    CHECK(st == 0 || st == 400 || st == 404);
    if (!st) {
        CHECK(q.limit >= 1 && q.limit <= API_LIMIT_MAX && q.since >= 0);
        if (q.kind == API_RUN)
            CHECK(strlen(q.adw_id) >= 1 && strlen(q.adw_id) <= 64);
    }
    api_query_free(&q);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    const char *d = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        fuzz_json_filter(d, n);
        break;
    case 1:
        fuzz_csv(d, n);
        break;
    default:
        fuzz_api(d, n);
        break;
    }
    return 0;
}
