#include "sysevent.h"

#include <errno.h>

#include "err.h"

int sysevent_build(const char *name, const char *adw_id, const char *step, const char *summary,
                   json_t *payload, int64_t received_us, adw_event_t *ev, char *err, size_t errlen)
{
    int rc = -ENOMEM;
    json_t *doc = json_pack("{s:s, s:s, s:s}", "type", "system", "event", name, "adw_id",
                            adw_id ? adw_id : "");
    if (!doc || !payload)
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
