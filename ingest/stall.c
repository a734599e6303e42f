#include "stall.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "err.h"

int64_t stall_scan_period_ms(int64_t stall_s)
{
    if (stall_s <= 0)
        return 0;
    int64_t ms = stall_s > 20 ? 10000 : stall_s * 500;
    return ms < 250 ? 250 : ms;
}

int64_t stall_idle_s(int64_t now_us, int64_t since_us)
{
    return now_us > since_us ? (now_us - since_us) / 1000000 : 0;
}

int stall_summary(int64_t idle_s, char *out, size_t outlen)
{
    if (idle_s >= 60)
        return snprintf(out, outlen, "No event for %" PRId64 " min", idle_s / 60);
    return snprintf(out, outlen, "No event for %" PRId64 " s", idle_s < 0 ? 0 : idle_s);
}

int stall_event_build(const char *adw_id, const char *step, int64_t idle_s, int64_t last_id,
                      int64_t received_us, adw_event_t *ev, char *err, size_t errlen)
{
    char summary[64];
    stall_summary(idle_s, summary, sizeof summary);
    json_t *payload =
        json_pack("{s:I, s:I}", "idle_s", (json_int_t)idle_s, "last_id", (json_int_t)last_id);
    json_t *doc = json_pack("{s:s, s:s, s:s}", "type", "system", "event", "run_stalled", "adw_id",
                            adw_id ? adw_id : "");
    int rc = -ENOMEM;
    if (!payload || !doc)
        goto fail;
    if ((step && json_object_set_new(doc, "step", json_string(step))) ||
        json_object_set_new(doc, "summary", json_string(summary)) ||
        json_object_set(doc, "payload", payload))
        goto fail;
    rc = event_from_json(doc, received_us, ev, err, errlen);
fail:
    if (rc == -ENOMEM)
        set_err(err, errlen, "out of memory");
    json_decref(payload);
    json_decref(doc);
    return rc;
}
