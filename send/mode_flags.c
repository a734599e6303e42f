/* mode_flags: adw-send's default mode, one event described by the flags (--adw-id, --type,
 * --event-type, --event, --status, --summary, --payload, --duration-ms, --event-id). */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "log.h"
#include "mode.h"

/* Sets key to the text v when v is not NULL; names the flag in *bad when v is not UTF-8. */
static void put_text(json_t *ev, const char *key, const char *v, const char *flag, const char **bad)
{
    if (!v)
        return;
    json_t *j = json_string(v);
    if (!j) {
        if (!*bad)
            *bad = flag;
        return;
    }
    json_object_set_new(ev, key, j);
}

int mode_flags_send(run_t *s)
{
    const send_options_t *o = &s->opt;
    if (!o->adw_id || !*o->adw_id) {
        log_error("no adw_id: give --adw-id or set ADW_ID; not sent");
        s->tally.invalid++;
        return 0;
    }
    const char *type = o->type ? o->type : o->event && !o->event_type ? "system" : "adw_event";
    json_t *ev = json_object();
    if (!ev)
        return -ENOMEM;
    const char *bad = NULL;
    put_text(ev, "type", type, "--type", &bad);
    put_text(ev, "adw_id", o->adw_id, "--adw-id", &bad);
    if (o->step && *o->step)
        put_text(ev, "step", o->step, "--step", &bad);
    put_text(ev, "event_type", o->event_type, "--event-type", &bad);
    put_text(ev, "event", o->event, "--event", &bad);
    put_text(ev, "status", o->status, "--status", &bad);
    if (o->duration_ms >= 0)
        json_object_set_new(ev, "duration_ms", json_integer(o->duration_ms));
    put_text(ev, "summary", o->summary, "--summary", &bad);
    if (bad) {
        log_error("%s is not valid UTF-8; not sent", bad);
        json_decref(ev);
        s->tally.invalid++;
        return 0;
    }
    if (o->payload) {
        json_t *p = NULL;
        char why[256];
        if (codec_json_parse(o->payload, strlen(o->payload), &p, why, sizeof why) ||
            !json_is_object(p)) {
            log_error("--payload must be a JSON object%s%s; not sent", p ? "" : ": ", p ? "" : why);
            json_decref(p);
            json_decref(ev);
            s->tally.invalid++;
            return 0;
        }
        json_object_set_new(ev, "payload", p);
    }
    put_text(ev, "event_id", o->event_id, "--event-id", &bad);
    if (bad) {
        log_error("%s is not valid UTF-8; not sent", bad);
        json_decref(ev);
        s->tally.invalid++;
        return 0;
    }
    run_send_one(s, ev);
    return 0;
}
