/* libFuzzer driver for shared/claude/otlp.c: any bytes as a POST /v1/logs body, parsed as
 * ingest parses it (codec_json_parse) and mapped to events.
 *
 * Input: one mode byte, then the body. Mode bits 0-2: the most records that become events
 * (0..6, 7: ADW_BATCH_MAX). Aborts when the mapping breaks otlp.h's contract: a return other
 * than 0 / -EINVAL, records != events + rejected, an event without its fixed keys, an
 * event_id other than "otel-" and 32 hex digits, an invalid adw_id, a session to re-file by
 * when adw.id was given (or none when it fell back), a summary with control characters or
 * over ADW_SUMMARY_MAX, a payload over ADW_PAYLOAD_MAX, an event the event model refuses
 * for anything but its payload's numbers or the step, or a second mapping that differs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adw_limits.h"
#include "codec.h"
#include "event.h"
#include "jsonw.h"
#include "otlp.h"

static void check_event(const json_t *ev, const char *session)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *id = json_string_value(json_object_get(ev, "adw_id"));
    const char *name = json_string_value(json_object_get(ev, "event_type"));
    const char *eid = json_string_value(json_object_get(ev, "event_id"));
    const json_t *sum = json_object_get(ev, "summary");
    const json_t *payload = json_object_get(ev, "payload");
    if (!type || strcmp(type, "adw_event") || !id || !event_adw_id_valid(id, strlen(id)))
        abort();
    if (!name || !*name || strlen(name) > ADW_EVENT_TYPE_MAX)
        abort();
    if (!eid || strlen(eid) != 37 || strncmp(eid, "otel-", 5) ||
        strspn(eid + 5, "0123456789abcdef") != 32)
        abort();
    if (session && strncmp(session, id, strlen(id)))
        abort(); /* the fallback is the session's prefix */
    if (!json_is_string(sum) || json_string_length(sum) > ADW_SUMMARY_MAX)
        abort();
    for (size_t i = 0; i < json_string_length(sum); i++) {
        unsigned char c = (unsigned char)json_string_value(sum)[i];
        if (c < 0x20 || c == 0x7F)
            abort();
    }
    size_t n = 0;
    if (!json_is_object(payload) || jsonw_size(payload, SIZE_MAX, &n) || n > ADW_PAYLOAD_MAX)
        abort();
    adw_event_t e = {0};
    char err[EVENT_ERR_LEN];
    if (event_from_json((json_t *)ev, 1, &e, err, sizeof err)) {
        if (!strstr(err, "payload") && !strstr(err, "step"))
            abort();
    } else {
        event_clear(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = (data[0] & 7) == 7 ? ADW_BATCH_MAX : (size_t)(data[0] & 7);
    json_t *req = NULL;
    char err[256];
    if (codec_json_parse((const char *)data + 1, size - 1, &req, err, sizeof err))
        return 0;
    otlp_logs_t a, b;
    char e1[OTLP_ERR_LEN] = "", e2[OTLP_ERR_LEN] = "";
    int rc = otlp_logs_map(req, max, &a, e1, sizeof e1);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (rc) {
        if (!e1[0] || a.events)
            abort();
        json_decref(req);
        return 0;
    }
    size_t n = json_array_size(a.events);
    if (a.records != n + a.rejected || n > max || (a.rejected && !a.first_error[0]))
        abort();
    for (size_t i = 0; i < n; i++)
        check_event(json_array_get(a.events, i), a.sessions[i]);
    if (otlp_logs_map(req, max, &b, e2, sizeof e2) || !json_equal(a.events, b.events) ||
        a.rejected != b.rejected)
        abort();
    otlp_logs_clear(&a);
    otlp_logs_clear(&b);
    json_decref(req);
    return 0;
}
