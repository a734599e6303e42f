/* mode_json: --json, whole events from stdin: one JSON object, an array of them, or NDJSON;
 * --adw-id and --step fill the events that have none. */
#include <string.h>

#include "codec.h"
#include "input.h"
#include "log.h"
#include "mode.h"

/* Whether the bytes hold only JSON whitespace. */
static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return 0;
    return 1;
}

/* Parses --json input into events (a new array), logging what is not JSON. NDJSON when the
 * whole input is not one JSON text but its first line is. */
static json_t *parse_events(run_t *s, const char *p, size_t len)
{
    json_t *v = NULL;
    char why[256];
    if (codec_json_parse(p, len, &v, why, sizeof why) == 0) {
        if (json_is_array(v))
            return v;
        json_t *arr = json_array();
        if (arr)
            json_array_append_new(arr, v);
        else
            json_decref(v);
        return arr;
    }
    /* NDJSON? Only when the first non-blank line is a JSON text on its own. */
    size_t pos = 0;
    while (pos < len && blank(p + pos, 1))
        pos++;
    const char *nl = memchr(p + pos, '\n', len - pos);
    size_t first = nl ? (size_t)(nl - (p + pos)) : len - pos;
    json_t *probe = NULL;
    char why2[8];
    if (!nl || codec_json_parse(p + pos, first, &probe, why2, sizeof why2)) {
        log_error("stdin is not JSON (an event, an array, or NDJSON): %s; not sent", why);
        s->tally.invalid++;
        return NULL;
    }
    json_decref(probe);
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t line = 0;
    pos = 0;
    while (pos < len) {
        nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - p) : len;
        line++;
        if (!blank(p + pos, end - pos)) {
            if (codec_json_parse(p + pos, end - pos, &v, why, sizeof why)) {
                log_error("stdin line %zu is not JSON: %s; not sent", line, why);
                s->tally.invalid++;
            } else {
                json_array_append_new(arr, v);
            }
        }
        pos = end + 1;
    }
    return arr;
}

/* Fills adw_id and step where an event has none (or null); --json only. */
static void fill_defaults(run_t *s, json_t *ev)
{
    json_t *a = json_object_get(ev, "adw_id"), *st = json_object_get(ev, "step");
    if (s->opt.adw_id && *s->opt.adw_id && (!a || json_is_null(a)))
        json_object_set_new(ev, "adw_id", json_string(s->opt.adw_id));
    if (s->opt.step && *s->opt.step && (!st || json_is_null(st)))
        json_object_set_new(ev, "step", json_string(s->opt.step));
}

int mode_json_send(run_t *s)
{
    buf_t in;
    if (input_read(s, &in)) {
        buf_free(&in);
        return 0;
    }
    json_t *arr = parse_events(s, in.data, in.len);
    buf_free(&in);
    if (!arr)
        return 0;
    size_t i;
    json_t *ev;
    json_array_foreach(arr, i, ev)
    {
        if (json_is_object(ev))
            fill_defaults(s, ev);
    }
    json_t *ok = run_valid_events(s, arr, "event", 0);
    run_deliver(s, ok, run_ms_left(s->deadline_us));
    json_decref(ok);
    json_decref(arr);
    return 0;
}
