#include "hook.h"
#include "err.h"

#include <errno.h>
#include <string.h>

#include "event.h"
#include "utf8.h"

/* Whether j nests arrays/objects deeper than limit levels (a scalar is 0 deep). */
// NOLINTNEXTLINE(misc-no-recursion): bounded, limit levels at most (ADW_JSON_DEPTH_MAX)
static bool depth_over(const json_t *j, int limit)
{
    size_t i;
    const char *key;
    json_t *v;
    if (!json_is_object(j) && !json_is_array(j))
        return false;
    if (limit <= 0)
        return true;
    /* jansson's iteration API is not const-qualified; nothing is modified here */
    if (json_is_array(j)) {
        json_array_foreach((json_t *)j, i, v)
        {
            if (depth_over(v, limit - 1))
                return true;
        }
    } else {
        json_object_foreach((json_t *)j, key, v)
        {
            if (depth_over(v, limit - 1))
                return true;
        }
    }
    return false;
}

bool hook_adw_id_valid(const char *s, size_t len)
{
    return s && event_adw_id_valid(s, len);
}

/* Checks a text part: at most max bytes of UTF-8 without NUL (the C string ends there). */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n <= max && utf8_validate(s, n) == 0;
}

const char *hook_agent_text(const json_t *j, size_t max)
{
    if (!json_is_string(j))
        return NULL;
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n == 0 || n > max || memchr(s, '\0', n) != NULL || utf8_validate(s, n) != 0)
        return NULL;
    return s;
}

