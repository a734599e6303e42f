#include "stall.h"

#include <inttypes.h>
#include <stdio.h>

#include "sysevent.h"

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
    return sysevent_build("run_stalled", adw_id, step, summary, payload, received_us, ev, err,
                          errlen);
}
