#include "event.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "adw_limits.h"
#include "timefmt.h"
#include "utf8.h"

int event_adw_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > ADW_ADW_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

/* Reads an optional string member. Returns 0 with *out (NULL when absent or null),
 * or -EINVAL with the reason written. `required` refuses absent, null and empty. */
static int get_string(json_t *doc, const char *key, size_t max, int required, const char **out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(doc, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "%s is required", key);
            return -EINVAL;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s must be a string", key);
        return -EINVAL;
    }
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (required && len == 0) {
        snprintf(err, errlen, "%s must not be empty", key);
        return -EINVAL;
    }
    if (len > max) {
        snprintf(err, errlen, "%s is %zu bytes, over the limit of %zu", key, len, max);
        return -EINVAL;
    }
    if (memchr(s, '\0', len)) {
        snprintf(err, errlen, "%s contains a NUL character", key);
        return -EINVAL;
    }
    *out = s;
    return 0;
}

/* Reads an optional key that names an agent: absent or null is none, else a string of 1..max
 * bytes of valid UTF-8. Returns 0 or -EINVAL with the reason written. */
static int get_agent_key(json_t *doc, const char *key, size_t max, const char **out, char *err,
                         size_t errlen)
{
    if (get_string(doc, key, max, 0, out, err, errlen))
        return -EINVAL;
    if (!*out)
        return 0;
    size_t len = json_string_length(json_object_get(doc, key));
    if (len == 0) {
        snprintf(err, errlen, "%s must not be empty", key);
        *out = NULL;
        return -EINVAL;
    }
    if (utf8_validate(*out, len)) {
        snprintf(err, errlen, "%s is not valid UTF-8", key);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

/* Reads payload.key as a non-negative integer; absent leaves *out alone and returns 0. */
static int get_total_int(json_t *payload, const char *key, int64_t *out, int *present, char *err,
                         size_t errlen)
{
    json_t *v = json_object_get(payload, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "payload.%s must be a non-negative integer", key);
        return -EINVAL;
    }
    *out = json_integer_value(v);
    *present = 1;
    return 0;
}

int event_from_json(json_t *doc, int64_t received_us, adw_event_t *ev, char *err, size_t errlen)
{
    adw_event_t e;
    memset(&e, 0, sizeof e);
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "an event must be a JSON object");
        return -EINVAL;
    }
    if (json_object_get(doc, "id") || json_object_get(doc, "received_at")) {
        snprintf(err, errlen, "%s is assigned by ingest and must not be sent",
                 json_object_get(doc, "id") ? "id" : "received_at");
        return -EINVAL;
    }
    if (get_string(doc, "type", 16, 1, &e.type, err, errlen))
        return -EINVAL;
    if (!strcmp(e.type, "system")) {
        e.is_system = 1;
    } else if (strcmp(e.type, "adw_event") != 0) {
        snprintf(err, errlen, "type must be \"adw_event\" or \"system\"");
        return -EINVAL;
    }
    if (get_string(doc, "adw_id", 1024, 1, &e.adw_id, err, errlen))
        return -EINVAL;
    if (!event_adw_id_valid(e.adw_id, strlen(e.adw_id))) {
        snprintf(err, errlen, "adw_id must be 1-%d characters of [A-Za-z0-9._:-]", ADW_ADW_ID_MAX);
        return -EINVAL;
    }
    if (get_string(doc, "step", ADW_STEP_MAX, 0, &e.step, err, errlen) ||
        get_string(doc, "event_type", ADW_EVENT_TYPE_MAX, !e.is_system, &e.event_type, err,
                   errlen) ||
        get_string(doc, "event", ADW_EVENT_NAME_MAX, e.is_system, &e.event, err, errlen) ||
        get_string(doc, "status", ADW_STATUS_MAX, 0, &e.status, err, errlen) ||
        get_string(doc, "summary", ADW_SUMMARY_MAX, 0, &e.summary, err, errlen) ||
        get_string(doc, "event_id", ADW_EVENT_ID_MAX, 0, &e.event_id, err, errlen) ||
        get_agent_key(doc, "agent_id", ADW_AGENT_ID_MAX, &e.agent_id, err, errlen) ||
        get_agent_key(doc, "agent_type", ADW_AGENT_TYPE_MAX, &e.agent_type, err, errlen))
        return -EINVAL;
    if (e.event_id && !*e.event_id) {
        snprintf(err, errlen, "event_id must not be empty");
        return -EINVAL;
    }

    json_t *dur = json_object_get(doc, "duration_ms");
    if (dur && !json_is_null(dur)) {
        if (!json_is_integer(dur) || json_integer_value(dur) < 0) {
            snprintf(err, errlen, "duration_ms must be a non-negative integer");
            return -EINVAL;
        }
        e.duration_ms = json_integer_value(dur);
        e.has |= EVENT_HAS_DURATION;
    }

    e.received_us = received_us;
    e.ts_us = received_us;
    const char *ts = NULL;
    if (get_string(doc, "timestamp", 64, 0, &ts, err, errlen))
        return -EINVAL;
    if (ts) {
        if (timefmt_parse(ts, strlen(ts), &e.ts_us)) {
            snprintf(err, errlen, "timestamp must be an RFC 3339 date-time");
            return -EINVAL;
        }
        e.has |= EVENT_HAS_TS;
    }

    json_t *payload = json_object_get(doc, "payload");
    if (payload && !json_is_null(payload)) {
        if (!json_is_object(payload)) {
            snprintf(err, errlen, "payload must be a JSON object");
            return -EINVAL;
        }
        size_t size = 0;
        if (jsonw_size(payload, ADW_PAYLOAD_MAX, &size)) {
            snprintf(err, errlen, "payload is over the limit of %d bytes serialized",
                     ADW_PAYLOAD_MAX);
            return -EINVAL;
        }
        json_t *cost = json_object_get(payload, "cost_usd");
        if (cost && !json_is_null(cost)) {
            if (!json_is_number(cost) || json_number_value(cost) < 0 ||
                !isfinite(json_number_value(cost))) {
                snprintf(err, errlen, "payload.cost_usd must be a non-negative number");
                return -EINVAL;
            }
            e.cost_usd = json_number_value(cost);
            e.has |= EVENT_HAS_COST;
        }
        int tok = 0, parts = 0;
        if (get_total_int(payload, "tokens", &e.tokens, &tok, err, errlen) ||
            get_total_int(payload, "input_tokens", &e.input_tokens, &parts, err, errlen) ||
            get_total_int(payload, "output_tokens", &e.output_tokens, &parts, err, errlen) ||
            get_total_int(payload, "cache_read_tokens", &e.cache_read_tokens, &parts, err,
                          errlen) ||
            get_total_int(payload, "cache_creation_tokens", &e.cache_creation_tokens, &parts, err,
                          errlen))
            return -EINVAL;
        if (!tok && parts) {
            /* Saturating: four values each below 2^63 can overflow when added. */
            int64_t sum = 0;
            int64_t partv[4] = {e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                e.cache_creation_tokens};
            for (int i = 0; i < 4; i++)
                sum = partv[i] > INT64_MAX - sum ? INT64_MAX : sum + partv[i];
            e.tokens = sum;
        }
        if (tok || parts)
            e.has |= EVENT_HAS_TOKENS;
    }

    e.doc = json_incref(doc);
    *ev = e;
    return 0;
}

void event_clear(adw_event_t *ev)
{
    if (ev->doc)
        json_decref(ev->doc);
    free(ev->attr_session);
    memset(ev, 0, sizeof *ev);
}
