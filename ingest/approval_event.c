#include "approval_event.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "hook.h"
#include "sysevent.h"
#include "timefmt.h"

void approval_event_time(int64_t us, char *out)
{
    char t[TIMEFMT_LEN];
    timefmt_format(us, t); /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
    memcpy(out, t, 23);
    out[23] = 'Z';
    out[24] = '\0';
}

int approval_event_id_valid(const char *s, size_t len)
{
    if (!s || len != APPROVAL_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Sets key of o to the string s, or null when s is NULL. Returns 0 or -1. */
static int set_str(json_t *o, const char *key, const char *s)
{
    return json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* The one-line summary "<head><tail>", cut to the summary limit. */
static const char *line(hook_line_t *l, const char *head, const char *tail)
{
    hook_line_init(l);
    hook_line_puts(l, head);
    if (tail)
        hook_line_puts(l, tail);
    return hook_line_finish(l, NULL);
}

int approval_event_requested(const approval_request_info_t *a, int64_t received_us, adw_event_t *ev,
                             char *err, size_t errlen)
{
    char expires[32];
    approval_event_time(a->expires_us, expires);
    json_t *p = json_object();
    json_t *input = a->tool_input ? json_deep_copy(a->tool_input) : json_null();
    if (!p || !input || set_str(p, "approval_id", a->approval_id) ||
        set_str(p, "tool_name", a->tool_name) || json_object_set(p, "tool_input", input) ||
        set_str(p, "tool_use_id", a->tool_use_id) || set_str(p, "session_id", a->session_id) ||
        set_str(p, "rule", a->rule) ||
        json_object_set_new(p, "timeout_s", json_integer(a->timeout_s)) ||
        set_str(p, "on_timeout", a->allow_on_timeout ? "allow" : "deny") ||
        set_str(p, "expires_at", expires) ||
        json_object_set_new(p, "hook_event_id", json_integer(a->hook_event_id))) {
        json_decref(input);
        json_decref(p);
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    json_decref(input);
    int rc = hook_payload_fit(p, ADW_PAYLOAD_MAX); /* a huge tool_input is shortened */
    if (rc) {
        json_decref(p);
        set_err(err, errlen, "payload: %s", rc == -ENOMEM ? "out of memory" : "does not fit");
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    hook_line_t l;
    const char *summary =
        line(&l, a->summary && *a->summary ? a->summary : "approval requested", NULL);
    return sysevent_build("approval_requested", a->adw_id, a->step, summary, p, received_us, ev,
                          err, errlen);
}

int approval_event_decided(const char *approval_id, const char *adw_id, const char *step, int allow,
                           const char *reason, const char *decided_by, int64_t waited_ms,
                           const char *tool_summary, int64_t received_us, adw_event_t *ev,
                           char *err, size_t errlen)
{
    json_t *p = json_object();
    if (p && (set_str(p, "approval_id", approval_id) ||
              set_str(p, "decision", allow ? "allow" : "deny") || set_str(p, "reason", reason) ||
              set_str(p, "decided_by", decided_by) ||
              json_object_set_new(p, "waited_ms", json_integer(waited_ms)))) {
        json_decref(p);
        p = NULL;
    }
    char head[128];
    snprintf(head, sizeof head, "%s by %.64s: ", allow ? "Allowed" : "Denied", decided_by);
    hook_line_t l;
    const char *summary = line(&l, head, tool_summary);
    return sysevent_build("approval_decided", adw_id, step, summary, p, received_us, ev, err,
                          errlen);
}

int approval_event_expired(const char *approval_id, const char *adw_id, const char *step,
                           const char *reason, int64_t waited_ms, const char *tool_summary,
                           int64_t received_us, adw_event_t *ev, char *err, size_t errlen)
{
    json_t *p = json_object();
    if (p && (set_str(p, "approval_id", approval_id) || set_str(p, "reason", reason) ||
              json_object_set_new(p, "waited_ms", json_integer(waited_ms)))) {
        json_decref(p);
        p = NULL;
    }
    char head[128];
    snprintf(head, sizeof head, "Approval expired (%.64s): ", reason);
    hook_line_t l;
    const char *summary = line(&l, head, tool_summary);
    return sysevent_build("approval_expired", adw_id, step, summary, p, received_us, ev, err,
                          errlen);
}