int hook_event_new(const hook_event_parts_t *parts, json_t *payload, json_t **event_out, char *err,
                   size_t errlen)
{
    json_t *ev = NULL;
    char prefix[HOOK_SESSION_ID_PREFIX + 1];
    const char *id = parts->adw_id;
    size_t idlen;
    int rc = -EINVAL;

    *event_out = NULL;
    if (id && *id) {
        idlen = strnlen(id, ADW_ADW_ID_MAX + 1);
        if (!event_adw_id_valid(id, idlen)) {
            set_err(err, errlen, "adw_id must be 1-%d chars of [A-Za-z0-9._:-]", ADW_ADW_ID_MAX);
            goto fail;
        }
    } else if (parts->session_id && *parts->session_id) {
        idlen = strnlen(parts->session_id, HOOK_SESSION_ID_PREFIX);
        memcpy(prefix, parts->session_id, idlen);
        prefix[idlen] = '\0';
        id = prefix;
        if (!event_adw_id_valid(id, idlen)) {
            set_err(err, errlen,
                    "adw_id from session_id must be 1-%d chars of [A-Za-z0-9._:-]; give "
                    "?adw_id= or X-ADW-Id",
                    ADW_ADW_ID_MAX);
            goto fail;
        }
    } else {
        set_err(err, errlen, "no adw_id: give ?adw_id=, X-ADW-Id, or a session_id");
        goto fail;
    }
    if (parts->step && *parts->step && !text_ok(parts->step, ADW_STEP_MAX)) {
        set_err(err, errlen, "step must be at most %d bytes of UTF-8", ADW_STEP_MAX);
        goto fail;
    }
    if (parts->agent_id && *parts->agent_id && !text_ok(parts->agent_id, ADW_AGENT_ID_MAX)) {
        set_err(err, errlen, "agent_id must be 1-%d bytes of UTF-8", ADW_AGENT_ID_MAX);
        goto fail;
    }
    if (parts->agent_type && *parts->agent_type &&
        !text_ok(parts->agent_type, ADW_AGENT_TYPE_MAX)) {
        set_err(err, errlen, "agent_type must be 1-%d bytes of UTF-8", ADW_AGENT_TYPE_MAX);
        goto fail;
    }
    if (!parts->event_type || !*parts->event_type ||
        !text_ok(parts->event_type, ADW_EVENT_TYPE_MAX)) {
        set_err(err, errlen, "event_type must be 1-%d bytes of UTF-8", ADW_EVENT_TYPE_MAX);
        goto fail;
    }
    if (parts->status && *parts->status && !text_ok(parts->status, ADW_STATUS_MAX)) {
        set_err(err, errlen, "status must be at most %d bytes of UTF-8", ADW_STATUS_MAX);
        goto fail;
    }
    if (parts->summary && !text_ok(parts->summary, ADW_SUMMARY_MAX)) {
        set_err(err, errlen, "summary must be at most %d bytes of UTF-8", ADW_SUMMARY_MAX);
        goto fail;
    }
    if (parts->has_duration && parts->duration_ms < 0) {
        set_err(err, errlen, "duration_ms must be >= 0");
        goto fail;
    }
    if (payload) {
        if (!json_is_object(payload)) {
            set_err(err, errlen, "payload is not an object");
            goto fail;
        }
        if (depth_over(payload, ADW_JSON_DEPTH_MAX - 1)) {
            set_err(err, errlen, "payload nests deeper than %d levels", ADW_JSON_DEPTH_MAX - 1);
            goto fail;
        }
        rc = hook_payload_fit(payload, ADW_PAYLOAD_MAX);
        if (rc < 0) {
            set_err(err, errlen, "payload: %s", rc == -ENOMEM ? "out of memory" : strerror(-rc));
            goto fail;
        }
    }

    ev = json_object();
    if (!ev)
        goto nomem;
    if (json_object_set_new(ev, "type", json_string("adw_event")) != 0 ||
        json_object_set_new(ev, "adw_id", json_stringn(id, idlen)) != 0)
        goto nomem;
    if (parts->step && *parts->step &&
        json_object_set_new(ev, "step", json_string(parts->step)) != 0)
        goto nomem;
    if (parts->agent_id && *parts->agent_id &&
        json_object_set_new(ev, "agent_id", json_string(parts->agent_id)) != 0)
        goto nomem;
    if (parts->agent_type && *parts->agent_type &&
        json_object_set_new(ev, "agent_type", json_string(parts->agent_type)) != 0)
        goto nomem;
    if (json_object_set_new(ev, "event_type", json_string(parts->event_type)) != 0)
        goto nomem;
    if (parts->status && *parts->status &&
        json_object_set_new(ev, "status", json_string(parts->status)) != 0)
        goto nomem;
    if (parts->has_duration &&
        json_object_set_new(ev, "duration_ms", json_integer(parts->duration_ms)) != 0)
        goto nomem;
    if (parts->summary && json_object_set_new(ev, "summary", json_string(parts->summary)) != 0)
        goto nomem;
    if (payload) {
        int set = json_object_set_new(ev, "payload", payload);
        payload = NULL; /* taken, also on failure */
        if (set != 0)
            goto nomem;
    }
    *event_out = ev;
    return 0;

nomem:
    set_err(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    json_decref(ev);
    json_decref(payload);
    return rc;
}

json_t *hook_to_event(const json_t *hook, const char *adw_id, const char *step, char *err,
                      size_t errlen)
{
    hook_line_t line;
    json_t *ev = NULL;

    if (!json_is_object(hook)) {
        set_err(err, errlen, "hook JSON is not an object");
        return NULL;
    }
    const json_t *name = json_object_get(hook, "hook_event_name");
    if (!name) {
        set_err(err, errlen, "hook_event_name missing");
        return NULL;
    }
    if (!json_is_string(name)) {
        set_err(err, errlen, "hook_event_name is not a string");
        return NULL;
    }
    size_t nlen = json_string_length(name);
    if (nlen == 0 || nlen > ADW_EVENT_TYPE_MAX ||
        memchr(json_string_value(name), '\0', nlen) != NULL) {
        set_err(err, errlen, "hook_event_name must be 1-%d bytes without NUL", ADW_EVENT_TYPE_MAX);
        return NULL;
    }
    hook_line_init(&line);
    hook_line_describe(&line, json_string_value(name), hook);
    json_t *payload = json_deep_copy(hook);
    if (!payload) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    hook_event_parts_t parts = {
        .adw_id = adw_id,
        .session_id = json_string_value(json_object_get(hook, "session_id")),
        .step = step,
        .agent_id = hook_agent_text(json_object_get(hook, "agent_id"), ADW_AGENT_ID_MAX),
        .agent_type = hook_agent_text(json_object_get(hook, "agent_type"), ADW_AGENT_TYPE_MAX),
        .event_type = json_string_value(name),
        .summary = hook_line_finish(&line, NULL),
    };
    if (hook_event_new(&parts, payload, &ev, err, errlen) < 0)
        return NULL;
    return ev;
}
